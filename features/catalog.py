"""The feature catalog: every feature declared once, with its group, meaning, unit and direction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import ibis.expr.types as ir

GROUPS = ("silence", "dependency", "trust", "promises", "engagement")


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


# An aggregate over the events of one account before one cutoff (the table has `cutoff`
# and `age`, the event's age in days at the cutoff), or a row-level expression for derived ones.
Agg = Callable[[ir.Table, FeatureConfig], ir.Value]


@dataclass(frozen=True)
class Feature:
    """One feature: what it means, where it comes from and how it is computed."""

    name: str
    group: str
    description: str
    unit: str
    direction: str  # "higher" or "lower" values raise the risk, or "either"
    source: str  # table aggregated (orders, interactions, links, accounts) or "derived"
    expr: Agg
    requires: tuple[str, ...] = ()  # columns of `source` beyond the contract's required ones
    fill_zero: bool = False  # a count: 0 (not unknown) when the account has no such events
    inputs: tuple[str, ...] = field(default=())  # for derived features: the features used


def days_before(t: ir.Table, column: str) -> ir.FloatingValue:
    """Days from `column` to the cutoff (positive for the past)."""
    return (t.cutoff.epoch_seconds() - t[column].epoch_seconds()) / 86400.0


def within(t: ir.Table, days: int) -> ir.BooleanValue:
    """Events in the `days` before the cutoff: [cutoff - days, cutoff)."""
    return t.age <= days


def ratio(num: ir.NumericValue, den: ir.NumericValue) -> ir.FloatingValue:
    """num / den, unknown (null) when the denominator is 0 or unknown; a missing sum is 0."""
    return num.cast("float64").fill_null(0.0) / den.cast("float64").nullif(0.0)


def between(t: ir.Table, lo: int, hi: int) -> ir.BooleanValue:
    """Events aged (lo, hi] days at the cutoff: the window before a recent one."""
    return (t.age > lo) & (t.age <= hi)


def log_trend(recent: ir.NumericValue, prior: ir.NumericValue) -> ir.FloatingValue:
    """log((recent + 1) / (prior + 1)): below 0 means less than before."""
    return ((recent + 1.0) / (prior + 1.0)).ln()


def _catalog() -> tuple[Feature, ...]:
    from features import dependency, engagement, promises, silence, trust

    features = (
        *silence.FEATURES,
        *dependency.FEATURES,
        *trust.FEATURES,
        *promises.FEATURES,
        *engagement.FEATURES,
    )
    names = [f.name for f in features]
    duplicated = {n for n in names if names.count(n) > 1}
    if duplicated:  # a bug in the catalog, not user input
        raise AssertionError(f"features declared twice: {sorted(duplicated)}")
    return features


CATALOG: tuple[Feature, ...] = _catalog()


# Virtual sources, built from a table of the data: "contacts" holds one row per customer
# contact person seen before the cutoff, with the ages of its first and last interaction.
VIRTUAL = {"contacts": "interactions"}


def source_columns(columns: dict[str, list[str]]) -> dict[str, list[str]]:
    """Columns of every source, virtual ones included, from the data's tables and columns."""
    return columns | {v: columns[t] for v, t in VIRTUAL.items() if t in columns}


def available(feature: Feature, columns: dict[str, list[str]], done: set[str]) -> bool:
    """Whether the data (tables and columns present) supports `feature`."""
    if feature.source == "derived":
        return all(i in done for i in feature.inputs)
    present = columns.get(feature.source)
    return present is not None and all(c in present for c in feature.requires)


def plan(columns: dict[str, list[str]], groups: tuple[str, ...] = GROUPS) -> list[Feature]:
    """The catalog's features that the data supports, in catalog order, for `groups`."""
    columns = source_columns(columns)
    done: set[str] = set()
    chosen = []
    for feature in CATALOG:
        if feature.group in groups and available(feature, columns, done):
            chosen.append(feature)
            done.add(feature.name)
    return chosen


def left_out(columns: dict[str, list[str]]) -> dict[str, list[str]]:
    """Per group, the features the data cannot support (for the validation report)."""
    kept = {f.name for f in plan(columns)}
    out: dict[str, list[str]] = {}
    for feature in CATALOG:
        if feature.name not in kept:
            table = VIRTUAL.get(feature.source, feature.source)
            needs = (
                feature.inputs
                if feature.source == "derived"
                else ([table] + [f"{table}.{c}" for c in feature.requires])
            )
            out.setdefault(feature.group, []).append(f"{feature.name} (needs {', '.join(needs)})")
    return out
