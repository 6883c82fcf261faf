"""The store protocol: what the program engine needs from a database.

The engine (:class:`loyaltykit.engine.Engine`) keeps no state of its own. Everything lives in a
:class:`LedgerStore`; the in-memory :class:`~loyaltykit.engine.memory.MemoryStore` is the reference
implementation, and the SQLite and PostgreSQL stores under :mod:`loyaltykit.engine.stores`
implement the same protocol. ``tests/engine/store_conformance.py`` holds the test suite every store
must pass.

Contract in one paragraph: the engine handles each event inside one :meth:`LedgerStore.unit`. A
unit is **one database transaction** in which the members it names are **serialised** against
every other unit naming any of them, in this process or any other (SQLite: ``BEGIN IMMEDIATE``;
PostgreSQL: upsert the member rows, then ``SELECT ... FOR UPDATE`` them in sorted order). The unit
commits when the ``with`` block exits cleanly and rolls back everything it wrote, counters
included, when the block raises. Reads inside a unit see the unit's own writes.

Value types: every record here is a frozen attrs class made of JSON-friendly scalars, ``Decimal``
(money, store exactly: SQL ``NUMERIC`` or text), ``int`` (points) and timezone-aware ``datetime``
(store the instant; returning it in UTC is fine, since aware datetimes compare by instant). Free-form
parts (:attr:`EventRecord.outcome`, :class:`MemberState` as a whole via :meth:`MemberState.to_dict`)
are JSON-able dicts, so a SQL store can keep them as JSON text.

Stability: methods are only ever *added* to these protocols, never changed. (No change so far.)
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import attrs

from loyaltykit.core import _checks as c
from loyaltykit.core.ledger import LedgerEntry, TierChange
from loyaltykit.engine._iso import opt_iso
from loyaltykit.engine._trusted import builder
from loyaltykit.errors import StoreError

__all__ = [
    "Activity",
    "ActivityTotals",
    "Batch",
    "DurablePipeline",
    "EventExistsError",
    "EventRecord",
    "LedgerStore",
    "MemberState",
    "PipelinedStore",
    "PurchaseRecord",
    "StoreUnit",
    "batch_order_key",
    "fingerprint",
]


class EventExistsError(StoreError):
    """:meth:`StoreUnit.put_event` was given an event id that another unit already stored.

    Raised at ``put_event`` or at commit (whichever the store can detect first; a SQL store
    raises it when the primary-key insert fails). The unit is rolled back. The engine reacts by
    re-reading the stored event (a concurrent re-delivery) and answering from it.
    """


def _fingerprint_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"not JSON-able: {value!r}")


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=_fingerprint_default)


def fingerprint(payload: Mapping[str, Any]) -> str:
    """The sha256 hex digest of ``payload`` as canonical JSON (sorted keys, no spaces).

    Values must be JSON-able; ``Decimal`` and ``datetime`` are written as strings.
    """
    text = _CANONICAL.encode(payload)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_iso = opt_iso


def _from_iso(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value)


# --------------------------------------------------------------------------------------------
# records
# --------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class EventRecord:
    """What the store remembers about a processed event: the idempotency record.

    Written once by :meth:`StoreUnit.put_event` in the same transaction as the event's effects;
    never updated.
    """

    event_id: str = attrs.field(validator=c.non_empty_str)
    """The event's id (primary key, unique across the whole store)."""
    member_id: str = attrs.field(validator=c.non_empty_str)
    """The member the event belongs to (the first member of its unit)."""
    kind: str = attrs.field(validator=c.non_empty_str)
    """Event kind (``"purchase"``, ``"refund"``, ``"redeem"`` ...)."""
    fingerprint: str = attrs.field(validator=c.non_empty_str)
    """sha256 of the event's canonical JSON payload (see :func:`fingerprint`)."""
    outcome: Mapping[str, Any] = attrs.field(converter=c.frozen_mapping)
    """The outcome returned to the caller, as a JSON-able dict (store as JSON text)."""
    recorded_at: dt.datetime = attrs.field(validator=c.aware_datetime)
    """Wall-clock time the event was processed."""


@attrs.frozen(kw_only=True)
class MemberState:
    """Everything the engine keeps about one member besides ledger rows.

    A store does not need to look inside: it saves :meth:`to_dict` (a JSON-able dict) under
    :attr:`member_id` and gives it back through :meth:`from_dict`. New fields may be added to this
    class in later versions (with defaults), without any change to stores.
    """

    member_id: str = attrs.field(validator=c.non_empty_str)
    """The member's id."""
    enrolled_at: dt.datetime = attrs.field(validator=c.aware_datetime)
    """When the member enrolled."""
    birthday: dt.date | None = attrs.field(default=None)
    """Date of birth (for birthday bonuses)."""
    referred_by: str | None = attrs.field(default=None)
    """The referring member, if any."""
    tier: str | None = attrs.field(default=None)
    """Current tier name (``None`` when the program has no tiers)."""
    tier_since: dt.datetime | None = attrs.field(default=None, validator=c.optional_aware_datetime)
    """When the member entered :attr:`tier`."""
    tier_review_at: dt.datetime | None = attrs.field(
        default=None, validator=c.optional_aware_datetime
    )
    """Next time the tier is reviewed for a downgrade (period end plus grace)."""
    manual_tier: str | None = attrs.field(default=None)
    """A manually assigned tier: the member never drops below it."""
    debt: int = attrs.field(default=0, validator=[c.int_not_bool, c.non_negative])
    """Points owed after a refund reversed points that were already spent."""
    first_purchase_at: dt.datetime | None = attrs.field(
        default=None, validator=c.optional_aware_datetime
    )
    """Time of the first purchase (referral bonuses pay once, on it)."""
    last_activity_at: dt.datetime | None = attrs.field(
        default=None, validator=c.optional_aware_datetime
    )
    """Time of the latest earn or redemption (inactivity expiry counts from it)."""
    birthday_bonus_years: tuple[int, ...] = attrs.field(default=(), converter=c.to_tuple)
    """Years in which the birthday bonus was paid."""
    cap_day: dt.date | None = attrs.field(default=None)
    """Local date that :attr:`cap_day_points` counts (the daily cap's current day)."""
    cap_day_points: int = attrs.field(default=0, validator=c.int_not_bool)
    """Purchase points earned on :attr:`cap_day` (before reversals)."""
    attributes: Mapping[str, Any] = attrs.field(factory=dict, converter=c.frozen_mapping)
    """Free JSON-able attributes given at enrolment."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict that :meth:`from_dict` turns back into an equal state."""
        return {
            "member_id": self.member_id,
            "enrolled_at": _iso(self.enrolled_at),
            "birthday": None if self.birthday is None else self.birthday.isoformat(),
            "referred_by": self.referred_by,
            "tier": self.tier,
            "tier_since": _iso(self.tier_since),
            "tier_review_at": _iso(self.tier_review_at),
            "manual_tier": self.manual_tier,
            "debt": self.debt,
            "first_purchase_at": _iso(self.first_purchase_at),
            "last_activity_at": _iso(self.last_activity_at),
            "birthday_bonus_years": list(self.birthday_bonus_years),
            "cap_day": None if self.cap_day is None else self.cap_day.isoformat(),
            "cap_day_points": self.cap_day_points,
            "attributes": dict(self.attributes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MemberState:
        """Rebuild a state from :meth:`to_dict` output (unknown keys are ignored)."""
        birthday = data.get("birthday")
        enrolled = _from_iso(data["enrolled_at"])
        assert enrolled is not None
        return cls(
            member_id=data["member_id"],
            enrolled_at=enrolled,
            birthday=None if birthday is None else dt.date.fromisoformat(birthday),
            referred_by=data.get("referred_by"),
            tier=data.get("tier"),
            tier_since=_from_iso(data.get("tier_since")),
            tier_review_at=_from_iso(data.get("tier_review_at")),
            manual_tier=data.get("manual_tier"),
            debt=int(data.get("debt", 0)),
            first_purchase_at=_from_iso(data.get("first_purchase_at")),
            last_activity_at=_from_iso(data.get("last_activity_at")),
            birthday_bonus_years=tuple(data.get("birthday_bonus_years", ())),
            cap_day=None if data.get("cap_day") is None else dt.date.fromisoformat(data["cap_day"]),
            cap_day_points=int(data.get("cap_day_points", 0)),
            attributes=data.get("attributes") or {},
        )


_new_state = builder(MemberState)
_fromiso = dt.datetime.fromisoformat
_date = dt.date.fromisoformat
_NO_ATTRIBUTES: Mapping[str, Any] = MappingProxyType({})


def _stored_state(data: Mapping[str, Any]) -> MemberState:
    """:meth:`MemberState.from_dict` of a dict that a store wrote from :meth:`MemberState.to_dict`
    of a valid state, without running the validators again (stores read a member's state for
    every event)."""
    birthday = data.get("birthday")
    cap_day = data.get("cap_day")
    attributes = data.get("attributes")
    fpa = data.get("first_purchase_at")
    last = data.get("last_activity_at")
    since = data.get("tier_since")
    review = data.get("tier_review_at")
    years = data.get("birthday_bonus_years")
    return _new_state(
        member_id=data["member_id"],
        enrolled_at=_fromiso(data["enrolled_at"]),
        birthday=None if birthday is None else _date(birthday),
        referred_by=data.get("referred_by"),
        tier=data.get("tier"),
        tier_since=None if since is None else _fromiso(since),
        tier_review_at=None if review is None else _fromiso(review),
        manual_tier=data.get("manual_tier"),
        debt=int(data.get("debt", 0)),
        first_purchase_at=None if fpa is None else _fromiso(fpa),
        last_activity_at=None if last is None else _fromiso(last),
        birthday_bonus_years=tuple(years) if years else (),
        cap_day=None if cap_day is None else _date(cap_day),
        cap_day_points=int(data.get("cap_day_points", 0)),
        attributes=MappingProxyType(dict(attributes)) if attributes else _NO_ATTRIBUTES,
    )


@attrs.frozen(kw_only=True)
class Batch:
    """An earn batch: points earned together, spent and expired together.

    Only :attr:`remaining` and :attr:`expires_at` ever change after the batch is created.
    """

    id: str = attrs.field(validator=c.non_empty_str)
    """Batch id (primary key, unique across the store)."""
    member_id: str = attrs.field(validator=c.non_empty_str)
    """Owner."""
    event_id: str = attrs.field(validator=c.non_empty_str)
    """The event that opened it."""
    transaction_id: str | None = attrs.field(default=None)
    """The purchase that earned it (``None`` for bonuses and adjustments)."""
    source: str = attrs.field(default="purchase", validator=c.non_empty_str)
    """``"purchase"``, ``"bonus"`` or ``"adjust"``."""
    points: int = attrs.field(validator=[c.int_not_bool, c.non_negative])
    """Points the batch opened with."""
    remaining: int = attrs.field(validator=[c.int_not_bool, c.non_negative])
    """Points still unspent (never below zero)."""
    earned_at: dt.datetime = attrs.field(validator=c.aware_datetime)
    """When it was earned."""
    pending_until: dt.datetime | None = attrs.field(
        default=None, validator=c.optional_aware_datetime
    )
    """The points are usable only from this time on (``None``: at once)."""
    expires_at: dt.datetime | None = attrs.field(default=None, validator=c.optional_aware_datetime)
    """When what is left expires (``None``: never)."""

    @remaining.validator
    def _check_remaining(self, attribute: attrs.Attribute[Any], value: int) -> None:
        if value > self.points:
            raise ValueError(f"Batch.remaining={value} exceeds Batch.points={self.points}")


_FAR = dt.datetime.max.replace(tzinfo=dt.UTC)


def batch_order_key(batch: Batch) -> tuple[dt.datetime, dt.datetime, str]:
    """Sort key of the draw order: soonest ``expires_at`` first (never-expiring last), then
    ``earned_at``, then ``id``. Stores return open batches in this order."""
    return (batch.expires_at or _FAR, batch.earned_at, batch.id)


def _place_open_batch(view: list[Batch], batch: Batch) -> bool:
    """Keep ``view`` (a member's open batches in :func:`batch_order_key` order) in step with
    ``batch`` just written: replace, move or drop the batch of its id, or insert it when open.

    :returns: whether ``view`` held a batch of that id.
    """
    bid = batch.id
    for i, old in enumerate(view):
        if old.id == bid:
            if (
                batch.remaining > 0
                and old.expires_at == batch.expires_at
                and old.earned_at == batch.earned_at
            ):
                view[i] = batch  # same place in the order
                return True
            del view[i]
            break
    else:
        i = -1
    if batch.remaining > 0:
        bisect.insort_right(view, batch, key=batch_order_key)
    return i >= 0


@attrs.frozen(kw_only=True)
class PurchaseRecord:
    """A purchase that earned points, kept so that refunds can reverse them proportionally.

    Only :attr:`refunded_amount` and :attr:`reversed_points` change after creation.
    """

    transaction_id: str = attrs.field(validator=c.non_empty_str)
    """The purchase's transaction id (primary key, unique across the store)."""
    member_id: str = attrs.field(validator=c.non_empty_str)
    """The buyer."""
    event_id: str = attrs.field(validator=c.non_empty_str)
    """The event that recorded it."""
    occurred_at: dt.datetime = attrs.field(validator=c.aware_datetime)
    """When the purchase happened."""
    amount: Decimal = attrs.field(converter=c.to_decimal, validator=c.exact_decimal)
    """Purchase amount (exact)."""
    currency: str = attrs.field(default="USD")
    """ISO currency code."""
    points: int = attrs.field(validator=[c.int_not_bool, c.non_negative])
    """Points the purchase earned (the reversible part)."""
    refunded_amount: Decimal = attrs.field(
        default=Decimal(0), converter=c.to_decimal, validator=c.exact_decimal
    )
    """Money refunded so far."""
    reversed_points: int = attrs.field(default=0, validator=[c.int_not_bool, c.non_negative])
    """Points reversed so far."""


@attrs.frozen(kw_only=True)
class Activity:
    """One qualifying activity of a member, append-only: what tier rules and daily caps sum.

    A purchase appends spend, points and one visit; a refund appends negative spend and points
    and zero visits; a bonus appends points only.
    """

    member_id: str = attrs.field(validator=c.non_empty_str)
    """The member."""
    event_id: str = attrs.field(validator=c.non_empty_str)
    """The event that caused it."""
    occurred_at: dt.datetime = attrs.field(validator=c.aware_datetime)
    """When it happened."""
    spend: Decimal = attrs.field(
        default=Decimal(0), converter=c.to_decimal, validator=c.exact_decimal
    )
    """Money spent (negative for refunds)."""
    points: int = attrs.field(default=0, validator=c.int_not_bool)
    """Points earned (negative for reversals)."""
    visits: int = attrs.field(default=0, validator=c.int_not_bool)
    """Visits (purchases) counted."""


@attrs.frozen(kw_only=True)
class ActivityTotals:
    """Sums of :class:`Activity` rows over a time range."""

    spend: Decimal = Decimal(0)
    """Sum of spend."""
    points: int = 0
    """Sum of points."""
    visits: int = 0
    """Sum of visits."""


# --------------------------------------------------------------------------------------------
# protocols
# --------------------------------------------------------------------------------------------


class StoreUnit(Protocol):
    """One open unit: a database transaction holding the locks of :attr:`member_ids`.

    Every ``member_id`` argument must be one of :attr:`member_ids` (stores may raise
    :class:`~loyaltykit.errors.StoreError` otherwise). Reads see the unit's own writes.

    Optional: a unit may have ``expect_purchases(*transaction_ids)``. The engine calls it, when
    present, before its first question for a purchase or refund event, naming the purchases
    it is about to look up with :meth:`get_purchase`, so that a store whose reads are round
    trips can read them together with the lock (the PostgreSQL store does). It is only a hint:
    :meth:`get_purchase` answers the same with or without it.
    """

    @property
    def member_ids(self) -> tuple[str, ...]:
        """The members this unit holds locked, sorted."""
        ...

    # -- idempotency --
    def get_event(self, event_id: str) -> EventRecord | None:
        """The stored record of ``event_id`` (committed, or written by this unit), or ``None``."""
        ...

    def put_event(self, record: EventRecord) -> None:
        """Store ``record``; raise :class:`EventExistsError` if its id is already stored."""
        ...

    # -- members --
    def load_member(self, member_id: str) -> MemberState | None:
        """The member's state, or ``None`` if never saved."""
        ...

    def save_member(self, state: MemberState) -> None:
        """Insert or replace the state of ``state.member_id``."""
        ...

    # -- batches --
    def open_batches(self, member_id: str) -> list[Batch]:
        """The member's batches with ``remaining > 0``, in :func:`batch_order_key` order."""
        ...

    def transaction_batches(self, member_id: str, transaction_id: str) -> list[Batch]:
        """The member's batches with this ``transaction_id`` (any remaining), oldest first."""
        ...

    def put_batches(self, batches: Sequence[Batch]) -> None:
        """Insert new batches, or update ``remaining`` and ``expires_at`` of existing ones (by id).

        Other fields of an existing batch must not change; stores may ignore them.
        """
        ...

    # -- purchases --
    def get_purchase(self, transaction_id: str) -> PurchaseRecord | None:
        """The purchase record of ``transaction_id`` (of any member), or ``None``."""
        ...

    def put_purchase(self, record: PurchaseRecord) -> None:
        """Insert, or update ``refunded_amount`` and ``reversed_points`` of an existing record."""
        ...

    # -- append-only rows --
    def append_entries(self, entries: Sequence[LedgerEntry]) -> None:
        """Append ledger entries (ids unique); :meth:`LedgerStore.entries` returns them in
        append order."""
        ...

    def append_tier_change(self, change: TierChange) -> None:
        """Append one tier change; :meth:`LedgerStore.tier_history` returns them in append order."""
        ...

    def append_activity(self, activity: Activity) -> None:
        """Append one activity row."""
        ...

    def activity_totals(
        self, member_id: str, start: dt.datetime, end: dt.datetime
    ) -> ActivityTotals:
        """Sums of the member's activity with ``start <= occurred_at <= end`` (both inclusive)."""
        ...

    # -- global counters (reward stock, campaign budgets) --
    def counter_value(self, name: str) -> int:
        """Current value of counter ``name`` (0 if it was never added to)."""
        ...

    def counter_add(self, name: str, amount: int, cap: int | None) -> bool:
        """Atomically add ``amount`` to counter ``name`` unless that takes it above ``cap``.

        Returns ``True`` and adds when ``cap is None`` or ``value + amount <= cap``; otherwise
        returns ``False`` and changes nothing. Concurrent units must never push the committed
        value above ``cap`` (SQL: ``UPDATE ... SET value = value + :a WHERE name = :n AND value +
        :a <= :cap``, after an ``INSERT ... ON CONFLICT DO NOTHING`` of a zero row). The add is
        part of the unit: rolled back with it.
        """
        ...


@runtime_checkable
class LedgerStore(Protocol):
    """A durable home for the ledger: members, events, batches, entries, tiers and counters."""

    def migrate(self) -> None:
        """Create the schema, or upgrade it to the store's current version; idempotent.

        :raises StoreError: when the stored schema is newer than this code understands.
        """
        ...

    def schema_version(self) -> int:
        """The schema version in the database (0 before :meth:`migrate`)."""
        ...

    def unit(self, member_id: str, *more: str) -> AbstractContextManager[StoreUnit]:
        """Open one transaction serialising the given members (see the module docstring).

        Members are locked in sorted order so that units naming several members cannot
        deadlock. Commits on clean exit; rolls back (including counters and events) when the
        block raises, and re-raises.
        """
        ...

    # -- store-wide reads (committed data; no locks) --
    def member_ids(self) -> list[str]:
        """Ids of all members with a saved state, sorted."""
        ...

    def get_member(self, member_id: str) -> MemberState | None:
        """The committed state of a member, or ``None``."""
        ...

    def members_with_expiring(self, as_of: dt.datetime) -> list[str]:
        """Sorted ids of members having a batch with ``remaining > 0`` and
        ``expires_at <= as_of``."""
        ...

    def entries(self, member_id: str, *, until: dt.datetime | None = None) -> list[LedgerEntry]:
        """The member's ledger entries in append order; with ``until``, only those with
        ``occurred_at <= until``."""
        ...

    def batches(self, member_id: str) -> list[Batch]:
        """All the member's batches (spent ones too), in :func:`batch_order_key` order."""
        ...

    def tier_history(self, member_id: str) -> list[TierChange]:
        """The member's tier changes in append order."""
        ...

    def get_event(self, event_id: str) -> EventRecord | None:
        """The committed record of ``event_id``, or ``None``."""
        ...

    def close(self) -> None:
        """Release connections; the store is unusable afterwards. Idempotent."""
        ...


class DurablePipeline(Protocol):
    """What :meth:`PipelinedStore.pipeline` yields: tells when the units committed in it are
    durable."""

    def after_durable(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` (from :meth:`run_durable`, in the calling thread) once every unit
        committed so far in this pipeline is durable."""
        ...

    def run_durable(self) -> None:
        """Run, in registration order, the callbacks whose units are known durable."""
        ...


class _DurableCallbacks:
    """The callback bookkeeping of a store's :class:`DurablePipeline`: callbacks of the unit
    in flight wait, the others are ready. Stores say when a unit is in flight
    (:meth:`_in_flight`) and when it became durable (:meth:`_durable`) or failed
    (:meth:`_failed`)."""

    __slots__ = ("_ready", "_waiting")

    def __init__(self) -> None:
        self._waiting: list[Callable[[], None]] = []
        self._ready: list[Callable[[], None]] = []

    def _in_flight(self) -> bool:
        raise NotImplementedError  # pragma: no cover - stores override it

    def after_durable(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` from :meth:`run_durable` once every unit committed so far in this
        pipeline is durable."""
        (self._waiting if self._in_flight() else self._ready).append(callback)

    def run_durable(self) -> None:
        """Run the callbacks whose units are durable, in registration order."""
        while self._ready:
            ready, self._ready = self._ready, []
            for callback in ready:
                callback()

    def _durable(self) -> None:
        """The unit in flight is durable: its callbacks are ready."""
        self._ready.extend(self._waiting)
        self._waiting.clear()

    def _failed(self) -> None:
        """The unit in flight is not known to be durable: its callbacks never run."""
        self._waiting.clear()


@runtime_checkable
class PipelinedStore(Protocol):
    """A store that can overlap making one unit durable with the caller's work on the next.

    Optional: :meth:`loyaltykit.engine.Engine.process_many` uses it when the store has it. Inside
    ``with store.pipeline() as pipe:`` every unit is still its own transaction and is still
    made durable on its own, but the store may return from a unit once it is *committed* and
    finish making it durable while the caller prepares the next unit; a unit's commit waits
    until the previous unit is durable, so at most one is ever in flight. The block's exit
    waits until every unit committed in it is durable (or raises
    :class:`~loyaltykit.errors.StoreError` if that failed). Pipelines do not nest and cannot
    open inside a unit.
    """

    def pipeline(self) -> AbstractContextManager[DurablePipeline]:
        """Open a pipeline for the calling thread (see the class docstring)."""
        ...
