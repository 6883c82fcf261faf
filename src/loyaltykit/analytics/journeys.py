"""Customer journeys from interaction logs: paths, channel transitions, the stage funnel and the
touchpoints that come before churn or before a repeat purchase.

Interactions are frames in :data:`loyaltykit.schema.INTERACTION_SCHEMA` (``customer_id``,
``occurred_at``, ``channel``, ``type``); purchases come from the transactions, net of refunds.
"""

from __future__ import annotations

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
from loyaltykit.analytics.activity import _activity_from_days, _days
from loyaltykit.analytics.lifecycle import LifecycleThresholds, _stages_from_activity
from loyaltykit.errors import InvalidValueError
from loyaltykit.protocols import FrameT

__all__ = [
    "FUNNEL_STAGES",
    "channel_transitions",
    "journey_funnel",
    "touchpoint_paths",
    "touchpoints_before_outcomes",
]

FUNNEL_STAGES = ("first_touch", "first_purchase", "repeat", "loyal")
"""The stages of :func:`journey_funnel`, in order."""


def _day_gap(a: str, b: str) -> pl.Expr:
    return (pl.col(b) - pl.col(a)).dt.total_days().cast(pl.Float64)


def _until(lf: pl.LazyFrame, as_of: DateLike | None, column: str, owner: str) -> pl.LazyFrame:
    if as_of is None:
        return lf
    zone = timestamp_zone(lf.collect_schema(), column, owner)
    cutoff = period_start_of(as_of, zone, "D", owner, "as_of")
    day = local_naive(pl.col(column), zone).dt.truncate("1d").dt.epoch("us")
    return lf.filter(day <= cutoff)


def touchpoint_paths(
    interactions: FrameT,
    *,
    as_of: DateLike | None = None,
    by: str = "channel",
    separator: str = " > ",
    collapse_repeats: bool = True,
    customer_id: str = "customer_id",
    timestamp: str = "occurred_at",
) -> FrameT:
    """Each customer's sequence of touchpoints, in time order.

    :param by: what a step is: ``"channel"`` (default) or ``"type"``.
    :param collapse_repeats: merge consecutive identical steps (``web > web > store`` becomes
        ``web > store``).
    :returns: ``customer_id``, ``touchpoints`` (Int64, all interactions), ``steps`` (Int64, in the
        path), ``path`` (String), ``first_touch`` and ``last_touch`` (timestamps), sorted by
        customer id.
    """
    owner = "touchpoint_paths"
    lf = _until(as_lazy(interactions, owner, "interactions"), as_of, timestamp, owner)
    check_columns(lf.collect_schema(), {customer_id: "customer id", by: "step"}, owner)
    step = pl.col(by).fill_null("(unknown)")
    ordered = lf.sort(customer_id, timestamp).with_columns(step.alias("__step"))
    if collapse_repeats:
        keep = pl.col("__step") != pl.col("__step").shift(1).over(customer_id)
        ordered = ordered.with_columns(keep.fill_null(True).alias("__keep"))
    else:
        ordered = ordered.with_columns(pl.lit(True).alias("__keep"))
    out = (
        ordered.group_by(customer_id)
        .agg(
            pl.len().cast(pl.Int64).alias("touchpoints"),
            pl.col("__keep").sum().cast(pl.Int64).alias("steps"),
            pl.col("__step").filter(pl.col("__keep")).str.join(separator).alias("path"),
            pl.col(timestamp).min().alias("first_touch"),
            pl.col(timestamp).max().alias("last_touch"),
        )
        .sort(customer_id)
    )
    return like(interactions, out)


def channel_transitions(
    interactions: FrameT,
    *,
    as_of: DateLike | None = None,
    by: str = "channel",
    customer_id: str = "customer_id",
    timestamp: str = "occurred_at",
) -> FrameT:
    """The transition matrix between consecutive touchpoints of the same customer, in long form.

    :param by: ``"channel"`` (default) or ``"type"``.
    :returns: ``from``, ``to`` (String), ``transitions`` (Int64) and ``share`` (of the
        transitions leaving ``from``; each ``from`` sums to 1), sorted. Pivot with
        ``frame.pivot(on="to", index="from", values="share")`` for the square matrix.
    """
    owner = "channel_transitions"
    lf = _until(as_lazy(interactions, owner, "interactions"), as_of, timestamp, owner)
    check_columns(lf.collect_schema(), {customer_id: "customer id", by: "step"}, owner)
    step = pl.col(by).fill_null("(unknown)")
    pairs = (
        lf.sort(customer_id, timestamp)
        .select(
            step.shift(1).over(customer_id).alias("from"),
            step.alias("to"),
        )
        .filter(pl.col("from").is_not_null())
    )
    out = (
        pairs.group_by("from", "to")
        .agg(pl.len().cast(pl.Int64).alias("transitions"))
        .with_columns(
            (pl.col("transitions") / pl.col("transitions").sum().over("from")).alias("share")
        )
        .sort("from", "to")
    )
    return like(interactions, out)


def journey_funnel(
    interactions: FrameT,
    transactions: pl.DataFrame | pl.LazyFrame,
    *,
    as_of: DateLike,
    loyal_min_purchase_days: int = 4,
    customer_id: str = "customer_id",
    timestamp: str = "occurred_at",
) -> FrameT:
    """The stage funnel: first touch, first purchase, repeat purchase, loyal.

    A customer's *first touch* is their first interaction or purchase, whichever comes first;
    *repeat* is their second purchase day; *loyal* their ``loyal_min_purchase_days``-th.

    :returns: one row per stage of :data:`FUNNEL_STAGES`: ``stage``, ``customers`` (reaching it),
        ``conversion`` (share of the previous stage's customers; 1 for the first), ``drop_off``
        (1 - conversion), ``share_of_first_touch`` and ``median_days_from_previous`` (Float64,
        among customers reaching the stage; null for the first).
    """
    owner = "journey_funnel"
    if loyal_min_purchase_days < 3:
        raise InvalidValueError(
            owner, "loyal_min_purchase_days", loyal_min_purchase_days, "must be >= 3"
        )
    inter = _until(as_lazy(interactions, owner, "interactions"), as_of, timestamp, owner)
    days, _ = _days(
        as_lazy(transactions, owner, "transactions"),
        as_of=as_of,
        owner=owner,
        customer_id=customer_id,
        timestamp="occurred_at",
        amount="amount",
    )
    day = pl.col("__day")
    # sorted by day, each customer's group lists their purchase days in order
    nth = (
        days.sort("__day")
        .group_by(customer_id)
        .agg(
            day.first().alias("first_purchase"),
            day.get(1, null_on_oob=True).alias("repeat"),
            day.get(loyal_min_purchase_days - 1, null_on_oob=True).alias("loyal"),
        )
        .with_columns(
            pl.from_epoch(c, time_unit="d").cast(pl.Datetime("us")).alias(c)
            for c in ("first_purchase", "repeat", "loyal")
        )
    )
    zone = timestamp_zone(inter.collect_schema(), timestamp, owner)
    touches = inter.group_by(customer_id).agg(
        local_naive(pl.col(timestamp), zone).min().dt.truncate("1d").alias("__touch")
    )
    people = touches.join(nth, on=customer_id, how="full", coalesce=True).with_columns(
        pl.min_horizontal("__touch", "first_purchase").alias("first_touch")
    )
    row = people.select(
        pl.col("first_touch").count().alias("first_touch"),
        pl.col("first_purchase").count().alias("first_purchase"),
        pl.col("repeat").count().alias("repeat"),
        pl.col("loyal").count().alias("loyal"),
        _day_gap("first_touch", "first_purchase").median().alias("d_first_purchase"),
        _day_gap("first_purchase", "repeat").median().alias("d_repeat"),
        _day_gap("repeat", "loyal").median().alias("d_loyal"),
    )
    stages = pl.LazyFrame({"stage": list(FUNNEL_STAGES), "__i": list(range(len(FUNNEL_STAGES)))})
    counts = row.select(
        pl.concat_list([pl.col(s).cast(pl.Int64) for s in FUNNEL_STAGES]).alias("customers"),
        pl.concat_list(
            [
                pl.lit(None, pl.Float64),
                pl.col("d_first_purchase"),
                pl.col("d_repeat"),
                pl.col("d_loyal"),
            ]
        ).alias("median_days_from_previous"),
    ).explode("customers", "median_days_from_previous")
    out = (
        pl.concat([stages, counts], how="horizontal")
        .select(
            "stage",
            "customers",
            pl.when(pl.col("__i") == 0)
            .then(1.0)
            .otherwise(pl.col("customers") / pl.col("customers").shift(1))
            .alias("conversion"),
        )
        .with_columns(
            (1 - pl.col("conversion")).alias("drop_off"),
            (pl.col("customers") / pl.col("customers").first()).alias("share_of_first_touch"),
        )
    )
    out = pl.concat([out, counts.select("median_days_from_previous")], how="horizontal")
    return like(interactions, out)


def touchpoints_before_outcomes(
    interactions: FrameT,
    transactions: pl.DataFrame | pl.LazyFrame,
    *,
    as_of: DateLike,
    window_days: int = 30,
    by: str = "type",
    thresholds: LifecycleThresholds | None = None,
    customer_id: str = "customer_id",
    timestamp: str = "occurred_at",
) -> FrameT:
    """Which touchpoints come before churn, compared with those before a repeat purchase.

    *Repeat purchases* are the second and later purchase days of every customer; a touchpoint
    *precedes* one when it falls in the ``window_days`` before it. *Churned* customers are those
    whose lifecycle stage is ``lapsed`` as of ``as_of`` (see
    :func:`loyaltykit.analytics.lifecycle`); a touchpoint precedes the churn when it falls in the
    ``window_days`` after their last purchase, when they stopped buying.

    :param by: ``"type"`` (default) or ``"channel"``.
    :returns: one row per touchpoint kind: ``touchpoint``, ``before_repeat`` (share of repeat
        purchases with one in their window), ``before_churn`` (share of churned customers with
        one in theirs), ``churn_lift`` (``before_churn / before_repeat``; above 1 means it is
        more typical of churn), ``repeat_events`` and ``churned_customers`` (the denominators),
        by lift.
    """
    owner = "touchpoints_before_outcomes"
    if window_days <= 0:
        raise InvalidValueError(owner, "window_days", window_days, "must be > 0")
    inter = _until(as_lazy(interactions, owner, "interactions"), as_of, timestamp, owner)
    zone = timestamp_zone(inter.collect_schema(), timestamp, owner)
    touch = inter.select(
        customer_id,
        pl.col(by).fill_null("(unknown)").alias("touchpoint"),
        local_naive(pl.col(timestamp), zone).alias("__t"),
    )
    tx = as_lazy(transactions, owner, "transactions")
    days, today = _days(
        tx,
        as_of=as_of,
        owner=owner,
        customer_id=customer_id,
        timestamp="occurred_at",
        amount="amount",
    )
    if isinstance(transactions, pl.DataFrame):
        days = days.collect().lazy()
    act = _activity_from_days(days, today, customer_id)
    window = pl.duration(days=window_days)
    event = pl.from_epoch(pl.col("__day"), time_unit="d").cast(pl.Datetime("us"))
    first_day = act.select(customer_id, pl.col("first_purchase").cast(pl.Int32).alias("__first"))
    repeats = (
        days.join(first_day, on=customer_id)
        .filter(pl.col("__day") > pl.col("__first"))
        .select(customer_id, event.alias("__event"))
        .sort("__event")
    )
    n_repeat = repeats.select(pl.len().alias("repeat_events"))
    stages = _stages_from_activity(act, thresholds or LifecycleThresholds())
    churned = (
        stages.filter(pl.col("stage") == "lapsed")
        .select(customer_id, pl.col("last_purchase").cast(pl.Datetime("us")).alias("__last"))
        .sort("__last")
    )
    n_churned = churned.select(pl.len().alias("churned_customers"))
    touch = touch.sort("__t")
    kinds_list = touch.select(pl.col("touchpoint").unique()).collect().to_series().to_list()
    repeat_parts = []
    churn_parts = []
    for kind in kinds_list:  # a handful of touchpoint kinds, not rows
        of_kind = touch.filter(pl.col("touchpoint") == kind).select(customer_id, "__t")
        # latest touchpoint of this kind strictly before each repeat purchase day
        before = repeats.join_asof(
            of_kind,
            left_on="__event",
            right_on="__t",
            by=customer_id,
            strategy="backward",
            allow_exact_matches=False,
            check_sortedness=False,  # both sides are sorted above
        )
        repeat_parts.append(
            before.select(
                pl.lit(kind).alias("touchpoint"),
                (pl.col("__t") >= pl.col("__event") - window).sum().alias("__repeat_hits"),
            )
        )
        # earliest touchpoint of this kind on or after the last purchase day of the churned
        after = churned.join_asof(
            of_kind,
            left_on="__last",
            right_on="__t",
            by=customer_id,
            strategy="forward",
            check_sortedness=False,
        )
        churn_parts.append(
            after.select(
                pl.lit(kind).alias("touchpoint"),
                (pl.col("__t") < pl.col("__last") + window + pl.duration(days=1))
                .sum()
                .alias("__churn_hits"),
            )
        )
    schema = {"touchpoint": pl.String, "__repeat_hits": pl.UInt32}
    before_repeat = pl.concat(repeat_parts) if repeat_parts else pl.LazyFrame(schema=schema)
    before_churn = (
        pl.concat(churn_parts)
        if churn_parts
        else pl.LazyFrame(schema={"touchpoint": pl.String, "__churn_hits": pl.UInt32})
    )
    kinds = touch.select("touchpoint").unique()
    out = (
        kinds.join(before_repeat, on="touchpoint", how="left")
        .join(before_churn, on="touchpoint", how="left")
        .join(n_repeat, how="cross")
        .join(n_churned, how="cross")
        .with_columns(pl.col("__repeat_hits", "__churn_hits").fill_null(0))
        .select(
            "touchpoint",
            (pl.col("__repeat_hits") / pl.col("repeat_events")).alias("before_repeat"),
            (pl.col("__churn_hits") / pl.col("churned_customers")).alias("before_churn"),
            pl.col("repeat_events").cast(pl.Int64),
            pl.col("churned_customers").cast(pl.Int64),
        )
        .with_columns((pl.col("before_churn") / pl.col("before_repeat")).alias("churn_lift"))
        .select(
            "touchpoint",
            "before_repeat",
            "before_churn",
            "churn_lift",
            "repeat_events",
            "churned_customers",
        )
        .sort(["churn_lift", "touchpoint"], descending=[True, False], nulls_last=True)
    )
    return like(interactions, out)
