"""MLflow conventions (DESIGN section 7): one store at the repo root, one registered model."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pipeline.errors import UserError

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"


def default_uri(root: Path) -> str:
    """The project's own store: SQLite at the repo root."""
    return f"sqlite:///{Path(root).resolve() / 'mlflow.db'}"


def tracking_uri(root: Path) -> str:
    """MLFLOW_TRACKING_URI if set, else the SQLite store at the repo root."""
    return os.environ.get("MLFLOW_TRACKING_URI") or default_uri(root)


def configure(root: Path, experiment: str) -> str:
    """Point MLflow at the project's store and make sure the experiment exists; return its id."""
    uri = tracking_uri(root)
    # mlflow.set_tracking_uri also exports MLFLOW_TRACKING_URI, so compare values, not presence.
    local = uri == default_uri(root)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    found = mlflow.get_experiment_by_name(experiment)
    if found is None:
        location = None
        if local:  # else the server or store decides where artifacts go
            location = (Path(root).resolve() / "mlartifacts").as_uri()
        with contextlib.suppress(MlflowException):  # created meanwhile by a parallel run
            mlflow.create_experiment(experiment, artifact_location=location)
        found = mlflow.get_experiment_by_name(experiment)
    return mlflow.set_experiment(experiment_id=found.experiment_id).experiment_id


def git_commit(root: Path) -> str | None:
    """The commit of the code that ran (None outside git)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def run_tags(root: Path) -> dict[str, str]:
    """Tags every run carries: git commit and DVC experiment name when there is one."""
    tags = {"mlflow.source.type": "JOB"}
    commit = git_commit(root)
    if commit:
        tags["git_commit"] = commit
        tags["mlflow.source.git.commit"] = commit
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc_exp_name"] = os.environ["DVC_EXP_NAME"]
    return tags


def set_aliases(name: str, version: str) -> bool:
    """Make `version` the challenger; also the champion when there is none. True if champion."""
    client = MlflowClient()
    client.set_registered_model_alias(name, CHALLENGER, version)
    try:
        client.get_model_version_by_alias(name, CHAMPION)
        return False
    except MlflowException:
        client.set_registered_model_alias(name, CHAMPION, version)
        return True


@dataclass
class LoadedModel:
    """A pyfunc model plus a human-readable version for score files."""

    pyfunc: mlflow.pyfunc.PyFuncModel
    version: str

    @property
    def churn_model(self):
        return self.pyfunc.unwrap_python_model()


def load_model(root: Path, registered_name: str, uri: str | None, fallback: Path) -> LoadedModel:
    """Load `uri` if given, else the registry's champion, else the DVC-tracked `fallback`."""
    if uri:
        target = uri
        if "://" not in uri and ":/" not in uri:
            target = str(Path(uri).resolve())
        mlflow.set_tracking_uri(tracking_uri(root))
        return LoadedModel(mlflow.pyfunc.load_model(target), uri)
    store = tracking_uri(root)
    has_store = store != default_uri(root) or (Path(root) / "mlflow.db").is_file()
    if has_store:
        mlflow.set_tracking_uri(store)
        mlflow.set_registry_uri(store)
        try:
            mv = MlflowClient().get_model_version_by_alias(registered_name, CHAMPION)
            model = mlflow.pyfunc.load_model(f"models:/{registered_name}@{CHAMPION}")
            return LoadedModel(model, f"{registered_name}/{mv.version}")
        except MlflowException as exc:
            log.warning(
                "no '%s' champion in the MLflow store (%s); using the DVC-tracked model %s",
                registered_name,
                str(exc).splitlines()[0],
                fallback,
            )
    else:
        log.warning("no MLflow store at %s; using the DVC-tracked model %s", store, fallback)
    if not (Path(fallback) / "MLmodel").is_file():
        raise UserError(
            f"no model to score with: no champion in the registry and no model at "
            f"{fallback}; run `dvc repro` (or `make run`) first, or pass --model"
        )
    return LoadedModel(mlflow.pyfunc.load_model(str(Path(fallback).resolve())), f"dvc:{fallback}")
