"""Which model this project scores with: the registry champion of the data's lineage, else
the model the pipeline trained (data/model), with its reference profile for drift."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from models.drift import REFERENCE_NAME, Reference
from models.tracking import LoadedModel
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
    from models.tracking import load_model
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
