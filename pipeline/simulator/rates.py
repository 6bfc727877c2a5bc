"""The tables of rates and probabilities the observable events are drawn from.

By size band: how many accounts, how often they order, how much, how much attention the
supplier gives them. By category: unit prices of the product lines, the weight of each order
channel and link type, the weekday of business events, meeting lengths, which interaction
types get resolved. And who meets whom: the department handling each interaction type, the
type of a supplier touch given its department, the split of customer-initiated meetings into
transactional and collaborative ones.
"""

from __future__ import annotations

import numpy as np

from pipeline.simulator.constants import (
    CHANNELS,
    COLLABORATIVE,
    DEPARTMENTS,
    F32,
    INTERACTION_TYPES,
    N_DIRECT,
    TRANSACTIONAL,
    TYPE_CODE,
)
from pipeline.simulator.draws import cum_rows

SIZE_P = np.array([0.55, 0.32, 0.13])
ORDER_F = np.array([0.6, 1.2, 2.6])  # weekly order rate multiplier by size band
VALUE_F = np.array([0.6, 1.0, 1.8])  # order value multiplier by size band
ATT_F = np.array([0.75, 1.0, 1.5])  # supplier attention multiplier by size band
UNIT_PRICE = np.array([0.8, 25.0, 140.0, 35.0, 60.0, 12.0])
_CHANNEL_W = np.array([3.0, 4.0, 2.0, 3.0, 1.0, 0.7, 0.5])
GAIN_W = np.array([1.0, 0.8, 1.0, 0.6, 0.8, 0.7, 0.7, 0.3, 0.3])
WEEKDAY_CDF = np.cumsum([0.19, 0.19, 0.19, 0.19, 0.19, 0.03, 0.02])
# meeting length (median minutes); NaN for types without minutes
MINUTES = np.array(
    [np.nan, np.nan, 120, 180, 60, 75, 50, 60, np.nan, 90, 60, 120, np.nan, np.nan, np.nan]
)
RESOLVABLE = np.zeros(len(INTERACTION_TYPES), bool)
RESOLVABLE[[TYPE_CODE["complaint"], TYPE_CODE["service_request"], TYPE_CODE["repair"]]] = True


def _table(rows: dict[str, dict[str, float]], cols: tuple[str, ...]) -> np.ndarray:
    """Build a row-normalised probability table from sparse {row: {col: weight}}."""
    out = np.zeros((len(rows), len(cols)))
    for i, row in enumerate(rows.values()):
        for name, w in row.items():
            out[i, cols.index(name)] = w
    return out / out.sum(1, keepdims=True)


# department handling a customer-initiated interaction, by type
_DEPT_BY_TYPE = _table(
    {
        "complaint": {"quality": 0.4, "service": 0.4, "sales": 0.2},
        "service_request": {"service": 1.0},
        "repair": {"service": 0.85, "engineering": 0.15},
        "installation": {"service": 0.7, "engineering": 0.3},
        "price_negotiation": {"sales": 0.85, "management": 0.15},
        "contract_negotiation": {"sales": 0.6, "management": 0.2, "finance": 0.2},
        "dispute": {"quality": 0.4, "finance": 0.3, "sales": 0.3},
        "planning_meeting": {"manufacturing": 0.5, "sales": 0.3, "engineering": 0.2},
        "forecast_shared": {"manufacturing": 0.6, "sales": 0.4},
        "design_collaboration": {"engineering": 1.0},
        "business_review": {"sales": 0.6, "management": 0.4},
        "site_visit": {"sales": 0.5, "engineering": 0.5},
        "rfq": {"sales": 1.0},
        "inspection": {"quality": 1.0},
        "other": {"sales": 0.5, "service": 0.3, "finance": 0.2},
    },
    DEPARTMENTS,
)
# type of a supplier touch given its department: [non-meeting, transactional, collaborative]
_TYPE_BY_DEPT = np.stack(
    [
        _table(
            {
                "sales": {"site_visit": 1.0},
                "service": {"repair": 0.5, "installation": 0.3, "site_visit": 0.2},
                "engineering": {"installation": 0.5, "site_visit": 0.5},
                "manufacturing": {"site_visit": 1.0},
                "quality": {"site_visit": 0.7, "other": 0.3},
                "management": {"site_visit": 1.0},
                "finance": {"other": 1.0},
            },
            INTERACTION_TYPES,
        ),
        _table(
            {
                "sales": {"price_negotiation": 0.6, "contract_negotiation": 0.4},
                "service": {"dispute": 0.6, "contract_negotiation": 0.4},
                "engineering": {"dispute": 0.6, "price_negotiation": 0.4},
                "manufacturing": {"dispute": 0.6, "price_negotiation": 0.4},
                "quality": {"dispute": 1.0},
                "management": {"contract_negotiation": 0.7, "price_negotiation": 0.3},
                "finance": {"contract_negotiation": 0.5, "dispute": 0.5},
            },
            INTERACTION_TYPES,
        ),
        _table(
            {
                "sales": {"business_review": 0.6, "planning_meeting": 0.4},
                "service": {"planning_meeting": 0.7, "business_review": 0.3},
                "engineering": {"design_collaboration": 0.7, "planning_meeting": 0.3},
                "manufacturing": {"planning_meeting": 0.8, "design_collaboration": 0.2},
                "quality": {"business_review": 0.6, "planning_meeting": 0.4},
                "management": {"business_review": 1.0},
                "finance": {"business_review": 1.0},
            },
            INTERACTION_TYPES,
        ),
    ]
)
DEPT_CUM = np.cumsum(_DEPT_BY_TYPE, axis=1)
TYPE_CUM = np.cumsum(_TYPE_BY_DEPT, axis=2)
ENG_DEPT_P = _table({"x": {"engineering": 0.55, "manufacturing": 0.45}}, DEPARTMENTS)[0]
OTH_DEPT_P = _table(
    {"x": {"sales": 0.5, "service": 0.2, "quality": 0.1, "management": 0.12, "finance": 0.08}},
    DEPARTMENTS,
)[0]
# customer-initiated meetings: the type within each trust type
TRANS_P = _table(
    {"x": dict(zip(TRANSACTIONAL, (0.45, 0.3, 0.25), strict=True))}, INTERACTION_TYPES
)[0]
COLLAB_P = _table(
    {"x": dict(zip(COLLABORATIVE, (0.4, 0.25, 0.35), strict=True))}, INTERACTION_TYPES
)[0]

# cumulative channel probabilities for each set of direct links (bit j: link j is active)
CHANNEL_CUM = cum_rows(
    _CHANNEL_W
    * np.hstack(
        [
            (np.arange(1 << N_DIRECT)[:, None] >> np.arange(N_DIRECT)) & 1,
            np.ones((1 << N_DIRECT, len(CHANNELS) - N_DIRECT)),
        ]
    )
).astype(F32)
