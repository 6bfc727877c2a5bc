"""Dependency: links that bind the customer to the supplier make leaving costly.

The supplier creates dependency by doing more for the customer: ordering terminals, EDI,
vendor-managed inventory, service and maintenance contracts, training, co-design.
"""

from __future__ import annotations

from features.language import Feature, count, distinct, first, ratio, since

G = "dependency"


def _active(t, c):
    """A link is active at the cutoff if it started before it and had not ended before it."""
    return t.end_date.isnull() | (t.end_date >= t.cutoff)


def _active_of(types: str):
    return lambda t, c: _active(t, c) & t.link_type.isin(getattr(c, types))


def _ended_recent(t, c):
    ended = (t.cutoff.epoch_seconds() - t.end_date.epoch_seconds()) / 86400.0
    return t.end_date.notnull() & (t.end_date < t.cutoff) & (ended <= c.recent_days)


def _direct(t, c):
    return t.channel.isin(c.direct_channels)


FEATURES = (
    Feature(
        "active_links", G,
        "Dependency links (EDI, ordering terminal, service contract, ...) active at the cutoff.",
        "count", "lower", "links",
        lambda a, c: a.n,
        requires=("end_date",), fill_zero=True,
        aggs={"n": count("links", "all", _active)},
    ),
    Feature(
        "active_link_types", G,
        "Distinct types among the active links: breadth of dependency.",
        "count", "lower", "links",
        lambda a, c: a.n,
        requires=("end_date",), fill_zero=True,
        aggs={"n": distinct("links", lambda t: t.link_type, "all", _active)},
    ),
    Feature(
        "ordering_links_active", G,
        "Active links through which the customer orders (features.direct_channels).",
        "count", "lower", "links",
        lambda a, c: a.n,
        requires=("end_date",), fill_zero=True,
        aggs={"n": count("links", "all", _active_of("direct_channels"))},
    ),
    Feature(
        "contract_links_active", G,
        "Active service and maintenance contracts (features.contract_link_types).",
        "count", "lower", "links",
        lambda a, c: a.n,
        requires=("end_date",), fill_zero=True,
        aggs={"n": count("links", "all", _active_of("contract_link_types"))},
    ),
    Feature(
        "links_started_recent", G,
        "Links that started in the recent window: dependency being built.",
        "count", "lower", "links",
        lambda a, c: a.n,
        fill_zero=True,
        aggs={"n": count("links", "recent")},
    ),
    Feature(
        "links_ended_recent", G,
        "Links that ended in the recent window.",
        "count", "higher", "links",
        lambda a, c: a.n,
        requires=("end_date",), fill_zero=True,
        aggs={"n": count("links", "all", _ended_recent)},
    ),
    Feature(
        "oldest_active_link_days", G,
        "Age of the oldest active link; empty when none is active.",
        "days", "lower", "links",
        lambda a, c: since(a, a.start),
        requires=("end_date",),
        aggs={"start": first("links", _active)},
        grows_with_history=True,
    ),
    Feature(
        "direct_channel_share", G,
        "Share of orders in the long window placed through direct channels (terminal, EDI, ...).",
        "share", "lower", "orders",
        lambda a, c: ratio(a.direct, a.all),
        requires=("channel",),
        aggs={"direct": count("orders", "long", _direct), "all": count("orders", "long")},
    ),
    Feature(
        "product_lines_long", G,
        "Distinct product lines bought in the long window.",
        "count", "lower", "orders",
        lambda a, c: a.n,
        requires=("product_line",), fill_zero=True,
        aggs={"n": distinct("orders", lambda t: t.product_line, "long")},
    ),
    Feature(
        "tenure_days", G,
        "Days since the account became a customer (accounts.customer_since).",
        "days", "lower", "accounts",
        lambda a, c: since(a, a.since),
        requires=("customer_since",),
        aggs={"since": first("accounts")},
        grows_with_history=True,
    ),
)  # fmt: skip
