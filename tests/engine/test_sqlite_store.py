"""The SQLite store: the conformance suite, migrations, durability settings and bad paths."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sql_helpers import SQLStoreBehaviour, StoreMaker
from store_conformance import StoreConformance, member

from loyaltykit.engine.memory import MemoryStore
from loyaltykit.engine.store import LedgerStore
from loyaltykit.engine.stores import SQLiteStore, open_store
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
    assert store.schema_version() == 1
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
    assert by_path.schema_version() == 1
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
