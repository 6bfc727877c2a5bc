"""Evaluate the model out of time, beside its baselines and the oracle; promote or not."""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from models.baselines import fit_baselines
from models.lineage import lineage_of
from models.metrics import (
    Campaign,
    binary_metrics,
    calibration_bins,
    campaign_curve,
    gains_points,
    pr_points,
    roc_points,
)
from models.promotion import Decision, compare_and_promote, missing_features
from models.tracking import configure
from pipeline import figures
from pipeline.errors import UserError
from pipeline.featurize import KEYS, LABEL
from pipeline.io import write_json, write_table
from pipeline.split import Folds
from pipeline.train import INFO_NAME, MODEL_SUBDIR, folds_for, read_frame

log = logging.getLogger(__name__)

BASELINE_KEYS = (
    "auc",
    "pr_auc",
    "brier",
    "log_loss",
    "ece",
    "lift_at_5pct",
    "lift_at_10pct",
    "lift_at_20pct",
    "recall_at_10pct",
)
ORACLE_KEYS = (*BASELINE_KEYS, "campaign_value")
LABELS = {
    "model": "model (calibrated LightGBM)",
    "oracle": "oracle: the simulator's true probability",
    "logistic_regression": "logistic regression",
    "days_since_last_contact": "rule: days since last contact",
    "recency_frequency": "recency-frequency-monetary score",
}
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
PROMOTION_NAME = "promotion.json"


def model_label(model: dict[str, Any]) -> str:
    """The model's name in plots and reports (`model` section of metrics.json)."""
    w = float(model.get("blend_weight", 1.0))
    if w >= 1.0:
        return LABELS["model"]
    return f"model (calibrated {w:.2f} LightGBM + {1 - w:.2f} logistic regression)"


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


def campaign_from(params: dict[str, Any]) -> Campaign:
    """The retention campaign of params.yaml, with a clear message when it is malformed."""
    try:
        campaign = Campaign.from_params(params["campaign"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(
            "params.yaml `campaign` needs numbers contact_cost, account_value and success_rate"
        ) from exc
    if campaign.contact_cost < 0 or campaign.account_value < 0:
        raise UserError("campaign.contact_cost and campaign.account_value must be >= 0")
    if not 0 <= campaign.success_rate <= 1:
        raise UserError("campaign.success_rate is a chance: between 0 and 1")
    return campaign


def load_churn_model(model_dir: Path):
    """The ChurnModel saved by the train stage, and its train_info.json."""
    folder, info = Path(model_dir) / MODEL_SUBDIR, Path(model_dir) / INFO_NAME
    if not (folder / "MLmodel").is_file() or not info.is_file():
        raise UserError(f"no trained model in {model_dir}; run `dvc repro train` first")
    model = mlflow.pyfunc.load_model(str(folder)).unwrap_python_model()
    return model, json.loads(info.read_text())


def _curves(fn, y: np.ndarray, model: np.ndarray, baselines: dict, oracle) -> dict[str, Any]:
    return {
        "model": fn(y, model),
        "baselines": {k: fn(y, v) for k, v in baselines.items()},
        "oracle": None if oracle is None else fn(y, oracle),
    }


def write_plots(
    plots: Path,
    y: np.ndarray,
    p: np.ndarray,
    p_raw: np.ndarray,
    baselines: dict[str, np.ndarray],
    p_oracle: np.ndarray | None,
    campaign: Campaign,
    metrics: dict[str, Any],
) -> None:
    """The plot data for DVC and the PNG images."""
    roc = _curves(roc_points, y, p, baselines, p_oracle)
    pr = _curves(pr_points, y, p, baselines, p_oracle)
    gains = _curves(gains_points, y, p, baselines, p_oracle)
    calib, calib_raw = calibration_bins(y, p), calibration_bins(y, p_raw)
    curve = campaign_curve(y, p, campaign)
    thin = curve.iloc[np.unique(np.linspace(0, len(curve) - 1, 201).round().astype(int))]
    write_table(roc["model"], plots / "roc.csv")
    write_table(pr["model"], plots / "pr.csv")
    write_table(calib, plots / "calibration.csv")
    write_table(gains["model"], plots / "gains.csv")
    write_table(thin[["depth", "value"]].round(5), plots / "campaign.csv")

    t = metrics["test"]
    labels = {**LABELS}
    labels["model"] = f"{model_label(metrics.get('model', {}))} AUC {t['auc']:.3f}"
    for name in baselines:
        labels[name] = f"{LABELS.get(name, name)} AUC {metrics['baselines'][name]['auc']:.3f}"
    if "oracle" in metrics:
        labels["oracle"] = f"{LABELS['oracle']} AUC {metrics['oracle']['auc']:.3f}"
    draws = {
        "roc.png": lambda ax: figures.roc_panel(ax, roc, labels),
        "pr.png": lambda ax: figures.pr_panel(ax, pr, labels, t["churn_rate"]),
        "calibration.png": lambda ax: figures.calibration_panel(ax, calib, calib_raw, t["ece"]),
        "gains.png": lambda ax: figures.gains_panel(ax, gains, labels),
        "campaign.png": lambda ax: figures.campaign_panel(
            ax, thin, t["campaign_depth"], t["campaign_depth_policy"]
        ),
    }
    for name, draw in draws.items():
        figures.save(draw, plots / name)
    figures.save_grid(
        [*draws.values(), lambda ax: figures.risk_panel(ax, p, y)], plots / "evaluation.png"
    )


def baseline_predictions(
    frame: pd.DataFrame, folds: Folds, features: list[str]
) -> dict[str, np.ndarray]:
    """Each baseline fitted on the training fold only, its probabilities on the test fold."""
    fold = folds.fold_of(frame["cutoff"])
    train, test = frame[fold == "train"], frame[fold == "test"]
    fitted = fit_baselines(train, train[LABEL].to_numpy(), features)
    return {name: b.predict_proba(test) for name, b in fitted.items()}


def _score_champion(uri: str, test: pd.DataFrame, metric: str) -> float:
    champion = mlflow.pyfunc.load_model(uri).unwrap_python_model()
    missing = missing_features(champion.features, test)
    if missing:
        raise KeyError(", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""))
    return binary_metrics(test[LABEL].to_numpy(), champion.predict_proba(test))[metric]


def promote(
    root: Path, params: dict[str, Any], info: dict[str, Any], test: pd.DataFrame, score: float
) -> Decision | None:
    """Champion/challenger on the test rows (None when the model is not in this store), against
    the champion of the data the model was trained on (its lineage, train_info's `data`)."""
    cfg, rule = params["mlflow"], params.get("promote") or {}
    metric, margin = rule.get("metric", "auc"), float(rule.get("margin", 0.0))
    if metric not in ("auc", "pr_auc", "brier", "log_loss", "ece"):
        raise UserError(f"promote.metric {metric!r}: use auc, pr_auc, brier, log_loss or ece")
    client = MlflowClient()
    try:
        client.get_model_version(cfg["registered_model"], str(info["version"]))
    except MlflowException:
        log.warning(
            "model %s version %s is not in the MLflow store at %s: no promotion",
            cfg["registered_model"],
            info["version"],
            mlflow.get_tracking_uri(),
        )
        return None
    return compare_and_promote(
        client,
        cfg["registered_model"],
        str(info["version"]),
        metric,
        margin,
        score,
        functools.partial(_score_champion, test=test, metric=metric),
        higher_is_better=metric in ("auc", "pr_auc"),
        lineage=lineage_of(info.get("data")),
    )


def run(
    frame_dir: Path,
    model_dir: Path,
    truth_path: Path | None,
    reports_dir: Path,
    params: dict[str, Any],
    root: Path,
) -> tuple[dict[str, Any], Decision | None]:
    """The evaluate stage: metrics.json, plots, promotion, and everything into the MLflow run."""
    frame, _ = read_frame(frame_dir)
    model, info = load_churn_model(model_dir)
    missing = missing_features(model.features, frame)
    if missing:
        raise UserError(
            f"the training frame in {frame_dir} lacks model features {', '.join(missing[:5])}; "
            "run `dvc repro` so that features and model match"
        )
    campaign = campaign_from(params)
    folds = folds_for(frame, params)
    fold = folds.fold_of(frame["cutoff"])
    valid, test = frame[fold == "valid"], frame[fold == "test"]
    y_test = test[LABEL].to_numpy()
    p_test, raw_test = model.predict_proba(test), model.predict_raw(test)
    p_uncal = 1.0 / (1.0 + np.exp(-raw_test))

    metrics: dict[str, Any] = {
        "valid": binary_metrics(valid[LABEL].to_numpy(), model.predict_proba(valid), campaign),
        "test": binary_metrics(y_test, p_test, campaign),
    }
    uncal = binary_metrics(y_test, p_uncal)
    metrics["uncalibrated"] = {k: uncal[k] for k in ("auc", "brier", "log_loss", "ece")}

    p_base = baseline_predictions(frame, folds, model.features)
    metrics["baselines"] = {}
    for name, p in p_base.items():
        m = binary_metrics(y_test, p)
        metrics["baselines"][name] = {k: m[k] for k in BASELINE_KEYS}
    p_oracle = oracle_probabilities(test, truth_path)
    if p_oracle is not None:
        p_oracle = p_oracle.to_numpy()
        oracle = binary_metrics(y_test, p_oracle, campaign)
        metrics["oracle"] = {k: oracle[k] for k in ORACLE_KEYS}
        metrics["test"]["auc_vs_oracle"] = metrics["test"]["auc"] / oracle["auc"]
        metrics["test"]["pr_auc_vs_oracle"] = metrics["test"]["pr_auc"] / oracle["pr_auc"]
    behind = [
        f"{name} ({key} {b[key]:.4f} >= {metrics['test'][key]:.4f})"
        for name, b in metrics["baselines"].items()
        for key in ("auc", "pr_auc")
        if b[key] >= metrics["test"][key]
    ]
    metrics["test"]["beats_baselines"] = int(not behind)
    if behind:
        log.warning("the model does not beat every baseline: %s", "; ".join(behind))
    metrics["model"] = {
        "version": info["version"],
        "trees": info["trees"],
        "blend_weight": info.get("blend_weight", 1.0),
        "features": len(info["features"]),
        "calibration": (info.get("calibration") or {}).get("method", "none"),
    }

    plots = Path(reports_dir) / "plots"
    write_plots(plots, y_test, p_test, p_uncal, p_base, p_oracle, campaign, metrics)
    write_json(metrics, Path(reports_dir) / "metrics.json")

    configure(root, params["mlflow"]["experiment"])
    metric = (params.get("promote") or {}).get("metric", "auc")
    decision = promote(root, params, info, test, metrics["test"].get(metric, float("nan")))
    if decision is not None:
        write_json(decision.as_dict(), Path(reports_dir) / PROMOTION_NAME)
    _log_to_run(info["run_id"], metrics, plots, decision)
    return metrics, decision


def flat_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """`section.key` (and `baselines.name.key`) numbers for MLflow."""
    flat: dict[str, float] = {}
    for section in ("test", "oracle", "uncalibrated", "baselines"):
        for key, value in metrics.get(section, {}).items():
            if isinstance(value, dict):
                flat |= {f"{section}.{key}.{k}": v for k, v in value.items()}
            elif isinstance(value, int | float):
                flat[f"{section}.{key}"] = value
    return {k: float(v) for k, v in flat.items() if v is not None and np.isfinite(v)}


def _log_to_run(
    run_id: str, metrics: dict[str, Any], plots: Path, decision: Decision | None
) -> None:
    """Add test, baseline and oracle metrics, plots and the promotion to the training run."""
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
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics(flat_metrics(metrics))
        for name in (*PNG_FILES, *PLOT_FILES):
            mlflow.log_artifact(str(plots / name), artifact_path="plots")
        if decision is not None:
            mlflow.log_dict(decision.as_dict(), "promotion.json")
            mlflow.set_tags(
                {
                    "promotion.decision": "promoted" if decision.promote else "not promoted",
                    "promotion.reason": decision.reason[:500],
                    "promotion.champion_version": str(decision.champion_version),
                }
            )
            scores = {f"promotion.challenger_{decision.metric}": decision.challenger_score}
            if decision.champion_score is not None:
                scores[f"promotion.champion_{decision.metric}"] = decision.champion_score
            mlflow.log_metrics(scores)


def summary(metrics: dict[str, Any]) -> str:
    """The test metrics of the model, its baselines and the oracle as a small text table."""
    cols = ("auc", "pr_auc", "brier", "log_loss", "ece", "lift_at_10pct")
    rows = [("model", metrics["test"])]
    rows += list(metrics.get("baselines", {}).items())
    if "oracle" in metrics:
        rows.append(("oracle", metrics["oracle"]))
    width = max(len(name) for name, _ in rows)
    lines = [
        f"{'test (' + str(metrics['test']['n']) + ' rows)':<{width}}  "
        + "  ".join(f"{c:>13}" for c in cols)
    ]
    for name, m in rows:
        lines.append(
            f"{name:<{width}}  " + "  ".join(f"{m.get(c, float('nan')):>13.4f}" for c in cols)
        )
    t = metrics["test"]
    if "auc_vs_oracle" in t:
        lines.append(f"AUC {t['auc_vs_oracle']:.1%} of the oracle's")
    lines.append(
        f"campaign: best depth {t['campaign_depth']:.1%} worth {t['campaign_value']:,.0f}; "
        f"contacting where p x success x value > cost: {t['campaign_depth_policy']:.1%} worth "
        f"{t['campaign_value_policy']:,.0f}"
    )
    return "\n".join(lines)
