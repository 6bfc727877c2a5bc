"""Promises: sales makes them, manufacturing and service keep or break them.

Point in time: an order promised before the cutoff is known late at the cutoff if it was not
delivered by its promised date, even when it is delivered later; lateness counts up to the cutoff.
"""

from __future__ import annotations

import ibis

from features.catalog import Agg, Feature, count, known_if, ratio

G = "promises"
NEEDS = ("promised_date", "delivered_date")


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
)  # fmt: skip
