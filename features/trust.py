"""Trust: trusted partners spend little meeting time on price and blame and share their plans.

Low-trust buyers spend about half of face-to-face time on price, contracts and blame,
high-trust ones about a quarter; trusted suppliers' goods are not inspected; aggressive
buyers play suppliers against each other.
"""

from __future__ import annotations

from features.language import Feature, count, ratio, total

G = "trust"


def _of_type(kind: str):
    return lambda t, c: t.type == kind


def _in(*vocabularies: str):
    """Interactions whose type is in the given params vocabularies."""
    return lambda t, c: t.type.isin(sum((getattr(c, v) for v in vocabularies), ()))


def _count(kind: str, window: str = "long") -> dict:
    """Interactions of one type in a window."""
    return {"n": count("interactions", window, _of_type(kind))}


def _minutes(t):
    return t.minutes


FEATURES = (
    Feature(
        "transactional_minutes_share", G,
        "Share of meeting minutes in the long window spent on price, contracts and disputes "
        "(features.transactional_types) rather than collaboration (features.collaborative_types).",
        "share", "higher", "interactions",
        lambda a, c: ratio(a.transactional, a.meetings),
        requires=("minutes",),
        aggs={
            "transactional": total("interactions", _minutes, "long", _in("transactional_types")),
            "meetings": total(
                "interactions", _minutes, "long", _in("transactional_types", "collaborative_types")
            ),
        },
    ),
    Feature(
        "collaborative_minutes_long", G,
        "Minutes of planning, design and review meetings in the long window.",
        "minutes", "lower", "interactions",
        lambda a, c: a.n,
        requires=("minutes",), fill_zero=True,
        aggs={"n": total("interactions", _minutes, "long", _in("collaborative_types"))},
    ),
    Feature(
        "info_sharing_long", G,
        "Forecasts, plans and design ideas exchanged in the long window (features.sharing_types).",
        "count", "lower", "interactions",
        lambda a, c: a.n,
        fill_zero=True,
        aggs={"n": count("interactions", "long", _in("sharing_types"))},
    ),
    Feature(
        "forecasts_shared_long", G,
        "Forecasts the customer shared in the long window.",
        "count", "lower", "interactions",
        lambda a, c: a.n,
        fill_zero=True,
        aggs=_count("forecast_shared"),
    ),
    Feature(
        "design_collaborations_long", G,
        "Design collaborations in the long window.",
        "count", "lower", "interactions",
        lambda a, c: a.n,
        fill_zero=True,
        aggs=_count("design_collaboration"),
    ),
    Feature(
        "price_negotiations_long", G,
        "Price negotiations in the long window: discount pressure.",
        "count", "higher", "interactions",
        lambda a, c: a.n,
        fill_zero=True,
        aggs=_count("price_negotiation"),
    ),
    Feature(
        "disputes_long", G,
        "Disputes in the long window: time spent on blame.",
        "count", "higher", "interactions",
        lambda a, c: a.n,
        fill_zero=True,
        aggs=_count("dispute"),
    ),
    Feature(
        "rfqs_recent", G,
        "Requests for quotation in the recent window: the customer shopping around.",
        "count", "higher", "interactions",
        lambda a, c: a.n,
        fill_zero=True,
        aggs=_count("rfq", "recent"),
    ),
    Feature(
        "rfqs_long", G,
        "Requests for quotation in the long window: a habit of shopping around.",
        "count", "higher", "interactions",
        lambda a, c: a.n,
        fill_zero=True,
        aggs=_count("rfq"),
    ),
    Feature(
        "inspections_long", G,
        "Incoming inspections of the supplier's goods in the long window.",
        "count", "higher", "interactions",
        lambda a, c: a.n,
        fill_zero=True,
        aggs=_count("inspection"),
    ),
)  # fmt: skip
