"""Silence: a customer who has stopped complaining is the surest sign of trouble.

No customer is satisfied for long; a quiet one is either not candid or not being contacted.
"""

from __future__ import annotations

from features.language import (
    Feature,
    count,
    first,
    last,
    log_trend,
    mean,
    rate_vs_history,
    since,
)

G = "silence"


def _complaint(t, c):
    return t.type == "complaint"


def _by_customer(t, c):
    return t.initiated_by == "customer"


def _resolution_days(t):
    return (t.resolved_at.epoch_seconds() - t.occurred_at.epoch_seconds()) / 86400.0


FEATURES = (
    Feature(
        "days_since_last_complaint", G,
        "Days since the account's last complaint; empty when it never complained.",
        "days", "higher", "interactions",
        lambda a, c: since(a, a.t),
        aggs={"t": last("interactions", _complaint)},
        grows_with_history=True,
    ),
    Feature(
        "days_since_last_customer_contact", G,
        "Days since the customer last reached out (any customer-initiated interaction).",
        "days", "higher", "interactions",
        lambda a, c: since(a, a.t),
        requires=("initiated_by",),
        aggs={"t": last("interactions", _by_customer)},
    ),
    Feature(
        "days_since_last_contact", G,
        "Days since the last interaction of any kind, by either side.",
        "days", "higher", "interactions",
        lambda a, c: since(a, a.t),
        aggs={"t": last("interactions")},
    ),
    Feature(
        "complaints_recent", G,
        "Complaints in the recent window (features.recent_days).",
        "count", "lower", "interactions",
        lambda a, c: a.n,
        fill_zero=True,
        aggs={"n": count("interactions", "recent", _complaint)},
    ),
    Feature(
        "complaints_before_recent", G,
        "Complaints before the recent window, over the account's whole history: its voice.",
        "count", "either", "interactions",
        lambda a, c: a.n,
        fill_zero=True,
        aggs={"n": count("interactions", "before_recent", _complaint)},
        grows_with_history=True,
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
        rate_vs_history,
        aggs={
            "recent": count("interactions", "recent", _complaint),
            "before": count("interactions", "before_recent", _complaint),
            "first": first("interactions"),
        },
        grows_with_history=True,
    ),
    Feature(
        "complaint_resolution_days_long", G,
        "Mean days it took to resolve the complaints resolved in the long window.",
        "days", "higher", "interactions",
        lambda a, c: a.days,
        requires=("resolved_at",),
        aggs={"days": mean("resolutions", _resolution_days, "long", _complaint)},
    ),
    Feature(
        "open_complaints", G,
        "Complaints made before the cutoff and not resolved by it.",
        "count", "higher", "interactions",
        lambda a, c: a.made - a.closed,
        requires=("resolved_at",), fill_zero=True,
        # resolved by the cutoff = made and resolved before it = closed (the later of the two
        # times) before it
        aggs={
            "made": count("interactions", "all", _complaint),
            "closed": count("interactions_closed", "all", _complaint),
        },
    ),
    Feature(
        "customer_contacts_recent", G,
        "Customer-initiated interactions in the recent window: the customer's voice.",
        "count", "lower", "interactions",
        lambda a, c: a.n,
        requires=("initiated_by",), fill_zero=True,
        aggs={"n": count("interactions", "recent", _by_customer)},
    ),
    Feature(
        "customer_contacts_prior", G,
        "Customer-initiated interactions in the window before the recent one.",
        "count", "either", "interactions",
        lambda a, c: a.n,
        requires=("initiated_by",), fill_zero=True,
        aggs={"n": count("interactions", "prior", _by_customer)},
    ),
    Feature(
        "customer_contact_trend", G,
        "log((recent + 1) / (prior + 1)) of customer-initiated interactions: below 0 is fading.",
        "log ratio", "lower", "derived",
        lambda t, c: log_trend(t.customer_contacts_recent, t.customer_contacts_prior),
        inputs=("customer_contacts_recent", "customer_contacts_prior"),
    ),
)  # fmt: skip
