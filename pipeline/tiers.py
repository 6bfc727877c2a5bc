"""The `score` section of params.yaml as settings, and what they decide: risk tiers (by share
of the active accounts or by probability) and the playbook's action for each leading reason."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import defaults
from pipeline.errors import UserError

log = logging.getLogger(__name__)


_SCORE = defaults("score")  # params.yaml's defaults live in pipeline/config.py only
DEFAULT_TIERS = _SCORE["tiers"]  # shares of the active accounts


# The action for the leading reason, by its group; params.yaml `score.playbook` replaces these
# key by key and adds actions keyed by feature (the lever the reason points at), which win.
DEFAULT_PLAYBOOK = {
    "silence": "call the account now: it has gone quiet",
    "promises": "review its deliveries with operations",
    "dependency": "offer an ordering terminal, EDI or a service contract",
    "trust": "an executive meeting to reset the relationship",
    "engagement": "a business review",
}


def actions(reasons_: pd.DataFrame, playbook: Mapping[str, str]) -> pd.Series:
    """The playbook's action for each row's leading reason: by its feature, else its group."""
    by_feature = reasons_["lead_feature"].map(playbook)
    return by_feature.where(by_feature.notna(), reasons_["lead_group"].map(playbook))


@dataclass(frozen=True)
class Settings:
    """The `score` section of params.yaml."""

    tiers: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TIERS))
    tiers_by: str = _SCORE["tiers_by"]  # top shares of the active accounts; or "probability"
    reason_tiers: tuple[str, ...] = tuple(_SCORE["reasons"]["tiers"])
    min_contribution: float = _SCORE["reasons"]["min_contribution"]
    playbook: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_PLAYBOOK))
    change_days: int = _SCORE["change_days"]
    psi_threshold: float = _SCORE["drift"]["psi_threshold"]
    drift_min_rows: int = _SCORE["drift"]["min_rows"]
    engine: str = _SCORE["engine"]  # or spark: features by Spark, probabilities by spark_udf
    history: str | None = _SCORE["history"]  # every run kept here (pipeline/history.py)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Settings:
        """From params.yaml's `score` section; a key it lacks takes the schema's default
        (pipeline/config.py). Raises UserError naming a wrong value."""
        base = defaults("score")
        given = {**base, **params}
        reasons_ = base["reasons"] | (params.get("reasons") or {})
        drift = base["drift"] | (params.get("drift") or {})
        settings = cls(
            tiers=dict(given["tiers"] or base["tiers"]),
            tiers_by=given["tiers_by"],
            reason_tiers=tuple(reasons_["tiers"]),
            min_contribution=float(reasons_["min_contribution"]),
            playbook={**DEFAULT_PLAYBOOK, **(given["playbook"] or {})},
            change_days=int(given["change_days"]),
            psi_threshold=float(drift["psi_threshold"]),
            drift_min_rows=int(drift["min_rows"]),
            engine=str(given["engine"]),
            history=given["history"] or None,
        )
        if settings.engine not in ("duckdb", "spark"):
            raise UserError(f"the scoring engine must be duckdb or spark; got {settings.engine!r}")
        if settings.tiers_by not in ("probability", "share"):
            raise UserError(
                f"score.tiers_by must be probability or share; got {settings.tiers_by!r}"
            )
        bad = [k for k, v in settings.tiers.items() if not 0 <= float(v) <= 1]
        if bad or not settings.tiers:
            raise UserError(
                f"score.tiers needs a value between 0 and 1 for each tier; check {bad or 'it'}"
            )
        from features.catalog import CATALOG, GROUPS

        stray = sorted(set(settings.playbook) - {*GROUPS, *(f.name for f in CATALOG)})
        if stray:
            raise UserError(
                "score.playbook keys are feature groups or feature names (docs/features.md); "
                f"unknown: {', '.join(stray)}"
            )
        unknown = sorted(set(settings.reason_tiers) - set(settings.tiers))
        if unknown:
            raise UserError(
                f"score.reasons.tiers names tiers that score.tiers lacks: {', '.join(unknown)}"
            )
        return settings


def risk_tier(p: pd.Series, tiers: Mapping[str, float]) -> pd.Series:
    """The first tier (highest threshold first) whose lower bound the probability reaches."""
    ordered = sorted(tiers.items(), key=lambda kv: kv[1], reverse=True)
    out = pd.Series(pd.NA, index=p.index, dtype="object")
    for name, lower in reversed(ordered):
        out[p >= lower] = name
    out[p.isna()] = pd.NA
    return out


def tier_bounds(population: pd.Series, settings: Settings) -> dict[str, float]:
    """Lowest probability of each tier: from params, or from top shares of the population.

    By share, `high: 0.05` means the 5% of active accounts most at risk; shares are
    cumulative (medium: 0.20 is the next 15%), and the tier with the largest share (1.0)
    takes the rest.
    """
    if settings.tiers_by == "probability":
        return {k: float(v) for k, v in settings.tiers.items()}
    p = np.sort(population.dropna().to_numpy())[::-1]
    bounds = {}
    for name, share in sorted(settings.tiers.items(), key=lambda kv: kv[1]):
        if share >= 1 or not len(p):
            bounds[name] = 0.0
        else:
            bounds[name] = float(p[max(int(np.ceil(share * len(p))) - 1, 0)])
    return bounds
