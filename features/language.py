"""The feature language: windows (FeatureConfig), aggregates over a stream of events (`Agg`,
made by count, total, mean, distinct, last and first), and features that combine them
(`Feature`), with the helpers their formulas share (since, ratio, ln, log_trend,
rate_vs_history, known_if).

The five groups (silence.py, dependency.py, trust.py, promises.py, engagement.py) declare their
features in this language; features/catalog.py collects them; features/build.py runs them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir


@dataclass(frozen=True)
class FeatureConfig:
    """Windows and vocabularies the features use (from params.yaml `features`)."""

    recent_days: int = 90
    long_days: int = 365
    direct_channels: tuple[str, ...] = ("ordering_terminal", "edi", "portal", "vmi")
    transactional_types: tuple[str, ...] = ("price_negotiation", "contract_negotiation", "dispute")
    collaborative_types: tuple[str, ...] = (
        "planning_meeting",
        "design_collaboration",
        "business_review",
    )
    sharing_types: tuple[str, ...] = ("forecast_shared", "planning_meeting", "design_collaboration")
    contract_link_types: tuple[str, ...] = ("service_contract", "maintenance_contract")
    engineering_departments: tuple[str, ...] = ("engineering", "manufacturing")
    sales_departments: tuple[str, ...] = ("sales", "management")
    service_departments: tuple[str, ...] = ("service", "quality")

    @classmethod
    def from_params(cls, params: dict) -> FeatureConfig:
        """Build from the `features` section of params.yaml (lists become tuples)."""
        known = {
            k: tuple(v) if isinstance(v, list) else v
            for k, v in params.items()
            if k in cls.__dataclass_fields__
        }
        return cls(**known)

    def window(self, name: str | tuple[int, int | None]) -> tuple[int, int | None]:
        """(lo, hi): events aged more than `lo` and at most `hi` whole days (hi None: all)."""
        if not isinstance(name, str):
            return name
        r, long = self.recent_days, self.long_days
        return {
            "all": (0, None),
            "recent": (0, r),
            "prior": (r, 2 * r),
            "two_recent": (0, 2 * r),
            "before_recent": (r, None),
            "long": (0, long),
        }[name]


# Where a row of an event stream is placed in time, and which rows it holds: see
# features/streams.py STREAMS. Streams marked there as `join_only` may use the cutoff itself in
# their conditions (a link is active at the cutoff if it had not ended before it).
Cond = Callable[[ir.Table, FeatureConfig], ir.BooleanValue]


@dataclass(frozen=True)
class Agg:
    """An aggregate over one account's events of a stream in a window before the cutoff.

    `window` is a name from FeatureConfig.window or (lo, hi): events dated in
    [cutoff - hi days, cutoff - lo days), by whole days; hi None reaches back to the start.
    """

    kind: str  # count, sum, mean, max, min, nunique
    stream: str
    window: str | tuple[int, int | None] = "all"
    where: Cond | None = None
    value: Callable[[ir.Table], ir.Value] | None = None  # the column aggregated (not count)


def count(stream: str, window: Any = "all", where: Cond | None = None) -> Agg:
    return Agg("count", stream, window, where)


def total(stream: str, value, window: Any = "all", where: Cond | None = None) -> Agg:
    return Agg("sum", stream, window, where, value)


def mean(stream: str, value, window: Any = "all", where: Cond | None = None) -> Agg:
    return Agg("mean", stream, window, where, value)


def distinct(stream: str, value, window: Any = "all", where: Cond | None = None) -> Agg:
    return Agg("nunique", stream, window, where, value)


def last(stream: str, where: Cond | None = None) -> Agg:
    """The time of the latest event before the cutoff (epoch seconds)."""
    return Agg("max", stream, "all", where, lambda t: t._epoch)


def first(stream: str, where: Cond | None = None) -> Agg:
    """The time of the earliest event before the cutoff (epoch seconds)."""
    return Agg("min", stream, "all", where, lambda t: t._epoch)


# How a feature's value follows from its aggregates (`a.<key>`, plus `a.cutoff_epoch`), or for
# a derived feature from other features of the same row.
Combine = Callable[[Any, FeatureConfig], ir.Value]


@dataclass(frozen=True)
class Feature:
    """One feature: what it means, where it comes from and how it is computed."""

    name: str
    group: str
    description: str
    unit: str
    direction: str  # "higher" or "lower" values raise the risk, or "either"
    source: str  # the table it needs (orders, interactions, links, accounts) or "derived"
    expr: Combine
    requires: tuple[str, ...] = ()  # columns of `source` beyond the contract's required ones
    fill_zero: bool = False  # a count: 0 (not unknown) when the account has no such events
    inputs: tuple[str, ...] = ()  # for derived features: the features used
    aggs: dict[str, Agg] = field(default_factory=dict)  # for the others: the aggregates used
    # its value drifts upward as the data's history lengthens, whatever the customers do
    grows_with_history: bool = False

    def describe(self) -> dict[str, Any]:
        """The feature's declaration as plain data (for MLflow and the docs)."""
        return {
            "name": self.name,
            "group": self.group,
            "description": self.description,
            "unit": self.unit,
            "direction": self.direction,
            "source": self.source,
            "requires": list(self.requires),
            "inputs": list(self.inputs),
            "grows_with_history": self.grows_with_history,
        }


def since(a: Any, epoch: ir.NumericValue) -> ir.FloatingValue:
    """Days from a time (epoch seconds) to the cutoff."""
    return (a.cutoff_epoch - epoch) / 86400.0


def ratio(num: ir.NumericValue, den: ir.NumericValue) -> ir.FloatingValue:
    """num / den, unknown (null) when the denominator is 0 or unknown; a missing sum is 0."""
    return num.cast("float64").fill_null(0.0) / den.cast("float64").nullif(0.0)


def ln(x: ir.NumericValue) -> ir.FloatingValue:
    """The natural log of x, unknown (null) where x is not above 0: total on every engine
    (DuckDB raises on ln(0), and computes a value even for rows a condition leaves out)."""
    return ibis.ifelse(x > 0, x.cast("float64"), ibis.null("float64")).ln()


def log_trend(recent: ir.NumericValue, prior: ir.NumericValue) -> ir.FloatingValue:
    """log((recent + 1) / (prior + 1)): below 0 means less than before."""
    return ln(ratio(recent + 1.0, prior + 1.0))


def rate_vs_history(a: Any, c: FeatureConfig) -> ir.FloatingValue:
    """A rate a day in the recent window over the account's own rate in its history before it.

    Needs the aggregates `recent` and `before` (amounts in the recent window and before it) and
    `first` (the time history starts); unknown without history before the recent window.
    """
    history = ibis.greatest(since(a, a.first) - c.recent_days, 0.0)
    return ratio(a.recent / c.recent_days, ratio(a.before, history))


def known_if(flag: ir.BooleanValue, value: ir.Value) -> ir.Value:
    """`value` where `flag` holds, else unknown (null)."""
    return ibis.ifelse(flag, value, ibis.null(value.type()))
