"""Promises: sales makes them, manufacturing and service keep or break them.

Point in time: an order promised before the cutoff is known late at the cutoff if it was not
delivered by its promised date, even when it is delivered later; lateness counts up to the cutoff.
Service keeps its promises by resolving complaints, service requests and repairs: how long that
takes (on a log scale, as resolution times are skewed) and how many are never resolved.
"""

from __future__ import annotations

import ibis

from features.language import Agg, Feature, count, known_if, mean, ratio

G = "promises"
NEEDS = ("promised_date", "delivered_date")
RESOLVABLE = ("complaint", "service_request", "repair")


def _late(t, c):
    """Not delivered by the promised date: known at any cutoff after the promised date."""
    return t.delivered_date.isnull() | (t.delivered_date > t.promised_date)


def _lateness_days(t):
    """Days late as known at the cutoff, for an order that is late (stream orders_late)."""
    seen = ibis.least(ibis.coalesce(t.delivered_date, t.cutoff), t.cutoff)
    return (seen.epoch_seconds() - t.promised_date.epoch_seconds()) / 86400.0


def _lateness(kind: str, window: str) -> Agg:
    return Agg(kind, "orders_late", window, None, _lateness_days)


def _mean_lateness(a, window: str):
    """Mean days late of the orders due in `window` (0 for orders on time)."""
    return ratio(getattr(a, f"late_{window}"), getattr(a, f"due_{window}"))


def _lateness_trend(a, c):
    """Mean lateness of orders due in the recent window minus that of the window before."""
    return _mean_lateness(a, "recent") - _mean_lateness(a, "prior")


def _resolvable(t, c):
    return t.type.isin(RESOLVABLE)


def _log_resolution_hours(t):
    """ln of the hours from an interaction to its resolution (at least a minute)."""
    seconds = t.resolved_at.epoch_seconds() - t.occurred_at.epoch_seconds()
    return (ibis.greatest(seconds, 60) / 3600.0).ln()


def _resolution(window: str) -> dict[str, Agg]:
    """Mean log hours to resolve the resolvable interactions resolved in `window`."""
    return {"v": mean("resolutions", _log_resolution_hours, window, _resolvable)}


FEATURES = (
    Feature(
        "on_time_rate_long", G,
        "Share of orders due in the long window that were delivered by the promised date.",
        "share", "lower", "orders",
        lambda a, c: 1.0 - ratio(a.late, a.due),
        requires=NEEDS,
        aggs={"late": count("orders_due", "long", _late), "due": count("orders_due", "long")},
    ),
    Feature(
        "mean_lateness_days_long", G,
        "Mean days late of orders due in the long window (0 for orders on time).",
        "days", "higher", "orders",
        lambda a, c: _mean_lateness(a, "long"),
        requires=NEEDS,
        aggs={"late_long": _lateness("sum", "long"), "due_long": count("orders_due", "long")},
    ),
    Feature(
        "worst_lateness_days_long", G,
        "Days late of the latest order due in the long window.",
        "days", "higher", "orders",
        lambda a, c: known_if(a.due > 0, a.worst.fill_null(0.0)),
        requires=NEEDS,
        aggs={"worst": _lateness("max", "long"), "due": count("orders_due", "long")},
    ),
    Feature(
        "broken_promises_recent", G,
        "Orders due in the recent window that missed their promised date.",
        "count", "higher", "orders",
        lambda a, c: a.n,
        requires=NEEDS, fill_zero=True,
        aggs={"n": count("orders_due", "recent", _late)},
    ),
    Feature(
        "broken_promises_long", G,
        "Orders due in the long window that missed their promised date.",
        "count", "higher", "orders",
        lambda a, c: a.n,
        requires=NEEDS, fill_zero=True,
        aggs={"n": count("orders_due", "long", _late)},
    ),
    Feature(
        "open_overdue_orders", G,
        "Orders past their promised date and still not delivered at the cutoff.",
        "count", "higher", "orders",
        # delivered by the cutoff and due before it = closed (the later of the two) before it
        lambda a, c: a.due - a.closed,
        requires=NEEDS, fill_zero=True,
        aggs={"due": count("orders_due"), "closed": count("orders_closed")},
    ),
    Feature(
        "lateness_trend_days", G,
        "Mean lateness of orders due in the recent window minus that of the window before: "
        "above 0 means deliveries are getting later; empty when either window had no order due.",
        "days", "higher", "orders",
        _lateness_trend,
        requires=NEEDS,
        aggs={
            "late_recent": _lateness("sum", "recent"),
            "due_recent": count("orders_due", "recent"),
            "late_prior": _lateness("sum", "prior"),
            "due_prior": count("orders_due", "prior"),
        },
    ),
    Feature(
        "resolution_log_hours_recent", G,
        "Mean of ln(hours to resolve) over the complaints, service requests and repairs "
        "resolved in the recent window: the geometric mean's log, robust to a few slow cases.",
        "log hours", "higher", "interactions",
        lambda a, c: a.v,
        requires=("resolved_at",),
        aggs=_resolution("recent"),
    ),
    Feature(
        "resolution_log_hours_long", G,
        "Mean of ln(hours to resolve) over the complaints, service requests and repairs "
        "resolved in the long window.",
        "log hours", "higher", "interactions",
        lambda a, c: a.v,
        requires=("resolved_at",),
        aggs=_resolution("long"),
    ),
    Feature(
        "unresolved_share_long", G,
        "Share of the complaints, service requests and repairs of the long window that were "
        "not resolved by the cutoff (made in the window less resolved in it, over made).",
        "share", "higher", "interactions",
        # resolved by the cutoff = closed (the later of made and resolved) before it; the few
        # made before the window and resolved within it are a negligible overlap
        lambda a, c: ratio(ibis.greatest(a.made - a.closed, 0), a.made),
        requires=("resolved_at",),
        aggs={
            "made": count("interactions", "long", _resolvable),
            "closed": count("interactions_closed", "long", _resolvable),
        },
    ),
)  # fmt: skip
