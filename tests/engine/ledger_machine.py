"""A hypothesis state machine driving the engine against a simple model of the ledger.

:func:`ledger_machine` builds a ``RuleBasedStateMachine`` for any store factory, so that the same
machine runs on the in-memory store and on the SQL stores::

    from ledger_machine import ledger_machine

    TestSQLiteLedger = ledger_machine(lambda: SQLiteStore(tmp_file()), "debt").TestCase

The model knows the program used here (1 point per whole currency unit, rounded down; a welcome
bonus; 3 pending days; expiry 60 days after earning; tiers on calendar-year spend with 10 grace
days) and recomputes every batch independently: earns, soonest-expiring-first draws, proportional
refund reversals (half up, cumulative), the negative-balance policy and expiry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from loyaltykit.core.program import (
    ExpiryPolicy,
    PendingPolicy,
    Program,
    Tier,
    TierPolicy,
)
from loyaltykit.engine import (
    Adjust,
    Engine,
    PerUnit,
    Purchase,
    Redeem,
    Refund,
    WelcomeBonus,
    WindowedMetric,
)
from loyaltykit.engine.store import LedgerStore
from loyaltykit.errors import (
    IdempotencyConflictError,
    InsufficientPointsError,
    LedgerError,
)
from loyaltykit.plugins import PluginHost

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
PENDING_DAYS = 3
EXPIRY_DAYS = 60
WELCOME = 5
MEMBERS = ("ann", "bob", "cyd")


def machine_program(negative_balance: str) -> Program:
    """The program the model mirrors."""
    return Program(
        name="machine",
        earning=[
            PerUnit(name="base", points_per_unit=1, rounding="down"),
            WelcomeBonus(name="welcome", points=WELCOME),
        ],
        tiers=TierPolicy(
            rule=WindowedMetric(metric="spend", window="calendar_year"),
            levels=[Tier(name="base", threshold=0), Tier(name="silver", threshold=100)],
            grace_days=10,
        ),
        pending=PendingPolicy(days=PENDING_DAYS),
        expiry=ExpiryPolicy(kind="days_after_earn", days=EXPIRY_DAYS),
        negative_balance=negative_balance,
    )


@attrs.define
class MBatch:
    """A model batch."""

    id: str
    points: int
    remaining: int
    earned_at: dt.datetime
    pending_until: dt.datetime | None
    expires_at: dt.datetime
    txn: str | None


@attrs.define
class MMember:
    """A model member."""

    batches: list[MBatch] = attrs.Factory(list)
    debt: int = 0


@attrs.define
class MPurchase:
    """A model purchase."""

    member: str
    amount: Decimal
    points: int
    refunded: Decimal = Decimal(0)
    reversed: int = 0


def _order(b: MBatch) -> tuple[dt.datetime, dt.datetime, str]:
    return (b.expires_at, b.earned_at, b.id)


def _half_up(x: Fraction) -> int:
    q, r = divmod(x.numerator, x.denominator)
    return q + (1 if 2 * r >= x.denominator else 0)


def ledger_machine(
    store_factory: Callable[[], LedgerStore],
    negative_balance: str = "debt",
    *,
    pipelined: bool = False,
) -> type[RuleBasedStateMachine]:
    """A state machine class over stores built by ``store_factory`` (called once per run).

    With ``pipelined``, every event goes through one :meth:`Engine.pipeline` block that stays
    open for the whole run (reads, expiry and re-tiering happen inside it).
    """

    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.store = store_factory()
            self.host = PluginHost(load_entrypoints=False, blocked=frozenset())
            self.engine = Engine(machine_program(negative_balance), self.store, host=self.host)
            self.now = T0
            self.n = 0
            self.model: dict[str, MMember] = {}
            self.purchases: dict[str, MPurchase] = {}
            self.done: list[tuple[Any, Any]] = []
            self._pipeline = self.engine.pipeline() if pipelined else None
            self.process = (
                self._pipeline.__enter__().process
                if self._pipeline is not None
                else self.engine.process
            )

        def teardown(self) -> None:
            try:
                if self._pipeline is not None:
                    self._pipeline.__exit__(None, None, None)
            finally:
                self.store.close()

        # -- helpers ----------------------------------------------------------------------------

        def eid(self) -> str:
            self.n += 1
            return f"ev{self.n}"

        def snapshot(self) -> Any:
            return {
                m: (
                    self.store.entries(m),
                    self.store.batches(m),
                    self.store.get_member(m),
                    self.store.tier_history(m),
                )
                for m in MEMBERS
            }

        def expire_model(self, member: str, as_of: dt.datetime) -> None:
            for b in self.model[member].batches:
                if b.remaining and b.expires_at <= as_of:
                    b.remaining = 0

        def draw(self, batches: list[MBatch], amount: int) -> int:
            left = amount
            for b in batches:
                take = min(b.remaining, left)
                b.remaining -= take
                left -= take
            return amount - left

        def usable(self, member: str) -> list[MBatch]:
            return sorted(
                (
                    b
                    for b in self.model[member].batches
                    if b.remaining
                    and (b.pending_until is None or b.pending_until <= self.now)
                    and b.expires_at > self.now
                ),
                key=_order,
            )

        def add_batch(
            self, member: str, bid: str, points: int, pending: bool, txn: str | None
        ) -> None:
            m = self.model[member]
            settle = min(m.debt, points)
            m.debt -= settle
            m.batches.append(
                MBatch(
                    id=bid,
                    points=points,
                    remaining=points - settle,
                    earned_at=self.now,
                    pending_until=self.now + dt.timedelta(days=PENDING_DAYS) if pending else None,
                    expires_at=self.now + dt.timedelta(days=EXPIRY_DAYS),
                    txn=txn,
                )
            )

        # -- rules ------------------------------------------------------------------------------

        @initialize()
        def enroll_all(self) -> None:
            for member in MEMBERS:
                eid = self.eid()
                out = self.engine.enroll(member, at=self.now, event_id=eid)
                self.model[member] = MMember()
                self.add_batch(member, f"{eid}:b1", WELCOME, pending=False, txn=None)
                assert out.points == WELCOME

        @rule(days=st.integers(0, 40))
        def advance(self, days: int) -> None:
            self.now += dt.timedelta(days=days, hours=1)

        @rule(member=st.sampled_from(MEMBERS), cents=st.integers(0, 30000))
        def purchase(self, member: str, cents: int) -> None:
            amount = Decimal(cents) / 100
            eid = self.eid()
            txn = f"t-{eid}"
            event = Purchase(
                event_id=eid,
                member_id=member,
                occurred_at=self.now,
                transaction_id=txn,
                amount=amount,
            )
            out = self.process(event)
            self.expire_model(member, self.now)
            points = int(amount // 1)
            if points:
                self.add_batch(member, f"{eid}:b1", points, pending=True, txn=txn)
            self.purchases[txn] = MPurchase(member=member, amount=amount, points=points)
            assert out.details["points"] == points
            self.done.append((event, out))

        @precondition(lambda self: bool(self.purchases))
        @rule(data=st.data(), share=st.integers(1, 100))
        def refund(self, data: st.DataObject, share: int) -> None:
            txn = data.draw(st.sampled_from(sorted(self.purchases)))
            p = self.purchases[txn]
            left = p.amount - p.refunded
            amount = (left * share / 100).quantize(Decimal("0.01"))
            if share == 100:
                amount = left
            eid = self.eid()
            if amount <= 0:
                amount = Decimal("0.01")
            event = Refund(
                event_id=eid,
                member_id=p.member,
                occurred_at=self.now,
                transaction_id=f"r-{eid}",
                refund_of=txn,
                amount=amount,
            )
            if amount > left:
                before = self.snapshot()
                try:
                    self.process(event)
                except LedgerError:
                    pass
                else:  # pragma: no cover - reported
                    raise AssertionError("over-refund was accepted")
                assert self.snapshot() == before
                return
            out = self.process(event)
            self.expire_model(p.member, self.now)
            refunded = p.refunded + amount
            target = (
                p.points
                if p.amount == 0
                else _half_up(Fraction(p.points) * Fraction(refunded) / Fraction(p.amount))
            )
            reverse = target - p.reversed
            p.refunded, p.reversed = refunded, target
            m = self.model[p.member]
            own = [b for b in m.batches if b.txn == txn and b.remaining]
            taken = self.draw(sorted(own, key=lambda b: (b.earned_at, b.id)), reverse)
            others = sorted((b for b in m.batches if b.remaining and b not in own), key=_order)
            taken += self.draw(others, reverse - taken)
            if negative_balance == "debt":
                m.debt += reverse - taken
            assert out.details["reversed"] == reverse
            self.done.append((event, out))

        @rule(member=st.sampled_from(MEMBERS), points=st.integers(1, 400))
        def redeem(self, member: str, points: int) -> None:
            eid = self.eid()
            event = Redeem(event_id=eid, member_id=member, occurred_at=self.now, points=points)
            self.expire_model(member, self.now)
            usable = self.usable(member)
            available = sum(b.remaining for b in usable)
            if points > available:
                before = self.snapshot()
                try:
                    self.process(event)
                except InsufficientPointsError:
                    pass
                else:  # pragma: no cover - reported
                    raise AssertionError(f"overdraft accepted: {points} > {available}")
                assert self.snapshot() == before
                return
            out = self.process(event)
            self.draw(usable, points)
            drawn = [e.batch_id for e in out.entries if e.kind == "redeem"]
            assert drawn == [b.id for b in usable][: len(drawn)]
            self.done.append((event, out))

        @rule(member=st.sampled_from(MEMBERS), points=st.integers(-300, 300).filter(bool))
        def adjust(self, member: str, points: int) -> None:
            eid = self.eid()
            event = Adjust(
                event_id=eid,
                member_id=member,
                occurred_at=self.now,
                points=points,
                reason="machine",
            )
            self.expire_model(member, self.now)
            if points > 0:
                out = self.process(event)
                self.add_batch(member, f"{eid}:b1", points, pending=False, txn=None)
                self.done.append((event, out))
                return
            usable = self.usable(member)
            if -points > sum(b.remaining for b in usable):
                before = self.snapshot()
                try:
                    self.process(event)
                except InsufficientPointsError:
                    pass
                else:  # pragma: no cover - reported
                    raise AssertionError("negative adjustment overdrew the member")
                assert self.snapshot() == before
                return
            out = self.process(event)
            self.draw(usable, -points)
            self.done.append((event, out))

        @rule()
        def expire(self) -> None:
            report = self.engine.expire(self.now)
            assert report.points == -sum(e.points for e in report.entries)
            for member in MEMBERS:
                self.expire_model(member, self.now)
                assert self.engine.balance(member, self.now).overdue == 0
            again = self.engine.expire(self.now)
            assert again.points == 0

        @rule()
        def retier(self) -> None:
            self.engine.retier(self.now)
            for member in MEMBERS:
                state = self.store.get_member(member)
                assert state is not None
                assert state.tier_review_at is None or state.tier_review_at > self.now
            assert self.engine.retier(self.now).changes == ()

        @precondition(lambda self: bool(self.done))
        @rule(data=st.data())
        def replay(self, data: st.DataObject) -> None:
            event, original = data.draw(st.sampled_from(self.done))
            before = self.snapshot()
            again = self.process(event)
            assert again.replayed
            assert again.to_dict() == original.to_dict()
            assert self.snapshot() == before

        @precondition(lambda self: bool(self.done))
        @rule(data=st.data())
        def replay_changed(self, data: st.DataObject) -> None:
            event, _ = data.draw(st.sampled_from(self.done))
            changed = attrs.evolve(event, occurred_at=event.occurred_at + dt.timedelta(seconds=1))
            before = self.snapshot()
            try:
                self.process(changed)
            except IdempotencyConflictError:
                pass
            else:  # pragma: no cover - reported
                raise AssertionError("a changed payload under a used id was accepted")
            assert self.snapshot() == before

        @rule()
        def unknown_member(self) -> None:
            before = self.snapshot()
            event = Purchase(
                event_id=self.eid(),
                member_id="nobody",
                occurred_at=self.now,
                transaction_id="t-nobody",
                amount=Decimal(5),
            )
            try:
                self.process(event)
            except LedgerError:
                pass
            else:  # pragma: no cover - reported
                raise AssertionError("event of an unknown member was accepted")
            assert self.snapshot() == before
            assert self.store.get_member("nobody") is None

        # -- invariants -------------------------------------------------------------------------

        @invariant()
        def balance_is_sum_of_entries_and_matches_model(self) -> None:
            if not self.model:
                return
            for member in MEMBERS:
                entries = self.store.entries(member)
                total = sum(e.points for e in entries)
                bal = self.engine.balance(member, self.now)
                assert bal.total == total
                assert bal.total == bal.available + bal.pending + bal.overdue - bal.debt
                batches = self.store.batches(member)
                state = self.store.get_member(member)
                assert state is not None
                assert total == sum(b.remaining for b in batches) - state.debt
                m = self.model[member]
                assert state.debt == m.debt
                # due batches count as expired on both sides (the store records the expiry at
                # the member's next event or expiry run: they show as overdue until then)
                model_left = {
                    b.id: (0 if b.expires_at <= self.now else b.remaining) for b in m.batches
                }
                store_left = {
                    b.id: (
                        0 if b.expires_at is not None and b.expires_at <= self.now else b.remaining
                    )
                    for b in batches
                }
                assert store_left == model_left
                assert bal.available == sum(b.remaining for b in self.usable(member))

        @invariant()
        def no_batch_below_zero_and_no_overdraft(self) -> None:
            for member in MEMBERS:
                for b in self.store.batches(member):
                    assert 0 <= b.remaining <= b.points
                state = self.store.get_member(member)
                if state is None:
                    continue
                total = sum(e.points for e in self.store.entries(member))
                if negative_balance == "clamp":
                    assert state.debt == 0
                    assert total >= 0
                else:
                    assert total >= -state.debt
                    if state.debt:
                        assert all(b.remaining == 0 for b in self.store.batches(member))

        @invariant()
        def tier_history_matches_state(self) -> None:
            for member in MEMBERS:
                state = self.store.get_member(member)
                if state is None:
                    continue
                history = self.store.tier_history(member)
                assert history
                assert history[-1].to_tier == state.tier

    LedgerMachine.__name__ = f"LedgerMachine_{negative_balance}"
    return LedgerMachine
