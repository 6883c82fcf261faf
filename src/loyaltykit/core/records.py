"""Customers and what they do: transactions, feedback and interactions.

All classes are frozen, slotted and keyword-only attrs classes. Change one with
:func:`attrs.evolve`. Conversion from rows and dicts happens at the edges (:mod:`loyaltykit.io`);
these classes only check that what they are given is valid, and raise
:class:`~loyaltykit.errors.InvalidValueError` naming the class, field, value and rule otherwise.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

from loyaltykit.core import _checks as c
from loyaltykit.errors import InvalidValueError

__all__ = [
    "Customer",
    "Feedback",
    "Interaction",
    "InteractionType",
    "LineItem",
    "Money",
    "Transaction",
    "TransactionKind",
]


def _currency(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not (isinstance(value, str) and len(value) == 3 and value.isalpha() and value.isupper()):
        raise InvalidValueError(
            type(inst).__name__,
            attribute.name,
            value,
            "must be an ISO 4217 code of three upper-case letters, e.g. 'USD'",
        )


@attrs.frozen(kw_only=True)
class Money:
    """An exact amount of money in one currency."""

    amount: Decimal = attrs.field(converter=c.to_decimal, validator=c.exact_decimal)
    """The amount, exact (a :class:`~decimal.Decimal`; ints and numeric strings are converted)."""
    currency: str = attrs.field(default="USD", validator=_currency)
    """ISO 4217 currency code, e.g. ``"USD"``."""

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


class TransactionKind(enum.StrEnum):
    """Whether a transaction is a purchase or the refund of an earlier purchase."""

    PURCHASE = "purchase"
    """Money paid by the customer."""
    REFUND = "refund"
    """Money returned to the customer for an earlier purchase (``refund_of`` names it)."""


class InteractionType(enum.StrEnum):
    """Common kinds of touchpoint. Any other non-empty string is accepted too."""

    VISIT = "visit"
    EMAIL_OPEN = "email_open"
    EMAIL_CLICK = "email_click"
    SUPPORT_CALL = "support_call"
    COMPLAINT = "complaint"
    APP_OPEN = "app_open"
    REFERRAL = "referral"


@attrs.frozen(kw_only=True)
class Customer:
    """A customer (a program member once enrolled)."""

    id: str = attrs.field(validator=c.non_empty_str)
    """The customer's id, unique within the data set."""
    joined_at: dt.datetime = attrs.field(validator=c.aware_datetime)
    """When the customer joined (timezone-aware)."""
    birthday: dt.date | None = attrs.field(default=None)
    """Date of birth, used by birthday bonuses; ``None`` when unknown."""
    referred_by: str | None = attrs.field(default=None, validator=c.optional_non_empty_str)
    """Id of the customer who referred this one, if any."""
    attributes: Mapping[str, Any] = attrs.field(factory=dict, converter=c.frozen_mapping)
    """Free attributes (region, segment, consent flags ...), read-only."""

    @birthday.validator
    def _check_birthday(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            raise InvalidValueError(
                "Customer", "birthday", value, "must be a datetime.date (no time of day) or None"
            )
        if value > self.joined_at.date():
            raise InvalidValueError(
                "Customer", "birthday", value, "must not be after joined_at; check the date"
            )

    @referred_by.validator
    def _check_referrer(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and value == self.id:
            raise InvalidValueError(
                "Customer", "referred_by", value, "a customer cannot refer themselves"
            )


@attrs.frozen(kw_only=True)
class LineItem:
    """One line of a transaction."""

    sku: str = attrs.field(validator=c.non_empty_str)
    """Stock-keeping unit of the product."""
    amount: Decimal = attrs.field(
        converter=c.to_decimal, validator=[c.exact_decimal, c.non_negative]
    )
    """Exact amount of the line, in the transaction's currency (>= 0)."""
    quantity: int = attrs.field(default=1, validator=[c.int_not_bool, c.positive])
    """Number of units (> 0)."""
    category: str | None = attrs.field(default=None, validator=c.optional_non_empty_str)
    """Product category, used by category multipliers."""


@attrs.frozen(kw_only=True)
class Transaction:
    """A purchase or a refund.

    A purchase's amount is positive or zero. A refund carries the (positive) amount returned and
    names the purchase it refunds in ``refund_of``.
    """

    id: str = attrs.field(validator=c.non_empty_str)
    """Transaction id, unique across purchases and refunds."""
    customer_id: str = attrs.field(validator=c.non_empty_str)
    """Id of the customer."""
    occurred_at: dt.datetime = attrs.field(validator=c.aware_datetime)
    """When it happened (timezone-aware)."""
    amount: Money = attrs.field()
    """Exact amount with currency; always >= 0 (a refund's direction is given by ``kind``)."""
    kind: TransactionKind = attrs.field(default=TransactionKind.PURCHASE, converter=TransactionKind)
    """Purchase or refund."""
    refund_of: str | None = attrs.field(default=None, validator=c.optional_non_empty_str)
    """For refunds: the id of the purchase being refunded. Must be ``None`` for purchases."""
    channel: str | None = attrs.field(default=None, validator=c.optional_non_empty_str)
    """Sales channel (``"web"``, ``"store"``, ``"app"`` ...)."""
    items: tuple[LineItem, ...] = attrs.field(factory=tuple, converter=c.to_tuple)
    """Optional line items; when given, their amounts add up to ``amount``."""

    @amount.validator
    def _check_amount(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, Money):
            raise InvalidValueError(
                "Transaction",
                "amount",
                value,
                "must be a Money, e.g. Money(amount='12.50', currency='USD')",
            )
        if value.amount < 0:
            raise InvalidValueError(
                "Transaction",
                "amount",
                value,
                "must be >= 0; record money returned as kind='refund' with a positive amount",
            )

    @refund_of.validator
    def _check_refund_of(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        if self.kind is TransactionKind.REFUND and value is None:
            raise InvalidValueError(
                "Transaction", "refund_of", value, "a refund must name the purchase it refunds"
            )
        if self.kind is TransactionKind.PURCHASE and value is not None:
            raise InvalidValueError(
                "Transaction",
                "refund_of",
                value,
                "only refunds may set refund_of; set kind='refund'",
            )
        if value is not None and value == self.id:
            raise InvalidValueError(
                "Transaction", "refund_of", value, "a transaction cannot refund itself"
            )

    @items.validator
    def _check_items(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        for i, item in enumerate(value):
            if not isinstance(item, LineItem):
                raise InvalidValueError("Transaction", f"items[{i}]", item, "must be a LineItem")
        if value:
            total = sum((item.amount for item in value), Decimal(0))
            if total != self.amount.amount:
                raise InvalidValueError(
                    "Transaction",
                    "items",
                    f"sum {total}",
                    f"line amounts must add up to the transaction amount {self.amount.amount}",
                )

    @property
    def signed_amount(self) -> Decimal:
        """The amount with its sign: positive for purchases, negative for refunds."""
        return -self.amount.amount if self.kind is TransactionKind.REFUND else self.amount.amount


@attrs.frozen(kw_only=True)
class Feedback:
    """A survey answer: a Net Promoter Score rating and/or a CSAT rating."""

    customer_id: str = attrs.field(validator=c.non_empty_str)
    """Id of the customer who answered."""
    answered_at: dt.datetime = attrs.field(validator=c.aware_datetime)
    """When the answer was given (timezone-aware)."""
    nps: int | None = attrs.field(default=None, validator=c.in_range(0, 10))
    """"How likely are you to recommend us?" from 0 to 10, or ``None``."""
    csat: int | None = attrs.field(default=None, validator=c.in_range(1, 5))
    """Satisfaction from 1 (very unsatisfied) to 5 (very satisfied), or ``None``."""
    comment: str | None = attrs.field(default=None)
    """Free-text comment."""
    channel: str | None = attrs.field(default=None, validator=c.optional_non_empty_str)
    """Where the survey was answered."""

    def __attrs_post_init__(self) -> None:
        if self.nps is None and self.csat is None:
            raise InvalidValueError(
                "Feedback", "nps", None, "give an nps (0-10), a csat (1-5), or both"
            )


@attrs.frozen(kw_only=True)
class Interaction:
    """A touchpoint between the customer and the business."""

    customer_id: str = attrs.field(validator=c.non_empty_str)
    """Id of the customer."""
    occurred_at: dt.datetime = attrs.field(validator=c.aware_datetime)
    """When it happened (timezone-aware)."""
    channel: str = attrs.field(validator=c.non_empty_str)
    """Channel of the touchpoint (``"email"``, ``"web"``, ``"store"``, ``"phone"`` ...)."""
    type: str = attrs.field(validator=c.non_empty_str)
    """Kind of touchpoint; see :class:`InteractionType` for the common ones."""
