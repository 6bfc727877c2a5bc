"""The simulate stage: a B2B supplier's customer base, the input tables and the true churn risk.

The world is described in docs/simulator.md and built by the parts in `pipeline/simulator/`.
Every account carries a latent state (relationship health, trust, voice, supplier attention,
delivery reliability, dependency links, contact persons) that a weekly step advances for all
live accounts at once (numpy, a loop over weeks only). The observable tables are emitted from
that state each week. The ground truth at a cutoff is the churn probability in the label
window given the latent state at the cutoff, computed by Monte Carlo with the same step
function and a random stream of its own.

This module is the stage's public face: `SimConfig` (the settings), `write` (what
`churn simulate` runs: the tables and the truth to files) and `simulate` /
`simulate_with_latent` (the same world as frames, for tests and notebooks).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd
import typer

from pipeline.errors import UserError
from pipeline.progress import step
from pipeline.simulator.settings import SimConfig
from pipeline.simulator.tables import frames, latent_frame
from pipeline.simulator.world import World
from pipeline.simulator.write import write

# what this stage reads of params.yaml, and all it is given (pipeline.config.only): the same
# list as its `params:` in dvc.yaml (tests/test_architecture.py)
PARAMS = ("simulate", "label.lead_days", "label.horizon_days")

__all__ = ["SimConfig", "run", "simulate", "simulate_with_latent", "write"]

log = logging.getLogger(__name__)


def simulate_with_latent(
    config: SimConfig,
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, pd.DataFrame]:
    """Like simulate, plus a frame of each account's latent parameters and final state."""
    t0 = time.perf_counter()
    world = World(config)
    world.setup()
    world.run()
    tables, truth = frames(world)
    log.info(
        "simulated %d accounts over %d weeks in %.1fs: %s, %d truth rows",
        config.n_accounts,
        config.weeks,
        time.perf_counter() - t0,
        ", ".join(f"{k}={len(v)}" for k, v in tables.items()),
        len(truth),
    )
    return tables, truth, latent_frame(world)


def simulate(config: SimConfig) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Return ({table: frame} for accounts, orders, interactions, links, churn; truth frame)."""
    tables, truth, _ = simulate_with_latent(config)
    return tables, truth


def run(
    out: Path,
    truth: Path | None,
    accounts: int | None,
    seed: int | None,
    fmt: str | None,
    params: dict[str, Any],
) -> None:
    """`churn simulate`: write the world of params.yaml's `simulate` section (`accounts`, `seed`
    and `fmt`, csv or parquet, override it) to the folder `out`, and its ground truth to `truth`
    (None: OUT/../truth.parquet). Raises UserError (exit 2) on bad settings."""
    sim, label = params["simulate"], params["label"]  # complete: pipeline/config.py
    try:
        config = SimConfig(
            n_accounts=accounts if accounts is not None else sim["accounts"],
            seed=seed if seed is not None else sim["seed"],
            start=str(sim["start"]),
            weeks=sim["weeks"],
            lead_days=label["lead_days"],
            horizon_days=label["horizon_days"],
            mc_samples=sim["mc_samples"],
            shift_week=sim["shift_week"],
            shift_offers=sim["shift_offers"],
            shift_health=sim["shift_health"],
        )
    except (ValueError, TypeError) as exc:  # the config checks itself
        raise UserError(f"params.yaml simulate: {exc}") from None
    fmt = fmt or sim["format"]
    if fmt not in ("csv", "parquet"):
        raise UserError(f"--format must be csv or parquet, not {fmt!r}")
    started = time.perf_counter()
    with step(f"simulating {config.n_accounts:,} accounts over {config.weeks} weeks"):
        rows = write(config, out, truth or out.parent / "truth.parquet", fmt)
    counts = ", ".join(f"{name} {n}" for name, n in rows.items())
    typer.echo(
        f"simulated {config.n_accounts} accounts over {config.weeks} weeks in "
        f"{time.perf_counter() - started:.1f}s: {counts} -> {out}"
    )
