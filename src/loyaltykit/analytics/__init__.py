"""Customer analytics on polars: summaries, RFM, lifecycle, cohorts, KPIs, journeys, feedback,
churn signals and the customer profile.

Every function takes a polars ``DataFrame`` or ``LazyFrame`` and returns the same kind; the work
is done by polars expressions, lazily, and collected only when an eager frame was given. Refunds
are netted against their purchase everywhere (see :func:`summary`).
"""

from loyaltykit.analytics.activity import ACTIVITY_COLUMNS, customer_activity
from loyaltykit.analytics.cohorts import cohort_retention, period_index, retention_matrix
from loyaltykit.analytics.feedback import advocates, csat, latest_feedback, nps, nps_group
from loyaltykit.analytics.journeys import (
    FUNNEL_STAGES,
    channel_transitions,
    journey_funnel,
    touchpoint_paths,
    touchpoints_before_outcomes,
)
from loyaltykit.analytics.kpis import (
    channel_summary,
    inter_purchase_times,
    kpi_summary,
    period_kpis,
    purchase_patterns,
    value_tiers,
)
from loyaltykit.analytics.lifecycle import (
    LIFECYCLE_STAGES,
    STAGE_DTYPE,
    LifecycleThresholds,
    lifecycle,
)
from loyaltykit.analytics.profile import customer_profile
from loyaltykit.analytics.rfm import (
    DEFAULT_SEGMENT_MAP,
    RFM,
    SegmentRule,
    rfm,
    rfm_values,
    segment_map_from_records,
)
from loyaltykit.analytics.risk import SIGNALS, RiskWeights, churn_signals, win_back_list
from loyaltykit.analytics.summary import calibration_and_holdout, purchase_periods, summary

__all__ = [
    "ACTIVITY_COLUMNS",
    "DEFAULT_SEGMENT_MAP",
    "FUNNEL_STAGES",
    "LIFECYCLE_STAGES",
    "RFM",
    "SIGNALS",
    "STAGE_DTYPE",
    "LifecycleThresholds",
    "RiskWeights",
    "SegmentRule",
    "advocates",
    "calibration_and_holdout",
    "channel_summary",
    "channel_transitions",
    "churn_signals",
    "cohort_retention",
    "csat",
    "customer_activity",
    "customer_profile",
    "inter_purchase_times",
    "journey_funnel",
    "kpi_summary",
    "latest_feedback",
    "lifecycle",
    "nps",
    "nps_group",
    "period_index",
    "period_kpis",
    "purchase_patterns",
    "purchase_periods",
    "retention_matrix",
    "rfm",
    "rfm_values",
    "segment_map_from_records",
    "summary",
    "touchpoint_paths",
    "touchpoints_before_outcomes",
    "value_tiers",
    "win_back_list",
]
