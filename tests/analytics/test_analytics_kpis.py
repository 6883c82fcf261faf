"""Cohort retention, period KPIs, KPI summary, timing, channels and value tiers."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from analytics_strategies import END, make_tx, transactions
from hypothesis import given
from polars.testing import assert_frame_equal

from loyaltykit.analytics import (
    channel_summary,
    cohort_retention,
    customer_activity,
    inter_purchase_times,
    kpi_summary,
    period_kpis,
    purchase_patterns,
    retention_matrix,
    value_tiers,
)
from loyaltykit.datasets import load_cdnow
from loyaltykit.errors import InvalidValueError, ModelInputError


def _tx() -> pl.DataFrame:
    return make_tx(
        [
            ("a", "2024-01-05T09:00", "10.00", "web"),
            ("a", "2024-02-05T09:00", "20.00", "store"),
            ("a", "2024-03-05T18:30", "30.00", "store"),
            ("b", "2024-01-20T09:00", "5.00", "store"),
            ("b", "2024-01-21T09:00", "5.00", "store"),
            ("c", "2024-02-10T12:00", "40.00", "web"),
            ("c", "2024-04-10T12:00", "8.00", None),
            ("d", "2024-02-11T12:00", "99.00", "web"),
        ],
        refunds=[("7", "2024-02-12T00:00", "99.00")],  # d's only purchase refunded
    )


def test_cohort_retention_by_hand() -> None:
    out = cohort_retention(_tx(), as_of=dt.date(2024, 4, 30))
    assert out.rows() == [
        (dt.date(2024, 1, 1), 0, 2, 2, 1.0, 20.0),
        (dt.date(2024, 1, 1), 1, 2, 1, 0.5, 20.0),
        (dt.date(2024, 1, 1), 2, 2, 1, 0.5, 30.0),
        (dt.date(2024, 2, 1), 0, 1, 1, 1.0, 40.0),
        (dt.date(2024, 2, 1), 2, 1, 1, 1.0, 8.0),
    ]
    matrix = retention_matrix(out)
    assert matrix.columns == ["cohort", "cohort_size", "0", "1", "2"]
    assert matrix.row(1) == (dt.date(2024, 2, 1), 1, 1.0, None, 1.0)
    weekly = cohort_retention(_tx(), as_of=dt.date(2024, 4, 30), period="W")
    assert weekly.filter(pl.col("periods_since") == 0)["cohort_size"].sum() == 3
    with pytest.raises(InvalidValueError, match="period"):
        cohort_retention(_tx(), as_of=dt.date(2024, 4, 30), period="H")


def test_period_kpis_by_hand() -> None:
    out = period_kpis(_tx(), as_of=dt.date(2024, 4, 30))
    rows = {r["period"]: r for r in out.iter_rows(named=True)}
    jan, feb, mar, apr = (rows[dt.date(2024, m, 1)] for m in (1, 2, 3, 4))
    assert (jan["active_customers"], jan["new_customers"], jan["orders"]) == (2, 2, 3)
    assert jan["retention_rate"] is None
    assert (feb["active_customers"], feb["new_customers"], feb["returning_customers"]) == (2, 1, 1)
    assert feb["retained"] == 1
    assert feb["retention_rate"] == pytest.approx(0.5)
    assert feb["churn_rate"] == pytest.approx(0.5)
    assert feb["revenue"] == pytest.approx(60.0)
    assert feb["average_order_value"] == pytest.approx(30.0)
    assert mar["retention_rate"] == pytest.approx(0.5)
    assert apr["retained"] == 0
    assert apr["retention_rate"] == pytest.approx(0.0)


def test_kpi_summary_and_gaps() -> None:
    row = kpi_summary(_tx(), as_of=dt.date(2024, 4, 30)).row(0, named=True)
    assert row["customers"] == 3
    assert row["orders"] == 7
    assert row["revenue"] == pytest.approx(118.0)
    assert row["average_order_value"] == pytest.approx(118 / 7)
    assert row["repeat_purchase_rate"] == pytest.approx(1.0)
    gaps = inter_purchase_times(_tx(), as_of=dt.date(2024, 4, 30))
    assert gaps.rows() == [
        ("a", 2, dt.date(2024, 2, 5), 31),
        ("a", 3, dt.date(2024, 3, 5), 29),
        ("b", 2, dt.date(2024, 1, 21), 1),
        ("c", 2, dt.date(2024, 4, 10), 60),
    ]
    assert row["median_inter_purchase_days"] == pytest.approx(30.0)


def test_patterns_and_channels() -> None:
    pat = purchase_patterns(_tx(), as_of=dt.date(2024, 4, 30))
    assert pat["orders"].sum() == 7
    assert pat["share_of_orders"].sum() == pytest.approx(1.0)
    friday = pat.filter((pl.col("weekday") == 5) & (pl.col("hour") == 9))  # 2024-01-05 was a Friday
    assert friday["weekday_name"].to_list() == ["Fri"]
    ch = channel_summary(_tx(), as_of=dt.date(2024, 4, 30))
    rows = {r["channel"]: r for r in ch.iter_rows(named=True)}
    assert set(rows) == {"web", "store", "(unknown)"}
    assert rows["store"]["customers"] == 2
    assert rows["store"]["revenue"] == pytest.approx(60.0)
    assert rows["web"]["acquired"] == 2  # a and c; d's purchase was refunded
    assert rows["store"]["acquired"] == 1
    assert rows["web"]["acquired_repeat_rate"] == pytest.approx(1.0)
    assert ch["revenue_share"].sum() == pytest.approx(1.0)
    with pytest.raises(ModelInputError, match="sales channel"):
        channel_summary(_tx().drop("channel"), as_of=dt.date(2024, 4, 30))


def test_value_tiers() -> None:
    act = customer_activity(load_cdnow(), as_of=dt.date(1998, 6, 30))
    q = value_tiers(act)
    shares = q["value_tier"].value_counts(normalize=True)
    assert shares["proportion"].min() > 0.3  # type: ignore[operator]
    own = value_tiers(act, thresholds={"gold": 500, "silver": 100, "bronze": 0})
    check = own.select(
        ((pl.col("revenue") >= 500) == (pl.col("value_tier") == "gold")).all().alias("gold"),
        ((pl.col("revenue") < 100) == (pl.col("value_tier") == "bronze")).all().alias("bronze"),
    )
    assert check.row(0) == (True, True)
    custom = value_tiers(act, labels=("low", "top"), quantiles=(0.9,), tier="t")
    assert custom["t"].value_counts().filter(pl.col("t") == "top")["count"].item() == pytest.approx(
        0.1 * act.height, rel=0.02
    )
    lazy = value_tiers(act.lazy(), thresholds={"x": 0})
    assert isinstance(lazy, pl.LazyFrame)
    for bad in (
        {"quantiles": (0.5, 0.2), "labels": ("a", "b", "c")},
        {"labels": ("a",)},
        {"thresholds": {}},
    ):
        with pytest.raises(InvalidValueError):
            value_tiers(act, **bad)  # type: ignore[arg-type]


def test_lazy_equals_eager_on_cdnow() -> None:
    tx = load_cdnow()
    a = dt.date(1998, 6, 30)
    for fn in (cohort_retention, period_kpis, kpi_summary, inter_purchase_times):
        eager = fn(tx, as_of=a)
        lazy = fn(tx.lazy(), as_of=a)
        assert isinstance(lazy, pl.LazyFrame)
        assert_frame_equal(lazy.collect(), eager)
        assert_frame_equal(lazy.collect(engine="streaming"), eager)


@given(transactions())
def test_cohort_properties(tx: pl.DataFrame) -> None:
    out = cohort_retention(tx, as_of=END, period="W")
    assert (out["retention"] <= 1).all()
    assert (out.filter(pl.col("periods_since") == 0)["retention"] == 1).all()
    act = customer_activity(tx, as_of=END)
    assert out.filter(pl.col("periods_since") == 0)["cohort_size"].sum() == act.height
