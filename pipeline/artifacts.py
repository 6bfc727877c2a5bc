"""The pipeline's DVC outputs: the name of each file a stage writes for a later one, and the
readers of the training frame and the trained model. A stage finds another's output here,
never by importing that stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from models.tracking import load_pyfunc
from pipeline.errors import UserError

# data/features: the featurize stage's training frame and its metadata
FRAME_NAME = "frame.parquet"
META_NAME = "meta.json"
# data/model: the train stage's MLflow model folder and its facts
MODEL_SUBDIR = "mlflow"
INFO_NAME = "train_info.json"
# reports/: the evaluate stage's files
PROMOTION_NAME = "promotion.json"
EVALUATION_NAME = "evaluation.json"  # every figure, by section: the report and MLflow read it
METRICS_NAME = "metrics.json"  # DVC's metrics: the few numbers compared across experiments
PREDICTIONS_NAME = "test_predictions.csv"
# reports/: the monitor stage's details, beside reports/monitor.json
MONITOR_RUNS = "monitor_runs.json"


def read_frame(frame_dir: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The training frame and its metadata written by the featurize stage."""
    path, meta = Path(frame_dir) / FRAME_NAME, Path(frame_dir) / META_NAME
    if not path.is_file() or not meta.is_file():
        raise UserError(f"no training frame in {frame_dir}; run `dvc repro featurize` first")
    return pd.read_parquet(path), json.loads(meta.read_text())


def load_churn_model(model_dir: Path):
    """The ChurnModel saved by the train stage, and its train_info.json."""
    folder, info = Path(model_dir) / MODEL_SUBDIR, Path(model_dir) / INFO_NAME
    if not (folder / "MLmodel").is_file() or not info.is_file():
        raise UserError(f"no trained model in {model_dir}; run `dvc repro train` first")
    model = load_pyfunc(str(folder)).unwrap_python_model()
    return model, json.loads(info.read_text())


# CSV files for `dvc plots` (model only: DVC overlays experiments) and PNGs for people/MLflow.
PLOT_FILES = ("roc.csv", "pr.csv", "calibration.csv", "gains.csv", "campaign.csv")


PNG_FILES = (
    "roc.png",
    "pr.png",
    "calibration.png",
    "gains.png",
    "campaign.png",
    "evaluation.png",
)
