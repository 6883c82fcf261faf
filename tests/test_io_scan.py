"""scan_transactions / scan_feedback / scan_interactions give what the read_* readers give.

Every case of the bad-input corpus of ``test_io.py`` runs through both kinds of reader, strict and
not; a property test mixes good and bad rows at random; and the lazy readers are checked to
collect nothing but problems (and the keys of the checks across rows) on the streaming engine.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import loyaltykit
from loyaltykit.datasets import load_cdnow
from loyaltykit.errors import DataValidationError, InvalidValueError, LoyaltyKitError
from loyaltykit.io import (
    MAX_PROBLEMS_SHOWN,
    LazyReadResult,
    ReadResult,
    read_feedback,
    read_interactions,
    read_transactions,
    scan_feedback,
    scan_interactions,
    scan_transactions,
)
from loyaltykit.schema import TRANSACTION_SCHEMA
from test_io import (
    BAD_FEEDBACK,
    BAD_INTERACTIONS,
    BAD_TRANSACTIONS,
    BAD_TYPED_COLUMNS,
    GOOD,
    HEADER,
)

UTC = dt.UTC
Reader = Callable[..., Any]
PAIRS = {
    "transactions": (read_transactions, scan_transactions),
    "feedback": (read_feedback, scan_feedback),
    "interactions": (read_interactions, scan_interactions),
}


def _outcome(reader: Reader, source: Any, **kwargs: Any) -> Any:
    try:
        return reader(source, **kwargs)
    except LoyaltyKitError as error:
        return error


def _problems(error: DataValidationError) -> list[tuple[Any, ...]]:
    return [(p.row, p.column, p.value, p.reason) for p in error.problems]


def assert_same(kind: str, source: Any, **kwargs: Any) -> None:
    """The scan_* reader of ``kind`` gives what its read_* reader gives, strict and not."""
    read, scan = PAIRS[kind]
    for strict in (True, False):
        eager = _outcome(read, source, strict=strict, **kwargs)
        lazy = _outcome(scan, source, strict=strict, **kwargs)
        if isinstance(eager, DataValidationError):
            assert isinstance(lazy, DataValidationError), lazy
            assert _problems(lazy) == _problems(eager)
            assert lazy.total == eager.total
            assert str(lazy) == str(eager)
        elif isinstance(eager, LoyaltyKitError):
            assert type(lazy) is type(eager)
            assert str(lazy) == str(eager).replace(read.__name__, scan.__name__)
        elif strict:
            assert isinstance(lazy, pl.LazyFrame)
            assert_frame_equal(lazy.collect(engine="streaming"), eager)
        else:
            assert isinstance(eager, ReadResult)
            assert isinstance(lazy, LazyReadResult)
            assert isinstance(lazy.clean, pl.LazyFrame)
            assert isinstance(lazy.rejected, pl.DataFrame)
            assert_frame_equal(lazy.clean.collect(engine="streaming"), eager.clean)
            assert_frame_equal(lazy.rejected, eager.rejected)


# ---------------------------------------------------------------------------------------------
# the bad-input corpus, through both readers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [pytest.param(c[1], id=c[0]) for c in BAD_TRANSACTIONS])
def test_bad_transactions_same_as_read(tmp_path: Path, rows: str) -> None:
    path = tmp_path / "tx.csv"
    path.write_text(HEADER + GOOD + rows + "\n", encoding="utf-8")
    assert_same("transactions", path)
    # the same cells from memory and from Parquet
    text = pl.read_csv(path, infer_schema=False)
    assert_same("transactions", text)
    assert_same("transactions", text.lazy())
    text.write_parquet(tmp_path / "tx.parquet")
    assert_same("transactions", tmp_path / "tx.parquet")


def test_corpus_case_reports_the_row_of_the_source(tmp_path: Path) -> None:
    # row numbers count the source's data rows, before anything is filtered
    path = tmp_path / "tx.csv"
    path.write_text(HEADER + GOOD + "t3,c1,yesterday,1.00,purchase,\n", encoding="utf-8")
    with pytest.raises(DataValidationError) as info:
        scan_transactions(path)
    assert [(p.row, p.column) for p in info.value.problems] == [(2, "occurred_at")]


@pytest.mark.parametrize(
    "frame", [pytest.param(c[0], id=f"{c[1]}-{i}") for i, c in enumerate(BAD_TYPED_COLUMNS)]
)
def test_bad_typed_columns_same_as_read(frame: pl.DataFrame) -> None:
    base = pl.DataFrame(
        {
            "transaction_id": ["t1"],
            "customer_id": ["c1"],
            "occurred_at": [dt.datetime(2024, 1, 1, tzinfo=UTC)],
            "amount": [Decimal("1.00")],
        }
    )
    bad = base.drop(frame.columns, strict=False).hstack(frame)
    assert_same("transactions", bad)
    assert_same("transactions", bad.lazy())


@pytest.mark.parametrize("row", [pytest.param(c[1], id=c[0]) for c in BAD_FEEDBACK])
def test_bad_feedback_same_as_read(tmp_path: Path, row: str) -> None:
    path = tmp_path / "fb.csv"
    path.write_text("customer_id,answered_at,nps,csat\nc0,2024-01-01T00:00:00Z,7,3\n" + row + "\n")
    assert_same("feedback", path)


@pytest.mark.parametrize("row", [c[0] for c in BAD_INTERACTIONS])
def test_bad_interactions_same_as_read(tmp_path: Path, row: str) -> None:
    path = tmp_path / "inter.csv"
    path.write_text(
        "customer_id,occurred_at,channel,type\nc0,2024-01-01T00:00:00Z,web,visit\n" + row + "\n"
    )
    assert_same("interactions", path)


def test_many_problems_same_as_read() -> None:
    n = MAX_PROBLEMS_SHOWN + 15
    frame = pl.DataFrame(
        {
            "transaction_id": [f"t{i % 7}" for i in range(n)],  # duplicates too
            "customer_id": [None if i % 3 else f"c{i}" for i in range(n)],
            "occurred_at": ["2024-01-01"] * n,
            "amount": ["1.00"] * n,
        },
        schema_overrides={"customer_id": pl.String},
    )
    assert_same("transactions", frame)
    assert_same("transactions", frame, timezone="Europe/Paris")
    with pytest.raises(DataValidationError) as info:
        scan_transactions(frame)
    assert len(info.value.problems) == MAX_PROBLEMS_SHOWN
    assert info.value.total == n + (n - n // 3 - 1) + (n - 7)  # naive, missing id, duplicate


def test_nonexistent_local_time_same_as_read(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text(HEADER + "t1,c1,2024-03-31T02:30,1.00,purchase,\n")
    assert_same("transactions", path, timezone="Europe/Paris")


def test_column_mapping_and_nested_values_same_as_read() -> None:
    raw = pl.DataFrame(
        {
            "InvoiceNo": ["a", "b", "b"],
            "CustomerID": [17850, 17850, 13047],
            "InvoiceDate": [
                dt.datetime(2024, 3, 31, 1, 30),
                dt.datetime(2024, 3, 31, 2, 30),  # does not exist in Paris
                dt.datetime(2024, 7, 1),
            ],
            "Total": [15.3, 20.0, 7.255],
            "channel": [["web"], None, ["store"]],  # not text: the value is named, not cast
        }
    )
    columns = {
        "transaction_id": "InvoiceNo",
        "customer_id": "CustomerID",
        "occurred_at": "InvoiceDate",
        "amount": "Total",
    }
    assert_same("transactions", raw, columns=columns, timezone="Europe/Paris")
    _, rejected = scan_transactions(raw, columns=columns, timezone="Europe/Paris", strict=False)
    assert "column 'channel' = <List(String) value>: channel must be text" in rejected["reasons"][0]


# ---------------------------------------------------------------------------------------------
# random mixes of good and bad rows
# ---------------------------------------------------------------------------------------------

CELLS = {
    "transaction_id": ["t1", "t2", "t3", "t4", "t5", "t6", "", "  ", None],
    "customer_id": ["c1", "c1", "c2", "", None],
    "occurred_at": [
        "2024-01-01T10:00:00Z",
        "2024-01-02T10:00:00+01:00",
        "2024-01-05T10:00:00Z",
        "2023-12-31",
        "2024-03-31T02:30",
        "yesterday",
        "",
        None,
    ],
    "amount": ["1.00", "10.50", "4", "-1.00", "1.005", "ten", "1e3", "", None],
    "kind": ["purchase", "purchase", "refund", "Refund", "", None],
    "refund_of": [None, None, "t1", "t2", "t9", "", "  "],
    "currency": [None, "EUR", "euro"],
    "quantity": [None, "1", "-1", "x"],
}

rows = st.lists(
    st.fixed_dictionaries({name: st.sampled_from(values) for name, values in CELLS.items()}),
    max_size=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows, timezone=st.sampled_from([None, "Europe/Paris"]))
def test_random_transactions_same_as_read(
    rows: list[dict[str, str | None]], timezone: str | None
) -> None:
    frame = pl.DataFrame(rows, schema=dict.fromkeys(CELLS, pl.String))
    assert_same("transactions", frame.lazy(), timezone=timezone)


# ---------------------------------------------------------------------------------------------
# lazy and streaming
# ---------------------------------------------------------------------------------------------


def test_parquet_scan_collected_with_streaming_engine_equals_read(tmp_path: Path) -> None:
    tx = load_cdnow(sample=True).drop("sample_id")
    path = tmp_path / "cdnow.parquet"
    tx.write_parquet(path)
    lazy = scan_transactions(path)
    assert isinstance(lazy, pl.LazyFrame)
    assert lazy.collect_schema() == TRANSACTION_SCHEMA
    out = lazy.collect(engine="streaming")
    assert_frame_equal(out, read_transactions(path))
    assert_frame_equal(out, tx)
    clean, rejected = scan_transactions(path, strict=False)
    assert_frame_equal(clean.collect(engine="streaming"), tx)
    assert rejected.height == 0
    assert loyaltykit.scan_transactions is scan_transactions


def test_cdnow_through_csv_and_ipc(tmp_path: Path) -> None:
    tx = load_cdnow(sample=True).drop("sample_id")
    tx.write_csv(tmp_path / "cdnow.csv")
    tx.write_ipc(tmp_path / "cdnow.arrow")
    for name in ("cdnow.csv", "cdnow.arrow"):
        assert_frame_equal(scan_transactions(tmp_path / name).collect(engine="streaming"), tx)
    assert_frame_equal(scan_transactions(tx.to_pandas()).collect(), tx)
    assert_frame_equal(scan_transactions(tx.to_arrow()).collect(), tx)


class _Spy:
    """Replaces polars' collection: plain ``collect`` is refused, ``collect_all`` is recorded."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, list[int]]] = []
        real = pl.collect_all

        def collect_all(frames: Any, **kwargs: Any) -> Any:
            out = real(frames, **kwargs)
            self.calls.append((kwargs.get("engine", "auto"), [f.height for f in out]))
            return out

        def collect(self_: pl.LazyFrame, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("the lazy readers must not collect a frame outside validation")

        monkeypatch.setattr(pl, "collect_all", collect_all)
        monkeypatch.setattr(pl.LazyFrame, "collect", collect)


def test_validation_collects_only_problems_on_the_streaming_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 5_000
    frame = pl.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "customer_id": [f"c{i % 50}" for i in range(n)],
            "occurred_at": ["2024-01-01T10:00:00Z"] * n,
            "amount": ["-1.00" if i in (17, 4_000) else "2.50" for i in range(n)],
            "kind": ["refund" if i == 4_001 else "purchase" for i in range(n)],
            "refund_of": ["t4000" if i == 4_001 else None for i in range(n)],
        }
    )
    path = tmp_path / "tx.csv"
    frame.write_csv(path)
    spy = _Spy(monkeypatch)
    with pytest.raises(DataValidationError) as info:
        scan_transactions(path)
    assert [(p.row, p.column) for p in info.value.problems] == [
        (17, "amount"),
        (4_000, "amount"),
        (4_001, "refund_of"),
    ]
    assert "rejected purchase (row 4000)" in info.value.problems[2].reason
    assert spy.calls, "validation ran no query"
    assert {engine for engine, _ in spy.calls} == {"streaming"}
    # what came back: the first rows with problems, the count, the keys, the cross problems
    assert max(h for _, heights in spy.calls for h in heights) <= MAX_PROBLEMS_SHOWN
    spy.calls.clear()
    clean, rejected = scan_transactions(path, strict=False)
    assert rejected["row"].to_list() == [17, 4_000, 4_001]
    assert isinstance(clean, pl.LazyFrame)
    assert {engine for engine, _ in spy.calls} == {"streaming"}
    assert max(h for _, heights in spy.calls for h in heights) <= 3
    monkeypatch.undo()
    assert clean.collect(engine="streaming").height == n - 3


def test_the_result_reads_the_source_when_collected(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    good = pl.DataFrame(
        {
            "transaction_id": ["t1", "t2"],
            "customer_id": ["c1", "c2"],
            "occurred_at": ["2024-01-01T10:00:00Z"] * 2,
            "amount": ["1.00", "2.00"],
        }
    )
    good.write_csv(path)
    lazy = scan_transactions(path)
    clean, _ = scan_transactions(path, strict=False)
    # nothing was kept in memory: the queries read the file (which must not change meanwhile)
    good.head(1).write_csv(path)
    assert lazy.collect()["transaction_id"].to_list() == ["t1"]
    assert clean.collect()["transaction_id"].to_list() == ["t1"]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda p: scan_transactions(p / "missing.csv"), "no such file"),
        (lambda p: scan_transactions(p / "tx.json"), "unknown file type"),
        (lambda p: scan_transactions(p / "broken.parquet"), "cannot be read"),
        (lambda p: scan_transactions(p / "ragged.csv"), "cannot be read"),
        (lambda p: scan_transactions(p / "tx.csv", timezone="Mars/Olympus"), "IANA time zone"),
        (lambda p: scan_transactions(p / "tx.csv", columns={"buyer": "x"}), "core schema"),
        (lambda p: scan_transactions(p / "tx.csv", columns={"amount": "Total"}), "do not exist"),
        (lambda p: scan_transactions(p / "short.csv"), "missing required column"),
        (lambda p: scan_transactions({"a": 1}), "must be a path"),
        (lambda p: scan_feedback(p / "short.csv"), "answered_at"),
        (lambda p: scan_interactions(p / "tx.csv"), "channel"),
    ],
)
def test_whole_frame_errors(tmp_path: Path, call: Callable[[Path], Any], match: str) -> None:
    (tmp_path / "tx.csv").write_text(HEADER + GOOD)
    (tmp_path / "tx.json").write_text("{}")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    (tmp_path / "short.csv").write_text("transaction_id,customer_id\nt1,c1\n")
    (tmp_path / "ragged.csv").write_text(
        HEADER + GOOD + "t3,c1,2024-01-02T00:00:00Z,1.00,purchase,,x,y\n"
    )
    with pytest.raises(InvalidValueError, match=match):
        call(tmp_path)
