"""Customer lifetime value from a transaction model and a spend model, and value tiers.

Time units are explicit: the horizon, the step and the discount rate are all in the time unit of
the data the transaction model was fitted on (the unit of ``recency`` and ``T``, or periods for
BG/BB). The output column names the horizon and the unit (``clv_52_weeks``), and a unit stated
on the model (``BetaGeo(time_unit="W")``) that disagrees with the one passed here is an error, so
weekly data are never discounted at a monthly rate by accident.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from loyaltykit.errors import ModelInputError
from loyaltykit.models._base import (
    TIME_UNIT_NAMES,
    Arrays,
    BTYDModel,
    FloatArray,
    FrameLike,
    as_polars,
    with_columns,
)
from loyaltykit.models.gamma_gamma import GammaGamma

__all__ = ["clv_column_name", "customer_lifetime_value", "period_discount_rate", "value_tiers"]

_PER_YEAR = {
    "s": 365.25 * 86400,
    "min": 365.25 * 1440,
    "H": 365.25 * 24,
    "D": 365.25,
    "W": 365.25 / 7,
    "M": 12.0,
    "Q": 4.0,
    "Y": 1.0,
}


def period_discount_rate(annual_rate: float, time_unit: str) -> float:
    """The discount rate per ``time_unit`` equivalent to ``annual_rate`` a year (compounded).

    >>> round(period_discount_rate(0.10, "W"), 6)
    0.001827
    """
    if time_unit not in _PER_YEAR:
        raise ModelInputError(
            f"period_discount_rate: time_unit={time_unit!r}; use one of {sorted(_PER_YEAR)}"
        )
    if not annual_rate > -1:
        raise ModelInputError(f"period_discount_rate: annual_rate={annual_rate!r} must be > -1")
    return float((1.0 + annual_rate) ** (1.0 / _PER_YEAR[time_unit]) - 1.0)


def clv_column_name(horizon: float, time_unit: str | None) -> str:
    """The default CLV column name, e.g. ``clv_52_weeks`` (``clv_12_periods`` with no unit)."""
    unit = TIME_UNIT_NAMES.get(time_unit, time_unit) if time_unit else "periods"
    return f"clv_{horizon:g}_{unit}"


def _resolve_unit(model: BTYDModel, time_unit: str | None) -> str | None:
    stated = getattr(model, "time_unit", None)
    if stated is not None and time_unit is not None and stated != time_unit:
        raise ModelInputError(
            f"customer_lifetime_value: time_unit={time_unit!r} but the transaction model was "
            f"fitted on data in {stated!r}; horizon and discount_rate must be in the data's unit "
            f"(convert an annual rate with period_discount_rate(rate, {stated!r}))"
        )
    return time_unit if time_unit is not None else stated


def customer_lifetime_value(
    transaction_model: BTYDModel,
    spend_model: GammaGamma | float,
    frame: FrameLike,
    *,
    horizon: float,
    discount_rate: float,
    time_unit: str | None = None,
    step: float = 1.0,
    margin: float = 1.0,
    name: str | None = None,
) -> pl.DataFrame | pl.LazyFrame:
    """``frame`` with each customer's discounted expected value over the next ``horizon``.

    ``CLV = margin * spend * sum_k (E[X(t_k)] - E[X(t_{k-1})]) / (1 + discount_rate)**t_k`` with
    ``t_k = min(k * step, horizon)``: the conditional expected transactions of each step,
    discounted at the end of the step, times the expected spend per transaction.

    :param transaction_model: a fitted :class:`~loyaltykit.models.BetaGeo`,
        :class:`~loyaltykit.models.ModifiedBetaGeo`, :class:`~loyaltykit.models.ParetoNBD` or
        :class:`~loyaltykit.models.BetaGeoBetaBinom`.
    :param spend_model: a fitted :class:`~loyaltykit.models.GammaGamma` (uses ``frequency`` and
        ``monetary_value``), or a fixed value per transaction.
    :param frame: the customers (the transaction model's columns, plus ``monetary_value`` for a
        spend model), eager or lazy; the result is the same kind.
    :param horizon: how far ahead, **in the data's time unit** (e.g. 52 for a year of weekly
        data).
    :param discount_rate: discount rate **per one time unit of the data** (e.g. a weekly rate for
        weekly data; see :func:`period_discount_rate`).
    :param time_unit: the data's time unit (``"D"``, ``"W"``, ...). Used in the column name and
        checked against the transaction model's ``time_unit`` when both are stated.
    :param step: length of a discounting step, in the data's time unit (default 1).
    :param margin: share of spend that is profit (default 1: CLV in revenue).
    :param name: output column name (default :func:`clv_column_name`, e.g. ``clv_52_weeks``).
    """
    owner = "customer_lifetime_value"
    unit = _resolve_unit(transaction_model, time_unit)
    for label, value in (("horizon", horizon), ("step", step)):
        if not (math.isfinite(value) and value > 0):
            raise ModelInputError(f"{owner}: {label}={value!r} must be > 0 (data's time unit)")
    if not (math.isfinite(discount_rate) and discount_rate > -1):
        raise ModelInputError(f"{owner}: discount_rate={discount_rate!r} must be > -1")
    if not hasattr(transaction_model, "_discounted_purchases"):
        raise ModelInputError(
            f"{owner}: {type(transaction_model).__name__} is not a transaction model; pass "
            "BetaGeo, ModifiedBetaGeo, ParetoNBD or BetaGeoBetaBinom"
        )
    transaction_model.params_  # noqa: B018 - raises NotFittedError early
    steps = math.ceil(horizon / step - 1e-12)
    times = np.minimum(np.arange(1, steps + 1) * step, horizon)
    discounts = (1.0 + discount_rate) ** (-times)
    column = name or clv_column_name(horizon, unit)
    inputs = list(transaction_model.required_columns)
    fixed: float | None = None
    if isinstance(spend_model, GammaGamma):
        spend_model.params_  # noqa: B018
        inputs += [c for c in spend_model.required_columns if c not in inputs]
    else:
        fixed = float(spend_model)
        if not math.isfinite(fixed):
            raise ModelInputError(f"{owner}: spend_model={spend_model!r} must be finite")

    def compute(d: Arrays) -> dict[str, FloatArray]:
        rows = transaction_model._prepare_rows(
            {c: d[c] for c in transaction_model.required_columns}
        )
        cols = [rows[c] for c in transaction_model.required_columns]
        purchases: FloatArray = transaction_model._discounted_purchases(*cols, times, discounts)
        if fixed is not None:
            spend = np.full(purchases.shape, fixed)
        else:
            assert isinstance(spend_model, GammaGamma)
            sd = spend_model._prepare_rows(
                {"frequency": d["frequency"], "monetary_value": d["monetary_value"]}
            )
            spend = spend_model._expected(sd["frequency"], sd["monetary_value"])
        return {column: margin * spend * purchases}

    return with_columns(frame, owner, inputs, compute, [column])


def value_tiers(
    frame: FrameLike,
    *,
    value: str,
    thresholds: Sequence[float] | None = None,
    quantiles: Sequence[float] | None = None,
    labels: Sequence[str] | None = None,
    customer_id: str = "customer_id",
    tier: str = "clv_tier",
) -> Any:
    """Customers in value tiers by a predicted value column (e.g. the output of
    :func:`customer_lifetime_value`), as a frame to join into a customer profile.

    Give either ``thresholds`` (increasing cut points in the value's unit) or ``quantiles``
    (increasing, in (0, 1); the cut points are the value's quantiles over the frame). With ``k``
    cut points there are ``k + 1`` tiers, lowest first; a value equal to a cut point goes to the
    upper tier.

    :param labels: ``k + 1`` tier names, lowest first (default ``tier_1`` ... ``tier_{k+1}``).
    :param tier: name of the tier column (default ``clv_tier``; the customer profile of
        :func:`loyaltykit.analytics.customer_profile` already has a revenue-based ``value_tier``).
    :returns: the same kind of frame as given, with columns ``customer_id``, ``value`` and ``tier``
        (String), one row per input row.
    """
    owner = "value_tiers"
    pf = as_polars(frame, owner)
    names = (pf.collect_schema() if isinstance(pf, pl.LazyFrame) else pf.schema).names()
    for col in (customer_id, value):
        if col not in names:
            raise ModelInputError(f"{owner}: column {col!r} is missing; the frame has {names}")
    if (thresholds is None) == (quantiles is None):
        raise ModelInputError(f"{owner}: give exactly one of thresholds=... or quantiles=...")
    cuts_in = list(thresholds if thresholds is not None else quantiles or [])
    if not cuts_in or any(b <= a for a, b in itertools.pairwise(cuts_in)):
        raise ModelInputError(f"{owner}: cut points {cuts_in} must be non-empty and increasing")
    if quantiles is not None and not all(0 < q < 1 for q in cuts_in):
        raise ModelInputError(f"{owner}: quantiles {cuts_in} must lie strictly between 0 and 1")
    names_out = (
        list(labels) if labels is not None else [f"tier_{i + 1}" for i in range(len(cuts_in) + 1)]
    )
    if len(names_out) != len(cuts_in) + 1:
        raise ModelInputError(
            f"{owner}: {len(cuts_in)} cut point(s) make {len(cuts_in) + 1} tiers, but "
            f"{len(names_out)} label(s) were given"
        )
    v = pl.col(value)
    cuts = (
        [pl.lit(float(c)) for c in cuts_in]
        if thresholds is not None
        else [v.quantile(float(q), interpolation="linear") for q in cuts_in]
    )
    expr: Any = pl.when(v.is_null()).then(pl.lit(None, pl.String))
    for cut, label in zip(reversed(cuts), reversed(names_out[1:]), strict=True):
        expr = expr.when(v >= cut).then(pl.lit(label))
    expr = expr.otherwise(pl.lit(names_out[0])).alias(tier)
    return pf.select(pl.col(customer_id), v, expr)
