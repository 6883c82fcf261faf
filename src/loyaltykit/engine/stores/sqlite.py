"""The SQLite ledger store: the embedded default, one file, stdlib :mod:`sqlite3` only.

Durability and concurrency, in short (the how-to page ``docs/howto/engine-stores.md`` has the
long form):

* The database runs in **WAL** mode. With the default ``synchronous="full"`` every committed unit
  (one event) is fsynced before :meth:`SQLiteStore.unit` returns, so it survives a process crash
  *and* a power cut. ``synchronous="normal"`` skips the fsync at commit: a committed event still
  survives a crash of the process (SIGKILL included), but the last few may be lost, never
  half-written, if the machine loses power.
* A unit is a ``BEGIN IMMEDIATE`` transaction: it takes SQLite's single write lock at once, so
  units are serialised across every thread and process using the file (which serialises every
  member a fortiori). Waiting for the lock is bounded by ``timeout_seconds``.
* Each thread gets its own connection; a store object may be shared by threads. After
  :func:`os.fork` the child opens fresh connections.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import attrs

from loyaltykit.core.ledger import EntryKind, LedgerEntry, TierChange
from loyaltykit.engine.store import (
    Activity,
    ActivityTotals,
    Batch,
    EventExistsError,
    EventRecord,
    MemberState,
    PurchaseRecord,
    StoreUnit,
    batch_order_key,
)
from loyaltykit.engine.stores import _sql
from loyaltykit.errors import StoreError

__all__ = ["SQLiteStore", "SQLiteUnit"]

Synchronous = Literal["full", "normal"]

_NAMES = {name: f"loyaltykit_{name}" for name in _sql.TABLES}

_BATCH_COLUMNS = (
    "id, member_id, event_id, transaction_id, source, points, remaining, earned_at,"
    " pending_until, expires_at"
)
_ENTRY_COLUMNS = (
    "id, member_id, event_id, kind, points, occurred_at, batch_id, pending_until, expires_at,"
    " reason, meta"
)
_TIER_COLUMNS = "member_id, event_id, from_tier, to_tier, occurred_at, reason"
_EVENT_COLUMNS = "event_id, member_id, kind, fingerprint, outcome, recorded_at"
_PURCHASE_COLUMNS = (
    "transaction_id, member_id, event_id, occurred_at, amount, currency, points,"
    " refunded_amount, reversed_points"
)


def _sql_text(template: str) -> str:
    return template.format(**_NAMES)


# Statements, rendered once.
_Q = {
    "get_event": _sql_text(f"SELECT {_EVENT_COLUMNS} FROM {{events}} WHERE event_id = :event_id"),
    "put_event": _sql_text(
        f"INSERT INTO {{events}} ({_EVENT_COLUMNS}) VALUES (:event_id, :member_id, :kind,"
        " :fingerprint, :outcome, :recorded_at) ON CONFLICT (event_id) DO NOTHING"
    ),
    "load_member": _sql_text(
        "SELECT state FROM {members} WHERE member_id = :member_id AND state IS NOT NULL"
    ),
    "save_member": _sql_text(
        "INSERT INTO {members} (member_id, state) VALUES (:member_id, :state)"
        " ON CONFLICT (member_id) DO UPDATE SET state = excluded.state"
    ),
    "open_batches": _sql_text(
        f"SELECT {_BATCH_COLUMNS} FROM {{batches}} WHERE member_id = :member_id AND remaining > 0"
    ),
    "transaction_batches": _sql_text(
        f"SELECT {_BATCH_COLUMNS} FROM {{batches}}"
        " WHERE member_id = :member_id AND transaction_id = :transaction_id"
    ),
    "all_batches": _sql_text(
        f"SELECT {_BATCH_COLUMNS} FROM {{batches}} WHERE member_id = :member_id"
    ),
    "put_batch": _sql_text(
        f"INSERT INTO {{batches}} ({_BATCH_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET remaining = excluded.remaining,"
        " expires_at = excluded.expires_at WHERE {batches}.member_id = excluded.member_id"
    ),
    "batch_owner": _sql_text("SELECT member_id FROM {batches} WHERE id = ?"),
    "get_purchase": _sql_text(
        f"SELECT {_PURCHASE_COLUMNS} FROM {{purchases}} WHERE transaction_id = :transaction_id"
    ),
    "put_purchase": _sql_text(
        f"INSERT INTO {{purchases}} ({_PURCHASE_COLUMNS}) VALUES (:transaction_id, :member_id,"
        " :event_id, :occurred_at, :amount, :currency, :points, :refunded_amount,"
        " :reversed_points) ON CONFLICT (transaction_id) DO UPDATE SET"
        " refunded_amount = excluded.refunded_amount,"
        " reversed_points = excluded.reversed_points"
        " WHERE {purchases}.member_id = excluded.member_id"
    ),
    "append_entry": _sql_text(
        f"INSERT INTO {{entries}} ({_ENTRY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO NOTHING"
    ),
    "append_tier": _sql_text(
        f"INSERT INTO {{tier_changes}} ({_TIER_COLUMNS}) VALUES (:member_id, :event_id,"
        " :from_tier, :to_tier, :occurred_at, :reason)"
    ),
    "append_activity": _sql_text(
        "INSERT INTO {activity} (member_id, event_id, occurred_at, spend, points, visits)"
        " VALUES (:member_id, :event_id, :occurred_at, :spend, :points, :visits)"
    ),
    "activity": _sql_text(
        "SELECT spend, points, visits FROM {activity} WHERE member_id = :member_id"
        " AND occurred_at >= :start AND occurred_at <= :end"
    ),
    "counter_value": _sql_text("SELECT value FROM {counters} WHERE name = :name"),
    "counter_zero": _sql_text(
        "INSERT INTO {counters} (name, value) VALUES (:name, 0) ON CONFLICT (name) DO NOTHING"
    ),
    "counter_add": _sql_text(
        "UPDATE {counters} SET value = value + :amount WHERE name = :name"
        " AND (:cap IS NULL OR value + :amount <= :cap)"
    ),
    "member_ids": _sql_text(
        "SELECT member_id FROM {members} WHERE state IS NOT NULL ORDER BY member_id"
    ),
    "expiring": _sql_text(
        "SELECT DISTINCT member_id FROM {batches} WHERE remaining > 0"
        " AND expires_at IS NOT NULL AND expires_at <= :as_of ORDER BY member_id"
    ),
    "entries": _sql_text(
        f"SELECT {_ENTRY_COLUMNS} FROM {{entries}} WHERE member_id = :member_id ORDER BY seq"
    ),
    "entries_until": _sql_text(
        f"SELECT {_ENTRY_COLUMNS} FROM {{entries}} WHERE member_id = :member_id"
        " AND occurred_at <= :until ORDER BY seq"
    ),
    "tier_history": _sql_text(
        f"SELECT {_TIER_COLUMNS} FROM {{tier_changes}} WHERE member_id = :member_id ORDER BY seq"
    ),
    "version_table_exists": _sql_text(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '{schema_version}'"
    ),
    "version": _sql_text("SELECT MAX(version) FROM {schema_version}"),
    "add_version": _sql_text(
        "INSERT INTO {schema_version} (version, description, applied_at)"
        " VALUES (:version, :description, :applied_at)"
    ),
}

_ts = _sql.utc_text
_opt_ts = _sql.opt_utc_text


def _dt(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def _opt_dt(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value)


# --------------------------------------------------------------------------------------------
# row <-> record conversions (shared with nothing: PostgreSQL has native types)
# --------------------------------------------------------------------------------------------


_BATCH_FIELDS = tuple(a.name for a in attrs.fields(Batch))
_new = object.__new__
_set = object.__setattr__


def _batch(row: tuple[Any, ...]) -> Batch:
    # Rows come from the table this store wrote after validating each Batch (and its CHECK
    # constraint): rebuild them without running the validators again (the hot path reads every
    # open batch of the member for each event).
    values = (
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        _dt(row[7]),
        _opt_dt(row[8]),
        _opt_dt(row[9]),
    )
    batch: Batch = _new(Batch)
    for name, value in zip(_BATCH_FIELDS, values, strict=True):
        _set(batch, name, value)
    return batch


def _entry(row: tuple[Any, ...]) -> LedgerEntry:
    return LedgerEntry(
        id=row[0],
        member_id=row[1],
        event_id=row[2],
        kind=EntryKind(row[3]),
        points=row[4],
        occurred_at=_dt(row[5]),
        batch_id=row[6],
        pending_until=_opt_dt(row[7]),
        expires_at=_opt_dt(row[8]),
        reason=row[9],
        meta=_sql.loads(row[10]),
    )


def _tier(row: tuple[Any, ...]) -> TierChange:
    return TierChange(
        member_id=row[0],
        event_id=row[1],
        from_tier=row[2],
        to_tier=row[3],
        occurred_at=_dt(row[4]),
        reason=row[5],
    )


def _event(row: tuple[Any, ...]) -> EventRecord:
    return EventRecord(
        event_id=row[0],
        member_id=row[1],
        kind=row[2],
        fingerprint=row[3],
        outcome=_sql.loads(row[4]),
        recorded_at=_dt(row[5]),
    )


def _purchase(row: tuple[Any, ...]) -> PurchaseRecord:
    return PurchaseRecord(
        transaction_id=row[0],
        member_id=row[1],
        event_id=row[2],
        occurred_at=_dt(row[3]),
        amount=Decimal(row[4]),
        currency=row[5],
        points=row[6],
        refunded_amount=Decimal(row[7]),
        reversed_points=row[8],
    )


# --------------------------------------------------------------------------------------------
# the unit
# --------------------------------------------------------------------------------------------


class SQLiteUnit:
    """A unit of :class:`SQLiteStore`: one ``BEGIN IMMEDIATE`` transaction on one connection.

    Built by :meth:`SQLiteStore.unit`; see :class:`~loyaltykit.engine.store.StoreUnit` for what
    each method promises.
    """

    __slots__ = ("_conn", "_members")

    def __init__(self, conn: sqlite3.Connection, member_ids: tuple[str, ...]) -> None:
        self._conn = conn
        self._members = member_ids

    @property
    def member_ids(self) -> tuple[str, ...]:
        """The members this unit holds locked, sorted."""
        return self._members

    def _check(self, member_id: str) -> None:
        if member_id not in self._members:
            raise StoreError(
                f"member {member_id!r} is not locked by this unit (locked: {self._members}); "
                "open the unit with every member it writes"
            )

    # -- idempotency --
    def get_event(self, event_id: str) -> EventRecord | None:
        """See :meth:`StoreUnit.get_event <loyaltykit.engine.store.StoreUnit.get_event>`."""
        row = self._conn.execute(_Q["get_event"], {"event_id": event_id}).fetchone()
        return None if row is None else _event(row)

    def put_event(self, record: EventRecord) -> None:
        """See :meth:`StoreUnit.put_event <loyaltykit.engine.store.StoreUnit.put_event>`."""
        cur = self._conn.execute(
            _Q["put_event"],
            {
                "event_id": record.event_id,
                "member_id": record.member_id,
                "kind": record.kind,
                "fingerprint": record.fingerprint,
                "outcome": _sql.dumps(record.outcome),
                "recorded_at": _ts(record.recorded_at),
            },
        )
        if cur.rowcount != 1:
            raise EventExistsError(f"event id {record.event_id!r} is already stored")

    # -- members --
    def load_member(self, member_id: str) -> MemberState | None:
        """See :meth:`StoreUnit.load_member <loyaltykit.engine.store.StoreUnit.load_member>`."""
        self._check(member_id)
        row = self._conn.execute(_Q["load_member"], {"member_id": member_id}).fetchone()
        return None if row is None else MemberState.from_dict(_sql.loads(row[0]))

    def save_member(self, state: MemberState) -> None:
        """See :meth:`StoreUnit.save_member <loyaltykit.engine.store.StoreUnit.save_member>`."""
        self._check(state.member_id)
        self._conn.execute(
            _Q["save_member"],
            {"member_id": state.member_id, "state": _sql.dumps(state.to_dict())},
        )

    # -- batches --
    def open_batches(self, member_id: str) -> list[Batch]:
        """See :meth:`StoreUnit.open_batches <loyaltykit.engine.store.StoreUnit.open_batches>`."""
        self._check(member_id)
        rows = self._conn.execute(_Q["open_batches"], {"member_id": member_id}).fetchall()
        return sorted(map(_batch, rows), key=batch_order_key)

    def transaction_batches(self, member_id: str, transaction_id: str) -> list[Batch]:
        """See :meth:`StoreUnit.transaction_batches
        <loyaltykit.engine.store.StoreUnit.transaction_batches>`."""
        self._check(member_id)
        rows = self._conn.execute(
            _Q["transaction_batches"], {"member_id": member_id, "transaction_id": transaction_id}
        ).fetchall()
        return sorted(map(_batch, rows), key=lambda b: (b.earned_at, b.id))

    def put_batches(self, batches: Sequence[Batch]) -> None:
        """See :meth:`StoreUnit.put_batches <loyaltykit.engine.store.StoreUnit.put_batches>`
        (all rows in one ``executemany``)."""
        check = self._check
        rows = []
        for b in batches:
            check(b.member_id)
            rows.append(
                (
                    b.id,
                    b.member_id,
                    b.event_id,
                    b.transaction_id,
                    b.source,
                    b.points,
                    b.remaining,
                    _ts(b.earned_at),
                    _opt_ts(b.pending_until),
                    _opt_ts(b.expires_at),
                )
            )
        if not rows:
            return
        cur = self._conn.executemany(_Q["put_batch"], rows)
        if cur.rowcount != len(rows):
            # some id already belongs to another member: name it (this unit rolls back anyway)
            for b in batches:
                row = self._conn.execute(_Q["batch_owner"], (b.id,)).fetchone()
                if row is not None and row[0] != b.member_id:
                    raise StoreError(
                        f"batch id {b.id!r} already belongs to another member than {b.member_id!r}"
                    )
            raise StoreError(  # pragma: no cover - the upsert writes every row otherwise
                f"batches {[b.id for b in batches]} were not all written"
            )

    # -- purchases --
    def get_purchase(self, transaction_id: str) -> PurchaseRecord | None:
        """See :meth:`StoreUnit.get_purchase <loyaltykit.engine.store.StoreUnit.get_purchase>`."""
        row = self._conn.execute(_Q["get_purchase"], {"transaction_id": transaction_id}).fetchone()
        return None if row is None else _purchase(row)

    def put_purchase(self, record: PurchaseRecord) -> None:
        """See :meth:`StoreUnit.put_purchase <loyaltykit.engine.store.StoreUnit.put_purchase>`."""
        self._check(record.member_id)
        cur = self._conn.execute(
            _Q["put_purchase"],
            {
                "transaction_id": record.transaction_id,
                "member_id": record.member_id,
                "event_id": record.event_id,
                "occurred_at": _ts(record.occurred_at),
                "amount": str(record.amount),
                "currency": record.currency,
                "points": record.points,
                "refunded_amount": str(record.refunded_amount),
                "reversed_points": record.reversed_points,
            },
        )
        if cur.rowcount != 1:
            raise StoreError(
                f"transaction id {record.transaction_id!r} already belongs to another member "
                f"than {record.member_id!r}"
            )

    # -- append-only rows --
    def append_entries(self, entries: Sequence[LedgerEntry]) -> None:
        """See :meth:`StoreUnit.append_entries
        <loyaltykit.engine.store.StoreUnit.append_entries>` (all rows in one ``executemany``)."""
        check = self._check
        dumps = _sql.dumps
        rows = []
        for e in entries:
            check(e.member_id)
            rows.append(
                (
                    e.id,
                    e.member_id,
                    e.event_id,
                    e.kind.value,
                    e.points,
                    _ts(e.occurred_at),
                    e.batch_id,
                    _opt_ts(e.pending_until),
                    _opt_ts(e.expires_at),
                    e.reason,
                    dumps(e.meta) if e.meta else "{}",
                )
            )
        if not rows:
            return
        cur = self._conn.executemany(_Q["append_entry"], rows)
        if cur.rowcount != len(rows):
            # ON CONFLICT DO NOTHING skipped a row: name the first id that was stored before
            # this call or repeated within it (this unit rolls back anyway)
            seen: set[str] = set()
            for e in entries:
                if e.id in seen:
                    raise StoreError(f"ledger entry id {e.id!r} is already stored")
                seen.add(e.id)
            raise StoreError(
                f"one of the ledger entry ids {[e.id for e in entries]} is already stored"
            )

    def append_tier_change(self, change: TierChange) -> None:
        """See :meth:`StoreUnit.append_tier_change
        <loyaltykit.engine.store.StoreUnit.append_tier_change>`."""
        self._check(change.member_id)
        self._conn.execute(
            _Q["append_tier"],
            {
                "member_id": change.member_id,
                "event_id": change.event_id,
                "from_tier": change.from_tier,
                "to_tier": change.to_tier,
                "occurred_at": _ts(change.occurred_at),
                "reason": change.reason,
            },
        )

    def append_activity(self, activity: Activity) -> None:
        """See :meth:`StoreUnit.append_activity
        <loyaltykit.engine.store.StoreUnit.append_activity>`."""
        self._check(activity.member_id)
        self._conn.execute(
            _Q["append_activity"],
            {
                "member_id": activity.member_id,
                "event_id": activity.event_id,
                "occurred_at": _ts(activity.occurred_at),
                "spend": str(activity.spend),
                "points": activity.points,
                "visits": activity.visits,
            },
        )

    def activity_totals(
        self, member_id: str, start: dt.datetime, end: dt.datetime
    ) -> ActivityTotals:
        """See :meth:`StoreUnit.activity_totals
        <loyaltykit.engine.store.StoreUnit.activity_totals>` (money summed exactly in Python)."""
        self._check(member_id)
        spend, points, visits = Decimal(0), 0, 0
        for row in self._conn.execute(
            _Q["activity"], {"member_id": member_id, "start": _ts(start), "end": _ts(end)}
        ):
            spend += Decimal(row[0])
            points += row[1]
            visits += row[2]
        return ActivityTotals(spend=spend, points=points, visits=visits)

    # -- counters --
    def counter_value(self, name: str) -> int:
        """See :meth:`StoreUnit.counter_value <loyaltykit.engine.store.StoreUnit.counter_value>`."""
        row = self._conn.execute(_Q["counter_value"], {"name": name}).fetchone()
        return 0 if row is None else int(row[0])

    def counter_add(self, name: str, amount: int, cap: int | None) -> bool:
        """See :meth:`StoreUnit.counter_add <loyaltykit.engine.store.StoreUnit.counter_add>`."""
        self._conn.execute(_Q["counter_zero"], {"name": name})
        cur = self._conn.execute(_Q["counter_add"], {"name": name, "amount": amount, "cap": cap})
        return cur.rowcount == 1


# --------------------------------------------------------------------------------------------
# the store
# --------------------------------------------------------------------------------------------


class _Local(threading.local):
    conn: sqlite3.Connection | None = None
    in_unit: bool = False


class SQLiteStore:
    """A :class:`~loyaltykit.engine.store.LedgerStore` in one SQLite file (WAL mode).

    :param path: the database file; created on first use. Its folder must exist.
    :param synchronous: ``"full"`` (default) fsyncs every commit: a committed event survives a
        power cut. ``"normal"`` survives a crash of the process but may lose the last commits on
        a power cut (never half an event).
    :param timeout_seconds: how long a unit waits for the write lock held by another thread or
        process before raising :class:`~loyaltykit.errors.StoreError`.

    The constructor touches nothing; call :meth:`migrate` once (it is idempotent) before the first
    unit, or use :func:`loyaltykit.engine.stores.open_store`, which does.

    >>> import tempfile, pathlib
    >>> folder = tempfile.mkdtemp()
    >>> store = SQLiteStore(pathlib.Path(folder) / "ledger.db")
    >>> store.migrate(); store.schema_version()
    1
    >>> store.close()
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "full",
        timeout_seconds: float = 30.0,
    ) -> None:
        text = os.fspath(path)
        if text in ("", ":memory:") or text.startswith("file:"):
            raise StoreError(
                f"SQLiteStore path {text!r}: give the path of a database file (it is created "
                "if missing); for a store that lives in memory use MemoryStore"
            )
        if synchronous not in ("full", "normal"):
            raise StoreError(
                f"SQLiteStore synchronous={synchronous!r}: must be 'full' (survives power loss) "
                "or 'normal' (survives process crashes)"
            )
        if not timeout_seconds > 0:
            raise StoreError(
                f"SQLiteStore timeout_seconds={timeout_seconds!r}: must be a positive number"
            )
        self._path = Path(text)
        self._synchronous: Synchronous = synchronous
        self._timeout = float(timeout_seconds)
        self._local = _Local()
        self._pid = os.getpid()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._ready = False
        self._closed = False

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    @property
    def synchronous(self) -> Synchronous:
        """The durability setting: ``"full"`` or ``"normal"``."""
        return self._synchronous

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self._path)!r}, synchronous={self._synchronous!r})"

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connections --
    def _where(self) -> str:
        return f"SQLite database {str(self._path)!r}"

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"{self._where()}: this store is closed; open a new one")
        if os.getpid() != self._pid:
            # a forked child must not use its parent's connections: abandon them (unclosed)
            self._pid = os.getpid()
            self._local = _Local()
            self._conns = []
            self._conns_lock = threading.Lock()
        conn = self._local.conn
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    def _connect(self) -> sqlite3.Connection:
        if not self._path.parent.is_dir():
            raise StoreError(
                f"{self._where()}: folder {str(self._path.parent)!r} does not exist; create it "
                "first or choose another path"
            )
        try:
            conn = sqlite3.connect(
                self._path,
                timeout=self._timeout,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=64,
            )
        except sqlite3.Error as exc:
            raise StoreError(f"{self._where()}: cannot open it ({exc})") from exc
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(
                    f"{self._where()}: cannot switch to WAL mode (journal_mode={mode!r}); put "
                    "the file on a local file system"
                )
            conn.execute(f"PRAGMA synchronous={self._synchronous.upper()}")
            conn.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
        except sqlite3.OperationalError as exc:
            conn.close()
            raise StoreError(
                f"{self._where()}: cannot open it for reading and writing ({exc}); check the "
                "permissions of the file and its folder"
            ) from exc
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(
                f"{self._where()}: not a usable SQLite database ({exc}); point --db/path at a "
                "new file or an existing loyaltykit ledger"
            ) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _begin(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise StoreError(
                    f"{self._where()}: could not take the write lock within {self._timeout:g} s "
                    f"({exc}); another process holds a long transaction, or raise "
                    "timeout_seconds"
                ) from exc
            raise StoreError(
                f"{self._where()}: cannot start a write transaction ({exc}); check that the "
                "file and its folder are writable"
            ) from exc

    # -- schema --
    def _version(self, conn: sqlite3.Connection) -> int:
        try:
            if conn.execute(_Q["version_table_exists"]).fetchone() is None:
                return 0
            found = conn.execute(_Q["version"]).fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self._where()}: cannot read the schema version ({exc})") from exc
        return int(found or 0)

    def schema_version(self) -> int:
        """The schema version in the database (0 before :meth:`migrate`)."""
        return self._version(self._conn())

    def migrate(self) -> None:
        """Create the schema or bring it up to date, in one transaction; idempotent.

        :raises StoreError: when the database was written by a newer loyaltykit (its schema
            version is above the last one this code knows), or cannot be written.
        """
        migrations = _sql.MIGRATIONS
        _sql.check_migrations(migrations)
        conn = self._conn()
        if self._local.in_unit:
            raise StoreError(f"{self._where()}: migrate() cannot run inside a unit")
        self._begin(conn)
        try:
            conn.execute(_sql.VERSION_TABLE_DDL["sqlite"].format(**_NAMES))
            found = self._version(conn)
            _sql.check_not_newer(found, self._where(), migrations)
            for step in migrations[found:]:
                for statement in step.render("sqlite", _NAMES):
                    conn.execute(statement)
                conn.execute(
                    _Q["add_version"],
                    {
                        "version": step.version,
                        "description": step.description,
                        "applied_at": _ts(_sql.now_utc()),
                    },
                )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise StoreError(f"{self._where()}: migration failed, nothing changed ({exc})") from exc
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._ready = True

    def _require_ready(self, conn: sqlite3.Connection) -> None:
        if not self._ready:
            _sql.require_current(self._version(conn), self._where(), _sql.MIGRATIONS)
            self._ready = True

    # -- units --
    def unit(self, member_id: str, *more: str) -> AbstractContextManager[StoreUnit]:
        """Open one ``BEGIN IMMEDIATE`` transaction for the given members.

        Commits (durably, see ``synchronous``) when the block exits cleanly; rolls back and
        re-raises when it raises. Units do not nest within a thread.
        """
        return self._unit(tuple(sorted({member_id, *more})))

    @contextmanager
    def _unit(self, members: tuple[str, ...]) -> Iterator[StoreUnit]:
        conn = self._conn()
        local = self._local
        if local.in_unit:
            raise StoreError(
                f"{self._where()}: a unit is already open in this thread; units do not nest "
                "(open one unit naming every member instead)"
            )
        self._require_ready(conn)
        self._begin(conn)
        local.in_unit = True
        try:
            try:
                yield SQLiteUnit(conn, members)
            except sqlite3.Error as exc:
                conn.execute("ROLLBACK")
                raise StoreError(f"{self._where()}: {exc}; the unit was rolled back") from exc
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreError(
                    f"{self._where()}: commit failed ({exc}); the unit was rolled back"
                ) from exc
        finally:
            local.in_unit = False

    # -- store-wide reads --
    def _read(self, key: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        conn = self._conn()
        self._require_ready(conn)
        try:
            return conn.execute(_Q[key], params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self._where()}: read failed ({exc})") from exc

    def member_ids(self) -> list[str]:
        """Ids of all members with a saved state, sorted."""
        return [row[0] for row in self._read("member_ids", {})]

    def get_member(self, member_id: str) -> MemberState | None:
        """The committed state of a member, or ``None``."""
        rows = self._read("load_member", {"member_id": member_id})
        return MemberState.from_dict(_sql.loads(rows[0][0])) if rows else None

    def members_with_expiring(self, as_of: dt.datetime) -> list[str]:
        """Sorted ids of members having an open batch with ``expires_at <= as_of``."""
        return [row[0] for row in self._read("expiring", {"as_of": _ts(as_of)})]

    def entries(self, member_id: str, *, until: dt.datetime | None = None) -> list[LedgerEntry]:
        """The member's ledger entries in append order (``occurred_at <= until`` if given)."""
        if until is None:
            rows = self._read("entries", {"member_id": member_id})
        else:
            rows = self._read("entries_until", {"member_id": member_id, "until": _ts(until)})
        return [_entry(row) for row in rows]

    def batches(self, member_id: str) -> list[Batch]:
        """All the member's batches, spent ones too, in draw order."""
        rows = self._read("all_batches", {"member_id": member_id})
        return sorted(map(_batch, rows), key=batch_order_key)

    def tier_history(self, member_id: str) -> list[TierChange]:
        """The member's tier changes in append order."""
        return [_tier(row) for row in self._read("tier_history", {"member_id": member_id})]

    def get_event(self, event_id: str) -> EventRecord | None:
        """The committed record of ``event_id``, or ``None``."""
        rows = self._read("get_event", {"event_id": event_id})
        return _event(rows[0]) if rows else None

    def close(self) -> None:
        """Close every connection this store opened; idempotent."""
        if self._closed:
            return
        self._closed = True
        with self._conns_lock:
            conns, self._conns = self._conns, []
        if os.getpid() != self._pid:
            return
        for conn in conns:
            conn.close()
