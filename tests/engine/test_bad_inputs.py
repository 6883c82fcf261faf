"""A corpus of bad program files and bad events: each gives a clear error and changes nothing."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from loyaltykit.engine import Engine, MemoryStore, event_from_json, program_from_toml
from loyaltykit.engine.events import EventError, read_events
from loyaltykit.errors import ConfigError, LedgerError
from loyaltykit.plugins import PluginHost

GOOD = """
[program]
name = "p"
[[earning]]
name = "base"
policy = "per_unit"
points_per_unit = "1"
"""

TIERS = """
[tiers]
rule = "spend"
[[tiers.levels]]
name = "base"
threshold = 0
[[tiers.levels]]
name = "gold"
threshold = 100
"""

# (case id, TOML text, key path the error must name, a word of the fix)
BAD_PROGRAMS: list[tuple[str, str, str, str]] = [
    ("not-toml", "[program\nname = 1", "<file>", "not valid TOML"),
    ("no-program", "[pending]\ndays = 1", "program", "[program]"),
    ("no-name", "[program]\ncurrency = 'USD'", "program.name", "required"),
    ("unknown-section", GOOD + "[bonus]\nx = 1", "bonus", "unknown key"),
    ("unknown-program-key", "[program]\nname = 'p'\ncolour = 'red'", "program.colour", "known"),
    (
        "bad-timezone",
        "[program]\nname = 'p'\ntimezone = 'Mars/Olympus'",
        "program.timezone",
        "IANA",
    ),
    (
        "bad-policy-name",
        "[program]\nname='p'\nnegative_balance='overdraft'",
        "program.negative_balance",
        "'debt'",
    ),
    (
        "auto-enroll-not-bool",
        "[program]\nname='p'\nauto_enroll='yes'",
        "program.auto_enroll",
        "true or false",
    ),
    ("negative-pending", GOOD + "[pending]\ndays = -1", "pending.days", ">= 0"),
    ("bad-expiry-kind", GOOD + "[expiry]\nkind = 'sometimes'", "expiry.kind", "days_after_earn"),
    ("expiry-unknown-key", GOOD + "[expiry]\nkind = 'never'\nweeks = 3", "expiry.weeks", "known"),
    ("negative-cap", GOOD + "[caps]\nper_day = -5", "caps.per_day", ">= 0"),
    ("earning-not-array", "[program]\nname='p'\n[earning]\nname='x'", "earning", "[[earning]]"),
    (
        "earning-no-policy",
        "[program]\nname='p'\n[[earning]]\nname='x'",
        "earning[0].policy",
        "per_unit",
    ),
    (
        "earning-unknown-policy",
        "[program]\nname='p'\n[[earning]]\nname='x'\npolicy='magic'",
        "earning[0].policy",
        "known",
    ),
    (
        "earning-no-name",
        "[program]\nname='p'\n[[earning]]\npolicy='per_unit'\npoints_per_unit='1'",
        "earning[0].name",
        "unique name",
    ),
    (
        "float-rate",
        "[program]\nname='p'\n[[earning]]\nname='b'\npolicy='per_unit'\npoints_per_unit=1.1",
        "earning[0].points_per_unit",
        "exact",
    ),
    (
        "too-many-places",
        "[program]\nname='p'\n[[earning]]\nname='b'\npolicy='per_unit'\npoints_per_unit='0.0000001'",
        "earning[0].points_per_unit",
        "decimal places",
    ),
    (
        "bad-rounding",
        "[program]\nname='p'\n[[earning]]\nname='b'\npolicy='per_unit'\npoints_per_unit='1'\nrounding='nearest'",
        "earning[0].rounding",
        "half_even",
    ),
    (
        "negative-multiplier",
        "[program]\nname='p'\n[[earning]]\nname='b'\npolicy='per_unit'\npoints_per_unit='1'\ncategory_multipliers={food='-1'}",
        "earning[0].category_multipliers['food']",
        ">= 0",
    ),
    (
        "unknown-option",
        GOOD.replace("points_per_unit", "points_per_euro"),
        "earning[0].points_per_euro",
        "known",
    ),
    (
        "duplicate-rule",
        GOOD + "[[earning]]\nname='base'\npolicy='welcome'\npoints=5",
        "earning[1].name",
        "unique",
    ),
    (
        "dangling-of",
        "[program]\nname='p'\n[[earning]]\nname='t'\npolicy='tier_multiplier'\nof='base'\nmultipliers={}",
        "earning[0]",
        "listed before",
    ),
    (
        "naive-campaign-start",
        GOOD
        + "[[earning]]\nname='c'\npolicy='campaign'\nof='base'\nmultiplier='2'\nstart=2025-01-01T00:00:00\nend=2025-02-01T00:00:00Z",
        "earning[1].start",
        "timezone-aware",
    ),
    (
        "campaign-end-before-start",
        GOOD
        + "[[earning]]\nname='c'\npolicy='campaign'\nof='base'\nmultiplier='2'\nstart=2025-02-01T00:00:00Z\nend=2025-01-01T00:00:00Z",
        "earning[1].end",
        "after start",
    ),
    (
        "multiplier-below-one",
        GOOD
        + TIERS
        + "[[earning]]\nname='t'\npolicy='tier_multiplier'\nof='base'\nmultipliers={gold='0.5'}",
        "earning[1].multipliers['gold']",
        ">= 1",
    ),
    (
        "multiplier-unknown-tier",
        GOOD
        + "[[earning]]\nname='t'\npolicy='tier_multiplier'\nof='base'\nmultipliers={platinum='2'}"
        + TIERS,
        "earning[1].multipliers.platinum",
        "not a tier",
    ),
    (
        "negative-bonus",
        "[program]\nname='p'\n[[earning]]\nname='w'\npolicy='welcome'\npoints=-5",
        "earning[0].points",
        ">= 0",
    ),
    ("tiers-unknown-rule", GOOD + "[tiers]\nrule='karma'", "tiers.rule", "known"),
    (
        "tiers-bad-window",
        GOOD + TIERS.replace('rule = "spend"', 'rule = "spend"\nwindow = "weekly"'),
        "tiers.window",
        "rolling",
    ),
    (
        "tiers-first-not-zero",
        GOOD + "[tiers]\nrule='spend'\n[[tiers.levels]]\nname='a'\nthreshold=5",
        "tiers.levels[0].threshold",
        "threshold 0",
    ),
    (
        "tiers-not-increasing",
        GOOD + TIERS + "[[tiers.levels]]\nname='silver'\nthreshold=50",
        "tiers.levels[2].threshold",
        "increase",
    ),
    ("tiers-no-levels", GOOD + "[tiers]\nrule='visits'", "tiers.levels", "at least one"),
    (
        "tier-negative-threshold",
        GOOD + "[tiers]\nrule='spend'\n[[tiers.levels]]\nname='a'\nthreshold=-1",
        "tiers.levels[0].threshold",
        ">= 0",
    ),
    ("reward-zero-cost", GOOD + "[[rewards]]\nid='r'\ncost=0", "rewards[0].cost", "> 0"),
    ("reward-no-cost", GOOD + "[[rewards]]\nid='r'", "rewards[0]", "cost"),
    (
        "reward-duplicate",
        GOOD + "[[rewards]]\nid='r'\ncost=1\n[[rewards]]\nid='r'\ncost=2",
        "rewards",
        "unique",
    ),
]


@pytest.mark.parametrize(
    ("text", "path", "fix"), [c[1:] for c in BAD_PROGRAMS], ids=[c[0] for c in BAD_PROGRAMS]
)
def test_bad_program_is_refused_with_key_path(
    text: str, path: str, fix: str, plugin_host: PluginHost
) -> None:
    with pytest.raises(ConfigError) as info:
        program_from_toml(text, source="bad.toml")
    err = info.value
    assert err.path == path, str(err)
    assert fix in str(err), str(err)
    assert str(err).startswith("bad.toml: ")


T = "2025-03-01T10:00:00+00:00"


def ev(**kw: Any) -> str:
    base: dict[str, Any] = {"event_id": "x1", "member_id": "ann", "occurred_at": T}
    base.update(kw)
    return json.dumps({k: v for k, v in base.items() if v is not None})


# (case id, JSON line, field named by the error)
BAD_LINES: list[tuple[str, str, str]] = [
    ("not-json", "{type: purchase}", "<line>"),
    ("not-object", "[1, 2]", "<event>"),
    ("unknown-type", ev(type="gift"), "type"),
    ("missing-id", ev(type="enroll", event_id=None), "event_id"),
    ("empty-member", ev(type="enroll", member_id=""), "member_id"),
    ("naive-time", ev(type="enroll", occurred_at="2025-03-01T10:00:00"), "occurred_at"),
    ("bad-time", ev(type="enroll", occurred_at="yesterday"), "occurred_at"),
    ("unknown-field", ev(type="enroll", colour="red"), "colour"),
    ("bad-birthday", ev(type="enroll", birthday="1990-13-01"), "birthday"),
    ("self-referral", ev(type="enroll", referred_by="ann"), "referred_by"),
    (
        "nan-amount",
        '{"type":"purchase","event_id":"x","member_id":"a","occurred_at":"'
        + T
        + '","transaction_id":"t","amount":NaN}',
        "amount",
    ),
    (
        "bool-amount",
        ev(type="purchase", transaction_id="t", amount=True),
        "amount",
    ),
    ("text-amount", ev(type="purchase", transaction_id="t", amount="ten"), "amount"),
    ("negative-amount", ev(type="purchase", transaction_id="t", amount="-1"), "amount"),
    (
        "bad-currency",
        ev(type="purchase", transaction_id="t", amount="1", currency="usd"),
        "currency",
    ),
    ("items-not-list", ev(type="purchase", transaction_id="t", amount="1", items="x"), "items"),
    (
        "item-bad-amount",
        ev(type="purchase", transaction_id="t", amount="1", items=[{"sku": "a", "amount": "x"}]),
        "items[0].amount",
    ),
    (
        "items-do-not-add-up",
        ev(type="purchase", transaction_id="t", amount="5", items=[{"sku": "a", "amount": "1"}]),
        "items",
    ),
    ("refund-zero", ev(type="refund", transaction_id="r", refund_of="t", amount="0"), "amount"),
    (
        "refund-of-itself",
        ev(type="refund", transaction_id="t", refund_of="t", amount="1"),
        "refund_of",
    ),
    ("redeem-nothing", ev(type="redeem"), "reward_id"),
    ("redeem-both", ev(type="redeem", reward_id="r", points=5), "reward_id"),
    ("redeem-negative", ev(type="redeem", points=-5), "points"),
    ("adjust-no-reason", ev(type="adjust", points=5), "<event>"),
    ("adjust-blank-reason", ev(type="adjust", points=5, reason="  "), "reason"),
    ("adjust-zero", ev(type="adjust", points=0, reason="x"), "points"),
    ("adjust-float", ev(type="adjust", points=1.5, reason="x"), "points"),
]


@pytest.mark.parametrize(
    ("line", "field"), [c[1:] for c in BAD_LINES], ids=[c[0] for c in BAD_LINES]
)
def test_bad_event_line_is_refused(line: str, field: str) -> None:
    with pytest.raises(EventError) as info:
        list(read_events(["", line], source="events.jsonl"))
    assert info.value.field == field, str(info.value)
    assert str(info.value).startswith("events.jsonl line 2: ")


def t(day: int) -> dt.datetime:
    return dt.datetime(2025, 3, day, tzinfo=dt.UTC)


@pytest.fixture
def engine(plugin_host: PluginHost) -> Engine:
    program = program_from_toml(
        GOOD + TIERS + "[[rewards]]\nid='mug'\ncost=10\nstock=0\n[[rewards]]\nid='cup'\ncost=1000\n"
    )
    engine = Engine(program, MemoryStore())
    engine.enroll("ann", at=t(1), event_id="e1")
    engine.enroll("bob", at=t(1), event_id="e2")
    engine.purchase("ann", "50", at=t(2), event_id="e3", transaction_id="t1")
    engine.purchase("ann", "10", at=t(2), event_id="e4", transaction_id="t2")
    return engine


# (case id, JSON line of a well-formed event the ledger must refuse, words of the message)
REFUSED: list[tuple[str, str, str]] = [
    (
        "unknown-member",
        ev(type="purchase", member_id="zed", transaction_id="t9", amount="5"),
        "not enrolled",
    ),
    ("enrol-twice", ev(type="enroll"), "already enrolled"),
    (
        "wrong-currency",
        ev(type="purchase", transaction_id="t9", amount="5", currency="EUR"),
        "currency",
    ),
    ("too-precise", ev(type="purchase", transaction_id="t9", amount="0.0000001"), "decimal places"),
    ("order-twice", ev(type="purchase", transaction_id="t1", amount="5"), "earns once"),
    (
        "refund-unknown",
        ev(type="refund", transaction_id="r1", refund_of="t7", amount="1"),
        "no purchase",
    ),
    (
        "refund-other-member",
        ev(type="refund", member_id="bob", transaction_id="r1", refund_of="t1", amount="1"),
        "belongs to member",
    ),
    (
        "over-refund",
        ev(type="refund", transaction_id="r1", refund_of="t1", amount="50.01"),
        "exceeds",
    ),
    (
        "refund-reuses-order-id",
        ev(type="refund", transaction_id="t2", refund_of="t1", amount="1"),
        "reverses once",
    ),
    ("overdraw", ev(type="redeem", points=61), "61 needed"),
    ("unknown-reward", ev(type="redeem", reward_id="yacht"), "no such reward"),
    ("out-of-stock", ev(type="redeem", reward_id="mug"), "out of stock"),
    ("reward-too-dear", ev(type="redeem", reward_id="cup"), "1000 needed"),
    ("adjust-below-zero", ev(type="adjust", points=-61, reason="fix"), "61 needed"),
    ("unknown-tier", ev(type="assign_tier", tier="platinum"), "no tier named"),
    (
        "id-reused-with-other-payload",
        ev(type="purchase", event_id="e3", transaction_id="t1", amount="51"),
        "different payload",
    ),
]


def snapshot(engine: Engine) -> Any:
    store = engine.store
    return [
        (m, store.entries(m), store.batches(m), store.get_member(m), store.tier_history(m))
        for m in ("ann", "bob", "zed")
    ]


@pytest.mark.parametrize(("line", "words"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_refused_event_leaves_store_unchanged(engine: Engine, line: str, words: str) -> None:
    before = snapshot(engine)
    event = event_from_json(line)
    with pytest.raises(LedgerError, match=words):
        engine.process(event)
    assert snapshot(engine) == before
    if event.event_id != "e3":
        assert engine.store.get_event(event.event_id) is None


def test_attributes_must_be_json_able(engine: Engine) -> None:
    from loyaltykit.engine import Enroll

    before = snapshot(engine)
    with pytest.raises(EventError, match="JSON-able"):
        engine.process(
            Enroll(event_id="x9", member_id="cat", occurred_at=t(3), attributes={"pet": object()})
        )
    assert snapshot(engine) == before
    assert engine.store.get_member("cat") is None
