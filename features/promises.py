"""Promises: sales makes them, manufacturing and service keep or break them.

Point in time: an order promised before the cutoff is known late at the cutoff if it was not
delivered by its promised date, even when it is delivered later; lateness counts up to the cutoff.
"""

from __future__ import annotations

import ibis

from features.catalog import Feature, days_before, ratio

G = "promises"
NEEDS = ("promised_date", "delivered_date")


def _due(t, days: int, skip: int = 0):
    """Orders whose promised date fell in the window (skip, days] days before the cutoff."""
    age = days_before(t, "promised_date")
    return (t.promised_date < t.cutoff) & (age <= days) & (age > skip)


def _late(t):
    """Known late at the cutoff: not delivered by the promised date."""
    return t.delivered_date.isnull() | (t.delivered_date > t.promised_date)


def _lateness_days(t):
    """Days late as known at the cutoff (0 when on time)."""
    seen = ibis.least(ibis.coalesce(t.delivered_date, t.cutoff), t.cutoff)
    late = (seen.epoch_seconds() - t.promised_date.epoch_seconds()) / 86400.0
    return ibis.greatest(late, 0.0)


def _lateness_trend(t, c):
    """Mean lateness of orders due in the recent window minus that of the window before."""
    recent = _lateness_days(t).mean(where=_due(t, c.recent_days))
    prior = _lateness_days(t).mean(where=_due(t, 2 * c.recent_days, skip=c.recent_days))
    return recent - prior


FEATURES = (
    Feature(
        "on_time_rate_long", G,
        "Share of orders due in the long window that were delivered by the promised date.",
        "share", "lower", "orders",
        lambda t, c: 1.0 - ratio(
            t.account_id.count(where=_due(t, c.long_days) & _late(t)),
            t.account_id.count(where=_due(t, c.long_days)),
        ),
        requires=NEEDS,
    ),
    Feature(
        "mean_lateness_days_long", G,
        "Mean days late of orders due in the long window (0 for orders on time).",
        "days", "higher", "orders",
        lambda t, c: _lateness_days(t).mean(where=_due(t, c.long_days)),
        requires=NEEDS,
    ),
    Feature(
        "worst_lateness_days_long", G,
        "Days late of the latest order due in the long window.",
        "days", "higher", "orders",
        lambda t, c: _lateness_days(t).max(where=_due(t, c.long_days)),
        requires=NEEDS,
    ),
    Feature(
        "broken_promises_recent", G,
        "Orders due in the recent window that missed their promised date.",
        "count", "higher", "orders",
        lambda t, c: t.account_id.count(where=_due(t, c.recent_days) & _late(t)),
        requires=NEEDS, fill_zero=True,
    ),
    Feature(
        "broken_promises_long", G,
        "Orders due in the long window that missed their promised date.",
        "count", "higher", "orders",
        lambda t, c: t.account_id.count(where=_due(t, c.long_days) & _late(t)),
        requires=NEEDS, fill_zero=True,
    ),
    Feature(
        "open_overdue_orders", G,
        "Orders past their promised date and still not delivered at the cutoff.",
        "count", "higher", "orders",
        lambda t, c: t.account_id.count(
            where=(t.promised_date < t.cutoff)
            & (t.delivered_date.isnull() | (t.delivered_date >= t.cutoff))
        ),
        requires=NEEDS, fill_zero=True,
    ),
    Feature(
        "lateness_trend_days", G,
        "Mean lateness of orders due in the recent window minus that of the window before: "
        "above 0 means deliveries are getting later; empty when either window had no order due.",
        "days", "higher", "orders",
        _lateness_trend,
        requires=NEEDS,
    ),
)  # fmt: skip
