"""Engagement scoring: how recently and how intensely each customer interacts with the business.

Every event of a customer (a purchase, a visit, an opened e-mail ...) counts with a weight for its
type, decayed by its age: an event ``half_life_days`` old counts half. The sum is the customer's
*engagement intensity*. :class:`EngagementModel` learns, on a population, the percentiles of the
intensity and the terciles of the recently active customers, then scores any frame of customers:

``engagement_intensity``
    the decayed, weighted count of events (Float64, 0 without events);
``engagement_score``
    the intensity's percentile in the fitted population, 0-100 (Int64; 0 without events);
``engagement_level``
    an ordered ``pl.Enum``: ``"dormant"`` (no event within ``dormant_after_days``), else ``"low"``, ``"medium"`` or
    ``"high"`` by the fitted terciles;
``last_engaged_at``
    the time of the customer's latest event (null without events);
``days_since_engaged``
    days from that event to ``as_of`` (Float64; null without events).

Everything is polars expressions, lazy in and lazy out.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any, Final, Self

import polars as pl

from loyaltykit.errors import InvalidValueError, ModelInputError, NotFittedError
from loyaltykit.protocols import FrameT

__all__ = [
    "DEFAULT_WEIGHTS",
    "EngagementModel",
    "engagement_events",
    "engagement_features",
]

DEFAULT_WEIGHTS: Final[Mapping[str, float]] = {
    "purchase": 3.0,
    "refund": 0.0,
    "visit": 1.0,
    "app_open": 1.0,
    "email_click": 1.0,
    "email_open": 0.5,
    "support_call": 0.5,
    "complaint": 0.5,
    "referral": 2.0,
}
"""Weight of each event type: a purchase counts as three visits, an opened e-mail as half."""

_US_PER_DAY: Final = 86_400_000_000
_LEVELS: Final = ("dormant", "low", "medium", "high")


def engagement_events(
    interactions: FrameT | None = None, transactions: FrameT | None = None
) -> FrameT:
    """One event log from interactions and transactions: ``customer_id``, ``occurred_at``, ``type``.

    Interactions keep their ``type``; transactions become events of type ``kind`` (``purchase``
    or ``refund``). Give at least one of the two, both eager or both lazy.

    :param interactions: frame in :data:`loyaltykit.schema.INTERACTION_SCHEMA`.
    :param transactions: frame in :data:`loyaltykit.schema.TRANSACTION_SCHEMA`.
    :returns: the concatenated events, the same kind of frame as given.
    :raises ModelInputError: when neither is given, or one is eager and the other lazy.
    """
    given = [f for f in (interactions, transactions) if f is not None]
    if not given:
        raise ModelInputError("engagement_events: give interactions, transactions or both")
    if len({isinstance(f, pl.LazyFrame) for f in given}) != 1:
        raise ModelInputError(
            "engagement_events: interactions and transactions must both be DataFrames or both "
            "LazyFrames; call .lazy() or .collect() on one of them"
        )
    parts: list[Any] = []
    if interactions is not None:
        parts.append(interactions.select("customer_id", "occurred_at", "type"))
    if transactions is not None:
        parts.append(
            transactions.select("customer_id", "occurred_at", pl.col("kind").alias("type"))
        )
    out: FrameT = pl.concat(parts, how="vertical_relaxed")
    return out


def engagement_features(
    events: FrameT,
    *,
    as_of: dt.datetime,
    half_life_days: float = 30.0,
    weights: Mapping[str, float] | None = None,
    default_weight: float = 0.5,
) -> FrameT:
    """Per customer: event count, last event, days since it and the decayed intensity.

    Events after ``as_of`` are ignored, so that a model can be scored as of a past date.

    :param events: columns ``customer_id``, ``occurred_at`` (timezone-aware) and ``type``, e.g.
        from :func:`engagement_events`.
    :param as_of: the moment the engagement is measured at (timezone-aware).
    :param half_life_days: age, in days, at which an event counts half.
    :param weights: weight of each event type (default :data:`DEFAULT_WEIGHTS`).
    :param default_weight: weight of types not in ``weights``.
    :returns: one row per customer with events up to ``as_of``: ``customer_id``, ``events``
        (UInt32), ``last_engaged_at``, ``days_since_engaged`` and ``engagement_intensity``
        (Float64), sorted by ``customer_id``; the same kind of frame as given.
    """
    _check_as_of("engagement_features", as_of)
    _check_positive("engagement_features", "half_life_days", half_life_days)
    table = _weight_table("engagement_features", weights, default_weight)
    missing = {"customer_id", "occurred_at", "type"} - set(events.collect_schema().names())
    if missing:
        raise ModelInputError(
            f"engagement_features: the events lack column(s) {sorted(missing)}; build them with "
            "loyaltykit_engagement.engagement_events(interactions, transactions)"
        )
    as_of_lit = pl.lit(as_of).dt.convert_time_zone("UTC")
    age_days = (as_of_lit - pl.col("occurred_at")).dt.total_microseconds() / _US_PER_DAY
    weight = pl.col("type").replace_strict(
        list(table), list(table.values()), default=default_weight, return_dtype=pl.Float64
    )
    decay = (age_days * (-math.log(2) / half_life_days)).exp()
    out: FrameT = (
        events.filter(pl.col("occurred_at") <= as_of_lit)
        .group_by("customer_id")
        .agg(
            pl.len().alias("events"),
            pl.col("occurred_at").max().alias("last_engaged_at"),
            age_days.min().alias("days_since_engaged"),
            (weight * decay).sum().alias("engagement_intensity"),
        )
        .sort("customer_id")
    )
    return out


def _weight_table(
    owner: str, weights: Mapping[str, float] | None, default_weight: float
) -> dict[str, float]:
    table: dict[str, float] = dict(DEFAULT_WEIGHTS if weights is None else weights)
    for name, value in (*table.items(), ("<default>", default_weight)):
        field = "default_weight" if name == "<default>" else f"weights[{name!r}]"
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidValueError(owner, field, value, "must be a number >= 0")
        if not math.isfinite(value) or value < 0:
            raise InvalidValueError(owner, field, value, "must be a finite number >= 0")
    return table


def _check_as_of(owner: str, as_of: object) -> None:
    if not isinstance(as_of, dt.datetime) or as_of.utcoffset() is None:
        raise InvalidValueError(
            owner,
            "as_of",
            as_of,
            "must be a timezone-aware datetime, e.g. datetime(..., tzinfo=UTC)",
        )


def _check_positive(owner: str, field: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidValueError(owner, field, value, "must be a number > 0")
    if not math.isfinite(value):
        raise InvalidValueError(owner, field, value, "must be finite")


class EngagementModel:
    """Scores customers by the recency and intensity of their events (a scoring-model plugin).

    :param as_of: when engagement is measured; ``None`` takes the latest event seen by ``fit``.
    :param half_life_days: age, in days, at which an event counts half (default 30).
    :param dormant_after_days: customers with no event for this many days are ``"dormant"``
        (default 90).
    :param weights: weight of each event type (default :data:`DEFAULT_WEIGHTS`).
    :param default_weight: weight of event types not in ``weights`` (default 0.5).

    ``fit(events)`` takes an event log (``customer_id``, ``occurred_at``, ``type``; see
    :func:`engagement_events`) and learns the population's percentiles. ``score(customers)`` adds
    the engagement columns to any frame with a ``customer_id`` column, keeping its rows and
    order; customers without events score 0 and are dormant.

    Fitted attributes: ``as_of_``, ``features_`` (per-customer features, eager),
    ``percentiles_`` (the 100 percentile edges of the intensity) and ``tercile_edges_`` (the two
    edges between low, medium and high among the non-dormant customers).
    """

    def __init__(
        self,
        *,
        as_of: dt.datetime | None = None,
        half_life_days: float = 30.0,
        dormant_after_days: float = 90.0,
        weights: Mapping[str, float] | None = None,
        default_weight: float = 0.5,
    ) -> None:
        if as_of is not None:
            _check_as_of("EngagementModel", as_of)
        _check_positive("EngagementModel", "half_life_days", half_life_days)
        _check_positive("EngagementModel", "dormant_after_days", dormant_after_days)
        self.as_of = as_of
        self.half_life_days = half_life_days
        self.dormant_after_days = dormant_after_days
        self.weights = _weight_table("EngagementModel", weights, default_weight)
        self.default_weight = default_weight

    def __repr__(self) -> str:
        return (
            f"EngagementModel(as_of={self.as_of!r}, half_life_days={self.half_life_days}, "
            f"dormant_after_days={self.dormant_after_days})"
        )

    def fit(self, frame: pl.DataFrame | pl.LazyFrame) -> Self:
        """Learn the percentiles and terciles of engagement from an event log; returns ``self``.

        :raises ModelInputError: when the log is empty or lacks a column.
        """
        lazy = frame.lazy()
        as_of = self.as_of
        if as_of is None:
            latest = lazy.select(pl.col("occurred_at").max()).collect().item()
            if latest is None:
                raise ModelInputError(
                    "EngagementModel.fit: the event log is empty; give at least one event"
                )
            as_of = latest
        assert isinstance(as_of, dt.datetime)
        features = engagement_features(
            lazy,
            as_of=as_of,
            half_life_days=self.half_life_days,
            weights=self.weights,
            default_weight=self.default_weight,
        ).collect()
        if features.is_empty():
            raise ModelInputError(
                f"EngagementModel.fit: no event at or before as_of={as_of.isoformat()}; "
                "fit on a log that covers the date you score at"
            )
        intensity = features["engagement_intensity"]
        # the k-th percentile edge: the smallest intensity with at least k % at or below it
        ranks = [max(math.ceil(k * features.height / 100) - 1, 0) for k in range(1, 101)]
        percentiles = intensity.sort().gather(ranks).to_list()
        active = features.filter(pl.col("days_since_engaged") <= self.dormant_after_days)
        active_intensity = active["engagement_intensity"] if active.height else intensity
        terciles = active_intensity.quantile([1 / 3, 2 / 3], "linear")
        self.as_of_ = as_of
        self.features_ = features
        self.percentiles_: tuple[float, ...] = tuple(percentiles)
        self.tercile_edges_: tuple[float, float] = (
            float(terciles[0] or 0.0),
            float(terciles[1] or 0.0),
        )
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "features_"):
            raise NotFittedError(
                "this EngagementModel is not fitted yet; call fit(events) before score(...)"
            )

    def score(self, frame: FrameT) -> FrameT:
        """Add the engagement columns to a frame of customers (same rows, order and kind).

        :param frame: any frame with a ``customer_id`` column.
        :raises NotFittedError: before :meth:`fit`.
        :raises ModelInputError: when ``frame`` has no ``customer_id`` column.
        """
        self._check_fitted()
        if "customer_id" not in frame.collect_schema().names():
            raise ModelInputError(
                "EngagementModel.score: the frame has no 'customer_id' column; pass one row per "
                "customer with its id"
            )
        features = self.features_.select(
            "customer_id", "engagement_intensity", "last_engaged_at", "days_since_engaged"
        )
        right = features.lazy() if isinstance(frame, pl.LazyFrame) else features
        joined = frame.join(right, on="customer_id", how="left", maintain_order="left")
        intensity = pl.col("engagement_intensity").fill_null(0.0)
        low, high = self.tercile_edges_
        level = (
            pl.when(
                pl.col("days_since_engaged").is_null()
                | (pl.col("days_since_engaged") > self.dormant_after_days)
            )
            .then(pl.lit("dormant"))
            .when(intensity < low)
            .then(pl.lit("low"))
            .when(intensity < high)
            .then(pl.lit("medium"))
            .otherwise(pl.lit("high"))
        )
        edges = pl.lit(pl.Series(self.percentiles_, dtype=pl.Float64))
        score = (
            pl.when(pl.col("engagement_intensity").is_null())
            .then(0)
            .otherwise(edges.search_sorted(intensity, side="right"))
            .cast(pl.Int64)
        )
        out: FrameT = joined.with_columns(
            intensity.alias("engagement_intensity"),
            score.alias("engagement_score"),
            level.cast(pl.Enum(_LEVELS)).alias("engagement_level"),
        )
        return out
