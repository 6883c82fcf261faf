"""RFM: recency, frequency and monetary scores by quantile, the RFM cell and named segments.

:func:`rfm_values` turns transactions into the three raw figures per customer; :class:`RFM`
(also the built-in scoring model ``"rfm"``) learns quantile edges with ``fit`` and scores with
``score``; :func:`rfm` does all three in one call.

Scores run from 1 to ``bins`` (5 by default); a higher score is better, so the most *recent*
customers get the highest R. A customer's score is one plus the number of learned edges their
value is strictly above (for recency: strictly below), so equal values always get equal scores,
whatever the row order. The edges are the population's quantiles at ``1/bins, 2/bins, ...``.

Segments come from a *segment map*: plain data, a sequence of :class:`SegmentRule` tried in
order, the first match naming the segment. :data:`DEFAULT_SEGMENT_MAP` is the usual map of the
5 x 5 (R, F) grid; replace it with your own (for example from a TOML or JSON file through
:func:`segment_map_from_records`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Self

import attrs
import polars as pl

from loyaltykit.analytics._frames import DateLike, as_lazy, check_columns, like
from loyaltykit.analytics.activity import customer_activity
from loyaltykit.errors import InvalidValueError, ModelInputError, NotFittedError
from loyaltykit.protocols import FrameT

__all__ = [
    "DEFAULT_SEGMENT_MAP",
    "RFM",
    "SegmentRule",
    "rfm",
    "rfm_values",
    "segment_map_from_records",
]

Range = tuple[int, int]


def _to_range(value: Any) -> Range:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    lo, hi = value
    return (int(lo), int(hi))


@attrs.frozen(kw_only=True)
class SegmentRule:
    """One entry of a segment map: a name and the score ranges (inclusive) it covers."""

    name: str
    """The segment's name, e.g. ``"Champions"``."""
    r: Range = attrs.field(converter=_to_range)
    """Recency scores covered, ``(low, high)``; an int ``n`` means ``(n, n)``."""
    f: Range = attrs.field(converter=_to_range)
    """Frequency scores covered."""
    m: Range | None = attrs.field(default=None, converter=attrs.converters.optional(_to_range))
    """Monetary scores covered; ``None`` (default) means any."""

    def condition(self) -> pl.Expr:
        """The polars condition on ``r_score``, ``f_score``, ``m_score`` this rule matches."""
        cond = pl.col("r_score").is_between(*self.r) & pl.col("f_score").is_between(*self.f)
        if self.m is not None:
            cond = cond & pl.col("m_score").is_between(*self.m)
        return cond


DEFAULT_SEGMENT_MAP: tuple[SegmentRule, ...] = (
    SegmentRule(name="Champions", r=5, f=(4, 5)),
    SegmentRule(name="Loyal", r=(3, 4), f=(4, 5)),
    SegmentRule(name="Potential Loyalist", r=(4, 5), f=(2, 3)),
    SegmentRule(name="New", r=5, f=1),
    SegmentRule(name="Promising", r=4, f=1),
    SegmentRule(name="Need Attention", r=3, f=3),
    SegmentRule(name="About to Sleep", r=3, f=(1, 2)),
    SegmentRule(name="At Risk", r=(1, 2), f=(3, 4)),
    SegmentRule(name="Can't Lose Them", r=(1, 2), f=5),
    SegmentRule(name="Hibernating", r=2, f=(1, 2)),
    SegmentRule(name="Lost", r=1, f=(1, 2)),
)
"""The usual segments of the 5 x 5 (R, F) grid; every cell belongs to exactly one."""


def segment_map_from_records(records: Iterable[Mapping[str, Any]]) -> tuple[SegmentRule, ...]:
    """A segment map from plain records such as ``{"name": "VIP", "r": [4, 5], "f": 5}``.

    :param records: mappings with keys ``name``, ``r``, ``f`` and optionally ``m``; a range is a
        two-item list ``[low, high]`` or a single score.
    :raises InvalidValueError: naming the record that cannot be read.
    """
    rules = []
    for i, record in enumerate(records):
        try:
            rules.append(
                SegmentRule(
                    name=str(record["name"]), r=record["r"], f=record["f"], m=record.get("m")
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidValueError(
                "segment_map_from_records",
                f"records[{i}]",
                dict(record),
                f"needs 'name', 'r' and 'f' (and optionally 'm'), each range [low, high] or a "
                f"single score ({exc})",
            ) from exc
    return tuple(rules)


def rfm_values(
    transactions: FrameT,
    *,
    as_of: DateLike,
    monetary: Literal["total", "mean"] = "total",
    customer_id: str = "customer_id",
    timestamp: str = "occurred_at",
    amount: str = "amount",
) -> FrameT:
    """The raw R, F and M figures of every customer with a purchase up to ``as_of``.

    :param monetary: ``"total"`` net spend (default) or the ``"mean"`` spend per purchase day.
    :returns: ``customer_id``, ``recency_days`` (Int64, days since the last purchase day),
        ``frequency`` (Int64, distinct purchase days) and ``monetary`` (Float64), sorted by
        customer id. Refunds are netted (see :func:`customer_activity`).
    """
    if monetary not in ("total", "mean"):
        raise InvalidValueError("rfm_values", "monetary", monetary, "must be 'total' or 'mean'")
    act = as_lazy(
        customer_activity(
            as_lazy(transactions, "rfm_values", "transactions"),
            as_of=as_of,
            customer_id=customer_id,
            timestamp=timestamp,
            amount=amount,
        ),
        "rfm_values",
        "transactions",
    )
    revenue = pl.col("revenue").cast(pl.Float64)
    value = revenue if monetary == "total" else revenue / pl.col("purchase_days")
    out = act.select(
        customer_id,
        pl.col("days_since_last").alias("recency_days"),
        pl.col("purchase_days").alias("frequency"),
        value.alias("monetary"),
    )
    return like(transactions, out)


class RFM:
    """RFM scoring model: quantile edges learned by ``fit``, scores and segments by ``score``.

    Satisfies :class:`loyaltykit.protocols.ScoringModel`; registered as the built-in scoring
    model ``"rfm"``. Its frames are per-customer tables such as :func:`rfm_values` returns.

    :param bins: number of scores (2 to 10; 5 by default).
    :param segment_map: the rules naming segments (see :data:`DEFAULT_SEGMENT_MAP`); ``None`` for
        no ``segment`` column. Each range must lie within ``1..bins``.
    :param customer_id: name of the customer id column (kept as is).
    :param recency: name of the recency column (days since the last purchase; lower is better).
    :param frequency: name of the frequency column (higher is better).
    :param monetary: name of the monetary column (higher is better).
    """

    def __init__(
        self,
        *,
        bins: int = 5,
        segment_map: Sequence[SegmentRule] | None = DEFAULT_SEGMENT_MAP,
        customer_id: str = "customer_id",
        recency: str = "recency_days",
        frequency: str = "frequency",
        monetary: str = "monetary",
    ) -> None:
        if isinstance(bins, bool) or not isinstance(bins, int) or not 2 <= bins <= 10:
            raise InvalidValueError("RFM", "bins", bins, "must be an integer from 2 to 10")
        rules = tuple(segment_map) if segment_map is not None else None
        for rule in rules or ():
            if not isinstance(rule, SegmentRule):
                raise InvalidValueError(
                    "RFM",
                    "segment_map",
                    rule,
                    "must hold SegmentRule items; build one from plain records with "
                    "segment_map_from_records",
                )
            for axis in ("r", "f", "m"):
                span = getattr(rule, axis)
                if span is not None and not 1 <= span[0] <= span[1] <= bins:
                    raise InvalidValueError(
                        "RFM",
                        "segment_map",
                        rule,
                        f"range {axis}={span} must lie within 1..{bins} with low <= high",
                    )
        self.bins = bins
        self.segment_map = rules
        self.customer_id = customer_id
        self.recency = recency
        self.frequency = frequency
        self.monetary = monetary

    def _columns(self) -> dict[str, str]:
        return {
            self.recency: "recency (days since the last purchase)",
            self.frequency: "frequency",
            self.monetary: "monetary value",
        }

    def fit(self, frame: pl.DataFrame | pl.LazyFrame) -> Self:
        """Learn the quantile edges of R, F and M from ``frame``; returns ``self``.

        Sets ``edges_``: ``{"recency": [...], "frequency": [...], "monetary": [...]}``, each
        ``bins - 1`` increasing quantiles, and ``n_fitted_``.
        """
        lf = as_lazy(frame, "RFM.fit", "frame")
        check_columns(lf.collect_schema(), self._columns(), "RFM.fit")
        qs = [i / self.bins for i in range(1, self.bins)]
        exprs = [pl.len().alias("n")]
        for name, col in (
            ("recency", self.recency),
            ("frequency", self.frequency),
            ("monetary", self.monetary),
        ):
            values = pl.col(col).cast(pl.Float64)
            exprs.extend(
                values.quantile(q, interpolation="linear").alias(f"{name}_{i}")
                for i, q in enumerate(qs)
            )
        row = lf.select(exprs).collect().row(0, named=True)
        if row["n"] == 0:
            raise ModelInputError("RFM.fit: the frame has no customers; fit on a non-empty frame")
        self.edges_ = {
            name: [float(row[f"{name}_{i}"]) for i in range(len(qs))]
            for name in ("recency", "frequency", "monetary")
        }
        self.n_fitted_ = int(row["n"])
        return self

    def score(self, frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame | pl.LazyFrame:
        """Add ``r_score``, ``f_score``, ``m_score`` (Int8), ``rfm_cell`` (e.g. ``"545"``),
        ``rfm_score`` (Int16, the sum) and ``segment`` (String; null where no rule matches).

        :raises NotFittedError: before :meth:`fit`.
        """
        if not hasattr(self, "edges_"):
            raise NotFittedError("RFM.score before RFM.fit: call fit(frame) first")
        lf = as_lazy(frame, "RFM.score", "frame")
        check_columns(lf.collect_schema(), self._columns(), "RFM.score")

        def above(col: str, edges: list[float]) -> pl.Expr:
            value = pl.col(col).cast(pl.Float64)
            return pl.sum_horizontal([(value > e).cast(pl.Int8) for e in edges]) + 1

        def below(col: str, edges: list[float]) -> pl.Expr:
            value = pl.col(col).cast(pl.Float64)
            return pl.sum_horizontal([(value < e).cast(pl.Int8) for e in edges]) + 1

        scored = lf.with_columns(
            below(self.recency, self.edges_["recency"]).cast(pl.Int8).alias("r_score"),
            above(self.frequency, self.edges_["frequency"]).cast(pl.Int8).alias("f_score"),
            above(self.monetary, self.edges_["monetary"]).cast(pl.Int8).alias("m_score"),
        ).with_columns(
            pl.concat_str(["r_score", "f_score", "m_score"]).alias("rfm_cell"),
            pl.sum_horizontal("r_score", "f_score", "m_score").cast(pl.Int16).alias("rfm_score"),
        )
        if self.segment_map is not None:
            segment: Any = pl.lit(None, pl.String)
            for rule in reversed(self.segment_map):
                segment = pl.when(rule.condition()).then(pl.lit(rule.name)).otherwise(segment)
            scored = scored.with_columns(segment.alias("segment"))
        return scored if isinstance(frame, pl.LazyFrame) else scored.collect()

    def __repr__(self) -> str:
        return f"RFM(bins={self.bins}, segments={len(self.segment_map or ())})"


def rfm(
    transactions: FrameT,
    *,
    as_of: DateLike,
    bins: int = 5,
    segment_map: Sequence[SegmentRule] | None = DEFAULT_SEGMENT_MAP,
    monetary: Literal["total", "mean"] = "total",
    customer_id: str = "customer_id",
    timestamp: str = "occurred_at",
    amount: str = "amount",
) -> FrameT:
    """RFM values, scores and segments of every customer in one call.

    Equivalent to ``RFM(bins=..., segment_map=...).fit(v).score(v)`` with
    ``v = rfm_values(transactions, as_of=...)``. On a LazyFrame the quantile edges are computed
    (a small collect) and the result stays lazy.

    :returns: the columns of :func:`rfm_values` plus those added by :meth:`RFM.score`.
    """
    values = rfm_values(
        transactions,
        as_of=as_of,
        monetary=monetary,
        customer_id=customer_id,
        timestamp=timestamp,
        amount=amount,
    )
    model = RFM(bins=bins, segment_map=segment_map, customer_id=customer_id)
    scored = model.fit(values).score(values)
    return like(transactions, as_lazy(scored, "rfm", "transactions"))
