"""How one category is drawn per row: from log-weights, cumulative rows or one vector.

Each helper takes a numpy random generator and consumes a fixed number of its draws, so the
order of the calls fixes the world (see docs/simulator.md, "Determinism").
"""

from __future__ import annotations

import numpy as np

from pipeline.simulator.constants import F32


def gumbel_argmax(rng: np.random.Generator, logw: np.ndarray) -> np.ndarray:
    """One draw per row from unnormalised log-weights (-inf = impossible)."""
    return np.argmax(logw + rng.gumbel(size=logw.shape), axis=1)


def cum_rows(w: np.ndarray) -> np.ndarray:
    """Row-cumulative probabilities of non-negative weights (n, k); the last column is 1."""
    cum = np.cumsum(w, axis=1)
    return cum / cum[:, -1:]  # x / x is exactly 1: zero-weight trailing columns stay at 1


def draw_cum(rng: np.random.Generator, cum: np.ndarray) -> np.ndarray:
    """One draw per row from row-cumulative probabilities that end at 1 (see cum_rows)."""
    u = rng.random(cum.shape[0], dtype=F32)[:, None]
    return np.minimum((cum <= u).sum(1), cum.shape[1] - 1)


def choice_rows(rng: np.random.Generator, cum: np.ndarray) -> np.ndarray:
    """One draw per row from row-cumulative probabilities cum (n, k) (np.cumsum(p, axis=1))."""
    u = rng.random(cum.shape[0])[:, None] * cum[:, -1:]
    return np.minimum((cum <= u).sum(1), cum.shape[1] - 1)


def choice(rng: np.random.Generator, p: np.ndarray, n: int) -> np.ndarray:
    """n draws from one probability vector."""
    return np.minimum(np.searchsorted(np.cumsum(p), rng.random(n), side="right"), p.size - 1)
