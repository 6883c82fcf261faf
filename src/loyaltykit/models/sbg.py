"""sBG: the shifted-beta-geometric model of contractual churn (Fader & Hardie 2007).

At the end of each period a customer churns with probability ``theta ~ Beta(alpha, beta)``, fixed
per customer. The cohort's retention rate rises over time because the customers who churn easily
leave first.

Input of :meth:`ShiftedBetaGeo.fit`, either

* a cohort survival table: ``period`` (0, 1, 2, ... consecutive) and ``alive`` (customers still
  active; period 0 is the cohort size); or
* one row per customer: ``duration`` (periods survived; for a churned customer, the period in
  which they churned, ``>= 1``) and ``churned`` (bool or 0/1), optional ``weights``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import polars as pl
from scipy.special import betaln, digamma

from loyaltykit.errors import ModelInputError
from loyaltykit.models._base import (
    Arrays,
    BTYDModel,
    FloatArray,
    FrameLike,
    as_polars,
    check_rule,
    compress,
    read_columns,
    with_columns,
)
from loyaltykit.models._special import hyp2f1_one

__all__ = ["ShiftedBetaGeo"]


def _read_individual(frame: FrameLike, owner: str, *, fit: bool) -> Arrays:
    pf = as_polars(frame, owner)
    schema = pf.collect_schema() if isinstance(pf, pl.LazyFrame) else pf.schema
    if "churned" in schema and schema["churned"] == pl.Boolean:
        pf = pf.with_columns(pl.col("churned").cast(pl.Int8))
    a = read_columns(pf, owner, ("duration", "churned"), ("weights",) if fit else ())
    d, c = a["duration"], a["churned"]
    check_rule(owner, a, "duration", (d < 0) | (d != np.floor(d)), "must be a whole number >= 0")
    check_rule(owner, a, "churned", (c != 0) & (c != 1), "must be a bool or 0/1")
    check_rule(
        owner,
        a,
        "duration",
        (c == 1) & (d < 1),
        "a churned customer's duration (the period they churned in) must be >= 1",
    )
    if "weights" in a:
        check_rule(owner, a, "weights", a["weights"] < 0, "weights must be >= 0")
    return a


def _table_to_individual(frame: FrameLike, owner: str) -> Arrays:
    a = read_columns(frame, owner, ("period", "alive"))
    order = np.argsort(a["period"], kind="stable")
    period, alive = a["period"][order], a["alive"][order]
    if period.size < 2 or np.any(period != np.arange(period.size)):
        raise ModelInputError(
            f"{owner}: column 'period' must run 0, 1, 2, ... without gaps (period 0 is the "
            f"cohort size); got {period.tolist()[:10]}"
        )
    lost = alive[:-1] - alive[1:]
    if np.any(alive < 0) or np.any(lost < 0):
        row = int(np.argmax(lost < 0)) + 1 if np.any(lost < 0) else int(np.argmax(alive < 0))
        raise ModelInputError(
            f"{owner}: column 'alive' must be >= 0 and never increase; period {row} has "
            f"{alive[row]!r} after {alive[max(row - 1, 0)]!r}"
        )
    last = period.size - 1
    return {
        "duration": np.concatenate([np.arange(1.0, last + 1), [float(last)]]),
        "churned": np.concatenate([np.ones(last), [0.0]]),
        "weights": np.concatenate([lost, [alive[-1]]]).astype(np.float64),
    }


class ShiftedBetaGeo(BTYDModel):
    """sBG, parameters ``alpha`` and ``beta`` of the Beta distribution of the churn probability.

    >>> from loyaltykit.datasets import load_sbg_retention
    >>> import polars as pl
    >>> table = load_sbg_retention("regular").filter(pl.col("period") <= 7)
    >>> model = ShiftedBetaGeo().fit(table)
    >>> {k: round(v, 3) for k, v in model.params_.items()}
    {'alpha': 0.704, 'beta': 1.182}
    """

    param_names: ClassVar[tuple[str, ...]] = ("alpha", "beta")
    required_columns: ClassVar[tuple[str, ...]] = ("duration", "churned")
    compress_keys: ClassVar[tuple[str, ...]] = ("duration", "churned")

    def _prepare(self, frame: FrameLike) -> Arrays:
        owner = f"{self._owner}.fit"
        pf = as_polars(frame, owner)
        names = (pf.collect_schema() if isinstance(pf, pl.LazyFrame) else pf.schema).names()
        if "period" in names and "alive" in names:
            a = _table_to_individual(pf, owner)
        elif "duration" in names and "churned" in names:
            a = _read_individual(pf, owner, fit=True)
        else:
            raise ModelInputError(
                f"{owner}: expected a survival table (columns period, alive) or one row per "
                f"customer (columns duration, churned); the frame has {list(names)}"
            )
        return compress(a, self.compress_keys, a.get("weights"))

    def _prepare_rows(self, arrays: Arrays) -> Arrays:
        return _read_individual(pl.DataFrame(arrays), self._owner, fit=False)

    def _loglik(
        self, params: FloatArray, data: Arrays, gradient: bool
    ) -> tuple[FloatArray, FloatArray | None]:
        al, be = params
        d, c = data["duration"], data["churned"]
        churn = c > 0
        # churned in period d: B(al+1, be+d-1)/B(al,be); survived d periods: B(al, be+d)/B(al,be)
        u = np.where(churn, al + 1, al)
        v = np.where(churn, be + d - 1, be + d)
        ll = betaln(u, v) - betaln(al, be)
        if not gradient:
            return ll, None
        duv = digamma(u + v)
        dab = digamma(al + be)
        g = np.empty((d.size, 2))
        g[:, 0] = digamma(u) - duv - digamma(al) + dab
        g[:, 1] = digamma(v) - duv - digamma(be) + dab
        return ll, g

    def _initial(self, data: Arrays) -> FloatArray:
        return np.array([1.0, 1.0])

    # ---------------------------------------------------------------- predictions

    def survival(self, periods: int | list[int] | FloatArray) -> pl.DataFrame:
        """Share of a new cohort still active after each of ``periods``.

        :returns: columns ``period``, ``survival`` (``S(t)``) and ``retention_rate``
            (``S(t) / S(t-1)``, null for period 0).
        """
        al, be = self._p()
        t = np.atleast_1d(np.asarray(periods, dtype=np.float64))
        if np.any(t < 0) or np.any(t != np.floor(t)):
            raise ModelInputError(f"{self._owner}.survival: periods must be whole numbers >= 0")
        surv = np.exp(betaln(al, be + t) - betaln(al, be))
        rate = np.full(t.shape, np.nan)
        later = t >= 1
        rate[later] = (be + t[later] - 1) / (al + be + t[later] - 1)
        return pl.DataFrame(
            {"period": t.astype(np.int64), "survival": surv, "retention_rate": rate}
        ).with_columns(pl.col("retention_rate").fill_nan(None))

    def retention_curve(self, last_period: int, *, cohort_size: float = 1.0) -> pl.DataFrame:
        """Projected survivors of a cohort of ``cohort_size`` for periods ``0..last_period``.

        :returns: columns ``period``, ``survival``, ``retention_rate`` and ``alive``
            (``cohort_size * survival``).
        """
        out = self.survival(np.arange(last_period + 1, dtype=np.float64))
        return out.with_columns((pl.col("survival") * cohort_size).alias("alive"))

    def _residual(self, n: FloatArray, discount_rate: float) -> FloatArray:
        al, be = self._p()
        if discount_rate == 0:
            return (be + n) / (al - 1) if al > 1 else np.full(n.shape, np.inf)
        z = 1.0 / (1.0 + discount_rate)
        h, _, _, _, ok = hyp2f1_one(be + n + 1, al + be + n + 1, np.full(n.shape, z))
        if not np.all(ok > 0):
            raise ModelInputError(
                f"{self._owner}: discount_rate={discount_rate!r} is too small for the series; "
                "use a rate >= 1e-4 per period"
            )
        out: FloatArray = z * (be + n) / (al + be + n) * h
        return out

    def expected_residual_lifetime(
        self, frame: FrameLike, *, discount_rate: float = 0.0, name: str = "residual_lifetime"
    ) -> pl.DataFrame | pl.LazyFrame:
        """``frame`` with each active customer's expected number of further periods.

        For a customer who has survived ``duration`` periods (rows with ``churned`` true get 0):
        ``sum_k S(duration + k) / S(duration) / (1 + discount_rate)**k`` over ``k >= 1``, i.e. the
        discounted expected residual lifetime of Fader & Hardie, in periods of the data.
        Undiscounted (``discount_rate=0``) it is ``(beta + duration) / (alpha - 1)``, infinite
        when ``alpha <= 1`` (returned as ``inf``, not NaN).

        :param discount_rate: per period of the data, e.g. 0.1 for 10% a year with yearly periods.
        """
        self._p()
        if not (np.isfinite(discount_rate) and discount_rate >= 0):
            raise ModelInputError(f"{self._owner}: discount_rate={discount_rate!r} must be >= 0")

        def compute(d: Arrays) -> dict[str, FloatArray]:
            d = self._prepare_rows(d)
            v = self._residual(d["duration"], discount_rate)
            return {name: np.where(d["churned"] > 0, 0.0, v)}

        return with_columns(frame, self._owner, self.required_columns, compute, [name])

    def score(self, frame: FrameLike) -> pl.DataFrame | pl.LazyFrame:
        """``frame`` with ``probability_renewal``: P(an active customer who has survived
        ``duration`` periods renews once more); 0 for churned rows."""
        al, be = self._p()

        def compute(d: Arrays) -> dict[str, FloatArray]:
            d = self._prepare_rows(d)
            n = d["duration"]
            return {
                "probability_renewal": np.where(d["churned"] > 0, 0.0, (be + n) / (al + be + n))
            }

        return with_columns(
            frame, self._owner, self.required_columns, compute, ["probability_renewal"]
        )
