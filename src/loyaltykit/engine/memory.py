"""The in-memory ledger store: the reference implementation of :class:`LedgerStore`.

Nothing survives the process. Useful for tests, simulations and as the model every other store
is compared against (``tests/engine/store_conformance.py``). Thread-safe: one lock per member,
taken in sorted order by :meth:`MemoryStore.unit`; writes of a unit are buffered and applied
atomically at commit, or dropped on rollback.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from decimal import Decimal

from loyaltykit.core.ledger import LedgerEntry, TierChange
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
from loyaltykit.errors import StoreError

__all__ = ["MemoryStore", "MemoryUnit"]

SCHEMA_VERSION = 1
"""Schema version of the memory store (it has no schema, but reports one like the others)."""


class MemoryUnit:
    """A unit of :class:`MemoryStore`: buffered writes over the committed state."""

    def __init__(self, store: MemoryStore, member_ids: tuple[str, ...]) -> None:
        self._store = store
        self._members = member_ids
        self._events: dict[str, EventRecord] = {}
        self._states: dict[str, MemberState] = {}
        self._batches: dict[str, Batch] = {}
        self._purchases: dict[str, PurchaseRecord] = {}
        self._entries: list[LedgerEntry] = []
        self._entry_ids: set[str] = set()
        self._tiers: list[TierChange] = []
        self._activity: list[Activity] = []
        self._counters: list[tuple[str, int]] = []

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
        """See :meth:`StoreUnit.get_event`."""
        if event_id in self._events:
            return self._events[event_id]
        return self._store._events.get(event_id)

    def put_event(self, record: EventRecord) -> None:
        """See :meth:`StoreUnit.put_event`."""
        s = self._store
        with s._lock:
            if (
                record.event_id in s._events
                or record.event_id in s._reserved
                or record.event_id in self._events
            ):
                raise EventExistsError(f"event id {record.event_id!r} is already stored")
            s._reserved.add(record.event_id)
        self._events[record.event_id] = record

    # -- members --
    def load_member(self, member_id: str) -> MemberState | None:
        """See :meth:`StoreUnit.load_member`."""
        self._check(member_id)
        if member_id in self._states:
            return self._states[member_id]
        return self._store._states.get(member_id)

    def save_member(self, state: MemberState) -> None:
        """See :meth:`StoreUnit.save_member`."""
        self._check(state.member_id)
        self._states[state.member_id] = state

    # -- batches --
    def _member_batches(self, member_id: str) -> dict[str, Batch]:
        merged = dict(self._store._batches.get(member_id, {}))
        for batch in self._batches.values():
            if batch.member_id == member_id:
                merged[batch.id] = batch
        return merged

    def open_batches(self, member_id: str) -> list[Batch]:
        """See :meth:`StoreUnit.open_batches`."""
        self._check(member_id)
        found = [b for b in self._member_batches(member_id).values() if b.remaining > 0]
        return sorted(found, key=batch_order_key)

    def transaction_batches(self, member_id: str, transaction_id: str) -> list[Batch]:
        """See :meth:`StoreUnit.transaction_batches`."""
        self._check(member_id)
        found = [
            b
            for b in self._member_batches(member_id).values()
            if b.transaction_id == transaction_id
        ]
        return sorted(found, key=lambda b: (b.earned_at, b.id))

    def put_batches(self, batches: Sequence[Batch]) -> None:
        """See :meth:`StoreUnit.put_batches`."""
        for batch in batches:
            self._check(batch.member_id)
            old = self._batches.get(batch.id) or self._store._batch_index.get(batch.id)
            if old is not None and old.member_id != batch.member_id:
                raise StoreError(f"batch id {batch.id!r} belongs to member {old.member_id!r}")
            self._batches[batch.id] = batch

    # -- purchases --
    def get_purchase(self, transaction_id: str) -> PurchaseRecord | None:
        """See :meth:`StoreUnit.get_purchase`."""
        if transaction_id in self._purchases:
            return self._purchases[transaction_id]
        return self._store._purchases.get(transaction_id)

    def put_purchase(self, record: PurchaseRecord) -> None:
        """See :meth:`StoreUnit.put_purchase`."""
        self._check(record.member_id)
        self._purchases[record.transaction_id] = record

    # -- append-only --
    def append_entries(self, entries: Sequence[LedgerEntry]) -> None:
        """See :meth:`StoreUnit.append_entries`."""
        for entry in entries:
            self._check(entry.member_id)
            if entry.id in self._entry_ids or entry.id in self._store._entry_ids:
                raise StoreError(f"ledger entry id {entry.id!r} is already stored")
            self._entry_ids.add(entry.id)
            self._entries.append(entry)

    def append_tier_change(self, change: TierChange) -> None:
        """See :meth:`StoreUnit.append_tier_change`."""
        self._check(change.member_id)
        self._tiers.append(change)

    def append_activity(self, activity: Activity) -> None:
        """See :meth:`StoreUnit.append_activity`."""
        self._check(activity.member_id)
        self._activity.append(activity)

    def activity_totals(
        self, member_id: str, start: dt.datetime, end: dt.datetime
    ) -> ActivityTotals:
        """See :meth:`StoreUnit.activity_totals`."""
        self._check(member_id)
        spend, points, visits = Decimal(0), 0, 0
        rows = [*self._store._activity.get(member_id, ()), *self._activity]
        for a in rows:
            if a.member_id == member_id and start <= a.occurred_at <= end:
                spend += a.spend
                points += a.points
                visits += a.visits
        return ActivityTotals(spend=spend, points=points, visits=visits)

    # -- counters --
    def counter_value(self, name: str) -> int:
        """See :meth:`StoreUnit.counter_value`."""
        with self._store._lock:
            return self._store._counters.get(name, 0)

    def counter_add(self, name: str, amount: int, cap: int | None) -> bool:
        """See :meth:`StoreUnit.counter_add` (applied at once, undone on rollback)."""
        s = self._store
        with s._lock:
            value = s._counters.get(name, 0)
            if cap is not None and value + amount > cap:
                return False
            s._counters[name] = value + amount
        self._counters.append((name, amount))
        return True

    # -- end --
    def _commit(self) -> None:
        s = self._store
        with s._lock:
            for event_id, record in self._events.items():
                s._reserved.discard(event_id)
                s._events[event_id] = record
            s._states.update(self._states)
            for batch in self._batches.values():
                s._batches.setdefault(batch.member_id, {})[batch.id] = batch
                s._batch_index[batch.id] = batch
            s._purchases.update(self._purchases)
            for entry in self._entries:
                s._entries.setdefault(entry.member_id, []).append(entry)
            s._entry_ids.update(self._entry_ids)
            for change in self._tiers:
                s._tiers.setdefault(change.member_id, []).append(change)
            for activity in self._activity:
                s._activity.setdefault(activity.member_id, []).append(activity)

    def _rollback(self) -> None:
        s = self._store
        with s._lock:
            for event_id in self._events:
                s._reserved.discard(event_id)
            for name, amount in reversed(self._counters):
                s._counters[name] -= amount


class MemoryStore:
    """A :class:`~loyaltykit.engine.store.LedgerStore` kept in process memory.

    >>> store = MemoryStore()
    >>> store.migrate(); store.schema_version()
    1
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._member_locks: dict[str, threading.Lock] = {}
        self._version = 0
        self._closed = False
        self._events: dict[str, EventRecord] = {}
        self._reserved: set[str] = set()
        self._states: dict[str, MemberState] = {}
        self._batches: dict[str, dict[str, Batch]] = {}
        self._batch_index: dict[str, Batch] = {}
        self._purchases: dict[str, PurchaseRecord] = {}
        self._entries: dict[str, list[LedgerEntry]] = {}
        self._entry_ids: set[str] = set()
        self._tiers: dict[str, list[TierChange]] = {}
        self._activity: dict[str, list[Activity]] = {}
        self._counters: dict[str, int] = {}

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("this MemoryStore is closed; create a new one")

    def migrate(self) -> None:
        """Set the schema version to the current one (there is nothing else to create)."""
        self._check_open()
        self._version = SCHEMA_VERSION

    def schema_version(self) -> int:
        """0 before :meth:`migrate`, then :data:`SCHEMA_VERSION`."""
        return self._version

    def unit(self, member_id: str, *more: str) -> AbstractContextManager[StoreUnit]:
        """Lock the members (sorted), yield a :class:`MemoryUnit`, commit or roll back."""
        return self._unit((member_id, *more))

    @contextmanager
    def _unit(self, members: tuple[str, ...]) -> Iterator[StoreUnit]:
        self._check_open()
        if self._version != SCHEMA_VERSION:
            raise StoreError("the store has no schema yet; call store.migrate() first")
        ordered = tuple(sorted(set(members)))
        with self._lock:
            locks = [self._member_locks.setdefault(m, threading.Lock()) for m in ordered]
        taken: list[threading.Lock] = []
        try:
            for lock in locks:
                lock.acquire()
                taken.append(lock)
            unit = MemoryUnit(self, ordered)
            try:
                yield unit
            except BaseException:
                unit._rollback()
                raise
            unit._commit()
        finally:
            for lock in reversed(taken):
                lock.release()

    def member_ids(self) -> list[str]:
        """See :meth:`LedgerStore.member_ids`."""
        with self._lock:
            return sorted(self._states)

    def get_member(self, member_id: str) -> MemberState | None:
        """See :meth:`LedgerStore.get_member`."""
        with self._lock:
            return self._states.get(member_id)

    def members_with_expiring(self, as_of: dt.datetime) -> list[str]:
        """See :meth:`LedgerStore.members_with_expiring`."""
        with self._lock:
            return sorted(
                member
                for member, batches in self._batches.items()
                if any(
                    b.remaining > 0 and b.expires_at is not None and b.expires_at <= as_of
                    for b in batches.values()
                )
            )

    def entries(self, member_id: str, *, until: dt.datetime | None = None) -> list[LedgerEntry]:
        """See :meth:`LedgerStore.entries`."""
        with self._lock:
            rows = list(self._entries.get(member_id, ()))
        if until is not None:
            rows = [e for e in rows if e.occurred_at <= until]
        return rows

    def batches(self, member_id: str) -> list[Batch]:
        """See :meth:`LedgerStore.batches`."""
        with self._lock:
            rows = list(self._batches.get(member_id, {}).values())
        return sorted(rows, key=batch_order_key)

    def tier_history(self, member_id: str) -> list[TierChange]:
        """See :meth:`LedgerStore.tier_history`."""
        with self._lock:
            return list(self._tiers.get(member_id, ()))

    def get_event(self, event_id: str) -> EventRecord | None:
        """See :meth:`LedgerStore.get_event`."""
        with self._lock:
            return self._events.get(event_id)

    def close(self) -> None:
        """Mark the store closed; later units raise :class:`~loyaltykit.errors.StoreError`."""
        self._closed = True
