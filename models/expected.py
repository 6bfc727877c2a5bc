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
    calibrated model's realized AUC has on these rows by chance alone). Each draw's AUC is the
    Mann-Whitney statistic from the ranks of p (ties at their mean rank), as roc_auc_score
    gives it; draws with one class only are left out; NaN, NaN when none is left."""
    from scipy.stats import rankdata

    p = np.asarray(p, dtype="float64")
    p = p[np.isfinite(p)]
    n = len(p)
    rng = np.random.default_rng(seed)
    ranks = rankdata(p)
    aucs = []
    chunk = max(1, min(draws, 20_000_000 // max(n, 1)))  # bounds the label matrix's memory
    for start in range(0, draws, chunk):
        y = rng.random((min(chunk, draws - start), n)) < p
        pos = y.sum(axis=1)
        ok = (pos > 0) & (pos < n)
        rank_sum = y[ok].astype("float64") @ ranks
        pos = pos[ok].astype("float64")
        aucs.extend((rank_sum - pos * (pos + 1) / 2) / (pos * (n - pos)))
    if not aucs:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(aucs, [tail, 100 - tail])
    return float(lo), float(hi)


# Quantiles of the test fold's bootstrap kept with the model (models/expected.py `envelope`):
# enough for central intervals at 90%, 95% and 99%.
QUANTILES = (0.005, 0.025, 0.05, 0.95, 0.975, 0.995)


def envelope(
    y: np.ndarray, p: np.ndarray, cutoffs: np.ndarray, draws: int = 400, seed: int = 0
) -> dict:
    """What one score run of a model should show if the world stays as in its test fold.

    `y` (0/1), `p` (calibrated probabilities) and `cutoffs` are the test fold's rows, shape
    (n,) each. A score run holds the accounts of one as-of date, so the test rows are
    resampled at the size of one cutoff, m (the median rows per test cutoff): the m-out-of-n
    bootstrap (P. Bickel, F. Goetze, W. van Zwet, "Resampling fewer than n observations",
    Statistica Sinica 7, 1997). For each draw the AUC and the calibration ratio
    observed / expected churners (sum y / sum p) are taken; the result holds the test fold's
    own values, m, the fold's rows N and the draws' quantiles (QUANTILES). For a run of n rows
    the interval is scaled about the test value (`interval`). Raises ValueError when the fold
    has one class only.
    """
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype="float64")
    if y.min(initial=1) == y.max(initial=0):
        raise ValueError("envelope: the test fold needs churners and non-churners")
    m = int(np.median(np.unique(np.asarray(cutoffs), return_counts=True)[1]))
    rng = np.random.default_rng(seed)
    auc, ratio = [], []
    for _ in range(draws):
        i = rng.integers(0, len(y), m)
        yi, pi = y[i], p[i]
        if 0 < yi.sum() < m:
            auc.append(roc_auc_score(yi, pi))
            ratio.append(yi.sum() / pi.sum())
    return {
        "rows": m,
        "test_rows": int(len(y)),
        "draws": len(auc),
        "auc": float(roc_auc_score(y, p)),
        "observed_over_expected": float(y.sum() / p.sum()),
        "quantiles": list(QUANTILES),
        "auc_quantiles": [float(v) for v in np.quantile(auc, QUANTILES)],
        "observed_over_expected_quantiles": [float(v) for v in np.quantile(ratio, QUANTILES)],
    }


def interval(
    env: dict, metric: str, level: float, rows: int, centre: float | None = None
) -> tuple[float, float]:
    """The central `level` interval of `metric` ("auc" or "observed_over_expected") that the
    model's test fold gives a run of `rows` rows, if the world has not changed.

    The bootstrap's interval at the fold's run size m, about the test value, its half-widths
    scaled by sqrt(m / rows + m / N): a metric's standard error goes as 1 / sqrt(rows), and
    the run's value and the fold's own estimate (N rows) both carry chance, so their
    difference has the variance of both. With a `centre` (a value the model promises, such as
    1 for observed / expected churners of a calibrated model, rather than one the fold
    estimated) the same half-widths, scaled by sqrt(m / rows), are taken about it. Raises
    ValueError for a level whose quantiles the envelope does not hold."""
    tail = round((1 - level) / 2, 4)
    qs = [round(q, 4) for q in env["quantiles"]]
    if tail not in qs or round(1 - tail, 4) not in qs:
        raise ValueError(f"level {level}: the envelope holds intervals at 0.90, 0.95 and 0.99")
    values = env[f"{metric}_quantiles"]
    lo, hi = values[qs.index(tail)], values[qs.index(round(1 - tail, 4))]
    estimate, m = env[metric], env["rows"]
    scale = m / max(int(rows), 1) + (m / env["test_rows"] if centre is None else 0.0)
    below, above = (estimate - lo) * np.sqrt(scale), (hi - estimate) * np.sqrt(scale)
    centre = estimate if centre is None else centre
    return float(centre - below), float(centre + above)
