"""Paired cluster bootstrap of the difference in ROC AUC between two scores on the same rows.

Test rows are not independent: one account appears at several cutoffs. The bootstrap
resamples whole accounts (clusters) with replacement, so each resample keeps an account's rows
together, and scores both models on the same resample (paired). Each resample is a vector of
weights (how often each account was drawn), and the AUC of weighted rows is computed from one
sort of each score: the Mann-Whitney statistic with ties counted half (Hanley and McNeil 1982),
here with row weights. Interval: the percentile interval of the resampled differences (Efron
and Tibshirani 1993, ch. 13).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Difference:
    """AUC of a minus AUC of b on the same rows, with its bootstrap interval."""

    diff: float
    lo: float
    hi: float
    level: float
    resamples: int
    clusters: int

    def as_dict(self) -> dict[str, float]:
        return {
            "auc_diff": self.diff,
            "auc_diff_lo": self.lo,
            "auc_diff_hi": self.hi,
            "level": self.level,
            "resamples": self.resamples,
            "clusters": self.clusters,
        }


class _Ranked:
    """One score's order: the rows grouped by distinct score, lowest first."""

    def __init__(self, p: np.ndarray) -> None:
        _, self.group = np.unique(np.asarray(p, dtype=float), return_inverse=True)
        self.groups = int(self.group.max()) + 1 if len(self.group) else 0

    def auc(self, pos_w: np.ndarray, neg_w: np.ndarray) -> np.ndarray:
        """Weighted AUC for each row of weights (resamples x rows): P(score of a positive >
        score of a negative) + half P(equal)."""
        k, g = pos_w.shape[0], self.groups
        index = (np.arange(k)[:, None] * g + self.group[None, :]).ravel()
        pos = np.bincount(index, pos_w.ravel(), k * g).reshape(k, g)
        neg = np.bincount(index, neg_w.ravel(), k * g).reshape(k, g)
        below = np.cumsum(neg, axis=1) - neg  # negatives with a lower score
        wins = (pos * (below + 0.5 * neg)).sum(axis=1)
        total = pos.sum(axis=1) * neg.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, wins / total, np.nan)


def auc_difference(
    y: np.ndarray,
    p_a: np.ndarray,
    p_b: np.ndarray,
    clusters: np.ndarray,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    batch: int = 50,
) -> Difference:
    """AUC(p_a) - AUC(p_b) on rows (y, p_a, p_b: arrays of length n, y in {0, 1}) and its
    percentile interval from `resamples` paired resamples of whole `clusters` (a length-n
    array of cluster ids, e.g. account ids).

    Returns NaN figures when y has one class. Raises ValueError when the lengths differ.
    """
    y = np.asarray(y, dtype=float)
    n = len(y)
    if not (len(p_a) == len(p_b) == len(clusters) == n):
        raise ValueError("y, p_a, p_b and clusters must have the same length")
    _, cluster = np.unique(np.asarray(clusters), return_inverse=True)
    m = int(cluster.max()) + 1 if n else 0
    a, b = _Ranked(p_a), _Ranked(p_b)
    ones = np.ones((1, n))
    point = a.auc(ones * y, ones * (1 - y)) - b.auc(ones * y, ones * (1 - y))
    if n == 0 or y.min() == y.max():
        nan = float("nan")
        return Difference(nan, nan, nan, level, 0, m)
    rng = np.random.default_rng(seed)
    diffs = []
    for start in range(0, resamples, batch):
        k = min(batch, resamples - start)
        drawn = rng.multinomial(m, np.full(m, 1.0 / m), size=k)  # k x clusters
        w = drawn[:, cluster].astype(float)  # k x rows
        diffs.append(a.auc(w * y, w * (1 - y)) - b.auc(w * y, w * (1 - y)))
    d = np.concatenate(diffs)
    d = d[np.isfinite(d)]
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(d, [tail, 100 - tail]) if len(d) else (np.nan, np.nan)
    return Difference(float(point[0]), float(lo), float(hi), level, int(len(d)), m)
