"""MLflow conventions (DESIGN section 7): one store at the repo root, one registered model."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
from collections.abc import Iterator
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
    note: str | None = None  # why this model and not the registry's champion, if so

    @property
    def churn_model(self):
        return self.pyfunc.unwrap_python_model()


# Bounds for reaching a tracking server while looking up the champion: without them an
# unreachable server costs minutes of retries before the DVC-tracked fallback is used.
REGISTRY_HTTP = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


@contextlib.contextmanager
def _bounded_http() -> Iterator[None]:
    """Set REGISTRY_HTTP for the block, leaving any value the user set alone."""
    added = {k: v for k, v in REGISTRY_HTTP.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _path_version(folder: Path) -> str | None:
    """'churn-risk/3' for a model folder saved by the train stage (train_info.json beside it)."""
    info = folder.parent / "train_info.json"
    if folder.is_dir() and info.is_file():
        with contextlib.suppress(ValueError, KeyError):
            data = json.loads(info.read_text())
            return f"{data['registered_model']}/{data['version']}"
    return None


def _load(target: str, version: str, note: str | None = None) -> LoadedModel:
    try:
        return LoadedModel(mlflow.pyfunc.load_model(target), version, note)
    except Exception as exc:  # mlflow raises many types for a bad or missing model
        raise UserError(
            f"cannot load the model at {target}: {_reason(exc)}; check the path or URI, "
            "or run `dvc repro` to train one"
        ) from exc


def load_model(root: Path, registered_name: str, uri: str | None, fallback: Path) -> LoadedModel:
    """Load `uri` if given, else the registry's champion, else the DVC-tracked `fallback`."""
    if uri:
        target = uri
        if "://" not in uri and ":/" not in uri:
            target = str(Path(uri).resolve())
            if not Path(target).exists():
                raise UserError(f"no model at {uri}: pass a model folder or an MLflow model URI")
        if Path(target).is_dir() and (Path(target) / "mlflow" / "MLmodel").is_file():
            target = str(Path(target) / "mlflow")  # the DVC-tracked folder, e.g. data/model
        mlflow.set_tracking_uri(tracking_uri(root))
        with _bounded_http():
            return _load(target, _path_version(Path(target)) or uri)
    store = tracking_uri(root)
    has_store = store != default_uri(root) or (Path(root) / "mlflow.db").is_file()
    if has_store:
        mlflow.set_tracking_uri(store)
        mlflow.set_registry_uri(store)
        try:
            with _bounded_http():
                mv = MlflowClient().get_model_version_by_alias(registered_name, CHAMPION)
                model = mlflow.pyfunc.load_model(f"models:/{registered_name}@{CHAMPION}")
            return LoadedModel(model, f"{registered_name}/{mv.version}")
        except Exception as exc:  # unreachable store, missing alias, deleted artifacts...
            note = (
                f"could not use the '{CHAMPION}' of '{registered_name}' in the MLflow store "
                f"{store} ({_reason(exc)})"
            )
    else:
        note = f"no MLflow store at {store}"
    if not (Path(fallback) / "MLmodel").is_file():
        raise UserError(
            f"no model to score with: {note}, and no DVC-tracked model at {fallback}; "
            "run `dvc repro` (or `make run`) first, or pass --model"
        )
    note += f"; scoring with the DVC-tracked model {fallback} instead"
    log.warning("%s", note)
    return _load(str(Path(fallback).resolve()), f"dvc:{fallback}", note)
