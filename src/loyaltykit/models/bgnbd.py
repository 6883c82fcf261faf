"""BG/NBD: the beta-geometric / negative binomial model (Fader, Hardie & Lee 2005).

While alive, a customer buys as a Poisson process of rate ``lambda ~ Gamma(r, alpha)``; after
each repeat purchase they drop out with probability ``p ~ Beta(a, b)``.

Numerics: the log-likelihood is a ``logaddexp`` of two log-space terms with ``gammaln`` and
``betaln`` (finite for any frequency); the conditional expectations, which the papers write with a
Gaussian hypergeometric function, are computed as expectations over the posterior Beta
distribution of ``p`` by Gauss quadrature of a bounded function (see
:mod:`loyaltykit.models._special`), so heavy buyers and long horizons stay finite and accurate.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy.special import betainc, betaln, digamma, gammaln

from loyaltykit.errors import ModelInputError
from loyaltykit.models._base import (
    Arrays,
    BTYDModel,
    FloatArray,
    FrameLike,
    compress,
    conditional_pmf_columns,
    distinct,
    grid_compress,
    read_rft,
    with_columns,
)
from loyaltykit.models._special import beta_discounted_increments, beta_survival

__all__ = ["BetaGeo"]


class BetaGeo(BTYDModel):
    """BG/NBD (Fader, Hardie & Lee 2005), parameters ``r``, ``alpha``, ``a``, ``b``.

    Input of :meth:`fit`: ``frequency`` (repeat purchase periods), ``recency`` and ``T`` (in one
    time unit, e.g. the output of :func:`loyaltykit.analytics.summary`), optional ``weights``.
    Identical rows are compressed into weights before fitting.

    >>> from loyaltykit.datasets import load_cdnow_summary
    >>> model = BetaGeo().fit(load_cdnow_summary())
    >>> {k: round(v, 3) for k, v in model.params_.items()}
    {'r': 0.243, 'alpha': 4.414, 'a': 0.793, 'b': 2.426}
    """

    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    required_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")
    compress_keys: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")
    _shift: ClassVar[int] = 0  # MBG/NBD: 1 (dropout also possible at the first purchase)

    # ---------------------------------------------------------------- likelihood

    def _prepare(self, frame: FrameLike) -> Arrays:
        a = read_rft(frame, f"{self._owner}.fit")
        return self._arrange(compress(a, self.compress_keys, a.get("weights"), ordered=False))

    def _arrange(self, data: Arrays) -> Arrays:
        """Order compressed rows for :meth:`_total` and record the distinct frequencies."""
        # rows that cannot have dropped out (BG/NBD: no repeat purchase) first, so that the
        # likelihood's two-way sum is computed on a contiguous slice
        death = self._death_mask(data["frequency"]) > 0
        order = np.concatenate([np.flatnonzero(~death), np.flatnonzero(death)])
        data = {k: v[order] for k, v in data.items()}
        (xu,), inverse = distinct(data["frequency"])
        data["_x_u"] = xu
        data["_x_inv"] = inverse.astype(np.float64)
        data["_x_w"] = np.bincount(inverse, weights=data["weights"], minlength=xu.size).astype(
            np.float64
        )
        data["_first_death"] = np.array([float(np.count_nonzero(~death))])
        return data

    def _coarse(self, data: Arrays) -> Arrays | None:
        """``recency`` and ``T`` rounded to a grid of 1/48 of the longest ``T`` and compressed
        again, for a warm start (see :meth:`BTYDModel.fit`); ``None`` for small data."""
        if data["T"].size < 50_000:
            return None
        coarse = grid_compress(data, 48)
        if coarse is None or coarse["T"].size > data["T"].size // 3:
            return None
        return self._arrange(coarse)

    def _total(self, params: FloatArray, data: Arrays) -> tuple[float, FloatArray]:
        if "_x_u" not in data:
            return super()._total(params, data)
        r, alpha, a, b = params
        sh = self._shift
        # terms that depend on the frequency only: once per distinct frequency
        xu, wx = data["_x_u"], data["_x_w"]
        n = float(wx.sum())
        bxu = b + xu + sh
        total = float(wx @ (gammaln(r + xu) - gammaln(r) + betaln(a, bxu) - betaln(a, b)))
        total += n * r * np.log(alpha)
        g = np.array(
            [
                float(wx @ (digamma(r + xu) - digamma(r))) + n * np.log(alpha),
                n * r / alpha,
                float(wx @ (digamma(a + b) - digamma(a + bxu))),
                float(wx @ (digamma(bxu) - digamma(a + bxu) - digamma(b) + digamma(a + b))),
            ]
        )
        x, tx, T, w = data["frequency"], data["recency"], data["T"], data["weights"]
        k = int(data["_first_death"][0])
        # rows that cannot have dropped out (x = 0): only the "still alive" term
        lat0 = np.log(alpha + T[:k])
        total -= float(w[:k] @ ((r + x[:k]) * lat0))
        g[0] -= float(w[:k] @ lat0)
        g[1] -= float(w[:k] @ ((r + x[:k]) / (alpha + T[:k])))
        # the others: log(e^A3 + e^A4) = A3 + softplus(A4 - A3). Large arrays are worked on in
        # buffers kept for the whole fit (fresh temporaries cost page faults at every call)
        txd, Td, wd, xd = tx[k:], T[k:], w[k:], x[k:]
        nd = Td.size
        if nd == 0:
            return total, g
        if "_buf" not in data or data["_buf"].shape[1] != nd:
            data["_buf"] = np.empty((7, nd))
        lat, lax, dd, e, t1, w4, rx = data["_buf"]
        if "_x_invp" not in data:
            data["_x_invp"] = data["_x_inv"][k:].astype(np.intp)
        inv: npt.NDArray[np.intp] = data["_x_invp"]  # type: ignore[assignment]
        bx1 = b + xu + sh - 1.0
        log_bx = np.log(bx1, where=bx1 > 0, out=np.zeros_like(xu))
        np.add(xd, r, out=rx)
        np.add(Td, alpha, out=lat)
        np.log(lat, out=lat)
        np.add(txd, alpha, out=lax)
        np.log(lax, out=lax)
        # d = log a - log(b + x - 1) - (r + x) (log(alpha + tx) - log(alpha + T))
        np.subtract(lax, lat, out=dd)
        np.multiply(dd, rx, out=dd)
        np.take(log_bx, inv, out=t1)
        np.add(dd, t1, out=dd)
        np.subtract(np.log(a), dd, out=dd)
        # exp() below -708 gives subnormals (slow) for terms that are 0 in double precision
        np.maximum(dd, -700.0, out=dd)
        np.abs(dd, out=e)
        np.negative(e, out=e)
        np.exp(e, out=e)  # exp(-|d|)
        np.log1p(e, out=t1)
        np.maximum(dd, 0.0, out=w4)
        np.add(w4, t1, out=t1)  # softplus(d)
        total += float(wd @ t1)
        np.multiply(rx, lat, out=w4)
        total -= float(wd @ w4)
        np.subtract(dd, t1, out=w4)
        np.exp(w4, out=w4)
        np.multiply(w4, wd, out=w4)  # weight of "dropped out after the last purchase"
        sw4 = float(w4.sum())
        # w3 = wd - w4
        g[0] += -float(wd @ lat) + float(w4 @ lat) - float(w4 @ lax)
        np.add(Td, alpha, out=t1)
        np.divide(rx, t1, out=t1)
        g[1] += -float(wd @ t1) + float(w4 @ t1)
        np.add(txd, alpha, out=t1)
        np.divide(rx, t1, out=t1)
        g[1] -= float(w4 @ t1)
        g[2] += sw4 / a
        np.take(np.exp(-log_bx), inv, out=t1)
        g[3] -= float(w4 @ t1)
        return total, g

    def _prepare_rows(self, arrays: Arrays) -> Arrays:
        return read_rft(arrays, self._owner, with_weights=False)

    def _death_mask(self, x: FloatArray) -> FloatArray:
        return (x > 0).astype(np.float64) if self._shift == 0 else np.ones_like(x)

    def _loglik(
        self, params: FloatArray, data: Arrays, gradient: bool
    ) -> tuple[FloatArray, FloatArray | None]:
        r, alpha, a, b = params
        x, tx, T = data["frequency"], data["recency"], data["T"]
        sh = self._shift
        mask = self._death_mask(x) > 0
        bx = b + x + sh
        log_at = np.log(alpha + T)
        log_ax = np.log(alpha + tx)
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = betaln(a, bx) - betaln(a, b)
        a3 = -(r + x) * log_at
        with np.errstate(divide="ignore", invalid="ignore"):
            a4 = np.where(
                mask, np.log(a) - np.log(np.where(mask, bx - 1, 1.0)) - (r + x) * log_ax, -np.inf
            )
        lse = np.logaddexp(a3, a4)
        ll = a1 + a2 + lse
        if not gradient:
            return ll, None
        w4 = np.exp(a4 - lse)
        w3 = 1.0 - w4
        g = np.empty((x.size, 4))
        g[:, 0] = digamma(r + x) - digamma(r) + np.log(alpha) - w3 * log_at - w4 * log_ax
        g[:, 1] = r / alpha - w3 * (r + x) / (alpha + T) - w4 * (r + x) / (alpha + tx)
        g[:, 2] = digamma(a + b) - digamma(a + bx) + w4 / a
        with np.errstate(divide="ignore"):
            inv = np.where(mask, 1.0 / np.where(mask, bx - 1, 1.0), 0.0)
        g[:, 3] = digamma(bx) - digamma(a + bx) - digamma(b) + digamma(a + b) - w4 * inv
        return ll, g

    def _initial(self, data: Arrays) -> FloatArray:
        w = data["weights"]
        x, T = data["frequency"], data["T"]
        rate = max(float(w @ x) / max(float(w @ T), 1e-12), 1e-6)
        # r / alpha ~ the mean purchase rate; a and b at values typical of retail data
        r = 0.5
        return np.array([r, r / rate, 0.8, 2.5])

    # ---------------------------------------------------------------- predictions (arrays)

    def _palive(self, x: FloatArray, tx: FloatArray, T: FloatArray) -> FloatArray:
        r, alpha, a, b = self._p()
        # P(alive) = 1 / (1 + odds), odds = a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x)
        # (no dropout possible without a repeat purchase in BG/NBD: odds 0)
        out: FloatArray = np.add(alpha, T)
        np.log(out, out=out)
        lax: FloatArray = np.add(alpha, tx)
        np.log(lax, out=lax)
        np.subtract(out, lax, out=out)
        np.multiply(out, r + x, out=out)
        np.add(b + self._shift - 1.0, x, out=lax)
        mask = lax > 0
        np.log(lax, where=mask, out=lax)
        np.subtract(out, lax, out=out)
        out += np.log(a)
        np.minimum(out, 700.0, out=out)
        np.exp(out, out=out)
        if self._shift == 0:
            out[x == 0] = 0.0
        out += 1.0
        np.reciprocal(out, out=out)
        return out

    def _discounted_purchases(
        self, x: FloatArray, tx: FloatArray, T: FloatArray, times: FloatArray, discounts: FloatArray
    ) -> FloatArray:
        """Per row ``sum_k d_k (E[X(t_k)] - E[X(t_{k-1})])`` (``t_0 = 0``), conditional on the
        history, in the data's time unit."""
        r, alpha, a, b = self._p()
        (xu, Tu), inverse = distinct(x, T)
        c = np.asarray(times, dtype=np.float64)[None, :] / (alpha + Tu)[:, None]
        part = beta_discounted_increments(a, b + xu + self._shift, r + xu, c, discounts)
        return self._palive(x, tx, T) * part[inverse]

    def _palive_ahead(
        self, x: FloatArray, tx: FloatArray, T: FloatArray, ahead: float
    ) -> FloatArray:
        r, alpha, a, b = self._p()
        pa = self._palive(x, tx, T)
        if ahead == 0:
            return pa
        (xu, Tu), inverse = distinct(x, T)
        surv = beta_survival(a, b + xu + self._shift, r + xu, ahead / (alpha + Tu))
        return pa * surv[inverse]

    # ---------------------------------------------------------------- predictions (frames)

    def probability_alive(
        self, frame: FrameLike, *, ahead: float = 0.0
    ) -> pl.DataFrame | pl.LazyFrame:
        """``frame`` with ``probability_alive``: P(still alive) at the end of observation, or
        ``ahead`` time units later (data's time unit), given each customer's history.

        :param frame: ``frequency``, ``recency``, ``T`` per customer (eager or lazy).
        :param ahead: how far past ``T`` to look, in the data's time unit (``0``: at ``T``).
        """
        self._p()
        if not (np.isfinite(ahead) and ahead >= 0):
            raise ModelInputError(f"{self._owner}.probability_alive: ahead={ahead!r} must be >= 0")

        def compute(d: Arrays) -> dict[str, FloatArray]:
            d = self._prepare_rows(d)
            return {
                "probability_alive": self._palive_ahead(d["frequency"], d["recency"], d["T"], ahead)
            }

        return with_columns(
            frame, self._owner, self.required_columns, compute, ["probability_alive"]
        )

    def expected_purchases(
        self, t: float, frame: FrameLike, *, name: str = "expected_purchases"
    ) -> pl.DataFrame | pl.LazyFrame:
        """``frame`` with the expected number of repeat purchases in the next ``t`` time units.

        Conditional on each customer's ``frequency``, ``recency`` and ``T``; ``t`` is in the
        data's time unit.
        """
        self._p()
        _check_t(self._owner, t)

        def compute(d: Arrays) -> dict[str, FloatArray]:
            d = self._prepare_rows(d)
            v = self._discounted_purchases(
                d["frequency"], d["recency"], d["T"], np.array([float(t)]), np.array([1.0])
            )
            return {name: v}

        return with_columns(frame, self._owner, self.required_columns, compute, [name])

    def expected_purchases_new(self, t: float | FloatArray | list[float]) -> pl.DataFrame:
        """Unconditional curve: expected repeat purchases of a new customer within ``t``.

        :param t: one or more durations since the first purchase, in the data's time unit.
        :returns: columns ``t`` and ``expected_purchases``.
        """
        r, alpha, a, b = self._p()
        ts = np.atleast_1d(np.asarray(t, dtype=np.float64))
        _check_t(self._owner, float(ts.min()) if ts.size else 0.0)
        # a new customer: frequency 0 and T = 0 (P(alive) is 1 for BG/NBD, b / (a + b) for MBG)
        zero = np.zeros(1)
        pa = float(self._palive(zero, zero, zero)[0])
        part = beta_discounted_increments(
            a,
            np.full(ts.size, b + self._shift),
            np.full(ts.size, r),
            (ts / alpha)[:, None],
            np.array([1.0]),
        )
        return pl.DataFrame({"t": ts, "expected_purchases": pa * part})

    def probability_of_purchases(self, n: int | list[int] | FloatArray, t: float) -> pl.DataFrame:
        """P(a new customer makes exactly ``n`` repeat purchases within ``t`` time units).

        :returns: columns ``n`` and ``probability``.
        """
        r, alpha, a, b = self._p()
        _check_t(self._owner, t)
        ns = np.atleast_1d(np.asarray(n, dtype=np.float64))
        sh = self._shift
        q = alpha / (alpha + t)
        log_nb = (
            gammaln(r + ns) - gammaln(r) - gammaln(ns + 1) + r * np.log(q) + ns * np.log1p(-q)
            if t > 0
            else np.where(ns == 0, 0.0, -np.inf)
        )
        first = np.exp(betaln(a, b + ns + sh) - betaln(a, b) + log_nb)
        has_death = (ns + sh) > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            tail = np.where(ns > 0, betainc(np.maximum(ns, 1.0), r, 1 - q), 1.0)
            second = np.where(
                has_death,
                np.exp(betaln(a + 1, np.maximum(b + ns + sh - 1, 1e-300)) - betaln(a, b)) * tail,
                0.0,
            )
        return pl.DataFrame({"n": ns.astype(np.int64), "probability": first + second})

    def _conditional_pmf(
        self, ns: FloatArray, t: float, x: FloatArray, tx: FloatArray, T: FloatArray
    ) -> FloatArray:
        """P(X(T, T + t) = n | x, t_x, T) per row (rows x len(ns)).

        Given alive at ``T`` with rates ``lambda``, ``p``, the customer makes ``n`` purchases in
        the window either by surviving ``n`` purchases with no further one
        (``(1-p)^n Poisson(n; lambda t)``) or by dropping out at the ``n``-th
        (``p (1-p)^(n-1) P(N(t) >= n)``). Averaged over the posterior of ``lambda`` and ``p``
        given the history and alive, with ``b_x = b + x`` (MBG/NBD: ``b + x + 1``), ``m = r + x``
        and ``q = (alpha + T) / (alpha + T + t)``::

            P(n) = P(alive) [B(a, b_x + n) / B(a, b_x) NB(n; m, q)
                             + [n > 0] B(a + 1, b_x + n - 1) / B(a, b_x) I_{1-q}(n, m)]
                   + [n = 0] (1 - P(alive))

        where ``NB(n; m, q)`` is the negative binomial probability and ``I`` the regularised
        incomplete beta function (its upper tail). Everything but ``I`` is in log space.
        """
        r, alpha, a, b = self._p()
        pa = self._palive(x, tx, T)
        out = np.zeros((x.size, ns.size))
        if t == 0:
            out[:, ns == 0] = 1.0
            return out
        bx = b + x + self._shift
        m = r + x
        log_end = np.log(alpha + T + t)
        log_q = np.log(alpha + T) - log_end
        log_1q = np.log(t) - log_end
        one_minus_q = t / (alpha + T + t)
        base = betaln(a, bx)
        lead = gammaln(m)
        for j, n in enumerate(ns):
            log_nb = gammaln(m + n) - lead - gammaln(n + 1.0) + m * log_q + n * log_1q
            col = np.exp(betaln(a, bx + n) - base + log_nb)
            if n > 0:
                col += np.exp(betaln(a + 1.0, bx + n - 1.0) - base) * betainc(n, m, one_minus_q)
            col *= pa
            if n == 0:
                col += 1.0 - pa
            out[:, j] = col
        return out

    def conditional_probability_of_purchases(
        self, n: int | list[int] | FloatArray, t: float, frame: FrameLike
    ) -> pl.DataFrame | pl.LazyFrame:
        """``frame`` with ``probability_{n}_purchases`` for each count in ``n``: the probability
        that each customer makes exactly ``n`` repeat purchases in the next ``t`` time units (data's
        time unit), given their ``frequency``, ``recency`` and ``T``.

        Over ``n = 0, 1, 2, ...`` the columns sum to 1 and their mean is
        :meth:`expected_purchases`; ``n = 0`` includes the customers who have already left.
        For a new customer see :meth:`probability_of_purchases`.

        :param n: one count or several distinct counts (whole numbers >= 0).
        :param t: length of the window after ``T``, in the data's time unit.
        :param frame: ``frequency``, ``recency``, ``T`` per customer (eager or lazy).
        """
        return conditional_pmf_columns(self, n, t, frame, self._conditional_pmf)

    def score(self, frame: FrameLike, *, horizon: float = 1.0) -> pl.DataFrame | pl.LazyFrame:
        """``frame`` with ``probability_alive`` and ``expected_purchases`` over ``horizon``
        time units (the :class:`~loyaltykit.protocols.ScoringModel` interface)."""
        out = self.probability_alive(frame)
        return self.expected_purchases(horizon, out)


def _check_t(owner: str, t: float) -> None:
    if not (np.isfinite(t) and t >= 0):
        raise ModelInputError(
            f"{owner}: t={t!r} must be a finite duration >= 0 in the data's time unit"
        )
