"""Which model this project scores with: the registry champion of the data's lineage, else
the model the pipeline trained (data/model) when trained on the same lineage, else a model
named by --model (with a note when trained on other data); its reference profile for drift;
and the training frame logged as an MLflow dataset. MLflow itself is models/tracking.py."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from models.drift import REFERENCE_NAME, Reference
from models.errors import UserError
from models.lineage import FINGERPRINT_NAME, describe, from_tags, lineage_alias, lineage_of
from models.tracking import (
    CHAMPION,
    LoadedModel,
    bounded_http,
    default_uri,
    load_named,
    load_pyfunc,
    path_version,
    reason,
    tracking_uri,
)
from pipeline.labels import LABEL
from pipeline.store import Validated

log = logging.getLogger(__name__)


def load_scoring_model(
    params: Mapping[str, Any], model_arg: str | None, validated: Validated | None = None
) -> tuple[LoadedModel, Reference | None]:
    """The model to score with (see models.tracking.load_model) and its reference profile.

    With the `validated` data to score, the default model is one trained on that data's
    lineage (`data.lineage`, else its source folder): never another data set's champion.
    """
    from models.drift import find_reference
    from pipeline.artifacts import MODEL_SUBDIR
    from pipeline.lineage import data_lineage, fingerprint
    from pipeline.paths import repo_root

    root = repo_root()
    fallback = root / "data" / "model" / MODEL_SUBDIR
    data = None if validated is None else fingerprint(validated, data_lineage(params))
    loaded = load_model(root, params["mlflow"]["registered_model"], model_arg, fallback, data)
    folder = None
    if model_arg and "://" not in model_arg and ":/" not in model_arg:
        folder = Path(model_arg).resolve()
    elif loaded.version.startswith("dvc:"):
        folder = fallback
    reference = find_reference(folder, loaded.pyfunc.metadata.run_id)
    if reference is None:
        log.warning(
            "no %s with the model %s: drift is not checked and typical values are the medians "
            "of the active accounts at the as-of date; retrain (dvc repro) to write one",
            REFERENCE_NAME,
            loaded.version,
        )
    return loaded, reference


def log_dataset(part: pd.DataFrame, frame_dir: Path, context: str) -> None:
    """One fold of the training frame as an MLflow dataset input of the active run
    (context: train, valid or test), its source the frame's file."""
    source = str((Path(frame_dir) / "frame.parquet").resolve())
    dataset = mlflow.data.from_pandas(part, source=source, targets=LABEL, name=f"{context} fold")
    mlflow.log_input(dataset, context=context)


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
    with contextlib.suppress(Exception), bounded_http():  # no record: unknown lineage
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
            with bounded_http():
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
                f"in the MLflow store {store} ({reason(exc)})"
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
            loaded = load_named(str(Path(fallback).resolve()), f"dvc:{fallback}", note)
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
        with bounded_http():
            loaded = load_named(target, path_version(Path(target)) or uri)
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
            with bounded_http():
                mv = MlflowClient().get_model_version_by_alias(registered_name, CHAMPION)
                model = load_pyfunc(f"models:/{registered_name}@{CHAMPION}")
            return LoadedModel(model, f"{registered_name}/{mv.version}", None, from_tags(mv.tags))
        except Exception as exc:  # unreachable store, missing alias, deleted artifacts...
            note = (
                f"could not use the '{CHAMPION}' of '{registered_name}' in the MLflow store "
                f"{store} ({reason(exc)})"
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
    return load_named(str(Path(fallback).resolve()), f"dvc:{fallback}", note)
