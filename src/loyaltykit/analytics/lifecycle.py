"""Lifecycle stages as of any date: prospect, new, active, loyal, at risk, lapsed, reactivated.

Thresholds are relative to each customer's own purchase rhythm: the mean number of days between
their purchase days. One-day buyers have no rhythm of their own and are measured against the
population's (the median rhythm of the repeat buyers). The rules, tried in this order:

``prospect``
    known customer (from ``customers``) without a purchase up to ``as_of``;
``lapsed``
    days since the last purchase > ``lapsed_after`` x rhythm (3 by default): churned, unless
    they come back;
``at_risk``
    days since the last purchase > ``at_risk_after`` x rhythm (1.5 by default);
``new``
    a single purchase day so far (and not yet at risk);
``reactivated``
    the gap before the last purchase was longer than ``lapsed_after`` x the rhythm they had
    before it: they had lapsed and came back;
``loyal``
    at least ``loyal_min_purchase_days`` purchase days and ``loyal_min_tenure_days`` of tenure;
``active``
    everyone else.

Rhythms shorter than ``min_rhythm_days`` are raised to it, so that a burst of purchases on
consecutive days does not flag a customer as at risk a few days later.
"""

from __future__ import annotations

from typing import Any, Final

import attrs
import polars as pl

from loyaltykit.analytics._frames import (
    DateLike,
    as_lazy,
    check_columns,
    like,
    local_naive,
    period_start,
    period_start_of,
    timestamp_zone,
)
from loyaltykit.analytics.activity import _FIRST_REVENUE, _activity_from_days, _days
from loyaltykit.errors import InvalidValueError
from loyaltykit.protocols import FrameT

__all__ = ["LIFECYCLE_STAGES", "STAGE_DTYPE", "LifecycleThresholds", "lifecycle"]

LIFECYCLE_STAGES: Final = (
    "prospect",
    "new",
    "active",
    "loyal",
    "reactivated",
    "at_risk",
    "lapsed",
)
"""The stages, in the order used for tables and plots."""

STAGE_DTYPE: Final = pl.Enum(LIFECYCLE_STAGES)
"""The dtype of the ``stage`` column."""


def _positive(inst: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise InvalidValueError("LifecycleThresholds", attribute.name, value, "must be > 0")


@attrs.frozen(kw_only=True)
class LifecycleThresholds:
    """The configurable thresholds of :func:`lifecycle` (see the module documentation)."""

    at_risk_after: float = attrs.field(default=1.5, validator=_positive)
    """At risk once the days since the last purchase exceed this multiple of the rhythm."""
    lapsed_after: float = attrs.field(default=3.0, validator=_positive)
    """Lapsed (churned) once they exceed this multiple; must exceed ``at_risk_after``."""
    loyal_min_purchase_days: int = attrs.field(default=4, validator=_positive)
    """Loyal customers have at least this many purchase days ..."""
    loyal_min_tenure_days: int = attrs.field(default=180, validator=attrs.validators.ge(0))
    """... and at least this many days since their first purchase."""
    min_rhythm_days: float = attrs.field(default=7.0, validator=_positive)
    """Rhythms (days) are never taken shorter than this."""
    default_rhythm_days: float = attrs.field(default=90.0, validator=_positive)
    """Population rhythm used when there is no repeat buyer at all."""

    def __attrs_post_init__(self) -> None:
        if self.lapsed_after <= self.at_risk_after:
            raise InvalidValueError(
                "LifecycleThresholds",
                "lapsed_after",
                self.lapsed_after,
                f"must be greater than at_risk_after ({self.at_risk_after})",
            )


def lifecycle(
    transactions: FrameT,
    *,
    as_of: DateLike,
    customers: pl.DataFrame | pl.LazyFrame | None = None,
    thresholds: LifecycleThresholds | None = None,
    customer_id: str = "customer_id",
    timestamp: str = "occurred_at",
    amount: str = "amount",
) -> FrameT:
    """The lifecycle stage of every customer as of the day ``as_of``.

    :param transactions: transactions in the core schema (refunds are netted).
    :param as_of: the day of the analysis; later transactions are ignored, so any past date
        gives the stages as they were then.
    :param customers: optional frame of known customers (a ``customer_id`` column; with a
        ``joined_at`` column only those joined by ``as_of`` count); those without a purchase
        are ``prospect``.
    :param thresholds: the rules' parameters; ``None`` for :class:`LifecycleThresholds` defaults.
    :returns: the columns of :func:`~loyaltykit.analytics.customer_activity` plus
        ``rhythm_days`` (Float64, the rhythm the thresholds were applied to) and ``stage``
        (:data:`STAGE_DTYPE`), sorted by customer id.
    """
    th = thresholds or LifecycleThresholds()
    owner = "lifecycle"
    days, today = _days(
        as_lazy(transactions, owner, "transactions"),
        as_of=as_of,
        owner=owner,
        customer_id=customer_id,
        timestamp=timestamp,
        amount=amount,
    )
    act = _activity_from_days(days, today, customer_id).drop(_FIRST_REVENUE)
    staged = _stages_from_activity(act, th)
    if customers is not None:
        known = as_lazy(customers, owner, "customers")
        schema = known.collect_schema()
        check_columns(schema, {customer_id: "customer id"}, owner)
        if "joined_at" in schema:
            zone = timestamp_zone(schema, "joined_at", owner)
            cutoff = period_start_of(as_of, zone, "D", owner, "as_of")
            joined = period_start(local_naive(pl.col("joined_at"), zone), "D", owner)
            known = known.filter(joined <= cutoff)
        prospects = (
            known.select(pl.col(customer_id).cast(staged.collect_schema()[customer_id]))
            .unique()
            .join(staged.select(customer_id), on=customer_id, how="anti")
            .with_columns(pl.lit("prospect").cast(STAGE_DTYPE).alias("stage"))
        )
        staged = pl.concat([staged, prospects], how="diagonal")
    return like(transactions, staged.sort(customer_id))


def _stages_from_activity(act: pl.LazyFrame, th: LifecycleThresholds) -> pl.LazyFrame:
    """Add ``rhythm_days`` and ``stage`` to an activity table (see the module documentation)."""
    floor = th.min_rhythm_days
    population = (
        pl.col("mean_gap_days").median().fill_null(th.default_rhythm_days).clip(lower_bound=floor)
    )
    own = pl.col("mean_gap_days").clip(lower_bound=floor)
    rhythm = pl.coalesce(own, population)
    before = (
        pl.when(pl.col("purchase_days") >= 3)
        .then(
            (pl.col("previous_purchase") - pl.col("first_purchase")).dt.total_days()
            / (pl.col("purchase_days") - 2)
        )
        .cast(pl.Float64)
        .clip(lower_bound=floor)
    )
    rhythm_before = pl.coalesce(before, population)
    gap = pl.col("days_since_last")
    stage = (
        pl.when(gap > th.lapsed_after * pl.col("rhythm_days"))
        .then(pl.lit("lapsed"))
        .when(gap > th.at_risk_after * pl.col("rhythm_days"))
        .then(pl.lit("at_risk"))
        .when(pl.col("purchase_days") == 1)
        .then(pl.lit("new"))
        .when(pl.col("last_gap_days") > th.lapsed_after * rhythm_before)
        .then(pl.lit("reactivated"))
        .when(
            (pl.col("purchase_days") >= th.loyal_min_purchase_days)
            & (pl.col("tenure_days") >= th.loyal_min_tenure_days)
        )
        .then(pl.lit("loyal"))
        .otherwise(pl.lit("active"))
    )
    return act.with_columns(rhythm.alias("rhythm_days")).with_columns(
        stage.cast(STAGE_DTYPE).alias("stage")
    )
