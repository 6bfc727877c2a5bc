"""Trust: trusted partners spend little meeting time on price and blame and share their plans."""

from __future__ import annotations

from features.catalog import Feature, ratio, within

G = "trust"

FEATURES = (
    Feature(
        "transactional_minutes_share",
        G,
        "Share of meeting minutes in the long window spent on price, contracts and disputes "
        "(features.transactional_types) rather than collaboration (features.collaborative_types).",
        "share",
        "higher",
        "interactions",
        lambda t, c: ratio(
            t.minutes.sum(where=t.type.isin(c.transactional_types) & within(t, c.long_days)),
            t.minutes.sum(
                where=t.type.isin(c.transactional_types + c.collaborative_types)
                & within(t, c.long_days)
            ),
        ),
        requires=("minutes",),
    ),
    Feature(
        "info_sharing_long",
        G,
        "Forecasts, plans and design ideas exchanged in the long window (features.sharing_types).",
        "count",
        "lower",
        "interactions",
        lambda t, c: t.account_id.count(
            where=t.type.isin(c.sharing_types) & within(t, c.long_days)
        ),
        fill_zero=True,
    ),
    Feature(
        "rfqs_recent",
        G,
        "Requests for quotation in the recent window: the customer shopping around.",
        "count",
        "higher",
        "interactions",
        lambda t, c: t.account_id.count(where=(t.type == "rfq") & within(t, c.recent_days)),
        fill_zero=True,
    ),
    Feature(
        "inspections_long",
        G,
        "Incoming inspections of the supplier's goods in the long window.",
        "count",
        "higher",
        "interactions",
        lambda t, c: t.account_id.count(where=(t.type == "inspection") & within(t, c.long_days)),
        fill_zero=True,
    ),
)
