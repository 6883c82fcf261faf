"""Per-customer summaries for the buy-till-you-die models: frequency, recency, T, monetary value.

The definitions are those of lifetimes' ``summary_data_from_transaction_data`` (and of Fader,
Hardie & Lee 2005), computed with two polars aggregations (by customer and period, then by
customer). A lazy frame, or a large eager one, whose ids and amounts allow it is summarised on
packed integer keys instead (:mod:`loyaltykit.analytics._summary_packed`), with exactly the same
result:

* purchases are grouped into calendar ``period``\\ s (days by default, in the time zone of the
  timestamps); several purchases in one period count once, with their amounts summed;
* ``frequency`` is the number of *repeat* periods: periods with a purchase, minus one;
* ``recency`` is the time from the first to the last purchase period, in ``time_unit``;
* ``T`` is the time from the first purchase period to the period of ``observation_end``;
* ``monetary_value`` is the mean value of the repeat periods, ``0`` for customers without one.

Refunds (rows whose ``kind`` is ``"refund"``) are netted against the purchase named by their
``refund_of`` when they happen no later than the end of the summarised window: a partly refunded
purchase counts with its remaining amount, a fully refunded one does not count as a purchase at
all. Refunds of purchases that are not in the frame cannot be attributed and are ignored;
:func:`loyaltykit.read_transactions` rejects them at the edge.
"""

from __future__ import annotations

import polars as pl

from loyaltykit.analytics import _summary_packed as packed
from loyaltykit.analytics._frames import (
    DateLike,
    Period,
    TimeUnit,
    as_lazy,
    check_columns,
    exact_ratio,
    like,
    like_sorted,
    local_naive,
    period_number,
    period_start_of,
    timestamp_zone,
    unit_micros,
)
from loyaltykit.errors import InvalidValueError
from loyaltykit.protocols import FrameT

__all__ = ["calibration_and_holdout", "purchase_periods", "summary"]

_KEY = "__period"
_VALUE = "__value"
_COUNT = "__count"


def _period_key(
    lf: pl.LazyFrame,
    *,
    owner: str,
    customer_id: str,
    timestamp: str,
    amount: str | None,
    kind: str | None,
    transaction_id: str,
    refund_of: str,
    period: str,
    cutoff: DateLike,
    cutoff_name: str,
) -> tuple[pl.Expr, int, int, bool]:
    """Check the columns; the period number of each row, that of ``cutoff`` and their scale.

    :returns: the period-number expression, the period number of ``cutoff``, the scale
        (microseconds per period number) and whether refunds are netted (a ``kind`` column).
    """
    schema = lf.collect_schema()
    needed = {customer_id: "customer id", timestamp: "purchase time"}
    if amount is not None:
        needed[amount] = "purchase amount"
    check_columns(schema, needed, owner)
    use_kind = kind is not None and kind in schema
    if use_kind:
        check_columns(
            schema,
            {transaction_id: "transaction id, to net refunds", refund_of: "refunded purchase"},
            owner,
        )
    zone = timestamp_zone(schema, timestamp, owner)
    key, scale = period_number(local_naive(pl.col(timestamp), zone), period, owner)
    cutoff_key = period_start_of(cutoff, zone, period, owner, cutoff_name) // scale
    return key, cutoff_key, scale, use_kind


def _purchase_rows(
    lf: pl.LazyFrame,
    *,
    customer_id: str,
    amount: str | None,
    kind: str | None,
    transaction_id: str,
    refund_of: str,
    key: pl.Expr,
    cutoff_key: int,
) -> pl.LazyFrame:
    """Purchase rows up to the period ``cutoff_key``, with refund adjustments appended.

    Columns: customer id, ``__period`` (the period number ``key`` of :func:`_period_key`),
    ``__value`` and ``__count``. Purchases have count 1; for every refunded purchase one
    adjustment row follows with minus the refunded amount and count -1 when the refunds cover
    the whole purchase (0 otherwise). Summing value and count per customer and period
    (:func:`_net_periods`) gives the net value and the number of purchases that still count;
    periods whose count drops to 0 held only fully refunded purchases and are dropped. This keeps
    the refund lookup to the few refunded purchases: the purchases themselves are never joined.

    :param kind: the kind column, or ``None`` when refunds are not netted (``_period_key``'s
        ``use_kind``).
    """
    value_dtype = _value_dtype(lf.collect_schema()[amount]) if amount is not None else pl.Int64
    value = pl.col(amount).cast(value_dtype) if amount is not None else pl.lit(0, pl.Int64)
    rows = lf.with_columns(key.alias(_KEY)).filter(pl.col(_KEY) <= cutoff_key)
    one = pl.lit(1, pl.Int32).alias(_COUNT)
    if kind is None:
        return rows.select(customer_id, _KEY, value.alias(_VALUE), one)
    purchases = rows.filter(pl.col(kind) == "purchase")
    refunds = rows.filter(pl.col(kind) == "refund")
    if amount is None:
        refunded = refunds.group_by(refund_of).agg(
            pl.lit(None, pl.Int64).first().alias("__refunded")
        )
    else:
        refunded = refunds.group_by(refund_of).agg(value.sum().alias("__refunded"))
    touched = purchases.join(refunded, left_on=transaction_id, right_on=refund_of, how="inner")
    if amount is None:
        # without amounts, any refund of a purchase cancels it
        full: pl.Expr = pl.lit(True)
        taken = value
    else:
        full = pl.col("__refunded") >= value
        taken = pl.when(full).then(value).otherwise(pl.col("__refunded"))
    adjustments = touched.select(
        customer_id,
        _KEY,
        (-taken).cast(value_dtype).alias(_VALUE),
        pl.when(full).then(-1).otherwise(0).cast(pl.Int32).alias(_COUNT),
    )
    base = purchases.select(customer_id, _KEY, value.alias(_VALUE), one)
    return pl.concat([base, adjustments], how="vertical")


def _value_dtype(dtype: pl.DataType) -> pl.DataType:
    """The dtype amounts are summed in: integers narrower than 64 bits are widened to Int64
    (sums of Int32 amounts would wrap, and unsigned ones could not be negated to net refunds),
    UInt64 to Decimal(38, 0); other dtypes (Decimal, Int64, floats) are kept."""
    if dtype in (pl.Int8, pl.Int16, pl.Int32, pl.UInt8, pl.UInt16, pl.UInt32):
        return pl.Int64()
    if dtype == pl.UInt64:
        return pl.Decimal(38, 0)
    return dtype


def _net_periods(rows: pl.LazyFrame, customer_id: str) -> pl.LazyFrame:
    """Net value and count of purchases per customer and period; empty periods dropped."""
    return (
        rows.group_by(customer_id, _KEY)
        .agg(pl.col(_VALUE).sum(), pl.col(_COUNT).sum())
        .filter(pl.col(_COUNT) > 0)
    )


def purchase_periods(
    transactions: FrameT,
    *,
    observation_end: DateLike,
    period: Period = "D",
    customer_id: str = "customer_id",
    timestamp: str = "occurred_at",
    amount: str | None = "amount",
    kind: str | None = "kind",
    transaction_id: str = "transaction_id",
    refund_of: str = "refund_of",
    sort: bool = True,
) -> FrameT:
    """One row per customer and purchase period, with refunds netted: the input of the summary.

    :param transactions: transactions in the core schema (see :data:`loyaltykit.schema.TRANSACTION_SCHEMA`).
    :param observation_end: last day (or moment) of observation; purchases of later periods are
        left out.
    :param period: the calendar period purchases are grouped into (``"D"`` days by default).
    :returns: columns ``customer_id`` (as named in the input), ``period_start`` (naive
        ``Datetime("us")``, wall-clock time in the data's time zone) and ``value`` (the period's
        net amount, in the input's dtype, with integers narrower than 64 bits as Int64 and UInt64 as
        Decimal(38, 0); ``0`` without an amount column), sorted by customer and
        period unless ``sort=False``.
    """
    owner = "purchase_periods"
    lf = as_lazy(transactions, owner, "transactions")
    key, cutoff_key, scale, use_kind = _period_key(
        lf,
        owner=owner,
        customer_id=customer_id,
        timestamp=timestamp,
        amount=amount,
        kind=kind,
        transaction_id=transaction_id,
        refund_of=refund_of,
        period=period,
        cutoff=observation_end,
        cutoff_name="observation_end",
    )
    rows = _purchase_rows(
        lf,
        customer_id=customer_id,
        amount=amount,
        kind=kind if use_kind else None,
        transaction_id=transaction_id,
        refund_of=refund_of,
        key=key,
        cutoff_key=cutoff_key,
    )
    out = (
        _net_periods(rows, customer_id)
        .rename({_VALUE: "value"})
        .select(
            customer_id,
            (pl.col(_KEY).cast(pl.Int64) * scale).cast(pl.Datetime("us")).alias("period_start"),
            "value",
        )
    )
    if sort:
        out = out.sort(customer_id, "period_start")
    return like(transactions, out)


def _aggregate(
    rows: pl.LazyFrame, customer_id: str, end_key: int, scale: int, unit: int
) -> pl.LazyFrame:
    """Two hash aggregations: periods of each customer, then the customer's figures."""
    key = pl.col(_KEY)
    value = pl.col(_VALUE)
    periods = _net_periods(rows, customer_id)
    first = key.min()
    grouped = periods.group_by(customer_id).agg(
        (pl.len() - 1).cast(pl.Int64).alias("frequency"),
        first.cast(pl.Int64).alias("__first"),
        key.max().cast(pl.Int64).alias("__last"),
        # exact (decimal) repeat revenue: everything but the first period
        (value.sum() - value.min_by(key)).cast(pl.Float64).alias("__repeat_total"),
    )
    # period numbers -> time units, correctly rounded
    return (
        grouped.select(
            customer_id,
            "frequency",
            exact_ratio(pl.col("__last") - pl.col("__first"), scale, unit).alias("recency"),
            exact_ratio(end_key - pl.col("__first"), scale, unit).alias("T"),
            "__repeat_total",
        )
        .with_columns(
            pl.when(pl.col("frequency") > 0)
            .then(pl.col("__repeat_total") / pl.col("frequency"))
            .otherwise(0.0)
            .alias("monetary_value")
        )
        .drop("__repeat_total")
    )


def summary(
    transactions: FrameT,
    *,
    observation_end: DateLike,
    time_unit: TimeUnit = "D",
    period: Period = "D",
    customer_id: str = "customer_id",
    timestamp: str = "occurred_at",
    amount: str | None = "amount",
    kind: str | None = "kind",
    transaction_id: str = "transaction_id",
    refund_of: str = "refund_of",
    sort: bool = True,
) -> FrameT:
    """Frequency, recency, T and monetary value of every customer with a purchase.

    The definitions are those of lifetimes' ``summary_data_from_transaction_data`` (see the
    module documentation and :doc:`/explanation/analytics-definitions`); the published CDNOW
    calibration summary is reproduced exactly with ``time_unit="W"`` and
    ``observation_end=date(1997, 9, 30)``.

    :param transactions: transactions in the core schema
        (:data:`loyaltykit.schema.TRANSACTION_SCHEMA`), eager or lazy. Only the named columns are
        used; without a ``kind`` column every row is a purchase.
    :param observation_end: the last day of observation (a :class:`datetime.date`, read in the
        time zone of the data, or a timezone-aware datetime). The period containing it is the last
        one counted; later purchases are left out, and ``T`` runs to the start of that period.
    :param time_unit: unit of ``recency`` and ``T``: ``"D"`` days, ``"W"`` weeks (days / 7),
        ``"H"`` hours, ``"min"``, ``"s"``.
    :param period: calendar period purchases are grouped into: ``"D"`` (default), ``"H"``,
        ``"W"`` (ISO weeks), ``"M"``, ``"Q"``, ``"Y"``, ... Purchases in one period count once.
    :param customer_id: name of the customer id column (kept as the name of the output column).
    :param timestamp: name of the purchase time column (timezone-aware Datetime, or Date).
    :param amount: name of the amount column, or ``None`` for no ``monetary_value``.
    :param kind: name of the ``"purchase"``/``"refund"`` column, or ``None`` to treat every row
        as a purchase. Ignored when the frame has no such column.
    :param transaction_id: name of the transaction id column (used to net refunds).
    :param refund_of: name of the column naming the purchase a refund refunds.
    :param sort: sort the rows by customer id (default). ``False`` leaves them in no particular
        order, which saves a sort of the customer ids in the general plan. (Frames with ids of
        up to 8 bytes or integer ids -- lazy ones, and eager ones of 50,000 rows or more -- are
        summarised on packed integer keys, see :doc:`/explanation/analytics-performance`; that
        plan's output is sorted anyway. For a ``LazyFrame`` it collects a few small results
        first, reading the input once more, and returns the rest lazily.)
    :returns: the same kind of frame as given, one row per customer sorted by customer id:
        ``customer_id`` (input name and dtype), ``frequency`` (Int64), ``recency`` and ``T``
        (Float64, in ``time_unit``) and, with an amount, ``monetary_value`` (Float64).
    """
    owner = "summary"
    unit = unit_micros(time_unit, owner)
    lf = as_lazy(transactions, owner, "transactions")
    key, end_key, scale, use_kind = _period_key(
        lf,
        owner=owner,
        customer_id=customer_id,
        timestamp=timestamp,
        amount=amount,
        kind=kind,
        transaction_id=transaction_id,
        refund_of=refund_of,
        period=period,
        cutoff=observation_end,
        cutoff_name="observation_end",
    )
    netted_kind = kind if use_kind else None
    if isinstance(transactions, pl.LazyFrame) or transactions.height >= packed.MIN_ROWS:
        result = packed.packed_summary(
            transactions,
            customer_id=customer_id,
            amount=amount,
            kind=netted_kind,
            transaction_id=transaction_id,
            refund_of=refund_of,
            key=key,
            end_key=end_key,
            scale=scale,
            unit=unit,
        )
        if result is not None:
            return result
    rows = _purchase_rows(
        lf,
        customer_id=customer_id,
        amount=amount,
        kind=netted_kind,
        transaction_id=transaction_id,
        refund_of=refund_of,
        key=key,
        cutoff_key=end_key,
    )
    out = _aggregate(rows, customer_id, end_key, scale, unit)
    if amount is None:
        out = out.drop("monetary_value")
    if sort:
        return like_sorted(transactions, out, customer_id)
    return like(transactions, out)


def calibration_and_holdout(
    transactions: FrameT,
    *,
    calibration_end: DateLike,
    observation_end: DateLike,
    time_unit: TimeUnit = "D",
    period: Period = "D",
    customer_id: str = "customer_id",
    timestamp: str = "occurred_at",
    amount: str | None = "amount",
    kind: str | None = "kind",
    transaction_id: str = "transaction_id",
    refund_of: str = "refund_of",
) -> FrameT:
    """Summary over a calibration window plus what each customer did in the holdout window.

    As lifetimes' ``calibration_and_holdout_data``: the calibration columns are
    :func:`summary` with ``observation_end=calibration_end``, suffixed ``_cal``; the holdout
    window runs from the period after ``calibration_end`` through the period of
    ``observation_end``. Only customers with a calibration purchase appear.

    One deliberate difference: ``monetary_value_holdout`` is the mean value of the holdout
    *periods* (the same definition as ``monetary_value_cal``), where lifetimes averages holdout
    *transactions*; the two agree whenever no customer buys twice in one period.

    Refunds are netted within each window: a calibration purchase refunded during the holdout
    window still counts in calibration (the refund was not yet known at ``calibration_end``).

    :param calibration_end: last day of the calibration window.
    :param observation_end: last day of the holdout window; must not be before
        ``calibration_end``.
    :returns: ``customer_id``, ``frequency_cal`` (Int64), ``recency_cal``, ``T_cal``,
        [``monetary_value_cal``], ``frequency_holdout`` (Int64, distinct holdout periods),
        [``monetary_value_holdout``] and ``duration_holdout`` (Float64, holdout length in
        ``time_unit``), sorted by customer id. Other parameters as in :func:`summary`.
    """
    owner = "calibration_and_holdout"
    unit = unit_micros(time_unit, owner)
    lf = as_lazy(transactions, owner, "transactions")

    def rows(cutoff: DateLike, cutoff_name: str) -> tuple[pl.LazyFrame, int, int]:
        key, cutoff_key, scale, use_kind = _period_key(
            lf,
            owner=owner,
            customer_id=customer_id,
            timestamp=timestamp,
            amount=amount,
            kind=kind,
            transaction_id=transaction_id,
            refund_of=refund_of,
            period=period,
            cutoff=cutoff,
            cutoff_name=cutoff_name,
        )
        purchases = _purchase_rows(
            lf,
            customer_id=customer_id,
            amount=amount,
            kind=kind if use_kind else None,
            transaction_id=transaction_id,
            refund_of=refund_of,
            key=key,
            cutoff_key=cutoff_key,
        )
        return purchases, cutoff_key, scale

    cal_rows, cal_key, scale = rows(calibration_end, "calibration_end")
    all_rows, end_key, _ = rows(observation_end, "observation_end")
    if end_key < cal_key:
        raise InvalidValueError(
            owner,
            "observation_end",
            observation_end,
            f"must not be before calibration_end ({calibration_end})",
        )
    cal = _aggregate(cal_rows, customer_id, cal_key, scale, unit).rename(
        {
            "frequency": "frequency_cal",
            "recency": "recency_cal",
            "T": "T_cal",
            "monetary_value": "monetary_value_cal",
        }
    )
    hold_periods = _net_periods(all_rows.filter(pl.col(_KEY) > cal_key), customer_id).with_columns(
        pl.col(_VALUE).cast(pl.Float64)
    )
    holdout = hold_periods.group_by(customer_id).agg(
        pl.len().cast(pl.Int64).alias("frequency_holdout"),
        pl.col(_VALUE).mean().alias("monetary_value_holdout"),
    )
    out = cal.join(holdout, on=customer_id, how="left", coalesce=True).with_columns(
        pl.col("frequency_holdout").fill_null(0),
        pl.col("monetary_value_holdout").fill_null(0.0),
        pl.lit((end_key - cal_key) * scale / unit, pl.Float64).alias("duration_holdout"),
    )
    if amount is None:
        out = out.drop("monetary_value_cal", "monetary_value_holdout")
    return like_sorted(transactions, out, customer_id)
