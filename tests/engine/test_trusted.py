"""The engine's trusted constructors build the same records as the public ones, and values that
come from outside the engine (a rule's points, the clock) are still refused as before."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import attrs
import pytest

from loyaltykit.core.ledger import EntryKind, LedgerEntry
from loyaltykit.core.program import Program
from loyaltykit.engine import Engine, MemoryStore, PerUnit
from loyaltykit.engine._trusted import builder, replacer
from loyaltykit.engine.store import Activity, Batch, MemberState, PurchaseRecord, _stored_state
from loyaltykit.errors import InvalidValueError

T = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("cls", "values"),
    [
        (
            LedgerEntry,
            {
                "id": "e:1",
                "member_id": "m",
                "event_id": "e",
                "kind": EntryKind.EARN,
                "points": 5,
                "occurred_at": T,
                "batch_id": "e:b1",
                "meta": MappingProxyType({"rule": "base"}),
            },
        ),
        (
            Batch,
            {
                "id": "e:b1",
                "member_id": "m",
                "event_id": "e",
                "points": 5,
                "remaining": 3,
                "earned_at": T,
                "expires_at": T + dt.timedelta(days=365),
            },
        ),
        (
            PurchaseRecord,
            {
                "transaction_id": "t",
                "member_id": "m",
                "event_id": "e",
                "occurred_at": T,
                "amount": Decimal("12.50"),
                "points": 12,
            },
        ),
        (
            Activity,
            {
                "member_id": "m",
                "event_id": "e",
                "occurred_at": T,
                "spend": Decimal("1.5"),
                "points": 1,
                "visits": 1,
            },
        ),
        (
            MemberState,
            {"member_id": "m", "enrolled_at": T, "attributes": MappingProxyType({})},
        ),
    ],
)
def test_trusted_records_equal_public_ones(cls: type[Any], values: dict[str, Any]) -> None:
    public = cls(**values)
    built = builder(cls)(**values)
    assert built == public
    try:
        assert hash(built) == hash(public)
    except TypeError:  # a record holding a mapping is not hashable, either way
        with pytest.raises(TypeError):
            hash(public)
    assert repr(built) == repr(public)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        built.member_id = "x"
    name = next(f.name for f in attrs.fields(cls) if f.name not in ("id", "member_id"))
    other = values[name] if name in values else getattr(public, name)
    assert replacer(cls)(public, **{name: other}) == attrs.evolve(public, **{name: other})
    assert replacer(cls)(public) == public


def test_builder_refuses_classes_it_cannot_build() -> None:
    class Plain:
        pass

    with pytest.raises(TypeError, match="not a slotted attrs class"):
        builder(Plain)

    @attrs.frozen
    class Post:
        x: int

        def __attrs_post_init__(self) -> None:
            pass

    with pytest.raises(TypeError, match="__attrs_post_init__"):
        replacer(Post)


class _Odd:
    """An earning rule (as a plugin could write one) returning whatever it was given."""

    def __init__(self, value: Any, scope: str) -> None:
        self.name = "odd"
        self.scope = scope
        self.triggers = frozenset({"purchase"})
        self.depends_on = ()
        self.budget = None
        self.value = value

    def points(self, ctx: object) -> Any:
        return self.value

    def referrer_points(self, ctx: object) -> int:
        return 0

    def points_expr(self) -> Any:  # pragma: no cover - bulk side not used here
        raise NotImplementedError


@pytest.mark.parametrize(
    ("value", "scope", "owner"),
    [
        (2.5, "transaction", "Batch"),
        (True, "bonus", "Batch"),
        (-3, "transaction", "PurchaseRecord"),
        (0.0, "transaction", "PurchaseRecord"),
        (2.5, "bonus", "Batch"),
    ],
)
def test_bad_points_of_a_rule_are_refused_and_nothing_is_written(
    value: Any, scope: str, owner: str
) -> None:
    store = MemoryStore()
    engine = Engine(Program(name="p", earning=[_Odd(value, scope)]), store)
    engine.enroll("ann", at=T, event_id="e1")
    with pytest.raises(InvalidValueError) as info:
        engine.purchase("ann", "10", at=T, event_id="e2", transaction_id="t")
    assert info.value.owner == owner
    assert store.get_event("e2") is None
    assert store.entries("ann") == []


def test_a_naive_clock_is_refused_and_nothing_is_written() -> None:
    store = MemoryStore()
    engine = Engine(
        Program(name="p", earning=[PerUnit(name="base", points_per_unit=1)]),
        store,
        clock=lambda: dt.datetime(2025, 1, 1),
    )
    with pytest.raises(InvalidValueError) as info:
        engine.enroll("ann", at=T, event_id="e1")
    assert (info.value.owner, info.value.field) == ("EventRecord", "recorded_at")
    assert store.get_member("ann") is None
    assert store.get_event("e1") is None


@pytest.mark.parametrize(
    "state",
    [
        MemberState(member_id="m", enrolled_at=T),
        MemberState(
            member_id="m",
            enrolled_at=T,
            birthday=dt.date(1990, 5, 17),
            referred_by="r",
            tier="gold",
            tier_since=T,
            tier_review_at=T + dt.timedelta(days=365),
            manual_tier="silver",
            debt=4,
            first_purchase_at=T,
            last_activity_at=T + dt.timedelta(days=3),
            birthday_bonus_years=(2024, 2025),
            cap_day=dt.date(2025, 1, 4),
            cap_day_points=12,
            attributes={"city": "Lyon", "tags": ["a"]},
        ),
    ],
)
def test_stored_states_read_back_like_from_dict(state: MemberState) -> None:
    data = json.loads(json.dumps(state.to_dict()))
    assert _stored_state(data) == MemberState.from_dict(data) == state
    assert repr(_stored_state(data)) == repr(state)
    # dicts of older versions lack the newer keys: defaults, as from_dict gives them
    old = {"member_id": "m", "enrolled_at": T.isoformat()}
    assert _stored_state(old) == MemberState.from_dict(old)


def test_iso_text_is_isoformat_for_any_zone_and_fold() -> None:
    from zoneinfo import ZoneInfo

    from loyaltykit.engine._iso import iso, opt_iso

    new_york = ZoneInfo("America/New_York")
    times = [
        T,
        T.replace(microsecond=5),
        dt.datetime(2025, 11, 2, 1, 30, tzinfo=new_york),
        dt.datetime(2025, 11, 2, 1, 30, fold=1, tzinfo=new_york),
        dt.datetime(2025, 11, 2, 5, 30, tzinfo=dt.UTC),
        dt.datetime(2025, 11, 2, 5, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    ]
    for _ in range(2):  # memoised the second time round
        assert [iso(t) for t in times] == [t.isoformat() for t in times]
    assert opt_iso(None) is None
