"""Built-in tier rules, registered like any plugin's.

A program's ``[tiers]`` table names one of these in ``rule``; ``window`` and ``window_days`` are
its options (see :class:`loyaltykit.engine.tiers.WindowedMetric`).
"""

from __future__ import annotations

from loyaltykit.engine.tiers import WindowedMetric
from loyaltykit.hookspecs import hookimpl
from loyaltykit.plugins import Register

__all__ = ["loyaltykit_register_tier_rules", "points_rule", "spend_rule", "visits_rule"]


def spend_rule(*, window: str = "calendar_year", window_days: int = 365) -> WindowedMetric:
    """Qualify on money spent (net of refunds) over ``window``."""
    return WindowedMetric(metric="spend", window=window, window_days=window_days)


def points_rule(*, window: str = "calendar_year", window_days: int = 365) -> WindowedMetric:
    """Qualify on points earned by purchases (net of reversals) over ``window``."""
    return WindowedMetric(metric="points", window=window, window_days=window_days)


def visits_rule(*, window: str = "calendar_year", window_days: int = 365) -> WindowedMetric:
    """Qualify on the number of purchases over ``window``."""
    return WindowedMetric(metric="visits", window=window, window_days=window_days)


@hookimpl
def loyaltykit_register_tier_rules(register: Register) -> None:
    """Register ``spend``, ``points`` and ``visits``."""
    register(
        "spend", spend_rule, description="money spent over a rolling/calendar/anniversary window"
    )
    register("points", points_rule, description="purchase points earned over a window")
    register("visits", visits_rule, description="number of purchases over a window")
