"""Numerical robustness: finite, bounded and monotone results over extreme inputs, and accuracy
against independent computations (adaptive quadrature of the integral representations)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from models_strategies import customer, moderate, positive, summaries
from scipy import integrate
from scipy.special import gammaln, hyp2f1

from loyaltykit.models import BetaGeo, GammaGamma, ModifiedBetaGeo, ParetoNBD
from loyaltykit.models._special import beta_quadrature, hyp2f1_one


def _ll_and_grad(model: BetaGeo | ParetoNBD, frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    data = model._prepare_rows({c: frame[c].cast(pl.Float64).to_numpy() for c in frame.columns})
    ll, g = model._loglik(model._p(), data, True)
    assert g is not None
    return ll, g


@given(
    frame=summaries(),
    r=positive,
    alpha=positive,
    a=positive,
    b=positive,
    cls=st.sampled_from([BetaGeo, ModifiedBetaGeo]),
)
def test_bg_family_finite_and_bounded(
    frame: pl.DataFrame, r: float, alpha: float, a: float, b: float, cls: type[BetaGeo]
) -> None:
    model = cls.from_params(r=r, alpha=alpha, a=a, b=b)
    ll, g = _ll_and_grad(model, frame)
    assert np.all(np.isfinite(ll))
    assert np.all(np.isfinite(g))
    pa = model.probability_alive(frame)["probability_alive"].to_numpy()
    assert np.all((pa >= 0) & (pa <= 1))
    e1 = model.expected_purchases(1.0, frame)["expected_purchases"].to_numpy()
    e2 = model.expected_purchases(10.0, frame)["expected_purchases"].to_numpy()
    assert np.all(np.isfinite(e2))
    assert np.all(e1 >= 0)
    assert np.all(e2 >= e1 * (1 - 1e-12))


@given(frame=summaries(), r=positive, alpha=positive, s=positive, beta=positive)
def test_pareto_finite_and_bounded(
    frame: pl.DataFrame, r: float, alpha: float, s: float, beta: float
) -> None:
    model = ParetoNBD.from_params(r=r, alpha=alpha, s=s, beta=beta)
    ll, g = _ll_and_grad(model, frame)
    assert np.all(np.isfinite(ll))
    assert np.all(np.isfinite(g))
    pa = model.probability_alive(frame)["probability_alive"].to_numpy()
    assert np.all((pa >= 0) & (pa <= 1 + 1e-12))
    e1 = model.expected_purchases(1.0, frame)["expected_purchases"].to_numpy()
    e2 = model.expected_purchases(10.0, frame)["expected_purchases"].to_numpy()
    assert np.all(np.isfinite(e2))
    assert np.all(e1 >= 0)
    assert np.all(e2 >= e1 * (1 - 1e-12))


@given(
    c=customer(max_frequency=3000, max_t=500.0),
    r=moderate,
    alpha=moderate,
    s=moderate,
    beta=moderate,
)
def test_pareto_likelihood_matches_integral(
    c: tuple[int, float, float], r: float, alpha: float, s: float, beta: float
) -> None:
    """The series form equals direct quadrature of the published integral representation."""
    x, tx, T = c
    model = ParetoNBD.from_params(r=r, alpha=alpha, s=s, beta=beta)
    frame = pl.DataFrame({"frequency": [x], "recency": [tx], "T": [T]})
    got = model.individual_log_likelihood(frame)["log_likelihood"][0]
    m, n = r + x, s + 1
    log_jt = -m * math.log(alpha + T) - s * math.log(beta + T)
    # integrand scaled by its value at t_x so that heavy buyers do not underflow
    log_f0 = -m * math.log(alpha + tx) - n * math.log(beta + tx)

    def f(y: float) -> float:
        return math.exp(-m * math.log(alpha + y) - n * math.log(beta + y) - log_f0)

    scale = min((alpha + tx) / m, (beta + tx) / n)  # the integrand's decay length
    breaks = [tx + scale * k for k in (1, 10, 100, 1000, 10000) if tx + scale * k < T]
    integral = (
        integrate.quad(f, tx, T, points=breaks or None, epsabs=0, epsrel=1e-13, limit=500)[0]
        if tx < T
        else 0.0
    )
    core = (
        np.logaddexp(log_jt, math.log(s) + log_f0 + math.log(integral)) if integral > 0 else log_jt
    )
    expected = gammaln(r + x) - gammaln(r) + r * math.log(alpha) + s * math.log(beta) + core
    assert got == pytest.approx(expected, rel=1e-8, abs=1e-8)


@given(
    c=customer(max_frequency=40, max_t=100.0), r=moderate, alpha=moderate, a=moderate, b=moderate
)
def test_bgnbd_expectation_matches_hypergeometric_form(
    c: tuple[int, float, float], r: float, alpha: float, a: float, b: float
) -> None:
    """Where scipy's hyp2f1 is reliable, the quadrature form equals the papers' closed form."""
    x, tx, T = c
    if abs(a - 1) < 0.05:
        return  # the closed form divides by a - 1
    t = 10.0
    z = t / (alpha + T + t)
    h = hyp2f1(r + x, b + x, a + b + x - 1, z)
    if not np.isfinite(h) or h > 1e12:
        return
    model = BetaGeo.from_params(r=r, alpha=alpha, a=a, b=b)
    frame = pl.DataFrame({"frequency": [x], "recency": [tx], "T": [T]})
    got = model.expected_purchases(t, frame)["expected_purchases"][0]
    pa = model.probability_alive(frame)["probability_alive"][0]
    closed = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * h)
    assert got == pytest.approx(pa * closed, rel=1e-7, abs=1e-12)


def test_heavy_buyer_extremes_stay_finite() -> None:
    frame = pl.DataFrame(
        {"frequency": [0, 1, 5000, 20000], "recency": [0.0, 1e4, 9999.0, 1e5], "T": [1e5] * 4}
    )
    for model in (
        BetaGeo.from_params(r=1e3, alpha=1e-3, a=1e-3, b=1e3),
        BetaGeo.from_params(r=1e-3, alpha=1e3, a=1e3, b=1e-3),
        ParetoNBD.from_params(r=50.0, alpha=0.5, s=0.01, beta=20.0),
        ParetoNBD.from_params(r=0.01, alpha=40.0, s=30.0, beta=0.5),
    ):
        scored = model.score(frame, horizon=1e4)
        values = scored.select("probability_alive", "expected_purchases").to_numpy()
        assert np.all(np.isfinite(values))
        ll = model.individual_log_likelihood(frame)["log_likelihood"].to_numpy()
        assert np.all(np.isfinite(ll))


def test_long_horizon_new_customer_curve() -> None:
    model = BetaGeo.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
    curve = model.expected_purchases_new([0.0, 1.0, 1e2, 1e4, 1e6])["expected_purchases"].to_numpy()
    assert curve[0] == 0.0
    assert np.all(np.diff(curve) > 0)
    assert np.all(np.isfinite(curve))
    # a < 1: the expected count grows without bound, like t^(1 - a) (slowly)
    r, alpha, a, b = 0.243, 4.414, 0.793, 2.426
    t = 1e4
    exact = (
        (a + b - 1)
        / (a - 1)
        * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))
    )
    assert curve[3] == pytest.approx(exact, rel=1e-9)


def test_beta_quadrature_moments_for_huge_b() -> None:
    # scipy's roots_jacobi overflows here; the normalised recurrence does not
    p, w = beta_quadrature(0.5, np.array([1e5]), 32)
    assert np.all(np.isfinite(p))
    assert w.sum() == pytest.approx(1.0)
    mean = (p * w).sum()
    assert mean == pytest.approx(0.5 / (0.5 + 1e5), rel=1e-12)


def test_hyp2f1_one_against_scipy_and_derivatives() -> None:
    e = np.array([0.5, 3.0, 200.0, 1.0])
    c = np.array([2.0, 5.0, 210.0, 1.5])
    z = np.array([0.3, 0.9, 0.99, 0.0])
    h, de, dc, dz, ok = hyp2f1_one(e, c, z, derivatives=True)
    assert np.all(ok == 1)
    # direct summation (scipy's hyp2f1 returns NaN for the third case)
    direct = []
    for ei, ci, zi in zip(e, c, z, strict=True):
        total, term, k = 1.0, 1.0, 0
        while term > 1e-18 * total:
            term *= (ei + k) / (ci + k) * zi
            total += term
            k += 1
        direct.append(total)
    assert h == pytest.approx(direct, rel=1e-12)
    e, c, z, de, dc, dz = (
        e[[0, 1, 3]],
        c[[0, 1, 3]],
        z[[0, 1, 3]],
        de[[0, 1, 3]],
        dc[[0, 1, 3]],
        dz[[0, 1, 3]],
    )
    eps = 1e-6
    num_de = (np.log(hyp2f1(1, e + eps, c, z)) - np.log(hyp2f1(1, e - eps, c, z))) / (2 * eps)
    num_dc = (np.log(hyp2f1(1, e, c + eps, z)) - np.log(hyp2f1(1, e, c - eps, z))) / (2 * eps)
    num_dz = (
        np.log(hyp2f1(1, e, c, z + eps)) - np.log(hyp2f1(1, e, c, np.maximum(z - eps, 0)))
    ) / (np.where(z > 0, 2 * eps, eps))
    assert de == pytest.approx(num_de, rel=1e-5, abs=1e-8)
    assert dc == pytest.approx(num_dc, rel=1e-5, abs=1e-8)
    assert dz == pytest.approx(num_dz, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("cls", [BetaGeo, ModifiedBetaGeo, ParetoNBD])
def test_gradient_matches_finite_differences(cls: type[BetaGeo]) -> None:
    from loyaltykit.datasets import load_cdnow_summary

    model = cls()
    data = model._prepare(load_cdnow_summary())
    rng = np.random.default_rng(7)
    for _ in range(3):
        x0 = np.log(rng.uniform(0.2, 15.0, size=4))
        _, g = model._objective(x0, data, 1.0)
        num = np.empty(4)
        for i in range(4):
            step = np.zeros(4)
            step[i] = 1e-6
            num[i] = (
                model._objective(x0 + step, data, 1.0)[0]
                - model._objective(x0 - step, data, 1.0)[0]
            ) / 2e-6
        assert g == pytest.approx(num, rel=1e-5, abs=1e-3)


@pytest.mark.parametrize(
    ("cls", "params"),
    [
        (BetaGeo, [0.3, 5.0, 0.7, 2.0]),
        (ModifiedBetaGeo, [0.5, 6.0, 0.9, 1.6]),
        (GammaGamma, [6.0, 3.7, 15.0]),
    ],
)
def test_fast_weighted_totals_equal_row_sums(cls: type[BetaGeo], params: list[float]) -> None:
    """The per-distinct-value form of the objective equals the plain sum over rows."""
    from loyaltykit.datasets import load_cdnow_summary
    from loyaltykit.models._base import BTYDModel

    model = cls()
    data = model._prepare(load_cdnow_summary(with_monetary=True))
    p = np.array(params)
    fast_total, fast_grad = model._total(p, data)
    slow_total, slow_grad = BTYDModel._total(model, p, data)
    assert fast_total == pytest.approx(slow_total, rel=1e-12)
    assert fast_grad == pytest.approx(slow_grad, rel=1e-10)


def test_distinct_fast_paths_agree_with_sorting() -> None:
    from loyaltykit.models._base import distinct

    rng = np.random.default_rng(3)
    x = rng.integers(0, 60, 120_000).astype(np.float64)
    days = rng.integers(0, 730, 120_000).astype(np.float64)
    for cols in ((x,), (x, days), (x, days / 7.0)):  # dense codes, dense pairs, hashing
        parts, inverse = distinct(*cols)
        for part, col in zip(parts, cols, strict=True):
            assert np.array_equal(part[inverse], col)
        expected = np.unique(np.stack(cols, axis=1), axis=0).shape[0]
        assert parts[0].size == expected


@st.composite
def bgbb_rows(draw: st.DrawFn) -> pl.DataFrame:
    rows = []
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        n = draw(st.integers(min_value=1, max_value=60))
        x = draw(st.integers(min_value=0, max_value=n))
        tx = draw(st.integers(min_value=x, max_value=n)) if x > 0 else 0
        rows.append((x, tx, n))
    return pl.DataFrame(rows, schema=["frequency", "recency", "periods"], orient="row")


@given(frame=bgbb_rows(), al=positive, be=positive, ga=positive, de=positive)
def test_bgbb_finite_and_bounded(
    frame: pl.DataFrame, al: float, be: float, ga: float, de: float
) -> None:
    from loyaltykit.models import BetaGeoBetaBinom

    model = BetaGeoBetaBinom.from_params(alpha=al, beta=be, gamma=ga, delta=de)
    ll = model.individual_log_likelihood(frame)["log_likelihood"].to_numpy()
    assert np.all(np.isfinite(ll))
    assert np.all(ll <= 1e-12)  # discrete data: probabilities
    alive = model.probability_alive(frame)["probability_alive"].to_numpy()
    assert np.all((alive >= 0) & (alive <= 1 + 1e-12))
    later = model.probability_alive(frame, ahead=5)["probability_alive"].to_numpy()
    assert np.all(later <= alive + 1e-12)
    e1 = model.expected_purchases(1, frame)["expected_purchases"].to_numpy()
    e5 = model.expected_purchases(5, frame)["expected_purchases"].to_numpy()
    assert np.all(np.isfinite(e5))
    assert np.all(e5 >= e1 - 1e-12)


@given(al=positive, be=positive, periods=st.integers(min_value=1, max_value=200))
def test_sbg_survival_is_a_decreasing_probability(al: float, be: float, periods: int) -> None:
    from loyaltykit.models import ShiftedBetaGeo

    model = ShiftedBetaGeo.from_params(alpha=al, beta=be)
    curve = model.survival(np.arange(periods + 1, dtype=np.float64))
    s = curve["survival"].to_numpy()
    assert s[0] == 1.0
    assert np.all(np.isfinite(s))
    assert np.all(np.diff(s) <= 1e-15)
    assert np.all(s >= 0)
    rates = curve["retention_rate"].drop_nulls().to_numpy()
    assert np.all((rates >= 0) & (rates <= 1))
    assert np.all(np.diff(rates) >= -1e-12)  # retention rises as the cohort sorts itself


@given(
    p=moderate,
    q=st.floats(min_value=1.05, max_value=50.0),
    v=moderate,
    x=st.integers(min_value=1, max_value=5000),
    m=st.floats(min_value=0.01, max_value=1e5),
)
def test_gamma_gamma_spend_shrinks_towards_the_mean(
    p: float, q: float, v: float, x: int, m: float
) -> None:
    model = GammaGamma.from_params(p=p, q=q, v=v)
    frame = pl.DataFrame({"frequency": [x], "monetary_value": [m]})
    got = model.expected_spend(frame)["expected_spend"][0]
    mean = model.mean_spend_
    assert np.isfinite(got)
    assert min(mean, m) * (1 - 1e-9) <= got <= max(mean, m) * (1 + 1e-9)


def test_quasi_newton_converges_and_gives_up_cleanly() -> None:
    from loyaltykit.models._base import _quasi_newton

    target = np.array([0.3, -1.2, 2.0])
    scale = np.array([1.0, 10.0, 0.1])

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        d = x - target
        return float(np.sum(scale * d**2 + 0.1 * d**4)), 2 * scale * d + 0.4 * d**3

    res = _quasi_newton(objective, np.zeros(3), np.diag(2 * scale) * 1.3)
    assert res is not None
    assert res.success
    assert np.abs(res.x - target).max() < 1e-7
    assert np.abs(res.jac).max() < 1e-6
    # an initial Hessian that is not positive definite gives no descent direction: None, so
    # the caller falls back to L-BFGS-B
    assert _quasi_newton(objective, np.zeros(3), -np.eye(3)) is None
    # a non-finite start: None
    assert _quasi_newton(lambda x: (math.inf, x), np.zeros(3), np.eye(3)) is None


def test_vectorised_node_counts_match_scalar() -> None:
    from loyaltykit.models._special import _nodes_for_all, nodes_for

    c = np.concatenate([np.linspace(0.0, 3e5, 20001), [1e-9, 2.0, (48 / 9) ** 2, 1e12]])
    assert np.array_equal(_nodes_for_all(c), [nodes_for(float(v)) for v in c])


@given(
    frame=summaries(),
    params=st.tuples(positive, positive, positive, positive),
    t=st.floats(min_value=0.0, max_value=1e3, allow_nan=False),
    cls=st.sampled_from([BetaGeo, ModifiedBetaGeo, ParetoNBD]),
)
def test_conditional_pmf_finite_and_bounded(
    frame: pl.DataFrame,
    params: tuple[float, float, float, float],
    t: float,
    cls: type[BetaGeo] | type[ParetoNBD],
) -> None:
    """Heavy buyers, long histories, parameters near their bounds: probabilities stay finite,
    in [0, 1], and their partial sums never exceed 1."""
    model = cls.from_params(**dict(zip(cls.param_names, params, strict=True)))
    counts = [0, 1, 7, 100, 3000]
    out = model.conditional_probability_of_purchases(counts, t, frame)
    assert isinstance(out, pl.DataFrame)
    table = np.column_stack([out[f"probability_{n}_purchases"].to_numpy() for n in counts])
    assert np.all(np.isfinite(table))
    assert np.all((table >= 0) & (table <= 1 + 1e-9))
    assert np.all(table.sum(axis=1) <= 1 + 1e-9)


def test_grid_compress_matches_rounding_then_grouping() -> None:
    from loyaltykit.models._base import compress, grid_compress

    rng = np.random.default_rng(3)
    n = 5000
    T = rng.uniform(0.0, 70.0, n)
    x = rng.integers(0, 12, n).astype(np.float64)
    tx = np.where(x > 0, rng.uniform(0.0, 1.0, n) * T, 0.0)
    data = {"frequency": x, "recency": tx, "T": T, "weights": rng.integers(1, 4, n) * 1.0}
    got = grid_compress(data, 48)
    assert got is not None
    step = T.max() / 48
    rounded = {"frequency": x, "recency": np.rint(tx / step) * step, "T": np.rint(T / step) * step}
    want = compress(rounded, ("frequency", "recency", "T"), data["weights"])
    assert got["weights"].sum() == data["weights"].sum()
    for key in ("frequency", "recency", "T", "weights"):
        assert got[key] == pytest.approx(want[key], rel=1e-12, abs=1e-9)
    assert np.all(got["recency"] <= got["T"])
    assert np.all(got["recency"][got["frequency"] == 0] == 0)
