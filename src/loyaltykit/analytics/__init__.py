"""Customer analytics on polars: summaries, RFM, lifecycle, cohorts, KPIs, journeys, feedback.

Every function takes a polars ``DataFrame`` or ``LazyFrame`` and returns the same kind; the work
is done by polars expressions, lazily, and collected only when an eager frame was given.
"""

from loyaltykit.analytics.activity import customer_activity
from loyaltykit.analytics.rfm import (
    DEFAULT_SEGMENT_MAP,
    RFM,
    SegmentRule,
    rfm,
    rfm_values,
    segment_map_from_records,
)
from loyaltykit.analytics.summary import calibration_and_holdout, purchase_periods, summary

__all__ = [
    "DEFAULT_SEGMENT_MAP",
    "RFM",
    "SegmentRule",
    "calibration_and_holdout",
    "customer_activity",
    "purchase_periods",
    "rfm",
    "rfm_values",
    "segment_map_from_records",
    "summary",
]
