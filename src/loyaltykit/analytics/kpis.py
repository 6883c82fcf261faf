"""Retention and value KPIs: per period, overall, per channel; purchase timing; value tiers.

Purchases are net of refunds (a fully refunded purchase does not count; a partly refunded one
counts with what is left), as everywhere in :mod:`loyaltykit.analytics`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from loyaltykit.analytics._frames import (
    DateLike,
    as_lazy,
    check_columns,
    like,
    local_naive,
    period_start_of,
    timestamp_zone,
)
from loyaltykit.analytics.activity import customer_activity
from loyaltykit.analytics.cohorts import _COHORT_PERIODS, period_index
from loyaltykit.analytics.summary import _KEY, _VALUE, purchase_periods
from loyaltykit.errors import InvalidValueError
from loyaltykit.protocols import FrameT

__all__ = [
    "channel_summary",
    "inter_purchase_times",
    "kpi_summary",
    "period_kpis",
    "purchase_patterns",
    "value_tiers",
]


def _purchase_rows_with(
    lf: pl.LazyFrame,
    as_of: DateLike,
    owner: str,
    customer_id: str,
    timestamp: str,
    amount: str,
    keep: Sequence[str],
) -> pl.LazyFrame:
    """Net purchase rows up to ``as_of`` with their local time (``__local``) and day key."""
    schema = lf.collect_schema()
    zone = timestamp_zone(schema, timestamp, owner)
    cutoff = period_start_of(as_of, zone, "D", owner, "as_of")
    local = local_naive(pl.col(timestamp), zone)
    rows = lf.with_columns(
        local.alias("__local"), local.dt.truncate("1d").dt.epoch("us").alias(_KEY)
    )
    rows = rows.filter(pl.col(_KEY) <= cutoff)
    cols = [customer_id, _KEY, "__local", *keep]
    if "kind" not in schema:
        return rows.select(*cols, pl.col(amount).alias(_VALUE))
    purchases = rows.filter(pl.col("kind") == "purchase")
    refunded = (
        rows.filter(pl.col("kind") == "refund")
        .group_by("refund_of")
        .agg(pl.col(amount).sum().alias("__refunded"))
    )
    joined = purchases.join(
        refunded, left_on="transaction_id", right_on="refund_of", how="left", coalesce=True
    )
    remaining = pl.col(amount) - pl.col("__refunded").fill_null(0)
    net = joined.filter(pl.col("__refunded").is_null() | (remaining > 0))
    return net.select(*cols, remaining.alias(_VALUE))


def period_kpis(
    transactions: FrameT,
    *,
    as_of: DateLike,
    period: str = "M",
    customer_id: str = "customer_id",
    timestamp: str = "occurred_at",
    amount: str = "amount",
) -> FrameT:
    """Customers, orders, revenue, retention and churn for every calendar period.

    :param period: ``"D"``, ``"W"``, ``"M"`` (default), ``"Q"`` or ``"Y"``.
    :returns: one row per period with a purchase, sorted by time: ``period`` (Date, its start),
        ``active_customers``, ``new_customers`` (first purchase in the period),
        ``returning_customers``, ``orders``, ``revenue`` (Float64), ``average_order_value``,
        ``orders_per_customer``, ``repeat_rate`` (returning / active), ``retained``
        (customers active in the previous period and again in this one), ``retention_rate``
        (retained / active in the previous period; null for the first period) and
        ``churn_rate`` (1 - retention_rate).
    """
    if period not in _COHORT_PERIODS:
        raise InvalidValueError(
            "period_kpis", "period", period, f"must be one of {', '.join(_COHORT_PERIODS)}"
        )
    owner = "period_kpis"
    lf = as_lazy(transactions, owner, "transactions")
    rows = _purchase_rows_with(lf, as_of, owner, customer_id, timestamp, amount, ())
    trunc = {"D": "1d", "W": "1w", "M": "1mo", "Q": "1q", "Y": "1y"}[period]
    rows = rows.with_columns(pl.col("__local").dt.truncate(trunc).dt.date().alias("period"))
    rows = rows.with_columns(period_index(pl.col("period"), period).alias("__p"))
    per_customer = rows.group_by(customer_id, "__p").agg(
        pl.col("period").first(), pl.len().alias("__orders"), pl.col(_VALUE).sum().alias("__rev")
    )
    per_customer = per_customer.with_columns(
        (pl.col("__p") == pl.col("__p").min().over(customer_id)).alias("__new")
    )
    previous = per_customer.select(
        customer_id, (pl.col("__p") + 1).alias("__p"), pl.lit(True).alias("__was")
    )
    flagged = per_customer.join(previous, on=[customer_id, "__p"], how="left")
    table = (
        flagged.group_by("__p")
        .agg(
            pl.col("period").first(),
            pl.len().alias("active_customers"),
            pl.col("__new").sum().alias("new_customers"),
            pl.col("__orders").sum().alias("orders"),
            pl.col("__rev").sum().cast(pl.Float64).alias("revenue"),
            pl.col("__was").fill_null(False).sum().alias("retained"),
        )
        .sort("__p")
    )
    prev_active = (
        pl.when(pl.col("__p").shift(1) == pl.col("__p") - 1)
        .then(pl.col("active_customers").shift(1))
        .otherwise(0)
    )
    out = (
        table.with_columns(prev_active.alias("__prev_active"))
        .select(
            "period",
            pl.col("active_customers").cast(pl.Int64),
            pl.col("new_customers").cast(pl.Int64),
            (pl.col("active_customers") - pl.col("new_customers"))
            .cast(pl.Int64)
            .alias("returning_customers"),
            pl.col("orders").cast(pl.Int64),
            "revenue",
            (pl.col("revenue") / pl.col("orders")).alias("average_order_value"),
            (pl.col("orders") / pl.col("active_customers")).alias("orders_per_customer"),
            (
                (pl.col("active_customers") - pl.col("new_customers")) / pl.col("active_customers")
            ).alias("repeat_rate"),
            pl.col("retained").cast(pl.Int64),
            pl.when(pl.col("__prev_active") > 0)
            .then(pl.col("retained") / pl.col("__prev_active"))
            .alias("retention_rate"),
        )
        .with_columns((1 - pl.col("retention_rate")).alias("churn_rate"))
    )
    return like(transactions, out)


def kpi_summary(
    transactions: FrameT,
    *,
    as_of: DateLike,
    customer_id: str = "customer_id",
    timestamp: str = "occurred_at",
    amount: str = "amount",
) -> FrameT:
    """The headline figures in one row.

    :returns: ``customers`` (with a purchase), ``orders``, ``revenue`` (Float64),
        ``average_order_value``, ``orders_per_customer`` (purchase frequency),
        ``repeat_purchase_rate`` (share of customers with two or more purchase days),
        ``mean_inter_purchase_days`` and ``median_inter_purchase_days`` (between consecutive
        purchase days, over all repeat purchases), and ``historic_clv`` (mean net revenue per
        customer to date).
    """
    owner = "kpi_summary"
    act = as_lazy(
        customer_activity(
            as_lazy(transactions, owner, "transactions"),
            as_of=as_of,
            customer_id=customer_id,
            timestamp=timestamp,
            amount=amount,
        ),
        owner,
        "transactions",
    )
    gaps = as_lazy(
        inter_purchase_times(
            as_lazy(transactions, owner, "transactions"),
            as_of=as_of,
            customer_id=customer_id,
            timestamp=timestamp,
            amount=amount,
        ),
        owner,
        "transactions",
    )
    head = act.select(
        pl.len().cast(pl.Int64).alias("customers"),
        pl.col("orders").sum().cast(pl.Int64).alias("orders"),
        pl.col("revenue").sum().cast(pl.Float64).alias("revenue"),
        (pl.col("purchase_days") > 1).mean().alias("repeat_purchase_rate"),
    )
    timing = gaps.select(
        pl.col("gap_days").mean().cast(pl.Float64).alias("mean_inter_purchase_days"),
        pl.col("gap_days").median().cast(pl.Float64).alias("median_inter_purchase_days"),
    )
    out = pl.concat([head, timing], how="horizontal").select(
        "customers",
        "orders",
        "revenue",
        (pl.col("revenue") / pl.col("orders")).alias("average_order_value"),
        (pl.col("orders") / pl.col("customers")).alias("orders_per_customer"),
        "repeat_purchase_rate",
        "mean_inter_purchase_days",
        "median_inter_purchase_days",
        (pl.col("revenue") / pl.col("customers")).alias("historic_clv"),
    )
    return like(transactions, out)


def inter_purchase_times(
    transactions: FrameT,
    *,
    as_of: DateLike,
    customer_id: str = "customer_id",
    timestamp: str = "occurred_at",
    amount: str = "amount",
) -> FrameT:
    """Every gap between consecutive purchase days of a customer: the inter-purchase times.

    :returns: ``customer_id``, ``purchase_number`` (Int64; 2 for the gap before the second
        purchase day, ...), ``purchase_day`` (Date) and ``gap_days`` (Int64), sorted by customer
        and day. Describe the distribution with polars (``.describe()``, quantiles, a histogram).
    """
    owner = "inter_purchase_times"
    per = as_lazy(
        purchase_periods(
            as_lazy(transactions, owner, "transactions"),
            observation_end=as_of,
            period="D",
            customer_id=customer_id,
            timestamp=timestamp,
            amount=amount,
        ),
        owner,
        "transactions",
    )
    # sorted by customer and day: the previous row is the previous purchase day of the same
    # customer exactly when the customer id is the same
    day = pl.col("period_start").dt.date()
    same = (pl.col(customer_id) == pl.col(customer_id).shift(1)).fill_null(False)
    row = pl.int_range(pl.len(), dtype=pl.Int64)
    run_start = pl.when(~same).then(row).forward_fill()
    out = (
        per.with_columns(
            pl.when(same).then(day - day.shift(1)).dt.total_days().cast(pl.Int64).alias("gap_days"),
            (row - run_start + 1).alias("purchase_number"),
        )
        .filter(pl.col("gap_days").is_not_null())
        .select(customer_id, "purchase_number", day.alias("purchase_day"), "gap_days")
    )
    return like(transactions, out)


_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def purchase_patterns(
    transactions: FrameT,
    *,
    as_of: DateLike,
    customer_id: str = "customer_id",
    timestamp: str = "occurred_at",
    amount: str = "amount",
) -> FrameT:
    """Orders and revenue by day of week and hour of day (local time of the data's time zone).

    :returns: ``weekday`` (Int8, 1 = Monday ... 7 = Sunday), ``weekday_name``, ``hour``
        (Int8, 0-23), ``orders`` (Int64), ``revenue`` (Float64) and ``share_of_orders``, one row
        per (weekday, hour) with a purchase, sorted.
    """
    owner = "purchase_patterns"
    lf = as_lazy(transactions, owner, "transactions")
    rows = _purchase_rows_with(lf, as_of, owner, customer_id, timestamp, amount, ())
    out = (
        rows.group_by(
            pl.col("__local").dt.weekday().cast(pl.Int8).alias("weekday"),
            pl.col("__local").dt.hour().cast(pl.Int8).alias("hour"),
        )
        .agg(
            pl.len().cast(pl.Int64).alias("orders"),
            pl.col(_VALUE).sum().cast(pl.Float64).alias("revenue"),
        )
        .with_columns(
            pl.col("weekday")
            .replace_strict(list(range(1, 8)), list(_WEEKDAYS), return_dtype=pl.String)
            .alias("weekday_name"),
            (pl.col("orders") / pl.col("orders").sum()).alias("share_of_orders"),
        )
        .select("weekday", "weekday_name", "hour", "orders", "revenue", "share_of_orders")
        .sort("weekday", "hour")
    )
    return like(transactions, out)


def channel_summary(
    transactions: FrameT,
    *,
    as_of: DateLike,
    channel: str = "channel",
    customer_id: str = "customer_id",
    timestamp: str = "occurred_at",
    amount: str = "amount",
) -> FrameT:
    """Customers, revenue and retention by channel.

    :param channel: the channel column of the transactions (null channels count as
        ``"(unknown)"``).
    :returns: one row per channel, by revenue: ``channel``, ``customers`` (buying in it),
        ``orders``, ``revenue`` (Float64), ``revenue_share``, ``average_order_value``,
        ``acquired`` (customers whose first purchase was in it), ``acquired_repeat_rate`` (share
        of those with a later purchase day, in any channel: retention by acquisition channel)
        and ``repeat_rate`` (share of the channel's customers with two or more purchase days
        in it).
    """
    owner = "channel_summary"
    lf = as_lazy(transactions, owner, "transactions")
    schema = lf.collect_schema()
    check_columns(schema, {channel: "sales channel"}, owner)
    rows = _purchase_rows_with(
        lf, as_of, owner, customer_id, timestamp, amount, (channel,)
    ).with_columns(pl.col(channel).fill_null("(unknown)"))
    by_channel = rows.group_by(channel).agg(
        pl.col(customer_id).n_unique().cast(pl.Int64).alias("customers"),
        pl.len().cast(pl.Int64).alias("orders"),
        pl.col(_VALUE).sum().cast(pl.Float64).alias("revenue"),
    )
    days_in_channel = rows.group_by(channel, customer_id).agg(
        pl.col(_KEY).n_unique().alias("__days")
    )
    repeat = days_in_channel.group_by(channel).agg(
        (pl.col("__days") > 1).mean().alias("repeat_rate")
    )
    first = rows.group_by(customer_id).agg(
        pl.col(channel).min_by("__local").alias(channel), pl.col(_KEY).n_unique().alias("__days")
    )
    acquired = first.group_by(channel).agg(
        pl.len().cast(pl.Int64).alias("acquired"),
        (pl.col("__days") > 1).mean().alias("acquired_repeat_rate"),
    )
    out = (
        by_channel.join(acquired, on=channel, how="left")
        .join(repeat, on=channel, how="left")
        .with_columns(pl.col("acquired").fill_null(0))
        .select(
            channel,
            "customers",
            "orders",
            "revenue",
            (pl.col("revenue") / pl.col("revenue").sum()).alias("revenue_share"),
            (pl.col("revenue") / pl.col("orders")).alias("average_order_value"),
            "acquired",
            "acquired_repeat_rate",
            "repeat_rate",
        )
        .sort("revenue", channel, descending=[True, False])
    )
    return like(transactions, out)


def value_tiers(
    frame: FrameT,
    *,
    value: str = "revenue",
    labels: Sequence[str] = ("bronze", "silver", "gold"),
    quantiles: Sequence[float] | None = None,
    thresholds: Mapping[str, float] | None = None,
    tier: str = "value_tier",
) -> FrameT:
    """Add a value tier to any per-customer frame (historic revenue, predicted CLV, ...).

    Give either ``thresholds`` -- the user's own lower bounds, e.g. ``{"gold": 1000,
    "silver": 250, "bronze": 0}`` (a value gets the highest tier whose bound it reaches; values
    below every bound get null) -- or quantile tiers: ``labels`` from lowest to highest and
    ``quantiles`` the cut points between them (default: equal shares, e.g. 1/3 and 2/3 for three
    labels). Quantile cut points are computed on the frame (a small collect for a LazyFrame).

    :param value: the column to tier on (numeric).
    :param tier: name of the added column (String).
    :returns: ``frame`` with the ``tier`` column; nulls in ``value`` get a null tier.
    """
    owner = "value_tiers"
    lf = as_lazy(frame, owner, "frame")
    check_columns(lf.collect_schema(), {value: "value to tier on"}, owner)
    v = pl.col(value).cast(pl.Float64)
    if thresholds is not None:
        if not thresholds:
            raise InvalidValueError(owner, "thresholds", thresholds, "must name at least one tier")
        bounds = sorted(thresholds.items(), key=lambda kv: kv[1])
        expr: pl.Expr = pl.lit(None, pl.String)
        for name, bound in bounds:
            expr = pl.when(v >= float(bound)).then(pl.lit(name)).otherwise(expr)
        return like(frame, lf.with_columns(expr.alias(tier)))
    labels = list(labels)
    if len(labels) < 2:
        raise InvalidValueError(owner, "labels", labels, "needs at least two tiers")
    qs = (
        list(quantiles)
        if quantiles is not None
        else [i / len(labels) for i in range(1, len(labels))]
    )
    if len(qs) != len(labels) - 1 or any(not 0 < q < 1 for q in qs) or qs != sorted(qs):
        raise InvalidValueError(
            owner,
            "quantiles",
            qs,
            f"must be {len(labels) - 1} increasing cut points strictly between 0 and 1",
        )
    cuts = (
        lf.select([v.quantile(q, interpolation="linear").alias(str(i)) for i, q in enumerate(qs)])
        .collect()
        .row(0)
    )
    expr = pl.when(v.is_not_null()).then(pl.lit(labels[0]))
    for label, cut in zip(labels[1:], cuts, strict=True):
        if cut is not None:
            expr = pl.when(v > float(cut)).then(pl.lit(label)).otherwise(expr)
    return like(frame, lf.with_columns(expr.alias(tier)))
