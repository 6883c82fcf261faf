"""Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV"; Fader & Hardie note 025).

Each transaction's value is Gamma(``p``, ``nu``) around a customer's mean; the customer's scale
``nu`` is Gamma(``q``, ``gamma``) across customers. Fitted on repeat buyers (``frequency > 0``)
from ``frequency`` and ``monetary_value`` (mean value of the repeat transactions). The model
assumes spend is independent of purchase frequency: check with
:func:`loyaltykit.models.checking.frequency_spend_correlation`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy.special import digamma, gammaln

from loyaltykit.errors import ModelInputError
from loyaltykit.models._base import (
    Arrays,
    BTYDModel,
    FloatArray,
    FrameLike,
    check_rule,
    compress,
    distinct,
    read_columns,
    with_columns,
)

__all__ = ["GammaGamma"]

_COMPRESS_BELOW = 100_000  # rows; larger inputs are fitted row by row


def _read(frame: FrameLike, owner: str, *, fit: bool) -> Arrays:
    a = read_columns(frame, owner, ("frequency", "monetary_value"), ("weights",) if fit else ())
    x, m = a["frequency"], a["monetary_value"]
    check_rule(
        owner, a, "frequency", (x < 0) | (x != np.floor(x)), "frequency must be a whole number >= 0"
    )
    if fit:
        keep = x > 0
        a = {k: v[keep] for k, v in a.items()}
        x, m = a["frequency"], a["monetary_value"]
        if x.size == 0:
            raise ModelInputError(
                f"{owner}: no row with frequency > 0; the spend model is fitted on repeat buyers"
            )
    check_rule(
        owner,
        a,
        "monetary_value",
        (x > 0) & (m <= 0),
        "monetary_value of a repeat buyer must be > 0 (mean value of the repeat transactions); "
        "drop or net out zero/negative values first",
    )
    return a


class GammaGamma(BTYDModel):
    """Gamma-Gamma spend model, parameters ``p``, ``q``, ``v`` (the papers' gamma).

    Input of :meth:`fit`: ``frequency`` and ``monetary_value``; rows with frequency 0 are ignored.

    >>> from loyaltykit.datasets import load_cdnow_summary
    >>> model = GammaGamma().fit(load_cdnow_summary(with_monetary=True))
    >>> {k: round(v, 2) for k, v in model.params_.items()}
    {'p': 6.25, 'q': 3.74, 'v': 15.44}
    """

    param_names: ClassVar[tuple[str, ...]] = ("p", "q", "v")
    required_columns: ClassVar[tuple[str, ...]] = ("frequency", "monetary_value")
    compress_keys: ClassVar[tuple[str, ...]] = ("frequency", "monetary_value")

    def _prepare(self, frame: FrameLike) -> Arrays:
        a = _read(frame, f"{self._owner}.fit", fit=True)
        if a["frequency"].size > _COMPRESS_BELOW:
            # spend is continuous: large inputs have hardly any identical rows, so grouping
            # them would cost more than it saves
            data = {k: a[k] for k in self.compress_keys}
            w = a.get("weights")
            data["weights"] = np.ones(a["frequency"].size) if w is None else w
        else:
            data = compress(a, self.compress_keys, a.get("weights"))
        return self._arrange(data)

    def _arrange(self, data: Arrays) -> Arrays:
        """Per-frequency weights and the parameter-free sums of :meth:`_total`."""
        x, m, w = data["frequency"], data["monetary_value"], data["weights"]
        (xu,), inverse = distinct(x)
        data["_x_inv"] = inverse  # type: ignore[assignment]
        data["_x_u"] = xu
        data["_x_w"] = np.bincount(inverse, weights=w, minlength=xu.size).astype(np.float64)
        log_m = np.log(m)
        data["_sums"] = np.array(
            [float(w @ log_m), float(w @ (x * log_m)), float(w @ (x * np.log(x)))]
        )
        return data

    def _coarse(self, data: Arrays) -> Arrays | None:
        """``monetary_value`` rounded to a geometric grid (512 steps between the smallest and
        the largest value) and compressed again per frequency, for a warm start (see
        :meth:`BTYDModel.fit`); ``None`` below 50,000 rows."""
        m = data["monetary_value"]
        if m.size < 50_000:
            return None
        log_m = np.log(m)
        lo, hi = float(log_m.min()), float(log_m.max())
        if not hi > lo:
            return None
        cells = 512
        step = (hi - lo) / cells
        inverse: npt.NDArray[np.intp] = data["_x_inv"]  # type: ignore[assignment]
        code = inverse.astype(np.int64) * (cells + 1) + np.rint((log_m - lo) / step).astype(
            np.int64
        )
        xu = data["_x_u"]
        counts = np.bincount(code, weights=data["weights"], minlength=xu.size * (cells + 1))
        present = np.flatnonzero(counts > 0)
        if present.size > m.size // 3:
            return None
        coarse = {
            "frequency": xu[present // (cells + 1)],
            "monetary_value": np.exp(lo + (present % (cells + 1)) * step),
            "weights": np.asarray(counts[present], dtype=np.float64),
        }
        return self._arrange(coarse)

    def _total(self, params: FloatArray, data: Arrays) -> tuple[float, FloatArray]:
        if "_x_u" not in data:
            return super()._total(params, data)
        p, q, v = params
        xu, wx = data["_x_u"], data["_x_w"]
        s_logm, s_xlogm, s_xlogx = data["_sums"]
        n = float(wx.sum())
        x, m, w = data["frequency"], data["monetary_value"], data["weights"]
        log_xm_v = np.log(x * m + v)
        pxu = p * xu
        total = float(wx @ (gammaln(pxu + q) - gammaln(pxu) - gammaln(q)))
        total += n * q * np.log(v) + p * s_xlogm - s_logm + p * s_xlogx
        total -= float(w @ ((p * x + q) * log_xm_v))
        g = np.array(
            [
                float(wx @ (xu * (digamma(pxu + q) - digamma(pxu))))
                + s_xlogm
                + s_xlogx
                - float(w @ (x * log_xm_v)),
                float(wx @ (digamma(pxu + q) - digamma(q))) + n * np.log(v) - float(w @ log_xm_v),
                n * q / v - float(w @ ((p * x + q) / (x * m + v))),
            ]
        )
        return total, g

    def _prepare_rows(self, arrays: Arrays) -> Arrays:
        return _read(pl.DataFrame(arrays), self._owner, fit=False)

    def _loglik(
        self, params: FloatArray, data: Arrays, gradient: bool
    ) -> tuple[FloatArray, FloatArray | None]:
        p, q, v = params
        x, m = data["frequency"], data["monetary_value"]
        px = p * x
        with np.errstate(divide="ignore", invalid="ignore"):
            log_m = np.log(m)
            log_xm_v = np.log(x * m + v)
            ll = (
                gammaln(px + q)
                - gammaln(px)
                - gammaln(q)
                + q * np.log(v)
                + (px - 1) * log_m
                + px * np.log(x)
                - (px + q) * log_xm_v
            )
        if not gradient:
            return ll, None
        g = np.empty((x.size, 3))
        g[:, 0] = x * (digamma(px + q) - digamma(px) + log_m + np.log(x) - log_xm_v)
        g[:, 1] = digamma(px + q) - digamma(q) + np.log(v) - log_xm_v
        g[:, 2] = q / v - (px + q) / (x * m + v)
        return ll, g

    def _initial(self, data: Arrays) -> FloatArray:
        w = data["weights"]
        m = data["monetary_value"]
        mean = max(float(w @ m) / float(w.sum()), 1e-6)
        # typical shapes (CDNOW: p 6.2, q 3.7); v so that the mean spend p v / (q - 1) matches
        return np.array([5.0, 4.0, mean * 3.0 / 5.0])

    def _expected(self, x: FloatArray, m: FloatArray) -> FloatArray:
        p, q, v = self._p()
        mean = p * v / (q - 1) if q > 1 else np.inf
        with np.errstate(invalid="ignore"):
            cond = p * (v + x * m) / (p * x + q - 1)
        return np.where(x > 0, cond, mean)

    def expected_spend(
        self, frame: FrameLike, *, name: str = "expected_spend"
    ) -> pl.DataFrame | pl.LazyFrame:
        """``frame`` with each customer's expected mean transaction value.

        A weighted average of the population mean ``p v / (q - 1)`` and the customer's observed
        ``monetary_value``; customers with ``frequency`` 0 get the population mean.

        :raises ModelInputError: ``q <= 1`` (the population mean is infinite).
        """
        q = self.params_["q"]
        if q <= 1:
            raise ModelInputError(
                f"{self._owner}: q={q:.4g} <= 1, so the mean spend is infinite; the data have a "
                "very heavy right tail (check for outliers or unit errors)"
            )

        def compute(d: Arrays) -> dict[str, FloatArray]:
            d = self._prepare_rows(d)
            return {name: self._expected(d["frequency"], d["monetary_value"])}

        return with_columns(frame, self._owner, self.required_columns, compute, [name])

    @property
    def mean_spend_(self) -> float:
        """Population mean transaction value, ``p v / (q - 1)`` (infinite when ``q <= 1``)."""
        p, q, v = self._p()
        return float(p * v / (q - 1)) if q > 1 else float("inf")

    def score(self, frame: FrameLike) -> pl.DataFrame | pl.LazyFrame:
        """``frame`` with ``expected_spend`` (the :class:`~loyaltykit.protocols.ScoringModel`
        interface)."""
        return self.expected_spend(frame)
