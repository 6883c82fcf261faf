"""What the SQL stores share: table names, the versioned migrations, and value conversions.

The schema is written once, as SQL templates with a few dialect placeholders, and rendered for
SQLite or PostgreSQL. Every table name starts with ``loyaltykit_`` so that the ledger can live in
an application's existing database (and, on PostgreSQL, in a schema of its own).

Migrations are numbered from 1 and applied in order, each in the same transaction as the row it
adds to ``loyaltykit_schema_version``. A database whose version is higher than the last migration
this code knows was written by a newer loyaltykit: the stores refuse to touch it
(:func:`check_not_newer`) instead of guessing.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import operator
from collections.abc import Mapping, Sequence
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal

import attrs

from loyaltykit.engine._iso import iso
from loyaltykit.errors import StoreError

Dialect = Literal["sqlite", "postgresql"]

TABLES = (
    "schema_version",
    "members",
    "events",
    "batches",
    "purchases",
    "entries",
    "tier_changes",
    "activity",
    "counters",
)
"""Logical table names; the SQL name is ``loyaltykit_<name>``."""

_TYPES: dict[Dialect, dict[str, str]] = {
    "sqlite": {
        "key": "TEXT",
        "ts": "TEXT",
        "num": "TEXT",
        "int": "INTEGER",
        "seq": "INTEGER PRIMARY KEY",
        "json": "TEXT",
        "keyed": " WITHOUT ROWID",
    },
    "postgresql": {
        "key": 'TEXT COLLATE "C"',
        "ts": "TIMESTAMPTZ",
        "num": "NUMERIC",
        "int": "BIGINT",
        "seq": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "json": "TEXT",
        "keyed": "",
    },
}


@attrs.frozen
class Migration:
    """One step of the schema: SQL templates applied together, in one transaction."""

    version: int
    """The schema version the database has after this step."""
    description: str
    """What the step does (stored in ``loyaltykit_schema_version``)."""
    statements: tuple[str, ...]
    """SQL templates: ``{members}`` etc. are table names, ``{key}``, ``{ts}``, ``{num}``,
    ``{int}``, ``{seq}`` and ``{json}`` are column types of the dialect; ``{keyed}`` ends a
    ``CREATE TABLE`` whose rows are found by their primary key only (SQLite: ``WITHOUT ROWID``,
    one b-tree to write instead of a table and its key index; PostgreSQL: nothing)."""

    def render(self, dialect: Dialect, names: Mapping[str, str]) -> list[str]:
        """The statements for ``dialect`` with the table ``names`` filled in."""
        return [s.format(**names, **_TYPES[dialect]) for s in self.statements]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "initial ledger schema",
        (
            # members: the row exists as soon as a unit locks the member; state is NULL until saved
            "CREATE TABLE {members} (member_id {key} PRIMARY KEY, state {json}){keyed}",
            "CREATE TABLE {events} ("
            " event_id {key} PRIMARY KEY, member_id {key} NOT NULL, kind TEXT NOT NULL,"
            " fingerprint TEXT NOT NULL, outcome {json} NOT NULL, recorded_at {ts} NOT NULL)",
            "CREATE TABLE {batches} ("
            " id {key} PRIMARY KEY, member_id {key} NOT NULL, event_id {key} NOT NULL,"
            " transaction_id {key}, source TEXT NOT NULL, points {int} NOT NULL,"
            " remaining {int} NOT NULL, earned_at {ts} NOT NULL, pending_until {ts},"
            " expires_at {ts},"
            " CHECK (remaining >= 0 AND remaining <= points)){keyed}",
            "CREATE INDEX loyaltykit_batches_member ON {batches} (member_id, transaction_id)",
            "CREATE INDEX loyaltykit_batches_open ON {batches} (expires_at, member_id) WHERE remaining > 0",
            "CREATE TABLE {purchases} ("
            " transaction_id {key} PRIMARY KEY, member_id {key} NOT NULL,"
            " event_id {key} NOT NULL, occurred_at {ts} NOT NULL, amount {num} NOT NULL,"
            " currency TEXT NOT NULL, points {int} NOT NULL, refunded_amount {num} NOT NULL,"
            " reversed_points {int} NOT NULL){keyed}",
            "CREATE TABLE {entries} ("
            " seq {seq}, id {key} NOT NULL UNIQUE, member_id {key} NOT NULL,"
            " event_id {key} NOT NULL, kind TEXT NOT NULL, points {int} NOT NULL,"
            " occurred_at {ts} NOT NULL, batch_id {key}, pending_until {ts}, expires_at {ts},"
            " reason TEXT, meta {json} NOT NULL)",
            "CREATE INDEX loyaltykit_entries_member ON {entries} (member_id, seq)",
            "CREATE TABLE {tier_changes} ("
            " seq {seq}, member_id {key} NOT NULL, event_id {key} NOT NULL, from_tier TEXT,"
            " to_tier TEXT NOT NULL, occurred_at {ts} NOT NULL, reason TEXT NOT NULL)",
            "CREATE INDEX loyaltykit_tier_changes_member ON {tier_changes} (member_id, seq)",
            "CREATE TABLE {activity} ("
            " seq {seq}, member_id {key} NOT NULL, event_id {key} NOT NULL,"
            " occurred_at {ts} NOT NULL, spend {num} NOT NULL, points {int} NOT NULL,"
            " visits {int} NOT NULL)",
            "CREATE INDEX loyaltykit_activity_member ON {activity} (member_id, occurred_at)",
            "CREATE TABLE {counters} (name {key} PRIMARY KEY, value {int} NOT NULL){keyed}",
        ),
    ),
)
"""The schema's history, oldest first. Append new steps; never edit a released one."""

VERSION_TABLE_DDL: dict[Dialect, str] = {
    "sqlite": "CREATE TABLE IF NOT EXISTS {schema_version} ("
    " version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)",
    "postgresql": "CREATE TABLE IF NOT EXISTS {schema_version} ("
    " version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)",
}
"""The table that records which migrations were applied (one row per step)."""


def latest_version(migrations: Sequence[Migration]) -> int:
    """The version a database has once every migration of ``migrations`` is applied."""
    return migrations[-1].version if migrations else 0


def check_migrations(migrations: Sequence[Migration]) -> None:
    """Refuse a migration list that is not numbered 1, 2, 3 ... (a programming error)."""
    for position, step in enumerate(migrations, start=1):
        if step.version != position:
            raise StoreError(
                f"migration {step.description!r} has version {step.version}, expected "
                f"{position}: migrations must be numbered 1, 2, 3 ... without gaps"
            )


def check_not_newer(found: int, where: str, migrations: Sequence[Migration]) -> None:
    """Raise :class:`StoreError` when the database at ``where`` is newer than this code."""
    known = latest_version(migrations)
    if found > known:
        raise StoreError(
            f"{where}: the ledger schema is at version {found}, but this loyaltykit only knows "
            f"versions up to {known}; it was written by a newer loyaltykit. Upgrade loyaltykit "
            "(pip install -U loyaltykit) instead of opening it with this version"
        )


def require_current(found: int, where: str, migrations: Sequence[Migration]) -> None:
    """Raise :class:`StoreError` unless the database at ``where`` is exactly up to date."""
    check_not_newer(found, where, migrations)
    known = latest_version(migrations)
    if found < known:
        what = "has no ledger schema yet" if found == 0 else f"is at schema version {found}"
        raise StoreError(
            f"{where} {what} (this loyaltykit needs version {known}); call store.migrate() "
            "first, or run any loyaltykit command with --db, which migrates"
        )


# --------------------------------------------------------------------------------------------
# value conversions
# --------------------------------------------------------------------------------------------


def dumps(value: Any) -> str:
    """JSON text of a JSON-able value: read-only mappings become objects, tuples and sets lists,
    datetimes ISO text with their offset, ``Decimal`` exact text."""
    return _ENCODER.encode(value)


def _json_default(value: Any) -> Any:
    # the types the stores hand over most often first, by exact type (an ABC check such as
    # isinstance(value, Mapping) costs more than the encoding of the value)
    kind = type(value)
    if kind is dt.datetime:
        return iso(value)
    if kind is MappingProxyType:
        return dict(value)
    if kind is Decimal:
        return str(value)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"value {value!r} of type {type(value).__name__} is not JSON-able")


# one encoder for every call (json.dumps builds a new one whenever an option is given)
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=_json_default, ensure_ascii=False)


def loads(text: str) -> dict[str, Any]:
    """Inverse of :func:`dumps`."""
    value = json.loads(text)
    if not isinstance(value, dict):  # pragma: no cover - only if the table was edited by hand
        raise StoreError(f"stored JSON {text[:80]!r} is not an object")
    return value


_UTC_TEXT: dict[dt.datetime, str] = {}
_UTC_TEXT_MAX = 4096


def utc_text(value: dt.datetime) -> str:
    """An aware datetime as fixed-width ISO text in UTC: sorts like the instants it names.

    Memoised (one event writes its time into several rows) under the UTC datetime: aware
    datetimes hash and compare by instant, and equal instants have the same UTC text. (Not under
    the datetime as given: the two instants of a repeated local hour, ``fold=0`` and ``fold=1``
    in one zone, compare equal to each other, but not to a UTC time.)
    """
    found = _UTC_TEXT.get(value) if value.tzinfo is not None else None
    if found is not None:
        return found
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreError(f"datetime {value!r} is naive; ledger times must be timezone-aware")
    if value.tzinfo is not dt.UTC:
        value = value.astimezone(dt.UTC)
    if type(value) is dt.datetime:
        # the ISO text of the same time (memoised too: outcomes and states hold the event's
        # times) is this text, but for the microseconds it leaves out when they are 0
        text = iso(value)
        if len(text) == 25:  # YYYY-MM-DDTHH:MM:SS+00:00
            text = f"{text[:19]}.000000{text[19:]}"
    else:  # a subclass (pandas' Timestamp ...) may write its ISO text otherwise
        text = value.isoformat(timespec="microseconds")
    if len(_UTC_TEXT) >= _UTC_TEXT_MAX:
        _UTC_TEXT.clear()
    _UTC_TEXT[value] = text
    return text


def opt_utc_text(value: dt.datetime | None) -> str | None:
    """:func:`utc_text`, passing ``None`` through."""
    return None if value is None else utc_text(value)


def from_utc_text(value: str | None) -> dt.datetime | None:
    """Inverse of :func:`opt_utc_text`."""
    return None if value is None else dt.datetime.fromisoformat(value)


def now_utc() -> dt.datetime:
    """The current wall-clock time, in UTC."""
    return dt.datetime.now(dt.UTC)


ActivityRow = tuple[dt.datetime, Decimal, int, int]
"""An activity row as the SQL stores cache it: (occurred_at, spend, points, visits)."""

activity_time = operator.itemgetter(0)
"""Sort key of :data:`ActivityRow`: its time."""


def sum_activity(
    rows: Sequence[ActivityRow], start: dt.datetime, end: dt.datetime
) -> tuple[Decimal, int, int]:
    """Spend, points and visits of ``rows`` (sorted by time) from ``start`` to ``end``, both
    included, summed exactly."""
    lo = bisect.bisect_left(rows, start, key=activity_time)
    hi = bisect.bisect_right(rows, end, key=activity_time)
    spend, points, visits = Decimal(0), 0, 0
    for _, s, p, v in rows[lo:hi]:
        spend += s
        points += p
        visits += v
    return spend, points, visits
