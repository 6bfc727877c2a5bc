"""MLflow conventions (DESIGN section 7): one store at the repo root, one registered model."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import re
import shlex
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
    FINGERPRINT_NAME,
    describe,
    from_tags,
    lineage_alias,
    lineage_of,
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


def _load(target: str, version: str, note: str | None = None) -> LoadedModel:
    try:
        return LoadedModel(load_pyfunc(target), version, note)
    except Exception as exc:  # mlflow raises many types for a bad or missing model
        raise UserError(
            f"cannot load the model at {target}: {_reason(exc)}; check the path or URI, "
            "or run `dvc repro` to train one"
        ) from exc


def _path_fingerprint(folder: Path) -> dict[str, Any] | None:
    """The data a model folder saved by the train stage was trained on (train_info.json)."""
    info = Path(folder).parent / "train_info.json"
    if Path(folder).is_dir() and info.is_file():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            found = json.loads(info.read_text()).get("data")
            return found if lineage_of(found) else None
    return None


def _alias_version(client: MlflowClient, name: str, alias: str):
    """The model version holding `alias`, or None when there is none (other errors raise)."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        # no such alias (INVALID_PARAMETER_VALUE) or no such registered model
        if exc.error_code in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"):
            return None
        raise


def _named_fingerprint(uri: str, target: str, loaded: LoadedModel) -> dict[str, Any] | None:
    """The data a model named with --model was trained on: train_info.json beside a folder,
    the registered version's tags, else the data_fingerprint.json of its MLflow run."""
    if Path(target).is_dir() and _path_fingerprint(Path(target)):
        return _path_fingerprint(Path(target))
    match = re.fullmatch(r"models:/([^/@]+)(?:/(\d+)|@([\w-]+))/?", uri)
    with contextlib.suppress(Exception), _bounded_http():  # no record: unknown lineage
        if match:
            client = MlflowClient()
            name, number, alias = match.groups()
            mv = (
                client.get_model_version(name, number)
                if number
                else client.get_model_version_by_alias(name, alias)
            )
            found = from_tags(mv.tags)
            if found:
                return found
        run_id = loaded.pyfunc.metadata.run_id
        if run_id:
            found = mlflow.artifacts.load_dict(f"runs:/{run_id}/{FINGERPRINT_NAME}")
            return found if lineage_of(found) else None
    return None


def _train_hint(data: Mapping[str, Any]) -> str:
    """How to train a model on the data being scored."""
    cmd = f"dvc exp run -S data.raw={shlex.quote(str(data.get('source')))}"
    if data.get("lineage_from") == "data.lineage":
        cmd += f" -S data.lineage={shlex.quote(str(lineage_of(data)))}"
    return (
        f"train a model on this data (`{cmd}`; for your own export also -S data.truth=''); "
        "or, when this data continues a lineage you trained on (a newer export of the same "
        "company), set data.lineage in params.yaml to its name; or name a model with --model "
        "to score with it anyway (a note will say what it was trained on)"
    )


def _load_for_data(
    root: Path, registered_name: str, fallback: Path, data: Mapping[str, Any]
) -> LoadedModel:
    """The champion of the data's lineage, else the DVC-tracked `fallback` when trained on the
    same lineage; else a UserError that names what was found and what to do."""
    lineage = lineage_of(data)
    alias = lineage_alias(CHAMPION, lineage) if lineage else None
    store = tracking_uri(root)
    has_store = store != default_uri(root) or (Path(root) / "mlflow.db").is_file()
    found: list[tuple[str, dict[str, Any] | None]] = []  # models of other (or unknown) data
    if has_store and alias:
        mlflow.set_tracking_uri(store)
        mlflow.set_registry_uri(store)
        try:
            with _bounded_http():
                client = MlflowClient()
                mv = _alias_version(client, registered_name, alias)
                if mv is not None:
                    model = load_pyfunc(f"models:/{registered_name}/{mv.version}")
                    fingerprint = from_tags(mv.tags)
                    return LoadedModel(model, f"{registered_name}/{mv.version}", None, fingerprint)
                plain = _alias_version(client, registered_name, CHAMPION)
            note = f"the MLflow store {store} has no champion for this data (alias '{alias}')"
            if plain is not None:
                found.append(
                    (f"the registry's '{CHAMPION}' {registered_name}/{plain.version}",
                     from_tags(plain.tags))
                )  # fmt: skip
        except Exception as exc:  # unreachable store, deleted artifacts...
            note = (
                f"could not use the champion for this data ('{alias}') of '{registered_name}' "
                f"in the MLflow store {store} ({_reason(exc)})"
            )
    elif has_store:
        note = "the data being scored has no lineage key"
    else:
        note = f"no MLflow store at {store}"
    if (Path(fallback) / "MLmodel").is_file():
        fingerprint = _path_fingerprint(Path(fallback))
        if lineage and lineage_of(fingerprint) == lineage:
            note += f"; scoring with the DVC-tracked model {fallback}, trained on this data"
            log.warning("%s", note)
            loaded = _load(str(Path(fallback).resolve()), f"dvc:{fallback}", note)
            loaded.fingerprint = fingerprint
            return loaded
        found.append((f"the DVC-tracked model {fallback}", fingerprint))
    if not found:
        raise UserError(
            f"no model to score with: {note}, and no DVC-tracked model at {fallback}; "
            "run `dvc repro` (or `make run`) first, or pass --model"
        )
    lines = "\n".join(f"  found:   {label}, trained on {describe(fp)}" for label, fp in found)
    raise UserError(
        "no model trained on the data being scored\n"
        f"  scoring: {describe(data)}\n{lines}\n  ({note})\n"
        f"Models of other data are not used unless named: {_train_hint(data)}"
    )


def _mismatch_note(version: str, fingerprint: Mapping[str, Any] | None, data: Mapping) -> str:
    """A note for a named model trained on other (or unrecorded) data than the data scored."""
    return (
        f"the model {version} was trained on {describe(fingerprint)}, not on the data being "
        f"scored ({describe(data)}); scoring with it because --model names it"
    )


def load_model(
    root: Path,
    registered_name: str,
    uri: str | None,
    fallback: Path,
    data: Mapping[str, Any] | None = None,
) -> LoadedModel:
    """Load `uri` if given, else the registry's champion, else the DVC-tracked `fallback`.

    With `data`, the fingerprint of the data to score (pipeline/lineage.py), the champion is
    the one of the data's lineage, and the fallback is used only when trained on it; a model
    named by `uri` is loaded whatever it was trained on, with a note when that is other data.
    """
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
            loaded = _load(target, _path_version(Path(target)) or uri)
        if data is not None:
            loaded.fingerprint = _named_fingerprint(uri, target, loaded)
            if lineage_of(loaded.fingerprint) != lineage_of(data):
                loaded.note = _mismatch_note(loaded.version, loaded.fingerprint, data)
                log.warning("%s", loaded.note)
        return loaded
    if data is not None:
        return _load_for_data(root, registered_name, fallback, data)
    store = tracking_uri(root)
    has_store = store != default_uri(root) or (Path(root) / "mlflow.db").is_file()
    if has_store:
        mlflow.set_tracking_uri(store)
        mlflow.set_registry_uri(store)
        try:
            with _bounded_http():
                mv = MlflowClient().get_model_version_by_alias(registered_name, CHAMPION)
                model = load_pyfunc(f"models:/{registered_name}@{CHAMPION}")
            return LoadedModel(model, f"{registered_name}/{mv.version}", None, from_tags(mv.tags))
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
