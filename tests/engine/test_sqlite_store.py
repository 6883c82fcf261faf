"""The SQLite store: the conformance suite, migrations, durability settings and bad paths."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sql_helpers import SQLStoreBehaviour, StoreMaker
from store_conformance import (
    T0,
    ForcedRollbackError,
    StoreConformance,
    batch,
    day,
    entry,
    member,
)

from loyaltykit.engine import Activity, EventRecord, PurchaseRecord
from loyaltykit.engine.memory import MemoryStore
from loyaltykit.engine.store import EventExistsError, LedgerStore
from loyaltykit.engine.stores import SQLiteStore, _sql, open_store
from loyaltykit.engine.stores import sqlite as sqlite_store_module
from loyaltykit.errors import StoreError


class TestSQLiteStore(StoreConformance):
    """The conformance suite on one shared :class:`SQLiteStore` (a connection per thread)."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[LedgerStore]:
        s = SQLiteStore(tmp_path / "ledger.db")
        yield s
        s.close()


class TestSQLiteStoreOneHandlePerThread(StoreConformance):
    """The conformance suite with a separate store object per thread (as separate processes)."""

    threads_share_store = False

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[LedgerStore]:
        s = SQLiteStore(tmp_path / "ledger.db", synchronous="normal")
        yield s
        s.close()

    @pytest.fixture
    def store_factory(
        self, ready: LedgerStore, tmp_path: Path
    ) -> Iterator[Callable[[], LedgerStore]]:
        opened: list[SQLiteStore] = []

        def make() -> LedgerStore:
            s = SQLiteStore(tmp_path / "ledger.db", synchronous="normal")
            opened.append(s)
            return s

        yield make
        for s in opened:
            s.close()


class TestSQLiteMigrations(SQLStoreBehaviour):
    """Schema creation, upgrades and refusals on SQLite."""

    migrations_module = sqlite_store_module

    @pytest.fixture
    def make_store(self, tmp_path: Path) -> Iterator[StoreMaker]:
        opened: list[SQLiteStore] = []

        def make() -> SQLiteStore:
            s = SQLiteStore(tmp_path / "ledger.db", timeout_seconds=10)
            opened.append(s)
            return s

        yield make
        for s in opened:
            s.close()

    def execute(self, store: Any, sql: str) -> list[tuple[Any, ...]]:
        names = {n: f"loyaltykit_{n}" for n in ("schema_version", "counters", "members")}
        with sqlite3.connect(store.path, isolation_level=None) as conn:
            return list(conn.execute(sql.format(**names)).fetchall())


# --------------------------------------------------------------------------------------------
# connection settings
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("synchronous", "level"), [("full", 2), ("normal", 1)])
def test_wal_mode_and_durability_setting(tmp_path: Path, synchronous: str, level: int) -> None:
    store = SQLiteStore(tmp_path / "ledger.db", synchronous=synchronous)  # type: ignore[arg-type]
    store.migrate()
    conn = store._conn()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == level
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
    store.close()
    # a plain sqlite3 connection sees WAL mode persisted in the file
    with sqlite3.connect(tmp_path / "ledger.db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_committed_unit_is_visible_to_another_connection(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "ledger.db")
    store.migrate()
    with store.unit("m1") as u:
        u.save_member(member(debt=0))
    other = SQLiteStore(tmp_path / "ledger.db")
    got = other.get_member("m1")
    assert got is not None
    assert got.debt == 0
    store.close()
    other.close()


def test_units_do_not_nest(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "ledger.db")
    store.migrate()
    with store.unit("m1") as u, pytest.raises(StoreError, match="do not nest"), store.unit("m2"):
        pass  # pragma: no cover - never reached
    assert u.member_ids == ("m1",)
    with store.unit("m2") as u2:  # the outer unit's failure left nothing open
        u2.save_member(member("m2"))
    assert store.member_ids() == ["m2"]
    store.close()


def test_busy_database_times_out_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    SQLiteStore(path).migrate()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    store = SQLiteStore(path, timeout_seconds=0.2)
    try:
        with pytest.raises(StoreError, match=r"write lock within 0\.2 s"), store.unit("m1"):
            pass  # pragma: no cover - never reached
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    with store.unit("m1") as u:  # free again
        u.save_member(member())
    store.close()


def test_closed_store_refuses_work(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "ledger.db")
    store.migrate()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.member_ids()


# --------------------------------------------------------------------------------------------
# bad paths and files
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["", ":memory:", "file:ledger.db?mode=memory"])
def test_non_file_paths_are_refused(path: str) -> None:
    with pytest.raises(StoreError, match="path of a database file"):
        SQLiteStore(path)


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="synchronous='off'"):
        SQLiteStore(tmp_path / "x.db", synchronous="off")  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="timeout_seconds=0"):
        SQLiteStore(tmp_path / "x.db", timeout_seconds=0)


def test_missing_folder_is_named(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "nope" / "ledger.db")
    with pytest.raises(StoreError, match="does not exist; create it"):
        store.migrate()
    assert not (tmp_path / "nope").exists()


def test_file_that_is_not_a_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    content = b"these are my notes, not a database\n" * 200
    path.write_bytes(content)
    with pytest.raises(StoreError, match="not a usable SQLite database"):
        open_store(path)
    assert path.read_bytes() == content


def test_foreign_sqlite_database_keeps_its_tables(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, total TEXT)")
        raw.execute("INSERT INTO orders (total) VALUES ('9.99')")
    store = open_store(path)
    assert store.schema_version() == 3
    store.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT total FROM orders").fetchall() == [("9.99",)]


# --------------------------------------------------------------------------------------------
# open_store
# --------------------------------------------------------------------------------------------


def test_open_store_dispatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    by_path = open_store(tmp_path / "a.db")
    assert isinstance(by_path, SQLiteStore)
    assert by_path.schema_version() == 3
    by_text = open_store(str(tmp_path / "b.db"), migrate=False)
    assert isinstance(by_text, SQLiteStore)
    assert by_text.schema_version() == 0
    relative = open_store("sqlite:///c.db")
    assert isinstance(relative, SQLiteStore)
    assert relative.path == Path("c.db")
    absolute = open_store(f"sqlite:///{tmp_path / 'd.db'}")
    assert isinstance(absolute, SQLiteStore)
    assert absolute.path == tmp_path / "d.db"
    assert isinstance(open_store(":memory:"), MemoryStore)
    assert open_store(by_path) is by_path
    for s in (by_path, by_text, relative, absolute):
        s.close()


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("mysql://root:secret@db/shop", r"root:\*\*\*@db/shop'.*unknown scheme 'mysql'"),
        ("sqlite://", "names no file"),
        (42, "cannot open a ledger store from int"),
    ],
)
def test_open_store_refuses_unknown_targets(target: object, message: str) -> None:
    with pytest.raises(StoreError, match=message) as info:
        open_store(target)
    assert "secret" not in str(info.value)


# --------------------------------------------------------------------------------------------
# schema version 2 and the read cache
# --------------------------------------------------------------------------------------------


def _write_sample(store: SQLiteStore) -> None:
    """Rows of every kind for two members, interleaved, through units."""
    for i, mid in enumerate(("m1", "m2", "m1")):
        with store.unit(mid) as u:
            u.put_event(
                EventRecord(
                    event_id=f"e{i}",
                    member_id=mid,
                    kind="purchase",
                    fingerprint=f"f{i}",
                    outcome={"n": i},
                    recorded_at=T0,
                )
            )
            u.save_member(member(mid, debt=i))
            u.put_batches(
                [
                    batch(f"b{i}", mid, expires_at=day(10 + i), transaction_id=f"t{i}"),
                    batch(f"s{i}", mid, remaining=0),
                ]
            )
            u.append_entries([entry(f"x{i}a", mid), entry(f"x{i}b", mid, points=-3)])
            u.append_activity(
                Activity(member_id=mid, event_id=f"e{i}", occurred_at=day(i), spend="1.10")
            )
            u.put_purchase(
                PurchaseRecord(
                    transaction_id=f"t{i}",
                    member_id=mid,
                    event_id=f"e{i}",
                    occurred_at=day(i),
                    amount="1.10",
                    currency="EUR",
                    points=1,
                )
            )


def _read_sample(store: SQLiteStore) -> dict[str, Any]:
    out: dict[str, Any] = {"expiring": store.members_with_expiring(day(100))}
    for mid in ("m1", "m2"):
        with store.unit(mid) as u:
            totals = u.activity_totals(mid, day(0), day(5))
            open_ids = [b.id for b in u.open_batches(mid)]
            txn = [b.id for b in u.transaction_batches(mid, "t0")]
        out[mid] = (
            store.get_member(mid),
            [e.id for e in store.entries(mid)],
            [b.id for b in store.batches(mid)],
            open_ids,
            txn,
            totals,
        )
    out["events"] = [store.get_event(f"e{i}") for i in range(3)]
    return out


def _write_sample_v1(path: Path) -> None:
    """What :func:`_write_sample` writes, as version-1 rows (the layout before the upgrade)."""
    ts = _sql.utc_text
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("BEGIN")
        for i, mid in enumerate(("m1", "m2", "m1")):
            conn.execute(
                "INSERT INTO loyaltykit_events VALUES (?, ?, 'purchase', ?, ?, ?)",
                (f"e{i}", mid, f"f{i}", _sql.dumps({"n": i}), ts(T0)),
            )
            state = _sql.dumps(member(mid, debt=i).to_dict())
            conn.execute(
                "INSERT INTO loyaltykit_members VALUES (?, ?) ON CONFLICT (member_id)"
                " DO UPDATE SET state = excluded.state",
                (mid, state),
            )
            for bid, remaining, expires in ((f"b{i}", 100, ts(day(10 + i))), (f"s{i}", 0, None)):
                conn.execute(
                    "INSERT INTO loyaltykit_batches VALUES (?, ?, ?, ?, 'purchase', 100, ?, ?,"
                    " NULL, ?)",
                    (
                        bid,
                        mid,
                        f"ev-{bid}",
                        f"t{i}" if remaining else None,
                        remaining,
                        ts(T0),
                        expires,
                    ),
                )
            for eid, points in ((f"x{i}a", 10), (f"x{i}b", -3)):
                conn.execute(
                    "INSERT INTO loyaltykit_entries (id, member_id, event_id, kind, points,"
                    " occurred_at, batch_id, pending_until, expires_at, reason, meta)"
                    " VALUES (?, ?, ?, 'earn', ?, ?, NULL, NULL, NULL, NULL, '{}')",
                    (eid, mid, f"ev-{eid}", points, ts(T0)),
                )
            conn.execute(
                "INSERT INTO loyaltykit_activity (member_id, event_id, occurred_at, spend,"
                " points, visits) VALUES (?, ?, ?, '1.10', 0, 0)",
                (mid, f"e{i}", ts(day(i))),
            )
            conn.execute(
                "INSERT INTO loyaltykit_purchases VALUES (?, ?, ?, ?, '1.10', 'EUR', 1, '0', 0)",
                (f"t{i}", mid, f"e{i}", ts(day(i))),
            )
        conn.execute("COMMIT")


def test_version_1_ledger_upgrades_to_the_current_version_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ledger written at schema version 1 reads back after the keyed-table upgrade exactly as
    the same rows written at version 2, entries in append order included."""
    with monkeypatch.context() as m:
        m.setattr(sqlite_store_module, "MIGRATIONS", _sql.MIGRATIONS)
        old = SQLiteStore(tmp_path / "old.db")
        old.migrate()
        assert old.schema_version() == 1
        old.close()
    _write_sample_v1(tmp_path / "old.db")
    upgraded = SQLiteStore(tmp_path / "old.db")
    upgraded.migrate()
    assert upgraded.schema_version() == 3
    after = _read_sample(upgraded)
    fresh = SQLiteStore(tmp_path / "fresh.db")
    fresh.migrate()
    _write_sample(fresh)
    assert after == _read_sample(fresh)
    assert after["m1"][1] == ["x0a", "x0b", "x2a", "x2b"]
    assert after["m1"][3] == ["b0", "b2"]
    assert after["m1"][5].spend == Decimal("2.20")
    assert after["expiring"] == ["m1", "m2"]
    # the upgraded file keeps working: a new entry goes after the copied ones
    with upgraded.unit("m1") as u:
        u.append_entries([entry("x9", "m1")])
    assert [e.id for e in upgraded.entries("m1")][-1] == "x9"
    upgraded.close()
    fresh.close()


def test_version_2_ledger_upgrades_to_version_3_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ledger written at schema version 2 (keyed events table) reads back after the events
    table is rebuilt in append order exactly as the same rows written at version 3, and keeps
    refusing a second event with a stored id."""
    with monkeypatch.context() as m:
        m.setattr(sqlite_store_module, "MIGRATIONS", sqlite_store_module.MIGRATIONS[:2])
        old = SQLiteStore(tmp_path / "old.db")
        old.migrate()
        assert old.schema_version() == 2
        _write_sample(old)
        old.close()
    upgraded = SQLiteStore(tmp_path / "old.db")
    upgraded.migrate()
    assert upgraded.schema_version() == 3
    fresh = SQLiteStore(tmp_path / "fresh.db")
    fresh.migrate()
    _write_sample(fresh)
    assert _read_sample(upgraded) == _read_sample(fresh)
    with contextlib.closing(sqlite3.connect(tmp_path / "old.db")) as conn:
        sql = conn.execute(
            "SELECT sql FROM sqlite_schema WHERE name = 'loyaltykit_events'"
        ).fetchone()[0]
    assert "WITHOUT ROWID" not in sql
    assert "UNIQUE" in sql
    with pytest.raises(EventExistsError), upgraded.unit("m1") as u:
        u.put_event(upgraded.get_event("e0"))  # type: ignore[arg-type]
    upgraded.close()
    fresh.close()


def test_cache_sees_commits_of_other_connections(tmp_path: Path) -> None:
    """Two store objects on one file (as two processes): each unit of one sees what the other
    committed, although both keep a read cache."""
    a = SQLiteStore(tmp_path / "ledger.db")
    b = SQLiteStore(tmp_path / "ledger.db")
    a.migrate()
    with a.unit("m1") as u:
        u.save_member(member(debt=1))
        u.put_batches([batch("b1", remaining=50)])
        u.append_activity(Activity(member_id="m1", event_id="e1", occurred_at=day(1), visits=1))
    with a.unit("m1") as u:  # fills a's cache
        assert u.load_member("m1").debt == 1  # type: ignore[union-attr]
        assert [x.remaining for x in u.open_batches("m1")] == [50]
        assert u.activity_totals("m1", day(0), day(9)).visits == 1
    with b.unit("m1") as u:
        u.save_member(member(debt=2))
        u.put_batches([batch("b1", remaining=20), batch("b2")])
        u.append_activity(Activity(member_id="m1", event_id="e2", occurred_at=day(2), visits=1))
    with a.unit("m1") as u:
        assert u.load_member("m1").debt == 2  # type: ignore[union-attr]
        assert [(x.id, x.remaining) for x in u.open_batches("m1")] == [("b1", 20), ("b2", 100)]
        assert u.activity_totals("m1", day(0), day(9)).visits == 2
    a.close()
    b.close()


def test_cache_forgets_what_a_rolled_back_unit_wrote(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "ledger.db")
    store.migrate()
    with store.unit("m1") as u:
        u.save_member(member(debt=1))
        u.put_batches([batch("b1", remaining=50)])
    with store.unit("m1") as u:
        assert [x.remaining for x in u.open_batches("m1")] == [50]
        assert u.activity_totals("m1", day(0), day(9)).visits == 0

    def write_then_fail() -> None:
        with store.unit("m1") as u:
            u.save_member(member(debt=9))
            u.put_batches([batch("b1", remaining=0), batch("b3")])
            u.append_activity(Activity(member_id="m1", event_id="e1", occurred_at=day(1), visits=1))
            assert [x.id for x in u.open_batches("m1")] == ["b3"]
            raise ForcedRollbackError

    with pytest.raises(ForcedRollbackError):
        write_then_fail()
    with store.unit("m1") as u:
        assert u.load_member("m1").debt == 1  # type: ignore[union-attr]
        assert [(x.id, x.remaining) for x in u.open_batches("m1")] == [("b1", 50)]
        assert u.activity_totals("m1", day(0), day(9)).visits == 0
    assert store.get_member("m1").debt == 1  # type: ignore[union-attr]
    store.close()


def test_writes_to_members_not_read_first_are_read_back_from_disk(tmp_path: Path) -> None:
    """A unit that writes batches or activity of a member it never read leaves no partial view
    in the cache: the next unit reads the member's rows from the file."""
    store = SQLiteStore(tmp_path / "ledger.db")
    store.migrate()
    with store.unit("m1") as u:
        u.put_batches([batch("b1", remaining=50)])
        u.append_activity(Activity(member_id="m1", event_id="e1", occurred_at=day(1), visits=1))
    with store.unit("m1") as u:
        u.put_batches([batch("b2", remaining=5)])
        u.append_activity(Activity(member_id="m1", event_id="e2", occurred_at=day(2), visits=1))
    with store.unit("m1") as u:
        assert [x.id for x in u.open_batches("m1")] == ["b1", "b2"]
        assert u.activity_totals("m1", day(0), day(9)).visits == 2
    store.close()


def test_activity_rows_of_one_event_at_one_instant_all_count(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "ledger.db")
    store.migrate()
    row = Activity(member_id="m1", event_id="e1", occurred_at=day(1), spend="2.50", visits=1)
    with store.unit("m1") as u:
        u.append_activity(row)
        u.append_activity(row)
    with store.unit("m1") as u:
        u.append_activity(row)
        assert u.activity_totals("m1", day(1), day(1)).spend == 3 * row.spend
    store.close()
    again = SQLiteStore(tmp_path / "ledger.db")
    with again.unit("m1") as u:
        totals = u.activity_totals("m1", day(0), day(2))
    assert (totals.spend, totals.visits) == (3 * row.spend, 3)
    again.close()


def test_cache_starts_over_past_its_row_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read cache never holds more batches and activity rows than its budget, and what it
    answers stays right when it empties itself."""
    monkeypatch.setattr(sqlite_store_module, "_CACHE_ROWS", 5)
    store = SQLiteStore(tmp_path / "ledger.db")
    store.migrate()
    for i in range(8):
        mid = f"m{i % 3}"
        with store.unit(mid) as u:
            u.put_batches([batch(f"b{i}", mid)])
            u.append_activity(
                Activity(member_id=mid, event_id=f"e{i}", occurred_at=day(i), visits=1)
            )
            assert len(u.open_batches(mid)) == i // 3 + 1
            assert u.activity_totals(mid, day(0), day(99)).visits == i // 3 + 1
        assert store._local.cache.rows <= 5
    store.close()


def test_utc_text_of_the_two_instants_of_a_repeated_local_hour() -> None:
    # 01:30 happens twice in New York on 2 November 2025 (fold 0: EDT, fold 1: EST); the two
    # datetimes compare equal and hash alike, but are different instants
    import datetime as dt
    from zoneinfo import ZoneInfo

    first = dt.datetime(2025, 11, 2, 1, 30, tzinfo=ZoneInfo("America/New_York"))
    second = first.replace(fold=1)
    assert _sql.utc_text(first) == "2025-11-02T05:30:00.000000+00:00"
    assert _sql.utc_text(second) == "2025-11-02T06:30:00.000000+00:00"
    assert _sql.utc_text(first) == "2025-11-02T05:30:00.000000+00:00"
    assert _sql.utc_text(first.astimezone(dt.UTC)) == "2025-11-02T05:30:00.000000+00:00"


def test_utc_text_is_fixed_width_utc_iso_text() -> None:
    import datetime as dt
    from zoneinfo import ZoneInfo

    times = [
        dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2025, 1, 1, 0, 0, 0, 5, tzinfo=dt.UTC),
        dt.datetime(1, 1, 1, tzinfo=dt.UTC),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
        dt.datetime(2025, 6, 1, 3, tzinfo=ZoneInfo("Europe/Paris")),
        dt.datetime(
            2025, 6, 1, 3, 0, 0, 120, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))
        ),
    ]
    for _ in range(2):  # memoised the second time round
        for t in times:
            assert _sql.utc_text(t) == t.astimezone(dt.UTC).isoformat(timespec="microseconds")
