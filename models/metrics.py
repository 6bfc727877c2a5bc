"""Evaluation metrics for churn scores (probabilities against 0/1 labels)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

TOP_SHARES = (0.05, 0.10, 0.20)


def _ranked(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Labels ordered by score, highest first; ties keep input order (deterministic)."""
    order = np.argsort(-np.asarray(p, dtype=float), kind="stable")
    return np.asarray(y, dtype=float)[order]


def _n_top(n: int, share: float) -> int:
    """Rows in the top `share` of n, rounded up (0.1 of 10 is 1 row, not 2 by float noise)."""
    return max(1, int(np.ceil(round(share * n, 9))))


def lift_at(y: np.ndarray, p: np.ndarray, share: float) -> float:
    """Churn rate among the top `share` of accounts by score, over the overall churn rate."""
    ranked = _ranked(y, p)
    base = ranked.mean() if len(ranked) else float("nan")
    top = ranked[: _n_top(len(ranked), share)]
    return float(top.mean() / base) if base > 0 else float("nan")


def recall_at(y: np.ndarray, p: np.ndarray, share: float) -> float:
    """Share of all churners found among the top `share` of accounts by score."""
    ranked = _ranked(y, p)
    total = ranked.sum()
    return float(ranked[: _n_top(len(ranked), share)].sum() / total) if total > 0 else float("nan")


def equal_frequency_bins(p: np.ndarray, bins: int = 10) -> np.ndarray:
    """Bin index (0..bins-1) of each score in equal-size bins by rank (ties split by order)."""
    p = np.asarray(p, dtype=float)
    n = len(p)
    if n == 0:
        return np.zeros(0, dtype=int)
    ranks = np.empty(n, dtype=int)
    ranks[np.argsort(p, kind="stable")] = np.arange(n)
    return (ranks * min(bins, n)) // n


def ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: sum over equal-frequency bins of share * |mean p - rate|."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    if len(y) == 0:
        return float("nan")
    b = equal_frequency_bins(p, bins)
    k = b.max() + 1
    n = np.bincount(b, minlength=k)
    gap = np.abs(np.bincount(b, p, minlength=k) - np.bincount(b, y, minlength=k))
    return float(gap.sum() / n.sum())


@dataclass(frozen=True)
class Campaign:
    """A retention campaign: cost to contact one account, value of keeping one, success chance.

    All three are the user's (params.yaml `campaign`); without them (None) the campaign is
    unpriced and only the contact-depth curves (recall, precision, lift) are reported.
    """

    contact_cost: float | None = None
    account_value: float | None = None
    success_rate: float | None = None

    @classmethod
    def from_params(cls, params: dict) -> Campaign:
        """From params.yaml `campaign` (missing or null keys stay None)."""
        return cls(
            *(
                None if params.get(key) is None else float(params[key])
                for key in ("contact_cost", "account_value", "success_rate")
            )
        )

    @property
    def priced(self) -> bool:
        """True when the money figures can be worked out: cost, value and success chance set."""
        return None not in (self.contact_cost, self.account_value, self.success_rate)


def depth_curve(y: np.ndarray, p: np.ndarray) -> pd.DataFrame:
    """Contacting the top k accounts by score, for every k (0..n): who is reached, no money.

    `depth` is k / n, `recall` the share of all churners among the top k, `precision` the churn
    rate among them and `lift` that rate over the overall one (both undefined, NaN, at k = 0).
    """
    ranked = _ranked(y, p)
    k = np.arange(len(ranked) + 1)
    churners = np.concatenate([[0.0], np.cumsum(ranked)])
    total, n = churners[-1], max(len(ranked), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(k > 0, churners / np.maximum(k, 1), np.nan)
        recall = churners / total if total > 0 else np.full(len(k), np.nan)
        lift = precision / (total / n) if total > 0 else np.full(len(k), np.nan)
    return pd.DataFrame(
        {
            "contacted": k,
            "depth": k / n,
            "churners": churners,
            "recall": recall,
            "precision": precision,
            "lift": lift,
        }
    )


def campaign_curve(y: np.ndarray, p: np.ndarray, campaign: Campaign) -> pd.DataFrame:
    """The depth curve, and when the campaign is priced the expected value of each depth.

    value(k) = churners among the top k * success rate * account value - k * contact cost:
    each contacted churner is kept with the campaign's success chance, every contact costs.
    """
    curve = depth_curve(y, p)
    if campaign.priced:
        curve["value"] = (
            curve["churners"] * campaign.success_rate * campaign.account_value
            - curve["contacted"] * campaign.contact_cost
        )
    return curve


def campaign_metrics(y: np.ndarray, p: np.ndarray, campaign: Campaign) -> dict[str, float]:
    """Best contact depth and its value; and the depth the calibrated scores themselves pick.

    `campaign_value` is the expected value at the best depth on these labels (what the ranking
    is worth); `campaign_value_policy` is the value when contacting every account whose
    expected saving p * success * value exceeds the contact cost (no hindsight). An unpriced
    campaign has no such figures: {}.
    """
    if not campaign.priced:
        return {}
    curve = campaign_curve(y, p, campaign)
    best = int(curve["value"].to_numpy().argmax())  # first maximum: the shallowest best depth
    worth = np.asarray(p, dtype=float) * campaign.success_rate * campaign.account_value
    policy = int((worth > campaign.contact_cost).sum())
    return {
        "campaign_value": float(curve["value"].iloc[best]),
        "campaign_depth": float(curve["depth"].iloc[best]),
        "campaign_value_policy": float(curve["value"].iloc[policy]),
        "campaign_depth_policy": float(curve["depth"].iloc[policy]),
    }


def binary_metrics(
    y: np.ndarray, p: np.ndarray, campaign: Campaign | None = None
) -> dict[str, float]:
    """AUC, PR-AUC, Brier, log loss, ECE, lift and recall at the top, counts; and the campaign
    value when `campaign` is priced (no money keys at all when it is not)."""
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-7, 1 - 1e-7)
    both = len(np.unique(y)) == 2
    out = {
        "auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "ece": ece(y, p),
    }
    for share in TOP_SHARES:
        out[f"lift_at_{round(share * 100)}pct"] = lift_at(y, p, share)
    out["recall_at_10pct"] = recall_at(y, p, 0.10)
    out["recall_at_5pct"] = recall_at(y, p, 0.05)
    out["recall_at_20pct"] = recall_at(y, p, 0.20)
    if campaign is not None:
        out |= campaign_metrics(y, p, campaign)
    out["n"] = int(len(y))
    out["churn_rate"] = float(y.mean()) if len(y) else float("nan")
    return out


def _thin(frame: pd.DataFrame, max_points: int) -> pd.DataFrame:
    keep = np.unique(np.linspace(0, len(frame) - 1, min(max_points, len(frame))).round())
    return frame.iloc[keep.astype(int)].reset_index(drop=True)


def roc_points(y: np.ndarray, p: np.ndarray, max_points: int = 200) -> pd.DataFrame:
    """The ROC curve thinned to at most `max_points` points (for DVC plots)."""
    fpr, tpr, _ = roc_curve(y, p)
    return _thin(pd.DataFrame({"fpr": fpr, "tpr": tpr}), max_points).round(5)


def pr_points(y: np.ndarray, p: np.ndarray, max_points: int = 200) -> pd.DataFrame:
    """The precision-recall curve (recall rising) thinned to at most `max_points` points."""
    precision, recall, _ = precision_recall_curve(y, p)
    frame = pd.DataFrame({"recall": recall[::-1], "precision": precision[::-1]})
    return _thin(frame, max_points).round(5)


def gains_points(y: np.ndarray, p: np.ndarray, max_points: int = 101) -> pd.DataFrame:
    """Cumulative gains: share of churners found against the share of accounts contacted."""
    ranked = _ranked(y, p)
    n, total = len(ranked), max(ranked.sum(), 1.0)
    frame = pd.DataFrame(
        {
            "contacted": np.arange(n + 1) / max(n, 1),
            "churners_found": np.concatenate([[0.0], np.cumsum(ranked)]) / total,
        }
    )
    return _thin(frame, max_points).round(5)


def calibration_bins(
    y: np.ndarray, p: np.ndarray, bins: int = 10, top: tuple[float, ...] = (0.05, 0.01)
) -> pd.DataFrame:
    """Mean predicted against observed churn rate in equal-frequency bins of the score, the
    top bin split further at the `top` shares (the 5% and 1% most at risk), so that the
    reliability plot reaches the highest probabilities, where the high tier is."""
    p = np.asarray(p, dtype=float)
    frame = pd.DataFrame({"y": np.asarray(y, dtype=float), "p": p})
    n = len(p)
    ranks = np.empty(n, dtype=int)
    ranks[np.argsort(p, kind="stable")] = np.arange(n)
    shares = [*np.linspace(0, 1, bins + 1)[:-1], *(1 - np.asarray(top))]
    starts = np.unique(np.round(np.asarray(shares) * n).astype(int))  # first rank of each bin
    frame["bin"] = np.searchsorted(starts, ranks, side="right") - 1
    out = frame.groupby("bin").agg(predicted=("p", "mean"), observed=("y", "mean"), n=("y", "size"))
    out.index = np.arange(len(out))
    return out.rename_axis("bin").reset_index().round(5)
