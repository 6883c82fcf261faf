"""BG/BB: beta-geometric / beta-Bernoulli, discrete time (Fader, Hardie & Shang 2010).

In each of ``n`` transaction opportunities (periods) an alive customer buys with probability
``p ~ Beta(alpha, beta)``; at the start of each period they die with probability
``theta ~ Beta(gamma, delta)``. Data are usually aggregated: one row per pattern
(``frequency``, ``recency``, ``periods``) with ``weights`` counting the customers who have it.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import polars as pl
from scipy.special import betaln, digamma, gammaln

from loyaltykit.errors import ModelInputError
from loyaltykit.models._base import (
    Arrays,
    BTYDModel,
    FloatArray,
    FrameLike,
    check_rule,
    compress,
    purchase_counts,
    read_columns,
    with_columns,
)

__all__ = ["BetaGeoBetaBinom"]


def _read(frame: FrameLike, owner: str, *, fit: bool) -> Arrays:
    a = read_columns(frame, owner, ("frequency", "recency", "periods"), ("weights",) if fit else ())
    x, tx, n = a["frequency"], a["recency"], a["periods"]
    for col in ("frequency", "recency", "periods"):
        v = a[col]
        check_rule(owner, a, col, (v < 0) | (v != np.floor(v)), "must be a whole number >= 0")
    check_rule(owner, a, "periods", n < 1, "periods (transaction opportunities) must be >= 1")
    check_rule(
        owner,
        a,
        "recency",
        (tx > n) | (tx < x),
        "recency (the period of the last transaction) must be between frequency and periods",
    )
    if "weights" in a:
        check_rule(owner, a, "weights", a["weights"] < 0, "weights must be >= 0")
    return a


def _dbeta(u: FloatArray, v: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Partial derivatives of ``betaln(u, v)``."""
    duv = digamma(u + v)
    return digamma(u) - duv, digamma(v) - duv


class BetaGeoBetaBinom(BTYDModel):
    """BG/BB, parameters ``alpha``, ``beta`` (purchase) and ``gamma``, ``delta`` (dropout).

    Input of :meth:`fit`: ``frequency`` (transactions), ``recency`` (period of the last one, 0 if
    none), ``periods`` (opportunities), optional ``weights``.

    >>> from loyaltykit.datasets import load_donations
    >>> model = BetaGeoBetaBinom().fit(load_donations())
    >>> {k: round(v, 3) for k, v in model.params_.items()}
    {'alpha': 1.204, 'beta': 0.75, 'gamma': 0.657, 'delta': 2.783}
    """

    param_names: ClassVar[tuple[str, ...]] = ("alpha", "beta", "gamma", "delta")
    required_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "periods")
    compress_keys: ClassVar[tuple[str, ...]] = ("frequency", "recency", "periods")

    def _prepare(self, frame: FrameLike) -> Arrays:
        a = _read(frame, f"{self._owner}.fit", fit=True)
        return compress(a, self.compress_keys, a.get("weights"))

    def _prepare_rows(self, arrays: Arrays) -> Arrays:
        return _read(pl.DataFrame(arrays), self._owner, fit=False)

    def _loglik(
        self, params: FloatArray, data: Arrays, gradient: bool
    ) -> tuple[FloatArray, FloatArray | None]:
        al, be, ga, de = params
        x, tx, n = data["frequency"], data["recency"], data["periods"]
        base = betaln(al, be) + betaln(ga, de)
        terms = [betaln(al + x, be + n - x) + betaln(ga, de + n) - base]
        grads: list[FloatArray] = []
        if gradient:
            d_ab = _dbeta(np.array(al), np.array(be))
            d_gd = _dbeta(np.array(ga), np.array(de))
            ua, ub = _dbeta(al + x, be + n - x)
            uc, ud = _dbeta(ga + 0 * x, de + n)
            grads.append(np.stack([ua - d_ab[0], ub - d_ab[1], uc - d_gd[0], ud - d_gd[1]], 1))
        span = n - tx
        for i in range(int(span.max()) if span.size else 0):
            on = i < span
            bb = be + tx - x + i
            dd = de + tx + i
            t = betaln(al + x, bb) + betaln(ga + 1, dd) - base
            terms.append(np.where(on, t, -np.inf))
            if gradient:
                ua, ub = _dbeta(al + x, bb)
                uc, ud = _dbeta(ga + 1 + 0 * x, dd)
                grads.append(np.stack([ua - d_ab[0], ub - d_ab[1], uc - d_gd[0], ud - d_gd[1]], 1))
        stacked = np.stack(terms, axis=1)
        top = stacked.max(axis=1)
        ll = top + np.log(np.exp(stacked - top[:, None]).sum(axis=1))
        if not gradient:
            return ll, None
        weights = np.exp(stacked - ll[:, None])
        g = np.einsum("nk,knp->np", weights, np.stack(grads, axis=0))
        return ll, g

    def _initial(self, data: Arrays) -> FloatArray:
        return np.array([1.0, 1.0, 1.0, 1.0])

    # ---------------------------------------------------------------- predictions

    def _palive(
        self, x: FloatArray, tx: FloatArray, n: FloatArray, ahead: float = 0.0
    ) -> FloatArray:
        al, be, ga, de = self._p()
        ll, _ = self._loglik(self._p(), {"frequency": x, "recency": tx, "periods": n}, False)
        lp = (
            betaln(al + x, be + n - x)
            - betaln(al, be)
            + betaln(ga, de + n + ahead)
            - betaln(ga, de)
        )
        out: FloatArray = np.exp(lp - ll)
        return out

    def _discounted_purchases(
        self, x: FloatArray, tx: FloatArray, n: FloatArray, times: FloatArray, discounts: FloatArray
    ) -> FloatArray:
        """Discounted expected transactions over future periods ``(t_{k-1}, t_k]`` (whole
        periods: period ``n + j`` counts in step ``k`` when ``t_{k-1} < j <= t_k``)."""
        al, be, ga, de = self._p()
        ll, _ = self._loglik(self._p(), {"frequency": x, "recency": tx, "periods": n}, False)
        front = betaln(al + x + 1, be + n - x) - betaln(al, be) - betaln(ga, de) - ll
        total = np.zeros(x.size)
        prev = 0
        for k, tk in enumerate(np.asarray(times, dtype=np.float64)):
            upto = int(np.floor(tk + 1e-9))
            for j in range(prev + 1, upto + 1):
                total += discounts[k] * np.exp(front + betaln(ga, de + n + j))
            prev = max(prev, upto)
        return total

    def probability_alive(self, frame: FrameLike, *, ahead: int = 0) -> pl.DataFrame | pl.LazyFrame:
        """``frame`` with ``probability_alive``: P(alive in period ``periods + ahead``)."""
        self._p()
        if ahead < 0 or ahead != int(ahead):
            raise ModelInputError(f"{self._owner}: ahead={ahead!r} must be a whole number >= 0")

        def compute(d: Arrays) -> dict[str, FloatArray]:
            d = self._prepare_rows(d)
            return {
                "probability_alive": self._palive(d["frequency"], d["recency"], d["periods"], ahead)
            }

        return with_columns(
            frame, self._owner, self.required_columns, compute, ["probability_alive"]
        )

    def expected_purchases(
        self, t: int, frame: FrameLike, *, name: str = "expected_purchases"
    ) -> pl.DataFrame | pl.LazyFrame:
        """``frame`` with the expected number of transactions in the next ``t`` periods."""
        self._p()
        if t < 0 or t != int(t):
            raise ModelInputError(f"{self._owner}: t={t!r} must be a whole number of periods >= 0")

        def compute(d: Arrays) -> dict[str, FloatArray]:
            d = self._prepare_rows(d)
            v = self._discounted_purchases(
                d["frequency"], d["recency"], d["periods"], np.array([float(t)]), np.array([1.0])
            )
            return {name: v}

        return with_columns(frame, self._owner, self.required_columns, compute, [name])

    def expected_purchases_new(self, t: int | list[int] | FloatArray) -> pl.DataFrame:
        """Expected transactions of a new customer in the first ``t`` opportunities.

        :returns: columns ``t`` and ``expected_purchases``.
        """
        al, be, ga, de = self._p()
        ts = np.atleast_1d(np.asarray(t, dtype=np.int64))
        top = int(ts.max()) if ts.size else 0
        per = np.array([np.exp(betaln(ga, de + k) - betaln(ga, de)) for k in range(1, top + 1)])
        cum = np.concatenate([[0.0], np.cumsum(per)])
        return pl.DataFrame({"t": ts, "expected_purchases": al / (al + be) * cum[ts]})

    def probability_of_purchases(self, n: int | list[int] | FloatArray, t: int) -> pl.DataFrame:
        """P(a new customer makes exactly ``n`` transactions in ``t`` opportunities).

        :returns: columns ``n`` and ``probability``.
        """
        al, be, ga, de = self._p()
        xs = np.atleast_1d(np.asarray(n, dtype=np.float64))

        def lchoose(a: float | FloatArray, b: FloatArray) -> FloatArray:
            return np.asarray(
                gammaln(np.asarray(a) + 1) - gammaln(b + 1) - gammaln(np.asarray(a) - b + 1)
            )

        with np.errstate(invalid="ignore"):
            out = np.where(
                xs <= t,
                np.exp(
                    lchoose(t, np.minimum(xs, t))
                    + betaln(al + xs, be + t - np.minimum(xs, t))
                    - betaln(al, be)
                    + betaln(ga, de + t)
                    - betaln(ga, de)
                ),
                0.0,
            )
            for i in range(t):
                ok = xs <= i
                xi = np.minimum(xs, i)
                out = out + np.where(
                    ok,
                    np.exp(
                        lchoose(i, xi)
                        + betaln(al + xi, be + i - xi)
                        - betaln(al, be)
                        + betaln(ga + 1, de + i)
                        - betaln(ga, de)
                    ),
                    0.0,
                )
        return pl.DataFrame({"n": xs.astype(np.int64), "probability": out})

    def _conditional_pmf(
        self, ns: FloatArray, t: int, x: FloatArray, tx: FloatArray, n: FloatArray
    ) -> FloatArray:
        """P(X(n, n + t) = k | x, t_x, n) per row (rows x len(ns)).

        Given alive after ``n`` opportunities, ``p ~ Beta(alpha + x, beta + n - x)`` and
        ``theta ~ Beta(gamma, delta + n)``; the customer stays alive for ``l`` of the next ``t``
        opportunities (``theta (1 - theta)^l`` for ``l < t``, ``(1 - theta)^t`` for ``l = t``) and
        buys at each with probability ``p``::

            P(k) = P(alive) sum_l w_l C(l, k) B(alpha + x + k, beta + n - x + l - k)
                                           / B(alpha + x, beta + n - x)
                   + [k = 0] (1 - P(alive))

        with ``w_l = B(gamma + 1, delta + n + l) / B(gamma, delta + n)`` for ``l < t`` and
        ``B(gamma, delta + n + t) / B(gamma, delta + n)`` for ``l = t``; all in log space.
        """
        al, be, ga, de = self._p()
        pa = self._palive(x, tx, n)
        out = np.zeros((x.size, ns.size))
        base_p = betaln(al + x, be + n - x)
        base_t = betaln(ga, de + n)
        for lv in range(t + 1):
            if lv < t:
                log_w = betaln(ga + 1.0, de + n + lv) - base_t
            else:
                log_w = betaln(ga, de + n + t) - base_t
            for j, k in enumerate(ns):
                if k > lv:
                    continue
                log_c = gammaln(lv + 1.0) - gammaln(k + 1.0) - gammaln(lv - k + 1.0)
                out[:, j] += np.exp(
                    log_w + log_c + betaln(al + x + k, be + n - x + lv - k) - base_p
                )
        out *= pa[:, None]
        out[:, ns == 0] += (1.0 - pa)[:, None]
        return out

    def conditional_probability_of_purchases(
        self, n: int | list[int] | FloatArray, t: int, frame: FrameLike
    ) -> pl.DataFrame | pl.LazyFrame:
        """``frame`` with ``probability_{n}_purchases`` for each count in ``n``: the probability
        that each customer makes exactly ``n`` transactions in the next ``t`` opportunities,
        given their ``frequency``, ``recency`` and ``periods``.

        Over ``n = 0, ..., t`` the columns sum to 1 and their mean is :meth:`expected_purchases`;
        for a new customer see :meth:`probability_of_purchases`.
        """
        owner = f"{self._owner}.conditional_probability_of_purchases"
        self._p()
        counts = purchase_counts(owner, n)
        if t < 0 or t != int(t):
            raise ModelInputError(f"{owner}: t={t!r} must be a whole number of periods >= 0")
        names = [f"probability_{int(v)}_purchases" for v in counts]

        def compute(d: Arrays) -> dict[str, FloatArray]:
            d = self._prepare_rows(d)
            values = self._conditional_pmf(
                counts, int(t), d["frequency"], d["recency"], d["periods"]
            )
            return {name: values[:, j] for j, name in enumerate(names)}

        return with_columns(frame, self._owner, self.required_columns, compute, names)

    def score(self, frame: FrameLike, *, horizon: int = 1) -> pl.DataFrame | pl.LazyFrame:
        """``frame`` with ``probability_alive`` and ``expected_purchases`` over ``horizon``
        periods (the :class:`~loyaltykit.protocols.ScoringModel` interface)."""
        return self.expected_purchases(horizon, self.probability_alive(frame))
