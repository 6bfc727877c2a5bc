"""Trust: trusted partners spend little meeting time on price and blame and share their plans.

Low-trust buyers spend about half of face-to-face time on price, contracts and blame,
high-trust ones about a quarter; trusted suppliers' goods are not inspected; aggressive
buyers play suppliers against each other.
"""

from __future__ import annotations

from features.catalog import Feature, ratio, within

G = "trust"


def _count_long(kind: str):
    """Interactions of one type in the long window."""
    return lambda t, c: t.account_id.count(where=(t.type == kind) & within(t, c.long_days))


FEATURES = (
    Feature(
        "transactional_minutes_share", G,
        "Share of meeting minutes in the long window spent on price, contracts and disputes "
        "(features.transactional_types) rather than collaboration (features.collaborative_types).",
        "share", "higher", "interactions",
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
        "collaborative_minutes_long", G,
        "Minutes of planning, design and review meetings in the long window.",
        "minutes", "lower", "interactions",
        lambda t, c: t.minutes.sum(
            where=t.type.isin(c.collaborative_types) & within(t, c.long_days)
        ),
        requires=("minutes",), fill_zero=True,
    ),
    Feature(
        "info_sharing_long", G,
        "Forecasts, plans and design ideas exchanged in the long window (features.sharing_types).",
        "count", "lower", "interactions",
        lambda t, c: t.account_id.count(
            where=t.type.isin(c.sharing_types) & within(t, c.long_days)
        ),
        fill_zero=True,
    ),
    Feature(
        "forecasts_shared_long", G,
        "Forecasts the customer shared in the long window.",
        "count", "lower", "interactions",
        _count_long("forecast_shared"),
        fill_zero=True,
    ),
    Feature(
        "design_collaborations_long", G,
        "Design collaborations in the long window.",
        "count", "lower", "interactions",
        _count_long("design_collaboration"),
        fill_zero=True,
    ),
    Feature(
        "price_negotiations_long", G,
        "Price negotiations in the long window: discount pressure.",
        "count", "higher", "interactions",
        _count_long("price_negotiation"),
        fill_zero=True,
    ),
    Feature(
        "disputes_long", G,
        "Disputes in the long window: time spent on blame.",
        "count", "higher", "interactions",
        _count_long("dispute"),
        fill_zero=True,
    ),
    Feature(
        "rfqs_recent", G,
        "Requests for quotation in the recent window: the customer shopping around.",
        "count", "higher", "interactions",
        lambda t, c: t.account_id.count(where=(t.type == "rfq") & within(t, c.recent_days)),
        fill_zero=True,
    ),
    Feature(
        "inspections_long", G,
        "Incoming inspections of the supplier's goods in the long window.",
        "count", "higher", "interactions",
        _count_long("inspection"),
        fill_zero=True,
    ),
)  # fmt: skip
