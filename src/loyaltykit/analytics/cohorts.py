"""Cohort retention: customers grouped by acquisition period, followed period by period.

A customer's *cohort* is the calendar period of their first purchase; they are *retained* in a
later period when they buy in it (refunds netted, as in :func:`loyaltykit.analytics.summary`).
Periods are calendar days, ISO weeks, months, quarters or years in the data's time zone.
"""

from __future__ import annotations

import polars as pl

from loyaltykit.analytics._frames import DateLike, as_lazy, like
from loyaltykit.analytics.summary import purchase_periods
from loyaltykit.errors import InvalidValueError
from loyaltykit.protocols import FrameT

__all__ = ["cohort_retention", "period_index", "retention_matrix"]

_COHORT_PERIODS = ("D", "W", "M", "Q", "Y")


def period_index(start: pl.Expr, period: str) -> pl.Expr:
    """A running integer number of the calendar period starting at ``start`` (a date/datetime).

    Consecutive periods get consecutive numbers, so differences count periods.
    """
    if period == "D":
        return start.dt.date().cast(pl.Int32).cast(pl.Int64)
    if period == "W":
        return (start.dt.date().cast(pl.Int32).cast(pl.Int64) + 3) // 7  # weeks start Monday
    year = start.dt.year().cast(pl.Int64)
    month = start.dt.month().cast(pl.Int64)
    if period == "M":
        return year * 12 + month - 1
    if period == "Q":
        return year * 4 + (month - 1) // 3
    if period == "Y":
        return year
    raise InvalidValueError(
        "period_index", "period", period, f"must be one of {', '.join(_COHORT_PERIODS)}"
    )


def cohort_retention(
    transactions: FrameT,
    *,
    as_of: DateLike,
    period: str = "M",
    customer_id: str = "customer_id",
    timestamp: str = "occurred_at",
    amount: str = "amount",
) -> FrameT:
    """The cohort retention table in long form: one row per (cohort, periods since acquisition).

    :param as_of: last day taken into account.
    :param period: ``"D"``, ``"W"``, ``"M"`` (default), ``"Q"`` or ``"Y"``.
    :returns: ``cohort`` (Date, start of the acquisition period), ``periods_since`` (Int64, 0 for
        the acquisition period), ``cohort_size``, ``active`` (customers of the cohort buying in
        that period), ``retention`` (``active / cohort_size``, Float64) and ``revenue`` (Float64,
        net spend of the cohort in that period); sorted by cohort and ``periods_since``. Periods
        in which nobody of the cohort bought are absent (retention 0).
    """
    if period not in _COHORT_PERIODS:
        raise InvalidValueError(
            "cohort_retention", "period", period, f"must be one of {', '.join(_COHORT_PERIODS)}"
        )
    per = as_lazy(
        purchase_periods(
            as_lazy(transactions, "cohort_retention", "transactions"),
            observation_end=as_of,
            period=period,  # type: ignore[arg-type]
            sort=False,
            customer_id=customer_id,
            timestamp=timestamp,
            amount=amount,
        ),
        "cohort_retention",
        "transactions",
    )
    indexed = per.with_columns(period_index(pl.col("period_start"), period).alias("__p"))
    first = indexed.group_by(customer_id).agg(
        pl.col("__p").min().alias("__c"), pl.col("period_start").min().alias("cohort")
    )
    joined = indexed.join(first, on=customer_id)
    counts = joined.group_by("cohort", (pl.col("__p") - pl.col("__c")).alias("periods_since")).agg(
        pl.len().alias("active"),  # purchase_periods has one row per customer and period
        pl.col("value").sum().cast(pl.Float64).alias("revenue"),
    )
    sizes = first.group_by("cohort").agg(pl.len().alias("cohort_size"))
    out = (
        counts.join(sizes, on="cohort")
        .select(
            pl.col("cohort").dt.date(),
            pl.col("periods_since").cast(pl.Int64),
            pl.col("cohort_size").cast(pl.Int64),
            pl.col("active").cast(pl.Int64),
            (pl.col("active") / pl.col("cohort_size")).alias("retention"),
            "revenue",
        )
        .sort("cohort", "periods_since")
    )
    return like(transactions, out)


def retention_matrix(
    cohorts: pl.DataFrame | pl.LazyFrame, *, value: str = "retention"
) -> pl.DataFrame:
    """The long table of :func:`cohort_retention` as a matrix: one row per cohort.

    :param value: the column to spread (``"retention"``, ``"active"`` or ``"revenue"``).
    :returns: an eager frame (it is meant for display): ``cohort``, ``cohort_size`` and one
        column per ``periods_since`` (``"0"``, ``"1"``, ...), null where nobody bought.
    """
    frame = cohorts.collect() if isinstance(cohorts, pl.LazyFrame) else cohorts
    wide = frame.pivot(
        on="periods_since", index=["cohort", "cohort_size"], values=value, sort_columns=False
    )
    numbers = sorted((c for c in wide.columns if c not in ("cohort", "cohort_size")), key=int)
    return wide.select("cohort", "cohort_size", *numbers).sort("cohort")
