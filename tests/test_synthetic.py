"""The synthetic generator: schemas, invariants, determinism and recovery of the true parameters."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import optimize, special

from loyaltykit import Customer, Feedback, Interaction, Money, Transaction
from loyaltykit.datasets import SyntheticData, SyntheticParams, generate
from loyaltykit.datasets.synthetic import CUSTOMER_SCHEMA, TRUTH_SCHEMA
from loyaltykit.errors import InvalidValueError
from loyaltykit.schema import FEEDBACK_SCHEMA, INTERACTION_SCHEMA, TRANSACTION_SCHEMA

N_LARGE = 40_000


@pytest.fixture(scope="module")
def large() -> SyntheticData:
    """A population big enough to check distributions (about 0.5 s)."""
    return generate(N_LARGE, seed=20240601)


def _purchases(data: SyntheticData) -> pl.DataFrame:
    return data.transactions.filter(pl.col("kind") == "purchase")


def _refunds(data: SyntheticData) -> pl.DataFrame:
    return data.transactions.filter(pl.col("kind") == "refund")


def check_invariants(data: SyntheticData) -> None:
    """What every generated data set satisfies, whatever the parameters."""
    assert data.customers.schema == CUSTOMER_SCHEMA
    assert data.transactions.schema == TRANSACTION_SCHEMA
    assert data.feedback.schema == FEEDBACK_SCHEMA
    assert data.interactions.schema == INTERACTION_SCHEMA
    assert data.truth.schema == TRUTH_SCHEMA
    start, end = data.start, data.end
    tx = data.transactions
    # no nulls where the schema means a value
    required = ["transaction_id", "customer_id", "occurred_at", "amount", "currency", "kind"]
    assert tx.select(pl.col(required).null_count().sum()).row(0) == (0,) * len(required)
    assert tx["transaction_id"].n_unique() == tx.height
    assert data.customers["customer_id"].n_unique() == data.customers.height
    # times inside the window, log in time order, ids growing with time
    for frame, col in (
        (tx, "occurred_at"),
        (data.feedback, "answered_at"),
        (data.interactions, "occurred_at"),
    ):
        if frame.height:
            assert frame[col].min() >= start  # type: ignore[operator]
            assert frame[col].max() < end  # type: ignore[operator]
            assert frame[col].is_sorted()
    assert tx["transaction_id"].is_sorted()
    # amounts: purchases > 0, refunds > 0 and at most the purchase; refund after its purchase
    assert (tx["amount"] > Decimal(0)).all()
    assert set(tx["kind"].unique()) <= {"purchase", "refund"}
    assert (tx["refund_of"].is_null() == (tx["kind"] == "purchase")).all()
    refunds = _refunds(data).join(
        tx.select(
            pl.col("transaction_id").alias("refund_of"),
            pl.col("customer_id").alias("purchase_customer"),
            pl.col("occurred_at").alias("purchased_at"),
            pl.col("amount").alias("purchase_amount"),
            pl.col("kind").alias("purchase_kind"),
            pl.col("quantity").alias("purchase_quantity"),
        ),
        on="refund_of",
        how="left",
    )
    assert (refunds["purchase_kind"] == "purchase").all()
    assert (refunds["purchase_customer"] == refunds["customer_id"]).all()
    assert (refunds["occurred_at"] > refunds["purchased_at"]).all()
    assert (refunds["amount"] <= refunds["purchase_amount"]).all()
    assert (refunds["quantity"] <= refunds["purchase_quantity"]).all()
    assert refunds["refund_of"].n_unique() == refunds.height  # refunded at most once
    assert (tx["quantity"] >= 1).all()
    # customers: buyers joined at their first purchase; prospects never buy
    first = (
        _purchases(data)
        .group_by("customer_id")
        .agg(pl.col("occurred_at").min().alias("first"), pl.len().alias("purchases"))
    )
    joined = data.customers.join(first, on="customer_id", how="left").join(
        data.truth, on="customer_id"
    )
    buyers = joined.filter(~pl.col("is_prospect"))
    assert (buyers["first"] == buyers["joined_at"]).all()
    assert (buyers["purchases"] == buyers["repeat_purchases"] + 1).all()
    assert (
        joined.filter(pl.col("is_prospect"))["purchases"].null_count()
        == joined.filter(pl.col("is_prospect")).height
    )
    # referrers joined earlier; birthdays before joining
    refs = data.customers.join(
        data.customers.select(
            pl.col("customer_id").alias("referred_by"), pl.col("joined_at").alias("ref_joined")
        ),
        on="referred_by",
    )
    assert refs.height == data.customers["referred_by"].drop_nulls().len()
    assert (refs["ref_joined"] <= refs["joined_at"]).all()
    born = data.customers.drop_nulls("birthday")
    assert (born["birthday"] < born["joined_at"].dt.date()).all()
    # every event belongs to a known customer
    known = set(data.customers["customer_id"])
    for frame in (tx, data.feedback, data.interactions):
        assert set(frame["customer_id"].unique()) <= known
    # feedback: at least one score, in range
    fb = data.feedback
    assert (fb["nps"].is_not_null() | fb["csat"].is_not_null()).all()
    assert fb["nps"].drop_nulls().is_between(0, 10).all()
    assert fb["csat"].drop_nulls().is_between(1, 5).all()
    # dropout: the time of the last purchase, only for buyers no longer alive
    dead = data.truth.filter(pl.col("alive_at_end") == False)  # noqa: E712
    assert dead["dropped_out_at"].null_count() == 0
    assert data.truth.filter(pl.col("alive_at_end") == True)["dropped_out_at"].null_count() == (  # noqa: E712
        data.truth.filter(pl.col("alive_at_end") == True).height  # noqa: E712
    )


# --------------------------------------------------------------------------------------------
# shape, invariants, determinism
# --------------------------------------------------------------------------------------------


def test_invariants_on_a_large_population(large: SyntheticData) -> None:
    check_invariants(large)
    assert large.customers.height == N_LARGE
    assert large.truth.height == N_LARGE


@given(
    n=st.integers(0, 120),
    seed=st.integers(0, 2**32),
    refund_rate=st.floats(0, 1),
    prospect_share=st.floats(0, 1),
    feedback_rate=st.floats(0, 1),
    days=st.integers(1, 800),
)
def test_invariants_hold_for_any_parameters(
    n: int, seed: int, refund_rate: float, prospect_share: float, feedback_rate: float, days: int
) -> None:
    start = dt.datetime(2024, 3, 1, 7, 30, tzinfo=dt.UTC)
    params = SyntheticParams(
        refund_rate=refund_rate,
        prospect_share=prospect_share,
        feedback_rate=feedback_rate,
        r=2.0,  # busy buyers so that short windows still hold repeats and refunds
        alpha=20.0,
    )
    data = generate(n, seed=seed, start=start, end=start + dt.timedelta(days=days), params=params)
    check_invariants(data)


@given(
    n=st.integers(1, 80),
    seed=st.integers(0, 2**16),
    acquisition_fraction=st.floats(0, 1),
    hour=st.integers(0, 23),
    corr=st.floats(-0.99, 0.99),
    habit=st.floats(0, 1),
    zero_channel=st.booleans(),
    a=st.floats(0.05, 20),
    b=st.floats(0.05, 20),
    spend_q=st.floats(0.5, 20),
)
def test_invariants_hold_for_unusual_shapes(
    n: int,
    seed: int,
    acquisition_fraction: float,
    hour: int,
    corr: float,
    habit: float,
    zero_channel: bool,
    a: float,
    b: float,
    spend_q: float,
) -> None:
    """Degenerate mixes, all purchases in one hour, any copula sign, extreme Beta shapes."""
    hours = tuple(1.0 if h == hour else 0.0 for h in range(24))
    channels = {"store": 0.0 if zero_channel else 1.0, "web": 1.0}
    params = SyntheticParams(
        acquisition_fraction=acquisition_fraction,
        hour_weights=hours,
        satisfaction_dropout_corr=corr,
        satisfaction_feedback_corr=-corr,
        channel_habit=habit,
        channels=channels,
        a=a,
        b=b,
        spend_q=spend_q,
        r=1.5,
        alpha=10.0,
        feedback_rate=1.0,
    )
    data = generate(n, seed=seed, params=params)
    check_invariants(data)
    purchases = _purchases(data)
    if zero_channel:
        assert "store" not in set(purchases["channel"].unique())
    # purchase hours are the one allowed hour, except where the window's edges forbid it
    in_hour = (purchases["occurred_at"].dt.hour() == hour).mean()
    assert purchases.is_empty() or in_hour > 0.5  # type: ignore[operator]


def test_rows_convert_to_core_records(large: SyntheticData) -> None:
    """The frames hold values the core records accept (a sample of each)."""
    for row in large.customers.head(300).iter_rows(named=True):
        Customer(
            id=row["customer_id"],
            joined_at=row["joined_at"],
            birthday=row["birthday"],
            referred_by=row["referred_by"],
        )
    refunds = _refunds(large).head(100)
    for row in pl.concat([large.transactions.head(300), refunds]).iter_rows(named=True):
        Transaction(
            id=row["transaction_id"],
            customer_id=row["customer_id"],
            occurred_at=row["occurred_at"],
            amount=Money(amount=row["amount"], currency=row["currency"]),
            kind=row["kind"],
            refund_of=row["refund_of"],
            channel=row["channel"],
        )
    for row in large.feedback.head(300).iter_rows(named=True):
        Feedback(**row)
    for row in large.interactions.head(300).iter_rows(named=True):
        Interaction(**row)


def test_same_seed_same_data_other_seed_other_data() -> None:
    a, b, c = generate(800, seed=7), generate(800, seed=7), generate(800, seed=8)
    for name in ("customers", "transactions", "feedback", "interactions", "truth"):
        assert getattr(a, name).equals(getattr(b, name)), name
    assert not a.transactions.equals(c.transactions)


def test_parts_draw_from_independent_streams() -> None:
    """Changing the feedback or refund parameters leaves the other frames as they were."""
    base = generate(1500, seed=3)
    other = generate(
        1500, seed=3, params=SyntheticParams(feedback_rate=0.9, refund_rate=0.2, comment_share=1)
    )
    assert base.customers.equals(other.customers)
    assert base.truth.equals(other.truth)
    # purchases are the same; only the ids shift around the extra refunds
    assert _purchases(base).drop("transaction_id").equals(_purchases(other).drop("transaction_id"))
    assert base.interactions.equals(other.interactions)
    assert not base.feedback.equals(other.feedback)
    slim = generate(1500, seed=3, with_feedback=False, with_interactions=False)
    assert slim.transactions.equals(base.transactions)
    assert slim.feedback.is_empty()
    assert slim.interactions.is_empty()
    assert slim.feedback.schema == FEEDBACK_SCHEMA


def test_zero_customers_gives_empty_frames_with_the_schemas() -> None:
    data = generate(0, seed=1)
    check_invariants(data)
    assert data.transactions.is_empty()
    assert data.customers.is_empty()


def test_ids_sort_as_numbers() -> None:
    data = generate(1200, seed=2)
    ids = data.customers["customer_id"]
    assert ids.str.len_chars().n_unique() == 1
    assert ids.is_sorted()
    assert data.customers["joined_at"].is_sorted()


def test_custom_window_and_timezone() -> None:
    paris = dt.timezone(dt.timedelta(hours=2))
    start = dt.datetime(2024, 6, 1, 0, 0, tzinfo=paris)
    end = dt.datetime(2024, 9, 1, 0, 0, tzinfo=paris)
    data = generate(500, seed=4, start=start, end=end)
    assert data.start == start
    assert data.start.tzinfo == dt.UTC
    assert data.end == end
    check_invariants(data)


# --------------------------------------------------------------------------------------------
# refusing bad input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n_customers": -1}, "n_customers"),
        ({"n_customers": 2.5}, "n_customers"),
        ({"seed": -3}, "seed"),
        ({"seed": "x"}, "seed"),
        ({"start": dt.datetime(2024, 1, 1)}, "start"),
        ({"end": dt.datetime(2025, 1, 1)}, "end"),
        ({"end": dt.datetime(2023, 1, 1, 12, tzinfo=dt.UTC)}, "end"),
    ],
)
def test_generate_refuses_bad_arguments(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"n_customers": 10, "seed": 1} | kwargs
    with pytest.raises(InvalidValueError) as info:
        generate(**args)
    assert info.value.field == field
    assert info.value.owner == "generate"


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"r": 0}, "r", "> 0"),
        ({"alpha": -1.0}, "alpha", "> 0"),
        ({"b": float("nan")}, "b", "finite"),
        ({"refund_rate": 1.5}, "refund_rate", "probability"),
        ({"satisfaction_dropout_corr": 1.0}, "satisfaction_dropout_corr", "correlation"),
        ({"channels": {}}, "channels", "at least one"),
        ({"channels": {"store": -1.0, "web": 2.0}}, "channels", ">= 0"),
        ({"categories": [("a", 1.0), ("a", 2.0)]}, "categories", "unique"),
        ({"nps_weights": (1.0,) * 10}, "nps_weights", "exactly 11"),
        ({"csat_weights": (0.0,) * 5}, "csat_weights", "not all 0"),
        ({"hour_weights": (1.0,) * 23}, "hour_weights", "exactly 24"),
        ({"survey_mix": {"nps": 1.0, "ces": 1.0}}, "survey_mix", "'ces'"),
        ({"currency": "euro"}, "currency", "ISO 4217"),
        ({"mean_quantity": 0.5}, "mean_quantity", ">= 1"),
        ({"comments_promoter": ()}, "comments_promoter", "at least one"),
    ],
)
def test_params_refuse_bad_values(kwargs: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(InvalidValueError) as info:
        SyntheticParams(**kwargs)
    assert info.value.owner == "SyntheticParams"
    assert info.value.field == field
    assert words in str(info.value)


def test_params_accept_mappings_and_stay_hashable() -> None:
    params = SyntheticParams(channels={"web": 3, "store": 1})
    assert params.channels == (("web", 3.0), ("store", 1.0))
    assert hash(params) == hash(SyntheticParams(channels=[("web", 3), ("store", 1)]))


# --------------------------------------------------------------------------------------------
# recovering the true parameters
# --------------------------------------------------------------------------------------------


def _mean_expected_repeats(params: SyntheticParams, window_days: float) -> float:
    """E[X(T)] averaged over the uniform acquisition times (midpoint rule)."""
    acq = params.acquisition_fraction * window_days
    grid = (np.arange(400) + 0.5) / 400 * acq
    return float(np.mean([params.expected_repeat_purchases(window_days - s) for s in grid]))


def test_default_size_is_about_2_8_transactions_per_customer(large: SyntheticData) -> None:
    per_customer = large.transactions.height / N_LARGE
    assert 2.7 < per_customer < 2.9


def test_mean_repeat_purchases_match_bg_nbd(large: SyntheticData) -> None:
    params = large.params
    window = (large.end - large.start) / dt.timedelta(days=1)
    expected = _mean_expected_repeats(params, window)
    truth = large.truth.filter(~pl.col("is_prospect"))
    observed = truth["repeat_purchases"].mean()
    assert isinstance(observed, float)
    assert observed == pytest.approx(expected, rel=0.04)
    assert truth.height / N_LARGE == pytest.approx(1 - params.prospect_share, abs=0.005)


def test_latent_values_follow_their_distributions(large: SyntheticData) -> None:
    p = large.params
    t = large.truth.filter(~pl.col("is_prospect"))
    assert t["lambda_per_day"].mean() == pytest.approx(p.r / p.alpha, rel=0.03)
    assert t["p_dropout"].mean() == pytest.approx(p.a / (p.a + p.b), rel=0.03)
    assert t["p_dropout"].var() == pytest.approx(
        p.a * p.b / ((p.a + p.b) ** 2 * (p.a + p.b + 1)), rel=0.06
    )
    # nu ~ Gamma(q, rate v): mean q / v
    assert t["nu"].mean() == pytest.approx(p.spend_q / p.spend_v, rel=0.03)
    sat = large.truth["satisfaction"]
    assert sat.mean() == pytest.approx(0, abs=0.02)
    assert sat.std() == pytest.approx(1, abs=0.02)
    # unhappy customers drop out more: the copula correlation is negative in p
    corr = t.select(pl.corr("satisfaction", "p_dropout", method="spearman")).item()
    assert corr < -0.4


def _bgnbd_negll(log_params: np.ndarray[Any, Any], x: Any, tx: Any, T: Any) -> float:
    r, alpha, a, b = np.exp(log_params)
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = special.betaln(a, b + x) - special.betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(b + x - 1) - (r + x) * np.log(alpha + tx), -np.inf)
    return -float(np.sum(a1 + a2 + np.logaddexp(a3, a4)))


def test_bg_nbd_fit_on_the_data_recovers_the_true_parameters(large: SyntheticData) -> None:
    """A plain BG/NBD maximum-likelihood fit on the purchase log finds r, alpha, a, b."""
    summary = (
        _purchases(large)
        .group_by("customer_id")
        .agg(
            (pl.len() - 1).alias("x"),
            pl.col("occurred_at").min().alias("first"),
            pl.col("occurred_at").max().alias("last"),
        )
        .select(
            pl.col("x").cast(pl.Float64),
            ((pl.col("last") - pl.col("first")).dt.total_microseconds() / 86_400e6).alias("tx"),
            ((pl.lit(large.end) - pl.col("first")).dt.total_microseconds() / 86_400e6).alias("T"),
        )
    )
    x, tx, T = (summary[c].to_numpy() for c in ("x", "tx", "T"))
    fit = optimize.minimize(
        _bgnbd_negll, np.log([1.0, 50.0, 1.0, 1.0]), args=(x, tx, T), method="L-BFGS-B"
    )
    assert fit.success
    r, alpha, a, b = np.exp(fit.x)
    p = large.params
    assert r == pytest.approx(p.r, rel=0.12)
    assert alpha == pytest.approx(p.alpha, rel=0.15)
    assert a == pytest.approx(p.a, rel=0.2)
    assert b == pytest.approx(p.b, rel=0.25)
    assert r / alpha == pytest.approx(p.r / p.alpha, rel=0.05)


def test_gamma_gamma_fit_on_the_data_recovers_the_true_parameters(large: SyntheticData) -> None:
    per_customer = (
        _purchases(large)
        .group_by("customer_id")
        .agg(pl.len().alias("n"), pl.col("amount").cast(pl.Float64).mean().alias("m"))
    )
    n, m = per_customer["n"].to_numpy().astype(float), per_customer["m"].to_numpy()

    def negll(log_params: np.ndarray[Any, Any]) -> float:
        p, q, v = np.exp(log_params)
        px = p * n
        ll = (
            special.gammaln(px + q)
            - special.gammaln(px)
            - special.gammaln(q)
            + q * np.log(v)
            + (px - 1) * np.log(m)
            + px * np.log(n)
            - (px + q) * np.log(n * m + v)
        )
        return -float(ll.sum())

    # start near the usual magnitudes: from far away the float likelihood has a degenerate
    # direction (p -> inf, v -> 0) where gammaln loses all precision
    fit = optimize.minimize(negll, np.log([5.0, 3.0, 10.0]), method="L-BFGS-B")
    assert fit.success
    p, q, v = np.exp(fit.x)
    truth = large.params
    assert p == pytest.approx(truth.spend_p, rel=0.1)
    assert q == pytest.approx(truth.spend_q, rel=0.1)
    assert v == pytest.approx(truth.spend_v, rel=0.15)
    mean_amount = _purchases(large)["amount"].cast(pl.Float64).mean()
    assert mean_amount == pytest.approx(truth.mean_spend, rel=0.03)


def test_refunds_follow_the_configured_shares(large: SyntheticData) -> None:
    p = large.params
    refunds = _refunds(large).join(
        _purchases(large).select(
            pl.col("transaction_id").alias("refund_of"), pl.col("amount").alias("paid")
        ),
        on="refund_of",
    )
    share = refunds.height / _purchases(large).height
    # a few refunds fall after the window's end and are not seen
    assert p.refund_rate * 0.93 < share <= p.refund_rate * 1.04
    full = (refunds["amount"] == refunds["paid"]).mean()
    assert full == pytest.approx(p.full_refund_share, abs=0.03)
    delay = (
        refunds.join(
            _purchases(large).select(
                pl.col("transaction_id").alias("refund_of"), pl.col("occurred_at").alias("t0")
            ),
            on="refund_of",
        )
        .select((pl.col("occurred_at") - pl.col("t0")).dt.total_seconds() / 86400)
        .to_series()
    )
    assert delay.min() >= 1 / 24  # type: ignore[operator]
    assert delay.mean() == pytest.approx(p.refund_delay_days, rel=0.1)


def test_channel_and_category_mixes(large: SyntheticData) -> None:
    purchases = _purchases(large)
    for column, mix in (("channel", large.params.channels), ("category", large.params.categories)):
        shares = dict(purchases[column].value_counts(normalize=True, name="share").iter_rows())
        total = sum(w for _, w in mix)
        for name, weight in mix:
            assert shares[name] == pytest.approx(weight / total, abs=0.012), (column, name)


def test_hour_of_day_profile(large: SyntheticData) -> None:
    hours = _purchases(large)["occurred_at"].dt.hour().value_counts(normalize=True, name="s")
    shares = dict(hours.iter_rows())
    weights = np.asarray(large.params.hour_weights) / sum(large.params.hour_weights)
    for hour in range(24):
        assert shares.get(hour, 0.0) == pytest.approx(weights[hour], abs=0.006)


def test_feedback_mix_and_link_to_satisfaction(large: SyntheticData) -> None:
    p = large.params
    fb = large.feedback
    buyers = large.truth.filter(~pl.col("is_prospect")).height
    assert fb.height / buyers == pytest.approx(p.feedback_rate, rel=0.04)
    nps = fb["nps"].drop_nulls()
    groups = {
        "detractor": (nps <= 6).mean(),
        "passive": nps.is_between(7, 8).mean(),
        "promoter": (nps >= 9).mean(),
    }
    for name, share in p.nps_mix.items():
        assert groups[name] == pytest.approx(share, abs=0.015), name
    csat = fb["csat"].drop_nulls()
    csat_weights = np.asarray(p.csat_weights) / sum(p.csat_weights)
    for score in range(1, 6):
        assert (csat == score).mean() == pytest.approx(csat_weights[score - 1], abs=0.015)
    both = (fb["nps"].is_not_null() & fb["csat"].is_not_null()).mean()
    assert both == pytest.approx(dict(p.survey_mix)["both"], abs=0.02)
    assert fb["comment"].is_not_null().mean() == pytest.approx(p.comment_share, abs=0.02)
    # promoters are happier than detractors; unhappy customers drop out more
    joined = fb.join(large.truth, on="customer_id")
    sat_promoters = joined.filter(pl.col("nps") >= 9)["satisfaction"].mean()
    sat_detractors = joined.filter(pl.col("nps") <= 6)["satisfaction"].mean()
    assert sat_promoters > sat_detractors + 1  # type: ignore[operator]
    alive = (
        large.truth.filter(~pl.col("is_prospect"))
        .group_by(pl.col("satisfaction") > 0)
        .agg(pl.col("alive_at_end").mean())
    )
    happy = dict(alive.iter_rows())
    assert happy[True] > happy[False] + 0.05


def test_complaints_precede_churn(large: SyntheticData) -> None:
    complaints = (
        large.interactions.filter(pl.col("type") == "complaint")
        .group_by("customer_id")
        .agg(pl.len().alias("complaints"))
    )
    buyers = large.truth.filter(~pl.col("is_prospect")).join(
        complaints, on="customer_id", how="left"
    )
    rate = dict(
        buyers.group_by("alive_at_end").agg(pl.col("complaints").is_not_null().mean()).iter_rows()
    )
    assert rate[False] > 3 * rate[True]
    # most complaints of those who dropped out come after their last purchase
    late = (
        large.interactions.filter(pl.col("type") == "complaint")
        .join(large.truth.drop_nulls("dropped_out_at"), on="customer_id")
        .select((pl.col("occurred_at") > pl.col("dropped_out_at")).mean())
        .item()
    )
    assert late > 0.8


def test_interaction_types_and_visits_before_purchases(large: SyntheticData) -> None:
    types = set(large.interactions["type"].unique())
    assert types == {"visit", "email_open", "support_call", "complaint"}
    emails = large.interactions.filter(pl.col("type") == "email_open")
    assert set(emails["channel"].unique()) == {"email"}
    # about visits_per_purchase visits per purchase, plus browsing
    visits = large.interactions.filter(pl.col("type") == "visit").height
    assert visits > large.params.visits_per_purchase * _purchases(large).height * 0.9
    # prospects browse and read e-mails but never buy
    prospects = large.truth.filter(pl.col("is_prospect"))["customer_id"]
    seen = large.interactions.filter(pl.col("customer_id").is_in(prospects.implode()))
    assert seen.height > 0
    assert _purchases(large).filter(pl.col("customer_id").is_in(prospects.implode())).is_empty()


def test_referrals_favour_satisfied_customers(large: SyntheticData) -> None:
    refs = large.customers.drop_nulls("referred_by")
    assert refs.height / N_LARGE == pytest.approx(large.params.referral_share, abs=0.01)
    sat = refs.join(
        large.truth.select(pl.col("customer_id").alias("referred_by"), "satisfaction"),
        on="referred_by",
    )["satisfaction"].mean()
    # the better of two standard normals has mean 1/sqrt(pi) = 0.564
    assert sat == pytest.approx(1 / np.sqrt(np.pi), abs=0.06)


def test_expected_repeat_purchases_closed_form_and_quadrature_agree() -> None:
    for a in (0.6, 0.999999, 1.0, 1.7):
        params = SyntheticParams(a=a)
        closed = params.expected_repeat_purchases(365.0)
        from loyaltykit.datasets.synthetic import _expected_repeat_numeric

        numeric = _expected_repeat_numeric(params.r, params.alpha, a, params.b, 365.0)
        assert closed == pytest.approx(numeric, rel=1e-6)
    assert SyntheticParams().expected_repeat_purchases(0) == 0.0
    assert SyntheticParams().mean_dropout == pytest.approx(0.85 / 3.35)
    assert SyntheticParams(spend_q=0.9).mean_spend == float("inf")


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_write_round_trips(tmp_path: Any, fmt: str) -> None:
    data = generate(300, seed=12)
    paths = data.write(tmp_path / "out", format=fmt)  # type: ignore[arg-type]
    assert sorted(paths) == ["customers", "feedback", "interactions", "transactions", "truth"]
    if fmt == "parquet":
        back = pl.read_parquet(paths["transactions"])
        assert back.equals(data.transactions)
    else:
        back = pl.read_csv(paths["transactions"], schema=TRANSACTION_SCHEMA)
        assert back.equals(data.transactions)
        assert pl.read_csv(paths["feedback"], schema=FEEDBACK_SCHEMA).equals(data.feedback)
    with pytest.raises(InvalidValueError, match="'parquet' or 'csv'"):
        data.write(tmp_path, format="xlsx")  # type: ignore[arg-type]
