"""The relationship feature library: pure functions from input tables and cutoffs to features.

No file paths and no params reading here: callers pass Ibis tables and a FeatureConfig.
"""

from features.build import build_features, eligible_spine
from features.catalog import CATALOG, GROUPS
from features.language import Feature, FeatureConfig

__all__ = [
    "CATALOG",
    "GROUPS",
    "Feature",
    "FeatureConfig",
    "build_features",
    "eligible_spine",
]
