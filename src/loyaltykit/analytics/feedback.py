"""Feedback analytics: NPS with a confidence interval, CSAT, per segment and over time; advocates.

NPS answers 0-10 split into *promoters* (9-10), *passives* (7-8) and *detractors* (0-6); the Net
Promoter Score is ``100 x (share of promoters - share of detractors)``, from -100 to 100. Its
standard error treats each answer as a draw of +1 (promoter), 0 (passive) or -1 (detractor):
``se = 100 x sqrt((p + d - (p - d)^2) / n)``, and the interval is ``nps +- z x se`` (normal
approximation, clipped to [-100, 100]). CSAT answers 1-5; the CSAT score is the share of
*satisfied* answers (4-5 by default), with a Wilson score interval.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
from scipy.special import ndtri

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
from loyaltykit.errors import InvalidValueError
from loyaltykit.protocols import FrameT

__all__ = ["advocates", "csat", "latest_feedback", "nps", "nps_group"]

_TRUNC = {"D": "1d", "W": "1w", "M": "1mo", "Q": "1q", "Y": "1y"}


def nps_group(score: str | pl.Expr = "nps") -> pl.Expr:
    """``"promoter"`` (9-10), ``"passive"`` (7-8), ``"detractor"`` (0-6) or null, as an expression."""
    s = pl.col(score) if isinstance(score, str) else score
    return (
        pl.when(s >= 9)
        .then(pl.lit("promoter"))
        .when(s >= 7)
        .then(pl.lit("passive"))
        .when(s.is_not_null())
        .then(pl.lit("detractor"))
        .otherwise(pl.lit(None, pl.String))
    )


def _z(confidence: float, owner: str) -> float:
    if not 0 < confidence < 1:
        raise InvalidValueError(owner, "confidence", confidence, "must be between 0 and 1")
    return float(ndtri(0.5 + confidence / 2))


def _grouped(
    feedback: pl.LazyFrame,
    *,
    by: str | Sequence[str] | None,
    period: str | None,
    segments: pl.DataFrame | pl.LazyFrame | None,
    customer_id: str,
    answered_at: str,
    owner: str,
) -> tuple[pl.LazyFrame, list[str]]:
    keys = [by] if isinstance(by, str) else list(by or [])
    lf = feedback
    if segments is not None:
        seg = as_lazy(segments, owner, "segments")
        check_columns(seg.collect_schema(), {customer_id: "customer id"}, owner)
        lf = lf.join(seg, on=customer_id, how="left")
    if period is not None:
        if period not in _TRUNC:
            raise InvalidValueError(owner, "period", period, f"must be one of {', '.join(_TRUNC)}")
        zone = timestamp_zone(lf.collect_schema(), answered_at, owner)
        lf = lf.with_columns(
            local_naive(pl.col(answered_at), zone)
            .dt.truncate(_TRUNC[period])
            .dt.date()
            .alias("period")
        )
        keys.append("period")
    check_columns(lf.collect_schema(), dict.fromkeys(keys, "grouping column"), owner)
    return lf, keys


def nps(
    feedback: FrameT,
    *,
    by: str | Sequence[str] | None = None,
    period: str | None = None,
    segments: pl.DataFrame | pl.LazyFrame | None = None,
    confidence: float = 0.95,
    score: str = "nps",
    customer_id: str = "customer_id",
    answered_at: str = "answered_at",
) -> FrameT:
    """Net Promoter Score with its confidence interval, overall, per group and/or per period.

    :param feedback: answers in :data:`loyaltykit.schema.FEEDBACK_SCHEMA` (rows without an NPS
        are ignored).
    :param by: column(s) to group by, e.g. ``"channel"`` or ``"segment"``.
    :param period: also group by calendar period of ``answered_at``: ``"D"``, ``"W"``, ``"M"``,
        ``"Q"`` or ``"Y"`` (adds a ``period`` Date column).
    :param segments: a per-customer frame joined on ``customer_id`` first, so that ``by`` can
        name one of its columns (e.g. the RFM ``segment`` or the lifecycle ``stage``).
    :param confidence: level of the interval (0.95 by default).
    :returns: the group columns, ``responses``, ``promoters``, ``passives``, ``detractors``
        (Int64), ``promoter_share``, ``detractor_share``, ``nps``, ``nps_se``, ``nps_low``,
        ``nps_high`` (Float64), sorted by the group columns.
    """
    owner = "nps"
    z = _z(confidence, owner)
    lf, keys = _grouped(
        as_lazy(feedback, owner, "feedback"),
        by=by,
        period=period,
        segments=segments,
        customer_id=customer_id,
        answered_at=answered_at,
        owner=owner,
    )
    s = pl.col(score)
    answered = lf.filter(s.is_not_null())
    aggs = [
        pl.len().cast(pl.Int64).alias("responses"),
        (s >= 9).sum().cast(pl.Int64).alias("promoters"),
        s.is_between(7, 8).sum().cast(pl.Int64).alias("passives"),
        (s <= 6).sum().cast(pl.Int64).alias("detractors"),
    ]
    table = answered.group_by(keys).agg(aggs) if keys else answered.select(aggs)
    p = pl.col("promoters") / pl.col("responses")
    d = pl.col("detractors") / pl.col("responses")
    out = table.with_columns(
        p.alias("promoter_share"),
        d.alias("detractor_share"),
        (100 * (p - d)).alias("nps"),
        (100 * ((p + d - (p - d) ** 2) / pl.col("responses")).sqrt()).alias("nps_se"),
    ).with_columns(
        (pl.col("nps") - z * pl.col("nps_se")).clip(-100, 100).alias("nps_low"),
        (pl.col("nps") + z * pl.col("nps_se")).clip(-100, 100).alias("nps_high"),
    )
    if keys:
        out = out.sort(keys, nulls_last=True)
    return like(feedback, out)


def csat(
    feedback: FrameT,
    *,
    by: str | Sequence[str] | None = None,
    period: str | None = None,
    segments: pl.DataFrame | pl.LazyFrame | None = None,
    satisfied_min: int = 4,
    confidence: float = 0.95,
    score: str = "csat",
    customer_id: str = "customer_id",
    answered_at: str = "answered_at",
) -> FrameT:
    """Customer satisfaction: share of satisfied answers (with a Wilson interval) and the mean.

    :param satisfied_min: lowest score counted as satisfied (4 on the 1-5 scale).
    :returns: the group columns, ``responses``, ``satisfied`` (Int64), ``csat`` (share
        satisfied), ``csat_low``, ``csat_high`` (Wilson interval) and ``mean_score`` (Float64).
        Other parameters as in :func:`nps`.
    """
    owner = "csat"
    z = _z(confidence, owner)
    lf, keys = _grouped(
        as_lazy(feedback, owner, "feedback"),
        by=by,
        period=period,
        segments=segments,
        customer_id=customer_id,
        answered_at=answered_at,
        owner=owner,
    )
    s = pl.col(score)
    answered = lf.filter(s.is_not_null())
    aggs = [
        pl.len().cast(pl.Int64).alias("responses"),
        (s >= satisfied_min).sum().cast(pl.Int64).alias("satisfied"),
        s.cast(pl.Float64).mean().alias("mean_score"),
    ]
    table = answered.group_by(keys).agg(aggs) if keys else answered.select(aggs)
    n = pl.col("responses")
    phat = pl.col("satisfied") / n
    centre = (phat + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * ((phat * (1 - phat) / n + z**2 / (4 * n**2)).sqrt()) / (1 + z**2 / n)
    out = table.select(
        *keys,
        "responses",
        "satisfied",
        phat.alias("csat"),
        (centre - half).alias("csat_low"),
        (centre + half).alias("csat_high"),
        "mean_score",
    )
    if keys:
        out = out.sort(keys, nulls_last=True)
    return like(feedback, out)


def latest_feedback(
    feedback: FrameT,
    *,
    as_of: DateLike | None = None,
    customer_id: str = "customer_id",
    answered_at: str = "answered_at",
) -> FrameT:
    """Each customer's feedback in one row: latest NPS and CSAT, their means and counts.

    :param as_of: ignore answers after this day (``None``: use all).
    :returns: ``customer_id``, ``responses``, ``latest_nps`` (Int8, latest non-null NPS),
        ``nps_group`` (of ``latest_nps``), ``mean_nps``, ``latest_csat``, ``mean_csat``,
        ``last_answered_at``, sorted by customer id.
    """
    owner = "latest_feedback"
    lf = as_lazy(feedback, owner, "feedback")
    if as_of is not None:
        zone = timestamp_zone(lf.collect_schema(), answered_at, owner)
        cutoff = period_start_of(as_of, zone, "D", owner, "as_of")
        day = local_naive(pl.col(answered_at), zone).dt.truncate("1d").dt.epoch("us")
        lf = lf.filter(day <= cutoff)
    ordered = lf.sort(answered_at)
    out = (
        ordered.group_by(customer_id)
        .agg(
            pl.len().cast(pl.Int64).alias("responses"),
            pl.col("nps").drop_nulls().last().alias("latest_nps"),
            pl.col("nps").cast(pl.Float64).mean().alias("mean_nps"),
            pl.col("csat").drop_nulls().last().alias("latest_csat"),
            pl.col("csat").cast(pl.Float64).mean().alias("mean_csat"),
            pl.col(answered_at).max().alias("last_answered_at"),
        )
        .with_columns(nps_group("latest_nps").alias("nps_group"))
        .select(
            customer_id,
            "responses",
            "latest_nps",
            "nps_group",
            "mean_nps",
            "latest_csat",
            "mean_csat",
            "last_answered_at",
        )
        .sort(customer_id)
    )
    return like(feedback, out)


def advocates(
    feedback: FrameT,
    transactions: pl.DataFrame | pl.LazyFrame,
    *,
    as_of: DateLike,
    interactions: pl.DataFrame | pl.LazyFrame | None = None,
    customers: pl.DataFrame | pl.LazyFrame | None = None,
    value_quantile: float = 0.8,
    customer_id: str = "customer_id",
) -> FrameT:
    """Promoters who are high-value or refer others: the customers to ask for advocacy.

    A customer is a promoter when their latest NPS (up to ``as_of``) is 9 or 10. They are
    *high value* when their net revenue is above the ``value_quantile`` of all buyers, and
    *referrers* when they referred someone: a ``referral`` interaction, or being named in the
    ``referred_by`` column of ``customers``.

    :returns: ``customer_id``, ``latest_nps``, ``revenue`` (Float64), ``referrals`` (Int64),
        ``high_value``, ``referrer`` (Boolean), for promoters that are either, by revenue.
    """
    owner = "advocates"
    if not 0 < value_quantile < 1:
        raise InvalidValueError(owner, "value_quantile", value_quantile, "must be in (0, 1)")
    latest = as_lazy(
        latest_feedback(as_lazy(feedback, owner, "feedback"), as_of=as_of, customer_id=customer_id),
        owner,
        "feedback",
    )
    act = as_lazy(
        customer_activity(
            as_lazy(transactions, owner, "transactions"), as_of=as_of, customer_id=customer_id
        ),
        owner,
        "transactions",
    ).select(customer_id, pl.col("revenue").cast(pl.Float64))
    threshold = pl.col("revenue").quantile(value_quantile, interpolation="linear")
    act = act.with_columns((pl.col("revenue") > threshold).alias("high_value"))
    referral_parts: list[pl.LazyFrame] = []
    if interactions is not None:
        inter = as_lazy(interactions, owner, "interactions")
        referral_parts.append(inter.filter(pl.col("type") == "referral").select(customer_id))
    if customers is not None:
        cust = as_lazy(customers, owner, "customers")
        if "referred_by" in cust.collect_schema():
            referral_parts.append(
                cust.filter(pl.col("referred_by").is_not_null()).select(
                    pl.col("referred_by").alias(customer_id)
                )
            )
    if referral_parts:
        referrals = (
            pl.concat(referral_parts)
            .group_by(customer_id)
            .agg(pl.len().cast(pl.Int64).alias("referrals"))
        )
    else:
        referrals = pl.LazyFrame(schema={customer_id: pl.String, "referrals": pl.Int64})
    out = (
        latest.filter(pl.col("latest_nps") >= 9)
        .select(customer_id, "latest_nps")
        .join(act, on=customer_id, how="left")
        .join(referrals, on=customer_id, how="left")
        .with_columns(
            pl.col("revenue").fill_null(0.0),
            pl.col("referrals").fill_null(0),
            pl.col("high_value").fill_null(False),
        )
        .with_columns((pl.col("referrals") > 0).alias("referrer"))
        .filter(pl.col("high_value") | pl.col("referrer"))
        .sort(["revenue", customer_id], descending=[True, False])
    )
    return like(feedback, out)
