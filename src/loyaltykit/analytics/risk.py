"""Churn early-warning signals per customer, a documented risk score and a win-back list.

Each signal is a number from 0 (no warning) to 1 (strongest warning), computed as of a day:

``frequency_drop``
    ``1 - recent rate / baseline rate``, clipped to [0, 1], where the *recent* rate is purchase
    days per day over the last ``recent_days`` and the *baseline* rate the same over the
    customer's history before that window. 0 without at least ``recent_days`` of baseline.
``spend_drop``
    the same with net spend per day.
``gap_growth``
    how far the days since the last purchase have grown past the customer's rhythm (see
    :mod:`loyaltykit.analytics.lifecycle`): ``(gap / rhythm - 1) / (lapsed_after - 1)``, clipped
    to [0, 1]; 0 while within the rhythm, 1 once lapsed.
``detractor``
    1 when the latest NPS answer (up to the day) is a detractor's (0-6) or the latest CSAT
    answer is 1 or 2; else 0.
``complaints``
    ``1 - 0.5 ** n`` for ``n`` complaint interactions (``type == "complaint"``) in the last
    ``recent_days``: 0.5 for one, 0.75 for two ...

The **risk score** is their weighted mean, ``sum(w_i x s_i) / sum(w_i)``, with the weights of
:class:`RiskWeights` (by default gap growth 0.35, frequency drop 0.2, spend drop 0.15, detractor
0.15, complaints 0.15). The **win-back list** ranks customers above a score by the revenue at
stake, ``risk_score x revenue``.
"""

from __future__ import annotations

import attrs
import polars as pl

from loyaltykit.analytics._frames import (
    DateLike,
    as_lazy,
    check_columns,
    like,
    local_naive,
    timestamp_zone,
)
from loyaltykit.analytics.activity import _FIRST_REVENUE, _activity_from_days, _days
from loyaltykit.analytics.feedback import latest_feedback
from loyaltykit.analytics.lifecycle import LifecycleThresholds, _stages_from_activity
from loyaltykit.errors import InvalidValueError
from loyaltykit.protocols import FrameT

__all__ = ["SIGNALS", "RiskWeights", "churn_signals", "win_back_list"]

SIGNALS = ("frequency_drop", "spend_drop", "gap_growth", "detractor", "complaints")
"""The signal columns, each from 0 to 1."""

_DAY_US = 86_400_000_000


def _non_negative(inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 0:
        raise InvalidValueError("RiskWeights", attribute.name, value, "must be >= 0")


@attrs.frozen(kw_only=True)
class RiskWeights:
    """Weights of the signals in the risk score (they need not sum to 1; the score divides)."""

    frequency_drop: float = attrs.field(default=0.2, validator=_non_negative)
    """Weight of the drop in purchase frequency."""
    spend_drop: float = attrs.field(default=0.15, validator=_non_negative)
    """Weight of the drop in spend."""
    gap_growth: float = attrs.field(default=0.35, validator=_non_negative)
    """Weight of the growing gap since the last purchase."""
    detractor: float = attrs.field(default=0.15, validator=_non_negative)
    """Weight of detractor feedback."""
    complaints: float = attrs.field(default=0.15, validator=_non_negative)
    """Weight of recent complaints."""

    def __attrs_post_init__(self) -> None:
        if sum(attrs.astuple(self)) <= 0:
            raise InvalidValueError(
                "RiskWeights", "weights", attrs.astuple(self), "must not all be 0"
            )


def churn_signals(
    transactions: FrameT,
    *,
    as_of: DateLike,
    feedback: pl.DataFrame | pl.LazyFrame | None = None,
    interactions: pl.DataFrame | pl.LazyFrame | None = None,
    recent_days: int = 90,
    weights: RiskWeights | None = None,
    thresholds: LifecycleThresholds | None = None,
    customer_id: str = "customer_id",
    timestamp: str = "occurred_at",
    amount: str = "amount",
) -> FrameT:
    """Early-warning signals and the risk score of every customer with a purchase.

    :param feedback: survey answers (for ``detractor``); without them the signal is 0.
    :param interactions: touchpoints (for ``complaints``); without them the signal is 0.
    :param recent_days: length of the recent window compared with the baseline.
    :returns: ``customer_id``, ``stage`` (lifecycle), ``revenue`` (Float64, net to date),
        ``days_since_last``, ``rhythm_days``, the five signals of :data:`SIGNALS` (Float64) and
        ``risk_score`` (Float64, 0-1), sorted by customer id.
    """
    owner = "churn_signals"
    if recent_days <= 0:
        raise InvalidValueError(owner, "recent_days", recent_days, "must be > 0")
    w = weights or RiskWeights()
    th = thresholds or LifecycleThresholds()
    tx = as_lazy(transactions, owner, "transactions")
    days, today = _days(
        tx, as_of=as_of, owner=owner, customer_id=customer_id, timestamp=timestamp, amount=amount
    )
    if isinstance(transactions, pl.DataFrame):
        days = days.collect().lazy()  # used twice below: compute once
    act = _activity_from_days(days, today, customer_id).drop(_FIRST_REVENUE)
    stages = _stages_from_activity(act, th)
    out = _signals(
        days,
        today,
        stages,
        as_of=as_of,
        feedback=feedback,
        interactions=interactions,
        recent_days=recent_days,
        weights=w,
        thresholds=th,
        customer_id=customer_id,
        owner=owner,
    )
    return like(transactions, out.sort(customer_id))


def _signals(
    days: pl.LazyFrame,
    today: int,
    stages: pl.LazyFrame,
    *,
    as_of: DateLike,
    feedback: pl.DataFrame | pl.LazyFrame | None,
    interactions: pl.DataFrame | pl.LazyFrame | None,
    recent_days: int,
    weights: RiskWeights,
    thresholds: LifecycleThresholds,
    customer_id: str,
    owner: str,
) -> pl.LazyFrame:
    """The signals and the score (unsorted) from the net purchase days and the stages."""
    w, th = weights, thresholds
    window_start = today - recent_days + 1  # the recent window holds recent_days days
    days = days.with_columns(
        pl.col("__day").cast(pl.Int64), pl.col("__value").cast(pl.Float64).alias("value")
    )
    recent = pl.col("__day") >= window_start
    rates = (
        days.with_columns(
            recent.alias("__recent"),
            pl.when(recent).then(pl.col("value")).otherwise(0.0).alias("__recent_value"),
        )
        .group_by(customer_id)
        .agg(
            pl.col("__day").min().alias("__first"),
            pl.col("__recent").sum().alias("__recent_days"),
            (~pl.col("__recent")).sum().alias("__base_days"),
            pl.col("__recent_value").sum().alias("__recent_spend"),
            pl.col("value").sum().alias("__total_spend"),
        )
    )
    base_len = (window_start - pl.col("__first")).cast(pl.Float64)
    has_base = base_len >= recent_days

    def drop(recent_amount: pl.Expr, base_amount: pl.Expr) -> pl.Expr:
        base_rate = base_amount / base_len
        recent_rate = recent_amount / recent_days
        value = (1 - recent_rate / base_rate).clip(0.0, 1.0)
        return pl.when(has_base & (base_rate > 0)).then(value).otherwise(0.0)

    rates = rates.select(
        customer_id,
        drop(pl.col("__recent_days"), pl.col("__base_days")).alias("frequency_drop"),
        drop(pl.col("__recent_spend"), pl.col("__total_spend") - pl.col("__recent_spend")).alias(
            "spend_drop"
        ),
    )
    gap_ratio = pl.col("days_since_last") / pl.col("rhythm_days")
    base = stages.select(
        customer_id,
        "stage",
        pl.col("revenue").cast(pl.Float64),
        "days_since_last",
        "rhythm_days",
        ((gap_ratio - 1) / (th.lapsed_after - 1)).clip(0.0, 1.0).alias("gap_growth"),
    ).join(rates, on=customer_id, how="left")
    if feedback is not None:
        latest = as_lazy(
            latest_feedback(
                as_lazy(feedback, owner, "feedback"), as_of=as_of, customer_id=customer_id
            ),
            owner,
            "feedback",
        ).select(
            customer_id,
            ((pl.col("latest_nps") <= 6) | (pl.col("latest_csat") <= 2))
            .fill_null(False)
            .cast(pl.Float64)
            .alias("detractor"),
        )
        base = base.join(latest, on=customer_id, how="left")
    else:
        base = base.with_columns(pl.lit(0.0).alias("detractor"))
    if interactions is not None:
        inter = as_lazy(interactions, owner, "interactions")
        check_columns(
            inter.collect_schema(), {"type": "interaction type", customer_id: "customer id"}, owner
        )
        izone = timestamp_zone(inter.collect_schema(), "occurred_at", owner)
        iday = local_naive(pl.col("occurred_at"), izone).dt.date().cast(pl.Int32).cast(pl.Int64)
        complaints = (
            inter.filter((pl.col("type") == "complaint") & iday.is_between(window_start, today))
            .group_by(customer_id)
            .agg(pl.len().alias("__complaints"))
            .select(
                customer_id,
                (1 - 0.5 ** pl.col("__complaints").cast(pl.Float64)).alias("complaints"),
            )
        )
        base = base.join(complaints, on=customer_id, how="left")
    else:
        base = base.with_columns(pl.lit(0.0).alias("complaints"))
    total = sum(attrs.astuple(w))
    score = pl.sum_horizontal([pl.col(s) * getattr(w, s) for s in SIGNALS]) / total
    return (
        base.with_columns(pl.col(list(SIGNALS)).fill_null(0.0))
        .with_columns(score.alias("risk_score"))
        .select(
            customer_id,
            "stage",
            "revenue",
            "days_since_last",
            "rhythm_days",
            *SIGNALS,
            "risk_score",
        )
    )


def win_back_list(
    signals: FrameT,
    *,
    min_score: float = 0.4,
    limit: int | None = None,
    value: str = "revenue",
    customer_id: str = "customer_id",
) -> FrameT:
    """Customers worth winning back, most revenue at stake first.

    :param signals: a frame from :func:`churn_signals` (or any frame with ``risk_score`` and
        ``value`` columns, such as a profile with predicted CLV).
    :param min_score: lowest risk score listed.
    :param limit: keep the first ``limit`` customers (``None``: all).
    :param value: the value column weighing the risk (net revenue by default; a predicted CLV
        column works too).
    :returns: the rows with ``risk_score >= min_score``, plus ``revenue_at_risk``
        (``risk_score x value``) and ``rank`` (Int64, 1 = first to contact), in rank order.
    """
    owner = "win_back_list"
    if not 0 <= min_score <= 1:
        raise InvalidValueError(owner, "min_score", min_score, "must be between 0 and 1")
    if limit is not None and limit < 1:
        raise InvalidValueError(owner, "limit", limit, "must be >= 1 or None")
    lf = as_lazy(signals, owner, "signals")
    check_columns(
        lf.collect_schema(), {"risk_score": "risk score", value: "value weighing the risk"}, owner
    )
    ranked = (
        lf.filter(pl.col("risk_score") >= min_score)
        .with_columns(
            (pl.col("risk_score") * pl.col(value).cast(pl.Float64)).alias("revenue_at_risk")
        )
        .sort(
            ["revenue_at_risk", "risk_score", customer_id],
            descending=[True, True, False],
            nulls_last=True,
        )
        .with_row_index("rank", offset=1)
        .with_columns(pl.col("rank").cast(pl.Int64))
    )
    if limit is not None:
        ranked = ranked.head(limit)
    cols = [c for c in ranked.collect_schema().names() if c != "rank"]
    return like(signals, ranked.select("rank", *cols))
