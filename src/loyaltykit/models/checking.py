"""Model checking: calibration vs holdout, tracking, error metrics and model comparison.

The usual workflow (Fader, Hardie & Lee 2005): fit on a calibration window, predict the holdout
window, and compare by frequency bucket, in total and over time.

* :func:`calibration_vs_holdout` - predicted vs actual holdout purchases, per calibration
  frequency bucket and in total, from the output of
  :func:`loyaltykit.analytics.calibration_and_holdout`;
* :func:`repeat_transactions` and :func:`tracking` - cumulative and incremental repeat
  transactions of a cohort over time, model vs actual;
* :func:`error_metrics` - MAE, RMSE, bias, MAPE and correlation;
* :func:`compare_models` - log-likelihood, AIC and BIC of models fitted on the same data.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from loyaltykit.errors import ModelInputError
from loyaltykit.models._base import (
    BTYDModel,
    FloatArray,
    FrameLike,
    as_polars,
    read_columns,
)

__all__ = [
    "calibration_vs_holdout",
    "compare_models",
    "error_metrics",
    "frequency_spend_correlation",
    "repeat_transactions",
    "tracking",
]

_UNIT_SECONDS = {"s": 1.0, "min": 60.0, "H": 3600.0, "D": 86400.0, "W": 7 * 86400.0}


def _transaction_model(model: Any, owner: str) -> BTYDModel:
    if not hasattr(model, "_discounted_purchases") or not hasattr(model, "expected_purchases_new"):
        raise ModelInputError(
            f"{owner}: {type(model).__name__} is not a transaction model; pass BetaGeo, "
            "ModifiedBetaGeo or ParetoNBD"
        )
    model.params_  # noqa: B018 - NotFittedError early
    assert isinstance(model, BTYDModel)
    return model


def calibration_vs_holdout(
    model: BTYDModel, frame: FrameLike, *, max_frequency: int = 7
) -> pl.DataFrame:
    """Mean predicted vs actual holdout purchases per calibration-frequency bucket and in total.

    :param model: a fitted continuous-time transaction model (BG/NBD, MBG/NBD, Pareto/NBD).
    :param frame: the columns of :func:`loyaltykit.analytics.calibration_and_holdout`:
        ``frequency_cal``, ``recency_cal``, ``T_cal``, ``frequency_holdout`` and
        ``duration_holdout`` (in the calibration data's time unit).
    :param max_frequency: calibration frequencies at or above it share the last bucket
        (labelled ``"7+"`` by default).
    :returns: columns ``bucket`` (``"0"``, ``"1"``, ..., ``"7+"``, ``"total"``), ``customers``,
        ``actual`` and ``predicted`` (mean holdout purchases per customer), and ``error``
        (predicted - actual); buckets in order, the total last.
    """
    owner = "calibration_vs_holdout"
    m = _transaction_model(model, owner)
    cols = ("frequency_cal", "recency_cal", "T_cal", "frequency_holdout", "duration_holdout")
    d = read_columns(frame, owner, cols)
    rows = m._prepare_rows(
        {"frequency": d["frequency_cal"], "recency": d["recency_cal"], "T": d["T_cal"]}
    )
    predicted = np.empty(d["frequency_cal"].size)
    for duration in np.unique(d["duration_holdout"]):
        idx = np.nonzero(d["duration_holdout"] == duration)[0]
        predicted[idx] = m._discounted_purchases(  # type: ignore[attr-defined]
            rows["frequency"][idx],
            rows["recency"][idx],
            rows["T"][idx],
            np.array([float(duration)]),
            np.array([1.0]),
        )
    bucket = np.minimum(d["frequency_cal"], max_frequency).astype(np.int64)
    per = pl.DataFrame({"b": bucket, "actual": d["frequency_holdout"], "predicted": predicted})
    grouped = (
        per.group_by("b")
        .agg(pl.len().alias("customers"), pl.col("actual").mean(), pl.col("predicted").mean())
        .sort("b")
        .with_columns(
            pl.when(pl.col("b") >= max_frequency)
            .then(pl.format("{}+", pl.col("b")))
            .otherwise(pl.col("b").cast(pl.String))
            .alias("bucket")
        )
    )
    total = pl.DataFrame(
        {
            "bucket": ["total"],
            "customers": [per.height],
            "actual": [float(np.mean(d["frequency_holdout"]))],
            "predicted": [float(np.mean(predicted))],
        }
    )
    out = pl.concat(
        [
            grouped.select("bucket", pl.col("customers").cast(pl.Int64), "actual", "predicted"),
            total.with_columns(pl.col("customers").cast(pl.Int64)),
        ]
    )
    return out.with_columns((pl.col("predicted") - pl.col("actual")).alias("error"))


def repeat_transactions(
    transactions: FrameLike,
    *,
    origin: dt.datetime,
    time_unit: str = "W",
    customer_id: str = "customer_id",
    timestamp: str = "occurred_at",
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Births and repeat transactions of a cohort, in ``time_unit`` since ``origin``.

    Purchases on the same day count once (as in :func:`loyaltykit.analytics.summary`); the first
    purchase day of a customer is their birth, the later ones are repeat transactions. Rows with
    ``kind`` other than ``"purchase"`` are ignored when a ``kind`` column exists.

    :param origin: timezone-aware start of the time axis (e.g. the start of the cohort's
        acquisition window).
    :param time_unit: ``"D"``, ``"W"``, ``"H"``, ``"min"`` or ``"s"``.
    :returns: ``(births, repeats)``: ``births`` has ``customer_id`` and ``birth`` (Float64, time of
        the first purchase since ``origin``); ``repeats`` has ``t`` (Int64, the period, counting
        from 1: ``t`` covers ``(t - 1, t]``) and ``repeat_transactions`` (Int64), sorted by ``t``.
    """
    owner = "repeat_transactions"
    if time_unit not in _UNIT_SECONDS:
        raise ModelInputError(
            f"{owner}: time_unit={time_unit!r}; use one of {sorted(_UNIT_SECONDS)}"
        )
    if origin.tzinfo is None:
        raise ModelInputError(f"{owner}: origin={origin!r} must be timezone-aware")
    pf = as_polars(transactions, owner).lazy()
    names = pf.collect_schema().names()
    if "kind" in names:
        pf = pf.filter(pl.col("kind") == "purchase")
    unit = _UNIT_SECONDS[time_unit]
    days = (
        pf.select(
            pl.col(customer_id),
            pl.col(timestamp).dt.convert_time_zone("UTC").dt.truncate("1d").alias("day"),
        )
        .unique()
        .with_columns(((pl.col("day") - pl.lit(origin)).dt.total_seconds() / unit).alias("since"))
    )
    first = days.group_by(customer_id).agg(pl.col("since").min().alias("birth"))
    repeats = (
        days.join(first, on=customer_id)
        .filter(pl.col("since") > pl.col("birth"))
        .with_columns(pl.col("since").ceil().cast(pl.Int64).alias("t"))
        .group_by("t")
        .agg(pl.len().cast(pl.Int64).alias("repeat_transactions"))
        .sort("t")
    )
    return first.sort(customer_id).collect(), repeats.collect()


def tracking(
    model: BTYDModel,
    births: FrameLike,
    *,
    times: Sequence[float] | FloatArray,
    birth: str = "birth",
    actual: FrameLike | None = None,
) -> pl.DataFrame:
    """Expected (and actual) cumulative and incremental repeat transactions of a cohort.

    Each customer contributes the model's unconditional curve ``E[X(t - birth)]`` from their
    birth on, so the sum is what the model expects the whole cohort to do.

    :param model: a fitted continuous-time transaction model.
    :param births: one row per customer with ``birth``, their first purchase time in the data's
        time unit since a common origin (see :func:`repeat_transactions`).
    :param times: increasing time points (same unit and origin) at which to report.
    :param actual: optional ``repeats`` frame of :func:`repeat_transactions` (``t``,
        ``repeat_transactions``); its counts are accumulated up to each of ``times``.
    :returns: columns ``t``, ``expected_cumulative``, ``expected_incremental`` and, with
        ``actual``, ``actual_cumulative`` and ``actual_incremental``.
    """
    owner = "tracking"
    m = _transaction_model(model, owner)
    b = read_columns(births, owner, (birth,))[birth]
    ts = np.asarray(times, dtype=np.float64)
    if ts.ndim != 1 or ts.size == 0 or np.any(np.diff(ts) <= 0):
        raise ModelInputError(f"{owner}: times must be a non-empty increasing sequence")
    ub, counts = np.unique(b, return_counts=True)
    ages = np.maximum(ts[:, None] - ub[None, :], 0.0)  # (times, births)
    uniq_age, inverse = np.unique(ages, return_inverse=True)
    curve = m.expected_purchases_new(uniq_age)["expected_purchases"].to_numpy()  # type: ignore[attr-defined]
    per = curve[inverse.ravel()].reshape(ages.shape)
    cumulative = per @ counts.astype(np.float64)
    out = pl.DataFrame(
        {
            "t": ts,
            "expected_cumulative": cumulative,
            "expected_incremental": np.diff(cumulative, prepend=0.0),
        }
    )
    if actual is not None:
        a = read_columns(actual, owner, ("t", "repeat_transactions"))
        order = np.argsort(a["t"])
        at, ac = a["t"][order], np.cumsum(a["repeat_transactions"][order])
        idx = np.searchsorted(at, ts, side="right") - 1
        cum = np.where(idx >= 0, ac[np.maximum(idx, 0)], 0.0)
        out = out.with_columns(
            pl.Series("actual_cumulative", cum),
            pl.Series("actual_incremental", np.diff(cum, prepend=0.0)),
        )
    return out


def error_metrics(actual: Any, predicted: Any) -> dict[str, float]:
    """Error metrics of predictions against actuals (arrays, lists or polars Series).

    :returns: ``mae``, ``rmse``, ``bias`` (mean of predicted - actual), ``mape`` (mean absolute
        percentage error over the non-zero actuals, in percent; NaN when all actuals are 0) and
        ``correlation`` (Pearson; NaN when either side is constant).
    """
    a = np.asarray(actual.to_numpy() if isinstance(actual, pl.Series) else actual, dtype=np.float64)
    p = np.asarray(
        predicted.to_numpy() if isinstance(predicted, pl.Series) else predicted, dtype=np.float64
    )
    if a.shape != p.shape or a.size == 0:
        raise ModelInputError(
            f"error_metrics: actual and predicted must be non-empty and of one length, got "
            f"{a.shape} and {p.shape}"
        )
    err = p - a
    nz = a != 0
    mape = float(np.mean(np.abs(err[nz] / a[nz])) * 100) if nz.any() else math.nan
    corr = (
        float(np.corrcoef(a, p)[0, 1]) if a.size > 1 and a.std() > 0 and p.std() > 0 else math.nan
    )
    return {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(math.sqrt(np.mean(err**2))),
        "bias": float(np.mean(err)),
        "mape": mape,
        "correlation": corr,
    }


def compare_models(models: Mapping[str, BTYDModel]) -> pl.DataFrame:
    """Fitted models side by side: parameters, log-likelihood, AIC and BIC, best AIC first.

    :param models: name -> model fitted on the same data (same number of observations).
    :returns: columns ``model``, ``parameters``, ``log_likelihood``, ``aic``, ``bic``,
        ``n_observations``.
    """
    if not models:
        raise ModelInputError("compare_models: give at least one fitted model")
    sizes = {name: m.n_observations_ for name, m in models.items()}
    if len(set(sizes.values())) > 1:
        raise ModelInputError(
            f"compare_models: the models were fitted on different data sizes {sizes}; "
            "likelihoods are only comparable on the same data"
        )
    return pl.DataFrame(
        {
            "model": list(models),
            "parameters": [len(m.param_names) for m in models.values()],
            "log_likelihood": [m.log_likelihood_ for m in models.values()],
            "aic": [m.aic_ for m in models.values()],
            "bic": [m.bic_ for m in models.values()],
            "n_observations": [m.n_observations_ for m in models.values()],
        }
    ).sort("aic")


def frequency_spend_correlation(frame: FrameLike) -> float:
    """Pearson correlation of ``frequency`` and ``monetary_value`` among repeat buyers.

    The Gamma-Gamma model assumes it is close to 0; CDNOW gives about 0.11.
    """
    d = read_columns(frame, "frequency_spend_correlation", ("frequency", "monetary_value"))
    keep = d["frequency"] > 0
    f, v = d["frequency"][keep], d["monetary_value"][keep]
    if f.size < 2 or f.std() == 0 or v.std() == 0:
        return math.nan
    return float(np.corrcoef(f, v)[0, 1])
