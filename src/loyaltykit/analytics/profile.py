"""The customer profile: one row per customer joining everything the analytics know about them.

The single view of the customer: purchase activity, the BTYD summary, RFM scores and segment,
lifecycle stage, value tier, feedback, journey and churn risk -- plus any per-customer frames of
your own (for example predicted CLV and its tiers from :mod:`loyaltykit.models`) through
``extra=``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from loyaltykit.analytics._frames import DateLike, as_lazy, check_columns, like
from loyaltykit.analytics.feedback import latest_feedback
from loyaltykit.analytics.journeys import touchpoint_paths
from loyaltykit.analytics.kpis import value_tiers
from loyaltykit.analytics.lifecycle import LifecycleThresholds, lifecycle
from loyaltykit.analytics.rfm import DEFAULT_SEGMENT_MAP, RFM, SegmentRule
from loyaltykit.analytics.risk import RiskWeights, churn_signals
from loyaltykit.analytics.summary import summary
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
    risk = as_lazy(
        churn_signals(
            tx,
            as_of=as_of,
            feedback=feedback,
            interactions=interactions,
            weights=weights,
            thresholds=thresholds,
            customer_id=customer_id,
        ),
        owner,
        "transactions",
    )
    stages = as_lazy(
        lifecycle(
            tx, as_of=as_of, customers=customers, thresholds=thresholds, customer_id=customer_id
        ),
        owner,
        "transactions",
    )
    btyd = as_lazy(
        summary(tx, observation_end=as_of, time_unit=time_unit, customer_id=customer_id),  # type: ignore[arg-type]
        owner,
        "transactions",
    )
    values = stages.filter(pl.col("stage") != "prospect").select(
        customer_id,
        pl.col("days_since_last").alias("recency_days"),
        pl.col("purchase_days").alias("frequency"),
        pl.col("revenue").cast(pl.Float64).alias("monetary"),
    )
    model = RFM(segment_map=segment_map, customer_id=customer_id)
    scored = as_lazy(model.fit(values).score(values), owner, "transactions").select(
        customer_id,
        *(["r_score", "f_score", "m_score", "rfm_cell"]),
        *(["segment"] if segment_map is not None else []),
    )
    profile = (
        stages.select(
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
        )
        .join(btyd, on=customer_id, how="left")
        .join(scored, on=customer_id, how="left")
    )
    profile = as_lazy(
        value_tiers(profile, value="revenue", thresholds=tier_thresholds), owner, "transactions"
    )
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
    profile = profile.join(
        risk.drop("stage", "revenue", "days_since_last", "rhythm_days"), on=customer_id, how="left"
    )
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
