"""The simulator's constants: the words its tables use, the dtype of its state, its sentinels.

The interaction and link types are the input data contract's (`pipeline/contract.py`), not
repeated here. The simulator draws each category by its position in these tuples, so their
order is part of the simulated world: reordering one changes every world.
"""

from __future__ import annotations

import numpy as np

from pipeline.contract import INTERACTION_TYPES, LINK_TYPES

F32 = np.float32
NEVER = np.iinfo(np.int64).max // 4  # day / second sentinel for "no date"
PEND = 6  # ring buffer length (weeks) for broken promises falling due

SEGMENTS = ("manufacturing", "utilities", "healthcare", "logistics", "construction", "food")
REGIONS = ("north", "south", "east", "west", "central")
SIZE_BANDS = ("small", "medium", "large")
PRODUCT_LINES = ("fasteners", "bearings", "hydraulics", "electrical", "tooling", "safety")

CHANNELS = ("ordering_terminal", "edi", "portal", "vmi", "email", "phone", "sales_rep")
N_DIRECT = 4  # the first channels need the link of the same name
assert CHANNELS[:N_DIRECT] == LINK_TYPES[:N_DIRECT], "direct channels are named after links"

DEPARTMENTS = (
    "sales",
    "service",
    "engineering",
    "manufacturing",
    "quality",
    "management",
    "finance",
)
REASONS = ("competitor_offer", "service_failure", "price", "sponsor_change", "unknown")
# the trust types: meetings spent on price, contracts and blame, or on working together
# the trust types as the feature library's defaults name them (features/language.py
# FeatureConfig; tests/test_config.py checks they agree): the simulator does not import features/,
# so that editing a feature does not make DVC simulate the world again
TRANSACTIONAL = ("price_negotiation", "contract_negotiation", "dispute")
COLLABORATIVE = ("planning_meeting", "design_collaboration", "business_review")
assert set(TRANSACTIONAL + COLLABORATIVE) <= set(INTERACTION_TYPES)

# integer codes of the names (the position in the tuple)
TYPE_CODE = {name: i for i, name in enumerate(INTERACTION_TYPES)}
DEPT_CODE = {name: i for i, name in enumerate(DEPARTMENTS)}
LINK_CODE = {name: i for i, name in enumerate(LINK_TYPES)}

# the words account names are made of
NAME_ADJECTIVES = (
    "Acme", "Nordic", "Atlas", "Summit", "Pioneer", "Vector", "Granite", "Harbor", "Apex",
    "Meridian", "Polar", "Crescent", "Falcon", "Sterling", "Orion", "Keystone", "Cobalt",
    "Evergreen", "Union", "Delta",
)  # fmt: skip
NAME_NOUNS = (
    "Tooling", "Fabrication", "Foods", "Energy", "Logistics", "Clinics", "Builders", "Plastics",
    "Metals", "Utilities", "Pharma", "Freight", "Components", "Systems", "Works", "Industries",
)  # fmt: skip
