"""Every plugin hook of loyaltykit.

A plugin is a module or object with functions named after these hooks and marked with
:data:`loyaltykit.hookimpl`. Plugins are found through the ``loyaltykit`` entry-point group, or
registered by hand with :meth:`loyaltykit.plugins.PluginHost.register`. The built-in scoring models,
tier rules and reward policies are plugins of the same kind (see
:mod:`loyaltykit.default_plugins`).

As in pluggy generally, an implementation may accept fewer arguments than the spec names; specs
only ever gain arguments, so plugins written today keep working.

The hooks come in two groups:

* **Registration hooks** run once, the first time a registry of that kind is used. They receive a
  ``register`` callback and call it once per thing they provide.
* **Event hooks** are called by the program engine *after* the write that caused them has
  committed, never for a rolled-back write. They return nothing; an exception raised by one is
  logged and does not undo the committed write.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from loyaltykit.core.ledger import LedgerEntry, RewardIssue, TierChange
    from loyaltykit.plugins import Register

PROJECT = "loyaltykit"

hookspec = pluggy.HookspecMarker(PROJECT)
"""Marker for hook specifications (used only in this module)."""

hookimpl = pluggy.HookimplMarker(PROJECT)
"""Marker for hook implementations: decorate plugin functions with ``@loyaltykit.hookimpl``."""


# --------------------------------------------------------------------------------------------
# registration hooks
# --------------------------------------------------------------------------------------------


@hookspec
def loyaltykit_register_scoring_models(register: Register) -> None:
    """Register scoring models: things that score customers from their data.

    Called once, the first time :attr:`PluginHost.scoring_models
    <loyaltykit.plugins.PluginHost.scoring_models>` is used.

    A scoring model factory is a callable (usually a class) that returns an object with
    ``fit(frame) -> self`` and ``score(frame) -> frame`` (see
    :class:`loyaltykit.protocols.ScoringModel`). The built-ins are RFM and the BTYD models.

    :param register: call ``register(name, factory, description=...)`` once per model. A name
        already taken by another plugin raises :class:`~loyaltykit.errors.DuplicateNameError`.
    :returns: nothing.
    """


@hookspec
def loyaltykit_register_tier_rules(register: Register) -> None:
    """Register tier rules: how members qualify for a tier and when they lose it.

    Called once, the first time :attr:`PluginHost.tier_rules
    <loyaltykit.plugins.PluginHost.tier_rules>` is used. A program's ``[[tiers]]`` table names a
    rule by the name it was registered under.

    :param register: call ``register(name, factory, description=...)`` once per rule.
    :returns: nothing.
    """


@hookspec
def loyaltykit_register_reward_policies(register: Register) -> None:
    """Register reward policies: earning rules that turn events into points.

    Called once, the first time :attr:`PluginHost.reward_policies
    <loyaltykit.plugins.PluginHost.reward_policies>` is used. A program's ``[[earning]]`` table
    names a policy by the name it was registered under.

    :param register: call ``register(name, factory, description=...)`` once per policy.
    :returns: nothing.
    """


# --------------------------------------------------------------------------------------------
# event hooks (called after the engine's write has committed)
# --------------------------------------------------------------------------------------------


@hookspec
def loyaltykit_points_earned(member_id: str, entries: Sequence[LedgerEntry]) -> None:
    """A member earned points.

    Called after the event's database transaction committed.

    :param member_id: the member who earned.
    :param entries: the new ``earn`` entries (one per batch) and any ``settle`` entries that paid
        off an outstanding debt, each with the positive ``debt`` entry that records the payment.
    :returns: nothing.
    """


@hookspec
def loyaltykit_points_redeemed(member_id: str, entries: Sequence[LedgerEntry]) -> None:
    """A member spent points.

    Called after the redemption committed.

    :param member_id: the member who redeemed.
    :param entries: the ``redeem`` entries, one per batch drawn from (soonest-expiring first).
    :returns: nothing.
    """


@hookspec
def loyaltykit_points_reversed(member_id: str, entries: Sequence[LedgerEntry]) -> None:
    """Points were taken back because a purchase was refunded.

    Called after the refund committed.

    :param member_id: the member whose purchase was refunded.
    :param entries: the ``reverse`` entries and, if the points had been spent, the ``debt`` entry.
    :returns: nothing.
    """


@hookspec
def loyaltykit_points_expired(member_id: str, entries: Sequence[LedgerEntry]) -> None:
    """Points of one member expired.

    Called after the expiry run committed that member's entries, or after an event of the member
    that first recorded expiries that had come due.

    :param member_id: the member whose points expired.
    :param entries: the ``expire`` entries, one per batch.
    :returns: nothing.
    """


@hookspec
def loyaltykit_points_adjusted(member_id: str, entries: Sequence[LedgerEntry]) -> None:
    """Points of one member were adjusted by hand (with a reason).

    Called after the adjustment committed.

    :param member_id: the member whose points changed.
    :param entries: the ``adjust`` entries: one opening a batch for a positive adjustment, one per
        batch drawn from for a negative one.
    :returns: nothing.
    """


@hookspec
def loyaltykit_tier_changed(change: TierChange) -> None:
    """A member moved to another tier (upgrade, downgrade or manual assignment).

    Called after the change committed.

    :param change: from which tier to which, when and why.
    :returns: nothing.
    """


@hookspec
def loyaltykit_reward_issued(issue: RewardIssue) -> None:
    """A reward from the catalogue was issued to a member.

    Called after the redemption committed, once per reward, after
    :func:`loyaltykit_points_redeemed`.

    :param issue: the reward, the member, the points spent and the validity.
    :returns: nothing.
    """
