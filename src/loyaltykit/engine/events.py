"""Typed events the engine processes, and their JSON-lines form.

Every event carries an ``event_id`` (the idempotency key), a ``member_id`` and a timezone-aware
``occurred_at``. :meth:`payload` gives the canonical JSON-able dict whose sha256 is compared when
an id is delivered again. One JSON object per line reads back with :func:`parse_event`::

    {"type": "purchase", "event_id": "e-1", "member_id": "m-1",
     "occurred_at": "2025-03-01T10:00:00+00:00", "transaction_id": "t-1",
     "amount": "12.50", "currency": "USD"}

Types: ``enroll``, ``purchase``, ``refund``, ``redeem``, ``adjust``, ``assign_tier``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import attrs

from loyaltykit.core import _checks as c
from loyaltykit.core.records import LineItem
from loyaltykit.engine._iso import iso
from loyaltykit.errors import InvalidValueError, LedgerError

__all__ = [
    "EVENT_TYPES",
    "Adjust",
    "AssignTier",
    "Enroll",
    "Event",
    "EventError",
    "Purchase",
    "Redeem",
    "Refund",
    "event_from_json",
    "parse_event",
    "read_events",
]


class EventError(LedgerError, ValueError):
    """An event is malformed (a missing or bad field); nothing was written.

    :param where: where the event came from (``"events.jsonl line 12"``), or ``""``.
    :param field: the offending field.
    :param value: its value.
    :param rule: what is expected, phrased as the fix.
    """

    def __init__(self, where: str, field: str, value: Any, rule: str) -> None:
        self.where = where
        self.field = field
        self.value = value
        self.rule = rule
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}event field {field!r} = {value!r}: {rule}")


def _money(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    c.exact_decimal(inst, attribute, value)
    if value < 0:
        raise InvalidValueError(type(inst).__name__, attribute.name, value, "must be >= 0")


def _currency(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not (isinstance(value, str) and len(value) == 3 and value.isalpha() and value.isupper()):
        raise InvalidValueError(
            type(inst).__name__, attribute.name, value, "must be an ISO 4217 code such as 'USD'"
        )


_iso = iso


@attrs.frozen(kw_only=True)
class _Base:
    event_id: str = attrs.field(validator=c.non_empty_str)
    """Idempotency key: unique per event; re-deliveries reuse it."""
    member_id: str = attrs.field(validator=c.non_empty_str)
    """The member the event is about."""
    occurred_at: dt.datetime = attrs.field(validator=c.aware_datetime)
    """Business time (timezone-aware)."""

    type: ClassVar[str] = ""

    def _extra(self) -> dict[str, Any]:
        return {}

    def payload(self) -> dict[str, Any]:
        """Canonical JSON-able dict of the event (what the idempotency fingerprint covers)."""
        base: dict[str, Any] = {
            "type": self.type,
            "event_id": self.event_id,
            "member_id": self.member_id,
            "occurred_at": _iso(self.occurred_at),
        }
        base.update(self._extra())
        return base

    def to_json(self) -> str:
        """One JSON line that :func:`event_from_json` reads back to an equal event."""
        return json.dumps(self.payload(), sort_keys=True)


@attrs.frozen(kw_only=True)
class Enroll(_Base):
    """A customer joins the program."""

    type: ClassVar[str] = "enroll"
    birthday: dt.date | None = attrs.field(default=None)
    """Date of birth (birthday bonuses)."""
    referred_by: str | None = attrs.field(default=None, validator=c.optional_non_empty_str)
    """The referring member."""
    attributes: Mapping[str, Any] = attrs.field(factory=dict, converter=c.frozen_mapping)
    """Free JSON-able attributes."""

    @birthday.validator
    def _check_birthday(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and (isinstance(value, dt.datetime) or not isinstance(value, dt.date)):
            raise InvalidValueError("Enroll", "birthday", value, "must be a datetime.date or None")

    @referred_by.validator
    def _check_referrer(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and value == self.member_id:
            raise InvalidValueError(
                "Enroll", "referred_by", value, "a member cannot refer themselves"
            )

    def _extra(self) -> dict[str, Any]:
        return {
            "birthday": None if self.birthday is None else self.birthday.isoformat(),
            "referred_by": self.referred_by,
            "attributes": dict(self.attributes),
        }


@attrs.frozen(kw_only=True)
class Purchase(_Base):
    """A purchase that earns points. ``items`` are optional :class:`~loyaltykit.LineItem` lines
    whose amounts add up to ``amount`` (category and SKU multipliers look at them)."""

    type: ClassVar[str] = "purchase"
    transaction_id: str = attrs.field(validator=c.non_empty_str)
    """The order's id: one order earns once, whatever the event id."""
    amount: Decimal = attrs.field(converter=c.to_decimal, validator=_money)
    """Amount paid (>= 0, exact)."""
    currency: str = attrs.field(default="USD", validator=_currency)
    """ISO currency code; must be the program's."""
    channel: str | None = attrs.field(default=None, validator=c.optional_non_empty_str)
    """Sales channel."""
    items: tuple[LineItem, ...] = attrs.field(factory=tuple, converter=c.to_tuple)
    """Line items (their amounts add up to :attr:`amount`)."""

    @items.validator
    def _check_items(self, attribute: attrs.Attribute[Any], value: tuple[Any, ...]) -> None:
        for i, item in enumerate(value):
            if not isinstance(item, LineItem):
                raise InvalidValueError("Purchase", f"items[{i}]", item, "must be a LineItem")
        if value:
            total = sum((item.amount for item in value), Decimal(0))
            if total != self.amount:
                raise InvalidValueError(
                    "Purchase",
                    "items",
                    f"sum {total}",
                    f"line amounts must add up to the purchase amount {self.amount}",
                )

    def _extra(self) -> dict[str, Any]:
        return {
            "transaction_id": self.transaction_id,
            "amount": str(self.amount),
            "currency": self.currency,
            "channel": self.channel,
            "items": [
                {
                    "sku": i.sku,
                    "amount": str(i.amount),
                    "quantity": i.quantity,
                    "category": i.category,
                }
                for i in self.items
            ],
        }


@attrs.frozen(kw_only=True)
class Refund(_Base):
    """Money returned for (part of) an earlier purchase: its points are reversed in proportion."""

    type: ClassVar[str] = "refund"
    transaction_id: str = attrs.field(validator=c.non_empty_str)
    """The refund's own id (one refund reverses once, whatever the event id)."""
    refund_of: str = attrs.field(validator=c.non_empty_str)
    """The purchase's transaction id."""
    amount: Decimal = attrs.field(converter=c.to_decimal, validator=_money)
    """Amount returned (> 0, at most what is left of the purchase)."""
    currency: str = attrs.field(default="USD", validator=_currency)
    """ISO currency code."""

    @refund_of.validator
    def _check_refund_of(self, attribute: attrs.Attribute[Any], value: str) -> None:
        if value == self.transaction_id:
            raise InvalidValueError(
                "Refund", "refund_of", value, "a refund cannot refund itself; name the purchase"
            )

    @amount.validator
    def _check_positive(self, attribute: attrs.Attribute[Any], value: Decimal) -> None:
        if value == 0:
            raise InvalidValueError("Refund", "amount", value, "must be > 0")

    def _extra(self) -> dict[str, Any]:
        return {
            "transaction_id": self.transaction_id,
            "refund_of": self.refund_of,
            "amount": str(self.amount),
            "currency": self.currency,
        }


@attrs.frozen(kw_only=True)
class Redeem(_Base):
    """Spend points: on a catalogue reward (``reward_id``) or a plain number of ``points``."""

    type: ClassVar[str] = "redeem"
    reward_id: str | None = attrs.field(default=None, validator=c.optional_non_empty_str)
    """Catalogue reward to issue (its cost is spent)."""
    points: int | None = attrs.field(default=None)
    """Points to spend when no reward is named (> 0)."""
    reason: str | None = attrs.field(default=None)
    """Free note kept on the entries."""

    def __attrs_post_init__(self) -> None:
        if (self.reward_id is None) == (self.points is None):
            raise InvalidValueError(
                "Redeem", "reward_id", self.reward_id, "give either reward_id or points, not both"
            )
        if self.points is not None and (
            isinstance(self.points, bool) or not isinstance(self.points, int) or self.points <= 0
        ):
            raise InvalidValueError("Redeem", "points", self.points, "must be a whole number > 0")

    def _extra(self) -> dict[str, Any]:
        return {"reward_id": self.reward_id, "points": self.points, "reason": self.reason}


@attrs.frozen(kw_only=True)
class Adjust(_Base):
    """A manual change of points, with a reason (positive: a new batch; negative: spent like a
    redemption, never below zero)."""

    type: ClassVar[str] = "adjust"
    points: int = attrs.field(validator=c.int_not_bool)
    """Signed change (not 0)."""
    reason: str = attrs.field(validator=c.non_empty_str)
    """Why: required, kept on the entry."""

    @points.validator
    def _check_points(self, attribute: attrs.Attribute[Any], value: int) -> None:
        if value == 0:
            raise InvalidValueError("Adjust", "points", value, "must not be 0")

    def _extra(self) -> dict[str, Any]:
        return {"points": self.points, "reason": self.reason}


@attrs.frozen(kw_only=True)
class AssignTier(_Base):
    """Manually assign a tier as a floor (``tier=None`` removes the floor)."""

    type: ClassVar[str] = "assign_tier"
    tier: str | None = attrs.field(default=None, validator=c.optional_non_empty_str)
    """The floor tier, or ``None`` to remove the floor."""
    reason: str = attrs.field(default="manual", validator=c.non_empty_str)
    """Why."""

    def _extra(self) -> dict[str, Any]:
        return {"tier": self.tier, "reason": self.reason}


Event = Enroll | Purchase | Refund | Redeem | Adjust | AssignTier
"""Any event the engine processes."""

EVENT_TYPES: dict[str, type[_Base]] = {
    cls.type: cls for cls in (Enroll, Purchase, Refund, Redeem, Adjust, AssignTier)
}
"""Event classes by their JSON ``type``."""

_FIELDS: dict[str, dict[str, str]] = {
    name: {f.name: "" for f in attrs.fields(cls)} for name, cls in EVENT_TYPES.items()
}


def _datetime(where: str, field: str, value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise EventError(
                where, field, value, "must be an ISO 8601 time such as 2025-03-01T10:00:00+00:00"
            ) from None
    else:
        raise EventError(where, field, value, "must be an ISO 8601 time string")
    if parsed.tzinfo is None:
        raise EventError(
            where, field, value, "must carry a UTC offset, e.g. 2025-03-01T10:00:00+00:00"
        )
    return parsed


def _decimal(where: str, field: str, value: Any) -> Decimal:
    if isinstance(value, bool | float):
        raise EventError(
            where, field, value, 'must be exact: write money as a string such as "12.50"'
        )
    try:
        d = Decimal(str(value)) if isinstance(value, int | str | Decimal) else None
    except InvalidOperation:
        d = None
    if d is None or not d.is_finite():
        raise EventError(where, field, value, 'must be a decimal number such as "12.50"')
    return d


def parse_event(data: Mapping[str, Any], *, where: str = "") -> Event:
    """Build a typed event from a JSON object (the keys of :meth:`payload`).

    :raises EventError: naming ``where``, the field, the value and the fix.
    """
    if not isinstance(data, Mapping):
        raise EventError(where, "<event>", data, "must be a JSON object")
    kind = data.get("type")
    if kind not in EVENT_TYPES:
        raise EventError(where, "type", kind, f"must be one of {', '.join(sorted(EVENT_TYPES))}")
    cls = EVENT_TYPES[kind]
    allowed = set(_FIELDS[kind]) | {"type"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise EventError(
            where,
            unknown[0],
            data[unknown[0]],
            f"unknown field for a {kind} event; known: {', '.join(sorted(allowed))}",
        )
    kwargs: dict[str, Any] = {k: v for k, v in data.items() if k != "type"}
    for required in ("event_id", "member_id", "occurred_at"):
        if required not in kwargs:
            raise EventError(where, required, None, "is required")
    kwargs["occurred_at"] = _datetime(where, "occurred_at", kwargs["occurred_at"])
    if "amount" in kwargs:
        kwargs["amount"] = _decimal(where, "amount", kwargs["amount"])
    if kwargs.get("birthday") is not None:
        try:
            kwargs["birthday"] = dt.date.fromisoformat(str(kwargs["birthday"]))
        except ValueError:
            raise EventError(
                where, "birthday", kwargs["birthday"], "must be a date YYYY-MM-DD"
            ) from None
    if "items" in kwargs:
        raw_items = kwargs["items"] or []
        if not isinstance(raw_items, list):
            raise EventError(where, "items", raw_items, "must be a list of line objects")
        items = []
        for i, raw in enumerate(raw_items):
            if not isinstance(raw, Mapping):
                raise EventError(where, f"items[{i}]", raw, "must be an object with sku and amount")
            line = dict(raw)
            if "amount" in line:
                line["amount"] = _decimal(where, f"items[{i}].amount", line["amount"])
            try:
                items.append(LineItem(**line))
            except InvalidValueError as exc:
                raise EventError(where, f"items[{i}].{exc.field}", exc.value, exc.rule) from None
            except TypeError as exc:
                raise EventError(where, f"items[{i}]", raw, f"bad line item: {exc}") from None
        kwargs["items"] = tuple(items)
    try:
        return cls(**kwargs)  # type: ignore[return-value]
    except InvalidValueError as exc:
        raise EventError(where, exc.field, exc.value, exc.rule) from None
    except TypeError as exc:
        raise EventError(where, "<event>", dict(data), f"missing or bad fields: {exc}") from None


def event_from_json(line: str, *, where: str = "") -> Event:
    """Parse one JSON line into an event (see :func:`parse_event`)."""
    try:
        data = json.loads(line, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise EventError(
            where, "<line>", line.strip()[:80], f"is not valid JSON ({exc.msg})"
        ) from None
    return parse_event(data, where=where)


def read_events(lines: Iterable[str], *, source: str = "events") -> Iterator[Event]:
    """Parse JSON lines lazily; blank lines are skipped; errors name ``source`` and the line."""
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield event_from_json(line, where=f"{source} line {number}")
