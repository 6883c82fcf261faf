"""Built-in reward policies (earning rules), registered like any plugin's.

A program's ``[[earning]]`` table names one of these in ``policy``; its other keys are the
options of the class (see :mod:`loyaltykit.engine.rules`).
"""

from __future__ import annotations

from loyaltykit.hookspecs import hookimpl
from loyaltykit.plugins import Register

__all__ = ["loyaltykit_register_reward_policies"]


@hookimpl
def loyaltykit_register_reward_policies(register: Register) -> None:
    """Register ``per_unit``, ``tier_multiplier``, ``campaign``, ``welcome``, ``birthday`` and
    ``referral``."""
    from loyaltykit.engine.rules import (
        BirthdayBonus,
        Campaign,
        PerUnit,
        ReferralBonus,
        TierMultiplier,
        WelcomeBonus,
    )

    register(
        "per_unit",
        PerUnit,
        description="points per currency unit, with rounding and category/SKU multipliers",
    )
    register(
        "tier_multiplier",
        TierMultiplier,
        description="extra points for members of some tiers (multiplies another rule)",
    )
    register(
        "campaign",
        Campaign,
        description="time-boxed multiplier of another rule, with an optional points budget",
    )
    register("welcome", WelcomeBonus, description="points once, on enrolment")
    register(
        "birthday",
        BirthdayBonus,
        description="points with the first purchase in the birthday month, once a year",
    )
    register(
        "referral",
        ReferralBonus,
        description="points for referee and referrer on the referee's first purchase",
    )
