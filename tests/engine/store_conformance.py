"""The conformance suite every :class:`~loyaltykit.engine.store.LedgerStore` must pass.

Use it by subclassing :class:`StoreConformance` in a ``test_*.py`` module and providing a
``store`` fixture that yields a fresh, *unmigrated* store::

    from store_conformance import StoreConformance

    class TestSQLiteStore(StoreConformance):
        @pytest.fixture
        def store(self, tmp_path):
            s = SQLiteStore(tmp_path / "ledger.db")
            yield s
            s.close()

Set ``threads_share_store = False`` on the subclass if one store object must not be used from
several threads (the threaded serialisation test is then run with one store per thread, built by
the ``store_factory`` fixture, which subclasses may also override).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from decimal import Decimal

import pytest

from loyaltykit.core.ledger import EntryKind, LedgerEntry, TierChange
from loyaltykit.engine.store import (
    Activity,
    Batch,
    EventExistsError,
    EventRecord,
    LedgerStore,
    MemberState,
    PurchaseRecord,
    fingerprint,
)
from loyaltykit.errors import StoreError

UTC = dt.UTC
T0 = dt.datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def day(n: int) -> dt.datetime:
    """``T0`` plus ``n`` days."""
    return T0 + dt.timedelta(days=n)


def member(mid: str = "m1", **kw: object) -> MemberState:
    """A member state with every field set."""
    base: dict[str, object] = {
        "member_id": mid,
        "enrolled_at": T0,
        "birthday": dt.date(1990, 5, 17),
        "referred_by": "ref-9",
        "tier": "silver",
        "tier_since": day(3),
        "tier_review_at": day(400),
        "manual_tier": "bronze",
        "debt": 7,
        "first_purchase_at": day(1),
        "last_activity_at": day(2),
        "birthday_bonus_years": (2024,),
        "attributes": {"region": "north", "n": 3},
    }
    base.update(kw)
    return MemberState(**base)  # type: ignore[arg-type]


def batch(bid: str, mid: str = "m1", **kw: object) -> Batch:
    """A batch with defaults."""
    base: dict[str, object] = {
        "id": bid,
        "member_id": mid,
        "event_id": f"ev-{bid}",
        "points": 100,
        "remaining": 100,
        "earned_at": T0,
    }
    base.update(kw)
    return Batch(**base)  # type: ignore[arg-type]


def entry(eid: str, mid: str = "m1", points: int = 10, **kw: object) -> LedgerEntry:
    """A ledger entry with defaults."""
    base: dict[str, object] = {
        "id": eid,
        "member_id": mid,
        "event_id": f"ev-{eid}",
        "kind": EntryKind.EARN,
        "points": points,
        "occurred_at": T0,
    }
    base.update(kw)
    return LedgerEntry(**base)  # type: ignore[arg-type]


class ForcedRollbackError(Exception):
    """Raised inside units to force a rollback."""


class StoreConformance:
    """Tests of the store contract; subclasses provide the ``store`` fixture."""

    threads_share_store = True

    @pytest.fixture
    def store(self) -> LedgerStore:  # pragma: no cover - overridden
        raise NotImplementedError

    @pytest.fixture
    def ready(self, store: LedgerStore) -> LedgerStore:
        store.migrate()
        return store

    # -- schema ------------------------------------------------------------------------------

    def test_migrate_sets_version_and_is_idempotent(self, store: LedgerStore) -> None:
        assert store.schema_version() == 0
        store.migrate()
        version = store.schema_version()
        assert version >= 1
        store.migrate()
        assert store.schema_version() == version

    def test_store_satisfies_protocol(self, store: LedgerStore) -> None:
        assert isinstance(store, LedgerStore)

    # -- round trips -------------------------------------------------------------------------

    def test_member_state_round_trip(self, ready: LedgerStore) -> None:
        state = member()
        with ready.unit("m1") as u:
            assert u.load_member("m1") is None
            u.save_member(state)
            assert u.load_member("m1") == state
        assert ready.get_member("m1") == state
        assert ready.member_ids() == ["m1"]
        with ready.unit("m1") as u:
            u.save_member(member(tier="gold", debt=0, manual_tier=None))
        got = ready.get_member("m1")
        assert got is not None
        assert got.tier == "gold"
        assert got.debt == 0
        assert got.manual_tier is None

    def test_event_record_round_trip(self, ready: LedgerStore) -> None:
        payload = {"amount": "12.50", "items": [1, 2]}
        rec = EventRecord(
            event_id="e1",
            member_id="m1",
            kind="purchase",
            fingerprint=fingerprint(payload),
            outcome={"points": 12, "entries": ["a", "b"], "nested": {"x": None, "y": True}},
            recorded_at=T0,
        )
        with ready.unit("m1") as u:
            assert u.get_event("e1") is None
            u.put_event(rec)
            assert u.get_event("e1") == rec
        got = ready.get_event("e1")
        assert got is not None
        assert got.fingerprint == rec.fingerprint
        assert dict(got.outcome) == dict(rec.outcome)
        assert got.recorded_at == T0

    def test_duplicate_event_is_refused(self, ready: LedgerStore) -> None:
        rec = EventRecord(
            event_id="e1", member_id="m1", kind="k", fingerprint="f", outcome={}, recorded_at=T0
        )
        with ready.unit("m1") as u:
            u.put_event(rec)
        with pytest.raises(EventExistsError), ready.unit("m2") as u:
            u.put_event(rec)

        def twice() -> None:
            with ready.unit("m3") as u:
                u.put_event(attrs_evolve_event(rec, "e2"))
                u.put_event(attrs_evolve_event(rec, "e2"))

        with pytest.raises(EventExistsError):
            twice()
        assert ready.get_event("e2") is None

    def test_entries_round_trip_in_append_order(self, ready: LedgerStore) -> None:
        e1 = entry(
            "x1",
            points=50,
            occurred_at=day(5),
            batch_id="b1",
            pending_until=day(19),
            expires_at=day(370),
            meta={"transaction_id": "t1", "rules": ["base", "x2"]},
        )
        e2 = entry("x2", points=-20, kind=EntryKind.REDEEM, occurred_at=day(1), batch_id="b1")
        e3 = entry("x3", points=3, kind=EntryKind.ADJUST, occurred_at=day(9), reason="goodwill")
        with ready.unit("m1") as u:
            u.append_entries([e1, e2])
        with ready.unit("m1") as u:
            u.append_entries([e3])
        got = ready.entries("m1")
        assert [e.id for e in got] == ["x1", "x2", "x3"]
        assert got[0] == e1
        assert got[2].reason == "goodwill"
        assert [e.id for e in ready.entries("m1", until=day(5))] == ["x1", "x2"]
        assert ready.entries("nobody") == []

    def test_duplicate_entry_id_is_refused(self, ready: LedgerStore) -> None:
        with ready.unit("m1") as u:
            u.append_entries([entry("x1")])
        with pytest.raises(StoreError), ready.unit("m1") as u:
            u.append_entries([entry("x1")])
        assert len(ready.entries("m1")) == 1

    def test_batches(self, ready: LedgerStore) -> None:
        b_never = batch("b-never", earned_at=day(0))
        b_late = batch("b-late", expires_at=day(300), transaction_id="t1")
        b_soon = batch("b-soon", expires_at=day(30), pending_until=day(14), transaction_id="t1")
        b_spent = batch("b-spent", remaining=0, expires_at=day(1))
        with ready.unit("m1") as u:
            u.put_batches([b_never, b_late, b_soon, b_spent])
            assert [b.id for b in u.open_batches("m1")] == ["b-soon", "b-late", "b-never"]
        with ready.unit("m1") as u:
            assert [b.id for b in u.open_batches("m1")] == ["b-soon", "b-late", "b-never"]
            assert {b.id for b in u.transaction_batches("m1", "t1")} == {"b-soon", "b-late"}
            assert u.transaction_batches("m1", "nope") == []
            got = u.open_batches("m1")[0]
            assert got == b_soon
            u.put_batches([Batch(**{**_fields(b_soon), "remaining": 0})])
            u.put_batches([Batch(**{**_fields(b_late), "expires_at": day(10), "remaining": 5})])
            assert [b.id for b in u.open_batches("m1")] == ["b-late", "b-never"]
        assert [b.id for b in ready.batches("m1")] == ["b-spent", "b-late", "b-soon", "b-never"]
        late = next(b for b in ready.batches("m1") if b.id == "b-late")
        assert late.remaining == 5
        assert late.expires_at == day(10)

    def test_members_with_expiring(self, ready: LedgerStore) -> None:
        with ready.unit("a", "b", "c") as u:
            u.put_batches(
                [
                    batch("1", "a", expires_at=day(10)),
                    batch("2", "b", expires_at=day(20)),
                    batch("3", "c", expires_at=day(5), remaining=0),
                    batch("4", "c"),
                ]
            )
        assert ready.members_with_expiring(day(9)) == []
        assert ready.members_with_expiring(day(10)) == ["a"]
        assert ready.members_with_expiring(day(100)) == ["a", "b"]

    def test_purchases(self, ready: LedgerStore) -> None:
        rec = PurchaseRecord(
            transaction_id="t1",
            member_id="m1",
            event_id="e1",
            occurred_at=T0,
            amount=Decimal("123.45"),
            currency="EUR",
            points=123,
        )
        with ready.unit("m1") as u:
            assert u.get_purchase("t1") is None
            u.put_purchase(rec)
            assert u.get_purchase("t1") == rec
        with ready.unit("m1") as u:
            got = u.get_purchase("t1")
            assert got == rec
            u.put_purchase(
                PurchaseRecord(
                    **{**_fields(rec), "refunded_amount": Decimal("0.05"), "reversed_points": 1}
                )
            )
        with ready.unit("m2") as u:
            again = u.get_purchase("t1")
            assert again is not None
            assert again.refunded_amount == Decimal("0.05")
            assert again.reversed_points == 1
            assert again.amount == Decimal("123.45")

    def test_tier_history(self, ready: LedgerStore) -> None:
        c1 = TierChange(
            member_id="m1", event_id="e1", from_tier=None, to_tier="base", occurred_at=T0
        )
        c2 = TierChange(
            member_id="m1",
            event_id="e2",
            from_tier="base",
            to_tier="gold",
            occurred_at=day(3),
            reason="qualified",
        )
        with ready.unit("m1") as u:
            u.append_tier_change(c1)
            u.append_tier_change(c2)
        assert ready.tier_history("m1") == [c1, c2]
        assert ready.tier_history("m2") == []

    def test_activity_totals_bounds_are_inclusive(self, ready: LedgerStore) -> None:
        with ready.unit("m1", "m2") as u:
            u.append_activity(
                Activity(
                    member_id="m1",
                    event_id="e1",
                    occurred_at=day(1),
                    spend="10.10",
                    points=10,
                    visits=1,
                )
            )
            u.append_activity(
                Activity(
                    member_id="m1", event_id="e2", occurred_at=day(5), spend="-2.05", points=-2
                )
            )
            u.append_activity(
                Activity(member_id="m2", event_id="e3", occurred_at=day(5), spend="99", visits=1)
            )
            inside = u.activity_totals("m1", day(1), day(5))
            assert inside.spend == Decimal("8.05")
            assert (inside.points, inside.visits) == (8, 1)
        with ready.unit("m1") as u:
            assert u.activity_totals("m1", day(1), day(5)).spend == Decimal("8.05")
            part = u.activity_totals("m1", day(2), day(6))
            assert (part.spend, part.points, part.visits) == (Decimal("-2.05"), -2, 0)
            none = u.activity_totals("m1", day(6), day(9))
            assert (none.spend, none.points, none.visits) == (Decimal(0), 0, 0)

    def test_counters_respect_cap(self, ready: LedgerStore) -> None:
        with ready.unit("m1") as u:
            assert u.counter_value("stock:r1") == 0
            assert u.counter_add("stock:r1", 3, 5)
            assert u.counter_value("stock:r1") == 3
            assert not u.counter_add("stock:r1", 3, 5)
            assert u.counter_value("stock:r1") == 3
            assert u.counter_add("stock:r1", 2, 5)
            assert u.counter_add("free", 1000, None)
        with ready.unit("m2") as u:
            assert u.counter_value("stock:r1") == 5
            assert not u.counter_add("stock:r1", 1, 5)
            assert u.counter_value("free") == 1000

    def test_refund_counter_read_with_a_purchase_follows_adds(self, ready: LedgerStore) -> None:
        # the SQL stores read the engine's "txn:<id>" counter along with the purchase lookup
        with ready.unit("m1") as u:
            assert u.get_purchase("tx9") is None
            assert u.counter_add("txn:tx9", 1, 1)
            assert u.counter_value("txn:tx9") == 1
            assert not u.counter_add("txn:tx9", 1, 1)
        with ready.unit("m1") as u:
            assert u.get_purchase("tx9") is None
            assert u.counter_value("txn:tx9") == 1
            assert u.counter_value("txn:tx9") == 1
        with ready.unit("m2") as u:
            assert u.get_purchase("tx10") is None
            assert u.counter_value("txn:tx10") == 0

    def test_instants_compare_across_time_zones(self, ready: LedgerStore) -> None:
        paris = dt.timezone(dt.timedelta(hours=2))
        tokyo = dt.timezone(dt.timedelta(hours=9))
        local = dt.datetime(2025, 6, 1, 12, 0, tzinfo=paris)  # 10:00 UTC
        with ready.unit("m1") as u:
            u.append_activity(Activity(member_id="m1", event_id="e1", occurred_at=local, visits=1))
            u.put_batches([batch("b1", expires_at=local)])
            u.append_entries([entry("x1", occurred_at=local)])
        utc = dt.datetime(2025, 6, 1, 10, 0, tzinfo=UTC)
        with ready.unit("m1") as u:
            assert u.activity_totals("m1", utc, utc).visits == 1
            assert u.activity_totals("m1", utc + dt.timedelta(microseconds=1), day(400)).visits == 0
            assert u.activity_totals("m1", day(0), utc - dt.timedelta(microseconds=1)).visits == 0
            same_in_tokyo = utc.astimezone(tokyo)
            assert u.activity_totals("m1", same_in_tokyo, same_in_tokyo).visits == 1
        assert ready.members_with_expiring(utc.astimezone(tokyo)) == ["m1"]
        assert ready.members_with_expiring(utc - dt.timedelta(microseconds=1)) == []
        assert [e.id for e in ready.entries("m1", until=utc.astimezone(tokyo))] == ["x1"]
        assert ready.entries("m1", until=utc - dt.timedelta(microseconds=1)) == []
        got = ready.batches("m1")[0].expires_at
        assert got == local

    def test_exact_money_and_large_points(self, ready: LedgerStore) -> None:
        amount = Decimal("123456789.123456")
        with ready.unit("m1") as u:
            u.put_purchase(
                PurchaseRecord(
                    transaction_id="t1",
                    member_id="m1",
                    event_id="e1",
                    occurred_at=T0,
                    amount=amount,
                    points=2**40,
                )
            )
            u.append_activity(
                Activity(member_id="m1", event_id="e1", occurred_at=T0, spend=amount, points=2**40)
            )
            u.append_entries([entry("x1", points=2**40)])
        with ready.unit("m1") as u:
            got = u.get_purchase("t1")
            assert got is not None
            assert got.amount == amount
            assert got.points == 2**40
            totals = u.activity_totals("m1", T0, T0)
            assert totals.spend == amount
            assert totals.points == 2**40
        assert ready.entries("m1")[0].points == 2**40

    def test_reads_of_unknown_things(self, ready: LedgerStore) -> None:
        assert ready.get_member("ghost") is None
        assert ready.batches("ghost") == []
        assert ready.tier_history("ghost") == []
        assert ready.get_event("ghost") is None
        assert ready.member_ids() == []
        with ready.unit("ghost") as u:
            assert u.open_batches("ghost") == []
            assert u.get_purchase("ghost") is None
            assert u.activity_totals("ghost", T0, day(1)).visits == 0
        # a unit that wrote nothing creates no member
        assert ready.member_ids() == []

    # -- transactions ------------------------------------------------------------------------

    def test_rollback_discards_everything(self, ready: LedgerStore) -> None:
        with ready.unit("m1") as u:
            u.save_member(member())
            u.counter_add("c", 1, 10)

        def write_then_fail() -> None:
            with ready.unit("m1") as u:
                u.put_event(
                    EventRecord(
                        event_id="e1",
                        member_id="m1",
                        kind="k",
                        fingerprint="f",
                        outcome={},
                        recorded_at=T0,
                    )
                )
                u.save_member(member(debt=99))
                u.put_batches([batch("b1")])
                u.append_entries([entry("x1")])
                u.append_tier_change(
                    TierChange(
                        member_id="m1", event_id="e1", from_tier=None, to_tier="t", occurred_at=T0
                    )
                )
                u.append_activity(Activity(member_id="m1", event_id="e1", occurred_at=T0, visits=1))
                u.put_purchase(
                    PurchaseRecord(
                        transaction_id="t1",
                        member_id="m1",
                        event_id="e1",
                        occurred_at=T0,
                        amount=1,
                        points=1,
                    )
                )
                assert u.counter_add("c", 5, 10)
                raise ForcedRollbackError

        with pytest.raises(ForcedRollbackError):
            write_then_fail()
        assert ready.get_event("e1") is None
        state = ready.get_member("m1")
        assert state is not None
        assert state.debt == 7
        assert ready.batches("m1") == []
        assert ready.entries("m1") == []
        assert ready.tier_history("m1") == []
        with ready.unit("m1") as u:
            assert u.get_purchase("t1") is None
            assert u.counter_value("c") == 1
            assert u.activity_totals("m1", day(-1), day(1)).visits == 0
        # the event id is free again after the rollback
        with ready.unit("m1") as u:
            u.put_event(
                EventRecord(
                    event_id="e1",
                    member_id="m1",
                    kind="k",
                    fingerprint="f",
                    outcome={},
                    recorded_at=T0,
                )
            )
        assert ready.get_event("e1") is not None

    def test_unit_refuses_unlocked_member(self, ready: LedgerStore) -> None:
        with pytest.raises(StoreError), ready.unit("m1") as u:
            u.save_member(member("m2"))
        assert ready.get_member("m2") is None

    def test_unit_members_sorted(self, ready: LedgerStore) -> None:
        with ready.unit("zed", "abe", "zed") as u:
            assert tuple(u.member_ids) == ("abe", "zed")

    @pytest.fixture
    def store_factory(self, ready: LedgerStore) -> Callable[[], LedgerStore]:
        """Builds a store handle on the same data for one thread (default: the same object)."""
        return lambda: ready

    def test_units_serialise_members(
        self, ready: LedgerStore, store_factory: Callable[[], LedgerStore]
    ) -> None:
        with ready.unit("m1") as u:
            u.save_member(member(debt=0))
        threads, rounds = 4, 25
        errors: list[BaseException] = []

        def work() -> None:
            try:
                store = ready if self.threads_share_store else store_factory()
                for _ in range(rounds):
                    with store.unit("m1") as u:
                        state = u.load_member("m1")
                        assert state is not None
                        u.save_member(member(debt=state.debt + 1))
                        assert u.counter_add("hits", 1, threads * rounds)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        pool = [threading.Thread(target=work) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        assert errors == []
        state = ready.get_member("m1")
        assert state is not None
        assert state.debt == threads * rounds
        with ready.unit("m1") as u:
            assert u.counter_value("hits") == threads * rounds

    def test_counter_cap_holds_across_members(
        self, ready: LedgerStore, store_factory: Callable[[], LedgerStore]
    ) -> None:
        threads, attempts, cap = 4, 30, 50
        won: list[int] = []
        errors: list[BaseException] = []

        def work(i: int) -> None:
            try:
                store = ready if self.threads_share_store else store_factory()
                for _ in range(attempts):
                    with store.unit(f"member-{i}") as u:
                        if u.counter_add("stock:shared", 1, cap):
                            won.append(i)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        assert errors == []
        assert len(won) == cap
        with ready.unit("m1") as u:
            assert u.counter_value("stock:shared") == cap

    def test_close_is_idempotent(self, ready: LedgerStore) -> None:
        ready.close()
        ready.close()


def _fields(obj: object) -> dict[str, object]:
    import attrs

    return attrs.asdict(obj, recurse=False)


def attrs_evolve_event(rec: EventRecord, event_id: str) -> EventRecord:
    """``rec`` with another id."""
    import attrs

    return attrs.evolve(rec, event_id=event_id)
