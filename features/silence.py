"""Silence: a customer who has stopped complaining is the surest sign of trouble."""

from __future__ import annotations

from features.catalog import Feature, within

G = "silence"

FEATURES = (
    Feature(
        "days_since_last_complaint",
        G,
        "Days since the account's last complaint; empty when it never complained.",
        "days",
        "higher",
        "interactions",
        lambda t, c: t.age.min(where=t.type == "complaint"),
    ),
    Feature(
        "days_since_last_customer_contact",
        G,
        "Days since the customer last reached out (any customer-initiated interaction).",
        "days",
        "higher",
        "interactions",
        lambda t, c: t.age.min(where=t.initiated_by == "customer"),
        requires=("initiated_by",),
    ),
    Feature(
        "days_since_last_contact",
        G,
        "Days since the last interaction of any kind, by either side.",
        "days",
        "higher",
        "interactions",
        lambda t, c: t.age.min(),
    ),
    Feature(
        "complaints_recent",
        G,
        "Complaints in the recent window (features.recent_days).",
        "count",
        "lower",
        "interactions",
        lambda t, c: t.account_id.count(where=(t.type == "complaint") & within(t, c.recent_days)),
        fill_zero=True,
    ),
    Feature(
        "complaints_before_recent",
        G,
        "Complaints before the recent window, over the account's whole history: its voice.",
        "count",
        "either",
        "interactions",
        lambda t, c: t.account_id.count(where=(t.type == "complaint") & ~within(t, c.recent_days)),
        fill_zero=True,
    ),
    Feature(
        "went_quiet",
        G,
        "1 when the account complained before the recent window but not within it.",
        "flag",
        "higher",
        "derived",
        lambda t, c: ((t.complaints_before_recent > 0) & (t.complaints_recent == 0)).cast("int8"),
        inputs=("complaints_recent", "complaints_before_recent"),
    ),
)
