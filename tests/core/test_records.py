"""The core value objects: frozen, keyword-only, and refusing invalid values with clear errors."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyaltykit import (
    Customer,
    Feedback,
    Interaction,
    LedgerEntry,
    LineItem,
    LoyaltyKitError,
    Money,
    Transaction,
    TransactionKind,
)
from loyaltykit.errors import InvalidValueError

T0 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


def purchase(**kw: object) -> Transaction:
    base: dict[str, object] = {
        "id": "t1",
        "customer_id": "c1",
        "occurred_at": T0,
        "amount": Money(amount="19.99", currency="EUR"),
    }
    base.update(kw)
    return Transaction(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "cls", [Customer, Transaction, Money, LineItem, Feedback, Interaction, LedgerEntry]
)
def test_classes_are_frozen_slotted_keyword_only(cls: type) -> None:
    assert attrs.has(cls)
    assert "__slots__" in vars(cls)
    assert all(a.kw_only for a in attrs.fields(cls))


def test_frozen() -> None:
    t = purchase()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        t.id = "other"  # type: ignore[misc]
    assert attrs.evolve(t, id="t2").id == "t2"


def test_positional_arguments_are_refused() -> None:
    with pytest.raises(TypeError):
        Money("1.00", "USD")  # type: ignore[misc]


def test_money_is_exact() -> None:
    assert Money(amount="0.10").amount + Money(amount="0.20").amount == Decimal("0.30")
    assert Money(amount=3).amount == Decimal(3)


@pytest.mark.parametrize(
    ("kwargs", "field", "fragment"),
    [
        ({"amount": 0.1}, "amount", "not a float"),
        ({"amount": "abc"}, "amount", "Decimal"),
        ({"amount": Decimal("NaN")}, "amount", "finite"),
        ({"amount": "1", "currency": "usd"}, "currency", "ISO 4217"),
        ({"amount": "1", "currency": "EURO"}, "currency", "ISO 4217"),
    ],
)
def test_money_refuses(kwargs: dict[str, object], field: str, fragment: str) -> None:
    with pytest.raises(InvalidValueError) as info:
        Money(**kwargs)  # type: ignore[arg-type]
    err = info.value
    assert isinstance(err, LoyaltyKitError)
    assert isinstance(err, ValueError)
    assert (err.owner, err.field) == ("Money", field)
    assert fragment in str(err)
    assert "Money." + field in str(err)


BAD_TRANSACTIONS = [
    ({"id": ""}, "id", "non-empty"),
    ({"customer_id": "  "}, "customer_id", "non-empty"),
    ({"occurred_at": dt.datetime(2026, 3, 1)}, "occurred_at", "timezone-aware"),
    ({"occurred_at": "2026-03-01"}, "occurred_at", "datetime"),
    ({"amount": Money(amount="-1")}, "amount", "kind='refund'"),
    ({"amount": Decimal("5")}, "amount", "must be a Money"),
    ({"kind": "refund"}, "refund_of", "must name the purchase"),
    ({"refund_of": "t0"}, "refund_of", "only refunds"),
    ({"kind": "refund", "refund_of": "t1"}, "refund_of", "cannot refund itself"),
    ({"channel": ""}, "channel", "non-empty"),
    (
        {"items": [LineItem(sku="a", amount="10.00"), LineItem(sku="b", amount="9.98")]},
        "items",
        "add up",
    ),
    ({"items": ["sku-1"]}, "items[0]", "LineItem"),
]


@pytest.mark.parametrize(("kwargs", "field", "fragment"), BAD_TRANSACTIONS)
def test_transaction_refuses(kwargs: dict[str, object], field: str, fragment: str) -> None:
    with pytest.raises(InvalidValueError) as info:
        purchase(**kwargs)
    assert info.value.field == field
    assert info.value.owner == "Transaction"
    assert fragment in str(info.value)


def test_kind_must_be_known() -> None:
    with pytest.raises(ValueError, match="'gift'"):
        purchase(kind="gift")


def test_refund_and_signed_amount() -> None:
    r = purchase(
        id="r1", kind="refund", refund_of="t1", amount=Money(amount="5.00", currency="EUR")
    )
    assert r.kind is TransactionKind.REFUND
    assert r.signed_amount == Decimal("-5.00")
    assert purchase().signed_amount == Decimal("19.99")


def test_line_items_add_up() -> None:
    t = purchase(
        items=[
            LineItem(sku="a", amount="10.00", category="books"),
            LineItem(sku="b", amount="9.99", quantity=3),
        ]
    )
    assert isinstance(t.items, tuple)
    assert sum(i.amount for i in t.items) == t.amount.amount


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"quantity": 0}, "quantity"),
        ({"quantity": 1.5}, "quantity"),
        ({"quantity": True}, "quantity"),
        ({"amount": "-2"}, "amount"),
        ({"sku": ""}, "sku"),
    ],
)
def test_line_item_refuses(kwargs: dict[str, object], field: str) -> None:
    base: dict[str, object] = {"sku": "s", "amount": "1.00"}
    base.update(kwargs)
    with pytest.raises(InvalidValueError) as info:
        LineItem(**base)  # type: ignore[arg-type]
    assert info.value.field == field


def test_customer() -> None:
    c = Customer(
        id="c1", joined_at=T0, birthday=dt.date(1990, 5, 17), attributes={"region": "north"}
    )
    assert c.attributes["region"] == "north"
    with pytest.raises(TypeError):
        c.attributes["region"] = "south"  # type: ignore[index]


@pytest.mark.parametrize(
    ("kwargs", "field", "fragment"),
    [
        ({"joined_at": dt.datetime(2026, 1, 1)}, "joined_at", "timezone-aware"),
        ({"birthday": dt.datetime(1990, 1, 1, tzinfo=dt.UTC)}, "birthday", "no time of day"),
        ({"birthday": dt.date(2027, 1, 1)}, "birthday", "after joined_at"),
        ({"referred_by": "c1"}, "referred_by", "themselves"),
        ({"id": ""}, "id", "non-empty"),
    ],
)
def test_customer_refuses(kwargs: dict[str, object], field: str, fragment: str) -> None:
    base: dict[str, object] = {"id": "c1", "joined_at": T0}
    base.update(kwargs)
    with pytest.raises(InvalidValueError) as info:
        Customer(**base)  # type: ignore[arg-type]
    assert info.value.field == field
    assert fragment in str(info.value)


def test_feedback() -> None:
    assert Feedback(customer_id="c", answered_at=T0, nps=10).csat is None
    with pytest.raises(InvalidValueError, match="0 to 10"):
        Feedback(customer_id="c", answered_at=T0, nps=11)
    with pytest.raises(InvalidValueError, match="1 to 5"):
        Feedback(customer_id="c", answered_at=T0, csat=0)
    with pytest.raises(InvalidValueError, match="give an nps"):
        Feedback(customer_id="c", answered_at=T0)


def test_interaction() -> None:
    i = Interaction(customer_id="c", occurred_at=T0, channel="email", type="email_open")
    assert i.type == "email_open"
    with pytest.raises(InvalidValueError):
        Interaction(customer_id="c", occurred_at=T0, channel="", type="visit")


def test_ledger_entry_points_are_ints() -> None:
    with pytest.raises(InvalidValueError, match="whole numbers"):
        LedgerEntry(id="e", member_id="m", event_id="ev", kind="earn", points=1.5, occurred_at=T0)  # type: ignore[arg-type]
    e = LedgerEntry(
        id="e",
        member_id="m",
        event_id="ev",
        kind="earn",
        points=10,
        occurred_at=T0,
        meta={"transaction_id": "t1"},
    )
    assert e.kind == "earn"


@given(
    cents=st.integers(min_value=0, max_value=10**12),
    offset=st.integers(min_value=-12 * 60, max_value=14 * 60),
)
def test_any_valid_purchase_is_accepted(cents: int, offset: int) -> None:
    tz = dt.timezone(dt.timedelta(minutes=offset))
    t = purchase(
        amount=Money(amount=Decimal(cents).scaleb(-2)),
        occurred_at=dt.datetime(2026, 1, 1, tzinfo=tz),
    )
    assert t.amount.amount * 100 == cents


@given(value=st.floats(allow_nan=True, allow_infinity=True))
def test_floats_never_become_money(value: float) -> None:
    with pytest.raises(InvalidValueError):
        Money(amount=value)
