"""read_transactions / read_feedback / read_interactions: sources, parsing and the bad-input corpus."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal

import loyaltykit
from loyaltykit.datasets import load_cdnow
from loyaltykit.errors import DataValidationError, InvalidValueError, LoyaltyKitError
from loyaltykit.io import (
    MAX_PROBLEMS_SHOWN,
    ReadResult,
    read_feedback,
    read_interactions,
    read_transactions,
)
from loyaltykit.schema import FEEDBACK_SCHEMA, INTERACTION_SCHEMA, TRANSACTION_SCHEMA

UTC = dt.UTC
HEADER = "transaction_id,customer_id,occurred_at,amount,kind,refund_of\n"
GOOD = "t1,c1,2024-01-01T10:00:00Z,10.50,purchase,\nt2,c1,2024-01-05T10:00:00Z,4.00,purchase,\n"


def _csv(tmp_path: Path, body: str, header: str = HEADER, name: str = "tx.csv") -> Path:
    path = tmp_path / name
    path.write_text(header + body, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# good input from every kind of source
# ---------------------------------------------------------------------------------------------


def test_cdnow_round_trips_through_csv_parquet_and_ipc(tmp_path: Path) -> None:
    tx = load_cdnow(sample=True).drop("sample_id")
    tx.write_csv(tmp_path / "cdnow.csv")
    tx.write_parquet(tmp_path / "cdnow.parquet")
    tx.write_ipc(tmp_path / "cdnow.arrow")
    for name in ("cdnow.csv", "cdnow.parquet", "cdnow.arrow"):
        assert_frame_equal(read_transactions(tmp_path / name), tx)
    assert_frame_equal(read_transactions(str(tmp_path / "cdnow.csv")), tx)


def test_in_memory_sources() -> None:
    tx = load_cdnow(sample=True).drop("sample_id").head(200)
    assert_frame_equal(read_transactions(tx), tx)
    assert_frame_equal(read_transactions(tx.lazy()), tx)
    assert_frame_equal(read_transactions(tx.to_arrow()), tx)
    assert_frame_equal(read_transactions(tx.to_arrow().to_batches()[0]), tx)
    assert_frame_equal(read_transactions(tx.to_pandas()), tx)


def test_column_mapping_timezones_and_types() -> None:
    raw = pd.DataFrame(
        {
            "InvoiceNo": ["a", "b", "c"],
            "CustomerID": [17850, 17850, 13047],
            "InvoiceDate": pd.to_datetime(
                ["2024-03-31 01:30", "2024-03-31 03:30", "2024-07-01 00:00"]
            ),
            "Total": [15.3, 20.0, 7.25],
            "Country": ["France", "France", "France"],
        }
    )
    out = read_transactions(
        raw,
        columns={
            "transaction_id": "InvoiceNo",
            "customer_id": "CustomerID",
            "occurred_at": "InvoiceDate",
            "amount": "Total",
        },
        timezone="Europe/Paris",
    )
    assert out.schema == TRANSACTION_SCHEMA
    assert out["customer_id"].to_list() == ["17850", "17850", "13047"]
    assert out["occurred_at"].to_list() == [
        dt.datetime(2024, 3, 31, 0, 30, tzinfo=UTC),  # CET, +01:00
        dt.datetime(2024, 3, 31, 1, 30, tzinfo=UTC),  # CEST, +02:00
        dt.datetime(2024, 6, 30, 22, 0, tzinfo=UTC),
    ]
    assert out["amount"].to_list() == [Decimal("15.30"), Decimal("20.00"), Decimal("7.25")]
    assert out["kind"].to_list() == ["purchase"] * 3
    assert out["currency"].null_count() == 3


def test_text_timestamps_with_offsets_and_declared_zone(tmp_path: Path) -> None:
    body = (
        "t1,c1,2024-01-01T10:00:00+02:00,1.00,purchase,\n"
        "t2,c1,2024-01-01 10:00:00.5Z,1.00,purchase,\n"
        "t3,c1,2024-01-01T10:00,1.00,purchase,\n"
        "t4,c1,2024-01-02,1.00,purchase,\n"
    )
    out = read_transactions(_csv(tmp_path, body), timezone="America/New_York")
    assert out["occurred_at"].to_list() == [
        dt.datetime(2024, 1, 1, 8, 0, tzinfo=UTC),
        dt.datetime(2024, 1, 1, 10, 0, 0, 500_000, tzinfo=UTC),
        dt.datetime(2024, 1, 1, 15, 0, tzinfo=UTC),
        dt.datetime(2024, 1, 2, 5, 0, tzinfo=UTC),
    ]


def test_refunds_and_optional_columns(tmp_path: Path) -> None:
    header = "transaction_id,customer_id,occurred_at,amount,kind,refund_of,currency,channel,quantity,note\n"
    body = (
        "t1,c1,2024-01-01T10:00:00Z,10.50,purchase,,EUR,web,2,hello\n"
        "r1,c1,2024-01-02T10:00:00Z,4.50,refund,t1,EUR,,1,\n"
        "r2,c1,2024-01-03T10:00:00Z,6.00,refund,t1,EUR,store,,\n"
    )
    out = read_transactions(_csv(tmp_path, body, header))
    assert out.columns == TRANSACTION_SCHEMA.names()  # extra source columns are ignored
    assert out["refund_of"].to_list() == [None, "t1", "t1"]
    assert out["channel"].to_list() == ["web", None, "store"]
    assert out["quantity"].to_list() == [2, 1, None]


def test_feedback_and_interactions(tmp_path: Path) -> None:
    fb = tmp_path / "fb.csv"
    fb.write_text(
        "customer_id,answered_at,nps,csat,comment\n"
        "c1,2024-01-01T10:00:00Z,9,,great\n"
        "c2,2024-01-02T10:00:00Z,,4,\n"
        "c3,2024-01-03T10:00:00Z,0,1,awful\n"
    )
    out = read_feedback(fb)
    assert out.schema == FEEDBACK_SCHEMA
    assert out["nps"].to_list() == [9, None, 0]
    assert out["csat"].to_list() == [None, 4, 1]
    inter = pl.DataFrame(
        {
            "customer_id": ["c1", "c1"],
            "occurred_at": [dt.datetime(2024, 1, 1, tzinfo=UTC)] * 2,
            "channel": ["email", "web"],
            "type": ["email_open", "visit"],
        }
    )
    assert read_interactions(inter).schema == INTERACTION_SCHEMA
    assert loyaltykit.read_interactions is read_interactions


# ---------------------------------------------------------------------------------------------
# the corpus of bad input: each case gives a clear error naming row, column and reason
# ---------------------------------------------------------------------------------------------

BAD_TRANSACTIONS = [
    # (id, csv rows after GOOD's two rows, row, column, reason fragment)
    ("null customer", "t3,,2024-01-02T00:00:00Z,1.00,purchase,", 2, "customer_id", "missing id"),
    (
        "blank txn id",
        "  ,c1,2024-01-02T00:00:00Z,1.00,purchase,",
        2,
        "transaction_id",
        "missing id",
    ),
    ("bad timestamp", "t3,c1,yesterday,1.00,purchase,", 2, "occurred_at", "unparseable"),
    ("bad date", "t3,c1,2024-02-30,1.00,purchase,", 2, "occurred_at", "unparseable"),
    (
        "bad offset",
        "t3,c1,2024-01-02T25:00:00+01:00,1.00,purchase,",
        2,
        "occurred_at",
        "unparseable",
    ),
    ("naive", "t3,c1,2024-01-02 10:00,1.00,purchase,", 2, "occurred_at", "no declared time zone"),
    ("no time", "t3,c1,,1.00,purchase,", 2, "occurred_at", "missing timestamp"),
    ("negative", "t3,c1,2024-01-02T00:00:00Z,-1.00,purchase,", 2, "amount", "negative amount"),
    ("mills", "t3,c1,2024-01-02T00:00:00Z,1.005,purchase,", 2, "amount", "more than 2 decimal"),
    ("text amount", "t3,c1,2024-01-02T00:00:00Z,ten,purchase,", 2, "amount", "not a number"),
    ("currency sign", "t3,c1,2024-01-02T00:00:00Z,$1.00,purchase,", 2, "amount", "not a number"),
    ("thousands", 't3,c1,2024-01-02T00:00:00Z,"1,000.00",purchase,', 2, "amount", "not a number"),
    ("exponent", "t3,c1,2024-01-02T00:00:00Z,1e3,purchase,", 2, "amount", "exponent"),
    ("huge", "t3,c1,2024-01-02T00:00:00Z,99999999999999999999,purchase,", 2, "amount", "too large"),
    ("no amount", "t3,c1,2024-01-02T00:00:00Z,,purchase,", 2, "amount", "missing amount"),
    ("kind", "t3,c1,2024-01-02T00:00:00Z,1.00,return,t1", 2, "kind", "must be one of"),
    ("kind case", "t3,c1,2024-01-02T00:00:00Z,1.00,Purchase,", 2, "kind", "must be one of"),
    (
        "duplicate",
        "t1,c1,2024-01-02T00:00:00Z,1.00,purchase,",
        2,
        "transaction_id",
        "first seen at row 0",
    ),
    (
        "refund unknown",
        "r1,c1,2024-01-02T00:00:00Z,1.00,refund,t9",
        2,
        "refund_of",
        "unknown transaction",
    ),
    (
        "refund no target",
        "r1,c1,2024-01-02T00:00:00Z,1.00,refund,",
        2,
        "refund_of",
        "must name the purchase",
    ),
    (
        "refund other customer",
        "r1,c2,2024-01-02T00:00:00Z,1.00,refund,t1",
        2,
        "refund_of",
        "another customer",
    ),
    (
        "refund too early",
        "r1,c1,2023-12-31T00:00:00Z,1.00,refund,t1",
        2,
        "refund_of",
        "before its purchase",
    ),
    (
        "refund too much",
        "r1,c1,2024-01-02T00:00:00Z,10.51,refund,t1",
        2,
        "refund_of",
        "more than its amount",
    ),
    (
        "purchase with refund_of",
        "t3,c1,2024-01-02T00:00:00Z,1.00,purchase,t1",
        2,
        "refund_of",
        "must leave refund_of empty",
    ),
    (
        "refund of refund",
        "r1,c1,2024-01-02T00:00:00Z,1.00,refund,t1\nr2,c1,2024-01-03T00:00:00Z,1.00,refund,r1",
        3,
        "refund_of",
        "names a refund",
    ),
    (
        "refund of rejected purchase",
        "t3,c1,2024-01-02T00:00:00Z,-1.00,purchase,\nr1,c1,2024-01-03T00:00:00Z,1.00,refund,t3",
        3,
        "refund_of",
        "rejected purchase (row 2)",
    ),
    (
        "refunds add up to too much",
        "r1,c1,2024-01-02T00:00:00Z,10.00,refund,t1\nr2,c1,2024-01-03T00:00:00Z,1.00,refund,t1",
        3,
        "refund_of",
        "add up to 11.00",
    ),
]


@pytest.mark.parametrize(
    ("rows", "row", "column", "reason"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_TRANSACTIONS],
)
def test_bad_transactions(tmp_path: Path, rows: str, row: int, column: str, reason: str) -> None:
    path = _csv(tmp_path, GOOD + rows + "\n")
    with pytest.raises(DataValidationError) as info:
        read_transactions(path)
    error = info.value
    assert isinstance(error, LoyaltyKitError)
    assert error.what == "transactions"
    assert error.total >= 1
    problem = next(p for p in error.problems if p.row == row and p.column == column)
    assert reason in problem.reason
    assert f"row {row}, column '{column}'" in str(error)
    assert "strict=False" in str(error)
    # non-strict: the good rows come back clean, the bad row comes back with its reason
    clean, rejected = read_transactions(path, strict=False)
    assert clean["transaction_id"].to_list()[:2] == ["t1", "t2"]
    assert row in rejected["row"].to_list()
    assert reason in rejected.filter(pl.col("row") == row)["reasons"].item()
    # nothing is dropped: every source row is clean or rejected, once
    assert clean.height + rejected.height == GOOD.count("\n") + rows.count("\n") + 1


def test_strict_error_lists_the_first_problems_and_counts_all() -> None:
    n = MAX_PROBLEMS_SHOWN + 15
    frame = pl.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "customer_id": [None] * n,
            "occurred_at": ["2024-01-01"] * n,
            "amount": ["1.00"] * n,
        },
        schema_overrides={"customer_id": pl.String},
    )
    with pytest.raises(DataValidationError) as info:
        read_transactions(frame)
    assert info.value.total == 2 * n  # missing id and naive timestamp on every row
    assert len(info.value.problems) == MAX_PROBLEMS_SHOWN
    assert f"and {2 * n - MAX_PROBLEMS_SHOWN} more" in str(info.value)
    result = read_transactions(frame, strict=False)
    assert isinstance(result, ReadResult)
    assert result.clean.height == 0
    assert result.clean.schema == TRANSACTION_SCHEMA
    assert result.rejected.columns == ["row", *frame.columns, "reasons"]
    assert result.rejected["reasons"][0] == (
        "column 'customer_id' = null: missing id; column 'occurred_at' = 2024-01-01: naive "
        "timestamp (no UTC offset) and no declared time zone; pass timezone='Europe/Paris' (the "
        "zone the times were recorded in) or write offsets, e.g. 2024-03-01T14:30:00+01:00"
    )


BAD_TYPED_COLUMNS = [
    # (typed columns replacing those of a good one-row frame, column, reason fragment)
    (pl.DataFrame({"amount": [1.005]}), "amount", "more than 2 decimal"),
    (pl.DataFrame({"amount": [float("nan")]}), "amount", "missing amount"),
    (pl.DataFrame({"amount": [float("inf")]}), "amount", "finite"),
    (pl.DataFrame({"amount": [-3]}), "amount", "negative"),
    (
        pl.DataFrame({"amount": [Decimal("1.234")]}, schema={"amount": pl.Decimal(10, 3)}),
        "amount",
        "more than 2 decimal",
    ),
    (pl.DataFrame({"amount": [True]}), "amount", "must be numbers"),
    (pl.DataFrame({"quantity": [-1]}), "quantity", "at least 0"),
    (pl.DataFrame({"quantity": [1.5]}), "quantity", "not an integer"),
    (pl.DataFrame({"customer_id": [1.5]}), "customer_id", "text or integers"),
    (
        pl.DataFrame({"occurred_at": [dt.datetime(2024, 1, 1)]}),
        "occurred_at",
        "no declared time zone",
    ),
    (pl.DataFrame({"occurred_at": [dt.date(2024, 1, 1)]}), "occurred_at", "no declared"),
    (pl.DataFrame({"occurred_at": [20240101]}), "occurred_at", "must be text"),
    (pl.DataFrame({"currency": ["euro"]}), "currency", "ISO 4217"),
    (pl.DataFrame({"channel": [3]}), "channel", "must be text"),
]


@pytest.mark.parametrize(("frame", "column", "reason"), BAD_TYPED_COLUMNS)
def test_bad_typed_columns(frame: pl.DataFrame, column: str, reason: str) -> None:
    base = pl.DataFrame(
        {
            "transaction_id": ["t1"],
            "customer_id": ["c1"],
            "occurred_at": [dt.datetime(2024, 1, 1, tzinfo=UTC)],
            "amount": [Decimal("1.00")],
        }
    )
    bad = base.drop(frame.columns, strict=False).hstack(frame)
    with pytest.raises(DataValidationError) as info:
        read_transactions(bad)
    assert [(p.row, p.column) for p in info.value.problems] == [(0, column)]
    assert reason in info.value.problems[0].reason


def test_nonexistent_local_time(tmp_path: Path) -> None:
    path = _csv(tmp_path, "t1,c1,2024-03-31T02:30,1.00,purchase,\n")
    with pytest.raises(DataValidationError, match="does not exist or is ambiguous in Europe/Paris"):
        read_transactions(path, timezone="Europe/Paris")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda p: read_transactions(p / "missing.csv"), "no such file"),
        (lambda p: read_transactions(p / "tx.json"), "unknown file type"),
        (lambda p: read_transactions(p / "broken.parquet"), "cannot be read"),
        (lambda p: read_transactions(p / "tx.csv", timezone="Mars/Olympus"), "IANA time zone"),
        (lambda p: read_transactions(p / "tx.csv", columns={"buyer": "x"}), "core schema"),
        (lambda p: read_transactions(p / "tx.csv", columns={"amount": "Total"}), "do not exist"),
        (lambda p: read_transactions(p / "short.csv"), "missing required column"),
        (lambda p: read_transactions({"a": 1}), "must be a path"),
        (lambda p: read_feedback(p / "short.csv"), "answered_at"),
        (lambda p: read_interactions(p / "tx.csv"), "channel"),
    ],
)
def test_whole_frame_errors(tmp_path: Path, call: object, match: str) -> None:
    _csv(tmp_path, GOOD)
    (tmp_path / "tx.json").write_text("{}")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    (tmp_path / "short.csv").write_text("transaction_id,customer_id\nt1,c1\n")
    with pytest.raises(InvalidValueError, match=match):
        call(tmp_path)  # type: ignore[operator]


BAD_FEEDBACK = [
    ("nps 11", "c1,2024-01-01T00:00:00Z,11,", "nps", "between 0 and 10"),
    ("csat 0", "c1,2024-01-01T00:00:00Z,,0", "csat", "between 1 and 5"),
    ("nps text", "c1,2024-01-01T00:00:00Z,nine,", "nps", "not an integer"),
    ("nps decimal", "c1,2024-01-01T00:00:00Z,8.5,", "nps", "not an integer"),
    ("no answer", "c1,2024-01-01T00:00:00Z,,", "nps", "needs an NPS"),
    ("no customer", ",2024-01-01T00:00:00Z,9,", "customer_id", "missing id"),
    ("naive", "c1,2024-01-01,9,", "answered_at", "no declared time zone"),
]


@pytest.mark.parametrize(
    ("row", "column", "reason"), [pytest.param(*c[1:], id=c[0]) for c in BAD_FEEDBACK]
)
def test_bad_feedback(tmp_path: Path, row: str, column: str, reason: str) -> None:
    path = tmp_path / "fb.csv"
    path.write_text("customer_id,answered_at,nps,csat\nc0,2024-01-01T00:00:00Z,7,3\n" + row + "\n")
    with pytest.raises(DataValidationError) as info:
        read_feedback(path)
    assert [(p.row, p.column) for p in info.value.problems] == [(1, column)]
    assert reason in info.value.problems[0].reason
    clean, rejected = read_feedback(path, strict=False)
    assert clean["customer_id"].to_list() == ["c0"]
    assert rejected["row"].to_list() == [1]


BAD_INTERACTIONS = [
    # (csv row after the header, column, reason fragment)
    (",2024-01-01T00:00:00Z,web,visit", "customer_id", "missing id"),
    ("c1,2024-01-01T00:00:00Z,,visit", "channel", "missing channel"),
    ("c1,2024-01-01T00:00:00Z,web,", "type", "missing type"),
    ("c1,01/02/2024,web,visit", "occurred_at", "unparseable"),
]


@pytest.mark.parametrize(("row", "column", "reason"), BAD_INTERACTIONS)
def test_bad_interactions(tmp_path: Path, row: str, column: str, reason: str) -> None:
    path = tmp_path / "inter.csv"
    path.write_text("customer_id,occurred_at,channel,type\n" + row + "\n")
    with pytest.raises(DataValidationError) as info:
        read_interactions(path)
    assert [(p.row, p.column) for p in info.value.problems] == [(0, column)]
    assert reason in info.value.problems[0].reason


def test_pyarrow_table_with_dictionary_ids() -> None:
    table = pa.table(
        {
            "transaction_id": pa.array(["t1", "t2"]).dictionary_encode(),
            "customer_id": pa.array(["c1", "c2"]),
            "occurred_at": pa.array(
                [dt.datetime(2024, 1, 1, tzinfo=UTC)] * 2, type=pa.timestamp("ms", "UTC")
            ),
            "amount": pa.array([Decimal("1.10"), Decimal("2.00")], type=pa.decimal128(10, 2)),
        }
    )
    out = read_transactions(table)
    assert out["transaction_id"].to_list() == ["t1", "t2"]
    assert out["amount"].to_list() == [Decimal("1.10"), Decimal("2.00")]


def test_valid_frames_round_trip_unchanged() -> None:
    from hypothesis import given
    from hypothesis import strategies as st

    @given(
        st.lists(
            st.tuples(
                st.sampled_from(["a", "b", "c"]),
                st.datetimes(
                    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2030, 1, 1)
                ).map(lambda d: d.replace(tzinfo=UTC, microsecond=0)),
                st.integers(0, 10**9).map(lambda c: Decimal(c).scaleb(-2)),
            ),
            max_size=30,
        )
    )
    def check(rows: list[tuple[str, dt.datetime, Decimal]]) -> None:
        frame = pl.DataFrame(
            {
                "transaction_id": [f"t{i}" for i in range(len(rows))],
                "customer_id": [r[0] for r in rows],
                "occurred_at": [r[1] for r in rows],
                "amount": [r[2] for r in rows],
            },
            schema_overrides={
                "occurred_at": TRANSACTION_SCHEMA["occurred_at"],
                "amount": TRANSACTION_SCHEMA["amount"],
                "customer_id": pl.String,
            },
        )
        out = read_transactions(frame)
        assert out.select(frame.columns).equals(frame)
        # and through CSV text, every value parses back to the same
        text = read_transactions(frame.with_columns(pl.all().cast(pl.String)))
        assert text.equals(out)

    check()
