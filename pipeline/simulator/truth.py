"""The ground truth: each account's churn probability in the label window, by Monte Carlo.

At a cutoff, every eligible account's latent state is copied `samples` times and run forward
with the world's own weekly step (`dynamics.step`) and a random stream of its own (spawned
from the seed, the cutoff and the batch), so the truth never disturbs the world's draws and
does not depend on how many threads compute it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pipeline.simulator.constants import NEVER
from pipeline.simulator.dynamics import CURVES, DYN, Dynamics, Latent, step

_MC_ROWS = 1 << 18  # replicate rows per Monte Carlo batch (fits in cache, bounds memory)
_MC_KEY = 0x7472  # spawn key of the truth's random streams


def truth_probs(
    sub: Latent,
    week0: int,
    samples: int,
    lead: int,
    horizon: int,
    seed: int,
    key: int,
    regime: Callable[[int], tuple[Dynamics, dict[str, np.ndarray]]] | None = None,
) -> np.ndarray:
    """P(churn in [lead, lead+horizon) days | alive at lead) for each row, by Monte Carlo,
    under the dynamics `regime(week)` gives for each week (SimConfig.regime)."""
    n_weeks = -(-(lead + horizon) // 7)
    n = sub.h.size
    out = np.empty(n)
    per = max(1, _MC_ROWS // samples)
    for b, c0 in enumerate(range(0, n, per)):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_MC_KEY, key, b)))
        rows = np.arange(c0, min(n, c0 + per))
        rep = sub.take(rows).repeat(samples)
        day = np.full(rep.h.size, NEVER, np.int64)
        for j in range(n_weeks):
            o = step(rep, week0 + j, rng, *(regime(week0 + j) if regime else (DYN, CURVES)))
            r = o.churn_rows
            first = day[r] == NEVER
            day[r[first]] = 7 * j + o.churn_day[first]
        d = day.reshape(rows.size, samples)
        alive = samples - (d < lead).sum(1)
        hit = ((d >= lead) & (d < lead + horizon)).sum(1)
        # if no replicate lives to the window start the account is on its way out: p = 1
        out[rows] = np.where(alive > 0, hit / np.maximum(alive, 1), 1.0)
    return out
