"""SimConfig: the size, clock, truth and regime-shift settings of one simulated world."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.config import defaults
from pipeline.simulator.dynamics import CURVES, DYN, Dynamics, shifted

# params.yaml's defaults live in pipeline/config.py only
_SIM, _LABEL = defaults("simulate"), defaults("label")


@dataclass(frozen=True)
class SimConfig:
    """Size, clock and truth settings of a simulated world."""

    n_accounts: int = _SIM["accounts"]  # accounts at start + arrivals over the period, total
    seed: int = _SIM["seed"]
    start: str = _SIM["start"]  # a Monday; simulation clock is weekly from here
    weeks: int = _SIM["weeks"]  # ~3 years
    lead_days: int = _LABEL["lead_days"]  # label window: [c + lead_days, c + lead + horizon)
    horizon_days: int = _LABEL["horizon_days"]
    truth_every_days: int = 7  # truth cutoffs: start + k*truth_every_days (a multiple of 7)
    mc_samples: int = _SIM["mc_samples"]  # Monte Carlo replicates per account; 0 = no truth
    # A regime shift (a test bench for monitoring): from week `shift_week` on, competitors get
    # aggressive: their offers come `shift_offers` times as often and are taken by accounts
    # below health `shift_health` (0.35 before). None: the dynamics never change.
    shift_week: int | None = _SIM["shift_week"]
    shift_offers: float = _SIM["shift_offers"]
    shift_health: float = _SIM["shift_health"]

    def __post_init__(self) -> None:
        """Reject settings the simulator cannot honour."""
        if self.n_accounts < 1 or not 1 <= self.weeks <= 3500:
            raise ValueError(
                "SimConfig: n_accounts must be at least 1 and weeks from 1 to 3500 (event "
                "times are held as 32-bit seconds)"
            )
        if self.truth_every_days < 7 or self.truth_every_days % 7:
            raise ValueError(
                f"SimConfig.truth_every_days={self.truth_every_days}: must be a positive "
                "multiple of 7 (the simulation clock is weekly)"
            )
        if self.lead_days < 0 or self.horizon_days < 1 or self.mc_samples < 0:
            raise ValueError("SimConfig: need lead_days >= 0, horizon_days >= 1, mc_samples >= 0")
        if self.shift_week is not None and (
            self.shift_week < 0 or self.shift_offers <= 0 or not 0 < self.shift_health < 1
        ):
            raise ValueError(
                "SimConfig: need shift_week >= 0, shift_offers > 0 and 0 < shift_health < 1"
            )
        pd.Timestamp(self.start)  # raises on a malformed date

    def regime(self, week: int) -> tuple[Dynamics, dict[str, np.ndarray]]:
        """The dynamics in force in `week` and their tabulated curves."""
        if self.shift_week is None or week < self.shift_week:
            return DYN, CURVES
        return shifted(self.shift_offers, self.shift_health)
