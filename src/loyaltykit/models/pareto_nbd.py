"""Pareto/NBD (Schmittlein, Morrison & Colombo 1987), after Fader & Hardie's derivation notes.

While alive, a customer buys as a Poisson process of rate ``lambda ~ Gamma(r, alpha)``; their
lifetime is exponential with rate ``mu ~ Gamma(s, beta)``.

Numerics. The likelihood is

``L = Gamma(r+x)/Gamma(r) alpha^r beta^s [J(T) + s * I]``, with ``J(y) = (alpha+y)^-(r+x) (beta+y)^-s``
and ``I`` the integral of ``(alpha+y)^-(r+x) (beta+y)^-(s+1)`` over ``[t_x, T]``.

``I`` is written as ``(K(t_x) - K(T)) / (r+s+x)`` with ``K(y) = J(y) G(y)``, where ``G`` is, after
Euler's transformation of the Gaussian hypergeometric function of the papers, the series
``2F1(1, e; r+s+x+1; z)`` with ``0 <= z < 1`` and positive terms whose ratio never exceeds ``z``
(``e = r+x``, ``z = (alpha-beta)/(alpha+y)`` when ``alpha >= beta``; ``e = s+1``,
``z = (beta-alpha)/(beta+y)`` and an extra factor ``(alpha+y)/(beta+y)`` otherwise). Everything is
combined in log space, and the gradient is analytic (the series is differentiated term by term).
Heavy buyers make the series converge faster, not slower.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy.special import digamma, gammaln

from loyaltykit.errors import ConvergenceError, ModelInputError
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
from loyaltykit.models._special import hyp2f1_one, log1mexp

__all__ = ["ParetoNBD"]


def _log_k_series(
    r: float, alpha: float, s: float, beta: float, x: FloatArray, y: FloatArray, grad: bool
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """log J(y), log K(y), their gradients (rows x 4), and the series' convergence flags."""
    n = x.size
    log_ay = np.log(alpha + y)
    log_by = np.log(beta + y)
    log_j = -(r + x) * log_ay - s * log_by
    c = r + s + x + 1.0
    if alpha >= beta:
        e = r + x
        z = (alpha - beta) / (alpha + y)
    else:
        e = np.full(n, s + 1.0)
        z = (beta - alpha) / (beta + y)
    h, dh_e, dh_c, dh_z, ok = hyp2f1_one(e, c, z, derivatives=grad, max_terms=_SERIES_TERMS)
    log_g = np.log(h)
    if alpha < beta:
        log_g = log_g + log_ay - log_by
    log_k = log_j + log_g
    gj = np.zeros((n, 4))
    gk = np.zeros((n, 4))
    if grad:
        gj[:, 0] = -log_ay
        gj[:, 1] = -(r + x) / (alpha + y)
        gj[:, 2] = -log_by
        gj[:, 3] = -s / (beta + y)
        gk[:] = gj
        if alpha >= beta:
            gk[:, 0] += dh_e + dh_c
            gk[:, 2] += dh_c
            gk[:, 1] += dh_z * (beta + y) / (alpha + y) ** 2
            gk[:, 3] += -dh_z / (alpha + y)
        else:
            gk[:, 0] += dh_c
            gk[:, 2] += dh_e + dh_c
            gk[:, 1] += 1.0 / (alpha + y) - dh_z / (beta + y)
            gk[:, 3] += -1.0 / (beta + y) + dh_z * (alpha + y) / (beta + y) ** 2
    return log_j, log_k, gj, gk, ok


_SERIES_TERMS = 2000
_COARSE_GRID = 48  # grid steps over the longest T in the warm-start fit


def _with_pairs(data: Arrays) -> Arrays:
    """``data`` with the distinct (frequency, T) and (frequency, recency) pairs and the distinct
    frequencies with their weights: the hypergeometric terms depend on a pair only, the
    ``gammaln``/``digamma`` terms on the frequency only, so each is computed once."""
    for key, y in (("T", data["T"]), ("tx", data["recency"])):
        (px, py), inverse = distinct(data["frequency"], y)
        data[f"_{key}_x"], data[f"_{key}_y"] = px, py
        data[f"_{key}_inv"] = inverse  # type: ignore[assignment]
    (xu,), inverse = distinct(data["frequency"])
    data["_x_u"] = xu
    data["_x_w"] = np.bincount(inverse, weights=data["weights"], minlength=xu.size).astype(
        np.float64
    )
    return data


_PANEL = 0.25  # width of a Gauss-Legendre panel in log(min(alpha, beta) + u)
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(16)


def _log_k(
    r: float, alpha: float, s: float, beta: float, x: FloatArray, y: FloatArray, grad: bool
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """:func:`_log_k_series`, with the rows where the series is slow computed another way.

    ``K(y) = (r+s+x) * F(y)`` where ``F(y)`` is the integral of
    ``f(u) = (alpha+u)^-(r+x) (beta+u)^-(s+1)`` from ``y`` to infinity. The series converges
    slowly only when ``z = |alpha-beta| / (max(alpha, beta) + y)`` is close to 1, i.e. for ``y``
    below ``Y = max - 2 min`` (where ``z = 1/2``). There ``F(y)`` is the integral from ``y`` to
    ``Y``, by composite Gauss-Legendre quadrature in ``log(min + u)`` (a smooth integrand), plus
    ``F(Y)`` from the series. ``Y`` moving with the parameters does not change ``F(y)``, so the
    gradient is the integral of the gradient of ``f`` plus the series' gradient at ``Y``.
    """
    log_j, log_k, gj, gk, ok = _log_k_series(r, alpha, s, beta, x, y, grad)
    p1, p2 = max(alpha, beta), min(alpha, beta)
    big_y = p1 - 2.0 * p2
    slow = np.nonzero((ok == 0) & (y < big_y))[0]
    if slow.size == 0:
        return log_j, log_k, gj, gk, ok
    xs, ys = x[slow], y[slow]
    a = r + s + xs
    # F(Y) from the series (z = 1/2 there)
    _, log_k_y, _, gk_y, ok_y = _log_k_series(r, alpha, s, beta, xs, np.full(xs.size, big_y), grad)
    log_f_y = log_k_y - np.log(a)
    # the integral from y to Y, panel by panel in w = log(p2 + u)
    w_lo = np.log(p2 + ys)
    w_hi = np.log(p2 + big_y)
    panels = np.maximum(np.ceil((w_hi - w_lo) / _PANEL).astype(np.int64), 1)
    log_q = np.empty(xs.size)
    gq = np.zeros((xs.size, 4))
    for i in range(xs.size):
        edges = np.linspace(w_lo[i], w_hi, panels[i] + 1)
        half = (edges[1:] - edges[:-1])[:, None] / 2.0
        mid = (edges[1:] + edges[:-1])[:, None] / 2.0
        w = (mid + half * _GL_NODES[None, :]).ravel()
        weight = (half * _GL_WEIGHTS[None, :]).ravel()
        u = np.exp(w) - p2
        la = np.log(alpha + u)
        lb = np.log(beta + u)
        m = r + xs[i]
        terms = np.log(weight) - m * la - (s + 1.0) * lb + w  # dw: du = (p2 + u) dw
        top = terms.max()
        share = np.exp(terms - top)
        total = share.sum()
        log_q[i] = top + np.log(total)
        if grad:
            share /= total
            gq[i] = [
                -(share @ la),
                -(share @ (m / (alpha + u))),
                -(share @ lb),
                -(share @ ((s + 1.0) / (beta + u))),
            ]
    log_f = np.logaddexp(log_q, log_f_y)
    log_k = log_k.copy()
    log_k[slow] = np.log(a) + log_f
    ok = ok.copy()
    ok[slow] = ok_y
    if grad:
        dlog_a = np.zeros((xs.size, 4))
        dlog_a[:, 0] = 1.0 / a
        dlog_a[:, 2] = 1.0 / a
        share_q = np.exp(log_q - log_f)[:, None]
        g_f = share_q * gq + (1.0 - share_q) * (gk_y - dlog_a)
        gk = gk.copy()
        gk[slow] = g_f + dlog_a
    return log_j, log_k, gj, gk, ok


def _log_k_pairs(
    r: float,
    alpha: float,
    s: float,
    beta: float,
    data: Arrays,
    key: str,
    x: FloatArray,
    y: FloatArray,
    grad: bool,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """:func:`_log_k` on the distinct ``(x, y)`` pairs recorded by ``_prepare``, if any."""
    if f"_{key}_inv" not in data:
        return _log_k(r, alpha, s, beta, x, y, grad)
    inv = data[f"_{key}_inv"].astype(np.intp)
    out = _log_k(r, alpha, s, beta, data[f"_{key}_x"], data[f"_{key}_y"], grad)
    return out[0][inv], out[1][inv], out[2][inv], out[3][inv], out[4][inv]


_PMF_PANELS = 64
_PMF_CHUNK = 2048  # rows per block of the quadrature (blocks of rows x 1,024 nodes)


def _pmf_rows(
    ns: FloatArray, t: float, r: FloatArray, alpha: FloatArray, s: float, beta: FloatArray
) -> FloatArray:
    """P(X(t) = n) for a new Pareto/NBD customer, one row per ``(r, alpha, beta)`` (rows x ns).

    ``P(X(t) = n) = NB(n; t) (beta / (beta + t))^s + integral over y in (0, t) of
    NB(n; y) s beta^s (beta + y)^-(s+1) dy``, where ``NB(n; y)`` is the negative binomial
    probability of ``n`` purchases by a customer alive until ``y``: the first term is for
    customers still alive at ``t``, the integral for those who left at ``y``. The integral is
    computed in log space by composite Gauss-Legendre quadrature (64 panels of 16 nodes) in
    ``w = log(min(alpha, beta) + y)``, which follows the integrand's scales for short and long
    windows alike.
    """
    g, k = r.size, ns.size
    out = np.zeros((g, k))
    if t == 0:
        out[:, ns == 0] = 1.0
        return out
    grid = np.linspace(0.0, 1.0, _PMF_PANELS + 1)
    log_ns1 = gammaln(ns + 1.0)
    for lo in range(0, g, _PMF_CHUNK):
        rr, aa, bb = (
            r[lo : lo + _PMF_CHUNK],
            alpha[lo : lo + _PMF_CHUNK],
            beta[lo : lo + _PMF_CHUNK],
        )
        lead = gammaln(rr[:, None] + ns[None, :]) - gammaln(rr)[:, None] - log_ns1[None, :]
        log_a, log_b = np.log(aa), np.log(bb)
        la_t = np.log(aa + t)
        alive = (
            lead
            + (rr * (log_a - la_t))[:, None]
            + ns[None, :] * (np.log(t) - la_t)[:, None]
            + (s * (log_b - np.log(bb + t)))[:, None]
        )
        c = np.minimum(aa, bb)
        w_lo = np.log(c)
        edges = w_lo[:, None] + np.log1p(t / c)[:, None] * grid[None, :]
        half = (edges[:, 1:] - edges[:, :-1]) / 2.0
        mid = (edges[:, 1:] + edges[:, :-1]) / 2.0
        w = (mid[:, :, None] + half[:, :, None] * _GL_NODES[None, None, :]).reshape(rr.size, -1)
        wq = (half[:, :, None] * _GL_WEIGHTS[None, None, :]).reshape(rr.size, -1)
        y = c[:, None] * np.expm1(w - w_lo[:, None])  # exact for small y
        la_y = np.log(aa[:, None] + y)
        base = (
            np.log(wq)
            + w  # dy = (c + y) dw
            + np.log(s)
            + (s * log_b)[:, None]
            - (s + 1.0) * np.log(bb[:, None] + y)
            + rr[:, None] * (log_a[:, None] - la_y)
        )
        ly = np.log(y) - la_y
        for j, n in enumerate(ns):
            terms = base + n * ly if n else base
            top = terms.max(axis=1)
            top = np.where(np.isfinite(top), top, 0.0)  # a window too short to leave in: -inf
            left = top + np.log(np.exp(terms - top[:, None]).sum(axis=1)) + lead[:, j]
            out[lo : lo + _PMF_CHUNK, j] = np.exp(np.logaddexp(alive[:, j], left))
    return out


class ParetoNBD(BTYDModel):
    """Pareto/NBD, parameters ``r``, ``alpha``, ``s``, ``beta``.

    Input of :meth:`fit`: ``frequency``, ``recency``, ``T`` (one time unit), optional ``weights``.

    >>> from loyaltykit.datasets import load_cdnow_summary
    >>> model = ParetoNBD().fit(load_cdnow_summary())
    >>> {k: round(v, 3) for k, v in model.params_.items()}
    {'r': 0.553, 'alpha': 10.578, 's': 0.606, 'beta': 11.669}
    """

    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "s", "beta")
    required_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")
    compress_keys: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")

    def _prepare(self, frame: FrameLike) -> Arrays:
        a = read_rft(frame, f"{self._owner}.fit")
        return _with_pairs(compress(a, self.compress_keys, a.get("weights"), ordered=True))

    def _coarse(self, data: Arrays) -> Arrays | None:
        """``recency`` and ``T`` rounded to a grid of 1/48 of the longest ``T`` and compressed
        again: a few hundred hypergeometric pairs instead of thousands. Its optimum is a warm
        start (see :meth:`BTYDModel.fit`); ``None`` when the data have few pairs already."""
        if data["_tx_x"].size + data["_T_x"].size < 2000:
            return None
        coarse = grid_compress(data, _COARSE_GRID)
        if coarse is None or coarse["T"].size > data["T"].size // 3:
            return None
        return _with_pairs(coarse)

    def _total(self, params: FloatArray, data: Arrays) -> tuple[float, FloatArray]:
        """Weighted total log-likelihood and gradient, summed pair by pair.

        The hypergeometric terms are computed once per distinct ``(frequency, T)`` and
        ``(frequency, recency)`` pair, the ``gammaln``/``digamma`` terms once per distinct
        frequency; per row only the combination of the two pair terms remains, and the
        gradient is gathered back to the pairs by weighted counts (no rows x 4 arrays).
        """
        if "_x_u" not in data:
            return super()._total(params, data)
        r, alpha, s, beta = params
        xu, wx = data["_x_u"], data["_x_w"]
        n = float(wx.sum())
        log_alpha, log_beta = np.log(alpha), np.log(beta)
        total = float(wx @ gammaln(r + xu)) - n * float(gammaln(r))
        total += n * (r * log_alpha + s * log_beta)
        g = np.array(
            [
                float(wx @ digamma(r + xu)) - n * float(digamma(r)) + n * log_alpha,
                n * r / alpha,
                n * log_beta,
                n * s / beta,
            ]
        )
        log_jt, log_kt, gjt, gkt, ok_t = _log_k(r, alpha, s, beta, data["_T_x"], data["_T_y"], True)
        _, log_kx, _, gkx, ok_x = _log_k(r, alpha, s, beta, data["_tx_x"], data["_tx_y"], True)
        if not (np.all(ok_t > 0) and np.all(ok_x > 0)):
            return math.nan, np.full(4, math.nan)
        inv_t: npt.NDArray[np.intp] = data["_T_inv"]  # type: ignore[assignment]
        inv_x: npt.NDArray[np.intp] = data["_tx_inv"]  # type: ignore[assignment]
        w = data["weights"]
        inv_a = 1.0 / (r + s + data["frequency"])
        ljt = log_jt[inv_t]
        lkt = log_kt[inv_t]
        lkx = log_kx[inv_x]
        log_sa = np.log(inv_a)
        log_sa += np.log(s)
        diff = np.minimum(lkt - lkx, 0.0)
        with np.errstate(divide="ignore"):
            second = log1mexp(diff)
        second += lkx
        second += log_sa
        lc = np.logaddexp(ljt, second)
        total += float(w @ lc)
        share = np.exp(ljt - lc)
        share *= w
        log_sa -= lc
        u1 = np.exp(log_sa + lkx)
        u1 *= w
        u2 = np.exp(log_sa + lkt)
        u2 *= w
        du = u1 - u2
        s_du_a = float(du @ inv_a)
        g[0] -= s_du_a
        g[2] += float(du.sum()) / s - s_du_a
        n_t, n_x = log_jt.size, log_kx.size
        g += np.bincount(inv_t, weights=share, minlength=n_t) @ gjt
        g -= np.bincount(inv_t, weights=u2, minlength=n_t) @ gkt
        g += np.bincount(inv_x, weights=u1, minlength=n_x) @ gkx
        return total, g

    def _prepare_rows(self, arrays: Arrays) -> Arrays:
        return read_rft(arrays, self._owner, with_weights=False)

    def _core(
        self, params: FloatArray, data: Arrays, gradient: bool
    ) -> tuple[FloatArray, FloatArray, FloatArray | None, FloatArray]:
        """log of ``J(T) + s I``, the share ``J(T) / (J(T) + s I)`` (= P(alive)), gradient, ok."""
        r, alpha, s, beta = params
        x, tx, T = data["frequency"], data["recency"], data["T"]
        a = r + s + x
        log_jt, log_kt, gjt, gkt, ok_t = _log_k_pairs(r, alpha, s, beta, data, "T", x, T, gradient)
        _, log_kx, _, gkx, ok_x = _log_k_pairs(r, alpha, s, beta, data, "tx", x, tx, gradient)
        log_sa = np.log(s) - np.log(a)
        diff = np.minimum(log_kt - log_kx, 0.0)
        with np.errstate(divide="ignore"):
            second = log_sa + log_kx + log1mexp(diff)
        lc = np.logaddexp(log_jt, second)
        ok = ok_t * ok_x
        lc = np.where(ok > 0, lc, np.nan)
        share = np.exp(log_jt - lc)
        if not gradient:
            return lc, share, None, ok
        u1 = np.exp(log_sa + log_kx - lc)
        u2 = np.exp(log_sa + log_kt - lc)
        gsa = np.zeros((x.size, 4))
        gsa[:, 0] = -1.0 / a
        gsa[:, 2] = 1.0 / s - 1.0 / a
        g = share[:, None] * gjt + u1[:, None] * (gkx + gsa) - u2[:, None] * (gkt + gsa)
        return lc, share, g, ok

    def _loglik(
        self, params: FloatArray, data: Arrays, gradient: bool
    ) -> tuple[FloatArray, FloatArray | None]:
        r, alpha, s, beta = params
        x = data["frequency"]
        lc, _, gc, _ = self._core(params, data, gradient)
        ll = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta) + lc
        if not gradient:
            return ll, None
        assert gc is not None
        g = gc
        g[:, 0] += digamma(r + x) - digamma(r) + np.log(alpha)
        g[:, 1] += r / alpha
        g[:, 2] += np.log(beta)
        g[:, 3] += s / beta
        return ll, g

    def _initial(self, data: Arrays) -> FloatArray:
        # r / alpha ~ the mean purchase rate; alpha = beta, where the hypergeometric argument is 0
        w = data["weights"]
        rate = max(float(w @ data["frequency"]) / max(float(w @ data["T"]), 1e-12), 1e-6)
        return np.array([0.5, 0.5 / rate, 0.5, 0.5 / rate])

    # ---------------------------------------------------------------- predictions

    def _palive(self, x: FloatArray, tx: FloatArray, T: FloatArray) -> FloatArray:
        _, share, _, ok = self._core(self._p(), {"frequency": x, "recency": tx, "T": T}, False)
        if not np.all(ok > 0):
            raise ConvergenceError(
                f"{self._owner}: the hypergeometric series did not converge for "
                f"{int((ok == 0).sum())} row(s) at parameters {self.params_}: alpha and beta "
                "differ by orders of magnitude; refit with penalizer_coef=0.001"
            )
        return share

    def _discounted_purchases(
        self, x: FloatArray, tx: FloatArray, T: FloatArray, times: FloatArray, discounts: FloatArray
    ) -> FloatArray:
        r, alpha, s, beta = self._p()
        pa = self._palive(x, tx, T)
        (tu,), inverse = distinct(T)
        sm1 = s - 1.0
        total = np.zeros(tu.size)
        log_prev = np.zeros(tu.size)
        for k, tk in enumerate(np.asarray(times, dtype=np.float64)):
            log_now = np.log1p(tk / (beta + tu))
            delta = log_now - log_prev
            if abs(sm1) < 1e-10:
                inc = delta
            else:
                inc = np.exp(-sm1 * log_prev) * -np.expm1(-sm1 * delta) / sm1
            total += discounts[k] * (beta + tu) * inc
            log_prev = log_now
        out: FloatArray = pa * (r + x) / (alpha + T) * total[inverse]
        return out

    def probability_alive(
        self, frame: FrameLike, *, ahead: float = 0.0
    ) -> pl.DataFrame | pl.LazyFrame:
        """``frame`` with ``probability_alive`` at the end of observation or ``ahead`` time units
        later (data's time unit), given each customer's ``frequency``, ``recency`` and ``T``."""
        self._p()
        if not (np.isfinite(ahead) and ahead >= 0):
            raise ModelInputError(f"{self._owner}.probability_alive: ahead={ahead!r} must be >= 0")
        _, _, s, beta = self._p()

        def compute(d: Arrays) -> dict[str, FloatArray]:
            d = self._prepare_rows(d)
            pa = self._palive(d["frequency"], d["recency"], d["T"])
            if ahead:
                pa = pa * np.exp(-s * np.log1p(ahead / (beta + d["T"])))
            return {"probability_alive": pa}

        return with_columns(
            frame, self._owner, self.required_columns, compute, ["probability_alive"]
        )

    def expected_purchases(
        self, t: float, frame: FrameLike, *, name: str = "expected_purchases"
    ) -> pl.DataFrame | pl.LazyFrame:
        """``frame`` with the expected number of purchases in the next ``t`` time units (data's
        time unit), conditional on each customer's history."""
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
        """Unconditional curve: expected purchases of a new customer within ``t`` time units.

        :returns: columns ``t`` and ``expected_purchases``.
        """
        r, alpha, s, beta = self._p()
        ts = np.atleast_1d(np.asarray(t, dtype=np.float64))
        _check_t(self._owner, float(ts.min()) if ts.size else 0.0)
        sm1 = s - 1.0
        lg = np.log1p(ts / beta)
        inc = lg if abs(sm1) < 1e-10 else -np.expm1(-sm1 * lg) / sm1
        return pl.DataFrame({"t": ts, "expected_purchases": r * beta / alpha * inc})

    def probability_of_purchases(self, n: int | list[int] | FloatArray, t: float) -> pl.DataFrame:
        """P(a new customer makes exactly ``n`` purchases within ``t`` time units).

        ``P(X(t) = n) = NB(n; t) (beta / (beta + t))^s + integral over y in (0, t) of
        NB(n; y) s beta^s (beta + y)^-(s+1)``, where ``NB(n; y)`` is the negative binomial
        probability of ``n`` purchases by a customer alive until ``y``: the first term is for
        customers still alive at ``t``, the integral for those who left at ``y``. The integral is
        computed in log space by composite Gauss-Legendre quadrature (64 panels of 16 nodes in
        ``log(min(alpha, beta) + y)``). Given a customer's history, see
        :meth:`conditional_probability_of_purchases`.

        :returns: columns ``n`` and ``probability``.
        """
        r, alpha, s, beta = self._p()
        _check_t(self._owner, t)
        ns = np.atleast_1d(np.asarray(n, dtype=np.float64))
        if np.any(ns < 0) or np.any(ns != np.floor(ns)):
            raise ModelInputError(f"{self._owner}: n must be whole numbers >= 0")
        one = np.ones(1)
        with np.errstate(divide="ignore", under="ignore"):  # log(0) = -inf is meant
            probs = _pmf_rows(ns, float(t), r * one, alpha * one, s, beta * one)[0]
        return pl.DataFrame({"n": ns.astype(np.int64), "probability": probs})

    def _conditional_pmf(
        self, ns: FloatArray, t: float, x: FloatArray, tx: FloatArray, T: FloatArray
    ) -> FloatArray:
        """P(X(T, T + t) = n | x, t_x, T) per row (rows x len(ns)).

        Given alive at ``T``, the posterior of the purchase rate is ``Gamma(r + x, alpha + T)``
        and that of the dropout rate ``Gamma(s, beta + T)``, independent (the "alive" part of the
        likelihood factorises); the lifetime left is exponential again. So the window is a new
        customer's with those parameters: ``P(n) = P(alive) P_new(n; t | r + x, alpha + T, s,
        beta + T) + [n = 0] (1 - P(alive))`` (Fader & Hardie's closed form with hypergeometric
        terms is the same quantity). ``P_new`` is computed once per distinct ``(x, T)``.
        """
        r, alpha, s, beta = self._p()
        pa = self._palive(x, tx, T)
        (xu, tu), inverse = distinct(x, T)
        with np.errstate(divide="ignore", under="ignore"):  # log(0) = -inf is meant
            pmf = _pmf_rows(ns, t, r + xu, alpha + tu, s, beta + tu)
        out: FloatArray = pa[:, None] * pmf[inverse]
        out[:, ns == 0] += (1.0 - pa)[:, None]
        return out

    def conditional_probability_of_purchases(
        self, n: int | list[int] | FloatArray, t: float, frame: FrameLike
    ) -> pl.DataFrame | pl.LazyFrame:
        """``frame`` with ``probability_{n}_purchases`` for each count in ``n``: the probability
        that each customer makes exactly ``n`` purchases in the next ``t`` time units (data's
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
        return self.expected_purchases(horizon, self.probability_alive(frame))


def _check_t(owner: str, t: float) -> None:
    if not (np.isfinite(t) and t >= 0):
        raise ModelInputError(
            f"{owner}: t={t!r} must be a finite duration >= 0 in the data's time unit"
        )
