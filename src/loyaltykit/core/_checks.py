"""Validators and converters shared by the core classes.

Each validator raises :class:`~loyaltykit.errors.InvalidValueError` naming the class, the field,
the value and the rule, so that the message says what to fix.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

import attrs

from loyaltykit.errors import InvalidValueError

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def _fail(inst: Any, attribute: attrs.Attribute[Any], value: Any, rule: str) -> None:
    raise InvalidValueError(type(inst).__name__, attribute.name, value, rule)


def aware_datetime(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """The value is a timezone-aware :class:`datetime.datetime`."""
    if not isinstance(value, dt.datetime):
        _fail(inst, attribute, value, "must be a datetime.datetime")
    elif value.tzinfo is None or value.utcoffset() is None:
        _fail(
            inst,
            attribute,
            value,
            "must be timezone-aware; attach a tzinfo, e.g. datetime(..., tzinfo=datetime.UTC)",
        )


def optional_aware_datetime(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """``None`` or a timezone-aware datetime."""
    if value is not None:
        aware_datetime(inst, attribute, value)


def non_empty_str(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """The value is a string with at least one non-blank character."""
    if not isinstance(value, str) or not value.strip():
        _fail(inst, attribute, value, "must be a non-empty string")


def optional_non_empty_str(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """``None`` or a non-empty string."""
    if value is not None:
        non_empty_str(inst, attribute, value)


def non_negative(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """The value is a number >= 0."""
    if value < 0:
        _fail(inst, attribute, value, "must be >= 0")


def positive(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """The value is a number > 0."""
    if value <= 0:
        _fail(inst, attribute, value, "must be > 0")


def int_not_bool(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """The value is an ``int`` (not a bool, not a float)."""
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(inst, attribute, value, "must be an int (points and counts are whole numbers)")


def in_range(low: int, high: int) -> Validator:
    """The value is an int between ``low`` and ``high`` inclusive."""

    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            _fail(inst, attribute, value, f"must be a whole number from {low} to {high}")

    return check


def one_of(*choices: str) -> Validator:
    """The value is one of ``choices``."""

    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value not in choices:
            _fail(inst, attribute, value, f"must be one of {', '.join(map(repr, choices))}")

    return check


def to_decimal(value: Any) -> Any:
    """Convert ints and numeric strings to :class:`~decimal.Decimal`; leave others for the validator.

    Floats are refused by :func:`exact_decimal` because binary floats cannot hold most currency
    amounts exactly.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            return value
    return value


def exact_decimal(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """The value is a finite :class:`~decimal.Decimal`."""
    if isinstance(value, float):
        _fail(
            inst,
            attribute,
            value,
            "must be exact: pass a Decimal, an int or a string such as '12.30', not a float",
        )
    elif not isinstance(value, Decimal) or not value.is_finite():
        _fail(inst, attribute, value, "must be a finite Decimal, int or numeric string")


def frozen_mapping(value: Any) -> Mapping[str, Any]:
    """Copy a mapping into a read-only mapping (``None`` becomes empty)."""
    if value is None:
        return MappingProxyType({})
    if isinstance(value, MappingProxyType):
        return value
    return MappingProxyType(dict(value))


def to_tuple(value: Any) -> tuple[Any, ...]:
    """Copy an iterable into a tuple (``None`` becomes empty)."""
    if value is None:
        return ()
    return tuple(value)
