"""Predictions agree with lifetimes (fixtures made by generate_lifetimes_fixtures.py) and CLV."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from loyaltykit.datasets import load_cdnow_summary, load_donations
from loyaltykit.errors import ModelInputError, NotFittedError
from loyaltykit.models import (
    BetaGeo,
    BetaGeoBetaBinom,
    GammaGamma,
    ModifiedBetaGeo,
    ParetoNBD,
    clv_column_name,
    customer_lifetime_value,
    period_discount_rate,
    value_tiers,
)

REF = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "models" / "lifetimes_reference.json").read_text()
)
SUMMARY = load_cdnow_summary(with_monetary=True)
ROWS = SUMMARY[REF["rows"]]
MODELS = {"bgnbd": BetaGeo, "mbgnbd": ModifiedBetaGeo, "pareto_nbd": ParetoNBD}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("lazy", [False, True])
def test_conditional_predictions_match_lifetimes(name: str, lazy: bool) -> None:
    ref = REF[name]
    model = MODELS[name].from_params(**ref["params"])
    frame = ROWS.lazy() if lazy else ROWS
    alive = model.probability_alive(frame)
    expected = model.expected_purchases(39, frame)
    assert isinstance(alive, pl.LazyFrame if lazy else pl.DataFrame)
    if isinstance(alive, pl.LazyFrame):
        alive = alive.collect()
    if isinstance(expected, pl.LazyFrame):
        expected = expected.collect()
    assert alive["probability_alive"].to_numpy() == pytest.approx(
        ref["probability_alive"], rel=1e-9
    )
    assert expected["expected_purchases"].to_numpy() == pytest.approx(ref["expected_39"], rel=1e-9)
    assert alive.columns == [*ROWS.columns, "probability_alive"]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_unconditional_curve_matches_lifetimes(name: str) -> None:
    ref = REF[name]
    model = MODELS[name].from_params(**ref["params"])
    curve = model.expected_purchases_new([1.0, 10, 39, 78])
    # for MBG/NBD this includes the chance of dropping out at the first purchase, b / (a + b)
    assert curve["expected_purchases"].to_numpy() == pytest.approx(ref["expected_new"], rel=1e-9)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_probability_of_purchases_matches_lifetimes(name: str) -> None:
    ref = REF[name]
    model = MODELS[name].from_params(**ref["params"])
    if "probability_of_n_39" in ref:
        probs = model.probability_of_purchases(list(range(6)), 39)["probability"].to_numpy()
        assert probs == pytest.approx(ref["probability_of_n_39"], rel=1e-9)
    # the distribution's mean is the unconditional expected count
    dist = model.probability_of_purchases(list(range(600)), 39)
    mean = float((dist["n"] * dist["probability"]).sum())
    expected = model.expected_purchases_new(39.0)["expected_purchases"][0]
    assert mean == pytest.approx(expected, rel=1e-9)
    assert model.probability_of_purchases(list(range(2000)), 39)["probability"].sum() == (
        pytest.approx(1.0, abs=1e-9)
    )


def test_gamma_gamma_expected_spend_matches_lifetimes() -> None:
    ref = REF["gamma_gamma"]
    model = GammaGamma.from_params(**ref["params"])
    got = model.expected_spend(SUMMARY[ref["rows"]])["expected_spend"].to_numpy()
    assert got == pytest.approx(ref["expected_spend"], rel=1e-12)
    p, q, v = 6.25, 3.74, 15.44
    zero = model.expected_spend(SUMMARY.filter(pl.col("frequency") == 0).head(1))
    assert zero["expected_spend"][0] == pytest.approx(p * v / (q - 1))


def test_clv_matches_lifetimes_monthly_steps_on_weekly_data() -> None:
    ref = REF["gamma_gamma"]
    bg = BetaGeo.from_params(**REF["bgnbd"]["params"])
    gg = GammaGamma.from_params(**ref["params"])
    # lifetimes: 12 monthly steps of 4.345 weeks, 1% a month
    weekly = 1.01 ** (1 / 4.345) - 1
    out = customer_lifetime_value(
        bg, gg, ROWS, horizon=12 * 4.345, step=4.345, discount_rate=weekly, time_unit="W"
    )
    assert out.columns[-1] == "clv_52.14_weeks"
    assert out["clv_52.14_weeks"].to_numpy() == pytest.approx(
        ref["clv_bgnbd_12_months_weekly_data"], rel=1e-8
    )


def test_bgbb_predictions_match_lifetimes() -> None:
    ref = REF["bgbb"]
    model = BetaGeoBetaBinom.from_params(**ref["params"])
    donations = load_donations()
    alive = model.probability_alive(donations)["probability_alive"].to_numpy()
    assert alive == pytest.approx(ref["probability_alive"], rel=1e-9)
    expected = model.expected_purchases(5, donations)["expected_purchases"].to_numpy()
    assert expected == pytest.approx(ref["expected_5"], rel=1e-9)
    n = int(donations["weights"].sum())
    probs = model.probability_of_purchases(list(range(7)), 6)["probability"].to_numpy()
    assert probs * n == pytest.approx(ref["customers_by_count_6"], rel=1e-9)


def test_probability_alive_ahead_decreases() -> None:
    for name, cls in MODELS.items():
        model = cls.from_params(**REF[name]["params"])
        now = model.probability_alive(ROWS)["probability_alive"].to_numpy()
        later = model.probability_alive(ROWS, ahead=10)["probability_alive"].to_numpy()
        much_later = model.probability_alive(ROWS, ahead=100)["probability_alive"].to_numpy()
        assert np.all(later <= now + 1e-15)
        assert np.all(much_later <= later + 1e-15)
        if name == "pareto_nbd":
            assert np.all(later < now)


def test_clv_units_are_explicit() -> None:
    bg = BetaGeo(time_unit="W").fit(SUMMARY)
    gg = GammaGamma().fit(SUMMARY)
    with pytest.raises(ModelInputError, match="fitted on data in 'W'"):
        customer_lifetime_value(bg, gg, SUMMARY, horizon=12, discount_rate=0.01, time_unit="M")
    out = customer_lifetime_value(bg, gg, SUMMARY, horizon=52, discount_rate=0.002)
    assert "clv_52_weeks" in out.columns
    lazy = customer_lifetime_value(bg, gg, SUMMARY.lazy(), horizon=52, discount_rate=0.002)
    assert isinstance(lazy, pl.LazyFrame)
    assert lazy.collect()["clv_52_weeks"].to_list() == out["clv_52_weeks"].to_list()
    assert clv_column_name(12, None) == "clv_12_periods"
    assert clv_column_name(365, "D") == "clv_365_days"
    assert period_discount_rate(0.1, "Y") == pytest.approx(0.1)
    assert (1 + period_discount_rate(0.1, "M")) ** 12 == pytest.approx(1.1)
    # a longer horizon or a lower rate is worth more
    longer = customer_lifetime_value(bg, gg, SUMMARY, horizon=104, discount_rate=0.002)
    cheaper = customer_lifetime_value(bg, gg, SUMMARY, horizon=52, discount_rate=0.0)
    assert np.all(longer["clv_104_weeks"].to_numpy() >= out["clv_52_weeks"].to_numpy())
    assert np.all(cheaper["clv_52_weeks"].to_numpy() >= out["clv_52_weeks"].to_numpy())


def test_clv_with_fixed_spend_and_margin_and_bgbb() -> None:
    bb = BetaGeoBetaBinom().fit(load_donations())
    donations = load_donations()
    out = customer_lifetime_value(bb, 50.0, donations, horizon=5, discount_rate=0.0, margin=0.5)
    expected = bb.expected_purchases(5, donations)["expected_purchases"].to_numpy() * 25.0
    assert out["clv_5_periods"].to_numpy() == pytest.approx(expected, rel=1e-12)


def test_clv_input_errors() -> None:
    bg = BetaGeo().fit(SUMMARY)
    gg = GammaGamma().fit(SUMMARY)
    with pytest.raises(ModelInputError, match="horizon"):
        customer_lifetime_value(bg, gg, SUMMARY, horizon=0, discount_rate=0.01)
    with pytest.raises(ModelInputError, match="discount_rate"):
        customer_lifetime_value(bg, gg, SUMMARY, horizon=10, discount_rate=-2)
    with pytest.raises(ModelInputError, match="not a transaction model"):
        customer_lifetime_value(gg, gg, SUMMARY, horizon=10, discount_rate=0.01)  # type: ignore[arg-type]
    with pytest.raises(NotFittedError):
        customer_lifetime_value(BetaGeo(), gg, SUMMARY, horizon=10, discount_rate=0.01)
    with pytest.raises(ModelInputError, match="monetary_value"):
        customer_lifetime_value(bg, gg, SUMMARY.drop("monetary_value"), horizon=10, discount_rate=0)


def test_value_tiers_by_thresholds_and_quantiles() -> None:
    frame = pl.DataFrame({"customer_id": [1, 2, 3, 4, 5], "clv": [0.0, 5.0, 10.0, 50.0, None]})
    out = value_tiers(frame, value="clv", thresholds=[5, 20], labels=["low", "mid", "high"])
    assert out.columns == ["customer_id", "clv", "clv_tier"]
    assert out["clv_tier"].to_list() == ["low", "mid", "mid", "high", None]
    lazy = value_tiers(frame.lazy(), value="clv", quantiles=[0.5])
    assert isinstance(lazy, pl.LazyFrame)
    assert lazy.collect()["clv_tier"].to_list() == ["tier_1", "tier_1", "tier_2", "tier_2", None]
    with pytest.raises(ModelInputError, match="label"):
        value_tiers(frame, value="clv", thresholds=[1, 2], labels=["a", "b"])
    with pytest.raises(ModelInputError, match="increasing"):
        value_tiers(frame, value="clv", thresholds=[3, 2])
    with pytest.raises(ModelInputError, match="exactly one"):
        value_tiers(frame, value="clv")
    with pytest.raises(ModelInputError, match="missing"):
        value_tiers(frame, value="nope", thresholds=[1])


def test_clv_tiers_join_the_customer_profile() -> None:
    import datetime as dt

    from loyaltykit.analytics import customer_profile, summary
    from loyaltykit.datasets import load_cdnow

    tx = load_cdnow(sample=True)
    s = summary(tx, observation_end=dt.date(1997, 9, 30), time_unit="W")
    bg = BetaGeo(time_unit="W").fit(s)
    gg = GammaGamma().fit(s.filter(pl.col("frequency") > 0))
    clv = customer_lifetime_value(bg, gg, s, horizon=39, discount_rate=0.002)
    tiers = value_tiers(
        clv, value="clv_39_weeks", quantiles=[0.5, 0.9], labels=["low", "mid", "top"]
    )
    profile = customer_profile(tx, as_of=dt.date(1997, 9, 30), extra=[tiers])
    assert {"clv_39_weeks", "clv_tier", "value_tier"} <= set(profile.columns)
    assert profile.height == tx["customer_id"].n_unique()
    assert profile["clv_tier"].null_count() == 0


PMF_REF = json.loads((Path(__file__).with_name("lifetimes_conditional_pmf.json")).read_text())


def _pmf_table(
    model: BetaGeo | ParetoNBD, counts: list[int], t: float, frame: pl.DataFrame
) -> np.ndarray:
    out = model.conditional_probability_of_purchases(counts, t, frame)
    assert isinstance(out, pl.DataFrame)
    return np.column_stack([out[f"probability_{n}_purchases"].to_numpy() for n in counts])


def test_pareto_conditional_pmf_matches_lifetimes() -> None:
    model = ParetoNBD.from_params(**PMF_REF["params"])
    counts = [int(n) for n in PMF_REF["probability"]]
    got = _pmf_table(model, counts, PMF_REF["t"], SUMMARY[PMF_REF["rows"]])
    want = np.column_stack([PMF_REF["probability"][str(n)] for n in counts])
    assert got == pytest.approx(want, rel=1e-7, abs=1e-12)


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("t", [0.5, 39.0, 156.0])
def test_conditional_pmf_sums_to_one_with_the_conditional_mean(name: str, t: float) -> None:
    model = MODELS[name].from_params(**REF[name]["params"])
    # every customer of CDNOW, including the heaviest buyers
    counts = list(range(400))
    table = _pmf_table(model, counts, t, SUMMARY)
    assert np.all(table >= 0)
    assert table.sum(axis=1) == pytest.approx(1.0, abs=1e-9)
    mean = table @ np.arange(400.0)
    expected = model.expected_purchases(t, SUMMARY)["expected_purchases"].to_numpy()
    assert mean == pytest.approx(expected, rel=1e-8, abs=1e-12)
    # n = 0 includes the customers who have left: at least 1 - P(alive)
    alive = model.probability_alive(SUMMARY)["probability_alive"].to_numpy()
    assert np.all(table[:, 0] >= 1 - alive - 1e-12)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_conditional_pmf_of_a_new_customer_is_the_unconditional_pmf(name: str) -> None:
    # with no history (x = t_x = T = 0) the posterior is the prior: the BG/NBD and MBG/NBD
    # closed forms meet the new-customer formulas checked against lifetimes above
    model = MODELS[name].from_params(**REF[name]["params"])
    new = pl.DataFrame({"frequency": [0.0], "recency": [0.0], "T": [0.0]})
    counts = list(range(8))
    got = _pmf_table(model, counts, 39.0, new)[0]
    want = model.probability_of_purchases(counts, 39.0)["probability"].to_numpy()
    assert got == pytest.approx(want, rel=1e-10)


def test_conditional_pmf_edge_cases_and_lazy() -> None:
    model = BetaGeo.from_params(**REF["bgnbd"]["params"])
    zero = _pmf_table(model, [0, 1], 0.0, ROWS)
    assert np.array_equal(zero, np.column_stack([np.ones(ROWS.height), np.zeros(ROWS.height)]))
    lazy = model.conditional_probability_of_purchases(2, 39.0, ROWS.lazy())
    assert isinstance(lazy, pl.LazyFrame)
    assert lazy.collect()["probability_2_purchases"].to_numpy() == pytest.approx(
        _pmf_table(model, [2], 39.0, ROWS)[:, 0]
    )
    for bad in ([-1], [1.5], [1, 1]):
        with pytest.raises(ModelInputError, match="n="):
            model.conditional_probability_of_purchases(bad, 39.0, ROWS)
    with pytest.raises(ModelInputError, match="t="):
        model.conditional_probability_of_purchases(1, -1.0, ROWS)
    with pytest.raises(NotFittedError):
        ParetoNBD().conditional_probability_of_purchases(1, 1.0, ROWS)


def test_bgnbd_conditional_pmf_matches_numerical_integration() -> None:
    """The closed form against the mixture written out: given the rate ``lambda`` and the
    dropout probability ``p``, the history and the window are Poisson counts with geometric
    dropout. The integrals over ``p`` are Beta functions; the one over ``lambda`` is numerical
    (no negative binomial or incomplete beta identities used)."""
    from scipy import integrate, stats
    from scipy.special import betaln

    r, alpha, a, b = (REF["bgnbd"]["params"][k] for k in ("r", "alpha", "a", "b"))
    model = BetaGeo.from_params(r=r, alpha=alpha, a=a, b=b)
    x, tx, T, t = 3.0, 20.0, 38.0, 26.0
    frame = pl.DataFrame({"frequency": [x], "recency": [tx], "T": [T]})
    counts = [0, 1, 2, 4, 9]
    got = _pmf_table(model, counts, t, frame)[0]

    def e_p(k: float, m: float) -> float:  # E[p^k (1-p)^m] under Beta(a, b)
        return float(np.exp(betaln(a + k, b + m) - betaln(a, b)))

    def over_lambda(f: object) -> float:
        def g(lam: float) -> float:
            return float(stats.gamma.pdf(lam, r, scale=1 / alpha) * f(lam))  # type: ignore[operator]

        value, _ = integrate.quad(g, 0, np.inf, epsabs=1e-15, epsrel=1e-12, limit=200)
        return float(value)

    def alive(lam: float) -> float:
        return float(lam**x * np.exp(-lam * T))

    def dead(lam: float) -> float:
        return float(lam**x * np.exp(-lam * tx))

    likelihood = over_lambda(alive) * e_p(0, x) + over_lambda(dead) * e_p(1, x - 1)
    want = []
    for n in counts:
        stay = over_lambda(lambda lam, n=n: alive(lam) * stats.poisson.pmf(n, lam * t))
        value = stay * e_p(0, x + n)
        if n > 0:
            leave = over_lambda(lambda lam, n=n: alive(lam) * stats.poisson.sf(n - 1, lam * t))
            value += leave * e_p(1, x + n - 1)
        else:
            value += over_lambda(dead) * e_p(1, x - 1)
        want.append(value / likelihood)
    assert got == pytest.approx(want, rel=1e-8)


def test_bgbb_conditional_pmf() -> None:
    model = BetaGeoBetaBinom.from_params(**REF["bgbb"]["params"])
    donations = load_donations()
    t = 5
    counts = list(range(t + 1))
    out = model.conditional_probability_of_purchases(counts, t, donations)
    assert isinstance(out, pl.DataFrame)
    table = np.column_stack([out[f"probability_{k}_purchases"].to_numpy() for k in counts])
    assert np.all(table >= 0)
    assert table.sum(axis=1) == pytest.approx(1.0, abs=1e-12)
    mean = table @ np.arange(t + 1.0)
    expected = model.expected_purchases(t, donations)["expected_purchases"].to_numpy()
    assert mean == pytest.approx(expected, rel=1e-10)
    # no history: the new-customer distribution checked against lifetimes above
    # (periods = 0 is no valid input row, so the formula is called directly)
    zero = np.zeros(1)
    got = model._conditional_pmf(np.arange(t + 1.0), t, zero, zero, zero)[0]
    want = model.probability_of_purchases(counts, t)["probability"].to_numpy()
    assert got == pytest.approx(want, rel=1e-10)
    # more transactions than opportunities: impossible
    beyond = model.conditional_probability_of_purchases([t + 1], t, donations)
    assert isinstance(beyond, pl.DataFrame)
    assert beyond[f"probability_{t + 1}_purchases"].max() == 0.0
    with pytest.raises(ModelInputError, match="t="):
        model.conditional_probability_of_purchases(1, 2.5, donations)  # type: ignore[arg-type]
