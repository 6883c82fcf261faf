"""Built-in tier rules and the tier logic of the engine (upgrade at once, downgrade at period end
after grace, manual floor).

A tier rule measures a member's qualifying value: a **metric** (``spend``, ``points`` earned by
purchases net of reversals, or ``visits``) summed over a **window**:

``rolling``
    the last ``window_days`` days (an event exactly ``window_days`` old no longer counts); a tier
    reached at time *t* is reviewed at *t* + ``window_days`` (plus grace) on the activity after
    *t*, then every ``window_days``.
``calendar_year``
    the calendar year in the program's time zone; reviewed every 1 January (plus grace) on the
    year that just ended.
``anniversary``
    the membership year starting on the enrolment date (local); reviewed on each anniversary.

The same measurement in bulk: :meth:`WindowedMetric.qualifying_expr` sums the metric over each
row's window, and :func:`tier_expr` maps the sum to a tier.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs
import polars as pl

from loyaltykit.core import _checks as c
from loyaltykit.core.ledger import TierChange
from loyaltykit.core.program import DowngradeMode, TierPolicy
from loyaltykit.engine._trusted import replacer
from loyaltykit.engine.store import ActivityTotals, MemberState, StoreUnit
from loyaltykit.errors import InvalidValueError

__all__ = [
    "METRICS",
    "WINDOWS",
    "WindowedMetric",
    "apply_upgrade",
    "metric_value",
    "review_tiers",
    "tier_expr",
]

METRICS = ("spend", "points", "visits")
"""The metrics a tier rule can measure."""
WINDOWS = ("rolling", "calendar_year", "anniversary")
"""The windows a tier rule can measure over."""

_TICK = dt.timedelta(microseconds=1)

# states change here with values computed from valid ones: copy without re-validating
_with_state = replacer(MemberState)


def _window_days(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidValueError(
            type(inst).__name__, attribute.name, value, "must be a whole number of days > 0"
        )


def _local_midnight(day: dt.date, zone: dt.tzinfo) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=zone)


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a common year
        return day.replace(year=day.year + years, day=28)


@attrs.frozen(kw_only=True)
class WindowedMetric:
    """A tier rule: ``metric`` summed over ``window``."""

    metric: str = attrs.field(validator=c.one_of(*METRICS))
    """``"spend"``, ``"points"`` or ``"visits"``."""
    window: str = attrs.field(default="calendar_year", validator=c.one_of(*WINDOWS))
    """``"rolling"``, ``"calendar_year"`` or ``"anniversary"``."""
    window_days: int = attrs.field(default=365, validator=_window_days)
    """Length of a ``rolling`` window in days."""

    def _anniversary_start(
        self, at: dt.datetime, enrolled_at: dt.datetime, zone: dt.tzinfo
    ) -> dt.datetime:
        first = enrolled_at.astimezone(zone).date()
        local = at.astimezone(zone)
        years = local.year - first.year
        start = _local_midnight(_add_years(first, years), zone)
        if start > at:
            start = _local_midnight(_add_years(first, years - 1), zone)
        return start

    def window_start(
        self, at: dt.datetime, enrolled_at: dt.datetime, zone: dt.tzinfo
    ) -> dt.datetime:
        """Start of the window counted for an upgrade at ``at``."""
        if self.window == "rolling":
            return at - dt.timedelta(days=self.window_days) + _TICK
        if self.window == "calendar_year":
            return dt.datetime(at.astimezone(zone).year, 1, 1, tzinfo=zone)
        return self._anniversary_start(at, enrolled_at, zone)

    def period_end(self, at: dt.datetime, enrolled_at: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
        """When a tier reached at ``at`` is next reviewed (before grace)."""
        if self.window == "rolling":
            return at + dt.timedelta(days=self.window_days)
        if self.window == "calendar_year":
            return dt.datetime(at.astimezone(zone).year + 1, 1, 1, tzinfo=zone)
        start = self._anniversary_start(at, enrolled_at, zone).astimezone(zone).date()
        return _local_midnight(_add_years(start, 1), zone)

    def review_window(
        self, period_end: dt.datetime, enrolled_at: dt.datetime, zone: dt.tzinfo
    ) -> tuple[dt.datetime, dt.datetime]:
        """Activity of the period ending at ``period_end`` (inclusive bounds): for ``rolling``
        windows the ``window_days`` up to and including ``period_end``, otherwise the calendar or
        membership year before it."""
        if self.window == "rolling":
            return (period_end - dt.timedelta(days=self.window_days) + _TICK, period_end)
        last = period_end - _TICK
        return (self.window_start(last, enrolled_at, zone), last)

    def next_period_end(
        self, period_end: dt.datetime, enrolled_at: dt.datetime, zone: dt.tzinfo
    ) -> dt.datetime:
        """The period end after ``period_end``."""
        return self.period_end(period_end, enrolled_at, zone)

    def value(self, totals: ActivityTotals) -> Decimal:
        """The metric of summed activity."""
        return metric_value(self.metric, totals)

    def value_expr(self) -> pl.Expr:
        """The metric of one activity row (columns ``spend``, ``points``, ``visits``)."""
        return pl.col(self.metric)

    def window_key_expr(self, zone: str = "UTC") -> pl.Expr | None:
        """The window an activity row falls in, for ``calendar_year`` (the local year) and
        ``anniversary`` (the number of membership years completed, from ``enrolled_at``);
        ``None`` for ``rolling`` windows.

        Needs the columns ``occurred_at`` and, for anniversaries, ``enrolled_at`` (both
        ``Datetime`` with a time zone).
        """
        if self.window == "rolling":
            return None
        local = pl.col("occurred_at").dt.convert_time_zone(zone)
        if self.window == "calendar_year":
            return local.dt.year()
        start = pl.col("enrolled_at").dt.convert_time_zone(zone)
        # an anniversary falls at local midnight of the enrolment date (28 February in common
        # years for members who enrolled on 29 February)
        leap_day = (start.dt.month() == 2) & (start.dt.day() == 29) & ~local.dt.is_leap_year()
        start_md = pl.when(leap_day).then(228).otherwise(_month_day(start))
        local_md = _month_day(local)
        before = (local_md < start_md).cast(pl.Int32)
        return local.dt.year().cast(pl.Int32) - start.dt.year().cast(pl.Int32) - before

    def qualifying_expr(
        self, value: pl.Expr | None = None, *, member: str = "member_id", zone: str = "UTC"
    ) -> pl.Expr:
        """The qualifying value counted for an upgrade at each activity row, as the engine
        measures it: the sum of ``value`` (default :meth:`value_expr`) over the row's window up
        to and including the row.

        The frame holds the activity rows of many members sorted by ``occurred_at``, with
        columns ``member`` and ``occurred_at`` (plus ``enrolled_at`` for anniversaries). Map the
        result to a tier with :func:`tier_expr`. (Rows at the very same instant all count for
        each other; the engine counts only those processed before.)
        """
        v = self.value_expr() if value is None else value
        key = self.window_key_expr(zone)
        if key is None:
            return v.rolling_sum_by("occurred_at", window_size=f"{self.window_days}d").over(member)
        return v.cum_sum().over([pl.col(member), key])


def _month_day(t: pl.Expr) -> pl.Expr:
    return t.dt.month().cast(pl.Int32) * 100 + t.dt.day().cast(pl.Int32)


def metric_value(metric: str, totals: ActivityTotals) -> Decimal:
    """``totals.<metric>`` as a Decimal."""
    if metric == "spend":
        return totals.spend
    return Decimal(totals.points if metric == "points" else totals.visits)


def tier_expr(policy: TierPolicy, value: pl.Expr) -> pl.Expr:
    """:meth:`TierPolicy.qualified` of a value expression: the tier name it reaches."""
    out: pl.Expr = pl.lit(policy.levels[0].name)
    for tier in policy.levels[1:]:
        out = pl.when(value >= pl.lit(tier.threshold)).then(pl.lit(tier.name)).otherwise(out)
    return out


def _floor_rank(policy: TierPolicy, state: MemberState) -> int:
    return max(0, policy.rank(state.manual_tier)) if state.manual_tier is not None else 0


def _needs_review(policy: TierPolicy, state: MemberState, tier: str) -> bool:
    return policy.downgrade is not DowngradeMode.NEVER and policy.rank(tier) > _floor_rank(
        policy, state
    )


def review_tiers(
    policy: TierPolicy,
    state: MemberState,
    unit: StoreUnit,
    as_of: dt.datetime,
    zone: dt.tzinfo,
    event_id: Callable[[dt.datetime], str],
) -> tuple[MemberState, list[TierChange]]:
    """Run every review due by ``as_of``: downgrades at period end plus grace.

    Returns the new state and the tier changes (already appended to ``unit``).
    """
    changes: list[TierChange] = []
    rule = policy.rule
    grace = dt.timedelta(days=policy.grace_days)
    while state.tier_review_at is not None and state.tier_review_at <= as_of:
        review_at = state.tier_review_at
        current = state.tier
        if current is None or not _needs_review(policy, state, current):
            state = _with_state(state, tier_review_at=None)
            break
        period_end = review_at - grace
        start, end = rule.review_window(period_end, state.enrolled_at, zone)
        value = metric_value(rule.metric, unit.activity_totals(state.member_id, start, end))
        target_rank = max(policy.rank(policy.qualified(value)), _floor_rank(policy, state))
        tier = current
        since = state.tier_since
        if target_rank < policy.rank(current):
            tier = policy.levels[target_rank].name
            since = review_at
            change = TierChange(
                member_id=state.member_id,
                event_id=event_id(review_at),
                from_tier=current,
                to_tier=tier,
                occurred_at=review_at,
                reason="downgrade",
            )
            unit.append_tier_change(change)
            changes.append(change)
        next_review = rule.next_period_end(period_end, state.enrolled_at, zone) + grace
        state = _with_state(
            state,
            tier=tier,
            tier_since=since,
            tier_review_at=next_review if _needs_review(policy, state, tier) else None,
        )
    return state, changes


def apply_upgrade(
    policy: TierPolicy,
    state: MemberState,
    unit: StoreUnit,
    at: dt.datetime,
    zone: dt.tzinfo,
    event_id: str,
    *,
    reason: str = "qualified",
) -> tuple[MemberState, list[TierChange]]:
    """Move the member up at once if their activity (or manual floor) reaches a higher tier."""
    rule = policy.rule
    start = rule.window_start(at, state.enrolled_at, zone)
    value = metric_value(rule.metric, unit.activity_totals(state.member_id, start, at))
    target_rank = max(policy.rank(policy.qualified(value)), _floor_rank(policy, state))
    current_rank = policy.rank(state.tier)
    if target_rank <= current_rank:
        return state, []
    tier = policy.levels[target_rank].name
    change = TierChange(
        member_id=state.member_id,
        event_id=event_id,
        from_tier=state.tier,
        to_tier=tier,
        occurred_at=at,
        reason=reason,
    )
    unit.append_tier_change(change)
    grace = dt.timedelta(days=policy.grace_days)
    state = _with_state(state, tier=tier, tier_since=at)
    review = rule.period_end(at, state.enrolled_at, zone) + grace
    state = _with_state(
        state, tier_review_at=review if _needs_review(policy, state, tier) else None
    )
    return state, [change]
