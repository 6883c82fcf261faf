"""Ledger entries and the events the program engine reports.

The points ledger is append-only: every change of a member's points is one :class:`LedgerEntry`.
A member's balance is the sum of the ``points`` of their entries. These value objects are what the
event hooks (:mod:`loyaltykit.hookspecs`) hand to plugins after a write has committed.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from typing import Any

import attrs

from loyaltykit.core import _checks as c

__all__ = ["EntryKind", "LedgerEntry", "RewardIssue", "TierChange"]


class EntryKind(enum.StrEnum):
    """What a ledger entry records."""

    EARN = "earn"
    """Points earned: opens a batch (positive points)."""
    REDEEM = "redeem"
    """Points spent on a reward (negative points), drawn from batches soonest-expiring first."""
    REVERSE = "reverse"
    """Points taken back because the purchase that earned them was refunded (negative)."""
    EXPIRE = "expire"
    """Points of a batch that expired unused (negative)."""
    ADJUST = "adjust"
    """Manual adjustment with a reason (either sign)."""
    DEBT = "debt"
    """Points owed: a reversal that exceeded what was left, settled from later earnings.

    Negative when the debt is incurred; positive (next to a ``settle`` entry) when later earnings
    pay it back, so that minus the sum of a member's ``debt`` entries is what they still owe."""
    SETTLE = "settle"
    """Later earnings applied to an outstanding debt: taken from the new batch (negative)."""


@attrs.frozen(kw_only=True)
class LedgerEntry:
    """One append-only line of the points ledger."""

    id: str = attrs.field(validator=c.non_empty_str)
    """Unique id of the entry."""
    member_id: str = attrs.field(validator=c.non_empty_str)
    """The member whose points change."""
    event_id: str = attrs.field(validator=c.non_empty_str)
    """Id of the event that caused the entry (the idempotency key)."""
    kind: EntryKind = attrs.field(converter=EntryKind)
    """What the entry records."""
    points: int = attrs.field(validator=c.int_not_bool)
    """Signed change of the balance, in whole points."""
    occurred_at: dt.datetime = attrs.field(validator=c.aware_datetime)
    """Business time of the change (timezone-aware)."""
    batch_id: str | None = attrs.field(default=None, validator=c.optional_non_empty_str)
    """The earn batch this entry opens or draws from, if any."""
    pending_until: dt.datetime | None = attrs.field(
        default=None, validator=c.optional_aware_datetime
    )
    """For earn entries: the points are usable only from this time on."""
    expires_at: dt.datetime | None = attrs.field(default=None, validator=c.optional_aware_datetime)
    """For earn entries: when what is left of the batch expires."""
    reason: str | None = attrs.field(default=None)
    """Why (required for manual adjustments)."""
    meta: Mapping[str, Any] = attrs.field(factory=dict, converter=c.frozen_mapping)
    """Extra detail: transaction id, rule names, reward id ... (read-only)."""


@attrs.frozen(kw_only=True)
class TierChange:
    """A member moved from one tier to another."""

    member_id: str = attrs.field(validator=c.non_empty_str)
    """The member."""
    event_id: str = attrs.field(validator=c.non_empty_str)
    """The event that caused the change."""
    from_tier: str | None = attrs.field()
    """Tier before the change (``None`` for a new member)."""
    to_tier: str = attrs.field(validator=c.non_empty_str)
    """Tier after the change."""
    occurred_at: dt.datetime = attrs.field(validator=c.aware_datetime)
    """When the change takes effect (timezone-aware)."""
    reason: str = attrs.field(default="")
    """Why: ``"qualified"``, ``"downgrade"``, ``"manual"`` ..."""


@attrs.frozen(kw_only=True)
class RewardIssue:
    """A reward handed to a member in exchange for points."""

    member_id: str = attrs.field(validator=c.non_empty_str)
    """The member."""
    event_id: str = attrs.field(validator=c.non_empty_str)
    """The redemption event."""
    reward_id: str = attrs.field(validator=c.non_empty_str)
    """Id of the reward in the program's catalogue."""
    points: int = attrs.field(validator=[c.int_not_bool, c.non_negative])
    """Points spent on it."""
    occurred_at: dt.datetime = attrs.field(validator=c.aware_datetime)
    """When it was issued."""
    valid_until: dt.datetime | None = attrs.field(default=None, validator=c.optional_aware_datetime)
    """When the reward stops being valid, if it does."""
