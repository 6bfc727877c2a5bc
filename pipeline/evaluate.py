"""Evaluate the model out of time, beside its baselines and the oracle; promote or not."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from features.build import KEYS
from models.baselines import fit_baselines
from models.bootstrap import auc_difference
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
from models.tracking import configure, load_pyfunc
from pipeline import figures
from pipeline.artifacts import (
    EVALUATION_NAME,
    METRICS_NAME,
    PREDICTIONS_NAME,
    PROMOTION_NAME,
    load_churn_model,
    read_frame,
)
from pipeline.config import with_defaults
from pipeline.errors import UserError
from pipeline.evaluation_record import headline, log_to_run
from pipeline.figures import LABELS, model_label
from pipeline.io import write_json, write_table
from pipeline.labels import LABEL
from pipeline.progress import step
from pipeline.split import Folds, folds_for

# what this stage reads of params.yaml, and all it is given (pipeline.config.only): the same
# list as its `params:` in dvc.yaml (tests/test_architecture.py)
PARAMS = ("data.truth", "split", "label", "campaign", "promote", "mlflow")

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
ORACLE_KEYS = (*BASELINE_KEYS, "campaign_value")  # campaign_value only when it is priced
BOOTSTRAP_RESAMPLES = 1000


def oracle_probabilities(test: pd.DataFrame, truth_path: Path | None) -> pd.Series | None:
    """The simulator's true probabilities for exactly the test rows (None without full cover)."""
    if not truth_path or not Path(truth_path).is_file():
        return None
    truth = pd.read_parquet(truth_path)
    truth["cutoff"] = pd.to_datetime(truth["cutoff"]).astype("datetime64[us]")
    truth["account_id"] = truth["account_id"].astype(str)
    rows = test[[*KEYS, LABEL]].merge(truth[[*KEYS, "p_churn"]], on=KEYS, how="left")
    covered = rows["p_churn"].notna().mean()
    if covered == 0.0:  # the truth of another data set (data.raw is not the simulator's)
        log.debug("the truth file %s covers none of the test rows: not this data's", truth_path)
        return None
    if covered < 1.0:
        log.warning(
            "the truth file covers %.1f%% of the test rows (cutoffs off the simulator's "
            "grid?); no oracle figures",
            100 * covered,
        )
        return None
    return rows["p_churn"]


def campaign_from(params: dict[str, Any]) -> Campaign:
    """The retention campaign of params.yaml, with a clear message when it is malformed.

    contact_cost, account_value and success_rate are all given (money figures) or all null
    (contact-depth curves only); a campaign set in part names the keys it lacks.
    """
    section = params.get("campaign") or {}
    if not isinstance(section, dict):
        raise UserError("params.yaml `campaign` must map contact_cost, account_value, success_rate")
    keys = ("contact_cost", "account_value", "success_rate")
    for key in keys:
        value = section.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
            raise UserError(f"campaign.{key} must be a number or null; got {value!r}")
        if value < 0:
            raise UserError(f"campaign.{key} must be >= 0; got {value!r}")
        if key == "success_rate" and value > 1:
            raise UserError(f"campaign.success_rate is a chance: between 0 and 1; got {value!r}")
    unset = [f"campaign.{k}" for k in keys if section.get(k) is None]
    if unset and len(unset) < len(keys):
        given = [f"campaign.{k}" for k in keys if section.get(k) is not None]
        raise UserError(
            f"{' and '.join(unset)} {'is' if len(unset) == 1 else 'are'} not set but "
            f"{' and '.join(given)} {'is' if len(given) == 1 else 'are'}: a campaign's value "
            "needs all three; set them all, or none for the contact-depth curves alone"
        )
    return Campaign.from_params(section)


def _curves(fn, y: np.ndarray, model: np.ndarray, baselines: dict, oracle) -> dict[str, Any]:
    return {
        "model": fn(y, model),
        "baselines": {k: fn(y, v) for k, v in baselines.items()},
        "oracle": None if oracle is None else fn(y, oracle),
    }


CURVE_METRICS = {"auc": "AUC", "pr_auc": "PR-AUC", "recall_at_10pct": "recall@10%"}


def curve_labels(metrics: dict[str, Any], metric: str) -> dict[str, str]:
    """Each curve's legend label with the metric of its own plot (ROC: AUC, precision-recall:
    PR-AUC, gains: recall at 10% contacted)."""
    short = CURVE_METRICS[metric]
    labels = dict(LABELS)
    model = model_label(metrics.get("model", {}))
    labels["model"] = f"{model} {short} {metrics['test'][metric]:.3f}"
    for name, m in metrics.get("baselines", {}).items():
        labels[name] = f"{LABELS.get(name, name)} {short} {m[metric]:.3f}"
    if "oracle" in metrics:
        labels["oracle"] = f"{LABELS['oracle']} {short} {metrics['oracle'][metric]:.3f}"
    return labels


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
    depth_cols = ["depth", "recall", "precision", "lift"]
    money = ["value"] if campaign.priced else []
    write_table(thin[depth_cols + money].round(5), plots / "campaign.csv")

    t = metrics["test"]
    draws = {
        "roc.png": lambda ax: figures.roc_panel(ax, roc, curve_labels(metrics, "auc")),
        "pr.png": lambda ax: figures.pr_panel(
            ax, pr, curve_labels(metrics, "pr_auc"), t["churn_rate"]
        ),
        "calibration.png": lambda ax: figures.calibration_panel(ax, calib, calib_raw, t["ece"]),
        "gains.png": lambda ax: figures.gains_panel(
            ax, gains, curve_labels(metrics, "recall_at_10pct")
        ),
        "campaign.png": lambda ax: figures.campaign_panel(
            ax, thin, t.get("campaign_depth"), t.get("campaign_depth_policy")
        ),
    }
    for name, draw in draws.items():
        figures.save(draw, plots / name)
    figures.save_grid(
        [*draws.values(), lambda ax: figures.risk_panel(ax, p, y)], plots / "evaluation.png"
    )


def baseline_predictions(
    frame: pd.DataFrame, folds: Folds, features: list[str], label: dict[str, Any] | None = None
) -> dict[str, np.ndarray]:
    """Each baseline fitted on the training fold only, its probabilities on the test fold
    (`label`: params.yaml's label section, for the label window of bg_nbd)."""
    label = with_defaults("label", label)
    fold = folds.fold_of(frame["cutoff"])
    train, test = frame[fold == "train"], frame[fold == "test"]
    fitted = fit_baselines(
        train,
        train[LABEL].to_numpy(),
        features,
        lead_days=int(label["lead_days"]),
        horizon_days=int(label["horizon_days"]),
    )
    return {name: b.predict_proba(test) for name, b in fitted.items()}


def compare_with_baselines(
    test: pd.DataFrame, p: np.ndarray, baselines: dict[str, np.ndarray], metrics: dict[str, Any]
) -> dict[str, dict[str, float]]:
    """Per baseline: the model's AUC minus the baseline's on the test rows, with a 95%
    interval from a paired bootstrap over accounts (models/bootstrap.py), and the PR-AUC
    difference (from `metrics`' test and baselines sections, already computed)."""
    y = test[LABEL].to_numpy()
    accounts = test["account_id"].to_numpy()
    out = {}
    for name, q in baselines.items():
        d = auc_difference(y, p, q, accounts, BOOTSTRAP_RESAMPLES)
        pr = metrics["test"]["pr_auc"] - metrics["baselines"][name]["pr_auc"]
        out[name] = {**d.as_dict(), "pr_auc_diff": float(pr)}
    return out


def write_predictions(
    test: pd.DataFrame, p: np.ndarray, baselines: dict[str, np.ndarray], path: Path
) -> None:
    """The test fold's rows: account, cutoff, label, the model's p and every baseline's."""
    rows = test[[*KEYS, LABEL]].reset_index(drop=True).copy()
    rows["cutoff"] = rows["cutoff"].dt.strftime("%Y-%m-%d")
    rows["p_model"] = p
    for name, q in baselines.items():
        rows[f"p_{name}"] = q
    write_table(rows, path)


def _score_champion(uri: str, test: pd.DataFrame, metric: str) -> float:
    champion = load_pyfunc(uri).unwrap_python_model()
    missing = missing_features(champion.features, test)
    if missing:
        raise KeyError(", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""))
    return binary_metrics(test[LABEL].to_numpy(), champion.predict_proba(test))[metric]


def promote(
    root: Path, params: dict[str, Any], info: dict[str, Any], test: pd.DataFrame, score: float
) -> Decision | None:
    """Champion/challenger on the test rows (None when the model is not in this store), against
    the champion of the data the model was trained on (its lineage, train_info's `data`)."""
    cfg, rule = params["mlflow"], with_defaults("promote", params.get("promote"))
    metric, margin = rule["metric"], float(rule["margin"])
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

    with step("fitting the baselines on the training fold"):
        p_base = baseline_predictions(frame, folds, model.features, params.get("label"))
    metrics["baselines"] = {}
    for name, p in p_base.items():
        m = binary_metrics(y_test, p)
        metrics["baselines"][name] = {k: m[k] for k in BASELINE_KEYS}
    p_oracle = oracle_probabilities(test, truth_path)
    if p_oracle is not None:
        p_oracle = p_oracle.to_numpy()
        oracle = binary_metrics(y_test, p_oracle, campaign)
        metrics["oracle"] = {k: oracle[k] for k in ORACLE_KEYS if k in oracle}
        metrics["test"]["auc_vs_oracle"] = metrics["test"]["auc"] / oracle["auc"]
        metrics["test"]["pr_auc_vs_oracle"] = metrics["test"]["pr_auc"] / oracle["pr_auc"]
    behind = [
        f"{name} ({key} {b[key]:.4f} >= {metrics['test'][key]:.4f})"
        for name, b in metrics["baselines"].items()
        for key in ("auc", "pr_auc")
        if b[key] >= metrics["test"][key]
    ]
    metrics["test"]["beats_baselines"] = int(not behind)
    with step("bootstrap intervals of the AUC differences"):
        metrics["vs_baselines"] = compare_with_baselines(test, p_test, p_base, metrics)
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
    with step("drawing the plots"):
        write_plots(plots, y_test, p_test, p_uncal, p_base, p_oracle, campaign, metrics)
    write_json(metrics, Path(reports_dir) / EVALUATION_NAME)
    write_json(headline(metrics), Path(reports_dir) / METRICS_NAME)
    write_predictions(test, p_test, p_base, Path(reports_dir) / PREDICTIONS_NAME)

    configure(root, params["mlflow"]["experiment"])
    metric = with_defaults("promote", params.get("promote"))["metric"]
    with step("champion/challenger"):
        decision = promote(root, params, info, test, metrics["test"].get(metric, float("nan")))
    if decision is not None:
        write_json(decision.as_dict(), Path(reports_dir) / PROMOTION_NAME)
    log_to_run(info, metrics, plots, decision, test, frame_dir, params["mlflow"])
    return metrics, decision
