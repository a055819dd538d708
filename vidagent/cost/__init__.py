"""What a run costs: estimates before it (estimate.py, with the caption policy replayed in
captions.py; the segment path next to the single-client one in fleet.py), the price table and time profile they use (tables.py), and profiles measured
from real runs (measured.py). Pure, except for reading the tables' files in tables.py.
"""

from .captions import CaptionCounts, caption_bounds, count_captions, policy_settings
from .estimate import (
    ASSUMED_FPS,
    ESTIMATE_VERSION,
    EndpointCost,
    Estimate,
    Figure,
    MediaFacts,
    PlanCost,
    Work,
    configured_work,
    cost_of,
    estimate,
    naive_work,
    parse_duration,
)
from .fleet import DEFAULT_UPLINK_MBPS, FleetEstimate, PathCost, fleet_estimate, segment_length
from .tables import (
    ENDPOINTS,
    UNITS,
    EndpointProfile,
    Measurement,
    Pool,
    PriceTable,
    SegmentProfile,
    TimeProfile,
    VlmProfile,
    dollars_for,
    load_prices,
    load_pricing,
    load_profile,
    parse_prices,
    parse_profile,
    shipped,
)

__all__ = [
    "ASSUMED_FPS", "DEFAULT_UPLINK_MBPS", "ENDPOINTS", "FleetEstimate", "PathCost", "SegmentProfile",
    "fleet_estimate", "segment_length", "ESTIMATE_VERSION", "UNITS", "CaptionCounts", "EndpointCost",
    "EndpointProfile", "Estimate", "Figure", "MediaFacts", "Measurement", "PlanCost", "Pool",
    "PriceTable", "TimeProfile", "VlmProfile", "Work", "caption_bounds", "configured_work",
    "cost_of", "count_captions", "dollars_for", "estimate", "load_prices", "load_pricing",
    "load_profile", "naive_work", "parse_duration", "parse_prices", "parse_profile",
    "policy_settings", "shipped",
]
