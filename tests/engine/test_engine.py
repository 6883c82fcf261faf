"""Engine behaviour, scenario by scenario, on the in-memory store."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from loyaltykit import hookimpl
from loyaltykit.core.ledger import EntryKind
from loyaltykit.core.program import (
    Caps,
    ExpiryPolicy,
    PendingPolicy,
    Program,
    Reward,
    Tier,
    TierPolicy,
)
from loyaltykit.core.records import LineItem
from loyaltykit.engine import (
    BirthdayBonus,
    Campaign,
    Engine,
    MemoryStore,
    Outcome,
    PerUnit,
    ReferralBonus,
    TierMultiplier,
    WelcomeBonus,
    WindowedMetric,
)
from loyaltykit.errors import (
    IdempotencyConflictError,
    InsufficientPointsError,
    LedgerError,
)
from loyaltykit.plugins import PluginHost

UTC = dt.UTC
T0 = dt.datetime(2025, 1, 10, 12, tzinfo=UTC)


def at(days: float) -> dt.datetime:
    return T0 + dt.timedelta(days=days)


class Recorder:
    """A plugin recording every event hook call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    @hookimpl
    def loyaltykit_points_earned(self, member_id: str, entries: Any) -> None:
        self.calls.append(("earned", (member_id, [e.points for e in entries])))

    @hookimpl
    def loyaltykit_points_redeemed(self, member_id: str, entries: Any) -> None:
        self.calls.append(("redeemed", (member_id, [e.points for e in entries])))

    @hookimpl
    def loyaltykit_points_reversed(self, member_id: str, entries: Any) -> None:
        self.calls.append(("reversed", (member_id, [e.points for e in entries])))

    @hookimpl
    def loyaltykit_points_expired(self, member_id: str, entries: Any) -> None:
        self.calls.append(("expired", (member_id, [e.points for e in entries])))

    @hookimpl
    def loyaltykit_points_adjusted(self, member_id: str, entries: Any) -> None:
        self.calls.append(("adjusted", (member_id, [e.points for e in entries])))

    @hookimpl
    def loyaltykit_tier_changed(self, change: Any) -> None:
        self.calls.append(
            ("tier", (change.member_id, change.from_tier, change.to_tier, change.reason))
        )

    @hookimpl
    def loyaltykit_reward_issued(self, issue: Any) -> None:
        self.calls.append(("reward", (issue.member_id, issue.reward_id)))


def program(**kw: Any) -> Program:
    base: dict[str, Any] = {
        "name": "test",
        "earning": [PerUnit(name="base", points_per_unit=1)],
    }
    base.update(kw)
    return Program(**base)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def make(recorder: Recorder) -> Callable[..., Engine]:
    def build(**kw: Any) -> Engine:
        host = PluginHost(load_entrypoints=False, blocked=frozenset())
        host.register(recorder, name="recorder")
        return Engine(program(**kw), MemoryStore(), host=host)

    return build


def enrol(engine: Engine, *members: str, when: dt.datetime = T0, **kw: Any) -> None:
    for m in members:
        engine.enroll(m, at=when, event_id=f"enrol-{m}", **kw)


def buy(engine: Engine, member: str, amount: str, when: dt.datetime, n: str, **kw: Any) -> Outcome:
    return engine.purchase(
        member, amount, at=when, event_id=f"e-{n}", transaction_id=f"t-{n}", **kw
    )


# -- earning ---------------------------------------------------------------------------------


def test_rounding_category_and_sku_multipliers(make: Callable[..., Engine]) -> None:
    engine = make(
        earning=[
            PerUnit(
                name="base",
                points_per_unit=1,
                unit_amount=2,
                rounding="half_up",
                category_multipliers={"coffee": 3, "gift": 0},
                sku_multipliers={"beans": "1.5"},
            )
        ]
    )
    enrol(engine, "ann")
    items = [
        LineItem(sku="latte", amount="4.00", category="coffee"),  # 12 units weight
        LineItem(sku="beans", amount="10.00", category="coffee"),  # sku wins: 15
        LineItem(sku="card", amount="50.00", category="gift"),  # 0
        LineItem(sku="cake", amount="3.00"),  # 3
    ]
    out = buy(engine, "ann", "67.00", at(0), "1", items=items)
    # (12 + 15 + 0 + 3) / 2 = 15
    assert out.details["points"] == 15


def test_tier_multiplier_and_campaign_with_budget(make: Callable[..., Engine]) -> None:
    engine = make(
        earning=[
            PerUnit(name="base", points_per_unit=1),
            TierMultiplier(name="tier", of="base", multipliers={"gold": "1.5"}),
            Campaign(name="double", of="base", multiplier=2, start=at(0), end=at(5), budget=150),
        ],
        tiers=TierPolicy(
            rule=WindowedMetric(metric="spend"),
            levels=[Tier(name="base", threshold=0), Tier(name="gold", threshold=1000)],
        ),
    )
    enrol(engine, "ann", "bob", when=at(-1))
    engine.assign_tier("ann", "gold", at=at(-1), event_id="gold-ann")
    a = buy(engine, "ann", "100", at(1), "1")
    assert a.details["rules"] == {"base": 100, "tier": 50, "double": 100}
    b = buy(engine, "bob", "100", at(2), "2")
    assert b.details["rules"] == {"base": 100, "tier": 0, "double": 50}  # budget left: 50
    c = buy(engine, "bob", "10", at(3), "3")
    assert c.details["rules"]["double"] == 0
    d = buy(engine, "bob", "10", at(6), "4")
    assert d.details["rules"]["double"] == 0


def test_caps_per_transaction_and_day(make: Callable[..., Engine]) -> None:
    engine = make(caps=Caps(per_transaction=100, per_day=150))
    enrol(engine, "ann")
    assert buy(engine, "ann", "500", at(0), "1").details["points"] == 100
    assert buy(engine, "ann", "80", at(0.1), "2").details["points"] == 50
    assert buy(engine, "ann", "80", at(0.2), "3").details["points"] == 0
    assert buy(engine, "ann", "80", at(1), "4").details["points"] == 80


def test_welcome_birthday_and_referral(make: Callable[..., Engine], recorder: Recorder) -> None:
    engine = make(
        earning=[
            PerUnit(name="base", points_per_unit=1),
            WelcomeBonus(name="welcome", points=100),
            BirthdayBonus(name="bday", points=30),
            ReferralBonus(name="ref", referee_points=20, referrer_points=40),
        ]
    )
    assert engine.enroll("ann", at=T0, event_id="e1").points == 100
    out = engine.enroll(
        "bob", at=T0, event_id="e2", referred_by="ann", birthday=dt.date(1990, 1, 3)
    )
    assert out.points == 100
    first = buy(engine, "bob", "10", at(1), "1")
    assert first.details["rules"] == {"base": 10, "bday": 30, "ref": 20}
    assert engine.balance("ann", at(1)).total == 140
    assert ("earned", ("ann", [40])) in recorder.calls
    again = buy(engine, "bob", "10", at(2), "2")
    assert again.details["rules"] == {"base": 10, "bday": 0, "ref": 0}
    next_year = buy(engine, "bob", "10", dt.datetime(2026, 1, 20, tzinfo=UTC), "3")
    assert next_year.details["rules"]["bday"] == 30


def test_one_order_earns_once(make: Callable[..., Engine]) -> None:
    engine = make()
    enrol(engine, "ann")
    buy(engine, "ann", "10", at(0), "1")
    with pytest.raises(LedgerError, match="already recorded"):
        engine.purchase("ann", "10", at=at(0), event_id="other-id", transaction_id="t-1")
    assert engine.balance("ann", at(1)).total == 10


# -- pending, redemption, expiry ---------------------------------------------------------------


def test_pending_points_cannot_be_spent(make: Callable[..., Engine]) -> None:
    engine = make(pending=PendingPolicy(days=14))
    enrol(engine, "ann")
    buy(engine, "ann", "100", at(0), "1")
    bal = engine.balance("ann", at(1))
    assert (bal.available, bal.pending) == (0, 100)
    with pytest.raises(InsufficientPointsError, match="0 points available"):
        engine.redeem("ann", points=10, at=at(1), event_id="r1")
    engine.redeem("ann", points=10, at=at(14), event_id="r2")
    assert engine.balance("ann", at(14)).available == 90


def test_redemption_draws_soonest_expiring_first(
    make: Callable[..., Engine], recorder: Recorder
) -> None:
    engine = make(
        expiry=ExpiryPolicy(kind="days_after_earn", days=30),
        rewards=[Reward(id="mug", cost=25, valid_days=10, stock=1)],
    )
    enrol(engine, "ann")
    buy(engine, "ann", "10", at(5), "late")
    buy(engine, "ann", "20", at(0), "early")
    out = engine.redeem("ann", reward_id="mug", at=at(6), event_id="r1")
    drawn = [(e.batch_id, e.points) for e in out.entries if e.kind is EntryKind.REDEEM]
    assert drawn == [("e-early:b1", -20), ("e-late:b1", -5)]
    assert out.reward is not None
    assert out.reward.valid_until == at(16)
    assert recorder.calls[-2:] == [("redeemed", ("ann", [-20, -5])), ("reward", ("ann", "mug"))]
    buy(engine, "ann", "100", at(7), "more")
    with pytest.raises(LedgerError, match="out of stock"):
        engine.redeem("ann", reward_id="mug", at=at(8), event_id="r2")
    assert engine.balance("ann", at(8)).total == 105


@pytest.mark.parametrize(
    ("policy", "earned", "expected"),
    [
        (ExpiryPolicy(kind="days_after_earn", days=10), at(0), at(10)),
        (
            ExpiryPolicy(kind="end_of_month", months=0),
            at(0),
            dt.datetime(2025, 2, 1, tzinfo=UTC),
        ),
        (
            ExpiryPolicy(kind="end_of_month", months=2),
            at(0),
            dt.datetime(2025, 4, 1, tzinfo=UTC),
        ),
        (ExpiryPolicy(kind="end_of_year", years=0), at(0), dt.datetime(2026, 1, 1, tzinfo=UTC)),
        (ExpiryPolicy(kind="end_of_year", years=1), at(0), dt.datetime(2027, 1, 1, tzinfo=UTC)),
        (ExpiryPolicy(kind="never"), at(0), None),
    ],
)
def test_expiry_dates(
    make: Callable[..., Engine], policy: ExpiryPolicy, earned: dt.datetime, expected: Any
) -> None:
    engine = make(expiry=policy)
    enrol(engine, "ann")
    out = buy(engine, "ann", "10", earned, "1")
    assert out.entries[0].expires_at == expected


def test_end_of_month_uses_program_timezone(make: Callable[..., Engine]) -> None:
    engine = make(expiry=ExpiryPolicy(kind="end_of_month", months=0), timezone="Asia/Tokyo")
    enrol(engine, "ann", when=dt.datetime(2025, 1, 1, tzinfo=UTC))
    # 31 January 20:00 UTC is already 1 February in Tokyo
    out = buy(engine, "ann", "10", dt.datetime(2025, 1, 31, 20, tzinfo=UTC), "1")
    expires = out.entries[0].expires_at
    assert expires is not None
    assert expires.astimezone(UTC) == dt.datetime(2025, 2, 28, 15, tzinfo=UTC)


def test_inactivity_expiry_moves_with_activity(make: Callable[..., Engine]) -> None:
    engine = make(expiry=ExpiryPolicy(kind="inactivity", days=30))
    enrol(engine, "ann")
    buy(engine, "ann", "10", at(0), "1")
    buy(engine, "ann", "10", at(20), "2")
    assert engine.expire(at(35)).points == 0
    assert {b.expires_at for b in engine.store.batches("ann")} == {at(50)}
    report = engine.expire(at(50))
    assert report.points == 20
    assert engine.balance("ann", at(50)).total == 0


def test_expiry_run_and_lazy_expiry(make: Callable[..., Engine], recorder: Recorder) -> None:
    engine = make(expiry=ExpiryPolicy(kind="days_after_earn", days=10))
    enrol(engine, "ann", "bob")
    buy(engine, "ann", "10", at(0), "1")
    buy(engine, "bob", "10", at(0), "2")
    before = engine.balance("ann", at(11))
    assert (before.total, before.available, before.overdue) == (10, 0, 10)
    # ann's next event records her expiry first; the run then only expires bob's
    with pytest.raises(InsufficientPointsError):
        engine.redeem("ann", points=5, at=at(11), event_id="r1")
    buy(engine, "ann", "3", at(11), "3")
    assert engine.balance("ann", at(11)).total == 3
    report = engine.expire(at(11))
    assert (report.members, report.points) == (1, 10)
    assert engine.expire(at(11)).points == 0
    assert ("expired", ("bob", [-10])) in recorder.calls
    assert ("expired", ("ann", [-10])) in recorder.calls
    # balance as of a past date still shows what was there then
    assert engine.balance("ann", at(5)).total == 10


def test_balance_expiring_window(make: Callable[..., Engine]) -> None:
    engine = make(expiry=ExpiryPolicy(kind="days_after_earn", days=40))
    enrol(engine, "ann")
    buy(engine, "ann", "10", at(0), "1")
    buy(engine, "ann", "20", at(30), "2")
    bal = engine.balance("ann", at(31), expiring_within_days=10)
    assert (bal.total, bal.expiring) == (30, 10)


# -- refunds ---------------------------------------------------------------------------------


def test_partial_refunds_reverse_proportionally_and_sum_to_full(
    make: Callable[..., Engine],
) -> None:
    engine = make()
    enrol(engine, "ann")
    buy(engine, "ann", "99.99", at(0), "1")  # 99 points
    outs = [
        engine.refund(
            "ann", amount, at=at(1), event_id=f"r{i}", transaction_id=f"rf{i}", refund_of="t-1"
        )
        for i, amount in enumerate(["33.33", "33.33", "33.33"])
    ]
    reversed_ = [o.details["reversed"] for o in outs]
    assert reversed_ == [33, 33, 33]
    assert engine.balance("ann", at(2)).total == 0
    with pytest.raises(LedgerError, match="exceeds what is left"):
        engine.refund("ann", "0.01", at=at(2), event_id="r9", transaction_id="rf9", refund_of="t-1")


def test_refund_of_spent_points_makes_debt_settled_by_later_earnings(
    make: Callable[..., Engine], recorder: Recorder
) -> None:
    engine = make(negative_balance="debt")
    enrol(engine, "ann")
    buy(engine, "ann", "100", at(0), "1")
    engine.redeem("ann", points=80, at=at(1), event_id="r1")
    out = engine.refund(
        "ann", "100", at=at(2), event_id="rf", transaction_id="rf1", refund_of="t-1"
    )
    assert out.details == {"reversed": 100, "debt": 80, "forgiven": 0}
    bal = engine.balance("ann", at(2))
    assert (bal.total, bal.debt, bal.available) == (-80, 80, 0)
    with pytest.raises(InsufficientPointsError):
        engine.redeem("ann", points=1, at=at(3), event_id="r2")
    buy(engine, "ann", "50", at(3), "2")
    assert engine.balance("ann", at(3)).total == -30
    buy(engine, "ann", "50", at(4), "3")
    bal = engine.balance("ann", at(4))
    assert (bal.total, bal.debt, bal.available) == (20, 0, 20)
    assert ("reversed", ("ann", [-20, -80])) in recorder.calls


def test_refund_clamp_policy_forgives(make: Callable[..., Engine]) -> None:
    engine = make(negative_balance="clamp")
    enrol(engine, "ann")
    buy(engine, "ann", "100", at(0), "1")
    buy(engine, "ann", "30", at(0), "2")
    engine.redeem("ann", points=120, at=at(1), event_id="r1")
    out = engine.refund(
        "ann", "100", at=at(2), event_id="rf", transaction_id="rf1", refund_of="t-1"
    )
    # 10 left in batch 2 is taken, the remaining 90 forgiven
    assert out.details == {"reversed": 100, "debt": 0, "forgiven": 90}
    assert engine.balance("ann", at(2)).total == 0


def test_refund_validation(make: Callable[..., Engine]) -> None:
    engine = make()
    enrol(engine, "ann", "bob")
    buy(engine, "ann", "10", at(0), "1")
    with pytest.raises(LedgerError, match="no purchase 'nope'"):
        engine.refund("ann", "1", at=at(1), event_id="x1", transaction_id="r1", refund_of="nope")
    with pytest.raises(LedgerError, match="belongs to member 'ann'"):
        engine.refund("bob", "1", at=at(1), event_id="x2", transaction_id="r2", refund_of="t-1")
    engine.refund("ann", "1", at=at(1), event_id="x3", transaction_id="r3", refund_of="t-1")
    with pytest.raises(LedgerError, match="reverses once"):
        engine.refund("ann", "1", at=at(1), event_id="x4", transaction_id="r3", refund_of="t-1")


# -- adjustments -------------------------------------------------------------------------------


def test_adjustments(make: Callable[..., Engine], recorder: Recorder) -> None:
    engine = make()
    enrol(engine, "ann")
    out = engine.adjust("ann", 50, reason="goodwill", at=at(0), event_id="a1")
    assert out.entries[0].reason == "goodwill"
    assert out.entries[0].kind is EntryKind.ADJUST
    engine.adjust("ann", -20, reason="correction", at=at(1), event_id="a2")
    with pytest.raises(InsufficientPointsError):
        engine.adjust("ann", -31, reason="too much", at=at(1), event_id="a3")
    assert engine.balance("ann", at(1)).total == 30
    assert ("adjusted", ("ann", [50])) in recorder.calls


# -- tiers -----------------------------------------------------------------------------------


def tiered(window: str = "calendar_year", **kw: Any) -> dict[str, Any]:
    return {
        "tiers": TierPolicy(
            rule=WindowedMetric(metric="spend", window=window, window_days=30),
            levels=[
                Tier(name="base", threshold=0),
                Tier(name="silver", threshold=100),
                Tier(name="gold", threshold=500),
            ],
            grace_days=15,
            **kw,
        )
    }


def test_upgrade_at_once_and_downgrade_after_period_and_grace(
    make: Callable[..., Engine], recorder: Recorder
) -> None:
    engine = make(**tiered())
    enrol(engine, "ann")
    out = buy(engine, "ann", "600", at(0), "1")
    assert [c.to_tier for c in out.tier_changes] == ["gold"]
    # 2026: gold kept (2025 qualified); reviewed 2027-01-16 on 2026 spend of 150 -> silver
    buy(engine, "ann", "150", dt.datetime(2026, 5, 1, tzinfo=UTC), "2")
    assert engine.retier(dt.datetime(2027, 1, 15, tzinfo=UTC)).changes == ()
    report = engine.retier(dt.datetime(2027, 1, 16, tzinfo=UTC))
    assert [(c.from_tier, c.to_tier, c.reason) for c in report.changes] == [
        ("gold", "silver", "downgrade")
    ]
    # nothing in 2027 -> base at the next review
    report = engine.retier(dt.datetime(2030, 1, 1, tzinfo=UTC))
    assert [c.to_tier for c in report.changes] == ["base"]
    history = [c.to_tier for c in engine.store.tier_history("ann")]
    assert history == ["base", "gold", "silver", "base"]
    assert ("tier", ("ann", "gold", "silver", "downgrade")) in recorder.calls
    assert engine.statement("ann").tier == "base"


def test_manual_floor(make: Callable[..., Engine]) -> None:
    engine = make(**tiered(window="rolling"))
    enrol(engine, "ann")
    out = engine.assign_tier("ann", "silver", at=at(0), event_id="m1", reason="vip")
    assert [(c.to_tier, c.reason) for c in out.tier_changes] == [("silver", "vip")]
    buy(engine, "ann", "600", at(1), "1")
    engine.retier(at(400))
    state = engine.store.get_member("ann")
    assert state is not None
    assert state.tier == "silver"  # dropped from gold, but not below the floor
    engine.assign_tier("ann", None, at=at(401), event_id="m2")
    engine.retier(at(500))
    state = engine.store.get_member("ann")
    assert state is not None
    assert state.tier == "base"
    with pytest.raises(LedgerError, match="no tier named 'platinum'"):
        engine.assign_tier("ann", "platinum", at=at(501), event_id="m3")


def test_anniversary_window(make: Callable[..., Engine]) -> None:
    engine = make(**tiered(window="anniversary"))
    enrol(engine, "ann", when=dt.datetime(2024, 6, 15, tzinfo=UTC))
    buy(engine, "ann", "60", dt.datetime(2025, 6, 1, tzinfo=UTC), "1")
    out = buy(engine, "ann", "60", dt.datetime(2025, 6, 20, tzinfo=UTC), "2")
    assert out.tier_changes == ()  # new membership year started on 15 June
    out = buy(engine, "ann", "60", dt.datetime(2025, 7, 20, tzinfo=UTC), "3")
    assert [c.to_tier for c in out.tier_changes] == ["silver"]


def test_downgrade_never(make: Callable[..., Engine]) -> None:
    engine = make(**tiered(downgrade="never"))
    enrol(engine, "ann")
    buy(engine, "ann", "600", at(0), "1")
    assert engine.retier(dt.datetime(2030, 1, 1, tzinfo=UTC)).changes == ()


# -- idempotency and hooks -------------------------------------------------------------------


def test_replay_returns_original_and_writes_nothing(
    make: Callable[..., Engine], recorder: Recorder
) -> None:
    engine = make()
    enrol(engine, "ann")
    first = buy(engine, "ann", "10", at(0), "1")
    calls = len(recorder.calls)
    entries = engine.store.entries("ann")
    again = buy(engine, "ann", "10", at(0), "1")
    assert again.replayed
    assert again.to_dict() == first.to_dict()
    assert engine.store.entries("ann") == entries
    assert len(recorder.calls) == calls  # hooks do not fire again
    with pytest.raises(IdempotencyConflictError, match="different payload"):
        buy(engine, "ann", "11", at(0), "1")


def test_hooks_fire_after_commit_and_not_for_failed_events(
    make: Callable[..., Engine], recorder: Recorder
) -> None:
    engine = make()
    seen_committed: list[int] = []

    class Probe:
        @hookimpl
        def loyaltykit_points_earned(self, member_id: str, entries: Any) -> None:
            # the write is visible in the store when the hook runs
            seen_committed.append(sum(e.points for e in engine.store.entries(member_id)))

    engine._host.register(Probe(), name="probe")  # type: ignore[attr-defined]
    enrol(engine, "ann")
    buy(engine, "ann", "10", at(0), "1")
    assert seen_committed == [10]
    calls = len(recorder.calls)
    with pytest.raises(InsufficientPointsError):
        engine.redeem("ann", points=11, at=at(1), event_id="r1")
    assert len(recorder.calls) == calls


def test_a_plugin_implementing_some_hooks_gets_exactly_their_calls() -> None:
    calls: list[tuple[str, Any]] = []

    class Redeemed:
        @hookimpl
        def loyaltykit_points_redeemed(self, member_id: str, entries: Any) -> None:
            calls.append(("redeemed", [e.points for e in entries]))

        @hookimpl
        def loyaltykit_reward_issued(self, issue: Any) -> None:
            calls.append(("issued", issue.reward_id))

    host = PluginHost(load_entrypoints=False, blocked=frozenset())
    host.register(Redeemed(), name="redeemed")
    engine = Engine(
        program(rewards=[Reward(id="mug", name="Mug", cost=5)]), MemoryStore(), host=host
    )
    enrol(engine, "ann")
    buy(engine, "ann", "20", at(0), "1")
    assert calls == []
    engine.redeem("ann", points=3, at=at(1), event_id="r1")
    engine.redeem("ann", reward_id="mug", at=at(2), event_id="r2")
    assert calls == [("redeemed", [-3]), ("redeemed", [-5]), ("issued", "mug")]


def test_failing_hook_does_not_undo_the_write(make: Callable[..., Engine], caplog: Any) -> None:
    engine = make()

    class Broken:
        @hookimpl
        def loyaltykit_points_earned(self, member_id: str, entries: Any) -> None:
            raise RuntimeError("webhook down")

    engine._host.register(Broken(), name="broken")  # type: ignore[attr-defined]
    enrol(engine, "ann")
    buy(engine, "ann", "10", at(0), "1")
    assert engine.balance("ann", at(1)).total == 10
    assert "webhook down" in caplog.text


def test_default_host_is_the_process_host(plugin_host: PluginHost, recorder: Recorder) -> None:
    plugin_host.register(recorder, name="rec")
    engine = Engine(program(), MemoryStore())
    enrol(engine, "ann")
    buy(engine, "ann", "10", at(0), "1")
    assert ("earned", ("ann", [10])) in recorder.calls


# -- statements ------------------------------------------------------------------------------


def test_statement(make: Callable[..., Engine]) -> None:
    engine = make(**tiered())
    enrol(engine, "ann")
    buy(engine, "ann", "10", at(0), "1")
    buy(engine, "ann", "200", at(5), "2")
    engine.redeem("ann", points=50, at=at(6), event_id="r1")
    st = engine.statement("ann", start=at(4), end=at(5.5))
    assert st.opening_balance == 10
    assert [(x.entry.points, x.balance) for x in st.lines] == [(200, 210)]
    assert st.closing_balance == 210
    full = engine.statement("ann")
    assert full.closing_balance == 160
    assert [c.to_tier for c in full.tier_history] == ["base", "silver"]
    assert full.to_dict()["lines"][-1]["balance"] == 160
    with pytest.raises(LedgerError, match="not enrolled"):
        engine.statement("nobody")


def test_auto_enroll(make: Callable[..., Engine]) -> None:
    engine = make(auto_enroll=True, **tiered())
    out = buy(engine, "new", "10", at(0), "1")
    assert out.points == 10
    state = engine.store.get_member("new")
    assert state is not None
    assert state.enrolled_at == at(0)


# -- concurrency (threads on the memory store) ---------------------------------------------------


def test_concurrent_redemptions_never_overdraw(make: Callable[..., Engine]) -> None:
    engine = make()
    enrol(engine, "ann")
    buy(engine, "ann", "100", at(0), "1")
    ok: list[int] = []
    errors: list[BaseException] = []

    def spend(i: int) -> None:
        try:
            engine.redeem("ann", points=7, at=at(1), event_id=f"r{i}")
            ok.append(i)
        except InsufficientPointsError:
            pass
        except BaseException as exc:  # pragma: no cover - reported
            errors.append(exc)

    threads = [threading.Thread(target=spend, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(ok) == 14
    assert engine.balance("ann", at(2)).total == 100 - 14 * 7


def test_concurrent_redelivery_writes_once(make: Callable[..., Engine]) -> None:
    engine = make()
    enrol(engine, "ann")
    outs: list[Outcome] = []

    def deliver() -> None:
        outs.append(buy(engine, "ann", "10", at(0), "same"))

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(not o.replayed for o in outs) == 1
    assert engine.balance("ann", at(1)).total == 10


def test_money_is_exact(make: Callable[..., Engine]) -> None:
    engine = make(earning=[PerUnit(name="base", points_per_unit="0.1", rounding="half_even")])
    enrol(engine, "ann")
    assert buy(engine, "ann", "25", at(0), "1").details["points"] == 2  # 2.5 -> 2
    assert buy(engine, "ann", "35", at(0), "2").details["points"] == 4  # 3.5 -> 4
    assert Decimal("0.1") * 3 == Decimal("0.3")


def test_inactivity_adjustment_expires_with_the_rest(make: Callable[..., Engine]) -> None:
    engine = make(expiry=ExpiryPolicy(kind="inactivity", days=30))
    enrol(engine, "ann")
    buy(engine, "ann", "10", at(0), "1")
    engine.adjust("ann", 5, reason="goodwill", at=at(20), event_id="a1")  # not activity
    assert {b.expires_at for b in engine.store.batches("ann")} == {at(30)}
    assert engine.expire(at(30)).points == 15


class FailingCommitStore(MemoryStore):
    """A memory store whose commits fail after the block ran (a lost connection at COMMIT)."""

    fail = False

    def unit(self, member_id: str, *more: str) -> Any:
        inner = super().unit(member_id, *more)
        store = self

        class Wrapper:
            def __enter__(self) -> Any:
                return inner.__enter__()

            def __exit__(self, *exc: Any) -> Any:
                if exc[0] is None and store.fail:
                    inner.__exit__(RuntimeError, RuntimeError("commit lost"), None)
                    raise RuntimeError("commit lost")
                return inner.__exit__(*exc)

        return Wrapper()


def test_no_hooks_for_a_commit_that_failed(recorder: Recorder) -> None:
    host = PluginHost(load_entrypoints=False, blocked=frozenset())
    host.register(recorder, name="recorder")
    store = FailingCommitStore()
    engine = Engine(program(), store, host=host)
    enrol(engine, "ann")
    calls = len(recorder.calls)
    store.fail = True
    with pytest.raises(RuntimeError, match="commit lost"):
        buy(engine, "ann", "10", at(0), "1")
    assert len(recorder.calls) == calls
    assert store.entries("ann") == []
    assert store.get_event("e-1") is None
    store.fail = False
    assert buy(engine, "ann", "10", at(0), "1").points == 10  # the retry goes through


@pytest.mark.parametrize(
    ("metric", "threshold", "amounts", "tier_after"),
    [
        ("visits", 3, ["1", "1", "1"], ["base", "base", "silver"]),
        ("points", 50, ["20", "20", "20"], ["base", "base", "silver"]),
        ("spend", "50.50", ["20.25", "30.24", "0.01"], ["base", "base", "silver"]),
    ],
)
def test_tier_metrics(
    make: Callable[..., Engine],
    metric: str,
    threshold: Any,
    amounts: list[str],
    tier_after: list[str],
) -> None:
    engine = make(
        tiers=TierPolicy(
            rule=WindowedMetric(metric=metric, window="rolling", window_days=30),
            levels=[Tier(name="base", threshold=0), Tier(name="silver", threshold=threshold)],
        )
    )
    enrol(engine, "ann")
    got = []
    for i, amount in enumerate(amounts):
        buy(engine, "ann", amount, at(i), str(i))
        state = engine.store.get_member("ann")
        assert state is not None
        got.append(state.tier)
    assert got == tier_after


def test_refunds_count_against_points_qualification(make: Callable[..., Engine]) -> None:
    engine = make(
        tiers=TierPolicy(
            rule=WindowedMetric(metric="points", window="calendar_year"),
            levels=[Tier(name="base", threshold=0), Tier(name="silver", threshold=100)],
        )
    )
    enrol(engine, "ann")
    buy(engine, "ann", "80", at(0), "1")
    engine.refund("ann", "80", at=at(1), event_id="r", transaction_id="r1", refund_of="t-1")
    out = buy(engine, "ann", "30", at(2), "2")
    assert out.tier_changes == ()  # 80 - 80 + 30 = 30 points this year


def test_concurrent_referrals_lock_both_members(make: Callable[..., Engine]) -> None:
    engine = make(
        earning=[
            PerUnit(name="base", points_per_unit=1),
            ReferralBonus(name="ref", referee_points=5, referrer_points=10),
        ]
    )
    enrol(engine, "boss")
    for i in range(12):
        engine.enroll(f"r{i}", at=T0, event_id=f"en{i}", referred_by="boss")
    errors: list[BaseException] = []

    def first_purchase(i: int) -> None:
        try:
            buy(engine, f"r{i}", "1", at(1), f"p{i}")
        except BaseException as exc:  # pragma: no cover - reported
            errors.append(exc)

    def boss_spends(i: int) -> None:
        try:
            engine.redeem("boss", points=10, at=at(1), event_id=f"boss{i}")
        except InsufficientPointsError:
            pass
        except BaseException as exc:  # pragma: no cover - reported
            errors.append(exc)

    threads = [threading.Thread(target=first_purchase, args=(i,)) for i in range(12)]
    threads += [threading.Thread(target=boss_spends, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    earned = sum(e.points for e in engine.store.entries("boss") if e.kind is EntryKind.EARN)
    spent = -sum(e.points for e in engine.store.entries("boss") if e.kind is EntryKind.REDEEM)
    assert earned == 120
    assert engine.balance("boss", at(2)).total == 120 - spent >= 0


def test_referral_survives_an_enrolment_race(make: Callable[..., Engine]) -> None:
    """process() decides which members to lock before the unit; if the referee was enrolled in
    between, the purchase retries holding the referrer's lock too, and the bonus is paid."""
    engine = make(
        earning=[
            PerUnit(name="base", points_per_unit=1),
            ReferralBonus(name="ref", referee_points=5, referrer_points=10),
        ]
    )
    enrol(engine, "boss")
    original = engine._members_for

    def stale(event: Any) -> tuple[str, ...]:
        members = original(event)
        if event.event_id == "e-1":
            # simulate: the referee's enrolment commits right after this look
            engine.enroll("newbie", at=T0, event_id="en-newbie", referred_by="boss")
            return (event.member_id,)
        return members

    engine._members_for = stale  # type: ignore[method-assign]
    out = buy(engine, "newbie", "1", at(1), "1")
    assert out.details["rules"]["ref"] == 5
    assert engine.balance("boss", at(1)).total == 10
