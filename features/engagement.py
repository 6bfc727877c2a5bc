"""Engagement: relationships drift toward less attention unless someone works against it."""

from __future__ import annotations

from features.catalog import Feature, ratio, within

G = "engagement"


def _between(t, lo: int, hi: int):
    """Events aged (lo, hi] days at the cutoff."""
    return (t.age > lo) & (t.age <= hi)


FEATURES = (
    Feature(
        "days_since_last_order",
        G,
        "Days since the account's last order; empty when it never ordered.",
        "days",
        "higher",
        "orders",
        lambda t, c: t.age.min(),
    ),
    Feature(
        "days_since_first_order",
        G,
        "Days since the account's first order in the data.",
        "days",
        "lower",
        "orders",
        lambda t, c: t.age.max(),
    ),
    Feature(
        "orders_recent",
        G,
        "Orders in the recent window.",
        "count",
        "lower",
        "orders",
        lambda t, c: t.account_id.count(where=within(t, c.recent_days)),
        fill_zero=True,
    ),
    Feature(
        "orders_prior",
        G,
        "Orders in the window before the recent one (same length).",
        "count",
        "either",
        "orders",
        lambda t, c: t.account_id.count(where=_between(t, c.recent_days, 2 * c.recent_days)),
        fill_zero=True,
    ),
    Feature(
        "order_trend",
        G,
        "log((recent orders + 1) / (prior orders + 1)): below 0 means ordering less.",
        "log ratio",
        "lower",
        "derived",
        lambda t, c: ((t.orders_recent + 1.0) / (t.orders_prior + 1.0)).ln(),
        inputs=("orders_recent", "orders_prior"),
    ),
    Feature(
        "order_value_long",
        G,
        "Order value in the long window.",
        "currency",
        "lower",
        "orders",
        lambda t, c: t.amount.sum(where=within(t, c.long_days)),
        fill_zero=True,
    ),
    Feature(
        "annual_wallet",
        G,
        "The customer's estimated yearly spend in the category (accounts.annual_wallet).",
        "currency",
        "either",
        "accounts",
        lambda t, c: t.annual_wallet.max(),
        requires=("annual_wallet",),
    ),
    Feature(
        "share_of_wallet",
        G,
        "Yearly order value over the customer's yearly category spend: the supplier's "
        "standing against competitors.",
        "share",
        "lower",
        "derived",
        lambda t, c: ratio(t.order_value_long * (365.0 / c.long_days), t.annual_wallet),
        inputs=("order_value_long", "annual_wallet"),
    ),
    Feature(
        "supplier_touches_recent",
        G,
        "Supplier-initiated interactions in the recent window: is someone tending the account?",
        "count",
        "lower",
        "interactions",
        lambda t, c: t.account_id.count(
            where=(t.initiated_by == "supplier") & within(t, c.recent_days)
        ),
        requires=("initiated_by",),
        fill_zero=True,
    ),
    Feature(
        "interactions_trend",
        G,
        "log((recent interactions + 1) / (prior interactions + 1)).",
        "log ratio",
        "lower",
        "interactions",
        lambda t, c: (
            (t.account_id.count(where=within(t, c.recent_days)) + 1.0)
            / (t.account_id.count(where=_between(t, c.recent_days, 2 * c.recent_days)) + 1.0)
        ).ln(),
    ),
    Feature(
        "supplier_departments_long",
        G,
        "Distinct supplier departments in contact with the account in the long window.",
        "count",
        "lower",
        "interactions",
        lambda t, c: t.department.nunique(where=within(t, c.long_days)),
        requires=("department",),
        fill_zero=True,
    ),
)
