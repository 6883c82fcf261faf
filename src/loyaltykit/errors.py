"""The exception family of loyaltykit.

Every error the library raises on purpose is a :class:`LoyaltyKitError`. Catch that one class to
handle them all, or a subclass to handle one kind. Each message names *where* the problem is (the
class and field, the row and column, or the configuration key), *what* the bad value was, and *how*
to fix it.

Errors about bad values also derive from :class:`ValueError` (and lookups of unknown names from
:class:`KeyError`), so code written against the standard exceptions keeps working.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "ConfigError",
    "ConvergenceError",
    "DataValidationError",
    "DuplicateNameError",
    "IdempotencyConflictError",
    "InsufficientPointsError",
    "InvalidValueError",
    "LedgerError",
    "LoyaltyKitError",
    "ModelInputError",
    "NotFittedError",
    "PluginError",
    "RowProblem",
    "StoreError",
    "UnknownNameError",
]


class LoyaltyKitError(Exception):
    """Base class of every error raised by loyaltykit on purpose."""


# --------------------------------------------------------------------------------------------
# values and data
# --------------------------------------------------------------------------------------------


class InvalidValueError(LoyaltyKitError, ValueError):
    """A value given to a loyaltykit class or function breaks one of its rules.

    :param owner: the class or function that refused the value (``"Transaction"``).
    :param field: the field or argument name (``"occurred_at"``).
    :param value: the value that was refused.
    :param rule: the rule it broke, phrased so that it tells the fix
        (``"must be timezone-aware; attach a tzinfo, e.g. datetime(..., tzinfo=UTC)"``).
    """

    def __init__(self, owner: str, field: str, value: Any, rule: str) -> None:
        self.owner = owner
        self.field = field
        self.value = value
        self.rule = rule
        super().__init__(f"{owner}.{field}={value!r}: {rule}")


class RowProblem:
    """One offending cell of a frame: row number (0-based), column, value and reason."""

    __slots__ = ("column", "reason", "row", "value")

    def __init__(self, row: int, column: str, value: Any, reason: str) -> None:
        self.row = row
        self.column = column
        self.value = value
        self.reason = reason

    def __repr__(self) -> str:
        return f"RowProblem(row={self.row}, column={self.column!r}, value={self.value!r}, reason={self.reason!r})"

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column!r}, value {self.value!r}: {self.reason}"


class DataValidationError(LoyaltyKitError, ValueError):
    """A frame failed validation.

    :param what: what was being read (``"transactions"``).
    :param problems: the first offending cells, in row order.
    :param total: how many offending cells there are in all (may exceed ``len(problems)``).
    :param hint: how to fix or get past it (e.g. ``"pass strict=False to get the rejected rows"``).
    """

    def __init__(
        self, what: str, problems: Sequence[RowProblem], total: int, hint: str = ""
    ) -> None:
        self.what = what
        self.problems = list(problems)
        self.total = total
        self.hint = hint
        shown = "\n".join(f"  - {p}" for p in self.problems)
        more = (
            f"\n  ... and {total - len(self.problems)} more" if total > len(self.problems) else ""
        )
        tail = f"\n{hint}" if hint else ""
        super().__init__(f"{what}: {total} invalid value(s)\n{shown}{more}{tail}")


class ConfigError(LoyaltyKitError, ValueError):
    """A configuration (for example a program TOML file) is invalid.

    :param path: dotted key path of the offending entry (``"tiers[1].threshold"``).
    :param value: the offending value.
    :param rule: what is expected, phrased as the fix.
    :param source: the file or object the configuration came from, if known.
    """

    def __init__(self, path: str, value: Any, rule: str, source: str | None = None) -> None:
        self.path = path
        self.value = value
        self.rule = rule
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{path} = {value!r}: {rule}")


# --------------------------------------------------------------------------------------------
# plugins and registries
# --------------------------------------------------------------------------------------------


class PluginError(LoyaltyKitError):
    """A plugin could not be loaded, registered or called."""


class DuplicateNameError(PluginError, ValueError):
    """A registry already holds an entry of that name."""


class UnknownNameError(PluginError, KeyError):
    """A registry has no entry of the requested name."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else ""


# --------------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------------


class NotFittedError(LoyaltyKitError, AttributeError):
    """A model was asked for predictions or fitted attributes before ``fit``."""


class ModelInputError(LoyaltyKitError, ValueError):
    """The data given to a model does not fit its assumptions (columns, ranges, units)."""


class ConvergenceError(LoyaltyKitError, RuntimeError):
    """A maximum-likelihood fit failed; the message says why and what to try."""


# --------------------------------------------------------------------------------------------
# program engine
# --------------------------------------------------------------------------------------------


class LedgerError(LoyaltyKitError):
    """An event cannot be applied to the points ledger; nothing was written."""


class InsufficientPointsError(LedgerError, ValueError):
    """A redemption or debit asks for more points than the member has available."""


class IdempotencyConflictError(LedgerError, ValueError):
    """An event id was seen before with a different payload."""


class StoreError(LoyaltyKitError):
    """A ledger store failed (schema version, connection, migration)."""
