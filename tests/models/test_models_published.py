"""The fits reproduce the published estimates on the bundled reference data."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from loyaltykit.datasets import load_cdnow_summary, load_donations, load_sbg_retention
from loyaltykit.models import (
    BetaGeo,
    BetaGeoBetaBinom,
    GammaGamma,
    ModifiedBetaGeo,
    ParetoNBD,
    ShiftedBetaGeo,
)

CDNOW = load_cdnow_summary()


def rounded(params: dict[str, float], digits: int) -> dict[str, float]:
    return {k: round(v, digits) for k, v in params.items()}


def test_bgnbd_cdnow_published() -> None:
    model = BetaGeo().fit(CDNOW)
    assert rounded(model.params_, 3) == {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    assert round(model.log_likelihood_, 1) == -9582.4
    assert model.convergence_.success
    assert model.convergence_.gradient_norm < 1e-6


def test_pareto_nbd_cdnow_published() -> None:
    model = ParetoNBD().fit(CDNOW)
    published = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
    assert rounded(model.params_, 3) | {"beta": 11.669} == published
    # beta is barely identified (standard error 6.2): the likelihood is flat to 1e-8 between
    # 11.668 and 11.669; ours is the exact optimum and at least as likely as the published point
    assert model.params_["beta"] == pytest.approx(11.669, abs=2e-3)
    assert round(model.log_likelihood_, 1) == -9595.0
    at_published = ParetoNBD.from_params(**published).individual_log_likelihood(CDNOW)
    assert model.log_likelihood_ >= at_published["log_likelihood"].sum() - 1e-9


def test_mbgnbd_cdnow_published() -> None:
    model = ModifiedBetaGeo().fit(CDNOW)
    assert rounded(model.params_, 3) == {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}


def test_gamma_gamma_cdnow_published() -> None:
    data = load_cdnow_summary(with_monetary=True)
    model = GammaGamma().fit(data)
    published = {"p": 6.25, "q": 3.74, "v": 15.44}
    # two decimals as published (lifetimes finds the same optimum, v = 15.4477)
    assert model.params_ == pytest.approx(published, abs=0.01)
    # fitted on the 946 repeat buyers only
    assert model.n_observations_ == 946


def test_bgbb_donations_published() -> None:
    model = BetaGeoBetaBinom().fit(load_donations())
    assert rounded(model.params_, 3) == {
        "alpha": 1.204,
        "beta": 0.750,
        "gamma": 0.657,
        "delta": 2.783,
    }
    assert model.n_observations_ == 11104


@pytest.mark.parametrize(
    ("segment", "expected"),
    [("regular", {"alpha": 0.704, "beta": 1.182}), ("high_end", {"alpha": 0.668, "beta": 3.806})],
)
def test_sbg_retention_published(segment: str, expected: dict[str, float]) -> None:
    table = load_sbg_retention(segment).filter(pl.col("period") <= 7)  # type: ignore[arg-type]
    model = ShiftedBetaGeo().fit(table)
    assert rounded(model.params_, 3) == expected


def test_standard_errors_and_intervals() -> None:
    model = BetaGeo().fit(CDNOW)
    se = model.standard_errors_
    assert all(math.isfinite(v) and v > 0 for v in se.values())
    # lifetimes reports 0.0126, 0.3782, 0.1857, 0.7053 for r, alpha, a, b
    assert se["r"] == pytest.approx(0.0126, abs=2e-4)
    assert se["alpha"] == pytest.approx(0.378, abs=3e-3)
    for name, (lo, hi) in model.confidence_intervals_.items():
        assert 0 < lo < model.params_[name] < hi
    summary = model.summary_
    assert summary.columns == ["parameter", "estimate", "std_error", "lower_95", "upper_95"]
    assert summary["parameter"].to_list() == ["r", "alpha", "a", "b"]
    wide = model.confidence_intervals(0.99)
    assert wide["r"][0] < model.confidence_intervals_["r"][0]


def test_aic_bic() -> None:
    model = BetaGeo().fit(CDNOW)
    assert model.aic_ == pytest.approx(8 - 2 * model.log_likelihood_)
    assert model.bic_ == pytest.approx(4 * math.log(2357) - 2 * model.log_likelihood_)


def test_weights_equal_repeated_rows() -> None:
    counts = CDNOW.group_by("frequency", "recency", "T").len("weights")
    a = BetaGeo().fit(CDNOW)
    b = BetaGeo().fit(counts)
    assert b.log_likelihood_ == pytest.approx(a.log_likelihood_, rel=1e-12)
    for k in a.params_:
        assert b.params_[k] == pytest.approx(a.params_[k], rel=1e-6)


def test_fit_is_idempotent_and_accepts_lazy_and_pandas() -> None:
    model = ParetoNBD()
    first = dict(model.fit(CDNOW).params_)
    second = dict(model.fit(CDNOW.lazy()).params_)
    assert first == pytest.approx(second)
    third = ParetoNBD().fit(CDNOW.to_pandas()).params_
    assert third == pytest.approx(first)


def test_sbg_individual_data_match_table() -> None:
    table = load_sbg_retention("regular").filter(pl.col("period") <= 7)
    alive = table["alive"].to_list()
    durations, churned = [], []
    for t in range(1, len(alive)):
        lost = alive[t - 1] - alive[t]
        durations += [t] * lost
        churned += [True] * lost
    durations += [len(alive) - 1] * alive[-1]
    churned += [False] * alive[-1]
    individual = pl.DataFrame({"duration": durations, "churned": churned})
    a = ShiftedBetaGeo().fit(table)
    b = ShiftedBetaGeo().fit(individual)
    assert b.params_ == pytest.approx(a.params_, rel=1e-6)
    assert b.log_likelihood_ == pytest.approx(a.log_likelihood_)


def test_sbg_projection_tracks_published_curve() -> None:
    table = load_sbg_retention("high_end")
    model = ShiftedBetaGeo().fit(table.filter(pl.col("period") <= 7))
    curve = model.retention_curve(12, cohort_size=1000)
    projected = curve["alive"].to_numpy()[8:]
    actual = table["alive"].to_numpy()[8:]
    # Fader & Hardie (2007): the sBG projection of years 8-12 is within a few percent
    assert np.all(np.abs(projected - actual) / actual < 0.05)
    rates = curve["retention_rate"].drop_nulls().to_numpy()
    assert np.all(np.diff(rates) > 0)  # retention rises as the cohort sorts itself


def test_pareto_nbd_warm_start_matches_plain_fit() -> None:
    """On the full CDNOW log (23,570 customers) the fit starts from a fit on durations rounded
    to a coarse grid; it must land on the same optimum as plain L-BFGS-B from the default start
    (which initial_params forces)."""
    import datetime as dt

    from loyaltykit.analytics import summary
    from loyaltykit.datasets import load_cdnow

    frame = summary(load_cdnow(), observation_end=dt.date(1998, 6, 30), time_unit="W")
    model = ParetoNBD()
    data = model._prepare(frame)
    assert model._coarse(data) is not None
    warm = ParetoNBD().fit(frame)
    assert warm.convergence_.message.startswith("warm-started BFGS")
    assert warm.convergence_.gradient_norm < 1e-6
    start = dict(zip(ParetoNBD.param_names, model._initial(data).tolist(), strict=True))
    plain = ParetoNBD(initial_params=start).fit(frame)
    assert "warm-started" not in plain.convergence_.message
    assert warm.log_likelihood_ == pytest.approx(plain.log_likelihood_, rel=1e-12, abs=1e-7)
    assert warm.log_likelihood_ >= plain.log_likelihood_ - 1e-6
    for name, value in plain.params_.items():
        assert warm.params_[name] == pytest.approx(value, rel=1e-5)
    for name, value in plain.standard_errors_.items():
        assert warm.standard_errors_[name] == pytest.approx(value, rel=1e-3)


def _simulate_bgnbd(n: int, seed: int) -> pl.DataFrame:
    """BG/NBD customers (r=0.55, alpha=77, a=0.85, b=2.5) observed 30 to 1000 whole days."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(0.55, 1 / 77.0, n)
    p = rng.beta(0.85, 2.5, n)
    T = rng.integers(30, 1001, n).astype(np.float64)
    t = np.zeros(n)
    x = np.zeros(n)
    tx = np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        t[idx] += rng.exponential(1 / lam[idx])
        bought = t[idx] <= T[idx]
        buyers = idx[bought]
        x[buyers] += 1
        tx[buyers] = np.floor(t[buyers])
        active[idx[~bought]] = False
        active[buyers[rng.random(buyers.size) < p[buyers]]] = False
    return pl.DataFrame({"frequency": x, "recency": tx, "T": T})


@pytest.mark.parametrize("cls", [BetaGeo, ModifiedBetaGeo])
def test_bgnbd_warm_start_matches_plain_fit(cls: type[BetaGeo]) -> None:
    """Above 50,000 distinct rows BG/NBD and MBG/NBD also start from a fit on a coarse
    duration grid."""
    frame = _simulate_bgnbd(200_000, 7)
    model = cls()
    data = model._prepare(frame)
    assert model._coarse(data) is not None
    warm = cls().fit(frame)
    assert warm.convergence_.message.startswith("warm-started BFGS")
    start = dict(zip(cls.param_names, model._initial(data).tolist(), strict=True))
    plain = cls(initial_params=start).fit(frame)
    assert warm.log_likelihood_ == pytest.approx(plain.log_likelihood_, rel=1e-12)
    for name, value in plain.params_.items():
        assert warm.params_[name] == pytest.approx(value, rel=1e-5)
    if cls is ModifiedBetaGeo:
        return
    # and the simulation's parameters are recovered
    truth = {"r": 0.55, "alpha": 77.0, "a": 0.85, "b": 2.5}
    for name, value in truth.items():
        assert warm.params_[name] == pytest.approx(value, rel=0.15)


def test_gamma_gamma_warm_start_matches_plain_fit() -> None:
    """Above 50,000 repeat buyers Gamma-Gamma starts from a fit on spend rounded to a
    geometric grid; same optimum as plain L-BFGS-B."""
    rng = np.random.default_rng(11)
    n = 60_000
    x = rng.integers(1, 25, n).astype(np.float64)
    nu = rng.gamma(3.74, 1 / 15.44, n)
    spend = rng.gamma(6.25 * x, 1 / nu) / x  # mean of x transactions
    frame = pl.DataFrame({"frequency": x, "monetary_value": spend})
    model = GammaGamma()
    data = model._prepare(frame)
    assert model._coarse(data) is not None
    warm = GammaGamma().fit(frame)
    assert warm.convergence_.method == "BFGS"
    start = dict(zip(GammaGamma.param_names, model._initial(data).tolist(), strict=True))
    plain = GammaGamma(initial_params=start).fit(frame)
    assert plain.convergence_.method == "L-BFGS-B"
    assert warm.log_likelihood_ == pytest.approx(plain.log_likelihood_, rel=1e-12)
    for name, value in plain.params_.items():
        assert warm.params_[name] == pytest.approx(value, rel=1e-5)
    for name, value in {"p": 6.25, "q": 3.74, "v": 15.44}.items():
        assert warm.params_[name] == pytest.approx(value, rel=0.1)
