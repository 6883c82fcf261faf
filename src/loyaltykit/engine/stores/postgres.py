"""The PostgreSQL ledger store, on SQLAlchemy 2 Core with the psycopg 3 driver.

Needs the ``postgres`` extra (``pip install 'loyaltykit[postgres]'``). Give it a URL, or the
:class:`sqlalchemy.engine.Engine` your application already has (with the psycopg 3 driver,
``postgresql+psycopg://``): the store borrows connections from that engine's pool and never
disposes of it. SQLAlchemy manages the pool and the connections; migrations run through
SQLAlchemy, while units and reads borrow the psycopg connection from the pool and drive it at
the libpq level, which costs a fraction of going through a SQLAlchemy connection or a psycopg
cursor for statements this short: each statement is prepared once per connection (``PREPARE``)
and run by ``EXECUTE`` with its arguments as literals, in the simple query protocol, where one
message can carry several statements. A unit's ``BEGIN`` travels with its first statement and its
writes with its ``COMMIT``: an event costs two round trips, three with a purchase lookup.

Concurrency and durability, in short (``docs/howto/engine-stores.md`` has the long form):

* A unit is one transaction (READ COMMITTED). Its first statement upserts the rows of its
  members in ``loyaltykit_members`` and locks them with ``SELECT ... ORDER BY member_id FOR
  UPDATE`` before anything of the unit is read or written, so two units naming the same member
  run one after the other, in any number of processes, while units of different members run in
  parallel. Members are always locked in sorted order, so units naming several members cannot
  deadlock on each other.
* The store keeps each member's state, open batches and activity rows between units under the
  version of the member's row, which every writing unit moves on, and uses them only while the
  locked row still has that version: what another process wrote is always read again.
* Global counters (reward stock, campaign budgets) are guarded in the database itself:
  ``UPDATE ... SET value = value + :amount WHERE value + :amount <= :cap``.
* A committed unit is as durable as the server makes it: with PostgreSQL's defaults
  (``fsync=on``, ``synchronous_commit=on``) the commit returns after the WAL reached the disk.
* :meth:`PostgresStore.pipeline` overlaps each unit's ``COMMIT`` (the server's WAL flush and
  the round trip) with the caller's work on the next unit, on another pooled connection
  (:meth:`Engine.process_many <loyaltykit.engine.Engine.process_many>` and the ``ingest``
  command use it); at most one unit is in flight.
* Everything lives in tables named ``loyaltykit_*``, in the connection's default schema or in
  the ``schema`` you name (created by :meth:`PostgresStore.migrate`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json.encoder as json_encoder
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from decimal import Decimal
from typing import Any, Generic, NamedTuple, TypeVar

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
    _stored_state,
    batch_order_key,
)
from loyaltykit.engine.stores import _sql
from loyaltykit.engine.stores._sql import Migration
from loyaltykit.errors import StoreError

try:
    import psycopg
    import sqlalchemy as sa
    from psycopg import generators as _generators
    from psycopg.adapt import Transformer
    from sqlalchemy import exc as sa_exc
except ImportError as _exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the PostgreSQL ledger store needs the 'postgres' extra (SQLAlchemy 2 and psycopg 3): "
        "pip install 'loyaltykit[postgres]'"
    ) from _exc

__all__ = ["MIGRATIONS", "PostgresPipeline", "PostgresStore", "PostgresUnit"]

MIGRATIONS: tuple[Migration, ...] = (
    *_sql.MIGRATIONS,
    Migration(
        2,
        "member row versions (validate cached activity)",
        ("ALTER TABLE {members} ADD COLUMN version {int} NOT NULL DEFAULT 0",),
    ),
)
"""The PostgreSQL schema's history: the shared first step
(:data:`loyaltykit.engine.stores._sql.MIGRATIONS`), then PostgreSQL's own. Append new steps;
never edit a released one."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")

_MIGRATION_KEYS = frozenset({"version", "add_version"})
"""Templates run through SQLAlchemy (by migrations), never prepared."""

_TXN_COUNTER = "txn:{}"
"""Name of the counter the engine keeps per refund transaction id (prefetched with purchases)."""

_DBErrors = (sa_exc.DBAPIError, psycopg.Error)


def _make_dumps() -> Callable[[Any], str]:
    """:func:`loyaltykit.engine.stores._sql.dumps` with its C encoder made once:
    ``JSONEncoder.encode`` makes a new one per call, which costs as much as encoding a row."""
    make = getattr(json_encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython has it
        return _sql.dumps
    # the settings of _sql's encoder; no check for cycles (the values are built by the store)
    encode = make(
        None, _sql._json_default, json_encoder.encode_basestring, None, ":", ",", False, False, True
    )

    def dumps(value: Any) -> str:
        return "".join(encode(value, 0))

    return dumps


_dumps = _make_dumps()
"""JSON text of the rows a unit writes (and of the values they hold as JSON text)."""


"""What a failing statement raises: through SQLAlchemy, or from the driver's cursor."""


class _Statement(NamedTuple):
    """A statement the store prepares on each connection it uses."""

    name: str
    """Its name on the connection (from its text: stores of one schema share it)."""
    prepare: str
    """The ``PREPARE`` statement."""
    params: tuple[str, ...]
    """Names of its arguments, in order (empty for ``%s`` placeholders)."""


def _prepared(sql: str) -> _Statement:
    """``sql`` (with ``:name`` or ``$n`` placeholders) as a statement to prepare."""
    params: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in params:
            params.append(name)
        return f"${params.index(name) + 1}"

    text = _NAMED.sub(number, sql)
    if "%" in text:  # pragma: no cover - a programming error in the templates
        raise AssertionError(f"unexpected % in SQL template: {sql}")
    name = "lk_" + hashlib.sha256(text.encode()).hexdigest()[:24]
    return _Statement(name, f"PREPARE {name} AS {text}", tuple(params))


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

# Templates; {members} etc. become (schema-qualified) table names.
_TEMPLATES = {
    # A single member is locked in one statement, which also answers the unit's first questions
    # (the event record, the member's open batches): insert the member's row if missing and lock
    # it if it exists. A row this statement inserts is ours and uncommitted, so it already blocks
    # every other unit's insert of that member until we end. Neither inserted nor found means
    # another unit inserted it and committed after this statement's snapshot: "relock_one" then
    # locks it in a new statement.
    # The reads share the statement's snapshot, taken before the lock was granted: they are
    # current only if no unit wrote the member between the two, which "seen" (the version in the
    # snapshot) equal to the locked row's version proves, since every writing unit moves the
    # version on. Otherwise the unit asks again in new statements. The member's state and open
    # batches are sent only when the store's cached ones are not of the locked version
    # (:cached_state, :cached).
    "lock_read_one": "WITH ins AS (INSERT INTO {members} (member_id) VALUES (:member_id)"
    " ON CONFLICT (member_id) DO NOTHING RETURNING member_id),"
    " locked AS (SELECT state, version FROM {members} WHERE member_id = :member_id"
    " FOR UPDATE)"
    " SELECT CASE WHEN l.version = CAST(:cached_state AS bigint) THEN NULL ELSE l.state END,"
    " l.version,"
    " (SELECT version FROM {members} WHERE member_id = :member_id),"
    " (SELECT count(*) FROM ins), "
    + ", ".join(f"e.{c.strip()}" for c in _EVENT_COLUMNS.split(","))
    + ", CASE WHEN l.version = CAST(:cached AS bigint) THEN NULL ELSE"
    " (SELECT COALESCE(json_agg(json_build_array("
    + _BATCH_COLUMNS
    + ")), '[]') FROM {batches} WHERE member_id = :member_id AND remaining > 0) END"
    " FROM (SELECT 1) AS one LEFT JOIN locked AS l ON true"
    " LEFT JOIN {events} AS e ON e.event_id = CAST(:event_id AS text)",
    # The same for a member whose row the store has seen (rows are never deleted): only the
    # lock, without the insert (no row at all if it was deleted by hand: lock_read_one then).
    "lock_one": "SELECT CASE WHEN l.version = CAST(:cached_state AS bigint) THEN NULL"
    " ELSE l.state END, l.version,"
    " (SELECT version FROM {members} WHERE member_id = :member_id), 0, "
    + ", ".join(f"e.{c.strip()}" for c in _EVENT_COLUMNS.split(","))
    + ", CASE WHEN l.version = CAST(:cached AS bigint) THEN NULL ELSE"
    " (SELECT COALESCE(json_agg(json_build_array("
    + _BATCH_COLUMNS
    + ")), '[]') FROM {batches} WHERE member_id = :member_id AND remaining > 0) END"
    " FROM (SELECT state, version FROM {members} WHERE member_id = :member_id FOR UPDATE) AS l"
    " LEFT JOIN {events} AS e ON e.event_id = CAST(:event_id AS text)",
    "relock_one": "SELECT member_id, state, version FROM {members} WHERE member_id = :member_id"
    " FOR UPDATE",
    # Several members: insert the missing rows, then lock all rows in sorted order, in two
    # statements, so that no unit holds a lock while it waits for another unit's insert.
    "insert_many": "INSERT INTO {members} (member_id)"
    " SELECT unnest(CAST(:member_ids AS text[])) ORDER BY 1 ON CONFLICT (member_id) DO NOTHING",
    "lock_many": "SELECT member_id, state, version FROM {members}"
    " WHERE member_id = ANY(CAST(:member_ids AS text[])) ORDER BY member_id FOR UPDATE",
    "get_event": f"SELECT {_EVENT_COLUMNS} FROM {{events}} WHERE event_id = :event_id",
    "load_member": "SELECT state FROM {members} WHERE member_id = :member_id AND state IS NOT NULL",
    "open_batches": f"SELECT {_BATCH_COLUMNS} FROM {{batches}}"
    " WHERE member_id = :member_id AND remaining > 0",
    "transaction_batches": f"SELECT {_BATCH_COLUMNS} FROM {{batches}}"
    " WHERE member_id = :member_id AND transaction_id = :transaction_id",
    "all_batches": f"SELECT {_BATCH_COLUMNS} FROM {{batches}} WHERE member_id = :member_id",
    "activity_rows": "SELECT occurred_at, spend, points, visits FROM {activity}"
    " WHERE member_id = :member_id ORDER BY occurred_at",
    "counter_value": "SELECT value FROM {counters} WHERE name = :name",
    # Questions the engine asks together, each pair in one statement (one row whatever is
    # found): the event record with the open batches of the unit's members (as JSON; units of
    # several members, after lock_many), and a purchase with the counter that marks its
    # transaction id as used by a refund.
    "event_and_open_batches": "SELECT "
    + ", ".join(f"e.{c.strip()}" for c in _EVENT_COLUMNS.split(","))
    + ", (SELECT json_agg(json_build_array("
    + _BATCH_COLUMNS
    + ")) FROM {batches} WHERE member_id = ANY(CAST(:member_ids AS text[]))"
    " AND remaining > 0) FROM (SELECT 1) AS one LEFT JOIN {events} AS e"
    " ON e.event_id = :event_id",
    "purchase_and_counter": "SELECT "
    + ", ".join(f"p.{c.strip()}" for c in _PURCHASE_COLUMNS.split(","))
    + ", (SELECT value FROM {counters} WHERE name = :name)"
    " FROM (SELECT 1) AS one LEFT JOIN {purchases} AS p ON p.transaction_id = :transaction_id",
    # One statement: insert the counter at `amount` if that fits under the cap, or add to the
    # existing row if the sum fits; the row lock makes concurrent adds re-check the cap.
    "counter_add": "INSERT INTO {counters} AS c (name, value)"
    " SELECT :name, CAST(:amount AS bigint) WHERE CAST(:cap AS bigint) IS NULL"
    " OR CAST(:amount AS bigint) <= CAST(:cap AS bigint)"
    " ON CONFLICT (name) DO UPDATE SET value = c.value + EXCLUDED.value"
    " WHERE CAST(:cap AS bigint) IS NULL OR c.value + EXCLUDED.value <= CAST(:cap AS bigint)"
    " RETURNING c.value",
    "member_ids": "SELECT member_id FROM {members} WHERE state IS NOT NULL ORDER BY member_id",
    "expiring": "SELECT DISTINCT member_id FROM {batches} WHERE remaining > 0"
    " AND expires_at IS NOT NULL AND expires_at <= :as_of ORDER BY member_id",
    "entries": f"SELECT {_ENTRY_COLUMNS} FROM {{entries}} WHERE member_id = :member_id"
    " ORDER BY seq",
    "entries_until": f"SELECT {_ENTRY_COLUMNS} FROM {{entries}} WHERE member_id = :member_id"
    " AND occurred_at <= :until ORDER BY seq",
    "tier_history": f"SELECT {_TIER_COLUMNS} FROM {{tier_changes}}"
    " WHERE member_id = :member_id ORDER BY seq",
    "version": "SELECT MAX(version) FROM {schema_version}",
    "add_version": "INSERT INTO {schema_version} (version, description, applied_at)"
    " VALUES (:version, :description, :applied_at)",
}


# The writes of a unit are buffered and sent at commit as ONE statement, in one message with the
# COMMIT: one round trip, and one statement to prepare and send instead of one per kind of row.
# Its arguments are the member rows' new states and ONE jsonb document holding, for each kind of
# row the unit writes, a JSON array of rows, each row a JSON array of its column values (times
# as ISO text, exact NUMERIC amounts as text), which a data-modifying CTE per kind inserts. One
# document is encoded once by the client and parsed once by the server, and arrays carry no
# column names. Rows numbered by an identity column (entries, tier changes, activity) are
# inserted ORDER BY their position in the unit, so the append order is kept. A row that must
# not be written aborts the statement and the COMMIT with it: a duplicate event or entry id
# violates the primary or unique key, and a batch or purchase id of another member sets
# ``member_id`` to NULL (the NOT NULL constraint fails). The store then rolls back and names the
# offending key.
_PART_COLUMNS: dict[str, tuple[str, ...]] = {
    "ev": (
        "event_id text",
        "member_id text",
        "kind text",
        "fingerprint text",
        "outcome text",
        "recorded_at timestamptz",
    ),
    "bt": (
        "id text",
        "member_id text",
        "event_id text",
        "transaction_id text",
        "source text",
        "points bigint",
        "remaining bigint",
        "earned_at timestamptz",
        "pending_until timestamptz",
        "expires_at timestamptz",
    ),
    "pu": (
        "transaction_id text",
        "member_id text",
        "event_id text",
        "occurred_at timestamptz",
        "amount numeric",
        "currency text",
        "points bigint",
        "refunded_amount numeric",
        "reversed_points bigint",
    ),
    "en": (
        "id text",
        "member_id text",
        "event_id text",
        "kind text",
        "points bigint",
        "occurred_at timestamptz",
        "batch_id text",
        "pending_until timestamptz",
        "expires_at timestamptz",
        "reason text",
        "meta text",
    ),
    "tc": (
        "member_id text",
        "event_id text",
        "from_tier text",
        "to_tier text",
        "occurred_at timestamptz",
        "reason text",
    ),
    "ac": (
        "member_id text",
        "event_id text",
        "occurred_at timestamptz",
        "spend numeric",
        "points bigint",
        "visits bigint",
    ),
}
"""Columns of each kind of row, in the order of the values of a row in the write document."""

_ORDERED = frozenset({"en", "tc", "ac"})
"""Kinds of rows numbered by an identity column: inserted in the order of the unit."""


def _rows(key: str) -> str:
    """``SELECT`` of the rows of kind ``key`` from the write document (``{doc}``, the rows of
    this kind at ``{at}``)."""
    values = ", ".join(
        f"CAST(r.x->>{i} AS {column.split()[1]})" for i, column in enumerate(_PART_COLUMNS[key])
    )
    if key in _ORDERED:
        return (
            f"SELECT {values} FROM jsonb_array_elements({{doc}}->{{at}})"
            " WITH ORDINALITY AS r(x, n) ORDER BY r.n"
        )
    return f"SELECT {values} FROM jsonb_array_elements({{doc}}->{{at}}) AS r(x)"


_MEMBER_PARTS: dict[str, str] = {
    # every locked member's row: its new state (if saved) and the next version; by its key for
    # a unit of one member, else from arrays (the key condition keeps the plan on the index)
    "ms": "ms AS (UPDATE {members} SET state = COALESCE(CAST($1 AS text), state),"
    " version = version + 1 WHERE member_id = $2)",
    "msn": "ms AS (UPDATE {members} AS m SET state = COALESCE(u.state, m.state),"
    " version = m.version + 1 FROM unnest(CAST($1 AS text[]), CAST($2 AS text[]))"
    " AS u(member_id, state) WHERE m.member_id = u.member_id"
    " AND m.member_id = ANY(CAST($1 AS text[])))",
}
"""The first part of the write statement: the member rows ($1 and $2; the document is $3)."""


def _names(key: str) -> str:
    return ", ".join(column.split()[0] for column in _PART_COLUMNS[key])


_PARTS: dict[str, str] = {
    "ev": f"ev AS (INSERT INTO {{events}} ({_names('ev')}) {_rows('ev')})",
    "bt": f"bt AS (INSERT INTO {{batches}} AS b ({_names('bt')}) {_rows('bt')}"
    " ON CONFLICT (id) DO UPDATE SET remaining = EXCLUDED.remaining,"
    " expires_at = EXCLUDED.expires_at,"
    " member_id = CASE WHEN b.member_id = EXCLUDED.member_id THEN b.member_id END)",
    "pu": f"pu AS (INSERT INTO {{purchases}} AS p ({_names('pu')}) {_rows('pu')}"
    " ON CONFLICT (transaction_id) DO UPDATE SET"
    " refunded_amount = EXCLUDED.refunded_amount,"
    " reversed_points = EXCLUDED.reversed_points,"
    " member_id = CASE WHEN p.member_id = EXCLUDED.member_id THEN p.member_id END)",
    "en": f"en AS (INSERT INTO {{entries}} ({_names('en')}) {_rows('en')})",
    "tc": f"tc AS (INSERT INTO {{tier_changes}} ({_names('tc')}) {_rows('tc')})",
    "ac": f"ac AS (INSERT INTO {{activity}} ({_names('ac')}) {_rows('ac')})",
}
"""The parts of the one write statement of a unit after the member rows, in the order they are
written (``{doc}`` and ``{at}`` filled in per statement, then the table names)."""

_WRITES: dict[str, str] = {
    # after a NOT NULL violation of member_id: who owns the ids the unit wrote
    "batch_owners": "SELECT id, member_id FROM {batches} WHERE id = ANY({{ids}})",
    "purchase_owners": "SELECT transaction_id, member_id FROM {purchases}"
    " WHERE transaction_id = ANY({{ids}})",
}


_Row = TypeVar("_Row")

_ActivityRow = _sql.ActivityRow

_CACHE_MEMBERS = 50_000
"""Members whose activity (or open batches) a store caches at most; past that it starts over
(empty)."""

_CACHE_ROWS = 1_000_000
"""Activity rows a store caches at most; past that it starts over (empty). Bounds its memory
whatever the members' histories."""

_BATCH_ROWS = 250_000
"""Open batches a store caches at most; past that it starts over (empty)."""


def _json_batch_row(values: Sequence[Any]) -> tuple[Any, ...]:
    """A batch row read as a JSON array (times as ISO text) in the shape of a table row."""
    return (
        *values[:7],
        dt.datetime.fromisoformat(values[7]),
        None if values[8] is None else dt.datetime.fromisoformat(values[8]),
        None if values[9] is None else dt.datetime.fromisoformat(values[9]),
    )


_new_batch = builder(Batch)


def _batch(row: Sequence[Any]) -> Batch:
    # Rows come from the table this store wrote after validating each Batch (and its CHECK
    # constraint): rebuild them without running the validators again (every unit reads the
    # member's open batches).
    return _new_batch(
        id=row[0],
        member_id=row[1],
        event_id=row[2],
        transaction_id=row[3],
        source=row[4],
        points=row[5],
        remaining=row[6],
        earned_at=row[7],
        pending_until=row[8],
        expires_at=row[9],
    )


def _entry(row: Sequence[Any]) -> LedgerEntry:
    return LedgerEntry(
        id=row[0],
        member_id=row[1],
        event_id=row[2],
        kind=EntryKind(row[3]),
        points=row[4],
        occurred_at=row[5],
        batch_id=row[6],
        pending_until=row[7],
        expires_at=row[8],
        reason=row[9],
        meta=_sql.loads(row[10]),
    )


def _tier(row: Sequence[Any]) -> TierChange:
    return TierChange(
        member_id=row[0],
        event_id=row[1],
        from_tier=row[2],
        to_tier=row[3],
        occurred_at=row[4],
        reason=row[5],
    )


def _event(row: Sequence[Any]) -> EventRecord:
    return EventRecord(
        event_id=row[0],
        member_id=row[1],
        kind=row[2],
        fingerprint=row[3],
        outcome=_sql.loads(row[4]),
        recorded_at=row[5],
    )


def _purchase(row: Sequence[Any]) -> PurchaseRecord:
    return PurchaseRecord(
        transaction_id=row[0],
        member_id=row[1],
        event_id=row[2],
        occurred_at=row[3],
        amount=row[4],
        currency=row[5],
        points=row[6],
        refunded_amount=row[7],
        reversed_points=row[8],
    )


def _aware(value: dt.datetime, what: str) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreError(f"{what}={value!r} is naive; ledger times must be timezone-aware")
    return value


def _opt_aware(value: dt.datetime | None, what: str) -> dt.datetime | None:
    return None if value is None else _aware(value, what)


_NO_ENTRY: tuple[int, tuple[Any, ...]] = (-1, ())


class _MemberCache(Generic[_Row]):
    """Rows the store keeps per member (its activity rows, its open batches) with the version
    of the member row they belong to; bounded in members and in rows (past either bound it
    starts over, empty). Shared by the threads using the store."""

    __slots__ = ("_entries", "_lock", "_max_members", "_max_rows", "rows")

    def __init__(self, max_members: int, max_rows: int) -> None:
        self._entries: dict[str, tuple[int, tuple[_Row, ...]]] = {}
        self._lock = threading.Lock()
        self._max_members = max_members
        self._max_rows = max_rows
        self.rows = 0
        """Rows held now."""

    def __len__(self) -> int:
        return len(self._entries)

    def values(self) -> list[tuple[int, tuple[_Row, ...]]]:
        """The (version, rows) entries."""
        return list(self._entries.values())

    def get(self, member_id: str, version: int) -> tuple[_Row, ...] | None:
        """The member's rows if they were cached under ``version``."""
        found = self._entries.get(member_id)
        return found[1] if found is not None and found[0] == version else None

    def entry(self, member_id: str) -> tuple[int, tuple[_Row, ...]]:
        """The member's (version, rows), version -1 when there are none."""
        return self._entries.get(member_id, _NO_ENTRY)

    def put(self, member_id: str, version: int, rows: tuple[_Row, ...]) -> None:
        """Keep ``rows`` as the member's, under ``version``."""
        with self._lock:
            old = self._entries.pop(member_id, None)
            if old is not None:
                self.rows -= len(old[1])
            if len(rows) > self._max_rows:
                return
            if len(self._entries) >= self._max_members or self.rows + len(rows) > self._max_rows:
                self._entries.clear()
                self.rows = 0
            self._entries[member_id] = (version, rows)
            self.rows += len(rows)

    def clear(self) -> None:
        """Forget every member's rows."""
        with self._lock:
            self._entries.clear()
            self.rows = 0

    def drop(self, member_id: str) -> None:
        """Forget the member's rows."""
        with self._lock:
            old = self._entries.pop(member_id, None)
            if old is not None:
                self.rows -= len(old[1])


def _always(batch: Batch) -> bool:
    return True


# --------------------------------------------------------------------------------------------
# the unit
# --------------------------------------------------------------------------------------------


class PostgresUnit:
    """A unit of :class:`PostgresStore`: one transaction holding its members' row locks.

    Built by :meth:`PostgresStore.unit`; see :class:`~loyaltykit.engine.store.StoreUnit` for what
    each method promises. The locks are taken by the unit's first question to the database (or
    at commit, if it asks none), in the statement that also answers it: the event lookup the
    engine starts with reads the event record and the member's open batches in the statement
    that locks the member, so every answer the unit gives comes from data read under its locks.
    Reads go to the database at once (and see the unit's own writes); writes are kept in the
    unit and sent together with the ``COMMIT``, so an event costs a handful of round trips
    whatever it writes. Conflicts the database finds then (an event id or ledger entry id
    already stored by another unit, a batch or purchase id of another member) abort the commit:
    they are raised at commit, after which the unit is rolled back. A purchase lookup also reads
    the transaction's refund counter, in the same statement.
    """

    __slots__ = (
        "_activity",
        "_activity_rows",
        "_batches",
        "_counters",
        "_entries",
        "_entry_ids",
        "_events",
        "_expected",
        "_found",
        "_in_flight",
        "_locked",
        "_members",
        "_open",
        "_pipe",
        "_prefetched",
        "_purchases",
        "_s",
        "_saved",
        "_states",
        "_stmts",
        "_store",
        "_tiers",
        "_versions",
        "_wrote",
    )

    def __init__(
        self,
        store: PostgresStore,
        session: _Session,
        member_ids: tuple[str, ...],
        pipe: PostgresPipeline | None = None,
    ) -> None:
        self._store = store
        self._s = session
        self._pipe = pipe
        self._in_flight = False
        self._stmts = store._stmts
        self._members = member_ids
        self._locked = False
        # filled by _lock: each member's saved state (JSON text) and its row's version when
        # locked; the version changes with every unit that writes the member, so it tells
        # whether what the store cached about the member is still current
        # (the state is kept as read, JSON text, until load_member parses it)
        self._states: dict[str, MemberState | str | None] = {}
        self._versions: dict[str, int] = {}
        self._activity_rows: dict[str, tuple[_ActivityRow, ...]] = {}
        # the members' committed open batches, once known (read with the lock, from the store's
        # cache or by open_batches): they stay current for the whole unit, as nobody else can
        # write the member's batches while it is locked, and this unit's own writes wait here
        self._open: dict[str, tuple[Batch, ...]] = {}
        # event records the locking statement read (by id), so get_event needs no statement
        self._found: dict[str, EventRecord | None] = {}
        # purchases the engine said it will look up, and what the lock read of them
        self._expected: tuple[str, ...] = ()
        self._prefetched: dict[str, PurchaseRecord | None] = {}
        self._wrote = False
        self._events: dict[str, EventRecord] = {}
        self._saved: dict[str, str] = {}
        self._batches: dict[str, Batch] = {}
        self._purchases: dict[str, PurchaseRecord] = {}
        self._entries: list[LedgerEntry] = []
        self._entry_ids: set[str] = set()
        self._tiers: list[TierChange] = []
        self._activity: list[Activity] = []
        # counter values read together with a purchase record (see get_purchase)
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

    def _call(self, key: str, params: dict[str, Any]) -> str:
        st = self._stmts[key]
        return _call(st.name, [params[p] for p in st.params])

    def _run(self, key: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """The rows of one of the store's statements, after the lock."""
        if not self._locked:
            self._lock(None)
        return self._query(key, params)

    def _query(self, key: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        # (the unit's first statement made sure the connection has them all prepared)
        s = self._s
        return s.rows(s.run(self._call(key, params))[-1])

    # -- locking --
    def _begin(self, body: str) -> list[tuple[Any, ...]]:
        """Begin the unit with ``body`` (its first statements) in one round trip, and return
        the rows of the last (see :meth:`_begin_results` for more)."""
        return self._s.rows(self._begin_results(body, 1)[0])

    def _begin_results(self, body: str, last: int) -> list[psycopg.pq.abc.PGresult]:
        """Begin the unit with ``body`` (its first statements) in one round trip, and return
        the results of its ``last`` statements. The store's statements are prepared first
        where the connection lacks them; if they were deallocated behind the store's back (the
        first ``EXECUTE`` fails, before anything was locked or read), they are prepared
        again."""
        s = self._s
        store = self._store
        for attempt in (1, 2):
            preparing, names = store._preparing(s)
            try:
                # (PREPARE after BEGIN: before it, it would start the transaction, which could
                # then no longer be given its isolation level)
                return s.run(_BEGIN + preparing + body, names)[-last:]
            except psycopg.errors.InvalidSqlStatementName:
                if attempt == 2:
                    raise
                _rollback(s.conn)
                s.forget()
        raise AssertionError("unreachable")  # pragma: no cover

    def _lock(self, event_id: str | None) -> None:
        """Take the members' row locks (and read what comes with them); see _TEMPLATES."""
        members = self._members
        if len(members) > 1:
            params: dict[str, Any] = {"member_ids": list(members)}
            # the missing rows inserted, then all locked in sorted order: two statements, so
            # that no unit holds a lock while it waits for another unit's insert
            rows = self._begin(
                self._call("insert_many", params) + "; " + self._call("lock_many", params)
            )
            if len(rows) != len(members):  # pragma: no cover - would be a PostgreSQL bug
                raise StoreError(f"{self._store._where()}: could not lock members {members}")
            saved = self._saved
            for row in rows:
                if row[0] not in saved:  # (a state saved before the lock stays the unit's)
                    self._states[row[0]] = row[1]
                self._versions[row[0]] = int(row[2])
            self._locked = True
            self._use_cached()
            if event_id is not None:
                # the event record and the open batches not cached, in one statement
                missing = [m for m in members if m not in self._open]
                (found,) = self._query(
                    "event_and_open_batches", {"event_id": event_id, "member_ids": missing}
                )
                opened: dict[str, list[Batch]] = {m: [] for m in missing}
                for b in found[-1] or ():
                    opened[b[1]].append(_batch(_json_batch_row(b)))
                for member_id, batches in opened.items():
                    self._open[member_id] = tuple(batches)
                self._found[event_id] = None if found[0] is None else _event(found[:-1])
            return
        (member_id,) = members
        store = self._store
        cached_open = store._batch_cache.entry(member_id)
        cached_state = store._state_cache.entry(member_id)
        params = {
            "member_id": member_id,
            "event_id": event_id,
            "cached": cached_open[0],
            "cached_state": cached_state[0],
        }
        # a member the store has cached something of has a row: lock it without the insert
        seen_before = cached_open[0] >= 0 or cached_state[0] >= 0
        body = self._call("lock_one" if seen_before else "lock_read_one", params)
        # the purchases the engine said it will look up, right after the lock, same message
        expected = self._expected if event_id is not None else ()
        lookups = [
            (tx, _TXN_COUNTER.format(tx)) for tx in dict.fromkeys(expected)
        ]  # (in order, once each)
        for tx, name in lookups:
            body += "; " + self._call("purchase_and_counter", {"transaction_id": tx, "name": name})
        results = self._begin_results(body, 1 + len(lookups))
        s = self._s
        rows = s.rows(results[0])
        if not rows:  # its row was deleted by hand: insert it again
            rows = self._query("lock_read_one", params)
            lookups = []  # (read before the lock was taken: ask again when needed)
        (found,) = rows
        state, version, seen, inserted = found[0], found[1], found[2], found[3]
        if version is not None:
            fresh = version == seen
        elif inserted:
            version, fresh = 0, True  # a new row, ours: nobody wrote the member before
            # nor any activity of the member: only units holding the member's lock write it,
            # and the row exists before the first of them locks it (members are never deleted)
            self._activity_rows[member_id] = ()
        else:
            rows = self._query("relock_one", {"member_id": member_id})
            if not rows:  # pragma: no cover - would be a PostgreSQL bug
                raise StoreError(f"{self._store._where()}: could not lock member {member_id!r}")
            state, version, fresh = rows[0][1], rows[0][2], False
            lookups = []  # (read before the lock was taken: ask again when needed)
        for (tx, name), result in zip(lookups, results[1 : 1 + len(lookups)], strict=True):
            (looked,) = s.rows(result)  # (always one row)
            self._counters[name] = 0 if looked[-1] is None else int(looked[-1])
            self._prefetched[tx] = None if looked[0] is None else _purchase(looked[:-1])
        self._versions[member_id] = version = int(version)
        self._locked = True
        # what the store cached under the locked version is current (the statement then sent
        # none of it)
        if member_id not in self._saved:  # (a state saved before the lock stays the unit's)
            self._states[member_id] = cached_state[1][0] if version == cached_state[0] else state
        if version == cached_open[0]:
            self._open[member_id] = cached_open[1]
        if fresh:
            if event_id is not None:
                self._found[event_id] = None if found[4] is None else _event(found[4:10])
            if found[10] is not None:
                self._open[member_id] = tuple(_batch(_json_batch_row(b)) for b in found[10])

    def _use_cached(self) -> None:
        """Take the open batches and states of members cached under the locked version."""
        cache = self._store._batch_cache
        states = self._store._state_cache
        for member_id, version in self._versions.items():
            if member_id not in self._open:
                cached = cache.get(member_id, version)
                if cached is not None:
                    self._open[member_id] = cached
            known = states.get(member_id, version)
            if known is not None and member_id not in self._saved:
                self._states[member_id] = known[0]

    # -- idempotency --
    def get_event(self, event_id: str) -> EventRecord | None:
        """See :meth:`StoreUnit.get_event <loyaltykit.engine.store.StoreUnit.get_event>`."""
        if event_id in self._events:
            return self._events[event_id]
        if not self._locked:
            self._lock(event_id)
        if event_id in self._found:
            return self._found.pop(event_id)
        rows = self._run("get_event", {"event_id": event_id})
        return _event(rows[0]) if rows else None

    def put_event(self, record: EventRecord) -> None:
        """See :meth:`StoreUnit.put_event <loyaltykit.engine.store.StoreUnit.put_event>`.

        An id this unit already holds is refused at once; an id another unit stored (or is
        storing: the insert waits for it) is refused at commit.
        """
        _aware(record.recorded_at, "EventRecord.recorded_at")
        if record.event_id in self._events:
            raise EventExistsError(f"event id {record.event_id!r} is already stored")
        self._events[record.event_id] = record

    # -- members --
    def load_member(self, member_id: str) -> MemberState | None:
        """See :meth:`StoreUnit.load_member <loyaltykit.engine.store.StoreUnit.load_member>`
        (answered from the row read when the lock was taken)."""
        self._check(member_id)
        if not self._locked:
            self._lock(None)
        state = self._states.get(member_id)
        if isinstance(state, str):
            state = self._states[member_id] = _stored_state(_sql.loads(state))
        return state

    def save_member(self, state: MemberState) -> None:
        """See :meth:`StoreUnit.save_member <loyaltykit.engine.store.StoreUnit.save_member>`."""
        self._check(state.member_id)
        self._saved[state.member_id] = _dumps(state.to_dict())
        self._states[state.member_id] = state

    # -- batches --
    def _merge(self, member_id: str, base: Iterable[Batch], keep: Any) -> list[Batch]:
        found = {b.id: b for b in base}
        for b in self._batches.values():
            if b.member_id == member_id and keep(b):
                found[b.id] = b
        return list(found.values())

    def _committed_open(self, member_id: str) -> tuple[Batch, ...]:
        """The member's committed open batches (read once per unit at most)."""
        if not self._locked:
            self._lock(None)
        found = self._open.get(member_id)
        if found is None:
            rows = self._run("open_batches", {"member_id": member_id})
            found = self._open[member_id] = tuple(map(_batch, rows))
        return found

    def open_batches(self, member_id: str) -> list[Batch]:
        """See :meth:`StoreUnit.open_batches <loyaltykit.engine.store.StoreUnit.open_batches>`."""
        self._check(member_id)
        base = self._committed_open(member_id)
        if not self._batches:
            return sorted(base, key=batch_order_key)
        merged = self._merge(member_id, base, _always)
        return sorted((b for b in merged if b.remaining > 0), key=batch_order_key)

    def transaction_batches(self, member_id: str, transaction_id: str) -> list[Batch]:
        """See :meth:`StoreUnit.transaction_batches
        <loyaltykit.engine.store.StoreUnit.transaction_batches>`."""
        self._check(member_id)
        rows = self._run(
            "transaction_batches", {"member_id": member_id, "transaction_id": transaction_id}
        )
        merged = self._merge(
            member_id, map(_batch, rows), lambda b: b.transaction_id == transaction_id
        )
        return sorted(merged, key=lambda b: (b.earned_at, b.id))

    def put_batches(self, batches: Sequence[Batch]) -> None:
        """See :meth:`StoreUnit.put_batches <loyaltykit.engine.store.StoreUnit.put_batches>`
        (a batch given twice keeps its last version; a batch id of another member is refused
        at commit)."""
        for b in batches:
            self._check(b.member_id)
            _aware(b.earned_at, "Batch.earned_at")
            _opt_aware(b.pending_until, "Batch.pending_until")
            _opt_aware(b.expires_at, "Batch.expires_at")
        for b in batches:
            self._batches[b.id] = b

    # -- purchases --
    def expect_purchases(self, *transaction_ids: str) -> None:
        """The optional hint of :class:`~loyaltykit.engine.store.StoreUnit`: the purchases the
        engine will look up are read with the lock (the unit's first statement), by the same
        statement as :meth:`get_purchase`, unless the unit has locked already."""
        if not self._locked:
            self._expected = transaction_ids

    def get_purchase(self, transaction_id: str) -> PurchaseRecord | None:
        """See :meth:`StoreUnit.get_purchase <loyaltykit.engine.store.StoreUnit.get_purchase>`."""
        if transaction_id in self._purchases:
            return self._purchases[transaction_id]
        if transaction_id in self._prefetched:
            # read under the lock, with its counter (see expect_purchases)
            return self._prefetched.pop(transaction_id)
        # The engine follows the purchase lookup with one of the counter that marks the
        # transaction id as used by a refund; both go in one statement (one round trip). The
        # counter's value is then the one committed when the statement ran, as it would be a
        # moment later: a counter_add of the same name drops it.
        name = _TXN_COUNTER.format(transaction_id)
        (found,) = self._run(
            "purchase_and_counter", {"transaction_id": transaction_id, "name": name}
        )  # (always one row)
        self._counters[name] = 0 if found[-1] is None else int(found[-1])
        return None if found[0] is None else _purchase(found[:-1])

    def put_purchase(self, record: PurchaseRecord) -> None:
        """See :meth:`StoreUnit.put_purchase <loyaltykit.engine.store.StoreUnit.put_purchase>`."""
        self._check(record.member_id)
        _aware(record.occurred_at, "PurchaseRecord.occurred_at")
        self._purchases[record.transaction_id] = record

    # -- append-only rows --
    def append_entries(self, entries: Sequence[LedgerEntry]) -> None:
        """See :meth:`StoreUnit.append_entries
        <loyaltykit.engine.store.StoreUnit.append_entries>` (an id stored by an earlier unit is
        refused at commit)."""
        ids = set(self._entry_ids)
        for e in entries:
            self._check(e.member_id)
            _aware(e.occurred_at, "LedgerEntry.occurred_at")
            _opt_aware(e.pending_until, "LedgerEntry.pending_until")
            _opt_aware(e.expires_at, "LedgerEntry.expires_at")
            if e.id in ids:
                raise StoreError(f"ledger entry id {e.id!r} is already stored")
            ids.add(e.id)
        self._entry_ids = ids
        self._entries.extend(entries)

    def append_tier_change(self, change: TierChange) -> None:
        """See :meth:`StoreUnit.append_tier_change
        <loyaltykit.engine.store.StoreUnit.append_tier_change>`."""
        self._check(change.member_id)
        _aware(change.occurred_at, "TierChange.occurred_at")
        self._tiers.append(change)

    def append_activity(self, activity: Activity) -> None:
        """See :meth:`StoreUnit.append_activity
        <loyaltykit.engine.store.StoreUnit.append_activity>`."""
        self._check(activity.member_id)
        _aware(activity.occurred_at, "Activity.occurred_at")
        self._activity.append(activity)

    def _known_activity(self, member_id: str) -> tuple[_ActivityRow, ...]:
        """The member's committed activity rows, from the store's cache while the member row's
        version is the one cached with them, else read (once per unit)."""
        rows = self._activity_rows.get(member_id)
        if rows is None:
            if not self._locked:
                self._lock(None)
            rows = self._store._activity_cache.get(member_id, self._versions[member_id])
            if rows is None:
                rows = tuple(
                    (r[0], Decimal(r[1]), int(r[2]), int(r[3]))
                    for r in self._run("activity_rows", {"member_id": member_id})
                )
            self._activity_rows[member_id] = rows
        return rows

    def activity_totals(
        self, member_id: str, start: dt.datetime, end: dt.datetime
    ) -> ActivityTotals:
        """See :meth:`StoreUnit.activity_totals
        <loyaltykit.engine.store.StoreUnit.activity_totals>` (summed exactly in Python over the
        member's rows, which the store keeps between units while nobody else writes the
        member)."""
        self._check(member_id)
        rows = self._known_activity(member_id)
        spend, points, visits = _sql.sum_activity(rows, start, end)
        for a in self._activity:
            if a.member_id == member_id and start <= a.occurred_at <= end:
                spend += a.spend
                points += a.points
                visits += a.visits
        return ActivityTotals(spend=spend, points=points, visits=visits)

    def _publish(self) -> None:
        """After the commit: what this unit knows of its members' activity rows and open
        batches becomes the store's cache, under the members' new versions. What the cache held
        for a member at the version this unit locked stays, with the unit's own writes, even if
        the unit did not read it."""
        if not self._locked:
            return
        store = self._store
        bump = 1 if self._wrote else 0
        activity = store._activity_cache
        batches = store._batch_cache
        states = store._state_cache
        for member_id, version in self._versions.items():
            state = self._states.get(member_id)
            if isinstance(state, MemberState):
                states.put(member_id, version + bump, (state,))
            elif bump:
                states.drop(member_id)
            rows = self._activity_rows.get(member_id)
            if rows is None:
                rows = activity.get(member_id, version)
            if rows is not None:
                mine = [
                    (a.occurred_at, a.spend, a.points, a.visits)
                    for a in self._activity
                    if a.member_id == member_id
                ]
                if mine:
                    rows = tuple(sorted((*rows, *mine), key=_sql.activity_time))
                activity.put(member_id, version + bump, rows)
            elif bump:
                activity.drop(member_id)
            base = self._open.get(member_id)
            if base is not None and self._batches:
                merged = self._merge(member_id, base, _always)
                base = tuple(b for b in merged if b.remaining > 0)
            if base is not None:
                batches.put(member_id, version + bump, base)
            elif bump:
                batches.drop(member_id)

    # -- counters (written at once: their caps are checked by the database) --
    def counter_value(self, name: str) -> int:
        """See :meth:`StoreUnit.counter_value <loyaltykit.engine.store.StoreUnit.counter_value>`."""
        if name in self._counters:
            return self._counters.pop(name)
        rows = self._run("counter_value", {"name": name})
        return int(rows[0][0]) if rows else 0

    def counter_add(self, name: str, amount: int, cap: int | None) -> bool:
        """See :meth:`StoreUnit.counter_add <loyaltykit.engine.store.StoreUnit.counter_add>`.

        The counter's row stays locked until the unit ends, so units adding to the same counter
        take turns; a concurrent add is re-checked against the cap after it commits.
        """
        self._counters.pop(name, None)
        return bool(self._run("counter_add", {"name": name, "amount": amount, "cap": cap}))

    # -- commit --
    def _flush(self) -> None:
        """Send every buffered write as one statement, with the COMMIT, in one message."""
        if not self._locked:
            self._lock(None)
        keys: list[str] = []
        doc: list[list[list[Any]]] = []
        if self._events:
            keys.append("ev")
            doc.append(
                [
                    [
                        r.event_id,
                        r.member_id,
                        r.kind,
                        r.fingerprint,
                        _dumps(r.outcome),
                        r.recorded_at,
                    ]
                    for r in self._events.values()
                ]
            )
        if self._batches:
            keys.append("bt")
            doc.append(
                [
                    [
                        b.id,
                        b.member_id,
                        b.event_id,
                        b.transaction_id,
                        b.source,
                        b.points,
                        b.remaining,
                        b.earned_at,
                        b.pending_until,
                        b.expires_at,
                    ]
                    for b in self._batches.values()
                ]
            )
        if self._purchases:
            keys.append("pu")
            doc.append(
                [
                    [
                        p.transaction_id,
                        p.member_id,
                        p.event_id,
                        p.occurred_at,
                        p.amount,
                        p.currency,
                        p.points,
                        p.refunded_amount,
                        p.reversed_points,
                    ]
                    for p in self._purchases.values()
                ]
            )
        if self._entries:
            keys.append("en")
            doc.append(
                [
                    [
                        e.id,
                        e.member_id,
                        e.event_id,
                        e.kind.value,
                        e.points,
                        e.occurred_at,
                        e.batch_id,
                        e.pending_until,
                        e.expires_at,
                        e.reason,
                        _dumps(e.meta) if e.meta else "{}",
                    ]
                    for e in self._entries
                ]
            )
        if self._tiers:
            keys.append("tc")
            doc.append(
                [
                    [c.member_id, c.event_id, c.from_tier, c.to_tier, c.occurred_at, c.reason]
                    for c in self._tiers
                ]
            )
        if self._activity:
            keys.append("ac")
            doc.append(
                [
                    [a.member_id, a.event_id, a.occurred_at, a.spend, a.points, a.visits]
                    for a in self._activity
                ]
            )
        s = self._s
        if not keys and not self._saved:
            s.run("COMMIT")
            return
        # every locked member's row moves to its next version (and takes its saved state)
        members = self._members
        params: list[Any]
        if len(members) == 1:
            keys.insert(0, "ms")
            params = [self._saved.get(members[0]), members[0]]
        else:
            keys.insert(0, "msn")
            ids = list(members)
            params = [ids, [self._saved.get(m) for m in ids]]
        if doc:
            params.append(_dumps(doc))
        self._wrote = True
        st = self._store._write_statement(tuple(keys))
        # the write statement and the COMMIT in one message (one round trip); the statement is
        # prepared in the same message the first time the connection runs it. In a pipeline
        # the COMMIT goes on its own, and the unit returns without waiting for it (see
        # PostgresStore.pipeline): the write statement's result still comes first, so that
        # conflicts are raised here, by this unit.
        pipe = self._pipe
        first = st.name not in s.prepared
        sql = _call(st.name, params) if pipe is not None else _call(st.name, params) + "; COMMIT"
        try:
            s.run(st.prepare + "; " + sql if first else sql, (st.name,) if first else ())
        except psycopg.errors.IntegrityError as exc:
            _rollback(s.conn)
            self._explain(exc)
            raise
        if pipe is not None:
            # at most one unit in flight: the previous one is durable before this one commits
            pipe._settle()
            s.send("COMMIT")
            self._in_flight = True

    def _explain(self, exc: psycopg.errors.IntegrityError) -> None:
        """Turn the violation that aborted the commit into the error the protocol names."""
        diag = exc.diag
        table = diag.table_name or ""
        if isinstance(exc, psycopg.errors.UniqueViolation) and table.endswith("loyaltykit_events"):
            ids = ", ".join(map(repr, self._events))
            raise EventExistsError(f"event id {ids} is already stored") from exc
        if isinstance(exc, psycopg.errors.UniqueViolation) and table.endswith("loyaltykit_entries"):
            detail = diag.message_detail or ""
            key = next((e.id for e in self._entries if f"=({e.id})" in detail), None)
            if key is None:  # pragma: no cover - PostgreSQL always names the key
                key = ", ".join(e.id for e in self._entries)
            raise StoreError(f"ledger entry id {key!r} is already stored") from exc
        if isinstance(exc, psycopg.errors.NotNullViolation) and diag.column_name == "member_id":
            if table.endswith("loyaltykit_batches"):
                query, mine = "batch_owners", {k: b.member_id for k, b in self._batches.items()}
                what = "batch id"
            else:
                query = "purchase_owners"
                mine = {k: p.member_id for k, p in self._purchases.items()}
                what = "transaction id"
            # (after the rollback: outside any transaction)
            rows = self._s.rows(
                self._s.run(self._store._writes[query].format(ids=_literal(list(mine))))[-1]
            )
            for key, owner in rows:
                if owner != mine[key]:
                    raise StoreError(
                        f"{what} {key!r} already belongs to another member than {mine[key]!r}"
                    ) from exc


class PostgresPipeline(_DurableCallbacks):
    """What :meth:`PostgresStore.pipeline` yields (a
    :class:`~loyaltykit.engine.store.DurablePipeline`): callbacks to run once the units
    committed so far are durable, and the unit whose ``COMMIT`` is on its way."""

    __slots__ = ("_flight", "_store")

    def __init__(self, store: PostgresStore) -> None:
        super().__init__()
        self._store = store
        self._flight: tuple[Any, _Session] | None = None

    def _in_flight(self) -> bool:
        return self._flight is not None

    def _hold(self, pooled: Any, session: _Session) -> None:
        self._flight = (pooled, session)

    def _settle(self) -> None:
        """Wait for the answer to the ``COMMIT`` in flight, then hand its connection back."""
        flight = self._flight
        if flight is None:
            return
        self._flight = None
        pooled, session = flight
        store = self._store
        try:
            session.finish()
        except BaseException as exc:
            # committed or not: nobody knows; what the unit put in the caches may be wrong
            store._forget_cached()
            self._failed()
            if isinstance(exc, _DBErrors):
                raise StoreError(
                    f"{store._where()}: the COMMIT of the last unit failed ({_first_line(exc)}); "
                    "it may or may not be committed: process its event again (events are "
                    "idempotent)"
                ) from exc
            raise
        finally:
            store._release(pooled, session.conn)
        self._durable()


class _Local(threading.local):
    pipeline: PostgresPipeline | None = None


# --------------------------------------------------------------------------------------------
# the store
# --------------------------------------------------------------------------------------------


_SESSION = "loyaltykit.session"
"""Key of the store's :class:`_Session` in the info dict SQLAlchemy's pool keeps with each
connection."""
_IDLE = psycopg.pq.TransactionStatus.IDLE
_PIPELINE_OFF = psycopg.pq.PipelineStatus.OFF
_COMMAND_OK = psycopg.pq.ExecStatus.COMMAND_OK
_TUPLES_OK = psycopg.pq.ExecStatus.TUPLES_OK
_BEGIN = "BEGIN ISOLATION LEVEL READ COMMITTED; "
"""How every unit starts, in the string of its first statement (units run in READ COMMITTED
whatever the connection's or the server's default)."""


def _literal(value: Any) -> str:
    """``value`` as an SQL literal (text, integers, lists of text, aware datetimes, ``None``).

    Statements go to the server as text in the simple query protocol (several in one message),
    so their arguments travel as literals. A string is quoted in the form the server reads the
    same whatever its ``standard_conforming_strings``: plain quotes when it holds no backslash,
    else an escape string with backslashes doubled.
    """
    if isinstance(value, str):
        if "\x00" in value:
            raise psycopg.DataError(
                f"PostgreSQL text fields cannot contain NUL (0x00) bytes: {value!r}"
            )
        if "\\" in value:
            return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
        return "'" + value.replace("'", "''") + "'"
    if value is None:
        return "NULL"
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is list:
        return "ARRAY[" + ",".join(map(_literal, value)) + "]::text[]"
    if isinstance(value, dt.datetime):
        return "'" + value.isoformat() + "'"
    raise TypeError(f"no SQL literal for {value!r}")  # pragma: no cover - a programming error


def _call(name: str, args: Iterable[Any]) -> str:
    """``EXECUTE name(args ...)`` of a statement prepared under ``name``."""
    text = ",".join(map(_literal, args))
    return f"EXECUTE {name}({text})" if text else f"EXECUTE {name}"


class _Session:
    """What the store keeps with one pooled psycopg connection (in the pool's record of it).

    The store drives the connection at the libpq level: statements go as text in the simple
    query protocol, where one message may hold several (``BEGIN`` with the unit's first
    statement, the write statement with ``COMMIT``: one round trip each), and each runs a
    statement the store prepared on the connection (``PREPARE``/``EXECUTE``, planned once per
    connection). Results are loaded by psycopg's loaders (:class:`psycopg.adapt.Transformer`).
    """

    __slots__ = ("conn", "encoding", "pgconn", "prepared", "ready", "transformer")

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.pgconn = conn.pgconn
        self.encoding = conn.info.encoding
        self.prepared: set[str] = set()
        """Names of the statements prepared on the connection (by any store)."""
        self.ready: set[str] = set()
        """Stores (by the token of their statements) whose statements are all prepared."""
        self.transformer = Transformer(conn)

    def forget(self) -> None:
        """The connection's prepared statements are gone (``DEALLOCATE ALL``, ``DISCARD ALL``
        by someone else using the connection): prepare them again when next needed."""
        self.prepared.clear()
        self.ready.clear()

    def run(self, sql: str, preparing: Sequence[str] = ()) -> list[psycopg.pq.abc.PGresult]:
        """Send ``sql`` (one or more statements) and return the result of each.

        ``preparing`` names the statements that the ``PREPARE`` statements of ``sql`` prepare,
        in order: each one that succeeded is remembered as prepared. Raises the error of the
        failing statement (the statements after it were not run).
        """
        self.send(sql)
        results = self.finish()
        if preparing:
            names = iter(preparing)
            for result in results:
                if result.status == _COMMAND_OK and result.command_status == b"PREPARE":
                    self.prepared.add(next(names))
        for result in results:
            status = result.status
            if status != _TUPLES_OK and status != _COMMAND_OK:
                raise psycopg.errors.error_from_result(result, encoding=self.encoding)
        return results

    def send(self, sql: str) -> None:
        """Send ``sql`` without waiting for its results (see :meth:`finish`)."""
        self.pgconn.send_query(sql.encode(self.encoding))

    def finish(self) -> list[psycopg.pq.abc.PGresult]:
        """Wait for the results of what :meth:`send` sent; raise the error of a failed one."""
        # psycopg's own way to wait for the results: interruptible (Ctrl-C cancels the query)
        results: list[psycopg.pq.abc.PGresult] = self.conn.wait(_generators.execute(self.pgconn))
        for result in results:
            status = result.status
            if status != _TUPLES_OK and status != _COMMAND_OK:
                raise psycopg.errors.error_from_result(result, encoding=self.encoding)
        return results

    def rows(self, result: psycopg.pq.abc.PGresult) -> list[tuple[Any, ...]]:
        """The rows of ``result`` as tuples of Python values."""
        transformer = self.transformer
        transformer.set_pgresult(result)
        return transformer.load_rows(0, result.ntuples, tuple)


def _rollback(conn: psycopg.Connection[Any]) -> None:
    """Roll back what the connection has begun (nothing if it is broken: the server did).

    Sent straight to libpq rather than through ``Connection.rollback()``, which also forgets
    every statement psycopg prepared on the connection (and deallocates them on the server),
    in case the transaction created something they use: a unit creates nothing, and a refused
    event would otherwise make the next units parse and plan each statement again, the write
    statement's plan alone costing more than the rest of an event's statements.
    """
    if conn.closed or conn.broken or conn.info.transaction_status == _IDLE:
        return
    # the connection may break during the rollback: it is then invalidated on return
    with suppress(psycopg.Error):
        pgconn = conn.pgconn
        if (
            pgconn.pipeline_status == _PIPELINE_OFF
            and pgconn.exec_(b"ROLLBACK").status == _COMMAND_OK
        ):
            return
        conn.rollback()  # pragma: no cover - only if the plain ROLLBACK failed


def _engine_url(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


class PostgresStore:
    """A :class:`~loyaltykit.engine.store.LedgerStore` in PostgreSQL.

    :param target: a URL (``postgresql+psycopg://user:pass@host:5432/db``; a plain
        ``postgresql://`` URL is given the psycopg 3 driver), or an existing SQLAlchemy
        :class:`~sqlalchemy.engine.Engine` on PostgreSQL with the psycopg 3 driver, whose pool
        the store then shares.
    :param schema: a PostgreSQL schema to keep the tables in (created by :meth:`migrate`);
        ``None`` (default) uses the connection's ``search_path``, usually ``public``.
    :param engine_options: keyword arguments for :func:`sqlalchemy.create_engine` when ``target``
        is a URL (for example ``{"pool_size": 10}``).

    The constructor does not connect; call :meth:`migrate` (idempotent) before the first unit,
    or use :func:`loyaltykit.engine.stores.open_store`, which does.
    """

    def __init__(
        self,
        target: str | sa.Engine,
        *,
        schema: str | None = None,
        engine_options: dict[str, Any] | None = None,
    ) -> None:
        if schema is not None and not _IDENTIFIER.fullmatch(schema):
            raise StoreError(
                f"PostgresStore schema={schema!r}: use a plain identifier (letters, digits and "
                "underscores, not starting with a digit, at most 63 characters)"
            )
        if isinstance(target, str):
            url = _with_psycopg(target)
            try:
                engine = sa.create_engine(url, **(engine_options or {}))
            except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, ImportError, ValueError) as exc:
                raise StoreError(
                    f"PostgreSQL URL {_safe(target)!r} is not usable ({exc}); write it as "
                    "postgresql+psycopg://user:password@host:5432/database"
                ) from exc
            self._owns_engine = True
        elif isinstance(target, sa.Engine):
            if engine_options:
                raise StoreError(
                    "PostgresStore engine_options only apply to a URL; configure the Engine "
                    "you pass when you create it"
                )
            engine = target
            self._owns_engine = False
        else:
            raise StoreError(
                f"PostgresStore target {target!r}: pass a postgresql:// URL or a SQLAlchemy Engine"
            )
        if engine.dialect.name != "postgresql":
            if self._owns_engine:
                engine.dispose()
            raise StoreError(
                f"PostgresStore needs a PostgreSQL database, got a {engine.dialect.name!r} engine "
                f"({_engine_url(engine)}); for SQLite use SQLiteStore(path)"
            )
        if engine.dialect.driver != "psycopg":
            if self._owns_engine:
                engine.dispose()
            raise StoreError(
                f"PostgresStore runs on the psycopg 3 driver, got {engine.dialect.driver!r} "
                f"({_engine_url(engine)}); create the engine from a postgresql+psycopg:// URL"
            )
        self._engine = engine
        self._schema = schema
        prefix = f'"{schema}".' if schema else ""
        self._names = {name: f"{prefix}loyaltykit_{name}" for name in _sql.TABLES}
        self._q = {key: sa.text(t.format(**self._names)) for key, t in _TEMPLATES.items()}
        self._writes = {key: t.format(**self._names) for key, t in _WRITES.items()}
        # (the document's placeholders stay for _write_statement)
        self._parts = {
            key: t.format(**self._names, doc="{doc}", at="{at}") for key, t in _PARTS.items()
        }
        self._member_parts = {key: t.format(**self._names) for key, t in _MEMBER_PARTS.items()}
        # the statements units and reads run, prepared on each connection: name, PREPARE
        # statement and the names of the arguments in their order
        self._stmts: dict[str, _Statement] = {
            key: _prepared(t.format(**self._names))
            for key, t in _TEMPLATES.items()
            if key not in _MIGRATION_KEYS
        }
        self._prepare_all = tuple(st.name for st in self._stmts.values())
        self._token = hashlib.sha256(" ".join(self._prepare_all).encode()).hexdigest()
        # activity rows and open batches per member, with the member row's version they
        # belong to
        self._activity_cache: _MemberCache[_ActivityRow] = _MemberCache(_CACHE_MEMBERS, _CACHE_ROWS)
        self._batch_cache: _MemberCache[Batch] = _MemberCache(_CACHE_MEMBERS, _BATCH_ROWS)
        self._state_cache: _MemberCache[MemberState] = _MemberCache(_CACHE_MEMBERS, _CACHE_MEMBERS)
        self._write_statements: dict[tuple[str, ...], _Statement] = {}
        self._pid = os.getpid()
        self._ready = False
        self._closed = False
        self._local = _Local()

    def _write_statement(self, keys: tuple[str, ...]) -> _Statement:
        """The one statement that writes the member rows (``keys[0]``: one member or several)
        and the given kinds of rows (built once per combination)."""
        found = self._write_statements.get(keys)
        if found is None:
            parts = [self._member_parts[keys[0]]]
            parts += [self._parts[k].format(doc="$3::jsonb", at=i) for i, k in enumerate(keys[1:])]
            found = _prepared("WITH " + ", ".join(parts) + " SELECT 1")
            self._write_statements[keys] = found
        return found

    def _preparing(self, session: _Session) -> tuple[str, tuple[str, ...]]:
        """The PREPARE statements (as text to send first) of this store's statements that the
        session's connection lacks, with their names; none once they were all prepared."""
        if self._token in session.ready:
            return "", ()
        missing = tuple(k for k, st in self._stmts.items() if st.name not in session.prepared)
        if not missing:
            session.ready.add(self._token)
            return "", ()
        return (
            "".join(self._stmts[k].prepare + "; " for k in missing),
            tuple(self._stmts[k].name for k in missing),
        )

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine the store draws connections from."""
        return self._engine

    @property
    def schema(self) -> str | None:
        """The PostgreSQL schema of the tables (``None``: the ``search_path`` default)."""
        return self._schema

    def __repr__(self) -> str:
        return f"PostgresStore({_engine_url(self._engine)!r}, schema={self._schema!r})"

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _where(self) -> str:
        where = f"PostgreSQL {_engine_url(self._engine)}"
        return f"{where} (schema {self._schema})" if self._schema else where

    @contextmanager
    def _connect(self) -> Iterator[sa.Connection]:
        self._check_usable()
        try:
            conn = self._engine.connect()
            # Migrations run in READ COMMITTED whatever the engine's default (one handed over
            # with AUTOCOMMIT would otherwise make them non-atomic). Set on the connection
            # (client-side only), as chained engine options do not override an engine's
            # AUTOCOMMIT with psycopg.
            conn.execution_options(isolation_level="READ COMMITTED")
        except sa_exc.DBAPIError as exc:
            raise StoreError(
                f"{self._where()}: cannot connect ({_first_line(exc)}); check the host, port, "
                "user, password and database name, and that the server is running"
            ) from exc
        with conn:
            yield conn

    # -- schema --
    def _version(self, conn: sa.Connection) -> int:
        exists = conn.execute(
            sa.text("SELECT to_regclass(:name) IS NOT NULL"),
            {"name": self._names["schema_version"]},
        ).scalar_one()
        if not exists:
            return 0
        return int(conn.execute(self._q["version"]).scalar_one() or 0)

    def schema_version(self) -> int:
        """The schema version in the database (0 before :meth:`migrate`)."""
        with self._connect() as conn:
            try:
                return self._version(conn)
            except sa_exc.DBAPIError as exc:
                raise StoreError(
                    f"{self._where()}: cannot read the schema version ({_first_line(exc)})"
                ) from exc

    def migrate(self) -> None:
        """Create the schema (and the PostgreSQL ``schema``, if named) or bring it up to date.

        Runs in one transaction under an advisory lock, so processes starting together migrate
        once; idempotent.

        :raises StoreError: when the database was written by a newer loyaltykit, or the user
            may not create tables.
        """
        migrations = MIGRATIONS
        _sql.check_migrations(migrations)
        key = int.from_bytes(
            hashlib.sha256(f"loyaltykit-migrate:{self._schema}".encode()).digest()[:8],
            "big",
            signed=True,
        )
        with self._connect() as conn:
            try:
                with conn.begin():
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
                    if self._schema:
                        conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"'))
                    conn.execute(
                        sa.text(_sql.VERSION_TABLE_DDL["postgresql"].format(**self._names))
                    )
                    found = self._version(conn)
                    _sql.check_not_newer(found, self._where(), migrations)
                    for step in migrations[found:]:
                        for statement in step.render("postgresql", self._names):
                            conn.execute(sa.text(statement))
                        conn.execute(
                            self._q["add_version"],
                            {
                                "version": step.version,
                                "description": step.description,
                                "applied_at": _sql.now_utc(),
                            },
                        )
            except sa_exc.DBAPIError as exc:
                raise StoreError(
                    f"{self._where()}: migration failed, nothing changed ({_first_line(exc)})"
                ) from exc
        self._ready = True

    def _require_ready(self, doing: str | None = None) -> None:
        """Check once per store that the schema is at this version (:class:`StoreError` if not,
        or if the check itself fails; ``doing`` names what failed in that message)."""
        if self._ready:
            return
        with self._connect() as conn:
            try:
                _sql.require_current(self._version(conn), self._where(), MIGRATIONS)
                conn.rollback()
            except sa_exc.DBAPIError as exc:
                reason = _first_line(exc)
                detail = f"{doing} failed ({reason})" if doing else reason
                raise StoreError(f"{self._where()}: {detail}") from exc
        self._ready = True

    # -- units --
    def unit(self, member_id: str, *more: str) -> AbstractContextManager[StoreUnit]:
        """Open one transaction holding row locks on the given members (taken in sorted order).

        Commits when the block exits cleanly; rolls back and re-raises when it raises. Database
        failures (lost connection, deadlock with a foreign transaction) become
        :class:`~loyaltykit.errors.StoreError` after the rollback; nothing of the unit remains.
        """
        return self._unit(tuple(sorted({member_id, *more})))

    @contextmanager
    def _unit(self, members: tuple[str, ...]) -> Iterator[StoreUnit]:
        self._require_ready()
        pipe = self._local.pipeline
        pooled, session = self._acquire()
        unit = PostgresUnit(self, session, members, pipe)
        try:
            try:
                yield unit
                unit._flush()
            except _DBErrors as exc:
                _rollback(session.conn)
                raise StoreError(
                    f"{self._where()}: {_first_line(exc)}; the unit was rolled back"
                ) from exc
            except BaseException:
                _rollback(session.conn)
                raise
            unit._publish()
        finally:
            if unit._in_flight and pipe is not None:
                # its COMMIT is on the way: the pipeline hands the connection back once answered
                pipe._hold(pooled, session)
            else:
                self._release(pooled, session.conn)

    def _acquire(self) -> tuple[Any, _Session]:
        """A pooled connection and its :class:`_Session` (see :meth:`_session`)."""
        self._check_usable()
        try:
            pooled = self._engine.raw_connection()
        except sa_exc.DBAPIError as exc:
            raise StoreError(
                f"{self._where()}: cannot connect ({_first_line(exc)}); check the host, port, "
                "user, password and database name, and that the server is running"
            ) from exc
        conn = pooled.driver_connection
        assert isinstance(conn, psycopg.Connection)
        try:
            session = pooled.info.get(_SESSION)
            if session is None or session.conn is not conn:
                session = pooled.info[_SESSION] = _Session(conn)
        except BaseException:
            pooled.close()
            raise
        return pooled, session

    @staticmethod
    def _release(pooled: Any, conn: psycopg.Connection[Any]) -> None:
        """Hand a connection back to the pool (dropped if it is not idle: a unit always ends
        its transaction)."""
        if conn.closed or conn.broken or conn.info.transaction_status != _IDLE:
            pooled.invalidate()
        pooled.close()

    def _forget_cached(self) -> None:
        """Drop everything cached about members (after a unit whose fate is unknown)."""
        self._activity_cache.clear()
        self._batch_cache.clear()
        self._state_cache.clear()

    @contextmanager
    def pipeline(self) -> Iterator[PostgresPipeline]:
        """Overlap each unit's ``COMMIT`` with the caller's work on the next unit (see
        :class:`~loyaltykit.engine.store.PipelinedStore`); used by
        :meth:`Engine.process_many <loyaltykit.engine.Engine.process_many>`.

        Inside the block a unit sends its writes and waits for them (so conflicts are raised
        by the unit that caused them, as outside), then sends its ``COMMIT`` and returns
        without waiting for the answer, which carries the server's WAL flush. The next unit
        runs on another pooled connection; its own ``COMMIT`` waits for that answer first, so
        at most one unit is ever in flight, and the block's exit waits for the last one.
        Reads of the store in the block (:meth:`get_event`, :meth:`get_member` ...) wait for
        it too, so they see every unit of the block. Callbacks given to
        :meth:`PostgresPipeline.after_durable` run once their unit's ``COMMIT`` has been
        answered.

        :raises StoreError: inside a unit or another pipeline of the same thread; or when the
            ``COMMIT`` in flight failed (at the next commit, read or the block's exit): that
            unit's fate is unknown (the server may have committed it before the connection
            broke), so process its event again (events are idempotent).
        """
        self._require_ready()
        local = self._local
        if local.pipeline is not None:
            raise StoreError(
                f"{self._where()}: a pipeline cannot open inside another pipeline of the same "
                "thread"
            )
        pipe = PostgresPipeline(self)
        local.pipeline = pipe
        try:
            yield pipe
        finally:
            local.pipeline = None
            pipe._settle()

    @contextmanager
    def _session(self) -> Iterator[_Session]:
        """A psycopg connection from the engine's pool, with what the store keeps with it (see
        :class:`_Session`: made once per connection, kept in the pool's record of it); the
        connection is handed back as it came.

        The store drives it directly: no SQLAlchemy connection is built around it, which costs
        more than the statements of a short unit, and no psycopg cursor, whose bookkeeping
        costs about as much as the round trip of a short statement over loopback. Its settings
        stay as they are: units begin with their own ``BEGIN ISOLATION LEVEL READ COMMITTED``
        (and are atomic even on an engine set to autocommit), and reads are single statements
        outside any transaction.
        """
        pooled, session = self._acquire()
        try:
            yield session
        finally:
            self._release(pooled, session.conn)

    def _check_usable(self) -> None:
        if self._closed:
            raise StoreError(f"{self._where()}: this store is closed; open a new one")
        if os.getpid() != self._pid:
            self._pid = os.getpid()
            if self._owns_engine:
                # connections inherited over fork belong to the parent; start a fresh pool
                self._engine.dispose(close=False)

    # -- store-wide reads --
    def _read(self, key: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        # one statement outside a transaction: it sees committed data, and saves the BEGIN and
        # ROLLBACK round trips
        self._require_ready("read")
        pipe = self._local.pipeline
        if pipe is not None:
            pipe._settle()  # the unit in flight is part of what the caller expects to read
        st = self._stmts[key]
        with self._session() as session:
            try:
                for attempt in (1, 2):
                    preparing, names = self._preparing(session)
                    try:
                        sql = preparing + _call(st.name, [params[p] for p in st.params])
                        return session.rows(session.run(sql, names)[-1])
                    except psycopg.errors.InvalidSqlStatementName:
                        if attempt == 2:
                            raise
                        session.forget()  # deallocated behind our back: prepare again
            except _DBErrors as exc:
                raise StoreError(f"{self._where()}: read failed ({_first_line(exc)})") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def member_ids(self) -> list[str]:
        """Ids of all members with a saved state, sorted."""
        return [row[0] for row in self._read("member_ids", {})]

    def get_member(self, member_id: str) -> MemberState | None:
        """The committed state of a member, or ``None``."""
        rows = self._read("load_member", {"member_id": member_id})
        return MemberState.from_dict(_sql.loads(rows[0][0])) if rows else None

    def members_with_expiring(self, as_of: dt.datetime) -> list[str]:
        """Sorted ids of members having an open batch with ``expires_at <= as_of``."""
        rows = self._read("expiring", {"as_of": _aware(as_of, "as_of")})
        return [row[0] for row in rows]

    def entries(self, member_id: str, *, until: dt.datetime | None = None) -> list[LedgerEntry]:
        """The member's ledger entries in append order (``occurred_at <= until`` if given)."""
        if until is None:
            rows = self._read("entries", {"member_id": member_id})
        else:
            rows = self._read(
                "entries_until", {"member_id": member_id, "until": _aware(until, "until")}
            )
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
        """Release the store; disposes of the engine's pool only if the store created it.

        Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        if self._owns_engine and os.getpid() == self._pid:
            self._engine.dispose()


def _with_psycopg(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    return url


def _safe(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa_exc.ArgumentError:
        return "<unparseable URL>"


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
