"""Silence: a customer who has stopped complaining is the surest sign of trouble.

No customer is satisfied for long; a quiet one is either not candid or not being contacted.
"""

from __future__ import annotations

import ibis

from features.catalog import Feature, between, log_trend, ratio, within

G = "silence"


def _complaint(t):
    return t.type == "complaint"


def _by_customer(t):
    return t.initiated_by == "customer"


def _rate_ratio(t, c):
    """Complaints a day in the recent window over complaints a day in the history before it."""
    recent = t.account_id.count(where=_complaint(t) & within(t, c.recent_days)) / c.recent_days
    history = ibis.greatest(t.age.max() - c.recent_days, 0.0)
    before = ratio(t.account_id.count(where=_complaint(t) & ~within(t, c.recent_days)), history)
    return ratio(recent, before)


def _resolution_days(t):
    return (t.resolved_at.epoch_seconds() - t.occurred_at.epoch_seconds()) / 86400.0


FEATURES = (
    Feature(
        "days_since_last_complaint", G,
        "Days since the account's last complaint; empty when it never complained.",
        "days", "higher", "interactions",
        lambda t, c: t.age.min(where=_complaint(t)),
    ),
    Feature(
        "days_since_last_customer_contact", G,
        "Days since the customer last reached out (any customer-initiated interaction).",
        "days", "higher", "interactions",
        lambda t, c: t.age.min(where=_by_customer(t)),
        requires=("initiated_by",),
    ),
    Feature(
        "days_since_last_contact", G,
        "Days since the last interaction of any kind, by either side.",
        "days", "higher", "interactions",
        lambda t, c: t.age.min(),
    ),
    Feature(
        "complaints_recent", G,
        "Complaints in the recent window (features.recent_days).",
        "count", "lower", "interactions",
        lambda t, c: t.account_id.count(where=_complaint(t) & within(t, c.recent_days)),
        fill_zero=True,
    ),
    Feature(
        "complaints_before_recent", G,
        "Complaints before the recent window, over the account's whole history: its voice.",
        "count", "either", "interactions",
        lambda t, c: t.account_id.count(where=_complaint(t) & ~within(t, c.recent_days)),
        fill_zero=True,
    ),
    Feature(
        "has_complaint_history", G,
        "1 when the account ever complained before the cutoff: tells 'never complained' (0) "
        "from 'stopped complaining' (1 with no recent complaints).",
        "flag", "either", "derived",
        lambda t, c: ((t.complaints_recent + t.complaints_before_recent) > 0).cast("int8"),
        inputs=("complaints_recent", "complaints_before_recent"),
    ),
    Feature(
        "went_quiet", G,
        "1 when the account complained before the recent window but not within it.",
        "flag", "higher", "derived",
        lambda t, c: ((t.complaints_before_recent > 0) & (t.complaints_recent == 0)).cast("int8"),
        inputs=("complaints_recent", "complaints_before_recent"),
    ),
    Feature(
        "complaint_rate_ratio", G,
        "Complaints a day in the recent window over the account's own rate before it (since its "
        "first interaction); below 1 means quieter than usual; empty without earlier complaints.",
        "ratio", "lower", "interactions",
        _rate_ratio,
    ),
    Feature(
        "complaint_resolution_days_long", G,
        "Mean days to resolve the complaints of the long window that were resolved by the cutoff.",
        "days", "higher", "interactions",
        lambda t, c: _resolution_days(t).mean(
            where=_complaint(t) & within(t, c.long_days) & (t.resolved_at < t.cutoff)
        ),
        requires=("resolved_at",),
    ),
    Feature(
        "open_complaints", G,
        "Complaints not resolved by the cutoff.",
        "count", "higher", "interactions",
        lambda t, c: t.account_id.count(
            where=_complaint(t) & (t.resolved_at.isnull() | (t.resolved_at >= t.cutoff))
        ),
        requires=("resolved_at",), fill_zero=True,
    ),
    Feature(
        "customer_contacts_recent", G,
        "Customer-initiated interactions in the recent window: the customer's voice.",
        "count", "lower", "interactions",
        lambda t, c: t.account_id.count(where=_by_customer(t) & within(t, c.recent_days)),
        requires=("initiated_by",), fill_zero=True,
    ),
    Feature(
        "customer_contacts_prior", G,
        "Customer-initiated interactions in the window before the recent one.",
        "count", "either", "interactions",
        lambda t, c: t.account_id.count(
            where=_by_customer(t) & between(t, c.recent_days, 2 * c.recent_days)
        ),
        requires=("initiated_by",), fill_zero=True,
    ),
    Feature(
        "customer_contact_trend", G,
        "log((recent + 1) / (prior + 1)) of customer-initiated interactions: below 0 is fading.",
        "log ratio", "lower", "derived",
        lambda t, c: log_trend(t.customer_contacts_recent, t.customer_contacts_prior),
        inputs=("customer_contacts_recent", "customer_contacts_prior"),
    ),
)  # fmt: skip
