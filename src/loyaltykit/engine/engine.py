"""The program engine: turns events into ledger entries, tier changes and rewards.

:class:`Engine` keeps no state of its own; everything is in its
:class:`~loyaltykit.engine.store.LedgerStore`. Each event is handled in one store unit (one
database transaction holding the member's lock): the engine first expires what is due and runs
due tier reviews as of the event's time, then applies the event, records the event id with its
outcome, and commits. Only after the commit does it call the event hooks.

Guarantees (see the explanation page "The ledger's guarantees"):

* **Idempotent**: an event id already recorded returns the recorded outcome (with
  ``replayed=True``) and writes nothing; the same id with a different payload raises
  :class:`~loyaltykit.errors.IdempotencyConflictError`. A transaction id earns once, whatever the
  event id.
* **Atomic**: an event that fails writes nothing.
* **No overdraft**: redemptions and negative adjustments never take a member below zero; only a
  refund under the ``debt`` policy can, and later earnings settle the debt first.
* **Balance = sum of entries** = sum of the batches' remaining points minus the debt.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from functools import partial
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs

from loyaltykit.core import _checks as c
from loyaltykit.core.ledger import EntryKind, LedgerEntry, RewardIssue, TierChange
from loyaltykit.core.program import (
    EarnContext,
    ExpiryKind,
    NegativeBalancePolicy,
    Program,
    Rounding,
    round_ratio,
)
from loyaltykit.engine._iso import opt_iso
from loyaltykit.engine._trusted import builder, replacer
from loyaltykit.engine.events import (
    Adjust,
    AssignTier,
    Enroll,
    Event,
    EventError,
    Purchase,
    Redeem,
    Refund,
)
from loyaltykit.engine.rules import money_units
from loyaltykit.engine.store import (
    Activity,
    Batch,
    DurablePipeline,
    EventExistsError,
    EventRecord,
    LedgerStore,
    MemberState,
    PipelinedStore,
    PurchaseRecord,
    StoreUnit,
    _place_open_batch,
    fingerprint,
)
from loyaltykit.engine.tiers import apply_upgrade, review_tiers
from loyaltykit.errors import (
    IdempotencyConflictError,
    InsufficientPointsError,
    InvalidValueError,
    LedgerError,
)

if TYPE_CHECKING:
    from loyaltykit.plugins import PluginHost

__all__ = [
    "Balance",
    "Engine",
    "EventPipeline",
    "ExpiryReport",
    "Outcome",
    "RetierReport",
    "Statement",
    "StatementLine",
    "entry_from_dict",
    "entry_to_dict",
]

log = logging.getLogger(__name__)

# Trusted constructors (see loyaltykit.engine._trusted) for the records the engine builds from
# values it has checked: no validators, no converters. Values from outside (a rule's points, the
# clock) are checked here first, falling back to the public constructors, whose errors stand.
_new_entry = builder(LedgerEntry)
_new_batch = builder(Batch)
_with_batch = replacer(Batch)
_with_state = replacer(MemberState)
_with_purchase = replacer(PurchaseRecord)
_new_purchase = builder(PurchaseRecord)
_new_activity = builder(Activity)
_new_event_record = builder(EventRecord)
_new_context = builder(EarnContext)
_NO_META: Mapping[str, Any] = MappingProxyType({})


def _is_points(value: Any) -> bool:
    """``value`` is a plain ``int`` >= 0 (what the trusted constructors may take as points)."""
    return type(value) is int and value >= 0


# --------------------------------------------------------------------------------------------
# serialisation of outcomes
# --------------------------------------------------------------------------------------------


_iso = opt_iso


def _dt(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value)


def entry_to_dict(entry: LedgerEntry) -> dict[str, Any]:
    """A JSON-able dict of a ledger entry (see :func:`entry_from_dict`)."""
    return {
        "id": entry.id,
        "member_id": entry.member_id,
        "event_id": entry.event_id,
        "kind": str(entry.kind),
        "points": entry.points,
        "occurred_at": _iso(entry.occurred_at),
        "batch_id": entry.batch_id,
        "pending_until": _iso(entry.pending_until),
        "expires_at": _iso(entry.expires_at),
        "reason": entry.reason,
        "meta": dict(entry.meta),
    }


def entry_from_dict(data: Mapping[str, Any]) -> LedgerEntry:
    """Rebuild a ledger entry from :func:`entry_to_dict` output."""
    return LedgerEntry(
        id=data["id"],
        member_id=data["member_id"],
        event_id=data["event_id"],
        kind=EntryKind(data["kind"]),
        points=int(data["points"]),
        occurred_at=dt.datetime.fromisoformat(data["occurred_at"]),
        batch_id=data.get("batch_id"),
        pending_until=_dt(data.get("pending_until")),
        expires_at=_dt(data.get("expires_at")),
        reason=data.get("reason"),
        meta=data.get("meta") or {},
    )


def _change_to_dict(change: TierChange) -> dict[str, Any]:
    return {
        "member_id": change.member_id,
        "event_id": change.event_id,
        "from_tier": change.from_tier,
        "to_tier": change.to_tier,
        "occurred_at": _iso(change.occurred_at),
        "reason": change.reason,
    }


def _change_from_dict(data: Mapping[str, Any]) -> TierChange:
    return TierChange(
        member_id=data["member_id"],
        event_id=data["event_id"],
        from_tier=data.get("from_tier"),
        to_tier=data["to_tier"],
        occurred_at=dt.datetime.fromisoformat(data["occurred_at"]),
        reason=data.get("reason", ""),
    )


def _issue_to_dict(issue: RewardIssue) -> dict[str, Any]:
    return {
        "member_id": issue.member_id,
        "event_id": issue.event_id,
        "reward_id": issue.reward_id,
        "points": issue.points,
        "occurred_at": _iso(issue.occurred_at),
        "valid_until": _iso(issue.valid_until),
    }


def _issue_from_dict(data: Mapping[str, Any]) -> RewardIssue:
    return RewardIssue(
        member_id=data["member_id"],
        event_id=data["event_id"],
        reward_id=data["reward_id"],
        points=int(data["points"]),
        occurred_at=dt.datetime.fromisoformat(data["occurred_at"]),
        valid_until=_dt(data.get("valid_until")),
    )


@attrs.frozen(kw_only=True)
class Outcome:
    """What processing one event did. Stored with the event id and returned again on replay."""

    event_id: str
    """The event's id."""
    kind: str
    """The event's type."""
    member_id: str
    """The event's member."""
    points: int
    """Net change of the member's balance by this event's entries."""
    entries: tuple[LedgerEntry, ...] = ()
    """Every entry written (the member's, a referrer's, and expiries that came due first)."""
    tier_changes: tuple[TierChange, ...] = ()
    """Tier changes written."""
    reward: RewardIssue | None = None
    """The reward issued, for redemptions of a catalogue reward."""
    details: Mapping[str, Any] = attrs.field(factory=dict)
    """Event-specific facts: points per rule, caps applied, forgiven points ..."""
    replayed: bool = False
    """``True`` when the event id had been processed before and nothing was written now."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (what the store keeps; ``replayed`` is not stored)."""
        return {
            "event_id": self.event_id,
            "kind": self.kind,
            "member_id": self.member_id,
            "points": self.points,
            "entries": [entry_to_dict(e) for e in self.entries],
            "tier_changes": [_change_to_dict(c) for c in self.tier_changes],
            "reward": None if self.reward is None else _issue_to_dict(self.reward),
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, replayed: bool = False) -> Outcome:
        """Rebuild an outcome from :meth:`to_dict` output."""
        reward = data.get("reward")
        return cls(
            event_id=data["event_id"],
            kind=data["kind"],
            member_id=data["member_id"],
            points=int(data["points"]),
            entries=tuple(entry_from_dict(e) for e in data.get("entries", ())),
            tier_changes=tuple(_change_from_dict(c) for c in data.get("tier_changes", ())),
            reward=None if reward is None else _issue_from_dict(reward),
            details=dict(data.get("details") or {}),
            replayed=replayed,
        )


@attrs.frozen(kw_only=True)
class Balance:
    """A member's points as of a time.

    ``total = available + pending + overdue - debt``, and ``total`` is the sum of the member's
    entries up to ``as_of``. Under ``inactivity`` expiry, batches carry their current expiry
    date (it moves later with each activity), also when ``as_of`` is in the past.
    """

    member_id: str
    """The member."""
    as_of: dt.datetime
    """The time it describes."""
    total: int
    """Sum of the member's ledger entries up to :attr:`as_of`."""
    available: int
    """Points usable now: out of pending, not yet expired."""
    pending: int
    """Points still in their pending period."""
    overdue: int
    """Points past their expiry whose expiry has not been recorded yet (the next event or
    :meth:`Engine.expire` records it); not usable."""
    debt: int
    """Points owed after refunds of spent points."""
    expiring: int
    """Points (available or pending) that expire within :attr:`expiring_within_days`."""
    expiring_within_days: int
    """The window of :attr:`expiring`, in days."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {
            "member_id": self.member_id,
            "as_of": self.as_of.isoformat(),
            "total": self.total,
            "available": self.available,
            "pending": self.pending,
            "overdue": self.overdue,
            "debt": self.debt,
            "expiring": self.expiring,
            "expiring_within_days": self.expiring_within_days,
        }


@attrs.frozen(kw_only=True)
class StatementLine:
    """One entry of a statement with the running balance after it."""

    entry: LedgerEntry
    """The ledger entry."""
    balance: int
    """Sum of the member's entries up to and including this one."""


@attrs.frozen(kw_only=True)
class Statement:
    """A member's ledger over a time range, with opening and closing balances and tiers."""

    member_id: str
    """The member."""
    start: dt.datetime | None
    """First instant covered (``None``: from the beginning)."""
    end: dt.datetime | None
    """Last instant covered (``None``: up to now)."""
    opening_balance: int
    """Balance before the first line."""
    closing_balance: int
    """Balance after the last line."""
    lines: tuple[StatementLine, ...]
    """The entries in the range, by time then append order."""
    tier: str | None
    """Current tier."""
    tier_history: tuple[TierChange, ...]
    """Every tier change of the member."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {
            "member_id": self.member_id,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "opening_balance": self.opening_balance,
            "closing_balance": self.closing_balance,
            "lines": [{**entry_to_dict(x.entry), "balance": x.balance} for x in self.lines],
            "tier": self.tier,
            "tier_history": [_change_to_dict(c) for c in self.tier_history],
        }


@attrs.frozen(kw_only=True)
class ExpiryReport:
    """What an expiry run did."""

    as_of: dt.datetime
    """The run's time."""
    members: int
    """Members with expired points."""
    points: int
    """Points expired in all (positive)."""
    entries: tuple[LedgerEntry, ...]
    """The ``expire`` entries written."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (without the entries)."""
        return {"as_of": self.as_of.isoformat(), "members": self.members, "points": self.points}


@attrs.frozen(kw_only=True)
class RetierReport:
    """What a tier review run did."""

    as_of: dt.datetime
    """The run's time."""
    changes: tuple[TierChange, ...]
    """Tier changes written."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {
            "as_of": self.as_of.isoformat(),
            "changes": [_change_to_dict(c) for c in self.changes],
        }


# --------------------------------------------------------------------------------------------
# the work of one unit
# --------------------------------------------------------------------------------------------


class _NeedLocksError(Exception):
    """Raised inside a unit that must be retried holding more members' locks."""

    def __init__(self, members: tuple[str, ...]) -> None:
        super().__init__(members)
        self.members = members


class _Work:
    """Collects what one unit writes, numbers entries and batches, remembers hooks to fire."""

    def __init__(self, engine: Engine, unit: StoreUnit, event_id: str) -> None:
        self.engine = engine
        self.program = engine.program
        self.unit = unit
        self.event_id = event_id
        self.entries: list[LedgerEntry] = []
        self.tier_changes: list[TierChange] = []
        self.reward: RewardIssue | None = None
        self._n = 0
        self._b = 0
        # open batches per member as this unit sees them (read once, then kept up to date by
        # put_batches: every batch write of the unit goes through this object)
        self._open: dict[str, list[Batch]] = {}

    def entry_id(self) -> str:
        self._n += 1
        return f"{self.event_id}:{self._n}"

    def batch_id(self) -> str:
        self._b += 1
        return f"{self.event_id}:b{self._b}"

    def add(self, entries: Sequence[LedgerEntry]) -> None:
        self.unit.append_entries(entries)
        self.entries.extend(entries)

    # -- batches --------------------------------------------------------------------------

    def open_batches(self, member_id: str) -> list[Batch]:
        """The member's open batches in draw order, read from the unit once per unit."""
        cached = self._open.get(member_id)
        if cached is None:
            cached = list(self.unit.open_batches(member_id))  # ours to update in place
            self._open[member_id] = cached
        return list(cached)

    def put_batches(self, batches: Sequence[Batch]) -> None:
        """Write batches to the unit and keep the open-batch cache in step (in draw order:
        sort keys end with the batch id, so there are no ties)."""
        self.unit.put_batches(batches)
        for b in batches:
            cached = self._open.get(b.member_id)
            if cached is not None:
                _place_open_batch(cached, b)

    def expire_due(self, member_id: str, as_of: dt.datetime) -> None:
        expired: list[LedgerEntry] = []
        updated: list[Batch] = []
        for b in self.open_batches(member_id):
            if b.expires_at is None or b.expires_at > as_of:
                continue
            expired.append(
                _new_entry(
                    id=f"{b.id}:expired",
                    member_id=member_id,
                    event_id=f"expiry:{b.id}",
                    kind=EntryKind.EXPIRE,
                    points=-b.remaining,
                    occurred_at=b.expires_at,
                    batch_id=b.id,
                    meta=_NO_META,
                )
            )
            updated.append(_with_batch(b, remaining=0))
        if updated:
            self.put_batches(updated)
            self.add(expired)

    def open_batch(
        self,
        state: MemberState,
        points: int,
        *,
        kind: EntryKind,
        source: str,
        at: dt.datetime,
        transaction_id: str | None = None,
        pending_until: dt.datetime | None = None,
        reason: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> MemberState:
        """Open a batch with an earn (or adjust) entry, then settle debt from it."""
        program = self.program
        expires_at = program.expiry.expires_at(at, program.zone)
        if program.expiry.kind is ExpiryKind.INACTIVITY:
            # with the member's other batches (a purchase moves them all later, in touch())
            last = state.last_activity_at or at
            expires_at = last + dt.timedelta(days=program.expiry.days)
        # points may come from a plugin's rule: anything but a plain int >= 0 goes through the
        # public constructors (which refuse it with their usual message)
        trusted = _is_points(points)
        make_batch: Callable[..., Batch] = _new_batch if trusted else Batch
        make_entry: Callable[..., LedgerEntry] = _new_entry if trusted else LedgerEntry
        batch = make_batch(
            id=self.batch_id(),
            member_id=state.member_id,
            event_id=self.event_id,
            transaction_id=transaction_id,
            source=source,
            points=points,
            remaining=points,
            earned_at=at,
            pending_until=pending_until,
            expires_at=expires_at,
        )
        entries = [
            make_entry(
                id=self.entry_id(),
                member_id=state.member_id,
                event_id=self.event_id,
                kind=kind,
                points=points,
                occurred_at=at,
                batch_id=batch.id,
                pending_until=pending_until,
                expires_at=expires_at,
                reason=reason,
                meta=c.frozen_mapping(meta),
            )
        ]
        settle = min(state.debt, points)
        if settle:
            batch = _with_batch(batch, remaining=points - settle)
            entries.append(
                _new_entry(
                    id=self.entry_id(),
                    member_id=state.member_id,
                    event_id=self.event_id,
                    kind=EntryKind.SETTLE,
                    points=-settle,
                    occurred_at=at,
                    batch_id=batch.id,
                    meta=_NO_META,
                )
            )
            entries.append(
                _new_entry(
                    id=self.entry_id(),
                    member_id=state.member_id,
                    event_id=self.event_id,
                    kind=EntryKind.DEBT,
                    points=settle,
                    occurred_at=at,
                    reason="settled",
                    meta=_NO_META,
                )
            )
            state = _with_state(state, debt=state.debt - settle)
        self.put_batches([batch])
        self.add(entries)
        return state

    def draw(
        self,
        member_id: str,
        batches: Iterable[Batch],
        amount: int,
        *,
        kind: EntryKind,
        at: dt.datetime,
        reason: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> int:
        """Take up to ``amount`` points from ``batches`` in order; return how many were taken."""
        left = amount
        entries: list[LedgerEntry] = []
        updated: list[Batch] = []
        frozen_meta = c.frozen_mapping(meta)
        for b in batches:
            if left <= 0:
                break
            take = min(b.remaining, left)
            if take <= 0:
                continue
            left -= take
            updated.append(_with_batch(b, remaining=b.remaining - take))
            entries.append(
                _new_entry(
                    id=self.entry_id(),
                    member_id=member_id,
                    event_id=self.event_id,
                    kind=kind,
                    points=-take,
                    occurred_at=at,
                    batch_id=b.id,
                    reason=reason,
                    meta=frozen_meta,
                )
            )
        if updated:
            self.put_batches(updated)
            self.add(entries)
        return amount - left

    def touch(self, state: MemberState, at: dt.datetime, **changes: Any) -> MemberState:
        """Record activity at ``at`` (with other ``changes`` of the state, in the same
        ``evolve``); under inactivity expiry, push every open batch's expiry."""
        previous = state.last_activity_at
        last = at if previous is None or previous < at else previous
        state = _with_state(state, last_activity_at=last, **changes)
        expiry = self.program.expiry
        if expiry.kind is ExpiryKind.INACTIVITY:
            new = last + dt.timedelta(days=expiry.days)
            moved = [
                _with_batch(b, expires_at=new)
                for b in self.open_batches(state.member_id)
                if b.expires_at != new
            ]
            if moved:
                self.put_batches(moved)
        return state

    def usable(self, member_id: str, at: dt.datetime) -> list[Batch]:
        return [
            b
            for b in self.open_batches(member_id)
            if (b.pending_until is None or b.pending_until <= at)
            and (b.expires_at is None or b.expires_at > at)
        ]

    def prepare(self, state: MemberState, at: dt.datetime) -> MemberState:
        """Expire what is due and run due tier reviews as of ``at``."""
        self.expire_due(state.member_id, at)
        policy = self.program.tiers
        if policy is not None:
            state, changes = review_tiers(
                policy,
                state,
                self.unit,
                at,
                self.program.zone,
                lambda when: f"review@{when.isoformat()}",
            )
            self.tier_changes.extend(changes)
        return state


# --------------------------------------------------------------------------------------------
# the engine
# --------------------------------------------------------------------------------------------

_ENTRY_HOOKS: dict[EntryKind, str] = {
    EntryKind.EARN: "loyaltykit_points_earned",
    EntryKind.SETTLE: "loyaltykit_points_earned",
    EntryKind.REDEEM: "loyaltykit_points_redeemed",
    EntryKind.REVERSE: "loyaltykit_points_reversed",
    EntryKind.EXPIRE: "loyaltykit_points_expired",
    EntryKind.ADJUST: "loyaltykit_points_adjusted",
}
_HOOK_ORDER = (
    "loyaltykit_points_expired",
    "loyaltykit_points_earned",
    "loyaltykit_points_reversed",
    "loyaltykit_points_redeemed",
    "loyaltykit_points_adjusted",
)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class EventPipeline:
    """Events applied through :meth:`Engine.pipeline`: ``process`` one after another."""

    __slots__ = ("_durable", "_engine")

    def __init__(self, engine: Engine, durable: DurablePipeline | None) -> None:
        self._engine = engine
        self._durable = durable

    def process(self, event: Event) -> Outcome:
        """Apply one event like :meth:`Engine.process`; its outcome is committed, and durable
        once the next event commits or the pipeline's block exits."""
        outcome = self._engine._process(event, self._durable)
        self._run_durable()
        return outcome

    def _run_durable(self) -> None:
        if self._durable is not None:
            self._durable.run_durable()


class Engine:
    """Runs a :class:`~loyaltykit.core.program.Program` on a
    :class:`~loyaltykit.engine.store.LedgerStore`.

    :param program: the program.
    :param store: where the ledger lives; migrated on construction unless ``migrate=False``.
    :param host: plugin host whose event hooks are called after each commit (default: the
        process-wide host, looked up when a hook fires).
    :param clock: returns the wall-clock time recorded with each event (default: now, UTC).
    :param migrate: call ``store.migrate()`` now.

    >>> from loyaltykit.core.program import Program
    >>> from loyaltykit.engine import Engine, MemoryStore, PerUnit
    >>> import datetime as dt
    >>> engine = Engine(Program(name="demo", earning=[PerUnit(name="base", points_per_unit=1)]),
    ...                 MemoryStore())
    >>> t = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    >>> _ = engine.enroll("ann", at=t, event_id="e1")
    >>> engine.purchase("ann", "12.50", at=t, event_id="e2", transaction_id="t1").points
    12
    """

    def __init__(
        self,
        program: Program,
        store: LedgerStore,
        *,
        host: PluginHost | None = None,
        clock: Callable[[], dt.datetime] = _utcnow,
        migrate: bool = True,
    ) -> None:
        self.program = program
        self.store = store
        self._host = host
        self._clock = clock
        if migrate:
            store.migrate()

    # -- public API -------------------------------------------------------------------------

    def process(self, event: Event) -> Outcome:
        """Apply one event (idempotently) and return its outcome.

        :raises IdempotencyConflictError: the id was used before with a different payload.
        :raises LedgerError: the event cannot be applied (unknown member, unknown purchase,
            insufficient points ...); nothing was written.
        """
        return self._process(event, None)

    def _process(self, event: Event, pipe: DurablePipeline | None) -> Outcome:
        payload = event.payload()
        try:
            fp = fingerprint(payload)
        except TypeError as exc:
            raise EventError(
                f"{event.type} event {event.event_id!r}",
                "attributes",
                payload.get("attributes"),
                f"every value must be JSON-able (strings, numbers, booleans, lists, tables): {exc}",
            ) from None
        # No read before the unit: the unit itself looks the event id up (a replay then costs
        # one short transaction), and a purchase that turns out to need the referrer's lock too
        # is retried holding both (see _purchase).
        members = self._members_for(event)
        for _attempt in range(3):
            try:
                return self._process_locked(event, fp, members, pipe)
            except _NeedLocksError as need:
                members = need.members
        raise LedgerError(  # pragma: no cover - needs three enrolment races in a row
            f"{event.type} event {event.event_id!r}: could not lock {members}; try again"
        )

    def _process_locked(
        self, event: Event, fp: str, members: tuple[str, ...], pipe: DurablePipeline | None
    ) -> Outcome:
        try:
            with self.store.unit(*members) as unit:
                # (optional) tell the unit which purchases the event will look up, so that a
                # store may read them with the lock (see StoreUnit.expect_purchases)
                if isinstance(event, Purchase | Refund):
                    expect = getattr(unit, "expect_purchases", None)
                    if expect is not None:
                        if isinstance(event, Purchase):
                            expect(event.transaction_id)
                        else:
                            expect(event.refund_of, event.transaction_id)
                known = unit.get_event(event.event_id)
                if known is not None:
                    outcome = self._replay(known, fp, event)
                else:
                    work = _Work(self, unit, event.event_id)
                    outcome = self._apply(work, event)
                    now = self._clock()
                    # the clock is the caller's: a naive time goes to the public constructor,
                    # which refuses it
                    aware = isinstance(now, dt.datetime) and now.utcoffset() is not None
                    unit.put_event(
                        (_new_event_record if aware else EventRecord)(
                            event_id=event.event_id,
                            member_id=event.member_id,
                            kind=event.type,
                            fingerprint=fp,
                            outcome=MappingProxyType(outcome.to_dict()),
                            recorded_at=now,
                        )
                    )
        except EventExistsError:
            known = self.store.get_event(event.event_id)
            if known is None:  # pragma: no cover - the store broke its contract
                raise
            return self._replay(known, fp, event)
        if not outcome.replayed:
            if pipe is None:
                self._fire(outcome.entries, outcome.tier_changes, outcome.reward)
            else:
                pipe.after_durable(
                    partial(self._fire, outcome.entries, outcome.tier_changes, outcome.reward)
                )
        return outcome

    def process_many(self, events: Iterable[Event]) -> list[Outcome]:
        """:meth:`process` each event in order, each in its own transaction and durable on its
        own, through :meth:`pipeline`; returns once every event is durable.

        When an event raises, the events before it are committed and durable and their hooks
        have fired, as with a loop of :meth:`process`.
        """
        with self.pipeline() as pipe:
            return [pipe.process(event) for event in events]

    @contextmanager
    def pipeline(self) -> Iterator[EventPipeline]:
        """Apply a stream of events, overlapping each event's fsync with the work on the next.

        ``with engine.pipeline() as pipe:`` then ``pipe.process(event)`` for each event. Every
        event is still its own transaction and made durable on its own, but on a store that
        can pipeline (:class:`~loyaltykit.engine.store.PipelinedStore`: the SQLite store with
        ``synchronous="full"`` overlaps each event's fsync, the PostgreSQL store each event's
        ``COMMIT``) that last step runs while the engine applies the next event: the next
        commit waits for it, and the block's exit waits for the last one. On other stores
        ``pipe.process`` is :meth:`process`.

        What changes against a loop of :meth:`process`:

        * an outcome returned by ``pipe.process`` is durable only once the next event commits
          or the block exits (on SQLite it is committed already: a crash of the process loses
          nothing, a power cut may lose that one event; on PostgreSQL its ``COMMIT`` is on its
          way); processing an event again after a failure restores it;
        * an event's hooks fire once it is durable, so possibly after the next event was
          applied; all have fired when the block exits, also when it exits by an exception
          (except for an event whose fsync failed).

        :raises StoreError: from ``pipe.process`` or the block's exit when an fsync failed: the
            event in flight is committed but not known to be durable.
        """
        store = self.store
        if not isinstance(store, PipelinedStore):
            yield EventPipeline(self, None)
            return
        pipe: EventPipeline | None = None
        try:
            with store.pipeline() as durable:
                pipe = EventPipeline(self, durable)
                yield pipe
        finally:
            if pipe is not None:
                # hooks of the events made durable by the exit (after a failure too)
                pipe._run_durable()

    def enroll(
        self,
        member_id: str,
        *,
        at: dt.datetime,
        event_id: str,
        birthday: dt.date | None = None,
        referred_by: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Outcome:
        """Enrol a member (see :class:`~loyaltykit.engine.events.Enroll`)."""
        return self.process(
            Enroll(
                event_id=event_id,
                member_id=member_id,
                occurred_at=at,
                birthday=birthday,
                referred_by=referred_by,
                attributes=attributes or {},
            )
        )

    def purchase(
        self,
        member_id: str,
        amount: Decimal | str | int,
        *,
        at: dt.datetime,
        event_id: str,
        transaction_id: str,
        currency: str | None = None,
        channel: str | None = None,
        items: Sequence[Any] = (),
    ) -> Outcome:
        """Record a purchase (see :class:`~loyaltykit.engine.events.Purchase`)."""
        return self.process(
            Purchase(
                event_id=event_id,
                member_id=member_id,
                occurred_at=at,
                transaction_id=transaction_id,
                amount=amount,
                currency=currency or self.program.currency,
                channel=channel,
                items=tuple(items),
            )
        )

    def refund(
        self,
        member_id: str,
        amount: Decimal | str | int,
        *,
        at: dt.datetime,
        event_id: str,
        transaction_id: str,
        refund_of: str,
        currency: str | None = None,
    ) -> Outcome:
        """Record a (partial) refund (see :class:`~loyaltykit.engine.events.Refund`)."""
        return self.process(
            Refund(
                event_id=event_id,
                member_id=member_id,
                occurred_at=at,
                transaction_id=transaction_id,
                refund_of=refund_of,
                amount=amount,
                currency=currency or self.program.currency,
            )
        )

    def redeem(
        self,
        member_id: str,
        *,
        at: dt.datetime,
        event_id: str,
        reward_id: str | None = None,
        points: int | None = None,
        reason: str | None = None,
    ) -> Outcome:
        """Spend points on a reward or a number of points (see
        :class:`~loyaltykit.engine.events.Redeem`)."""
        return self.process(
            Redeem(
                event_id=event_id,
                member_id=member_id,
                occurred_at=at,
                reward_id=reward_id,
                points=points,
                reason=reason,
            )
        )

    def adjust(
        self, member_id: str, points: int, *, reason: str, at: dt.datetime, event_id: str
    ) -> Outcome:
        """Manual adjustment with a reason (see :class:`~loyaltykit.engine.events.Adjust`)."""
        return self.process(
            Adjust(
                event_id=event_id, member_id=member_id, occurred_at=at, points=points, reason=reason
            )
        )

    def assign_tier(
        self,
        member_id: str,
        tier: str | None,
        *,
        at: dt.datetime,
        event_id: str,
        reason: str = "manual",
    ) -> Outcome:
        """Set (or with ``None`` remove) a manual tier floor."""
        return self.process(
            AssignTier(
                event_id=event_id, member_id=member_id, occurred_at=at, tier=tier, reason=reason
            )
        )

    def expire(self, as_of: dt.datetime) -> ExpiryReport:
        """Expire every batch due by ``as_of`` (one transaction per member). Running it again, or
        for an earlier date, does nothing more."""
        _check_aware("as_of", as_of)
        written: list[LedgerEntry] = []
        members = 0
        for member_id in self.store.members_with_expiring(as_of):
            with self.store.unit(member_id) as unit:
                work = _Work(self, unit, f"expire@{as_of.isoformat()}")
                work.expire_due(member_id, as_of)
            if work.entries:
                members += 1
                written.extend(work.entries)
                self._fire(work.entries, (), None)
        return ExpiryReport(
            as_of=as_of,
            members=members,
            points=-sum(e.points for e in written),
            entries=tuple(written),
        )

    def retier(self, as_of: dt.datetime) -> RetierReport:
        """Run the tier reviews due by ``as_of`` for every member (downgrades after period end
        and grace). Idempotent."""
        _check_aware("as_of", as_of)
        changes: list[TierChange] = []
        policy = self.program.tiers
        if policy is None:
            return RetierReport(as_of=as_of, changes=())
        for member_id in self.store.member_ids():
            state = self.store.get_member(member_id)
            if state is None or state.tier_review_at is None or state.tier_review_at > as_of:
                continue
            with self.store.unit(member_id) as unit:
                current = unit.load_member(member_id)
                if current is None:  # pragma: no cover - members are never deleted
                    continue
                new, got = review_tiers(
                    policy,
                    current,
                    unit,
                    as_of,
                    self.program.zone,
                    lambda when: f"review@{when.isoformat()}",
                )
                if new != current:
                    unit.save_member(new)
            changes.extend(got)
            self._fire((), got, None)
        return RetierReport(as_of=as_of, changes=tuple(changes))

    def balance(
        self, member_id: str, as_of: dt.datetime | None = None, *, expiring_within_days: int = 30
    ) -> Balance:
        """The member's balance as of ``as_of`` (default: now), from the recorded ledger."""
        as_of = as_of or self._clock()
        _check_aware("as_of", as_of)
        self._require_member(member_id)
        entries = self.store.entries(member_id, until=as_of)
        total = sum(e.points for e in entries)
        debt = -sum(e.points for e in entries if e.kind is EntryKind.DEBT)
        per_batch: dict[str, int] = {}
        for e in entries:
            if e.batch_id is not None:
                per_batch[e.batch_id] = per_batch.get(e.batch_id, 0) + e.points
        horizon = as_of + dt.timedelta(days=expiring_within_days)
        available = pending = overdue = expiring = 0
        for b in self.store.batches(member_id):
            left = per_batch.get(b.id, 0)
            if left <= 0 or b.earned_at > as_of:
                continue
            if b.expires_at is not None and b.expires_at <= as_of:
                overdue += left
                continue
            if b.pending_until is not None and b.pending_until > as_of:
                pending += left
            else:
                available += left
            if b.expires_at is not None and b.expires_at <= horizon:
                expiring += left
        return Balance(
            member_id=member_id,
            as_of=as_of,
            total=total,
            available=available,
            pending=pending,
            overdue=overdue,
            debt=debt,
            expiring=expiring,
            expiring_within_days=expiring_within_days,
        )

    def statement(
        self,
        member_id: str,
        *,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
    ) -> Statement:
        """The member's entries with ``start <= occurred_at <= end`` and running balances."""
        for name, value in (("start", start), ("end", end)):
            if value is not None:
                _check_aware(name, value)
        state = self._require_member(member_id)
        entries = self.store.entries(member_id, until=end)
        ordered = sorted(enumerate(entries), key=lambda p: (p[1].occurred_at, p[0]))
        opening = 0
        running = 0
        lines: list[StatementLine] = []
        for _, e in ordered:
            running += e.points
            if start is not None and e.occurred_at < start:
                opening = running
                continue
            lines.append(StatementLine(entry=e, balance=running))
        return Statement(
            member_id=member_id,
            start=start,
            end=end,
            opening_balance=opening,
            closing_balance=running,
            lines=tuple(lines),
            tier=state.tier,
            tier_history=tuple(self.store.tier_history(member_id)),
        )

    # -- internals --------------------------------------------------------------------------

    def _require_member(self, member_id: str) -> MemberState:
        state = self.store.get_member(member_id)
        if state is None:
            raise LedgerError(f"member {member_id!r} is not enrolled; enrol them first")
        return state

    def _members_for(self, event: Event) -> tuple[str, ...]:
        """The members a unit for ``event`` locks first: its own member. A purchase that pays a
        referral bonus asks for the referrer's lock from inside the unit (``_NeedLocksError``),
        which happens once per referred member; reading the member before the unit to guess it
        would cost every other event a read."""
        return (event.member_id,)

    def _replay(self, record: EventRecord, fp: str, event: Event) -> Outcome:
        if record.fingerprint != fp:
            raise IdempotencyConflictError(
                f"event id {event.event_id!r} was already used by a {record.kind} event of member "
                f"{record.member_id!r} with a different payload; give a new event a new id, and "
                "re-deliver an old event unchanged"
            )
        return Outcome.from_dict(record.outcome, replayed=True)

    def _host_hook(self) -> Any:
        host: Any = self._host
        if host is None:
            from loyaltykit.plugins import get_host

            host = get_host()
        return host.hook

    def _fire(
        self,
        entries: Sequence[LedgerEntry],
        changes: Sequence[TierChange],
        reward: RewardIssue | None,
    ) -> None:
        if not entries and not changes and reward is None:
            return
        try:
            hook = self._host_hook()
        except Exception:  # pragma: no cover - a broken host must not undo a commit
            log.exception("loyaltykit: cannot load the plugin host; event hooks skipped")
            return
        # only hooks somebody implements (most programs run with few or none), asked only of
        # the hooks this write would call
        wanted: set[str] = set()
        names: list[str | None] = []
        for e in entries:
            name = _ENTRY_HOOKS.get(e.kind)
            if e.kind is EntryKind.DEBT:
                name = "loyaltykit_points_earned" if e.points > 0 else "loyaltykit_points_reversed"
            names.append(name)
            if name is not None:
                wanted.add(name)
        if changes:
            wanted.add("loyaltykit_tier_changed")
        if reward is not None:
            wanted.add("loyaltykit_reward_issued")
        live = {name for name in wanted if getattr(hook, name).get_hookimpls()}
        if not live:
            return
        grouped: dict[tuple[str, str], list[LedgerEntry]] = {}
        for e, name in zip(entries, names, strict=True):
            if name in live:
                grouped.setdefault((name, e.member_id), []).append(e)
        calls: list[tuple[str, dict[str, Any]]] = []
        for name in _HOOK_ORDER:
            for (hook_name, member_id), group in grouped.items():
                if hook_name == name:
                    calls.append((name, {"member_id": member_id, "entries": tuple(group)}))
        if "loyaltykit_tier_changed" in live:
            calls.extend(("loyaltykit_tier_changed", {"change": c}) for c in changes)
        if reward is not None and "loyaltykit_reward_issued" in live:
            calls.append(("loyaltykit_reward_issued", {"issue": reward}))
        for name, kwargs in calls:
            try:
                getattr(hook, name)(**kwargs)
            except Exception:
                log.exception("loyaltykit: hook %s raised; the committed write stands", name)

    def _apply(self, work: _Work, event: Event) -> Outcome:
        if isinstance(event, Enroll):
            return self._enroll(work, event)
        if isinstance(event, Purchase):
            return self._purchase(work, event)
        if isinstance(event, Refund):
            return self._refund(work, event)
        if isinstance(event, Redeem):
            return self._redeem(work, event)
        if isinstance(event, Adjust):
            return self._adjust(work, event)
        return self._assign(work, event)

    def _load(self, work: _Work, event: Event) -> MemberState:
        state = work.unit.load_member(event.member_id)
        if state is None:
            if isinstance(event, Purchase) and self.program.auto_enroll:
                return self._new_member(work, event.member_id, event.occurred_at)
            raise LedgerError(
                f"{event.type} event {event.event_id!r}: member {event.member_id!r} is not "
                "enrolled; send an enroll event first (or set auto_enroll = true in the program)"
            )
        return work.prepare(state, event.occurred_at)

    def _new_member(
        self,
        work: _Work,
        member_id: str,
        at: dt.datetime,
        *,
        birthday: dt.date | None = None,
        referred_by: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> MemberState:
        policy = self.program.tiers
        tier = None if policy is None else policy.levels[0].name
        state = MemberState(
            member_id=member_id,
            enrolled_at=at,
            birthday=birthday,
            referred_by=referred_by,
            tier=tier,
            tier_since=None if tier is None else at,
            attributes=attributes or {},
        )
        if tier is not None:
            change = TierChange(
                member_id=member_id,
                event_id=work.event_id,
                from_tier=None,
                to_tier=tier,
                occurred_at=at,
                reason="enrolled",
            )
            work.unit.append_tier_change(change)
            work.tier_changes.append(change)
        return state

    def _outcome(self, work: _Work, event: Event, details: Mapping[str, Any]) -> Outcome:
        points = sum(e.points for e in work.entries if e.member_id == event.member_id)
        return Outcome(
            event_id=event.event_id,
            kind=event.type,
            member_id=event.member_id,
            points=points,
            entries=tuple(work.entries),
            tier_changes=tuple(work.tier_changes),
            reward=work.reward,
            details=details,
        )

    def _grant_budget(self, work: _Work, rule_name: str, budget: int | None, points: int) -> int:
        if budget is None or points <= 0:
            return points
        counter = f"budget:{self.program.name}:{rule_name}"
        while True:
            left = budget - work.unit.counter_value(counter)
            grant = max(0, min(points, left))
            if grant == 0 or work.unit.counter_add(counter, grant, budget):
                return grant

    def _enroll(self, work: _Work, event: Enroll) -> Outcome:
        if work.unit.load_member(event.member_id) is not None:
            raise LedgerError(
                f"enroll event {event.event_id!r}: member {event.member_id!r} is already enrolled"
            )
        state = self._new_member(
            work,
            event.member_id,
            event.occurred_at,
            birthday=event.birthday,
            referred_by=event.referred_by,
            attributes=event.attributes,
        )
        ctx = EarnContext(
            trigger="enroll",
            member_id=event.member_id,
            occurred_at=event.occurred_at,
            tier=state.tier,
        )
        by_rule: dict[str, int] = {}
        for rule in self.program.earning:
            if "enroll" not in rule.triggers:
                continue
            pts = self._grant_budget(work, rule.name, rule.budget, rule.points(ctx))
            by_rule[rule.name] = pts
            if pts > 0:
                state = work.open_batch(
                    state,
                    pts,
                    kind=EntryKind.EARN,
                    source="bonus",
                    at=event.occurred_at,
                    meta={"rule": rule.name},
                )
        work.unit.save_member(state)
        return self._outcome(work, event, {"rules": by_rule})

    def _check_money(self, event: Purchase | Refund) -> None:
        if event.currency != self.program.currency:
            raise LedgerError(
                f"{event.type} event {event.event_id!r}: currency {event.currency!r} is not the "
                f"program's {self.program.currency!r}; convert the amount first"
            )
        try:
            money_units(event.amount)
            if isinstance(event, Purchase):
                for item in event.items:
                    money_units(item.amount)
        except InvalidValueError as exc:
            raise LedgerError(f"{event.type} event {event.event_id!r}: {exc}") from None

    def _purchase(self, work: _Work, event: Purchase) -> Outcome:
        self._check_money(event)
        unit = work.unit
        existing = unit.get_purchase(event.transaction_id)
        if existing is not None:
            raise LedgerError(
                f"purchase event {event.event_id!r}: transaction {event.transaction_id!r} was "
                f"already recorded by event {existing.event_id!r}; an order earns once"
            )
        if unit.counter_value(f"txn:{event.transaction_id}"):
            raise LedgerError(
                f"purchase event {event.event_id!r}: transaction id {event.transaction_id!r} is "
                "already used by a refund"
            )
        state = self._load(work, event)
        program = self.program
        zone = program.zone
        at = event.occurred_at
        local = at.astimezone(zone)
        referrer: MemberState | None = None
        if state.referred_by is not None and state.first_purchase_at is None:
            if state.referred_by in unit.member_ids:
                referrer = unit.load_member(state.referred_by)
            elif self.store.get_member(state.referred_by) is not None:
                # the member was enrolled after process() looked: lock the referrer too
                raise _NeedLocksError((event.member_id, state.referred_by))
        birthday_flag = (
            state.birthday is not None
            and state.birthday.month == local.month
            and local.year not in state.birthday_bonus_years
        )
        by_rule: dict[str, int] = {}
        # one context for all rules: ``earlier`` is a read-only view of ``by_rule`` as it grows
        ctx = _new_context(
            trigger="purchase",
            member_id=event.member_id,
            occurred_at=at,
            amount=event.amount,
            items=event.items,
            channel=event.channel,
            tier=state.tier,
            is_first_purchase=state.first_purchase_at is None,
            has_referrer=referrer is not None,
            is_first_in_birthday_month=birthday_flag,
            earlier=MappingProxyType(by_rule),
        )
        bonuses: list[tuple[str, int]] = []
        referrer_bonus: list[tuple[str, int]] = []
        txn_points = 0
        for rule in program.earning:
            if "purchase" not in rule.triggers:
                continue
            raw = rule.points(ctx)
            ref_raw = rule.referrer_points(ctx) if referrer is not None else 0
            granted = self._grant_budget(work, rule.name, rule.budget, raw + ref_raw)
            mine = min(raw, granted)
            ref = granted - mine
            by_rule[rule.name] = mine
            if rule.scope == "transaction":
                txn_points += mine
            elif mine > 0:
                bonuses.append((rule.name, mine))
            if ref > 0:
                referrer_bonus.append((rule.name, ref))
        details: dict[str, Any] = {"rules": dict(by_rule), "uncapped": txn_points}
        caps = program.caps
        if caps.per_transaction is not None and txn_points > caps.per_transaction:
            txn_points = caps.per_transaction
        day = local.date()
        day_before = state.cap_day_points if state.cap_day == day else 0
        if caps.per_day is not None:
            txn_points = max(0, min(txn_points, caps.per_day - day_before))
        details["points"] = txn_points
        if txn_points > 0:
            state = work.open_batch(
                state,
                txn_points,
                kind=EntryKind.EARN,
                source="purchase",
                at=at,
                transaction_id=event.transaction_id,
                pending_until=program.pending.pending_until(at),
                meta={"transaction_id": event.transaction_id},
            )
        for name, pts in bonuses:
            state = work.open_batch(
                state, pts, kind=EntryKind.EARN, source="bonus", at=at, meta={"rule": name}
            )
        if referrer is not None and referrer_bonus:
            for name, pts in referrer_bonus:
                referrer = work.open_batch(
                    referrer,
                    pts,
                    kind=EntryKind.EARN,
                    source="bonus",
                    at=at,
                    meta={"rule": name, "referee": event.member_id},
                )
            unit.save_member(referrer)
        trusted = _is_points(txn_points)
        unit.put_purchase(
            (_new_purchase if trusted else PurchaseRecord)(
                transaction_id=event.transaction_id,
                member_id=event.member_id,
                event_id=event.event_id,
                occurred_at=at,
                amount=event.amount,
                currency=event.currency,
                points=txn_points,
            )
        )
        unit.append_activity(
            (_new_activity if trusted else Activity)(
                member_id=event.member_id,
                event_id=event.event_id,
                occurred_at=at,
                spend=event.amount,
                points=txn_points,
                visits=1,
            )
        )
        years = state.birthday_bonus_years
        if birthday_flag:
            years = (*years, local.year)
        # one evolve for everything the purchase changes in the state (open_batch above reads
        # only the debt and the last activity, which these do not change)
        state = work.touch(
            state,
            at,
            cap_day=day,
            cap_day_points=day_before + txn_points,
            first_purchase_at=state.first_purchase_at or at,
            birthday_bonus_years=years,
        )
        if program.tiers is not None:
            state, changes = apply_upgrade(program.tiers, state, unit, at, zone, event.event_id)
            work.tier_changes.extend(changes)
        unit.save_member(state)
        return self._outcome(work, event, details)

    def _refund(self, work: _Work, event: Refund) -> Outcome:
        self._check_money(event)
        unit = work.unit
        purchase = unit.get_purchase(event.refund_of)
        if purchase is None:
            raise LedgerError(
                f"refund event {event.event_id!r}: no purchase {event.refund_of!r} was recorded; "
                "send the purchase first, or check refund_of"
            )
        if purchase.member_id != event.member_id:
            raise LedgerError(
                f"refund event {event.event_id!r}: purchase {event.refund_of!r} belongs to member "
                f"{purchase.member_id!r}, not {event.member_id!r}"
            )
        if purchase.currency != event.currency:
            raise LedgerError(
                f"refund event {event.event_id!r}: currency {event.currency!r} differs from the "
                f"purchase's {purchase.currency!r}"
            )
        refunded = purchase.refunded_amount + event.amount
        if refunded > purchase.amount:
            left = purchase.amount - purchase.refunded_amount
            raise LedgerError(
                f"refund event {event.event_id!r}: amount {event.amount} exceeds what is left to "
                f"refund of purchase {event.refund_of!r} ({left}); refund at most that"
            )
        if unit.get_purchase(event.transaction_id) is not None or not unit.counter_add(
            f"txn:{event.transaction_id}", 1, 1
        ):
            raise LedgerError(
                f"refund event {event.event_id!r}: transaction id {event.transaction_id!r} was "
                "already recorded as a purchase or refund; a refund reverses once"
            )
        state = self._load(work, event)
        at = event.occurred_at
        if purchase.amount == 0:
            target = purchase.points
        else:
            target = round_ratio(
                purchase.points * money_units(refunded),
                money_units(purchase.amount),
                Rounding.HALF_UP,
            )
        reverse = target - purchase.reversed_points
        meta = {"transaction_id": event.refund_of, "refund_id": event.transaction_id}
        own = [b for b in unit.transaction_batches(event.member_id, event.refund_of) if b.remaining]
        taken = work.draw(event.member_id, own, reverse, kind=EntryKind.REVERSE, at=at, meta=meta)
        if taken < reverse:
            own_ids = {b.id for b in own}
            others = [b for b in work.open_batches(event.member_id) if b.id not in own_ids]
            taken += work.draw(
                event.member_id, others, reverse - taken, kind=EntryKind.REVERSE, at=at, meta=meta
            )
        shortfall = reverse - taken
        details: dict[str, Any] = {"reversed": reverse, "debt": 0, "forgiven": 0}
        if shortfall > 0:
            if self.program.negative_balance is NegativeBalancePolicy.DEBT:
                work.add(
                    [
                        LedgerEntry(
                            id=work.entry_id(),
                            member_id=event.member_id,
                            event_id=event.event_id,
                            kind=EntryKind.DEBT,
                            points=-shortfall,
                            occurred_at=at,
                            reason="refund of spent points",
                            meta=meta,
                        )
                    ]
                )
                state = _with_state(state, debt=state.debt + shortfall)
                details["debt"] = shortfall
            else:
                details["forgiven"] = shortfall
        unit.put_purchase(
            _with_purchase(purchase, refunded_amount=refunded, reversed_points=target)
        )
        unit.append_activity(
            _new_activity(
                member_id=event.member_id,
                event_id=event.event_id,
                occurred_at=at,
                spend=-event.amount,
                points=-reverse,
                visits=0,
            )
        )
        unit.save_member(state)
        return self._outcome(work, event, details)

    def _spend(
        self,
        work: _Work,
        state: MemberState,
        points: int,
        *,
        kind: EntryKind,
        at: dt.datetime,
        what: str,
        reason: str | None,
        meta: Mapping[str, Any],
    ) -> None:
        usable = work.usable(state.member_id, at)
        available = sum(b.remaining for b in usable)
        if points > available:
            raise InsufficientPointsError(
                f"{what}: member {state.member_id!r} has {available} points available, "
                f"{points} needed (pending or expired points cannot be spent)"
            )
        work.draw(state.member_id, usable, points, kind=kind, at=at, reason=reason, meta=meta)

    def _redeem(self, work: _Work, event: Redeem) -> Outcome:
        at = event.occurred_at
        what = f"redeem event {event.event_id!r}"
        reward = None
        if event.reward_id is not None:
            try:
                reward = self.program.reward(event.reward_id)
            except InvalidValueError as exc:
                raise LedgerError(f"{what}: {exc}") from None
            cost = reward.cost
        else:
            assert event.points is not None
            cost = event.points
        state = self._load(work, event)
        meta: dict[str, Any] = {} if reward is None else {"reward_id": reward.id}
        self._spend(
            work,
            state,
            cost,
            kind=EntryKind.REDEEM,
            at=at,
            what=what,
            reason=event.reason,
            meta=meta,
        )
        if reward is not None:
            if reward.stock is not None and not work.unit.counter_add(
                f"stock:{self.program.name}:{reward.id}", 1, reward.stock
            ):
                raise LedgerError(f"{what}: reward {reward.id!r} is out of stock")
            work.reward = RewardIssue(
                member_id=event.member_id,
                event_id=event.event_id,
                reward_id=reward.id,
                points=cost,
                occurred_at=at,
                valid_until=None
                if reward.valid_days is None
                else at + dt.timedelta(days=reward.valid_days),
            )
        state = work.touch(state, at)
        work.unit.save_member(state)
        return self._outcome(work, event, {"spent": cost})

    def _adjust(self, work: _Work, event: Adjust) -> Outcome:
        state = self._load(work, event)
        at = event.occurred_at
        if event.points > 0:
            state = work.open_batch(
                state,
                event.points,
                kind=EntryKind.ADJUST,
                source="adjust",
                at=at,
                reason=event.reason,
            )
        else:
            self._spend(
                work,
                state,
                -event.points,
                kind=EntryKind.ADJUST,
                at=at,
                what=f"adjust event {event.event_id!r}",
                reason=event.reason,
                meta={},
            )
        work.unit.save_member(state)
        return self._outcome(work, event, {"reason": event.reason})

    def _assign(self, work: _Work, event: AssignTier) -> Outcome:
        policy = self.program.tiers
        what = f"assign_tier event {event.event_id!r}"
        if policy is None:
            raise LedgerError(f"{what}: the program has no tiers")
        if event.tier is not None and event.tier not in {t.name for t in policy.levels}:
            known = ", ".join(t.name for t in policy.levels)
            raise LedgerError(f"{what}: no tier named {event.tier!r}; known: {known}")
        state = self._load(work, event)
        at = event.occurred_at
        state = _with_state(state, manual_tier=event.tier)
        state, changes = apply_upgrade(
            policy, state, work.unit, at, self.program.zone, event.event_id, reason=event.reason
        )
        work.tier_changes.extend(changes)
        if (
            event.tier is None
            and state.tier_review_at is None
            and policy.rank(state.tier) > 0
            and policy.downgrade.value != "never"
        ):
            grace = dt.timedelta(days=policy.grace_days)
            review = policy.rule.period_end(at, state.enrolled_at, self.program.zone) + grace
            state = _with_state(state, tier_review_at=review)
        work.unit.save_member(state)
        return self._outcome(work, event, {"manual_tier": event.tier})


def _check_aware(name: str, value: dt.datetime) -> None:
    if not isinstance(value, dt.datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidValueError(
            "Engine",
            name,
            value,
            "must be a timezone-aware datetime, e.g. datetime(..., tzinfo=UTC)",
        )
