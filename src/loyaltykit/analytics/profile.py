"""The customer profile: one row per customer joining everything the analytics know about them.

The single view of the customer: purchase activity, the BTYD summary, RFM scores and segment,
lifecycle stage, value tier, feedback, journey and churn risk -- plus any per-customer frames of
your own (for example predicted CLV and its tiers from :mod:`loyaltykit.models`) through
``extra=``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from loyaltykit.analytics._frames import (
    TIME_UNITS,
    DateLike,
    as_lazy,
    check_columns,
    like,
    unit_micros,
)
from loyaltykit.analytics.activity import _FIRST_REVENUE, _activity_from_days, _days
from loyaltykit.analytics.feedback import latest_feedback
from loyaltykit.analytics.journeys import touchpoint_paths
from loyaltykit.analytics.kpis import value_tiers
from loyaltykit.analytics.lifecycle import LifecycleThresholds, _stages_from_activity, lifecycle
from loyaltykit.analytics.rfm import DEFAULT_SEGMENT_MAP, RFM, SegmentRule
from loyaltykit.analytics.risk import RiskWeights, _signals
from loyaltykit.errors import InvalidValueError
from loyaltykit.protocols import FrameT

__all__ = ["customer_profile"]


def customer_profile(
    transactions: FrameT,
    *,
    as_of: DateLike,
    feedback: pl.DataFrame | pl.LazyFrame | None = None,
    interactions: pl.DataFrame | pl.LazyFrame | None = None,
    customers: pl.DataFrame | pl.LazyFrame | None = None,
    extra: Sequence[pl.DataFrame | pl.LazyFrame] = (),
    segment_map: Sequence[SegmentRule] | None = DEFAULT_SEGMENT_MAP,
    tier_thresholds: Mapping[str, float] | None = None,
    thresholds: LifecycleThresholds | None = None,
    weights: RiskWeights | None = None,
    time_unit: str = "D",
    customer_id: str = "customer_id",
) -> FrameT:
    """One row per customer: the single view of the customer.

    Columns, in groups (all computed as of the day ``as_of``):

    * activity (:func:`~loyaltykit.analytics.customer_activity`): ``first_purchase``,
      ``last_purchase``, ``purchase_days``, ``orders``, ``revenue``, ``tenure_days``,
      ``days_since_last``, ``mean_gap_days``;
    * BTYD summary (:func:`~loyaltykit.analytics.summary`, in ``time_unit``): ``frequency``,
      ``recency``, ``T``, ``monetary_value``;
    * RFM (:class:`~loyaltykit.analytics.RFM`): ``r_score``, ``f_score``, ``m_score``,
      ``rfm_cell``, ``segment``;
    * lifecycle: ``stage``, ``rhythm_days``; value: ``value_tier`` (terciles of revenue, or
      ``tier_thresholds`` such as ``{"gold": 1000, "silver": 250, "bronze": 0}``);
    * feedback (with ``feedback``): ``responses``, ``latest_nps``, ``nps_group``,
      ``mean_csat``;
    * journey (with ``interactions``): ``touchpoints``, ``first_touch``, ``last_touch``,
      ``path``;
    * risk (:func:`~loyaltykit.analytics.churn_signals`): the five signals and ``risk_score``;
    * then the columns of each ``extra`` frame, joined on ``customer_id`` (left join).

    :param customers: known customers; those without a purchase get a row with stage
        ``prospect`` and nulls elsewhere.
    :param extra: per-customer frames to join (one row per customer each, a ``customer_id``
        column); their other column names must not clash with the profile's.
    :returns: the profile, sorted by customer id, the same kind of frame as ``transactions``.
    :raises InvalidValueError: when an ``extra`` frame repeats a profile column.
    """
    owner = "customer_profile"
    tx = as_lazy(transactions, owner, "transactions")
    th = thresholds or LifecycleThresholds()
    eager = isinstance(transactions, pl.DataFrame)
    unit_days = unit_micros(time_unit, owner) / TIME_UNITS["D"]
    # one netting pass: net purchases per customer and day, then everything from them
    days, today = _days(
        tx,
        as_of=as_of,
        owner=owner,
        customer_id=customer_id,
        timestamp="occurred_at",
        amount="amount",
    )
    if eager:
        days = days.collect().lazy()
    act = _activity_from_days(days, today, customer_id)
    staged = _stages_from_activity(act, th)
    if eager:
        staged = staged.collect().lazy()  # the RFM edges and value tiers read it again
    risk = _signals(
        days,
        today,
        staged.drop(_FIRST_REVENUE),
        as_of=as_of,
        feedback=feedback,
        interactions=interactions,
        recent_days=90,
        weights=weights or RiskWeights(),
        thresholds=th,
        customer_id=customer_id,
        owner=owner,
    ).drop("stage", "revenue", "days_since_last", "rhythm_days")
    frequency = pl.col("purchase_days") - 1
    repeat_revenue = (pl.col("revenue") - pl.col(_FIRST_REVENUE)).cast(pl.Float64)
    btyd = [  # the BTYD summary (see loyaltykit.analytics.summary), from the same days
        frequency.alias("frequency"),
        (
            (pl.col("last_purchase") - pl.col("first_purchase")).dt.total_days().cast(pl.Float64)
            / unit_days
        ).alias("recency"),
        (pl.col("tenure_days").cast(pl.Float64) / unit_days).alias("T"),
        pl.when(frequency > 0)
        .then(repeat_revenue / frequency)
        .otherwise(0.0)
        .alias("monetary_value"),
    ]
    # RFM scores and the value tier are added as columns of the same frame: no joins
    base = staged.select(
        customer_id,
        "first_purchase",
        "last_purchase",
        "purchase_days",
        "orders",
        "revenue",
        "tenure_days",
        "days_since_last",
        "mean_gap_days",
        "stage",
        "rhythm_days",
        *btyd,
        pl.col("revenue").cast(pl.Float64).alias("__monetary"),
    )
    if eager:
        base = base.collect().lazy()  # read again by the RFM edges and the tiers' cut points
    model = RFM(
        segment_map=segment_map,
        customer_id=customer_id,
        recency="days_since_last",
        frequency="purchase_days",
        monetary="__monetary",
    )
    scored = as_lazy(model.fit(base).score(base), owner, "transactions").drop(
        "rfm_score", "__monetary"
    )
    profile = as_lazy(
        value_tiers(scored, value="revenue", thresholds=tier_thresholds), owner, "transactions"
    )
    if customers is not None:
        known = as_lazy(
            lifecycle(tx.head(0), as_of=as_of, customers=customers, customer_id=customer_id),
            owner,
            "customers",
        ).select(customer_id, "stage")
        prospects = known.join(profile.select(customer_id), on=customer_id, how="anti")
        profile = pl.concat([profile, prospects], how="diagonal")
    if feedback is not None:
        fb = as_lazy(
            latest_feedback(
                as_lazy(feedback, owner, "feedback"), as_of=as_of, customer_id=customer_id
            ),
            owner,
            "feedback",
        ).select(customer_id, "responses", "latest_nps", "nps_group", "mean_csat")
        profile = profile.join(fb, on=customer_id, how="left")
    if interactions is not None:
        paths = as_lazy(
            touchpoint_paths(
                as_lazy(interactions, owner, "interactions"), as_of=as_of, customer_id=customer_id
            ),
            owner,
            "interactions",
        ).select(customer_id, "touchpoints", "first_touch", "last_touch", "path")
        profile = profile.join(paths, on=customer_id, how="left")
    profile = profile.join(risk, on=customer_id, how="left")
    names = set(profile.collect_schema().names())
    for i, frame in enumerate(extra):
        other = as_lazy(frame, owner, f"extra[{i}]")
        schema = other.collect_schema()
        check_columns(schema, {customer_id: "customer id to join on"}, owner)
        clash = sorted((set(schema.names()) - {customer_id}) & names)
        if clash:
            raise InvalidValueError(
                owner,
                f"extra[{i}]",
                clash,
                "repeats profile column(s); rename them before joining, e.g. "
                f"frame.rename({{{clash[0]!r}: 'my_{clash[0]}'}})",
            )
        key_dtype = profile.collect_schema()[customer_id]
        profile = profile.join(
            other.with_columns(pl.col(customer_id).cast(key_dtype)), on=customer_id, how="left"
        )
        names |= set(schema.names())
    return like(transactions, profile.sort(customer_id))
