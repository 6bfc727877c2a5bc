"""Dependency: links that bind the customer to the supplier make leaving costly.

The supplier creates dependency by doing more for the customer: ordering terminals, EDI,
vendor-managed inventory, service and maintenance contracts, training, co-design.
"""

from __future__ import annotations

from features.catalog import Feature, days_before, ratio, within

G = "dependency"


def _active(t):
    """A link is active at the cutoff if it started before it and had not ended before it."""
    return t.end_date.isnull() | (t.end_date >= t.cutoff)


FEATURES = (
    Feature(
        "active_links", G,
        "Dependency links (EDI, ordering terminal, service contract, ...) active at the cutoff.",
        "count", "lower", "links",
        lambda t, c: t.account_id.count(where=_active(t)),
        requires=("end_date",), fill_zero=True,
    ),
    Feature(
        "active_link_types", G,
        "Distinct types among the active links: breadth of dependency.",
        "count", "lower", "links",
        lambda t, c: t.link_type.nunique(where=_active(t)),
        requires=("end_date",), fill_zero=True,
    ),
    Feature(
        "ordering_links_active", G,
        "Active links through which the customer orders (features.direct_channels).",
        "count", "lower", "links",
        lambda t, c: t.account_id.count(where=_active(t) & t.link_type.isin(c.direct_channels)),
        requires=("end_date",), fill_zero=True,
    ),
    Feature(
        "contract_links_active", G,
        "Active service and maintenance contracts (features.contract_link_types).",
        "count", "lower", "links",
        lambda t, c: t.account_id.count(
            where=_active(t) & t.link_type.isin(c.contract_link_types)
        ),
        requires=("end_date",), fill_zero=True,
    ),
    Feature(
        "links_started_recent", G,
        "Links that started in the recent window: dependency being built.",
        "count", "lower", "links",
        lambda t, c: t.account_id.count(where=within(t, c.recent_days)),
        fill_zero=True,
    ),
    Feature(
        "links_ended_recent", G,
        "Links that ended in the recent window.",
        "count", "higher", "links",
        lambda t, c: t.account_id.count(
            where=t.end_date.notnull()
            & (t.end_date < t.cutoff)
            & (days_before(t, "end_date") <= c.recent_days)
        ),
        requires=("end_date",), fill_zero=True,
    ),
    Feature(
        "oldest_active_link_days", G,
        "Age of the oldest active link; empty when none is active.",
        "days", "lower", "links",
        lambda t, c: t.age.max(where=_active(t)),
        requires=("end_date",),
    ),
    Feature(
        "direct_channel_share", G,
        "Share of orders in the long window placed through direct channels (terminal, EDI, ...).",
        "share", "lower", "orders",
        lambda t, c: ratio(
            t.account_id.count(where=t.channel.isin(c.direct_channels) & within(t, c.long_days)),
            t.account_id.count(where=within(t, c.long_days)),
        ),
        requires=("channel",),
    ),
    Feature(
        "product_lines_long", G,
        "Distinct product lines bought in the long window.",
        "count", "lower", "orders",
        lambda t, c: t.product_line.nunique(where=within(t, c.long_days)),
        requires=("product_line",), fill_zero=True,
    ),
    Feature(
        "tenure_days", G,
        "Days since the account became a customer (accounts.customer_since).",
        "days", "lower", "accounts",
        lambda t, c: t.age.max(),
        requires=("customer_since",),
    ),
)  # fmt: skip
