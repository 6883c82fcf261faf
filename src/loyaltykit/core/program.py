"""A loyalty program: earning rules, tiers, rewards and the ledger's policies.

A :class:`Program` is a frozen value object. Build it in Python from rule objects (the built-in
ones are in :mod:`loyaltykit.engine.rules` and :mod:`loyaltykit.engine.tiers`), or load it from
TOML with :func:`loyaltykit.engine.load_program`, which looks rules up by name in the plugin
registries.

Earning rules and tier rules satisfy the protocols :class:`EarningRule` and :class:`TierRule`.
Each rule computes its result for one event (used by the online engine) and can also write the
same computation as a polars expression (used to replay history in bulk). Both work on exact
integers, so they agree entry by entry: money has at most :data:`MONEY_SCALE` decimal places and
factors (rates, multipliers) at most :data:`FACTOR_SCALE`.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from loyaltykit.core import _checks as c
from loyaltykit.core.records import LineItem
from loyaltykit.errors import InvalidValueError

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "FACTOR_SCALE",
    "MONEY_SCALE",
    "Caps",
    "DowngradeMode",
    "EarnContext",
    "EarningRule",
    "ExpiryKind",
    "ExpiryPolicy",
    "NegativeBalancePolicy",
    "PendingPolicy",
    "Program",
    "Reward",
    "Rounding",
    "Tier",
    "TierPolicy",
    "TierRule",
    "enum_member",
    "round_ratio",
    "scaled_int",
    "try_enum",
]

MONEY_SCALE = 6
"""Most decimal places a money amount may have (so that it is an exact integer of 1e-6 units)."""
FACTOR_SCALE = 6
"""Most decimal places a rate or multiplier may have."""


def scaled_int(value: Decimal, scale: int) -> int | None:
    """``value * 10**scale`` as an ``int``, or ``None`` if that is not a whole number."""
    scaled = value.scaleb(scale)
    if scaled != scaled.to_integral_value():
        return None
    return int(scaled)


def try_enum(enum_cls: type[enum.StrEnum], value: Any) -> Any:
    """``enum_cls(value)``, or ``value`` unchanged when it is not a member (an
    :func:`enum_member` validator then refuses it with a clear message)."""
    try:
        return enum_cls(value)
    except ValueError:
        return value


def enum_member(enum_cls: type[enum.StrEnum]) -> c.Validator:
    """Validator: the value is a member of ``enum_cls``; the error lists the allowed values."""

    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, enum_cls):
            allowed = ", ".join(repr(m.value) for m in enum_cls)
            raise InvalidValueError(
                type(inst).__name__, attribute.name, value, f"must be one of {allowed}"
            )

    return check


class Rounding(enum.StrEnum):
    """How a fractional number of points becomes whole points."""

    DOWN = "down"
    """Toward minus infinity (floor): 12.9 -> 12."""
    UP = "up"
    """Toward plus infinity (ceiling): 12.1 -> 13."""
    HALF_UP = "half_up"
    """To the nearest, halves up: 12.5 -> 13."""
    HALF_EVEN = "half_even"
    """To the nearest, halves to the even neighbour (banker's rounding): 12.5 -> 12, 13.5 -> 14."""


def round_ratio(numerator: int, denominator: int, mode: Rounding) -> int:
    """Round the exact fraction ``numerator / denominator`` (``denominator > 0``) to an int.

    >>> round_ratio(25, 2, Rounding.HALF_EVEN), round_ratio(25, 2, Rounding.HALF_UP)
    (12, 13)
    """
    if denominator <= 0:
        raise ValueError(f"denominator must be > 0, got {denominator}")
    q, r = divmod(numerator, denominator)
    if mode is Rounding.DOWN:
        return q
    if mode is Rounding.UP:
        return q + (1 if r else 0)
    if mode is Rounding.HALF_UP:
        return q + (1 if 2 * r >= denominator else 0)
    if 2 * r > denominator:
        return q + 1
    if 2 * r == denominator:
        return q + (q % 2)
    return q


def _zone(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidValueError(
            type(inst).__name__,
            attribute.name,
            value,
            "must be an IANA time-zone name such as 'UTC' or 'Europe/Paris'",
        ) from None


def _optional_non_negative_int(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidValueError(
            type(inst).__name__, attribute.name, value, "must be a whole number >= 0, or None"
        )


def _optional_positive_int(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidValueError(
            type(inst).__name__, attribute.name, value, "must be a whole number > 0, or None"
        )


def _non_negative_int(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidValueError(
            type(inst).__name__, attribute.name, value, "must be a whole number >= 0"
        )


def _to_expiry_kind(value: Any) -> Any:
    return try_enum(ExpiryKind, value)


def _to_downgrade(value: Any) -> Any:
    return try_enum(DowngradeMode, value)


def _to_negative_balance(value: Any) -> Any:
    return try_enum(NegativeBalancePolicy, value)


# --------------------------------------------------------------------------------------------
# ledger policies
# --------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class PendingPolicy:
    """How long points earned by a purchase stay pending (not yet usable), so that a return can
    cancel them. Bonuses and adjustments are usable at once."""

    days: int = attrs.field(default=0, validator=_non_negative_int)
    """Pending period in days after the purchase (0: usable at once)."""

    def pending_until(self, earned_at: dt.datetime) -> dt.datetime | None:
        """When points earned at ``earned_at`` become usable (``None`` when at once)."""
        return earned_at + dt.timedelta(days=self.days) if self.days else None


class ExpiryKind(enum.StrEnum):
    """When what is left of an earn batch expires."""

    NEVER = "never"
    """Points never expire."""
    DAYS_AFTER_EARN = "days_after_earn"
    """``days`` days after the batch was earned."""
    END_OF_MONTH = "end_of_month"
    """At the end of the month ``months`` months after the month of earning (0: that month)."""
    END_OF_YEAR = "end_of_year"
    """At the end of the year ``years`` years after the year of earning (0: that year)."""
    INACTIVITY = "inactivity"
    """``days`` days after the member's latest earn or redemption (every batch at once)."""


@attrs.frozen(kw_only=True)
class ExpiryPolicy:
    """When earned points expire. Month and year ends are in the program's time zone."""

    kind: ExpiryKind = attrs.field(
        default=ExpiryKind.NEVER,
        converter=_to_expiry_kind,
        validator=enum_member(ExpiryKind),
    )
    """The kind of expiry."""
    days: int = attrs.field(default=365, validator=_non_negative_int)
    """Days, for ``days_after_earn`` and ``inactivity``."""
    months: int = attrs.field(default=12, validator=_non_negative_int)
    """Months after the month of earning, for ``end_of_month``."""
    years: int = attrs.field(default=1, validator=_non_negative_int)
    """Years after the year of earning, for ``end_of_year``."""

    def expires_at(self, earned_at: dt.datetime, zone: dt.tzinfo) -> dt.datetime | None:
        """When a batch earned at ``earned_at`` expires (for ``inactivity``: if nothing else
        happens), or ``None`` if never. Month and year ends are midnight in ``zone``."""
        if self.kind is ExpiryKind.NEVER:
            return None
        if self.kind in (ExpiryKind.DAYS_AFTER_EARN, ExpiryKind.INACTIVITY):
            return earned_at + dt.timedelta(days=self.days)
        local = earned_at.astimezone(zone)
        if self.kind is ExpiryKind.END_OF_MONTH:
            index = local.year * 12 + (local.month - 1) + self.months + 1
            year, month = divmod(index, 12)
            return dt.datetime(year, month + 1, 1, tzinfo=zone)
        return dt.datetime(local.year + self.years + 1, 1, 1, tzinfo=zone)


class NegativeBalancePolicy(enum.StrEnum):
    """What happens when a refund reverses points that were already spent."""

    DEBT = "debt"
    """The shortfall becomes a debt (the balance goes below zero), settled from later earnings."""
    CLAMP = "clamp"
    """The shortfall is forgiven: the balance stops at zero."""


@attrs.frozen(kw_only=True)
class Caps:
    """Upper limits on points earned from purchases (bonuses are not capped)."""

    per_transaction: int | None = attrs.field(default=None, validator=_optional_non_negative_int)
    """Most points one purchase can earn (``None``: no cap)."""
    per_day: int | None = attrs.field(default=None, validator=_optional_non_negative_int)
    """Most points a member can earn from purchases per local calendar day, net of reversals
    that day (``None``: no cap)."""


@attrs.frozen(kw_only=True)
class Reward:
    """An entry of the rewards catalogue."""

    id: str = attrs.field(validator=c.non_empty_str)
    """Catalogue id (what redemptions name)."""
    name: str = attrs.field(default="")
    """Display name."""
    cost: int = attrs.field(validator=[c.int_not_bool, c.positive])
    """Price in points (> 0)."""
    valid_days: int | None = attrs.field(default=None, validator=_optional_positive_int)
    """Days the issued reward stays valid (``None``: no limit)."""
    stock: int | None = attrs.field(default=None, validator=_optional_non_negative_int)
    """How many can be issued in all (``None``: unlimited)."""


# --------------------------------------------------------------------------------------------
# tiers
# --------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Tier:
    """A tier and the qualifying value needed to reach it."""

    name: str = attrs.field(validator=c.non_empty_str)
    """Tier name."""
    threshold: Decimal = attrs.field(
        converter=c.to_decimal, validator=[c.exact_decimal, c.non_negative]
    )
    """Qualifying value needed (in the tier rule's unit: money, points or visits)."""


class DowngradeMode(enum.StrEnum):
    """Whether members can lose a tier."""

    NEVER = "never"
    """Tiers are kept for ever once reached."""
    PERIOD_END = "period_end"
    """At the end of each qualification period plus the grace period, members who did not
    requalify drop to the tier their activity in that period earns (never below a manual
    floor)."""


@runtime_checkable
class TierRule(Protocol):
    """How the qualifying value of a member is measured: a metric over a window.

    Built-ins (:mod:`loyaltykit.engine.tiers`): ``spend``, ``points`` and ``visits``, each over a
    ``rolling`` window, the ``calendar_year`` or the membership ``anniversary`` year.
    """

    @property
    def metric(self) -> str:
        """``"spend"``, ``"points"`` or ``"visits"`` (a column of the activity rows)."""
        ...

    def window_start(
        self, at: dt.datetime, enrolled_at: dt.datetime, zone: dt.tzinfo
    ) -> dt.datetime:
        """Start of the window whose activity counts for an upgrade at ``at``."""
        ...

    def period_end(self, at: dt.datetime, enrolled_at: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
        """End of the qualification period in which ``at`` falls (exclusive): when a tier
        reached at ``at`` is next reviewed (before the grace period)."""
        ...

    def review_window(
        self, period_end: dt.datetime, enrolled_at: dt.datetime, zone: dt.tzinfo
    ) -> tuple[dt.datetime, dt.datetime]:
        """The ``(start, end)`` instants whose activity decides a review at ``period_end``
        (both inclusive)."""
        ...

    def next_period_end(
        self, period_end: dt.datetime, enrolled_at: dt.datetime, zone: dt.tzinfo
    ) -> dt.datetime:
        """The period end after ``period_end``."""
        ...

    def value_expr(self) -> pl.Expr:
        """The qualifying value of one activity row as a polars expression (sum it over the
        window in bulk)."""
        ...


@attrs.frozen(kw_only=True)
class TierPolicy:
    """The program's tiers and how members move between them."""

    rule: TierRule = attrs.field()
    """How the qualifying value is measured (metric and window)."""
    levels: tuple[Tier, ...] = attrs.field(converter=c.to_tuple)
    """Tiers from lowest to highest; thresholds strictly increase and the first is 0."""
    grace_days: int = attrs.field(default=0, validator=_non_negative_int)
    """Days after the period end before a downgrade takes effect."""
    downgrade: DowngradeMode = attrs.field(
        default=DowngradeMode.PERIOD_END,
        converter=_to_downgrade,
        validator=enum_member(DowngradeMode),
    )
    """Whether and when members lose a tier."""

    @levels.validator
    def _check_levels(self, attribute: attrs.Attribute[Any], value: tuple[Tier, ...]) -> None:
        if not value:
            raise InvalidValueError("TierPolicy", "levels", value, "give at least one Tier")
        for i, tier in enumerate(value):
            if not isinstance(tier, Tier):
                raise InvalidValueError("TierPolicy", f"levels[{i}]", tier, "must be a Tier")
        if value[0].threshold != 0:
            raise InvalidValueError(
                "TierPolicy",
                "levels[0].threshold",
                value[0].threshold,
                "the lowest tier must have threshold 0 (every member starts there)",
            )
        names = [t.name for t in value]
        if len(set(names)) != len(names):
            raise InvalidValueError("TierPolicy", "levels", names, "tier names must be unique")
        for i in range(1, len(value)):
            if value[i].threshold <= value[i - 1].threshold:
                raise InvalidValueError(
                    "TierPolicy",
                    f"levels[{i}].threshold",
                    value[i].threshold,
                    f"thresholds must increase; list tiers lowest first (previous is "
                    f"{value[i - 1].threshold})",
                )

    def rank(self, name: str | None) -> int:
        """Position of tier ``name`` (0 = lowest); -1 for ``None``."""
        if name is None:
            return -1
        for i, tier in enumerate(self.levels):
            if tier.name == name:
                return i
        raise InvalidValueError("TierPolicy", "levels", name, "is not a tier of this program")

    def qualified(self, value: Decimal | int) -> str:
        """The highest tier whose threshold ``value`` reaches."""
        best = self.levels[0].name
        for tier in self.levels:
            if value >= tier.threshold:
                best = tier.name
        return best


# --------------------------------------------------------------------------------------------
# earning
# --------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class EarnContext:
    """What an earning rule sees of one event.

    The engine fills it from the event and the member's state; the bulk twin computes the same
    facts as columns (named after these attributes). ``items`` holds the purchase's
    :class:`~loyaltykit.LineItem` lines (empty: the whole amount is one line without SKU or
    category).
    """

    trigger: str = attrs.field(validator=c.one_of("purchase", "enroll"))
    """``"purchase"`` or ``"enroll"``."""
    member_id: str = attrs.field(validator=c.non_empty_str)
    """The member."""
    occurred_at: dt.datetime = attrs.field(validator=c.aware_datetime)
    """Event time."""
    amount: Decimal = attrs.field(default=Decimal(0), converter=c.to_decimal)
    """Purchase amount (0 for enrolments)."""
    items: tuple[LineItem, ...] = attrs.field(factory=tuple, converter=c.to_tuple)
    """Line items (empty: the whole amount is one line without SKU or category)."""
    channel: str | None = attrs.field(default=None)
    """Sales channel."""
    tier: str | None = attrs.field(default=None)
    """The member's tier when the event happens."""
    is_first_purchase: bool = attrs.field(default=False)
    """Whether this is the member's first purchase."""
    has_referrer: bool = attrs.field(default=False)
    """Whether the member was referred by an enrolled member."""
    is_first_in_birthday_month: bool = attrs.field(default=False)
    """Whether this is the member's first purchase in their birthday month this (local) year."""
    earlier: Mapping[str, int] = attrs.field(factory=dict, converter=c.frozen_mapping)
    """Points of the rules listed before this one in the program, by rule name."""


@runtime_checkable
class EarningRule(Protocol):
    """A rule that turns an event into points (a reward policy).

    ``scope`` says where its points go: ``"transaction"`` points are summed into the purchase's
    batch, capped by :class:`Caps` and reversed by refunds; ``"bonus"`` points get a batch of
    their own and are never reversed.
    """

    @property
    def name(self) -> str:
        """Unique name of the rule within its program."""
        ...

    @property
    def scope(self) -> str:
        """``"transaction"`` or ``"bonus"``."""
        ...

    @property
    def triggers(self) -> frozenset[str]:
        """The triggers it reacts to: ``"purchase"`` and/or ``"enroll"``."""
        ...

    @property
    def depends_on(self) -> tuple[str, ...]:
        """Names of rules whose points it reads from :attr:`EarnContext.earlier`."""
        ...

    @property
    def budget(self) -> int | None:
        """Total points this rule may award across all members (``None``: unlimited)."""
        ...

    def points(self, ctx: EarnContext) -> int:
        """Points for the member of ``ctx`` (>= 0)."""
        ...

    def referrer_points(self, ctx: EarnContext) -> int:
        """Points for the member's referrer (0 for every rule but referral bonuses)."""
        ...

    def points_expr(self) -> pl.Expr:
        """:meth:`points` as a polars expression over the bulk earning frame."""
        ...


def _earning(value: Any) -> tuple[Any, ...]:
    return c.to_tuple(value)


@attrs.frozen(kw_only=True)
class Program:
    """A loyalty program: everything the engine needs to turn events into points and tiers."""

    name: str = attrs.field(validator=c.non_empty_str)
    """Program name (also namespaces its campaign budget and reward stock counters)."""
    currency: str = attrs.field(default="USD")
    """Currency of purchases; events in another currency are refused."""
    timezone: str = attrs.field(default="UTC", validator=_zone)
    """IANA time zone of calendar rules (month/year ends, daily caps, birthdays)."""
    earning: tuple[EarningRule, ...] = attrs.field(factory=tuple, converter=_earning)
    """Earning rules, applied in this order."""
    tiers: TierPolicy | None = attrs.field(default=None)
    """Tiers, or ``None`` for a program without tiers."""
    rewards: tuple[Reward, ...] = attrs.field(factory=tuple, converter=c.to_tuple)
    """The rewards catalogue."""
    pending: PendingPolicy = attrs.field(factory=PendingPolicy)
    """Pending period of purchase points."""
    expiry: ExpiryPolicy = attrs.field(factory=ExpiryPolicy)
    """Expiry of points."""
    negative_balance: NegativeBalancePolicy = attrs.field(
        default=NegativeBalancePolicy.DEBT,
        converter=_to_negative_balance,
        validator=enum_member(NegativeBalancePolicy),
    )
    """What refunds of spent points do."""
    caps: Caps = attrs.field(factory=Caps)
    """Caps on purchase points."""
    auto_enroll: bool = attrs.field(default=False)
    """Enrol unknown members on their first purchase instead of refusing the event."""

    @earning.validator
    def _check_earning(self, attribute: attrs.Attribute[Any], value: tuple[Any, ...]) -> None:
        seen: set[str] = set()
        for i, rule in enumerate(value):
            if not isinstance(rule, EarningRule):
                raise InvalidValueError(
                    "Program",
                    f"earning[{i}]",
                    rule,
                    "must be an earning rule (see loyaltykit.engine.rules)",
                )
            if rule.name in seen:
                raise InvalidValueError(
                    "Program", f"earning[{i}].name", rule.name, "rule names must be unique"
                )
            for dep in rule.depends_on:
                if dep not in seen:
                    raise InvalidValueError(
                        "Program",
                        f"earning[{i}]",
                        dep,
                        f"rule {rule.name!r} reads the points of rule {dep!r}, which must be "
                        "listed before it",
                    )
            seen.add(rule.name)

    @rewards.validator
    def _check_rewards(self, attribute: attrs.Attribute[Any], value: tuple[Any, ...]) -> None:
        ids = [r.id for r in value]
        if len(set(ids)) != len(ids):
            raise InvalidValueError("Program", "rewards", ids, "reward ids must be unique")

    @property
    def zone(self) -> ZoneInfo:
        """The program's time zone as a :class:`zoneinfo.ZoneInfo`."""
        return ZoneInfo(self.timezone)

    def reward(self, reward_id: str) -> Reward:
        """The catalogue entry ``reward_id``."""
        for reward in self.rewards:
            if reward.id == reward_id:
                return reward
        known = ", ".join(r.id for r in self.rewards) or "none"
        raise InvalidValueError(
            "Program", "rewards", reward_id, f"no such reward in the catalogue; known: {known}"
        )
