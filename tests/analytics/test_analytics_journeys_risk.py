"""Journeys (paths, transitions, funnel, touchpoints before outcomes), churn risk, profile."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from analytics_strategies import make_tx
from polars.testing import assert_frame_equal

from loyaltykit.analytics import (
    SIGNALS,
    RiskWeights,
    channel_transitions,
    churn_signals,
    customer_profile,
    journey_funnel,
    touchpoint_paths,
    touchpoints_before_outcomes,
    win_back_list,
)
from loyaltykit.analytics import summary as a_summary
from loyaltykit.datasets.synthetic import generate
from loyaltykit.errors import InvalidValueError
from loyaltykit.schema import FEEDBACK_SCHEMA, INTERACTION_SCHEMA

UTC = dt.UTC
AS_OF = dt.date(2024, 6, 30)


def _interactions(rows: list[tuple[str, str, str, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "occurred_at": [dt.datetime.fromisoformat(r[1]).replace(tzinfo=UTC) for r in rows],
            "channel": [r[2] for r in rows],
            "type": [r[3] for r in rows],
        },
        schema=INTERACTION_SCHEMA,
    )


def test_paths_and_transitions() -> None:
    inter = _interactions(
        [
            ("a", "2024-01-01T10:00", "email", "email_open"),
            ("a", "2024-01-02T10:00", "web", "visit"),
            ("a", "2024-01-03T10:00", "web", "visit"),
            ("a", "2024-01-04T10:00", "store", "visit"),
            ("b", "2024-01-01T10:00", "web", "visit"),
            ("b", "2024-01-05T10:00", "email", "email_open"),
        ]
    )
    paths = touchpoint_paths(inter)
    assert paths.select("customer_id", "touchpoints", "steps", "path").rows() == [
        ("a", 4, 3, "email > web > store"),
        ("b", 2, 2, "web > email"),
    ]
    full = touchpoint_paths(inter, collapse_repeats=False, by="type")
    assert full["path"][0] == "email_open > visit > visit > visit"
    early = touchpoint_paths(inter, as_of=dt.date(2024, 1, 2))
    assert early["path"].to_list() == ["email > web", "web"]
    trans = channel_transitions(inter)
    assert trans.rows() == [
        ("email", "web", 1, 1.0),
        ("web", "email", 1, 1 / 3),
        ("web", "store", 1, 1 / 3),
        ("web", "web", 1, 1 / 3),
    ]
    lazy = channel_transitions(inter.lazy())
    assert_frame_equal(lazy.collect(), trans)  # type: ignore[union-attr]


def test_funnel() -> None:
    tx = make_tx(
        [
            ("a", "2024-01-10", "1.00", "web"),
            ("a", "2024-01-20", "1.00", "web"),
            ("a", "2024-02-01", "1.00", "web"),
            ("a", "2024-02-10", "1.00", "web"),
            ("b", "2024-01-05", "1.00", "web"),
            ("b", "2024-03-05", "1.00", "web"),
            ("c", "2024-01-05", "1.00", "web"),
        ]
    )
    inter = _interactions(
        [
            ("a", "2024-01-01T10:00", "web", "visit"),
            ("d", "2024-01-01T10:00", "web", "visit"),
            ("e", "2024-07-01T10:00", "web", "visit"),  # after as_of
        ]
    )
    out = journey_funnel(inter, tx, as_of=AS_OF)
    assert out["stage"].to_list() == ["first_touch", "first_purchase", "repeat", "loyal"]
    assert out["customers"].to_list() == [4, 3, 2, 1]
    assert out["conversion"].to_list() == pytest.approx([1.0, 0.75, 2 / 3, 0.5])
    assert out["drop_off"].to_list() == pytest.approx([0.0, 0.25, 1 / 3, 0.5])
    assert out["median_days_from_previous"].to_list() == [None, 0.0, 35.0, 21.0]
    with pytest.raises(InvalidValueError, match="loyal_min_purchase_days"):
        journey_funnel(inter, tx, as_of=AS_OF, loyal_min_purchase_days=2)


def test_touchpoints_before_outcomes() -> None:
    tx = make_tx(
        [
            # repeat buyer: visits before each repeat purchase
            ("a", "2024-05-01", "1.00", "web"),
            ("a", "2024-05-20", "1.00", "web"),
            ("a", "2024-06-20", "1.00", "web"),
            # lapsed: complaint right after the last purchase
            ("b", "2024-01-01", "1.00", "web"),
            ("b", "2024-01-11", "1.00", "web"),
        ]
    )
    inter = _interactions(
        [
            ("a", "2024-05-18T10:00", "web", "visit"),
            ("a", "2024-06-15T10:00", "web", "visit"),
            ("b", "2024-01-13T10:00", "phone", "complaint"),
            ("b", "2024-01-05T10:00", "web", "visit"),
        ]
    )
    out = touchpoints_before_outcomes(inter, tx, as_of=AS_OF)
    rows = {r["touchpoint"]: r for r in out.iter_rows(named=True)}
    assert rows["complaint"]["before_churn"] == 1.0
    assert rows["complaint"]["before_repeat"] == 0.0
    assert rows["visit"]["before_repeat"] == 1.0  # b's visit precedes its repeat too
    assert rows["visit"]["before_churn"] == 0.0
    assert rows["visit"]["repeat_events"] == 3
    assert rows["visit"]["churned_customers"] == 1
    assert out["touchpoint"][0] == "complaint"  # highest lift first (infinite)


def test_churn_signals_by_hand() -> None:
    # weekly buyer for a year, then nothing for 60 days
    days = [dt.date(2023, 3, 1) + dt.timedelta(days=7 * i) for i in range(52)]
    tx = make_tx([("a", d.isoformat(), "10.00", "web") for d in days])
    as_of = days[-1] + dt.timedelta(days=60)
    feedback = pl.DataFrame(
        {
            "customer_id": ["a"],
            "answered_at": [dt.datetime(2024, 2, 1, tzinfo=UTC)],
            "nps": [3],
            "csat": [None],
            "comment": [None],
            "channel": [None],
        },
        schema=FEEDBACK_SCHEMA,
    )
    inter = _interactions([("a", (as_of - dt.timedelta(days=5)).isoformat(), "phone", "complaint")])
    row = churn_signals(tx, as_of=as_of, feedback=feedback, interactions=inter).row(0, named=True)
    # the recent window is the 90 days ending on as_of; the baseline runs from the first purchase
    window_start = as_of - dt.timedelta(days=89)
    recent_rate = sum(1 for d in days if d >= window_start) / 90
    base_rate = sum(1 for d in days if d < window_start) / (window_start - days[0]).days
    assert row["frequency_drop"] == pytest.approx(1 - recent_rate / base_rate)
    assert row["spend_drop"] == pytest.approx(row["frequency_drop"], rel=1e-3)
    assert row["gap_growth"] == pytest.approx((60 / 7 - 1) / 2 if 60 / 7 < 3 else 1.0)
    assert row["detractor"] == 1.0
    assert row["complaints"] == 0.5
    w = RiskWeights()
    expected = (
        w.frequency_drop * row["frequency_drop"]
        + w.spend_drop * row["spend_drop"]
        + w.gap_growth * row["gap_growth"]
        + w.detractor
        + w.complaints * 0.5
    ) / 1.0
    assert row["risk_score"] == pytest.approx(expected)
    quiet = churn_signals(tx, as_of=days[-1]).row(0, named=True)
    assert (quiet["gap_growth"], quiet["detractor"], quiet["complaints"]) == (0.0, 0.0, 0.0)
    assert quiet["frequency_drop"] == pytest.approx(0.0, abs=0.1)
    with pytest.raises(InvalidValueError):
        RiskWeights(gap_growth=-1)
    with pytest.raises(InvalidValueError):
        churn_signals(tx, as_of=as_of, recent_days=0)


def test_win_back_list_ranks_revenue_at_risk() -> None:
    signals = pl.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "revenue": [100.0, 1000.0, 50.0, 10.0],
            "risk_score": [0.9, 0.5, 0.95, 0.1],
        }
    )
    out = win_back_list(signals)
    assert out["customer_id"].to_list() == ["b", "a", "c"]
    assert out["rank"].to_list() == [1, 2, 3]
    assert out["revenue_at_risk"].to_list() == pytest.approx([500.0, 90.0, 47.5])
    assert win_back_list(signals, limit=1)["customer_id"].to_list() == ["b"]
    clv = signals.with_columns(pl.Series("clv", [10.0, 1.0, 1000.0, 0.0]))
    assert win_back_list(clv, value="clv")["customer_id"][0] == "c"
    with pytest.raises(InvalidValueError):
        win_back_list(signals, min_score=2)


@pytest.fixture(scope="module")
def synthetic() -> object:
    return generate(3000, seed=11)


def test_profile_on_synthetic_data(synthetic: object) -> None:
    data = synthetic
    as_of = dt.date(2024, 12, 31)
    clv = pl.DataFrame(
        {
            "customer_id": data.customers["customer_id"],  # type: ignore[attr-defined]
            "predicted_clv_tier": ["gold"] * data.customers.height,  # type: ignore[attr-defined]
        }
    )
    profile = customer_profile(
        data.transactions,  # type: ignore[attr-defined]
        as_of=as_of,
        feedback=data.feedback,  # type: ignore[attr-defined]
        interactions=data.interactions,  # type: ignore[attr-defined]
        customers=data.customers,  # type: ignore[attr-defined]
        extra=[clv],
    )
    assert profile.height == data.customers.height  # type: ignore[attr-defined]
    assert profile["customer_id"].is_unique().all()
    for col in ("segment", "stage", "value_tier", "latest_nps", "path", "risk_score", *SIGNALS):
        assert col in profile.columns
    assert profile.columns[-1] == "predicted_clv_tier"
    buyers = profile.filter(pl.col("stage") != "prospect")
    assert buyers["segment"].null_count() == 0
    assert buyers["risk_score"].is_between(0, 1).all()
    # the profile's BTYD columns are those of summary(), and its signals those of churn_signals()
    btyd = a_summary(data.transactions, observation_end=as_of, time_unit="D")  # type: ignore[attr-defined]
    assert_frame_equal(
        buyers.select("customer_id", "frequency", "recency", "T", "monetary_value"),
        btyd,
        rel_tol=1e-12,
    )
    signals = churn_signals(
        data.transactions,  # type: ignore[attr-defined]
        as_of=as_of,
        feedback=data.feedback,  # type: ignore[attr-defined]
        interactions=data.interactions,  # type: ignore[attr-defined]
    )
    assert_frame_equal(
        buyers.select("customer_id", *SIGNALS, "risk_score"),
        signals.select("customer_id", *SIGNALS, "risk_score"),
    )
    prospects = profile.filter(pl.col("stage") == "prospect")
    assert prospects["revenue"].null_count() == prospects.height
    lazy = customer_profile(data.transactions.lazy(), as_of=as_of, extra=[clv.lazy()])  # type: ignore[attr-defined]
    assert isinstance(lazy, pl.LazyFrame)
    eager = customer_profile(data.transactions, as_of=as_of, extra=[clv])  # type: ignore[attr-defined]
    assert_frame_equal(lazy.collect(), eager)
    with pytest.raises(InvalidValueError, match="repeats profile column"):
        customer_profile(
            data.transactions,  # type: ignore[attr-defined]
            as_of=as_of,
            extra=[clv.rename({"predicted_clv_tier": "segment"})],
        )
