"""Stable special functions of the BTYD models, vectorised over customers.

Everything here works in log space or on bounded quantities, so heavy buyers (frequency in the
thousands), long histories and parameters near their bounds give finite, accurate results:

* :func:`beta_quadrature` - Gauss quadrature for expectations under a Beta(a, b) distribution,
  built by the Golub-Welsch method from the *normalised* Jacobi recurrence (no overflowing
  normalising constants, unlike ``scipy.special.roots_jacobi`` for large ``b``). The conditional
  expectations of BG/NBD and MBG/NBD are expectations of a bounded smooth function of the dropout
  probability ``p`` under its posterior Beta distribution, which replaces their Gaussian
  hypergeometric function (the peers' source of NaN and overflow).
* :func:`hyp2f1_one` - the series of ``2F1(1, e; c; z)`` for ``0 <= z < 1`` and ``e <= c``, with
  its derivatives in ``e``, ``c`` and ``z``. After Euler's transformation every hypergeometric
  term of the Pareto/NBD likelihood has this form; its terms are positive and shrink at least
  geometrically (ratio ``<= z``), so the sum is accurate to rounding.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

__all__ = [
    "beta_discounted_increments",
    "beta_quadrature",
    "beta_survival",
    "hyp2f1_one",
    "log1mexp",
    "nodes_for",
]


def log1mexp(x: FloatArray) -> FloatArray:
    """``log(1 - exp(x))`` for ``x <= 0``, accurate near 0 and for very negative ``x``."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    small = x > -0.6931471805599453
    with np.errstate(divide="ignore"):
        out[small] = np.log(-np.expm1(x[small]))
        out[~small] = np.log1p(-np.exp(x[~small]))
    return out


@lru_cache(maxsize=4096)
def _beta_nodes_cached(a: float, b: float, n: int) -> tuple[FloatArray, FloatArray]:
    from scipy.linalg import eigh_tridiagonal  # imported here: scipy.linalg is slow to import

    # Jacobi polynomials on [-1, 1] with weight (1-u)^al (1+u)^be, p = (1+u)/2 ~ Beta(be+1, al+1).
    al, be = b - 1.0, a - 1.0
    k = np.arange(n, dtype=np.float64)
    s = 2.0 * k + al + be
    with np.errstate(divide="ignore", invalid="ignore"):
        diag = (be * be - al * al) / (s * (s + 2.0))
    diag[0] = (be - al) / (al + be + 2.0)
    k1 = k[1:]
    s1 = 2.0 * k1 + al + be
    off2 = 4.0 * k1 * (k1 + al) * (k1 + be) * (k1 + al + be) / (s1 * s1 * (s1 + 1.0) * (s1 - 1.0))
    off = np.sqrt(np.maximum(off2, 0.0))
    # on [0, 1]: p = (1 + u) / 2
    values, vectors = eigh_tridiagonal((1.0 + diag) / 2.0, off / 2.0)
    weights = vectors[0, :] ** 2
    weights = weights / weights.sum()
    nodes = np.clip(values, np.finfo(np.float64).tiny, 1.0)
    nodes.setflags(write=False)
    weights.setflags(write=False)
    return nodes, weights


def beta_quadrature(a: float, b: FloatArray, n: int = 40) -> tuple[FloatArray, FloatArray]:
    """Nodes and weights of ``n``-point Gauss quadrature for the Beta(``a``, ``b``) distribution.

    ``sum(w * f(p))`` approximates ``E[f(p)]`` for ``p ~ Beta(a, b)``, exactly for polynomials of
    degree ``< 2n``. ``b`` may be an array: the result then has one row per element.

    :returns: ``(nodes, weights)``, each of shape ``b.shape + (n,)``; weights sum to 1.
    """
    b_arr = np.atleast_1d(np.asarray(b, dtype=np.float64))
    uniq, inverse = np.unique(b_arr, return_inverse=True)
    nodes = np.empty((uniq.size, n))
    weights = np.empty((uniq.size, n))
    for i, bi in enumerate(uniq):
        nodes[i], weights[i] = _beta_nodes_cached(float(a), float(bi), n)
    return nodes[inverse].reshape(*b_arr.shape, n), weights[inverse].reshape(*b_arr.shape, n)


def hyp2f1_one(
    e: FloatArray,
    c: FloatArray,
    z: FloatArray,
    *,
    derivatives: bool = False,
    max_terms: int = 20000,
    rtol: float = 1e-15,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """``H = 2F1(1, e; c; z)`` by its series, for ``0 <= z < 1`` and ``0 < e <= c``.

    The ``k``-th term is ``(e)_k / (c)_k * z**k``: positive, and the ratio of consecutive terms
    ``(e + k) / (c + k) * z`` never exceeds ``z``, so after ``k`` terms the rest is at most
    ``term_k * z / (1 - z)``. The terms are summed in blocks for all rows at once (16 terms, then
    32, 64, ...); rows leave once that bound is below ``rtol`` times their sum.

    :param derivatives: also return ``d log H / d e``, ``d log H / d c`` and ``d log H / d z``.
    :returns: ``(H, dlogH_de, dlogH_dc, dlogH_dz, converged)``; the derivative arrays are zeros when
        not requested; ``converged`` is 1.0 where the sum reached ``rtol`` within ``max_terms``.
    """
    e = np.asarray(e, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    e, c, z = np.broadcast_arrays(e, c, z)
    shape = e.shape
    e, c, z = e.ravel(), c.ravel(), z.ravel()
    n = e.size
    total = np.ones(n)
    se = np.zeros(n)  # sum of term_k * d log term_k / d e
    sc = np.zeros(n)
    sz = np.zeros(n)  # sum of k * term_k
    term = np.ones(n)  # last term summed
    dle = np.zeros(n)  # d log term_k / d e of the last term: sum_{j<k} 1 / (e + j)
    dlc = np.zeros(n)
    converged = np.ones(n)
    active = np.nonzero(z > 0.0)[0]
    k0 = 0
    block = 16
    while active.size and k0 < max_terms:
        kk = min(block, max_terms - k0)
        j = k0 + np.arange(kk, dtype=np.float64)[None, :]
        ea, ca, za = e[active][:, None], c[active][:, None], z[active]
        terms = term[active][:, None] * np.cumprod((ea + j) / (ca + j) * za[:, None], axis=1)
        total[active] += terms.sum(axis=1)
        if derivatives:
            cle = dle[active][:, None] + np.cumsum(1.0 / (ea + j), axis=1)
            clc = dlc[active][:, None] - np.cumsum(1.0 / (ca + j), axis=1)
            se[active] += (terms * cle).sum(axis=1)
            sc[active] += (terms * clc).sum(axis=1)
            sz[active] += (terms * (j + 1.0)).sum(axis=1)
            dle[active] = cle[:, -1]
            dlc[active] = clc[:, -1]
        last = terms[:, -1]
        term[active] = last
        k0 += kk
        block *= 2
        keep = last * za / (1.0 - za) > rtol * total[active]
        active = active[keep]
    converged[active] = 0.0
    if derivatives:
        with np.errstate(invalid="ignore", divide="ignore"):
            dz_out = np.where(z > 0, sz / np.where(z > 0, z, 1.0) / total, e / c)
        return (
            total.reshape(shape),
            (se / total).reshape(shape),
            (sc / total).reshape(shape),
            dz_out.reshape(shape),
            converged.reshape(shape),
        )
    zero = np.zeros(shape)
    return total.reshape(shape), zero, zero, zero, converged.reshape(shape)


def nodes_for(c_max: float) -> int:
    """Quadrature size for functions of ``p`` with a singularity at ``p = -1 / c_max``."""
    need = 9.0 * math.sqrt(max(c_max, 0.0)) + 16.0
    n = 32
    while n < need and n < 4096:
        n *= 2
    return n


def _nodes_for_all(c_max: FloatArray) -> npt.NDArray[np.int64]:
    """:func:`nodes_for` of every element (vectorised)."""
    need = 9.0 * np.sqrt(np.maximum(np.asarray(c_max, dtype=np.float64), 0.0)) + 16.0
    with np.errstate(divide="ignore"):
        k = np.ceil(np.log2(need / 32.0))
    k = np.clip(k, 0, 7).astype(np.int64)  # 32 * 2**7 = 4096
    return 32 * 2**k


def beta_discounted_increments(
    a: float,
    b: FloatArray,
    m: FloatArray,
    c: FloatArray,
    discounts: FloatArray,
) -> FloatArray:
    """``E[sum_k d_k (g(c_{k-1}) - g(c_k)) / p]`` with ``g(c) = (1 + p c)^(-m)``, ``p ~ Beta(a, b)``.

    This is the discounted sum of the increments of the BG/NBD-type conditional expectation
    ``E[(1 - (1 + p c)^(-m)) / p]`` over a grid ``0 = c_0 < c_1 < ... < c_K``; with one grid
    point and ``d_1 = 1`` it is the expectation itself. Each increment is computed as
    ``g(c_{k-1}) * -expm1(-m * log1p(p (c_k - c_{k-1}) / (1 + p c_{k-1}))) / p``, which is exact
    in floating point for tiny ``p``, huge ``m`` and long horizons alike.

    :param b: per row (G,); :param m: per row (G,); :param c: grid per row (G, K), increasing;
    :param discounts: per grid point (K,).
    :returns: (G,) values.
    """
    b = np.asarray(b, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    out = np.empty(b.shape[0])
    c_last = c[:, -1] if c.size else np.zeros(b.shape[0])
    sizes = _nodes_for_all(c_last)
    for n in np.unique(sizes):
        rows = np.nonzero(sizes == n)[0]
        for start in range(0, rows.size, 20000):
            idx = rows[start : start + 20000]
            p, w = beta_quadrature(a, b[idx], int(n))
            mm = m[idx][:, None]
            acc = np.zeros_like(p)
            log_g_prev = np.zeros_like(p)
            c_prev = np.zeros((idx.size, 1))
            for k in range(c.shape[1]):
                ck = c[idx, k][:, None]
                step = np.log1p(p * (ck - c_prev) / (1.0 + p * c_prev))
                acc += discounts[k] * np.exp(log_g_prev) * -np.expm1(-mm * step) / p
                log_g_prev = log_g_prev - mm * step
                c_prev = ck
            out[idx] = np.sum(w * acc, axis=1)
    return out


def beta_survival(a: float, b: FloatArray, m: FloatArray, c: FloatArray) -> FloatArray:
    """``E[(1 + p c)^(-m)]`` for ``p ~ Beta(a, b)`` (per row), by Gauss quadrature."""
    b = np.asarray(b, dtype=np.float64)
    out = np.empty(b.shape[0])
    sizes = _nodes_for_all(np.asarray(c, dtype=np.float64))
    for n in np.unique(sizes):
        idx = np.nonzero(sizes == n)[0]
        p, w = beta_quadrature(a, b[idx], int(n))
        vals = np.exp(-m[idx][:, None] * np.log1p(p * c[idx][:, None]))
        out[idx] = np.sum(w * vals, axis=1)
    return out
