"""Per-customer purchase activity as of a date: the base table of RFM, lifecycle, risk, profile.

Purchases are counted by calendar day (in the time zone of the data), net of refunds as in
:func:`loyaltykit.analytics.summary`: a fully refunded purchase does not count, a partly refunded
one counts with what is left.
"""

from __future__ import annotations

import polars as pl

from loyaltykit.analytics._frames import DateLike, as_lazy, like
from loyaltykit.analytics.summary import (
    _COUNT,
    _KEY,
    _VALUE,
    _net_periods,
    _period_key,
    _purchase_rows,
)
from loyaltykit.protocols import FrameT

__all__ = ["ACTIVITY_COLUMNS", "customer_activity"]

_DAY_US = 86_400_000_000
_DAY = "__day"
_FIRST_REVENUE = "__first_day_revenue"

ACTIVITY_COLUMNS = (
    "first_purchase",
    "last_purchase",
    "previous_purchase",
    "purchase_days",
    "orders",
    "revenue",
    "tenure_days",
    "days_since_last",
    "mean_gap_days",
    "last_gap_days",
)
"""The columns :func:`customer_activity` adds after the customer id."""


def _days(
    lf: pl.LazyFrame,
    *,
    as_of: DateLike,
    owner: str,
    customer_id: str,
    timestamp: str,
    amount: str,
) -> tuple[pl.LazyFrame, int]:
    """Net purchases per customer and day: customer, ``__day`` (days since 1970, Int32),
    ``__value`` (net amount) and ``__count`` (purchases), plus the day number of ``as_of``."""
    key, as_of_key, scale, use_kind = _period_key(
        lf,
        owner=owner,
        customer_id=customer_id,
        timestamp=timestamp,
        amount=amount,
        kind="kind",
        transaction_id="transaction_id",
        refund_of="refund_of",
        period="D",
        cutoff=as_of,
        cutoff_name="as_of",
    )
    rows = _purchase_rows(
        lf,
        customer_id=customer_id,
        amount=amount,
        kind="kind" if use_kind else None,
        transaction_id="transaction_id",
        refund_of="refund_of",
        key=key,
        cutoff_key=as_of_key,
    )
    assert scale == _DAY_US  # period "D": the key counts days since 1970
    days = _net_periods(rows, customer_id).rename({_KEY: _DAY})
    return days, as_of_key


def _activity_from_days(days: pl.LazyFrame, today: int, customer_id: str) -> pl.LazyFrame:
    """The activity table (unsorted) from :func:`_days`, with the first day's revenue as the
    hidden column ``__first_day_revenue``."""
    day = pl.col(_DAY)
    # sorted by day, each customer's group lists its days in order: first/last/second-to-last
    per_customer = (
        days.sort(_DAY)
        .group_by(customer_id)
        .agg(
            day.first().alias("__first"),
            day.last().alias("__last"),
            day.tail(2).first().alias("__prev"),
            pl.len().cast(pl.Int64).alias("purchase_days"),
            pl.col(_COUNT).sum().cast(pl.Int64).alias("orders"),
            pl.col(_VALUE).sum().alias("revenue"),
            pl.col(_VALUE).first().alias(_FIRST_REVENUE),
        )
    )
    several = pl.col("purchase_days") > 1
    return per_customer.select(
        customer_id,
        pl.from_epoch("__first", time_unit="d").alias("first_purchase"),
        pl.from_epoch("__last", time_unit="d").alias("last_purchase"),
        pl.when(several).then(pl.from_epoch("__prev", time_unit="d")).alias("previous_purchase"),
        "purchase_days",
        "orders",
        "revenue",
        (today - pl.col("__first")).cast(pl.Int64).alias("tenure_days"),
        (today - pl.col("__last")).cast(pl.Int64).alias("days_since_last"),
        pl.when(several)
        .then((pl.col("__last") - pl.col("__first")) / (pl.col("purchase_days") - 1))
        .cast(pl.Float64)
        .alias("mean_gap_days"),
        pl.when(several)
        .then(pl.col("__last") - pl.col("__prev"))
        .cast(pl.Int64)
        .alias("last_gap_days"),
        _FIRST_REVENUE,
    )


def customer_activity(
    transactions: FrameT,
    *,
    as_of: DateLike,
    customer_id: str = "customer_id",
    timestamp: str = "occurred_at",
    amount: str = "amount",
) -> FrameT:
    """What each customer bought up to and including the day ``as_of``.

    :param transactions: transactions in the core schema, eager or lazy (refunds are netted).
    :param as_of: the day of the analysis (a date, or a timezone-aware datetime whose day in the
        data's time zone is used); later transactions are ignored.
    :param customer_id: name of the customer id column; ``timestamp`` and ``amount`` likewise.
    :returns: one row per customer with a purchase, sorted by customer id:

        * ``first_purchase``, ``last_purchase`` (Date) and ``previous_purchase`` (Date, the
          purchase day before the last one; null for one-day buyers);
        * ``purchase_days`` (distinct purchase days), ``orders`` (purchases counted one by one),
          ``revenue`` (net spend, in the amount's dtype);
        * ``tenure_days`` (``as_of`` minus the first purchase day), ``days_since_last``,
          ``mean_gap_days`` (mean days between purchase days, null for one-day buyers) and
          ``last_gap_days`` (days between the last two purchase days, null likewise).
    """
    owner = "customer_activity"
    days, today = _days(
        as_lazy(transactions, owner, "transactions"),
        as_of=as_of,
        owner=owner,
        customer_id=customer_id,
        timestamp=timestamp,
        amount=amount,
    )
    out = _activity_from_days(days, today, customer_id).drop(_FIRST_REVENUE).sort(customer_id)
    return like(transactions, out)
