"""Member notifications produced from the program engine's events.

The engine calls the event hooks after each write has committed (see
:mod:`loyaltykit.hookspecs`). This plugin turns the events members care about - a new tier, points
that expired, a reward ready to use - into :class:`Notification` records collected in an
:class:`Outbox`. A messaging job reads the outbox (the in-memory list, or the JSON-lines file) and
sends them; the engine never waits for an e-mail server.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from loyaltykit.core.ledger import LedgerEntry, RewardIssue, TierChange

__all__ = ["Notification", "Outbox", "notification_for_expiry", "notification_for_reward",
           "notification_for_tier_change"]  # fmt: skip


@attrs.frozen(kw_only=True)
class Notification:
    """One message to send to a member."""

    member_id: str
    """Who to notify."""
    kind: str
    """``"welcome"``, ``"tier_upgrade"``, ``"tier_downgrade"``, ``"tier_changed"``,
    ``"points_expired"`` or ``"reward_issued"``."""
    occurred_at: dt.datetime
    """When the event took effect (timezone-aware)."""
    subject: str
    """Subject line."""
    body: str
    """Text of the message."""
    event_id: str
    """The engine event behind it: with ``kind``, the key that makes sending idempotent."""
    data: dict[str, Any] = attrs.field(factory=dict, hash=False)
    """Machine-readable details (tiers, points, reward id ...)."""

    def to_json(self) -> str:
        """The notification as one line of JSON (times in ISO 8601)."""
        record = attrs.asdict(self)
        record["occurred_at"] = self.occurred_at.isoformat()
        return json.dumps(record, sort_keys=True, default=str)


class Outbox:
    """Collects notifications in memory and, when ``path`` is given, appends them to a file.

    :param path: a JSON-lines file to append every notification to (created with its folder);
        ``None`` keeps them in memory only.

    Safe to use from several threads: the engine may fire hooks concurrently.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        self._items: list[Notification] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Outbox(path={self.path!r}, pending={len(self)})"

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def add(self, notification: Notification) -> None:
        """Queue one notification (and append it to the file, if any)."""
        with self._lock:
            self._items.append(notification)
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(notification.to_json() + "\n")

    @property
    def notifications(self) -> tuple[Notification, ...]:
        """The queued notifications, oldest first."""
        with self._lock:
            return tuple(self._items)

    def drain(self) -> list[Notification]:
        """Return the queued notifications and empty the in-memory queue (not the file)."""
        with self._lock:
            items, self._items = self._items, []
            return items

    @staticmethod
    def read(path: str | Path) -> list[dict[str, Any]]:
        """The notifications of a JSON-lines outbox file, as dictionaries."""
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]


def notification_for_tier_change(change: TierChange) -> Notification:
    """The message for a tier change: welcome, upgrade, downgrade or a plain change.

    A change from no tier is a welcome; ``reason="downgrade"`` a downgrade; ``"qualified"`` an
    upgrade; anything else (e.g. ``"manual"``) a plain change.
    """
    if change.from_tier is None:
        kind, subject = "welcome", f"Welcome to {change.to_tier}"
    elif change.reason == "downgrade":
        kind, subject = "tier_downgrade", f"Your tier is now {change.to_tier}"
    elif change.reason == "qualified":
        kind, subject = "tier_upgrade", f"Congratulations, you reached {change.to_tier}"
    else:
        kind, subject = "tier_changed", f"Your tier is now {change.to_tier}"
    before = change.from_tier or "none"
    return Notification(
        member_id=change.member_id,
        kind=kind,
        occurred_at=change.occurred_at,
        subject=subject,
        body=f"Your membership tier changed from {before} to {change.to_tier}.",
        event_id=change.event_id,
        data={"from_tier": change.from_tier, "to_tier": change.to_tier, "reason": change.reason},
    )


def notification_for_expiry(member_id: str, entries: Sequence[LedgerEntry]) -> Notification | None:
    """The message for expired points (``None`` when the entries expire nothing)."""
    points = -sum(entry.points for entry in entries)
    if points <= 0 or not entries:
        return None
    last = max(entries, key=lambda e: e.occurred_at)
    return Notification(
        member_id=member_id,
        kind="points_expired",
        occurred_at=last.occurred_at,
        subject=f"{points} points expired",
        body=f"{points} of your points expired on {last.occurred_at.date().isoformat()}. "
        "Earn and redeem regularly to keep them.",
        event_id=last.event_id,
        data={"points": points, "batches": [e.batch_id for e in entries]},
    )


def notification_for_reward(issue: RewardIssue) -> Notification:
    """The message for a reward handed to a member."""
    until = (
        f" It is valid until {issue.valid_until.date().isoformat()}."
        if issue.valid_until is not None
        else ""
    )
    return Notification(
        member_id=issue.member_id,
        kind="reward_issued",
        occurred_at=issue.occurred_at,
        subject="Your reward is ready",
        body=f"You exchanged {issue.points} points for reward {issue.reward_id}.{until}",
        event_id=issue.event_id,
        data={"reward_id": issue.reward_id, "points": issue.points},
    )
