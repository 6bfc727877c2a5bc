"""Engagement: relationships drift toward less attention unless someone works against it.

Engineering and manufacturing people who spend time with customers build lasting
relationships; the seller should check whether the relationship is improving or deteriorating
and how it stands against competitors (share of wallet).
"""

from __future__ import annotations

from features.catalog import (
    Agg,
    Feature,
    count,
    distinct,
    first,
    known_if,
    last,
    log_trend,
    mean,
    ratio,
    since,
    total,
)

G = "engagement"


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


def _contact(t):
    return t.contact_id


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
)  # fmt: skip
