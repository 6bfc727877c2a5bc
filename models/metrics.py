"""Evaluation metrics for churn scores (probabilities against 0/1 labels)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
    roc_curve,
)


def lift_at(y: np.ndarray, p: np.ndarray, share: float) -> float:
    """Churn rate among the top `share` of accounts by score, over the overall churn rate."""
    y = np.asarray(y, dtype=float)
    n_top = max(1, int(np.ceil(share * len(y))))
    # Stable sort on the negated score: ties keep input order, so the result is deterministic.
    top = np.argsort(-np.asarray(p, dtype=float), kind="stable")[:n_top]
    base = y.mean()
    return float(y[top].mean() / base) if base > 0 else float("nan")


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """AUC, PR-AUC, Brier, log loss, lift at the top 10 %, row count and churn rate."""
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-7, 1 - 1e-7)
    both = len(np.unique(y)) == 2
    return {
        "auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "lift_at_10pct": lift_at(y, p, 0.10),
        "n": int(len(y)),
        "churn_rate": float(y.mean()) if len(y) else float("nan"),
    }


def roc_points(y: np.ndarray, p: np.ndarray, max_points: int = 200) -> pd.DataFrame:
    """The ROC curve thinned to at most `max_points` points (for DVC plots)."""
    fpr, tpr, _ = roc_curve(y, p)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(max_points, len(fpr))).round().astype(int))
    return pd.DataFrame({"fpr": fpr[keep].round(5), "tpr": tpr[keep].round(5)})


def calibration_bins(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Mean predicted against observed churn rate in equal-frequency bins of the score."""
    frame = pd.DataFrame({"y": np.asarray(y, dtype=float), "p": np.asarray(p, dtype=float)})
    frame["bin"] = pd.qcut(frame["p"].rank(method="first"), bins, labels=False)
    out = frame.groupby("bin").agg(predicted=("p", "mean"), observed=("y", "mean"), n=("y", "size"))
    return out.reset_index().round(5)
