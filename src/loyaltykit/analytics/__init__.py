"""Customer analytics on polars: summaries, RFM, lifecycle, cohorts, KPIs, journeys, feedback.

Every function takes a polars ``DataFrame`` or ``LazyFrame`` and returns the same kind; the work
is done by polars expressions, lazily, and collected only when an eager frame was given.
"""

from loyaltykit.analytics.summary import calibration_and_holdout, purchase_periods, summary

__all__ = ["calibration_and_holdout", "purchase_periods", "summary"]
