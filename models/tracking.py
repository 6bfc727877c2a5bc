"""MLflow conventions (docs/architecture.md, "MLflow"): one store at the repo root, one
registered model, aliases per data lineage; loading a model by URI or folder. Which model the
project scores a data set with is pipeline/registry.py."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from models.errors import UserError
from models.lineage import (
    lineage_alias,
)

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


def run_name(stage: str) -> str:
    """The MLflow run's name: the DVC experiment's when DVC runs one, else the stage and time."""
    from datetime import datetime

    return os.environ.get("DVC_EXP_NAME") or f"{stage}-{datetime.now():%Y%m%d-%H%M%S}"


def register(
    name: str,
    model_uri: str,
    run_id: str,
    description: str,
    tags: Mapping[str, str],
    model_id: str | None = None,
) -> str:
    """A new version of the registered model `name`, with its description and tags; its number.

    Through the client rather than `log_model(registered_model_name=...)`, which prints
    registration notices on the console and takes no description."""
    client = MlflowClient()
    try:
        client.get_registered_model(name)
    except MlflowException:
        with contextlib.suppress(MlflowException):  # created meanwhile by a parallel run
            client.create_registered_model(
                name, description="Churn risk of B2B accounts (aftersale)."
            )
    created = client.create_model_version(
        name, model_uri, run_id, tags=dict(tags), description=description, model_id=model_id
    )
    return str(created.version)


def annotate_version(
    name: str, version: str, description: str | None, tags: Mapping[str, str]
) -> None:
    """Add tags to a registered version (test metrics, the decision) and extend its
    description."""
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    if description:
        current = client.get_model_version(name, version).description or ""
        text = f"{current}\n\n{description}" if current else description
        client.update_model_version(name, version, description=text)


def set_aliases(name: str, version: str, lineage: str | None = None) -> bool:
    """Make `version` the challenger; also the champion when there is none. True if champion.

    With a `lineage` (the key of the data it was trained on) the champion is that lineage's:
    `champion-<slug>` is set when the lineage has none (and then the plain `champion` too,
    which names the newest model made champion of any lineage); the plain `challenger` and
    `challenger-<slug>` always name the newest model trained.
    """
    client = MlflowClient()
    client.set_registered_model_alias(name, CHALLENGER, version)
    if lineage is not None:
        client.set_registered_model_alias(name, lineage_alias(CHALLENGER, lineage), version)
    champion = CHAMPION if lineage is None else lineage_alias(CHAMPION, lineage)
    try:
        client.get_model_version_by_alias(name, champion)
        return False
    except MlflowException:
        client.set_registered_model_alias(name, champion, version)
        if champion != CHAMPION:
            client.set_registered_model_alias(name, CHAMPION, version)
        return True


@dataclass
class LoadedModel:
    """A pyfunc model plus a human-readable version for score files."""

    pyfunc: mlflow.pyfunc.PyFuncModel
    version: str
    note: str | None = None  # why this model and not the registry's champion, if so
    fingerprint: dict[str, Any] | None = None  # the data it was trained on, when recorded

    @property
    def churn_model(self):
        return self.pyfunc.unwrap_python_model()

    @property
    def run_id(self) -> str | None:
        """The MLflow run that trained the model, when recorded."""
        return getattr(self.pyfunc.metadata, "run_id", None)

    @property
    def uuid(self) -> str | None:
        """The saved model's own id (MLmodel `model_uuid`): one per saved artifact."""
        return getattr(self.pyfunc.metadata, "model_uuid", None)


# Bounds for reaching a tracking server while looking up the champion: without them an
# unreachable server costs minutes of retries before the DVC-tracked fallback is used.
REGISTRY_HTTP = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


@contextlib.contextmanager
def bounded_http() -> Iterator[None]:
    """Set REGISTRY_HTTP for the block, leaving any value the user set alone."""
    added = {k: v for k, v in REGISTRY_HTTP.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def reason(exc: BaseException) -> str:
    """The first line of an exception's message (at most 300 characters), for a note."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def path_version(folder: Path) -> str | None:
    """'churn-risk/3' for a model folder saved by the train stage (train_info.json beside it)."""
    info = folder.parent / "train_info.json"
    if folder.is_dir() and info.is_file():
        with contextlib.suppress(ValueError, KeyError):
            data = json.loads(info.read_text())
            return f"{data['registered_model']}/{data['version']}"
    return None


def load_pyfunc(uri: str) -> mlflow.pyfunc.PyFuncModel:
    """mlflow.pyfunc.load_model of a model folder or URI (models:/, runs:/, a path), with the
    model's requirements and Python checked by check_environment rather than by MLflow's
    loader, which first maps every installed distribution to its modules (seconds, on every
    load, where the model pins five packages)."""
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    check_environment(local)
    return mlflow.pyfunc.load_model(str(local), suppress_warnings=True)


def check_environment(folder: Path) -> list[str]:
    """The requirements (requirements.txt) and Python (MLmodel) a saved model was logged with
    that this environment does not meet, each logged as a warning, as MLflow's loader warns:
    its predictions may differ. Returns them, e.g. ["lightgbm==4.7.0 (installed: 4.6.0)"]."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import InvalidRequirement, Requirement

    unmet = []
    requirements = folder / "requirements.txt"
    lines = requirements.read_text().splitlines() if requirements.is_file() else []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            have = version(req.name)
        except PackageNotFoundError:
            have = None
        if have is None or not req.specifier.contains(have, prereleases=True):
            unmet.append(f"{req} (installed: {have or 'none'})")
    with contextlib.suppress(OSError, KeyError, TypeError, AttributeError, MlflowException):
        conf = mlflow.models.Model.load(str(folder / "MLmodel")).flavors["python_function"]
        saved = str(conf.get("python_version") or "")
        running = platform.python_version()
        if saved and saved.split(".")[:2] != running.split(".")[:2]:
            unmet.append(f"python {saved} (running: {running})")
    if unmet:
        log.warning(
            "the model at %s was saved with other packages than these: %s; its predictions "
            "may differ (make setup installs the project's lock)",
            folder,
            "; ".join(unmet),
        )
    return unmet


def load_named(target: str, version: str, note: str | None = None) -> LoadedModel:
    """The model at `target` (a folder or URI) as a LoadedModel named `version`; UserError when
    it cannot be loaded."""
    try:
        return LoadedModel(load_pyfunc(target), version, note)
    except Exception as exc:  # mlflow raises many types for a bad or missing model
        raise UserError(
            f"cannot load the model at {target}: {reason(exc)}; check the path or URI, "
            "or run `dvc repro` to train one"
        ) from exc
