"""customer_activity and lifecycle stages."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from analytics_strategies import END, make_tx, transactions
from hypothesis import given
from polars.testing import assert_frame_equal

from loyaltykit.analytics import (
    LIFECYCLE_STAGES,
    LifecycleThresholds,
    customer_activity,
    lifecycle,
)
from loyaltykit.datasets import load_cdnow
from loyaltykit.errors import InvalidValueError

AS_OF = dt.date(2024, 6, 30)


def _stages() -> pl.DataFrame:
    tx = make_tx(
        [
            # steady monthly buyer, 6 purchase days over 6 months, last 10 days ago: loyal
            ("loyal", "2023-12-20", "10.00", "web"),
            *[("loyal", f"2024-0{m}-20", "10.00", "web") for m in range(2, 7)],
            # monthly buyer silent for 60 days (> 1.5 x 30): at risk
            *[("risky", f"2024-0{m}-01", "10.00", "web") for m in range(1, 5)],
            # monthly buyer silent for 120 days (> 3 x 30): lapsed
            ("gone", "2024-01-01", "10.00", "web"),
            ("gone", "2024-01-31", "10.00", "web"),
            ("gone", "2024-03-01", "10.00", "web"),
            # one purchase 10 days ago: new
            ("fresh", "2024-06-20", "10.00", "web"),
            # bought weekly, went silent 4 months, came back 5 days ago: reactivated
            ("back", "2024-01-01", "10.00", "web"),
            ("back", "2024-01-08", "10.00", "web"),
            ("back", "2024-01-15", "10.00", "web"),
            ("back", "2024-06-25", "10.00", "web"),
            # two purchases 20 days apart, last one 5 days ago: active
            ("steady", "2024-06-05", "10.00", "web"),
            ("steady", "2024-06-25", "10.00", "web"),
            # fully refunded only purchase: not a buyer
            ("refunded", "2024-06-01", "10.00", "web"),
        ],
        refunds=[("20", "2024-06-02T00:00", "10.00")],
    )
    customers = pl.DataFrame({"customer_id": ["loyal", "prospect", "refunded"]})
    return lifecycle(tx, as_of=AS_OF, customers=customers)


def test_stages_by_hand() -> None:
    out = _stages()
    stages = dict(zip(out["customer_id"], out["stage"], strict=True))
    assert stages == {
        "back": "reactivated",
        "fresh": "new",
        "gone": "lapsed",
        "loyal": "loyal",
        "prospect": "prospect",
        "refunded": "prospect",
        "risky": "at_risk",
        "steady": "active",
    }
    assert out.schema["stage"] == pl.Enum(LIFECYCLE_STAGES)
    fresh = out.filter(pl.col("customer_id") == "fresh").row(0, named=True)
    # the one-day buyer is measured against the population's median rhythm
    assert fresh["rhythm_days"] == pytest.approx(
        out.filter(pl.col("mean_gap_days").is_not_null())["mean_gap_days"].median()
    )


def test_activity_columns() -> None:
    tx = make_tx(
        [
            ("a", "2024-01-01T10:00", "10.00", "web"),
            ("a", "2024-01-01T12:00", "5.00", "web"),
            ("a", "2024-01-11T10:00", "20.00", "web"),
            ("a", "2024-01-31T10:00", "7.00", "web"),
        ],
        refunds=[("1", "2024-01-02T00:00", "5.00")],
    )
    row = customer_activity(tx, as_of=dt.date(2024, 2, 10)).row(0, named=True)
    assert row == {
        "customer_id": "a",
        "first_purchase": dt.date(2024, 1, 1),
        "last_purchase": dt.date(2024, 1, 31),
        "previous_purchase": dt.date(2024, 1, 11),
        "purchase_days": 3,
        "orders": 3,  # the fully refunded purchase does not count
        "revenue": pytest.approx(37),
        "tenure_days": 40,
        "days_since_last": 10,
        "mean_gap_days": 15.0,
        "last_gap_days": 20,
    }


def test_thresholds_are_configurable_and_checked() -> None:
    tx = make_tx([("a", "2024-01-01", "1.00", "web"), ("a", "2024-01-31", "1.00", "web")])
    assert lifecycle(tx, as_of=dt.date(2024, 3, 20))["stage"].item() == "at_risk"  # 49 > 1.5 x 30
    lenient = LifecycleThresholds(at_risk_after=2.0, lapsed_after=4.0)
    assert lifecycle(tx, as_of=dt.date(2024, 3, 20), thresholds=lenient)["stage"].item() == "active"
    with pytest.raises(InvalidValueError, match="greater than at_risk_after"):
        LifecycleThresholds(at_risk_after=3.0, lapsed_after=2.0)
    with pytest.raises(InvalidValueError, match="> 0"):
        LifecycleThresholds(min_rhythm_days=0)


def test_as_of_any_date_and_joined_at() -> None:
    tx = load_cdnow(sample=True)
    early = lifecycle(tx, as_of=dt.date(1997, 1, 15))
    assert set(early["stage"].unique()) <= {"new", "active", "at_risk", "reactivated"}
    customers = pl.DataFrame(
        {
            "customer_id": ["zz1", "zz2"],
            "joined_at": [
                dt.datetime(1997, 1, 1, tzinfo=dt.UTC),
                dt.datetime(1997, 2, 1, tzinfo=dt.UTC),
            ],
        }
    )
    with_prospects = lifecycle(tx, as_of=dt.date(1997, 1, 15), customers=customers)
    assert with_prospects.filter(pl.col("stage") == "prospect")["customer_id"].to_list() == ["zz1"]


def test_lazy_and_streaming_agree() -> None:
    tx = load_cdnow()
    eager = lifecycle(tx, as_of=dt.date(1998, 6, 30))
    lazy = lifecycle(tx.lazy(), as_of=dt.date(1998, 6, 30))
    assert isinstance(lazy, pl.LazyFrame)
    assert_frame_equal(lazy.collect(), eager)
    assert_frame_equal(lazy.collect(engine="streaming"), eager)


@given(transactions())
def test_lifecycle_properties(tx: pl.DataFrame) -> None:
    out = lifecycle(tx, as_of=END)
    act = customer_activity(tx, as_of=END)
    assert out["customer_id"].to_list() == act["customer_id"].to_list()
    assert out["stage"].null_count() == 0
    assert (out.filter(pl.col("stage") == "new")["purchase_days"] == 1).all()
    assert (act["days_since_last"] <= act["tenure_days"]).all()
    assert (act["orders"] >= act["purchase_days"]).all()
