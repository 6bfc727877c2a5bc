"""The feature catalog: every feature declared once, with its group, meaning, unit and direction.

A feature is computed at a cutoff from facts dated strictly before it. Most features are
combinations of a few windowed aggregates (`Agg`) over an account's events of one stream
(orders by order date, orders by promised date, interactions, ...). Declaring the aggregates
rather than a query lets one definition run two ways (features/build.py): a join of the events
to each cutoff (best for one cutoff), or window functions over each account's time line that
evaluate a whole snapshot schedule in one pass over the events.
"""

from __future__ import annotations

from features import dependency, engagement, promises, silence, trust
from features.language import Feature

GROUPS = ("silence", "dependency", "trust", "promises", "engagement")


def _catalog() -> tuple[Feature, ...]:
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


def available(feature: Feature, columns: dict[str, list[str]], done: set[str]) -> bool:
    """Whether the data (tables and columns present) supports `feature`."""
    if feature.source == "derived":
        return all(i in done for i in feature.inputs)
    present = columns.get(feature.source)
    return present is not None and all(c in present for c in feature.requires)


def plan(columns: dict[str, list[str]], groups: tuple[str, ...] = GROUPS) -> list[Feature]:
    """The catalog's features that the data supports, in catalog order, for `groups`."""
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
            table = feature.source
            needs = (
                feature.inputs
                if feature.source == "derived"
                else ([table] + [f"{table}.{c}" for c in feature.requires])
            )
            out.setdefault(feature.group, []).append(f"{feature.name} (needs {', '.join(needs)})")
    return out
