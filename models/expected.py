"""Performance expected from calibrated probabilities before the labels arrive.

When a score's label window has not closed, its own calibrated probabilities say what to
expect: each account churns with probability p, independently, so the expected churners are
the sum of p, and the expected AUC is the AUC over label draws from those probabilities. This
is confidence-based performance estimation (NannyML's CBPE: M. Baran et al., "Estimating
model performance without labels", NannyML documentation, 2022), which holds as long as the
model stays calibrated on the new population.
"""

from __future__ import annotations

import numpy as np


def expected_auc(p: np.ndarray) -> float:
    """The AUC expected when each row's label is drawn from its own probability p.

    The ratio of the expected numbers of correctly ordered pairs (ties count half) and of
    (churner, non-churner) pairs: sum_{i != j} p_i (1 - p_j) [s_i > s_j + 0.5 s_i = s_j] /
    sum_{i != j} p_i (1 - p_j), with the score s = p. O(n log n); NaN with fewer than two rows
    or when every p is 0 or every p is 1 (no pair can be formed).
    """
    p = np.asarray(p, dtype="float64")
    p = p[np.isfinite(p)]
    if len(p) < 2:
        return float("nan")
    values, inverse = np.unique(p, return_inverse=True)  # ascending distinct scores
    pos = np.bincount(inverse, weights=p)  # expected churners at each score
    neg = np.bincount(inverse, weights=1.0 - p)
    self_pairs = np.bincount(inverse, weights=p * (1.0 - p))  # i paired with itself
    below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])  # non-churners with a lower score
    ordered = np.sum(pos * below) + 0.5 * np.sum(pos * neg - self_pairs)
    pairs = pos.sum() * neg.sum() - self_pairs.sum()
    return float(ordered / pairs) if pairs > 0 else float("nan")


def expected_auc_interval(
    p: np.ndarray, draws: int = 200, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """The central `level` interval of the AUC over `draws` label draws from p (the spread a
    calibrated model's realized AUC has on these rows by chance alone)."""
    from sklearn.metrics import roc_auc_score

    p = np.asarray(p, dtype="float64")
    p = p[np.isfinite(p)]
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(draws):
        y = rng.random(len(p)) < p
        if 0 < y.sum() < len(y):
            aucs.append(roc_auc_score(y, p))
    if not aucs:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(aucs, [tail, 100 - tail])
    return float(lo), float(hi)
