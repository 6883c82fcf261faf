"""loyaltykit-engagement: an example third-party plugin for loyaltykit.

It provides two things, through the ``loyaltykit`` entry point named ``engagement``:

* a **scoring model** named ``"engagement"``
  (:class:`~loyaltykit_engagement.model.EngagementModel`): customers scored by the recency and
  intensity of their purchases and touchpoints;
* **event hooks** that turn tier changes, expired points and issued rewards into member
  notifications collected in an :class:`~loyaltykit_engagement.outbox.Outbox`.

Installed, the package is found and loaded by loyaltykit on first use; nothing else is needed::

    pip install loyaltykit-engagement
    loyaltykit plugins          # lists "engagement"

The hook implementations below act on the module-level :data:`default_outbox`. Set
``LOYALTYKIT_ENGAGEMENT_OUTBOX=/path/outbox.jsonl`` to also append every notification to that
file, or register an :class:`EngagementPlugin` with its own outbox by hand instead of the entry
point (tests do this).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from loyaltykit import hookimpl
from loyaltykit_engagement.model import (
    DEFAULT_WEIGHTS,
    EngagementModel,
    engagement_events,
    engagement_features,
)
from loyaltykit_engagement.outbox import (
    Notification,
    Outbox,
    notification_for_expiry,
    notification_for_reward,
    notification_for_tier_change,
)

if TYPE_CHECKING:
    from loyaltykit.core.ledger import LedgerEntry, RewardIssue, TierChange
    from loyaltykit.plugins import Register

__all__ = [
    "DEFAULT_WEIGHTS",
    "OUTBOX_ENV",
    "EngagementModel",
    "EngagementPlugin",
    "Notification",
    "Outbox",
    "default_outbox",
    "engagement_events",
    "engagement_features",
]

__version__ = "0.1.0"

OUTBOX_ENV = "LOYALTYKIT_ENGAGEMENT_OUTBOX"
"""Environment variable naming a JSON-lines file the module-level outbox appends to."""


class EngagementPlugin:
    """The plugin as an object with its own outbox (register it by hand, e.g. in tests).

    :param outbox: where notifications go; a new in-memory :class:`Outbox` by default.
    """

    def __init__(self, outbox: Outbox | None = None) -> None:
        self.outbox = Outbox() if outbox is None else outbox

    @hookimpl
    def loyaltykit_register_scoring_models(self, register: Register) -> None:
        """Register the ``"engagement"`` scoring model."""
        register(
            "engagement",
            EngagementModel,
            description="recency and intensity of purchases and touchpoints (0-100, levels)",
        )

    @hookimpl
    def loyaltykit_tier_changed(self, change: TierChange) -> None:
        """Queue a welcome, upgrade or downgrade message."""
        self.outbox.add(notification_for_tier_change(change))

    @hookimpl
    def loyaltykit_points_expired(self, member_id: str, entries: Sequence[LedgerEntry]) -> None:
        """Queue a message saying how many points expired."""
        notification = notification_for_expiry(member_id, entries)
        if notification is not None:
            self.outbox.add(notification)

    @hookimpl
    def loyaltykit_reward_issued(self, issue: RewardIssue) -> None:
        """Queue a message that the reward is ready."""
        self.outbox.add(notification_for_reward(issue))


default_outbox = Outbox(os.environ.get(OUTBOX_ENV) or None)
"""The outbox of the entry-point plugin (the module itself)."""

_default = EngagementPlugin(default_outbox)

# The module is what the entry point registers: expose the hooks as module functions.


@hookimpl
def loyaltykit_register_scoring_models(register: Register) -> None:
    """Register the ``"engagement"`` scoring model."""
    _default.loyaltykit_register_scoring_models(register)


@hookimpl
def loyaltykit_tier_changed(change: TierChange) -> None:
    """Queue a welcome, upgrade or downgrade message in :data:`default_outbox`."""
    _default.loyaltykit_tier_changed(change)


@hookimpl
def loyaltykit_points_expired(member_id: str, entries: Sequence[LedgerEntry]) -> None:
    """Queue a message in :data:`default_outbox` saying how many points expired."""
    _default.loyaltykit_points_expired(member_id, entries)


@hookimpl
def loyaltykit_reward_issued(issue: RewardIssue) -> None:
    """Queue a message in :data:`default_outbox` that the reward is ready."""
    _default.loyaltykit_reward_issued(issue)
