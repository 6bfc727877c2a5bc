"""Engagement: relationships drift toward less attention unless someone works against it.

Engineering and manufacturing people who spend time with customers build lasting
relationships; the seller should check whether the relationship is improving or deteriorating
and how it stands against competitors (share of wallet).
"""

from __future__ import annotations

from features.catalog import Feature, between, log_trend, ratio, within

G = "engagement"


def _touches(departments: str):
    """Supplier-initiated interactions in the recent window by the given departments."""
    return lambda t, c: t.account_id.count(
        where=(t.initiated_by == "supplier")
        & t.department.isin(getattr(c, departments))
        & within(t, c.recent_days)
    )


FEATURES = (
    Feature(
        "days_since_last_order", G,
        "Days since the account's last order; empty when it never ordered.",
        "days", "higher", "orders",
        lambda t, c: t.age.min(),
    ),
    Feature(
        "days_since_first_order", G,
        "Days since the account's first order in the data.",
        "days", "lower", "orders",
        lambda t, c: t.age.max(),
    ),
    Feature(
        "orders_recent", G,
        "Orders in the recent window.",
        "count", "lower", "orders",
        lambda t, c: t.account_id.count(where=within(t, c.recent_days)),
        fill_zero=True,
    ),
    Feature(
        "orders_prior", G,
        "Orders in the window before the recent one (same length).",
        "count", "either", "orders",
        lambda t, c: t.account_id.count(where=between(t, c.recent_days, 2 * c.recent_days)),
        fill_zero=True,
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
        lambda t, c: t.amount.sum(where=within(t, c.long_days)),
        fill_zero=True,
    ),
    Feature(
        "avg_order_value_long", G,
        "Mean order value in the long window; empty without orders in it.",
        "currency", "lower", "orders",
        lambda t, c: t.amount.mean(where=within(t, c.long_days)),
    ),
    Feature(
        "order_value_trend", G,
        "log((recent order value + 1) / (prior order value + 1)).",
        "log ratio", "lower", "orders",
        lambda t, c: log_trend(
            t.amount.sum(where=within(t, c.recent_days)).fill_null(0),
            t.amount.sum(where=between(t, c.recent_days, 2 * c.recent_days)).fill_null(0),
        ),
    ),
    Feature(
        "annual_wallet", G,
        "The customer's estimated yearly spend in the category (accounts.annual_wallet).",
        "currency", "either", "accounts",
        lambda t, c: t.annual_wallet.max(),
        requires=("annual_wallet",),
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
        lambda t, c: t.account_id.count(
            where=(t.initiated_by == "supplier") & within(t, c.recent_days)
        ),
        requires=("initiated_by",), fill_zero=True,
    ),
    Feature(
        "touches_engineering_recent", G,
        "Supplier-initiated interactions by engineering and manufacturing in the recent window "
        "(features.engineering_departments).",
        "count", "lower", "interactions",
        _touches("engineering_departments"),
        requires=("initiated_by", "department"), fill_zero=True,
    ),
    Feature(
        "touches_sales_recent", G,
        "Supplier-initiated interactions by sales and management in the recent window "
        "(features.sales_departments).",
        "count", "lower", "interactions",
        _touches("sales_departments"),
        requires=("initiated_by", "department"), fill_zero=True,
    ),
    Feature(
        "touches_service_recent", G,
        "Supplier-initiated interactions by service and quality in the recent window "
        "(features.service_departments).",
        "count", "lower", "interactions",
        _touches("service_departments"),
        requires=("initiated_by", "department"), fill_zero=True,
    ),
    Feature(
        "interactions_trend", G,
        "log((recent interactions + 1) / (prior interactions + 1)); empty without interactions.",
        "log ratio", "lower", "interactions",
        lambda t, c: log_trend(
            t.account_id.count(where=within(t, c.recent_days)),
            t.account_id.count(where=between(t, c.recent_days, 2 * c.recent_days)),
        ),
    ),
    Feature(
        "supplier_departments_long", G,
        "Distinct supplier departments in contact with the account in the long window.",
        "count", "lower", "interactions",
        lambda t, c: t.department.nunique(where=within(t, c.long_days)),
        requires=("department",), fill_zero=True,
    ),
    Feature(
        "contacts_active_recent", G,
        "Distinct customer contact persons in the recent window.",
        "count", "lower", "contacts",
        lambda t, c: t.contact_id.count(where=t.last_age <= c.recent_days),
        requires=("contact_id",), fill_zero=True,
    ),
    Feature(
        "contacts_new_recent", G,
        "Customer contact persons first seen in the recent window: sponsor turnover.",
        "count", "higher", "contacts",
        lambda t, c: t.contact_id.count(where=t.first_age <= c.recent_days),
        requires=("contact_id",), fill_zero=True,
    ),
    Feature(
        "contacts_lost_recent", G,
        "Customer contact persons seen in the window before the recent one but not since.",
        "count", "higher", "contacts",
        lambda t, c: t.contact_id.count(
            where=(t.last_age > c.recent_days) & (t.last_age <= 2 * c.recent_days)
        ),
        requires=("contact_id",), fill_zero=True,
    ),
)  # fmt: skip
