"""summary() and calibration_and_holdout(): published values, lifetimes, refunds, properties."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from analytics_strategies import END, transactions
from hypothesis import example, given
from polars.testing import assert_frame_equal

import loyaltykit
from loyaltykit.analytics import calibration_and_holdout, purchase_periods, summary
from loyaltykit.datasets import load_cdnow, load_cdnow_summary
from loyaltykit.errors import InvalidValueError, LoyaltyKitError, ModelInputError
from loyaltykit.schema import TRANSACTION_SCHEMA

FIXTURES = Path(__file__).parents[1] / "fixtures" / "analytics"
UTC = dt.UTC


def _tx(rows: list[tuple[str, str, str, str, str, str | None]]) -> pl.DataFrame:
    """Frame from (transaction_id, customer_id, ISO time, amount, kind, refund_of) rows."""
    return pl.DataFrame(
        {
            "transaction_id": [r[0] for r in rows],
            "customer_id": [r[1] for r in rows],
            "occurred_at": [dt.datetime.fromisoformat(r[2]).replace(tzinfo=UTC) for r in rows],
            "amount": [Decimal(r[3]) for r in rows],
            "kind": [r[4] for r in rows],
            "refund_of": [r[5] for r in rows],
        },
        schema_overrides={
            "occurred_at": TRANSACTION_SCHEMA["occurred_at"],
            "amount": TRANSACTION_SCHEMA["amount"],
            "refund_of": pl.String,
        },
    )


# ---------------------------------------------------------------------------------------------
# reference data
# ---------------------------------------------------------------------------------------------


def test_reproduces_published_cdnow_calibration_summary() -> None:
    ours = summary(
        load_cdnow(sample=True),
        observation_end=dt.date(1997, 9, 30),
        time_unit="W",
        customer_id="sample_id",
    )
    published = load_cdnow_summary(with_monetary=True)
    assert ours.height == published.height == 2357
    joined = published.join(ours, left_on="customer_id", right_on="sample_id", suffix="_ours")
    assert joined.height == 2357
    # frequency exactly; recency and T as published (rounded to 2 decimals, half away from 0)
    assert (joined["frequency"] == joined["frequency_ours"]).all()
    for col in ("recency", "T"):
        rounded = joined[f"{col}_ours"].round(2, mode="half_away_from_zero")
        assert (joined[col] == rounded).all(), col
    # zbar is published rounded half up to cents; the exact mean is within half a cent
    diff = (joined["monetary_value"] - joined["monetary_value_ours"]).abs()
    assert diff.max() <= 0.005 + 1e-9  # type: ignore[operator]
    cents = (joined["monetary_value_ours"] * 100 + 0.5 + 1e-9).floor() / 100
    assert ((cents - joined["monetary_value"]).abs() < 1e-9).all()


def test_published_summary_without_amounts_and_top_level_name() -> None:
    ours = loyaltykit.summary(
        load_cdnow(sample=True),
        observation_end=dt.date(1997, 9, 30),
        time_unit="W",
        customer_id="sample_id",
        amount=None,
    )
    assert ours.columns == ["sample_id", "frequency", "recency", "T"]
    published = load_cdnow_summary()
    assert (ours["frequency"] == published["frequency"]).all()
    assert (ours["T"].round(2, mode="half_away_from_zero") == published["T"]).all()


def test_agrees_with_lifetimes_on_full_cdnow() -> None:
    # produced by tests/fixtures/analytics/make_lifetimes_fixtures.py (lifetimes 0.11.3, freq="D")
    reference = pl.read_parquet(FIXTURES / "cdnow_lifetimes_summary.parquet")
    ours = summary(load_cdnow(), observation_end=dt.date(1998, 6, 30))
    assert ours["customer_id"].to_list() == reference["customer_id"].to_list()
    assert_frame_equal(
        ours.drop("monetary_value"),
        reference.drop("monetary_value").cast(
            {"frequency": pl.Int64, "recency": pl.Float64, "T": pl.Float64}
        ),
    )
    assert_frame_equal(
        ours.select("monetary_value"), reference.select("monetary_value"), rel_tol=1e-12
    )
    weeks = summary(load_cdnow(), observation_end=dt.date(1998, 6, 30), time_unit="W")
    assert_frame_equal(
        weeks.select("recency", "T"), ours.select(pl.col("recency", "T") / 7), rel_tol=1e-12
    )


def test_calibration_and_holdout_agrees_with_lifetimes() -> None:
    reference = pl.read_parquet(FIXTURES / "cdnow_lifetimes_cal_holdout.parquet")
    tx = load_cdnow()
    ours = loyaltykit.calibration_and_holdout(
        tx, calibration_end=dt.date(1997, 9, 30), observation_end=dt.date(1998, 6, 30)
    )
    assert ours.columns == [
        "customer_id",
        "frequency_cal",
        "recency_cal",
        "T_cal",
        "monetary_value_cal",
        "frequency_holdout",
        "monetary_value_holdout",
        "duration_holdout",
    ]
    assert ours["customer_id"].to_list() == reference["customer_id"].to_list()
    exact = ["frequency_cal", "recency_cal", "T_cal", "frequency_holdout", "duration_holdout"]
    assert_frame_equal(
        ours.select(exact), reference.select(exact), check_dtypes=False, check_exact=True
    )
    assert_frame_equal(
        ours.select("monetary_value_cal"),
        reference.select("monetary_value_cal"),
        rel_tol=1e-12,
    )
    # lifetimes averages holdout *transactions*, we average holdout *days*: both are the
    # holdout revenue divided by their count
    holdout = (
        tx.filter(pl.col("occurred_at") >= dt.datetime(1997, 10, 1, tzinfo=UTC))
        .group_by("customer_id")
        .agg(pl.col("amount").sum().cast(pl.Float64).alias("revenue"), pl.len().alias("n"))
    )
    check = (
        ours.join(reference, on="customer_id", suffix="_ref")
        .join(holdout, on="customer_id", how="left")
        .with_columns(pl.col("revenue", "n").fill_null(0))
    )
    ours_revenue = check["monetary_value_holdout"] * check["frequency_holdout"]
    ref_revenue = check["monetary_value_holdout_ref"] * check["n"]
    assert ((ours_revenue - check["revenue"]).abs() < 1e-6).all()
    assert ((ref_revenue - check["revenue"]).abs() < 1e-6).all()


# ---------------------------------------------------------------------------------------------
# definitions on small hand-made data
# ---------------------------------------------------------------------------------------------


def test_same_day_purchases_count_once_and_sum() -> None:
    tx = _tx(
        [
            ("a", "c1", "2024-01-01T09:00", "10.00", "purchase", None),
            ("b", "c1", "2024-01-01T18:00", "5.00", "purchase", None),
            ("c", "c1", "2024-01-08T12:00", "20.00", "purchase", None),
            ("d", "c1", "2024-01-08T13:00", "4.00", "purchase", None),
            ("e", "c1", "2024-01-15T00:00", "30.00", "purchase", None),
        ]
    )
    out = summary(tx, observation_end=dt.date(2024, 1, 29))
    assert out.row(0, named=True) == {
        "customer_id": "c1",
        "frequency": 2,
        "recency": 14.0,
        "T": 28.0,
        "monetary_value": 27.0,  # (24 + 30) / 2; the first day (15.00) is not a repeat
    }
    weekly = summary(tx, observation_end=dt.date(2024, 1, 29), period="W", time_unit="W")
    assert weekly.row(0) == ("c1", 2, 2.0, 4.0, 27.0)
    hourly = summary(tx, observation_end=dt.date(2024, 1, 29), period="H", time_unit="H")
    assert hourly.row(0) == ("c1", 4, 14 * 24 - 9.0, 28 * 24 - 9.0, (5 + 20 + 4 + 30) / 4)


def test_refunds_are_netted_against_their_purchase() -> None:
    tx = _tx(
        [
            ("p1", "c1", "2024-01-01T10:00", "10.00", "purchase", None),
            ("p2", "c1", "2024-01-05T10:00", "40.00", "purchase", None),
            ("r2", "c1", "2024-01-06T10:00", "15.00", "refund", "p2"),  # partial
            ("p3", "c1", "2024-01-09T10:00", "25.00", "purchase", None),
            ("r3", "c1", "2024-01-10T10:00", "25.00", "refund", "p3"),  # full: p3 does not count
            ("p4", "c2", "2024-01-02T10:00", "30.00", "purchase", None),
            ("r4", "c2", "2024-01-20T10:00", "30.00", "refund", "p4"),  # after the end: ignored
            ("p5", "c3", "2024-01-03T10:00", "0.00", "purchase", None),  # free order still counts
            ("p6", "c3", "2024-01-04T10:00", "8.00", "purchase", None),
        ]
    )
    out = summary(tx, observation_end=dt.date(2024, 1, 15))
    assert out.rows() == [
        ("c1", 1, 4.0, 14.0, 25.0),
        ("c2", 0, 0.0, 13.0, 0.0),
        ("c3", 1, 1.0, 12.0, 8.0),
    ]
    later = summary(tx, observation_end=dt.date(2024, 1, 31))
    assert later["customer_id"].to_list() == ["c1", "c3"]  # c2's only purchase was refunded
    # without a kind column, every row is a purchase
    plain = summary(tx.drop("kind"), observation_end=dt.date(2024, 1, 15))
    assert plain.filter(pl.col("customer_id") == "c1")["frequency"].item() == 4
    ignored = summary(tx, observation_end=dt.date(2024, 1, 15), kind=None)
    assert_frame_equal(ignored, plain)
    # without amounts, any refund cancels its purchase
    counts = summary(tx, observation_end=dt.date(2024, 1, 15), amount=None)
    assert counts.rows() == [("c1", 0, 0.0, 14.0), ("c2", 0, 0.0, 13.0), ("c3", 1, 1.0, 12.0)]


def test_purchase_periods() -> None:
    tx = _tx(
        [
            ("p1", "c1", "2024-01-01T10:00", "10.00", "purchase", None),
            ("p2", "c1", "2024-01-01T11:00", "5.00", "purchase", None),
            ("r2", "c1", "2024-01-01T12:00", "1.00", "refund", "p2"),
            ("p3", "c1", "2024-02-01T10:00", "7.00", "purchase", None),
        ]
    )
    out = purchase_periods(tx, observation_end=dt.date(2024, 12, 31), period="M")
    assert out.rows() == [
        ("c1", dt.datetime(2024, 1, 1), Decimal("14.00")),
        ("c1", dt.datetime(2024, 2, 1), Decimal("7.00")),
    ]
    assert isinstance(
        purchase_periods(tx.lazy(), observation_end=dt.date(2024, 1, 1)), pl.LazyFrame
    )


def test_periods_follow_the_time_zone_of_the_data() -> None:
    tx = _tx(
        [
            ("p1", "c1", "2024-01-01T22:30", "10.00", "purchase", None),  # 23:30 in Paris
            ("p2", "c1", "2024-01-01T23:30", "10.00", "purchase", None),  # 00:30 next day in Paris
        ]
    )
    utc = summary(tx, observation_end=dt.date(2024, 1, 10))
    assert utc["frequency"].item() == 0
    paris = tx.with_columns(pl.col("occurred_at").dt.convert_time_zone("Europe/Paris"))
    local = summary(paris, observation_end=dt.date(2024, 1, 10))
    assert local.row(0) == ("c1", 1, 1.0, 9.0, 10.0)
    aware_end = dt.datetime(2024, 1, 9, 23, 30, tzinfo=UTC)  # 2024-01-10 00:30 in Paris
    assert summary(paris, observation_end=aware_end).row(0) == local.row(0)


def test_calibration_and_holdout_small() -> None:
    tx = _tx(
        [
            ("p1", "c1", "2024-01-01T10:00", "10.00", "purchase", None),
            ("p2", "c1", "2024-01-05T10:00", "20.00", "purchase", None),
            ("r2", "c1", "2024-01-12T10:00", "20.00", "refund", "p2"),  # refunded in the holdout
            ("p3", "c1", "2024-01-12T10:00", "6.00", "purchase", None),
            ("p4", "c1", "2024-01-12T11:00", "4.00", "purchase", None),
            ("p5", "c1", "2024-01-14T10:00", "30.00", "purchase", None),
            ("p6", "c2", "2024-01-13T10:00", "5.00", "purchase", None),  # holdout-only customer
            ("p7", "c3", "2024-01-02T10:00", "5.00", "purchase", None),
        ]
    )
    out = calibration_and_holdout(
        tx, calibration_end=dt.date(2024, 1, 10), observation_end=dt.date(2024, 1, 20)
    )
    assert out.rows() == [
        ("c1", 1, 4.0, 9.0, 20.0, 2, 20.0, 10.0),
        ("c3", 0, 0.0, 8.0, 0.0, 0, 0.0, 10.0),
    ]
    lazy = calibration_and_holdout(
        tx.lazy(),
        calibration_end=dt.date(2024, 1, 10),
        observation_end=dt.date(2024, 1, 20),
        amount=None,
        time_unit="W",
    )
    assert isinstance(lazy, pl.LazyFrame)
    assert lazy.collect().columns == [
        "customer_id",
        "frequency_cal",
        "recency_cal",
        "T_cal",
        "frequency_holdout",
        "duration_holdout",
    ]
    with pytest.raises(InvalidValueError, match="observation_end"):
        calibration_and_holdout(
            tx, calibration_end=dt.date(2024, 1, 10), observation_end=dt.date(2024, 1, 9)
        )


def test_custom_column_names_and_date_column() -> None:
    tx = pl.DataFrame(
        {
            "who": [1, 1, 2],
            "day": [dt.date(2024, 1, 1), dt.date(2024, 1, 3), dt.date(2024, 1, 2)],
            "spend": [1.5, 2.5, 3.0],
        }
    )
    out = summary(
        tx, observation_end=dt.date(2024, 1, 4), customer_id="who", timestamp="day", amount="spend"
    )
    assert out.rows() == [(1, 1, 2.0, 3.0, 2.5), (2, 0, 0.0, 2.0, 0.0)]


def test_empty_frame() -> None:
    empty = pl.DataFrame(schema=TRANSACTION_SCHEMA)
    out = summary(empty, observation_end=dt.date(2024, 1, 1))
    assert out.height == 0
    assert out.schema == pl.Schema(
        {
            "customer_id": pl.String,
            "frequency": pl.Int64,
            "recency": pl.Float64,
            "T": pl.Float64,
            "monetary_value": pl.Float64,
        }
    )


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "frame", "error", "match"),
    [
        ({"time_unit": "fortnight"}, None, InvalidValueError, "time_unit"),
        ({"period": "decade"}, None, InvalidValueError, "period"),
        ({"customer_id": "member"}, None, ModelInputError, "'member'"),
        ({"observation_end": dt.datetime(2024, 1, 1)}, None, InvalidValueError, "timezone-aware"),
        ({"observation_end": "2024-01-01"}, None, InvalidValueError, "datetime.date"),
        ({}, "naive", ModelInputError, "naive timestamps"),
        ({}, "text", ModelInputError, "dtype"),
        ({}, "no_refund_of", ModelInputError, "refund_of"),
        ({}, "pandas", InvalidValueError, "polars DataFrame"),
    ],
)
def test_bad_arguments(
    kwargs: dict[str, object], frame: str | None, error: type[Exception], match: str
) -> None:
    tx = _tx([("p1", "c1", "2024-01-01T10:00", "10.00", "purchase", None)])
    if frame == "naive":
        tx = tx.with_columns(pl.col("occurred_at").dt.replace_time_zone(None))
    elif frame == "text":
        tx = tx.with_columns(pl.col("occurred_at").dt.to_string())
    elif frame == "no_refund_of":
        tx = tx.drop("refund_of")
    data: object = tx.to_pandas() if frame == "pandas" else tx
    arguments: dict[str, object] = {"observation_end": dt.date(2024, 2, 1), **kwargs}
    with pytest.raises(error, match=match) as info:
        summary(data, **arguments)  # type: ignore[call-overload, type-var, arg-type]
    assert isinstance(info.value, LoyaltyKitError)


# ---------------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------------


@given(transactions())
@example(pl.DataFrame(schema=TRANSACTION_SCHEMA))
def test_summary_properties(tx: pl.DataFrame) -> None:
    out = summary(tx, observation_end=END)
    assert (out["recency"] >= 0).all()
    assert (out["recency"] <= out["T"]).all()
    assert (out["monetary_value"] >= 0).all()
    # frequency is below the number of distinct purchase days
    days = (
        tx.filter(pl.col("kind") == "purchase")
        .group_by("customer_id")
        .agg(pl.col("occurred_at").dt.date().n_unique().alias("days"))
    )
    checked = out.join(days, on="customer_id", how="left")
    assert checked["days"].null_count() == 0
    assert (checked["frequency"] < checked["days"]).all()
    # invariant under row order
    shuffled = tx.sample(fraction=1.0, shuffle=True, seed=7)
    assert_frame_equal(summary(shuffled, observation_end=END), out)
    # eager == lazy, and the streaming engine agrees
    lazy = summary(tx.lazy(), observation_end=END, time_unit="W")
    assert isinstance(lazy, pl.LazyFrame)
    weeks = summary(tx, observation_end=END, time_unit="W")
    assert_frame_equal(lazy.collect(), weeks)
    assert_frame_equal(lazy.collect(engine="streaming"), weeks)


@given(transactions(refunds=False))
def test_summary_without_refunds_matches_a_direct_count(tx: pl.DataFrame) -> None:
    out = summary(tx, observation_end=END)
    direct = (
        tx.group_by("customer_id")
        .agg(
            (pl.col("occurred_at").dt.date().n_unique().cast(pl.Int64) - 1).alias("frequency"),
            (pl.col("occurred_at").dt.date().max() - pl.col("occurred_at").dt.date().min())
            .dt.total_days()
            .cast(pl.Float64)
            .alias("recency"),
        )
        .sort("customer_id")
    )
    assert_frame_equal(out.select("customer_id", "frequency", "recency"), direct)


@given(transactions())
def test_calibration_holdout_properties(tx: pl.DataFrame) -> None:
    cal_end = dt.date(2024, 2, 15)
    out = calibration_and_holdout(tx, calibration_end=cal_end, observation_end=END)
    cal = summary(tx, observation_end=cal_end)
    # the calibration columns are the summary as of the calibration end
    assert_frame_equal(
        out.select("customer_id", "frequency_cal", "recency_cal", "T_cal", "monetary_value_cal"),
        cal.rename(
            {
                "frequency": "frequency_cal",
                "recency": "recency_cal",
                "T": "T_cal",
                "monetary_value": "monetary_value_cal",
            }
        ),
    )
    assert (out["duration_holdout"] == (END - cal_end).days).all()
    assert (out["frequency_holdout"] <= (END - cal_end).days).all()
    assert (out["monetary_value_holdout"] >= 0).all()
    # holdout purchase days plus calibration purchase days never exceed all purchase days
    full = summary(tx, observation_end=END).select("customer_id", pl.col("frequency").alias("f"))
    joined = out.join(full, on="customer_id")
    assert (joined["frequency_cal"] + joined["frequency_holdout"] <= joined["f"]).all()
