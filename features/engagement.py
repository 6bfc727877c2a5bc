"""Engagement: relationships drift toward less attention unless someone works against it.

Engineering and manufacturing people who spend time with customers build lasting
relationships; the seller should check whether the relationship is improving or deteriorating
and how it stands against competitors (share of wallet).

The group's features, declared in the feature language, in one module like the other four
groups: over 400 lines because the group is one idea, and its features read best together.
"""

from __future__ import annotations

import ibis

from features.language import (
    Agg,
    Feature,
    count,
    distinct,
    first,
    known_if,
    last,
    ln,
    log_trend,
    mean,
    rate_vs_history,
    ratio,
    since,
    total,
)

G = "engagement"
# Customer-initiated interactions that do not follow engagement: complaints follow voice and
# grievances, rfqs shopping around, inspections distrust, forecasts trust.
NOT_ENGAGED = ("complaint", "rfq", "inspection", "forecast_shared")
# Supplier touches of the last year by quarter (fixed windows in days), each discounted by 2% a
# week to its middle; touches by other departments count a quarter of an engineer's.
QUARTERS = ((0, 90), (90, 180), (180, 365))
WEEKLY_DECAY = 0.98
OTHER_TOUCH_WEIGHT = 0.25


def _by_supplier(t, c):
    return t.initiated_by == "supplier"


def _touches(departments: str) -> dict[str, Agg]:
    """Supplier-initiated interactions in the recent window by the given departments."""
    return {
        "n": count(
            "interactions",
            "recent",
            lambda t, c: _by_supplier(t, c) & t.department.isin(getattr(c, departments)),
        )
    }


def _amount(t):
    return t.amount


def _log_amount(t):
    """ln(amount), unknown for an amount of 0: no order is left out by accident."""
    return ln(t.amount)


def _positive(t, c):
    return t.amount > 0


def _engaged(t, c):
    """Customer-initiated service requests, repairs, meetings and other contacts."""
    return (t.initiated_by == "customer") & ~t.type.isin(NOT_ENGAGED)


def _engaged_trend(a, c):
    """log((engaged contacts of the last 60 days, scaled to recent_days, + 1) / (prior + 1))."""
    return log_trend(a.last60 * (c.recent_days / 60.0), a.prior)


def _by_engineers(t, c):
    return _by_supplier(t, c) & t.department.isin(c.engineering_departments)


def _by_others(t, c):
    return _by_supplier(t, c) & ~t.department.isin(c.engineering_departments)


def _weighted_touches(a, c):
    total_ = 0.0
    for i, (lo, hi) in enumerate(QUARTERS):
        weight = WEEKLY_DECAY ** ((lo + hi) / 2 / 7)
        total_ += weight * (getattr(a, f"eng{i}") + OTHER_TOUCH_WEIGHT * getattr(a, f"oth{i}"))
    return total_


def _touch_aggs() -> dict[str, Agg]:
    aggs = {}
    for i, window in enumerate(QUARTERS):
        aggs[f"eng{i}"] = count("interactions", window, _by_engineers)
        aggs[f"oth{i}"] = count("interactions", window, _by_others)
    return aggs


def _contact(t):
    return t.contact_id


def _gap(t):
    return t.gap_days


def _gap_squared(t):
    return t.gap_days * t.gap_days


def _order_day(t):
    return t._day


def _gap_cv(a, c):
    """Population standard deviation of the gaps over their mean, from mean(g) and mean(g²)."""
    variance = ibis.greatest(a.m2 - a.m * a.m, 0.0)
    return known_if(a.n >= 2, variance.sqrt() / a.m.nullif(0.0))


FEATURES = (
    Feature(
        "days_since_last_order", G,
        "Days since the account's last order; empty when it never ordered.",
        "days", "higher", "orders",
        lambda a, c: since(a, a.t),
        aggs={"t": last("orders")},
    ),
    Feature(
        "days_since_first_order", G,
        "Days since the account's first order in the data.",
        "days", "lower", "orders",
        lambda a, c: since(a, a.t),
        aggs={"t": first("orders")},
        grows_with_history=True,
    ),
    Feature(
        "orders_recent", G,
        "Orders in the recent window.",
        "count", "lower", "orders",
        lambda a, c: a.n,
        fill_zero=True,
        aggs={"n": count("orders", "recent")},
    ),
    Feature(
        "orders_prior", G,
        "Orders in the window before the recent one (same length).",
        "count", "either", "orders",
        lambda a, c: a.n,
        fill_zero=True,
        aggs={"n": count("orders", "prior")},
    ),
    Feature(
        "order_trend", G,
        "log((recent orders + 1) / (prior orders + 1)): below 0 means ordering less.",
        "log ratio", "lower", "derived",
        lambda t, c: log_trend(t.orders_recent, t.orders_prior),
        inputs=("orders_recent", "orders_prior"),
    ),
    Feature(
        "order_value_long", G,
        "Order value in the long window.",
        "currency", "lower", "orders",
        lambda a, c: a.v,
        fill_zero=True,
        aggs={"v": total("orders", _amount, "long")},
    ),
    Feature(
        "avg_order_value_long", G,
        "Mean order value in the long window; empty without orders in it.",
        "currency", "lower", "orders",
        lambda a, c: a.v,
        aggs={"v": mean("orders", _amount, "long")},
    ),
    Feature(
        "order_value_trend", G,
        "log((recent order value + 1) / (prior order value + 1)); empty without orders.",
        "log ratio", "lower", "orders",
        lambda a, c: known_if(
            a.ever > 0, log_trend(a.recent.fill_null(0.0), a.prior.fill_null(0.0))
        ),
        aggs={
            "recent": total("orders", _amount, "recent"),
            "prior": total("orders", _amount, "prior"),
            "ever": count("orders"),
        },
    ),
    Feature(
        "annual_wallet", G,
        "The customer's estimated yearly spend in the category (accounts.annual_wallet).",
        "currency", "either", "accounts",
        lambda a, c: a.v,
        requires=("annual_wallet",),
        aggs={"v": Agg("max", "accounts", "all", None, lambda t: t.annual_wallet)},
    ),
    Feature(
        "share_of_wallet", G,
        "Yearly order value over the customer's yearly category spend: the supplier's "
        "standing against competitors.",
        "share", "lower", "derived",
        lambda t, c: ratio(t.order_value_long * (365.0 / c.long_days), t.annual_wallet),
        inputs=("order_value_long", "annual_wallet"),
    ),
    Feature(
        "supplier_touches_recent", G,
        "Supplier-initiated interactions in the recent window: is someone tending the account?",
        "count", "lower", "interactions",
        lambda a, c: a.n,
        requires=("initiated_by",), fill_zero=True,
        aggs={"n": count("interactions", "recent", _by_supplier)},
    ),
    Feature(
        "touches_engineering_recent", G,
        "Supplier-initiated interactions by engineering and manufacturing in the recent window "
        "(features.engineering_departments).",
        "count", "lower", "interactions",
        lambda a, c: a.n,
        requires=("initiated_by", "department"), fill_zero=True,
        aggs=_touches("engineering_departments"),
    ),
    Feature(
        "touches_sales_recent", G,
        "Supplier-initiated interactions by sales and management in the recent window "
        "(features.sales_departments).",
        "count", "lower", "interactions",
        lambda a, c: a.n,
        requires=("initiated_by", "department"), fill_zero=True,
        aggs=_touches("sales_departments"),
    ),
    Feature(
        "touches_service_recent", G,
        "Supplier-initiated interactions by service and quality in the recent window "
        "(features.service_departments).",
        "count", "lower", "interactions",
        lambda a, c: a.n,
        requires=("initiated_by", "department"), fill_zero=True,
        aggs=_touches("service_departments"),
    ),
    Feature(
        "interactions_trend", G,
        "log((recent interactions + 1) / (prior interactions + 1)); empty without interactions.",
        "log ratio", "lower", "interactions",
        lambda a, c: known_if(a.ever > 0, log_trend(a.recent, a.prior)),
        aggs={
            "recent": count("interactions", "recent"),
            "prior": count("interactions", "prior"),
            "ever": count("interactions"),
        },
    ),
    Feature(
        "supplier_departments_long", G,
        "Distinct supplier departments in contact with the account in the long window.",
        "count", "lower", "interactions",
        lambda a, c: a.n,
        requires=("department",), fill_zero=True,
        aggs={"n": distinct("interactions", lambda t: t.department, "long")},
    ),
    Feature(
        "contacts_active_recent", G,
        "Distinct customer contact persons in the recent window.",
        "count", "lower", "interactions",
        lambda a, c: a.n,
        requires=("contact_id",), fill_zero=True,
        aggs={"n": distinct("interactions", _contact, "recent")},
    ),
    Feature(
        "contacts_new_recent", G,
        "Customer contact persons first seen in the recent window: sponsor turnover.",
        "count", "higher", "interactions",
        lambda a, c: a.n,
        requires=("contact_id",), fill_zero=True,
        aggs={"n": count("contacts_first", "recent")},
    ),
    Feature(
        "contacts_lost_recent", G,
        "Customer contact persons seen in the window before the recent one but not since.",
        "count", "higher", "interactions",
        # seen in either window, less those seen in the recent one
        lambda a, c: a.both - a.recent,
        requires=("contact_id",), fill_zero=True,
        aggs={
            "both": distinct("interactions", _contact, "two_recent"),
            "recent": distinct("interactions", _contact, "recent"),
        },
    ),
    Feature(
        "order_rate_ratio", G,
        "Orders a day in the recent window over the account's own rate before it (since its "
        "first order): below 1 means ordering less than usual; empty without earlier history.",
        "ratio", "lower", "orders",
        rate_vs_history,
        aggs={
            "recent": count("orders", "recent"),
            "before": count("orders", "before_recent"),
            "first": first("orders"),
        },
    ),
    Feature(
        "order_value_rate_ratio", G,
        "Order value a day in the recent window over the account's own value a day before it.",
        "ratio", "lower", "orders",
        rate_vs_history,
        aggs={
            "recent": total("orders", _amount, "recent"),
            "before": total("orders", _amount, "before_recent"),
            "first": first("orders"),
        },
    ),
    Feature(
        "order_log_value_shift", G,
        "Mean ln(order amount) in the recent window less that before it: below 0 means smaller "
        "orders than usual; empty without orders in either.",
        "log ratio", "lower", "orders",
        lambda a, c: a.recent - a.before,
        aggs={
            "recent": mean("orders", _log_amount, "recent", _positive),
            "before": mean("orders", _log_amount, "before_recent", _positive),
        },
    ),
    Feature(
        "engaged_contacts_recent", G,
        "Service requests, repairs, meetings and other contacts the customer initiated in the "
        "recent window (not complaints, rfqs, inspections or forecasts): an engaged customer.",
        "count", "lower", "interactions",
        lambda a, c: a.n,
        requires=("initiated_by",), fill_zero=True,
        aggs={"n": count("interactions", "recent", _engaged)},
    ),
    Feature(
        "engaged_contact_rate_ratio", G,
        "Engaged customer contacts a day in the recent window over the account's own rate before "
        "it (since its first interaction); empty without earlier engaged contacts.",
        "ratio", "lower", "interactions",
        rate_vs_history,
        requires=("initiated_by",),
        aggs={
            "recent": count("interactions", "recent", _engaged),
            "before": count("interactions", "before_recent", _engaged),
            "first": first("interactions"),
        },
    ),
    Feature(
        "engaged_contact_trend", G,
        "log((engaged customer contacts of the last 60 days, scaled to the recent window, + 1) / "
        "(those of the prior window + 1)): below 0 means the customer is withdrawing.",
        "log ratio", "lower", "interactions",
        _engaged_trend,
        requires=("initiated_by",), fill_zero=True,
        aggs={
            "last60": count("interactions", (0, 60), _engaged),
            "prior": count("interactions", "prior", _engaged),
        },
    ),
    Feature(
        "weighted_touches_year", G,
        "Supplier touches of the last year by quarter, each quarter discounted by 2% a week of "
        "age, engineering and manufacturing counting 1 and other departments 0.25: the "
        "attention that keeps a relationship healthy, remembered as the relationship does.",
        "weighted count", "lower", "interactions",
        _weighted_touches,
        requires=("initiated_by", "department"), fill_zero=True,
        aggs=_touch_aggs(),
    ),
    Feature(
        "days_since_new_contact", G,
        "Days since the newest customer contact person was first seen: a recent sponsor "
        "change; empty without contact persons.",
        "days", "lower", "interactions",
        lambda a, c: since(a, a.t),
        requires=("contact_id",),
        aggs={"t": last("contacts_first")},
        grows_with_history=True,
    ),
    # Purchase rhythm: a repeat buyer judged against its own rhythm. Frequency, recency and
    # age are the buy-till-you-die models' sufficient statistics (Fader, Hardie and Lee 2005):
    # order_days_total - 1, days_since_first_order - days_since_last_order, days_since_first_order.
    Feature(
        "orders_total", G,
        "Orders over the account's whole history before the cutoff.",
        "count", "lower", "orders",
        lambda a, c: a.n,
        fill_zero=True,
        aggs={"n": count("orders")},
        grows_with_history=True,
    ),
    Feature(
        "order_days_total", G,
        "Distinct days with an order over the whole history (the buy-till-you-die frequency "
        "is this less one: repeat purchase days).",
        "count", "lower", "orders",
        lambda a, c: a.n,
        fill_zero=True,
        aggs={"n": distinct("orders", _order_day)},
        grows_with_history=True,
    ),
    Feature(
        "mean_order_gap_days", G,
        "The account's typical gap: mean days between consecutive days it ordered on; empty "
        "with fewer than two order days.",
        "days", "higher", "orders",
        lambda a, c: a.m,
        aggs={"m": mean("order_gaps", _gap)},
    ),
    Feature(
        "order_gap_ratio", G,
        "Days since the last order over the account's typical gap: above 1 means overdue by "
        "its own rhythm; empty with fewer than two order days.",
        "ratio", "higher", "derived",
        lambda t, c: ratio(t.days_since_last_order, t.mean_order_gap_days),
        inputs=("days_since_last_order", "mean_order_gap_days"),
    ),
    Feature(
        "order_gap_cv", G,
        "Regularity of the rhythm: standard deviation of the gaps between order days over "
        "their mean (0: like clockwork); empty with fewer than three order days.",
        "ratio", "either", "orders",
        _gap_cv,
        aggs={
            "n": count("order_gaps"),
            "m": mean("order_gaps", _gap),
            "m2": mean("order_gaps", _gap_squared),
        },
    ),
)  # fmt: skip
