"""What the evaluate stage records: the headline figures of the test fold, the flat metrics
DVC and MLflow compare, the model version's notes, the MLflow run's figures, and the console
summary."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from models.promotion import Decision
from pipeline.artifacts import PLOT_FILES, PNG_FILES
from pipeline.figures import DEPTHS

log = logging.getLogger(__name__)


def headline(metrics: dict[str, Any]) -> dict[str, float]:
    """The numbers `dvc metrics show` and `dvc exp show` compare: test AUC, PR-AUC, Brier,
    ECE, lift at 10%, the validation AUC, and the share of the oracle's AUC (simulated data)
    and the campaign's best value (when priced) where there are such figures."""
    t = metrics["test"]
    out = {k: float(t[k]) for k in HEADLINE}
    out["valid_auc"] = float(metrics["valid"]["auc"])
    for key in ("auc_vs_oracle", "campaign_value"):
        if key in t:
            out[key] = float(t[key])
    return out


def flat_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """`section.key` (and `baselines.name.key`) numbers for MLflow."""
    flat: dict[str, float] = {}
    for section in ("test", "oracle", "uncalibrated", "baselines", "vs_baselines"):
        for key, value in metrics.get(section, {}).items():
            if isinstance(value, dict):
                flat |= {f"{section}.{key}.{k}": v for k, v in value.items()}
            elif isinstance(value, int | float):
                flat[f"{section}.{key}"] = value
    return {k: float(v) for k, v in flat.items() if v is not None and np.isfinite(v)}


def version_notes(metrics: dict[str, Any], decision: Decision | None) -> tuple[str, dict]:
    """The evaluation in words and as tags, for the registered version."""
    t = metrics["test"]
    tags = {f"test.{k}": f"{t[k]:.4f}" for k in HEADLINE}
    text = (
        f"Out-of-time test fold ({t['n']} rows): AUC {t['auc']:.4f}, PR-AUC {t['pr_auc']:.4f}, "
        f"Brier {t['brier']:.4f}, ECE {t['ece']:.4f}, lift at 10% {t['lift_at_10pct']:.2f}."
    )
    if decision is not None:
        tags["promotion.decision"] = "promoted" if decision.promote else "not promoted"
        text += f" Champion/challenger: {decision.message()}."
    return text, tags


def log_to_run(
    info: dict[str, Any],
    metrics: dict[str, Any],
    plots: Path,
    decision: Decision | None,
    test: pd.DataFrame,
    frame_dir: Path,
    cfg: dict[str, Any],
) -> None:
    """Add test, baseline and oracle metrics, plots, the test fold (an MLflow dataset) and the
    promotion to the training run; the evaluation to its registered version."""
    from models.tracking import annotate_version
    from pipeline.registry import log_dataset

    run_id = info["run_id"]
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
        log_dataset(test, frame_dir, "test")
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
    text, tags = version_notes(metrics, decision)
    with contextlib.suppress(MlflowException):  # the version is gone: the run has it all
        annotate_version(cfg["registered_model"], str(info["version"]), text, tags)


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
    for name, d in metrics.get("vs_baselines", {}).items():
        lines.append(
            f"AUC over {name}: {d['auc_diff']:+.4f} (95% interval {d['auc_diff_lo']:+.4f} to "
            f"{d['auc_diff_hi']:+.4f}, {d['clusters']} accounts resampled); PR-AUC "
            f"{d['pr_auc_diff']:+.4f}"
        )
    t = metrics["test"]
    if "auc_vs_oracle" in t:
        lines.append(f"AUC {t['auc_vs_oracle']:.1%} of the oracle's")
    if "campaign_value" in t:
        lines.append(
            f"campaign: best depth {t['campaign_depth']:.1%} worth {t['campaign_value']:,.0f}; "
            f"contacting where p x success x value > cost: {t['campaign_depth_policy']:.1%} "
            f"worth {t['campaign_value_policy']:,.0f}"
        )
    elif all(f"recall_at_{d}pct" in t for d in DEPTHS):
        # precision among the top share = its lift x the overall churn rate (same rows)
        lines.append(
            "contact depth (most at risk first): "
            + "; ".join(
                f"{d}% reaches {t[f'recall_at_{d}pct']:.1%} of churners (precision "
                f"{t[f'lift_at_{d}pct'] * t['churn_rate']:.1%}, lift {t[f'lift_at_{d}pct']:.2f})"
                for d in DEPTHS
            )
        )
    return "\n".join(lines)


HEADLINE = ("auc", "pr_auc", "brier", "ece", "lift_at_10pct")  # of the test fold
