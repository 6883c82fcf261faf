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
* Each connection keeps a **read cache** of what it last read or wrote of a member (state, open
  batches, activity rows), valid only while no *other* connection has committed:
  ``PRAGMA data_version`` (read once per unit, under the write lock) tells, and any change by
  another connection, thread or process empties the cache. A single writer (the common embedded
  case) therefore reads a member from disk once; several writers on one file stay correct and
  simply read more. What a unit reads or writes reaches the cache only after its commit succeeds.
* Schema version 2 (see :data:`MIGRATIONS`) keys the hot tables by what they are looked up by
  (``WITHOUT ROWID`` where a table has no other index), and version 3 appends events to a rowid
  table with a key index: an event writes about 11 pages to the WAL instead of 13-14 (counted
  from the WAL frames of the engine benchmark). Each page is a WAL frame that the commit writes
  and a checkpoint copies.
* :meth:`SQLiteStore.pipeline` overlaps each unit's fsync with the caller's work on the next
  unit (:meth:`Engine.process_many <loyaltykit.engine.Engine.process_many>` and the ``ingest``
  command use it); every unit still gets its own fsync.
"""

from __future__ import annotations

import bisect
import datetime as dt
import os
import select
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from loyaltykit.core.ledger import EntryKind, LedgerEntry, TierChange
from loyaltykit.engine._trusted import builder
from loyaltykit.engine.store import (
    Activity,
    ActivityTotals,
    Batch,
    EventExistsError,
    EventRecord,
    MemberState,
    PurchaseRecord,
    StoreUnit,
    _DurableCallbacks,
    _place_open_batch,
    _stored_state,
    batch_order_key,
)
from loyaltykit.engine.stores import _sql
from loyaltykit.engine.stores._sql import Migration
from loyaltykit.errors import StoreError

__all__ = ["MIGRATIONS", "SQLitePipeline", "SQLiteStore", "SQLiteUnit"]

Synchronous = Literal["full", "normal"]

_TXN_COUNTER = "txn:{}"
"""Name of the counter the engine keeps per refund transaction id (read with purchases)."""

_NAMES = {name: f"loyaltykit_{name}" for name in _sql.TABLES}


def _rebuild(table: str, create: str, columns: str, *after: str) -> tuple[str, ...]:
    """Statements that rebuild ``table`` as ``create`` (a ``CREATE TABLE {table}_v2 ...``
    template), copying ``columns``, then run ``after`` (indexes) on the new table."""
    return (
        create,
        f"INSERT INTO {{{table}}}_v2 ({columns}) SELECT {columns} FROM {{{table}}}",
        f"DROP TABLE {{{table}}}",
        f"ALTER TABLE {{{table}}}_v2 RENAME TO {{{table}}}",
        *after,
    )


MIGRATIONS: tuple[Migration, ...] = (
    *_sql.MIGRATIONS,
    Migration(
        2,
        "keyed tables: fewer b-trees written per event",
        (
            # events: found by id only -> one b-tree instead of a rowid table plus its key index
            *_rebuild(
                "events",
                "CREATE TABLE {events}_v2 (event_id {key} PRIMARY KEY, member_id {key} NOT NULL,"
                " kind TEXT NOT NULL, fingerprint TEXT NOT NULL, outcome {json} NOT NULL,"
                " recorded_at {ts} NOT NULL){keyed}",
                "event_id, member_id, kind, fingerprint, outcome, recorded_at",
            ),
            # batches: keyed by member (every read is a member's), one partial index of the
            # open ones for the unit's reads and the expiry job
            *_rebuild(
                "batches",
                "CREATE TABLE {batches}_v2 (member_id {key} NOT NULL, id {key} NOT NULL,"
                " event_id {key} NOT NULL, transaction_id {key}, source TEXT NOT NULL,"
                " points {int} NOT NULL, remaining {int} NOT NULL, earned_at {ts} NOT NULL,"
                " pending_until {ts}, expires_at {ts},"
                " CHECK (remaining >= 0 AND remaining <= points),"
                " PRIMARY KEY (member_id, id)){keyed}",
                "member_id, id, event_id, transaction_id, source, points, remaining, earned_at,"
                " pending_until, expires_at",
                "CREATE INDEX loyaltykit_batches_open ON {batches} (member_id, expires_at)"
                " WHERE remaining > 0",
            ),
            # entries: append order is the rowid; one index serves lookups and unique ids
            *_rebuild(
                "entries",
                "CREATE TABLE {entries}_v2 (seq {seq}, member_id {key} NOT NULL,"
                " id {key} NOT NULL, event_id {key} NOT NULL, kind TEXT NOT NULL,"
                " points {int} NOT NULL, occurred_at {ts} NOT NULL, batch_id {key},"
                " pending_until {ts}, expires_at {ts}, reason TEXT, meta {json} NOT NULL,"
                " UNIQUE (member_id, id))",
                "seq, member_id, id, event_id, kind, points, occurred_at, batch_id,"
                " pending_until, expires_at, reason, meta",
            ),
            # activity: keyed by member and time (the window queries); ``seq`` only tells apart
            # rows of one event at one instant
            *_rebuild(
                "activity",
                "CREATE TABLE {activity}_v2 (member_id {key} NOT NULL, occurred_at {ts} NOT NULL,"
                " event_id {key} NOT NULL, seq {int} NOT NULL, spend {num} NOT NULL,"
                " points {int} NOT NULL, visits {int} NOT NULL,"
                " PRIMARY KEY (member_id, occurred_at, event_id, seq)){keyed}",
                "member_id, occurred_at, event_id, seq, spend, points, visits",
            ),
        ),
    ),
    Migration(
        3,
        "events in append order: a rowid table and its key index",
        # a keyed (WITHOUT ROWID) table keeps the ~0.5 kB outcome rows in an index b-tree,
        # whose inserts split and rebalance pages often (3.2 pages written per event, measured
        # from the WAL); appended to a rowid table, plus a small key index: 2.3
        _rebuild(
            "events",
            "CREATE TABLE {events}_v2 (event_id {key} NOT NULL UNIQUE, member_id {key} NOT NULL,"
            " kind TEXT NOT NULL, fingerprint TEXT NOT NULL, outcome {json} NOT NULL,"
            " recorded_at {ts} NOT NULL)",
            "event_id, member_id, kind, fingerprint, outcome, recorded_at",
        ),
    ),
)
"""The SQLite schema's history: the shared first step (:data:`loyaltykit.engine.stores._sql.MIGRATIONS`),
then SQLite's own. Append new steps; never edit a released one."""

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
    "data_version": "PRAGMA data_version",
    "get_event": _sql_text(f"SELECT {_EVENT_COLUMNS} FROM {{events}} WHERE event_id = ?"),
    "put_event": _sql_text(
        f"INSERT INTO {{events}} ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (event_id) DO NOTHING"
    ),
    "load_member": _sql_text(
        "SELECT state FROM {members} WHERE member_id = ? AND state IS NOT NULL"
    ),
    "save_member": _sql_text(
        "INSERT INTO {members} (member_id, state) VALUES (?, ?)"
        " ON CONFLICT (member_id) DO UPDATE SET state = excluded.state"
    ),
    "open_batches": _sql_text(
        f"SELECT {_BATCH_COLUMNS} FROM {{batches}} INDEXED BY loyaltykit_batches_open"
        " WHERE member_id = ? AND remaining > 0"
    ),
    "transaction_batches": _sql_text(
        f"SELECT {_BATCH_COLUMNS} FROM {{batches}} WHERE member_id = ? AND transaction_id = ?"
    ),
    "all_batches": _sql_text(f"SELECT {_BATCH_COLUMNS} FROM {{batches}} WHERE member_id = ?"),
    "put_batch": _sql_text(
        f"INSERT INTO {{batches}} ({_BATCH_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (member_id, id) DO UPDATE SET remaining = excluded.remaining,"
        " expires_at = excluded.expires_at"
    ),
    "update_batch": _sql_text(
        "UPDATE {batches} SET remaining = ?, expires_at = ? WHERE member_id = ? AND id = ?"
    ),
    "purchase_and_counter": _sql_text(
        "SELECT "
        + ", ".join(f"p.{c.strip()}" for c in _PURCHASE_COLUMNS.split(","))
        + ", (SELECT value FROM {counters} WHERE name = ?2)"
        " FROM (SELECT 1) LEFT JOIN {purchases} AS p ON p.transaction_id = ?1"
    ),
    "put_purchase": _sql_text(
        f"INSERT INTO {{purchases}} ({_PURCHASE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (transaction_id) DO UPDATE SET"
        " refunded_amount = excluded.refunded_amount,"
        " reversed_points = excluded.reversed_points"
        " WHERE {purchases}.member_id = excluded.member_id"
    ),
    "append_entry": _sql_text(
        f"INSERT INTO {{entries}} ({_ENTRY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (member_id, id) DO NOTHING"
    ),
    "append_tier": _sql_text(
        f"INSERT INTO {{tier_changes}} ({_TIER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
    ),
    "append_activity": _sql_text(
        "INSERT INTO {activity} (member_id, occurred_at, event_id, seq, spend, points, visits)"
        " VALUES (?, ?, ?, 0, ?, ?, ?) ON CONFLICT DO NOTHING"
    ),
    "append_activity_again": _sql_text(
        "INSERT INTO {activity} (member_id, occurred_at, event_id, seq, spend, points, visits)"
        " SELECT ?1, ?2, ?3, MAX(seq) + 1, ?4, ?5, ?6 FROM {activity}"
        " WHERE member_id = ?1 AND occurred_at = ?2 AND event_id = ?3"
    ),
    "activity": _sql_text(
        "SELECT occurred_at, spend, points, visits FROM {activity} WHERE member_id = ?"
        " ORDER BY occurred_at"
    ),
    "counter_value": _sql_text("SELECT value FROM {counters} WHERE name = ?"),
    "counter_zero": _sql_text(
        "INSERT INTO {counters} (name, value) VALUES (?, 0) ON CONFLICT (name) DO NOTHING"
    ),
    "counter_add": _sql_text(
        "UPDATE {counters} SET value = value + ?1 WHERE name = ?2"
        " AND (?3 IS NULL OR value + ?1 <= ?3)"
    ),
    "member_ids": _sql_text(
        "SELECT member_id FROM {members} WHERE state IS NOT NULL ORDER BY member_id"
    ),
    "expiring": _sql_text(
        "SELECT DISTINCT member_id FROM {batches} WHERE remaining > 0"
        " AND expires_at IS NOT NULL AND expires_at <= ? ORDER BY member_id"
    ),
    "entries": _sql_text(
        f"SELECT {_ENTRY_COLUMNS} FROM {{entries}} WHERE member_id = ? ORDER BY seq"
    ),
    "entries_until": _sql_text(
        f"SELECT {_ENTRY_COLUMNS} FROM {{entries}} WHERE member_id = ?"
        " AND occurred_at <= ? ORDER BY seq"
    ),
    "tier_history": _sql_text(
        f"SELECT {_TIER_COLUMNS} FROM {{tier_changes}} WHERE member_id = ? ORDER BY seq"
    ),
    "version_table_exists": _sql_text(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '{schema_version}'"
    ),
    "version": _sql_text("SELECT MAX(version) FROM {schema_version}"),
    "add_version": _sql_text(
        "INSERT INTO {schema_version} (version, description, applied_at) VALUES (?, ?, ?)"
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


_new_batch = builder(Batch)


def _batch(row: tuple[Any, ...]) -> Batch:
    # Rows come from the table this store wrote after validating each Batch (and its CHECK
    # constraint): rebuild them without running the validators again (the hot path reads every
    # open batch of the member for each event).
    return _new_batch(
        id=row[0],
        member_id=row[1],
        event_id=row[2],
        transaction_id=row[3],
        source=row[4],
        points=row[5],
        remaining=row[6],
        earned_at=_dt(row[7]),
        pending_until=_opt_dt(row[8]),
        expires_at=_opt_dt(row[9]),
    )


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


_CACHE_MEMBERS = 50_000
"""Members a connection's read cache holds at most; past that it starts over (empty)."""

_CACHE_ROWS = 1_000_000
"""Batches and activity rows a connection's read cache holds at most (counted as they are
added); past that it starts over (empty). Bounds its memory whatever the members' histories."""

_ActivityRow = _sql.ActivityRow


class _Cache:
    """Committed data one connection has read or written, while no other connection commits.

    Values are immutable (frozen attrs records, tuples) so that units can hand them out without
    copying. ``version`` is the ``PRAGMA data_version`` the entries are valid for.
    """

    __slots__ = ("activity", "members", "open", "rows", "version")

    def __init__(self) -> None:
        self.version: int | None = None
        self.members: dict[str, MemberState | None] = {}
        self.open: dict[str, tuple[Batch, ...]] = {}
        self.activity: dict[str, tuple[_ActivityRow, ...]] = {}
        self.rows = 0

    def clear(self) -> None:
        self.version = None
        self.rows = 0
        self.members.clear()
        self.open.clear()
        self.activity.clear()


class SQLiteUnit:
    """A unit of :class:`SQLiteStore`: one ``BEGIN IMMEDIATE`` transaction on one connection.

    Built by :meth:`SQLiteStore.unit`; see :class:`~loyaltykit.engine.store.StoreUnit` for what
    each method promises. Reads of member state, open batches and activity are served from the
    connection's cache when it is valid; what the unit reads and writes is kept aside and reaches
    the cache only when the unit commits.
    """

    __slots__ = (
        "_activity",
        "_cache",
        "_conn",
        "_counters",
        "_members",
        "_open",
        "_stale",
        "_state",
    )

    def __init__(
        self, conn: sqlite3.Connection, member_ids: tuple[str, ...], cache: _Cache
    ) -> None:
        self._conn = conn
        self._members = member_ids
        self._cache = cache
        # this unit's view (committed data plus its own writes) of what it touched
        self._state: dict[str, MemberState | None] = {}
        self._open: dict[str, tuple[Batch, ...]] = {}
        self._activity: dict[str, tuple[_ActivityRow, ...]] = {}
        # members whose open batches / activity this unit changed without knowing them all
        self._stale: set[str] = set()
        # counter values read along with a purchase (see get_purchase)
        self._counters: dict[str, int] = {}

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

    def _publish(self) -> None:
        """After a successful commit: what this unit saw becomes the connection's cache."""
        cache = self._cache
        added = sum(map(len, self._open.values())) + sum(map(len, self._activity.values()))
        if len(cache.members) > _CACHE_MEMBERS or cache.rows + added > _CACHE_ROWS:
            version = cache.version
            cache.clear()
            cache.version = version
        cache.members.update(self._state)
        if added > _CACHE_ROWS:  # more than the whole budget: keep none of it
            self._stale.update(self._open, self._activity)
            self._open.clear()
            self._activity.clear()
            added = 0
        cache.rows += added
        for member_id in self._stale:
            cache.open.pop(member_id, None)
            cache.activity.pop(member_id, None)
        cache.open.update(self._open)
        cache.activity.update(self._activity)

    # -- idempotency --
    def get_event(self, event_id: str) -> EventRecord | None:
        """See :meth:`StoreUnit.get_event <loyaltykit.engine.store.StoreUnit.get_event>`."""
        row = self._conn.execute(_Q["get_event"], (event_id,)).fetchone()
        return None if row is None else _event(row)

    def put_event(self, record: EventRecord) -> None:
        """See :meth:`StoreUnit.put_event <loyaltykit.engine.store.StoreUnit.put_event>`."""
        cur = self._conn.execute(
            _Q["put_event"],
            (
                record.event_id,
                record.member_id,
                record.kind,
                record.fingerprint,
                _sql.dumps(dict(record.outcome)),
                _ts(record.recorded_at),
            ),
        )
        if cur.rowcount != 1:
            raise EventExistsError(f"event id {record.event_id!r} is already stored")

    # -- members --
    def load_member(self, member_id: str) -> MemberState | None:
        """See :meth:`StoreUnit.load_member <loyaltykit.engine.store.StoreUnit.load_member>`."""
        self._check(member_id)
        state = self._state
        if member_id in state:
            return state[member_id]
        cached = self._cache.members
        if member_id in cached:
            found = cached[member_id]
        else:
            row = self._conn.execute(_Q["load_member"], (member_id,)).fetchone()
            found = None if row is None else _stored_state(_sql.loads(row[0]))
        state[member_id] = found
        return found

    def save_member(self, state: MemberState) -> None:
        """See :meth:`StoreUnit.save_member <loyaltykit.engine.store.StoreUnit.save_member>`."""
        self._check(state.member_id)
        self._conn.execute(_Q["save_member"], (state.member_id, _sql.dumps(state.to_dict())))
        self._state[state.member_id] = state

    # -- batches --
    def _known_open(self, member_id: str) -> tuple[Batch, ...] | None:
        found = self._open.get(member_id)
        if found is None and member_id not in self._stale:
            found = self._cache.open.get(member_id)
        return found

    def open_batches(self, member_id: str) -> list[Batch]:
        """See :meth:`StoreUnit.open_batches <loyaltykit.engine.store.StoreUnit.open_batches>`."""
        self._check(member_id)
        found = self._known_open(member_id)
        if found is None:
            rows = self._conn.execute(_Q["open_batches"], (member_id,)).fetchall()
            found = tuple(sorted(map(_batch, rows), key=batch_order_key))
            # read after this unit's own writes, if any: valid once the unit commits
            self._open[member_id] = found
            self._stale.discard(member_id)
        return list(found)

    def transaction_batches(self, member_id: str, transaction_id: str) -> list[Batch]:
        """See :meth:`StoreUnit.transaction_batches
        <loyaltykit.engine.store.StoreUnit.transaction_batches>`."""
        self._check(member_id)
        rows = self._conn.execute(_Q["transaction_batches"], (member_id, transaction_id)).fetchall()
        return sorted(map(_batch, rows), key=lambda b: (b.earned_at, b.id))

    def put_batches(self, batches: Sequence[Batch]) -> None:
        """See :meth:`StoreUnit.put_batches <loyaltykit.engine.store.StoreUnit.put_batches>`
        (new rows in one ``executemany``, updates of batches this unit knows to be stored in
        another).

        Batch ids are unique per member here (the engine's are unique store-wide: they start
        with the event id)."""
        check = self._check
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        # the open batches of each member as this unit sees them, kept in draw order (sort keys
        # end with the id: no ties); None when not known
        views: dict[str, list[Batch] | None] = {}
        for b in batches:
            member_id = b.member_id
            if member_id in views:
                view = views[member_id]
            else:
                check(member_id)
                known = self._known_open(member_id)
                view = views[member_id] = None if known is None else list(known)
            if view is not None and _place_open_batch(view, b):
                # an open batch is stored: only remaining and expires_at may change
                updates.append((b.remaining, _opt_ts(b.expires_at), member_id, b.id))
            else:
                inserts.append(
                    (
                        b.id,
                        member_id,
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
        # inserts first: a batch given twice is inserted, then updated
        if inserts:
            self._conn.executemany(_Q["put_batch"], inserts)
        if updates:
            self._conn.executemany(_Q["update_batch"], updates)
        for member_id, view in views.items():
            if view is None:
                self._stale.add(member_id)
            else:
                self._open[member_id] = tuple(view)

    # -- purchases --
    def get_purchase(self, transaction_id: str) -> PurchaseRecord | None:
        """See :meth:`StoreUnit.get_purchase <loyaltykit.engine.store.StoreUnit.get_purchase>`.

        The engine follows the purchase lookup with one of the counter that marks the
        transaction id as used by a refund; both are read by one statement, and the counter's
        value is kept for that :meth:`counter_value` (a :meth:`counter_add` of it drops it).
        """
        name = _TXN_COUNTER.format(transaction_id)
        row = self._conn.execute(_Q["purchase_and_counter"], (transaction_id, name)).fetchone()
        self._counters[name] = 0 if row[-1] is None else int(row[-1])
        return None if row[0] is None else _purchase(row)

    def put_purchase(self, record: PurchaseRecord) -> None:
        """See :meth:`StoreUnit.put_purchase <loyaltykit.engine.store.StoreUnit.put_purchase>`."""
        self._check(record.member_id)
        cur = self._conn.execute(
            _Q["put_purchase"],
            (
                record.transaction_id,
                record.member_id,
                record.event_id,
                _ts(record.occurred_at),
                str(record.amount),
                record.currency,
                record.points,
                str(record.refunded_amount),
                record.reversed_points,
            ),
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
        members = self._members
        dumps = _sql.dumps
        rows = []
        for e in entries:
            if e.member_id not in members:
                self._check(e.member_id)
            pending, expires, meta = e.pending_until, e.expires_at, e.meta
            rows.append(
                (
                    e.id,
                    e.member_id,
                    e.event_id,
                    e.kind.value,
                    e.points,
                    _ts(e.occurred_at),
                    e.batch_id,
                    None if pending is None else _ts(pending),
                    None if expires is None else _ts(expires),
                    e.reason,
                    # a plain dict: the encoder's fallback for read-only mappings costs a call
                    dumps(dict(meta)) if meta else "{}",
                )
            )
        if not rows:
            return
        cur = self._conn.executemany(_Q["append_entry"], rows)
        if cur.rowcount != len(rows):
            # ON CONFLICT DO NOTHING skipped a row: name the first id that was stored before
            # this call or repeated within it (this unit rolls back anyway)
            seen: set[tuple[str, str]] = set()
            for e in entries:
                if (e.member_id, e.id) in seen:
                    raise StoreError(f"ledger entry id {e.id!r} is already stored")
                seen.add((e.member_id, e.id))
            raise StoreError(
                f"one of the ledger entry ids {[e.id for e in entries]} is already stored"
            )

    def append_tier_change(self, change: TierChange) -> None:
        """See :meth:`StoreUnit.append_tier_change
        <loyaltykit.engine.store.StoreUnit.append_tier_change>`."""
        self._check(change.member_id)
        self._conn.execute(
            _Q["append_tier"],
            (
                change.member_id,
                change.event_id,
                change.from_tier,
                change.to_tier,
                _ts(change.occurred_at),
                change.reason,
            ),
        )

    def _known_activity(self, member_id: str) -> tuple[_ActivityRow, ...] | None:
        found = self._activity.get(member_id)
        if found is None and member_id not in self._stale:
            found = self._cache.activity.get(member_id)
        return found

    def append_activity(self, activity: Activity) -> None:
        """See :meth:`StoreUnit.append_activity
        <loyaltykit.engine.store.StoreUnit.append_activity>`."""
        member_id = activity.member_id
        self._check(member_id)
        params = (
            member_id,
            _ts(activity.occurred_at),
            activity.event_id,
            str(activity.spend),
            activity.points,
            activity.visits,
        )
        if self._conn.execute(_Q["append_activity"], params).rowcount != 1:
            # another row of this event at this instant: number it after the others
            self._conn.execute(_Q["append_activity_again"], params)
        known = self._known_activity(member_id)
        if known is None:
            self._stale.add(member_id)
            return
        rows = list(known)
        bisect.insort_right(
            rows,
            (activity.occurred_at, activity.spend, activity.points, activity.visits),
            key=_sql.activity_time,
        )
        self._activity[member_id] = tuple(rows)

    def activity_totals(
        self, member_id: str, start: dt.datetime, end: dt.datetime
    ) -> ActivityTotals:
        """See :meth:`StoreUnit.activity_totals
        <loyaltykit.engine.store.StoreUnit.activity_totals>` (money summed exactly in Python,
        over the member's activity rows, read once and then kept in the cache)."""
        self._check(member_id)
        rows = self._known_activity(member_id)
        if rows is None:
            rows = tuple(
                (_dt(r[0]), Decimal(r[1]), r[2], r[3])
                for r in self._conn.execute(_Q["activity"], (member_id,))
            )
            self._activity[member_id] = rows
            self._stale.discard(member_id)
        # times compare as instants, like the fixed-width UTC text they are stored as
        spend, points, visits = _sql.sum_activity(rows, start, end)
        return ActivityTotals(spend=spend, points=points, visits=visits)

    # -- counters --
    def counter_value(self, name: str) -> int:
        """See :meth:`StoreUnit.counter_value <loyaltykit.engine.store.StoreUnit.counter_value>`."""
        if name in self._counters:
            return self._counters.pop(name)
        row = self._conn.execute(_Q["counter_value"], (name,)).fetchone()
        return 0 if row is None else int(row[0])

    def counter_add(self, name: str, amount: int, cap: int | None) -> bool:
        """See :meth:`StoreUnit.counter_add <loyaltykit.engine.store.StoreUnit.counter_add>`."""
        self._counters.pop(name, None)
        self._conn.execute(_Q["counter_zero"], (name,))
        cur = self._conn.execute(_Q["counter_add"], (amount, name, cap))
        return cur.rowcount == 1


# --------------------------------------------------------------------------------------------
# pipelines: a unit's fsync overlapping the next unit's work
# --------------------------------------------------------------------------------------------

_SYNC_CHILD = """\
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
sync = getattr(os, "fdatasync", os.fsync)
os.write(1, b"r")
while True:
    asked = os.read(0, 4096)
    if not asked:
        break
    try:
        sync(fd)
        answer = b"."
    except OSError as exc:
        answer = b"%d;" % (exc.errno or 0)
    os.write(1, answer * len(asked))
"""
"""The fsync helper process: ``r`` once it is ready, then one ``fdatasync`` of the WAL file per
byte it reads, answered with ``.`` (done) or ``<errno>;`` (failed). It exits when its stdin
closes (the store closes it, or the parent died)."""


_fsync = getattr(os, "fdatasync", os.fsync)


class _Syncer:
    """A helper process that fsyncs one connection's WAL file on request.

    A process rather than a thread: a thread would need the GIL to *start* each fsync, and
    while the caller runs Python it gets it only after the interpreter's switch interval
    (5 ms), too late to overlap anything. The helper needs no GIL; asking is one ``write`` to a
    pipe. ``fsync`` of any descriptor of a file flushes the file, so the helper's own
    descriptor of the WAL makes the store's commits durable. Until the helper says it is up,
    and once it is gone, the store fsyncs with a descriptor of its own instead (a helper that
    died with an fsync asked for is covered by that fsync, done later).
    """

    __slots__ = (
        "_alive",
        "_asked",
        "_in",
        "_out",
        "_own",
        "_pipes",
        "_proc",
        "_ready",
        "_where",
    )

    def __init__(self, wal: str, where: str) -> None:
        self._where = where
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _SYNC_CHILD, wal],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
            close_fds=True,
        )
        stdin, stdout = self._proc.stdin, self._proc.stdout
        if stdin is None or stdout is None:  # pragma: no cover - PIPE always gives both
            raise OSError("the fsync helper process has no pipes")
        self._pipes = (stdin, stdout)
        self._in = stdin.fileno()
        self._out = stdout.fileno()
        self._asked = 0
        self._alive = True
        # until the helper is up (it takes a Python start, some 10-20 ms), commits are
        # fsynced here, with a descriptor of our own: no wait for the helper's start
        self._ready = False
        self._own = os.open(wal, os.O_RDONLY)

    @property
    def busy(self) -> bool:
        """Whether an fsync was asked for and not yet answered."""
        return self._asked > 0

    @property
    def alive(self) -> bool:
        """Whether the helper can take requests: running, and no fsync of it failed."""
        return self._alive and self._proc.poll() is None

    def ask(self) -> None:
        """Start an fsync of everything written to the WAL so far; returns at once. While the
        helper is starting, or once it is gone, the fsync is done here before returning."""
        if self._alive and (self._ready or self._is_ready()):
            try:
                os.write(self._in, b"s")
            except OSError:
                self._gone()
            else:
                self._asked += 1
                return
        self._fsync_here()

    def _is_ready(self) -> bool:
        """Whether the helper said it is up (without blocking)."""
        if select.select([self._out], [], [], 0)[0]:
            if os.read(self._out, 1) == b"r":
                self._ready = True
            else:  # it exited before it was up
                self._gone()
        return self._ready

    def _gone(self) -> None:
        """The helper died: what it was asked to fsync is fsynced here, and so is everything
        after (the store replaces it at the next pipeline)."""
        self._alive = False
        self._asked = 0
        self._fsync_here()

    def _fsync_here(self) -> None:
        try:
            _fsync(self._own)
        except OSError as exc:
            raise self._failure(str(exc)) from exc

    def _failure(self, why: str) -> StoreError:
        return StoreError(
            f"{self._where}: fsync of the write-ahead log failed ({why}); the last unit is "
            "committed but may not survive a power cut: check the disk, then process its event "
            "again (events are idempotent)"
        )

    def wait(self) -> None:
        """Block until every fsync asked for is done; raise if one failed."""
        failed = b""
        while self._asked:
            answer = os.read(self._out, 4096)
            if not answer:
                self._gone()
                break
            self._asked -= answer.count(b".") + answer.count(b";")
            failed += answer.replace(b".", b"")
        if failed:
            self._alive = False
            raise self._failure(f"errno {failed.split(b';')[0].decode()}")

    def close(self) -> None:
        """Stop the helper (after the fsyncs in flight)."""
        try:
            if self._asked and self._alive:
                self.wait()
        finally:
            os.close(self._own)
            stdin, stdout = self._pipes
            stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a hung fsync
                self._proc.kill()
                self._proc.wait()
            stdout.close()


class SQLitePipeline(_DurableCallbacks):
    """What :meth:`SQLiteStore.pipeline` yields (a
    :class:`~loyaltykit.engine.store.DurablePipeline`): callbacks to run once the units
    committed so far are durable."""

    __slots__ = ("_syncer",)

    def __init__(self, syncer: _Syncer | None) -> None:
        super().__init__()
        self._syncer = syncer

    def _in_flight(self) -> bool:
        return self._syncer is not None and self._syncer.busy

    def _ask(self) -> None:
        assert self._syncer is not None
        self._syncer.ask()

    def _settle(self) -> None:
        """Wait until the unit in flight is durable (before the next commit, and at exit)."""
        if self._in_flight():
            assert self._syncer is not None
            self._syncer.wait()
            self._durable()


# --------------------------------------------------------------------------------------------
# the store
# --------------------------------------------------------------------------------------------


class _Local(threading.local):
    conn: sqlite3.Connection | None = None
    in_unit: bool = False
    pipeline: SQLitePipeline | None = None
    syncer: _Syncer | None = None

    def __init__(self) -> None:
        self.cache = _Cache()


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
    3
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
        self._syncers: list[_Syncer] = []
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
            self._syncers = []
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
            mode = self._wal_mode(conn)
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

    def _wal_mode(self, conn: sqlite3.Connection) -> Any:
        """``PRAGMA journal_mode=WAL``, retried while another connection holds the lock it needs:
        switching a new file to WAL answers "database is locked" at once, without waiting for
        the busy timeout, when another connection is creating or migrating it."""
        deadline = time.monotonic() + self._timeout
        delay = 0.001
        while True:
            try:
                return conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            except sqlite3.OperationalError as exc:
                text = str(exc)
                if ("locked" not in text and "busy" not in text) or time.monotonic() > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

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
        migrations = MIGRATIONS
        _sql.check_migrations(migrations)
        conn = self._conn()
        if self._local.in_unit or self._local.pipeline is not None:
            raise StoreError(f"{self._where()}: migrate() cannot run inside a unit or a pipeline")
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
                    (step.version, step.description, _ts(_sql.now_utc())),
                )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise StoreError(f"{self._where()}: migration failed, nothing changed ({exc})") from exc
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            self._local.cache.clear()
        self._ready = True

    def _require_ready(self, conn: sqlite3.Connection) -> None:
        if not self._ready:
            _sql.require_current(self._version(conn), self._where(), MIGRATIONS)
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
        cache = local.cache
        pipe = local.pipeline
        changes = conn.total_changes
        try:
            try:
                # under the write lock: has any other connection committed since we last looked?
                version = conn.execute(_Q["data_version"]).fetchone()[0]
                if version != cache.version:
                    cache.clear()
                    cache.version = version
                unit = SQLiteUnit(conn, members, cache)
                yield unit
                wrote = conn.total_changes != changes
                if pipe is not None and wrote:
                    # at most one unit in flight: the previous one is durable before this commits
                    pipe._settle()
            except sqlite3.Error as exc:
                conn.execute("ROLLBACK")
                raise StoreError(f"{self._where()}: {exc}; the unit was rolled back") from exc
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                cache.clear()
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreError(
                    f"{self._where()}: commit failed ({exc}); the unit was rolled back"
                ) from exc
            unit._publish()
            if pipe is not None and wrote:
                # committed (the connection runs synchronous=NORMAL in a pipeline): start its
                # fsync, which runs while the caller goes on
                pipe._ask()
        finally:
            local.in_unit = False

    def _syncer(self) -> _Syncer:
        local = self._local
        syncer = local.syncer
        if syncer is not None and not syncer.alive:
            # a helper that died (or failed an fsync) is replaced by a new one
            with self._conns_lock:
                if syncer in self._syncers:
                    self._syncers.remove(syncer)
            syncer.close()
            syncer = local.syncer = None
        if syncer is None:
            syncer = local.syncer = _Syncer(f"{self._path}-wal", self._where())
            with self._conns_lock:
                self._syncers.append(syncer)
        return syncer

    @contextmanager
    def pipeline(self) -> Iterator[SQLitePipeline]:
        """Overlap each unit's fsync with the caller's work on the next unit (see
        :class:`~loyaltykit.engine.store.PipelinedStore`); used by
        :meth:`Engine.process_many <loyaltykit.engine.Engine.process_many>`.

        With ``synchronous="full"``, the calling thread's connection commits with
        ``synchronous=NORMAL`` inside the block, and a helper process fsyncs the WAL file after
        each commit while the caller prepares the next unit. The next commit waits for that
        fsync, so at most one unit is ever not yet durable, every unit still gets its own
        fsync, and the block's exit waits for the last one. Callbacks given to
        :meth:`SQLitePipeline.after_durable` run only once their units are durable.

        The price: for the length of one fsync, *another* connection may read a unit that a
        power cut could still undo (in the engine's terms: an event whose outcome has not been
        returned yet; processing it again after a restart restores it). A crash of the process
        alone loses nothing that was committed. With ``synchronous="normal"`` there is no fsync
        to overlap and the block changes nothing.

        :raises StoreError: inside a unit or another pipeline; or when an fsync failed (at the
            next commit or at the block's exit): the unit in flight is committed but not known
            to be durable.
        """
        conn = self._conn()
        local = self._local
        if local.in_unit or local.pipeline is not None:
            raise StoreError(
                f"{self._where()}: a pipeline cannot open inside a unit or another pipeline of "
                "the same thread"
            )
        self._require_ready(conn)
        syncer = None
        if self._synchronous == "full" and os.path.exists(f"{self._path}-wal"):
            try:
                syncer = self._syncer()
            except (OSError, ValueError, subprocess.SubprocessError):
                syncer = None  # no helper process here: units stay fsynced at commit
        pipe = SQLitePipeline(syncer)
        if syncer is None:
            yield pipe
            return
        conn.execute("PRAGMA synchronous=NORMAL")
        local.pipeline = pipe
        try:
            yield pipe
        finally:
            local.pipeline = None
            try:
                pipe._settle()
            finally:
                if not self._closed:
                    conn.execute("PRAGMA synchronous=FULL")

    # -- store-wide reads --
    def _read(self, key: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        conn = self._conn()
        self._require_ready(conn)
        try:
            return conn.execute(_Q[key], params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self._where()}: read failed ({exc})") from exc

    def member_ids(self) -> list[str]:
        """Ids of all members with a saved state, sorted."""
        return [row[0] for row in self._read("member_ids", ())]

    def get_member(self, member_id: str) -> MemberState | None:
        """The committed state of a member, or ``None``."""
        rows = self._read("load_member", (member_id,))
        return MemberState.from_dict(_sql.loads(rows[0][0])) if rows else None

    def members_with_expiring(self, as_of: dt.datetime) -> list[str]:
        """Sorted ids of members having an open batch with ``expires_at <= as_of``."""
        return [row[0] for row in self._read("expiring", (_ts(as_of),))]

    def entries(self, member_id: str, *, until: dt.datetime | None = None) -> list[LedgerEntry]:
        """The member's ledger entries in append order (``occurred_at <= until`` if given)."""
        if until is None:
            rows = self._read("entries", (member_id,))
        else:
            rows = self._read("entries_until", (member_id, _ts(until)))
        return [_entry(row) for row in rows]

    def batches(self, member_id: str) -> list[Batch]:
        """All the member's batches, spent ones too, in draw order."""
        rows = self._read("all_batches", (member_id,))
        return sorted(map(_batch, rows), key=batch_order_key)

    def tier_history(self, member_id: str) -> list[TierChange]:
        """The member's tier changes in append order."""
        return [_tier(row) for row in self._read("tier_history", (member_id,))]

    def get_event(self, event_id: str) -> EventRecord | None:
        """The committed record of ``event_id``, or ``None``."""
        rows = self._read("get_event", (event_id,))
        return _event(rows[0]) if rows else None

    def close(self) -> None:
        """Close every connection this store opened; idempotent."""
        if self._closed:
            return
        self._closed = True
        with self._conns_lock:
            conns, self._conns = self._conns, []
            syncers, self._syncers = self._syncers, []
        if os.getpid() != self._pid:
            return
        try:
            for syncer in syncers:
                syncer.close()
        finally:
            for conn in conns:
                conn.close()
