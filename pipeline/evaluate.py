"""Evaluate the model out of time, next to the oracle when the data is simulated."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import pandas as pd  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from models.metrics import binary_metrics, calibration_bins, roc_points  # noqa: E402
from models.tracking import configure  # noqa: E402
from pipeline.featurize import KEYS, LABEL  # noqa: E402
from pipeline.io import atomic_file, write_json, write_table  # noqa: E402
from pipeline.train import INFO_NAME, MODEL_SUBDIR, folds_for, read_frame  # noqa: E402

log = logging.getLogger(__name__)


def oracle_probabilities(test: pd.DataFrame, truth_path: Path | None) -> pd.Series | None:
    """The simulator's true probabilities for exactly the test rows (None without full cover)."""
    if not truth_path or not Path(truth_path).is_file():
        return None
    truth = pd.read_parquet(truth_path)
    truth["cutoff"] = pd.to_datetime(truth["cutoff"]).astype("datetime64[us]")
    truth["account_id"] = truth["account_id"].astype(str)
    rows = test[[*KEYS, LABEL]].merge(truth[[*KEYS, "p_churn"]], on=KEYS, how="left")
    covered = rows["p_churn"].notna().mean()
    if covered < 1.0:
        log.warning(
            "the truth file covers %.1f%% of the test rows (cutoffs off the simulator's "
            "grid?); no oracle figures",
            100 * covered,
        )
        return None
    return rows["p_churn"]


def _plot(
    roc: pd.DataFrame,
    calib: pd.DataFrame,
    auc: float,
    oracle: pd.DataFrame | None,
    oracle_auc: float | None,
    out: Path,
) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    axes[0].plot(roc["fpr"], roc["tpr"], label=f"model (AUC {auc:.3f})")
    if oracle is not None:
        axes[0].plot(
            oracle["fpr"],
            oracle["tpr"],
            c="black",
            lw=1,
            label=f"oracle: true probability (AUC {oracle_auc:.3f})",
        )
    axes[0].plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
    axes[0].set(
        xlabel="false positive rate", ylabel="true positive rate", title="ROC, out-of-time test"
    )
    axes[0].legend(loc="lower right")
    top = max(calib["predicted"].max(), calib["observed"].max()) * 1.05
    axes[1].plot(calib["predicted"], calib["observed"], marker="o")
    axes[1].plot([0, top], [0, top], ls="--", c="grey", lw=1)
    axes[1].set(
        xlabel="mean predicted churn probability",
        ylabel="observed churn rate",
        title="Calibration (10 equal-size bins)",
    )
    fig.tight_layout()
    with atomic_file(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def run(
    frame_dir: Path,
    model_dir: Path,
    truth_path: Path | None,
    reports_dir: Path,
    params: dict[str, Any],
    root: Path,
) -> dict[str, Any]:
    """The evaluate stage: metrics.json, plot data and images; test metrics into the MLflow run."""
    frame, _ = read_frame(frame_dir)
    model = mlflow.pyfunc.load_model(str(Path(model_dir) / MODEL_SUBDIR)).unwrap_python_model()
    info = json.loads((Path(model_dir) / INFO_NAME).read_text())
    folds = folds_for(frame, params)
    fold = folds.fold_of(frame["cutoff"])
    metrics: dict[str, Any] = {}
    valid, test = frame[fold == "valid"], frame[fold == "test"]
    metrics["valid"] = binary_metrics(valid[LABEL].to_numpy(), model.predict_proba(valid))
    p_test = model.predict_proba(test)
    y_test = test[LABEL].to_numpy()
    metrics["test"] = binary_metrics(y_test, p_test)
    p_oracle = oracle_probabilities(test, truth_path)
    if p_oracle is not None:
        oracle = binary_metrics(y_test, p_oracle.to_numpy())
        metrics["oracle"] = {k: oracle[k] for k in ("auc", "pr_auc", "brier", "lift_at_10pct")}
        metrics["test"]["auc_vs_oracle"] = metrics["test"]["auc"] / oracle["auc"]
    metrics["model"] = {
        "version": info["version"],
        "trees": info["trees"],
        "features": len(info["features"]),
    }

    plots = Path(reports_dir) / "plots"
    roc = roc_points(y_test, p_test)
    calib = calibration_bins(y_test, p_test)
    write_table(roc, plots / "roc.csv")
    write_table(calib, plots / "calibration.csv")
    oracle_roc = None if p_oracle is None else roc_points(y_test, p_oracle.to_numpy())
    _plot(
        roc,
        calib,
        metrics["test"]["auc"],
        oracle_roc,
        metrics.get("oracle", {}).get("auc"),
        plots / "evaluation.png",
    )
    write_json(metrics, Path(reports_dir) / "metrics.json")

    _log_to_run(root, params, info["run_id"], metrics, plots)
    return metrics


def _log_to_run(
    root: Path, params: dict[str, Any], run_id: str, metrics: dict[str, Any], plots: Path
) -> None:
    """Add test and oracle metrics and the plots to the training run, when it is in the store."""
    configure(root, params["mlflow"]["experiment"])
    try:
        MlflowClient().get_run(run_id)
    except MlflowException:
        log.warning(
            "training run %s is not in the MLflow store at %s (the train stage was "
            "restored from DVC's cache?); test metrics are in reports/metrics.json only",
            run_id,
            mlflow.get_tracking_uri(),
        )
        return
    flat = {
        f"{section}.{k}": v
        for section in ("test", "oracle")
        for k, v in metrics.get(section, {}).items()
        if isinstance(v, int | float)
    }
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics(flat)
        mlflow.log_artifacts(str(plots), artifact_path="plots")
