"""The built-in earning rules (reward policies), each written twice: per event and as polars.

Every rule has :meth:`points` (one event, used by the engine) and :meth:`points_expr` (the same
computation over a frame, used to replay history in bulk). Both work on exact integers: money is
scaled to integer units of ``10**-MONEY_SCALE`` and factors to units of ``10**-FACTOR_SCALE``,
and :func:`~loyaltykit.core.program.round_ratio` / :func:`round_ratio_expr` round the exact
fraction, so both agree to the point.

The **bulk earning frame** has one row per purchase, in processing order, with these columns:

``occurred_at``
    ``Datetime`` with a time zone.
``channel``
    ``String`` (nullable).
``tier``
    ``String``: the member's tier at the purchase (before any upgrade the purchase itself causes).
``is_first_purchase``, ``has_referrer``, ``is_first_in_birthday_month``
    ``Boolean`` facts, as in :class:`~loyaltykit.core.program.EarnContext`.
``<rule>_weight``
    For each :class:`PerUnit` rule: ``Int128``, the sum over the purchase's lines of
    :meth:`PerUnit.line_weight_expr` (a purchase without lines is one line with null SKU and
    category).
``<rule>``
    ``Int64`` points of each rule listed earlier in the program (add them in program order with
    ``frame.with_columns(rule.points_expr().alias(rule.name))``).

Budgets and caps depend on what came before; :func:`running_cap_expr` writes them as
expressions over the processing order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs
import polars as pl

from loyaltykit.core import _checks as c
from loyaltykit.core.program import (
    FACTOR_SCALE,
    MONEY_SCALE,
    EarnContext,
    Rounding,
    enum_member,
    round_ratio,
    scaled_int,
    try_enum,
)
from loyaltykit.errors import InvalidValueError

__all__ = [
    "BirthdayBonus",
    "Campaign",
    "PerUnit",
    "ReferralBonus",
    "TierMultiplier",
    "WelcomeBonus",
    "money_units",
    "purchase_flags_expr",
    "round_ratio_expr",
    "running_cap_expr",
]

_F: int = 10**FACTOR_SCALE
_M: int = 10**MONEY_SCALE


def money_units(amount: Decimal) -> int:
    """``amount`` as an exact integer of ``10**-MONEY_SCALE`` units.

    :raises InvalidValueError: if it has more than :data:`MONEY_SCALE` decimal places.
    """
    got = scaled_int(amount, MONEY_SCALE)
    if got is None:
        raise InvalidValueError(
            "Money", "amount", amount, f"must have at most {MONEY_SCALE} decimal places"
        )
    return got


def round_ratio_expr(numerator: pl.Expr, denominator: int, mode: Rounding) -> pl.Expr:
    """:func:`~loyaltykit.core.program.round_ratio` of an integer expression by a constant
    ``denominator > 0``, as an ``Int64`` expression."""
    num = numerator.cast(pl.Int128)
    den = pl.lit(denominator, dtype=pl.Int128)
    q = num // den
    r = num - q * den
    if mode is Rounding.DOWN:
        out = q
    elif mode is Rounding.UP:
        out = pl.when(r > 0).then(q + 1).otherwise(q)
    elif mode is Rounding.HALF_UP:
        out = pl.when(2 * r >= den).then(q + 1).otherwise(q)
    else:
        out = pl.when(2 * r > den).then(q + 1).when(2 * r == den).then(q + q % 2).otherwise(q)
    return out.cast(pl.Int64)


def running_cap_expr(points: pl.Expr, cap: int, over: str | list[str] | None = None) -> pl.Expr:
    """Points still granted when a running total of non-negative ``points`` may not exceed
    ``cap``: ``min(cum, cap) - min(cum - points, cap)``, in frame order (per group with ``over``).

    This is exactly what granting ``min(points, cap - granted_so_far)`` one row at a time gives.
    """
    cum = points.cum_sum()
    if over is not None:
        cum = cum.over(over)
    capped = pl.min_horizontal(cum, pl.lit(cap))
    before = pl.min_horizontal(cum - points, pl.lit(cap))
    return (capped - before).cast(pl.Int64)


def _to_rounding(value: Any) -> Any:
    return try_enum(Rounding, value)


_FACTORS: dict[tuple[Any, Decimal], int] = {}
"""Factors already checked and scaled (rules ask for the same few on every event)."""


def _factor(owner: str, field: str, value: Any, minimum: Decimal) -> int:
    """A factor as an int of 10**-FACTOR_SCALE units, checked."""
    if isinstance(value, Decimal) and value.is_finite():
        found = _FACTORS.get((value, minimum))
        if found is not None:
            return found
    d = c.to_decimal(value)
    if isinstance(d, float) or not isinstance(d, Decimal) or not d.is_finite():
        raise InvalidValueError(
            owner, field, value, "must be an exact number: a string such as '1.5' or an int"
        )
    if d < minimum:
        raise InvalidValueError(owner, field, value, f"must be >= {minimum}")
    got = scaled_int(d, FACTOR_SCALE)
    if got is None:
        raise InvalidValueError(
            owner, field, value, f"must have at most {FACTOR_SCALE} decimal places"
        )
    if isinstance(value, Decimal) and len(_FACTORS) < 4096:
        _FACTORS[(value, minimum)] = got
    return got


def _to_factor_map(value: Any) -> Mapping[str, Decimal]:
    if value is None:
        return c.frozen_mapping({})
    if not isinstance(value, Mapping):
        return value  # type: ignore[no-any-return]  # refused by the validator
    return c.frozen_mapping({k: c.to_decimal(v) for k, v in value.items()})


def _factor_map(minimum: Decimal) -> Any:
    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        owner = type(inst).__name__
        if not isinstance(value, Mapping):
            raise InvalidValueError(
                owner, attribute.name, value, "must be a table of name = multiplier"
            )
        for key, factor in value.items():
            if not isinstance(key, str) or not key:
                raise InvalidValueError(owner, attribute.name, key, "keys must be non-empty names")
            _factor(owner, f"{attribute.name}[{key!r}]", factor, minimum)

    return check


def _rate(minimum: Decimal) -> Any:
    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        _factor(type(inst).__name__, attribute.name, value, minimum)

    return check


def _points_int(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidValueError(
            type(inst).__name__, attribute.name, value, "must be a whole number of points >= 0"
        )


def _optional_budget(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        _points_int(inst, attribute, value)


def _line_facts(ctx: EarnContext) -> list[tuple[Decimal, str | None, str | None]]:
    if ctx.items:
        return [(item.amount, item.sku, item.category) for item in ctx.items]
    return [(ctx.amount, None, None)]


def purchase_flags_expr(
    *, member: str = "member_id", birthday: str = "birthday", zone: str = "UTC"
) -> list[pl.Expr]:
    """The facts columns of the bulk earning frame that depend on a member's history:
    ``is_first_purchase`` and ``is_first_in_birthday_month``, as the engine derives them.

    The frame holds purchases of many members in processing order, with columns ``member``,
    ``occurred_at`` (``Datetime`` with a time zone) and ``birthday`` (``Date``, nullable).
    Birthday months are read in the program's time zone ``zone``. (``has_referrer`` comes from
    enrolment data: whether the member's referrer was enrolled at the first purchase.)
    """
    local = pl.col("occurred_at").dt.convert_time_zone(zone)
    first = pl.int_range(pl.len()).over(member) == 0
    in_month = (local.dt.month() == pl.col(birthday).dt.month()).fill_null(False)
    rank = in_month.cast(pl.Int32).cum_sum().over([pl.col(member), local.dt.year()])
    return [
        first.alias("is_first_purchase"),
        (in_month & (rank == 1)).alias("is_first_in_birthday_month"),
    ]


# --------------------------------------------------------------------------------------------
# transaction rules
# --------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class PerUnit:
    """Points per currency unit spent, with category and SKU multipliers.

    ``points = round(sum(line amount * line multiplier) * points_per_unit / unit_amount)``, rounded
    once per purchase with :attr:`rounding`. A line's multiplier is its SKU's if listed, else its
    category's if listed, else 1.

    >>> from loyaltykit.core.program import EarnContext
    >>> import datetime as dt
    >>> rule = PerUnit(name="base", points_per_unit="1", unit_amount="1")
    >>> ctx = EarnContext(trigger="purchase", member_id="m", amount="12.90",
    ...                   occurred_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    >>> rule.points(ctx)
    12
    """

    name: str = attrs.field(validator=c.non_empty_str)
    """Rule name."""
    points_per_unit: Decimal = attrs.field(converter=c.to_decimal, validator=_rate(Decimal(0)))
    """Points per :attr:`unit_amount` of money."""
    unit_amount: Decimal = attrs.field(
        default=Decimal(1), converter=c.to_decimal, validator=_rate(Decimal("0.000001"))
    )
    """The money amount that earns :attr:`points_per_unit` (e.g. ``10`` for "1 point per 10")."""
    rounding: Rounding = attrs.field(
        default=Rounding.DOWN,
        converter=_to_rounding,
        validator=enum_member(Rounding),
    )
    """How fractional points are rounded."""
    category_multipliers: Mapping[str, Decimal] = attrs.field(
        factory=dict, converter=_to_factor_map, validator=_factor_map(Decimal(0))
    )
    """Multiplier per product category (>= 0; 0 excludes the category)."""
    sku_multipliers: Mapping[str, Decimal] = attrs.field(
        factory=dict, converter=_to_factor_map, validator=_factor_map(Decimal(0))
    )
    """Multiplier per SKU (>= 0); wins over the category's."""

    @property
    def scope(self) -> str:
        """``"transaction"``."""
        return "transaction"

    @property
    def triggers(self) -> frozenset[str]:
        """Purchases."""
        return frozenset({"purchase"})

    @property
    def depends_on(self) -> tuple[str, ...]:
        """None."""
        return ()

    @property
    def budget(self) -> int | None:
        """Unlimited."""
        return None

    @property
    def weight_column(self) -> str:
        """Name of this rule's weight column in the bulk earning frame."""
        return f"{self.name}_weight"

    def _multiplier(self, sku: str | None, category: str | None) -> int:
        if sku is not None and sku in self.sku_multipliers:
            return _factor("PerUnit", "sku_multipliers", self.sku_multipliers[sku], Decimal(0))
        if category is not None and category in self.category_multipliers:
            return _factor(
                "PerUnit", "category_multipliers", self.category_multipliers[category], Decimal(0)
            )
        return _F

    def weight(self, ctx: EarnContext) -> int:
        """Sum over the lines of amount (in money units) times multiplier (in factor units)."""
        return sum(
            money_units(amount) * self._multiplier(sku, category)
            for amount, sku, category in _line_facts(ctx)
        )

    def _denominator(self) -> int:
        return _M * _F * _factor("PerUnit", "unit_amount", self.unit_amount, Decimal(0))

    def _numerator_factor(self) -> int:
        return _factor("PerUnit", "points_per_unit", self.points_per_unit, Decimal(0))

    def points(self, ctx: EarnContext) -> int:
        """Points for one purchase."""
        if ctx.trigger != "purchase":
            return 0
        return round_ratio(
            self.weight(ctx) * self._numerator_factor(), self._denominator(), self.rounding
        )

    def referrer_points(self, ctx: EarnContext) -> int:
        """0."""
        return 0

    def line_weight_expr(
        self, amount: str = "amount", sku: str = "sku", category: str = "category"
    ) -> pl.Expr:
        """One line's weight (``Int128``) over a frame of lines with a ``Decimal`` amount."""
        units = (pl.col(amount).cast(pl.Decimal(38, MONEY_SCALE)) * _M).cast(pl.Int128)
        mult: pl.Expr = pl.lit(_F, dtype=pl.Int128)
        for cat, factor in self.category_multipliers.items():
            f = _factor("PerUnit", "category_multipliers", factor, Decimal(0))
            mult = pl.when(pl.col(category) == cat).then(pl.lit(f, dtype=pl.Int128)).otherwise(mult)
        for s, factor in self.sku_multipliers.items():
            f = _factor("PerUnit", "sku_multipliers", factor, Decimal(0))
            mult = pl.when(pl.col(sku) == s).then(pl.lit(f, dtype=pl.Int128)).otherwise(mult)
        return units * mult

    def points_expr(self) -> pl.Expr:
        """Points from the ``<name>_weight`` column."""
        num = pl.col(self.weight_column).cast(pl.Int128) * pl.lit(
            self._numerator_factor(), dtype=pl.Int128
        )
        return round_ratio_expr(num, self._denominator(), self.rounding)


@attrs.frozen(kw_only=True)
class TierMultiplier:
    """Extra points for members of some tiers: ``round(points_of(of) * (multiplier - 1))``."""

    name: str = attrs.field(validator=c.non_empty_str)
    """Rule name."""
    of: str = attrs.field(validator=c.non_empty_str)
    """The (earlier) rule whose points are multiplied."""
    multipliers: Mapping[str, Decimal] = attrs.field(
        converter=_to_factor_map, validator=_factor_map(Decimal(1))
    )
    """Multiplier (>= 1) per tier name; other tiers get none."""
    rounding: Rounding = attrs.field(
        default=Rounding.DOWN,
        converter=_to_rounding,
        validator=enum_member(Rounding),
    )
    """How fractional points are rounded."""

    @property
    def scope(self) -> str:
        """``"transaction"``."""
        return "transaction"

    @property
    def triggers(self) -> frozenset[str]:
        """Purchases."""
        return frozenset({"purchase"})

    @property
    def depends_on(self) -> tuple[str, ...]:
        """The multiplied rule."""
        return (self.of,)

    @property
    def budget(self) -> int | None:
        """Unlimited."""
        return None

    def _extra(self, tier: str) -> int:
        return _factor("TierMultiplier", "multipliers", self.multipliers[tier], Decimal(1)) - _F

    def points(self, ctx: EarnContext) -> int:
        """Extra points for one purchase."""
        if ctx.trigger != "purchase" or ctx.tier is None or ctx.tier not in self.multipliers:
            return 0
        return round_ratio(ctx.earlier.get(self.of, 0) * self._extra(ctx.tier), _F, self.rounding)

    def referrer_points(self, ctx: EarnContext) -> int:
        """0."""
        return 0

    def points_expr(self) -> pl.Expr:
        """Extra points from the ``tier`` column and the ``<of>`` points column."""
        extra: pl.Expr = pl.lit(0, dtype=pl.Int128)
        for tier in self.multipliers:
            extra = (
                pl.when(pl.col("tier") == tier)
                .then(pl.lit(self._extra(tier), dtype=pl.Int128))
                .otherwise(extra)
            )
        return round_ratio_expr(pl.col(self.of).cast(pl.Int128) * extra, _F, self.rounding)


def _aware(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    c.aware_datetime(inst, attribute, value)


@attrs.frozen(kw_only=True)
class Campaign:
    """A time-boxed multiplier with an optional budget: extra
    ``round(points_of(of) * (multiplier - 1))`` for purchases with ``start <= time < end`` (and,
    if ``channels`` is given, in one of them). The budget caps the extra points of all members
    together, first come first served."""

    name: str = attrs.field(validator=c.non_empty_str)
    """Rule name (budgets are counted per program and rule name)."""
    of: str = attrs.field(validator=c.non_empty_str)
    """The (earlier) rule whose points are multiplied."""
    multiplier: Decimal = attrs.field(converter=c.to_decimal, validator=_rate(Decimal(1)))
    """The multiplier (>= 1)."""
    start: dt.datetime = attrs.field(validator=_aware)
    """First instant of the campaign (timezone-aware)."""
    end: dt.datetime = attrs.field(validator=_aware)
    """First instant after the campaign."""
    budget: int | None = attrs.field(default=None, validator=_optional_budget)
    """Most extra points the campaign awards in all (``None``: unlimited)."""
    channels: tuple[str, ...] = attrs.field(default=(), converter=c.to_tuple)
    """Only purchases in these channels (empty: all)."""
    rounding: Rounding = attrs.field(
        default=Rounding.DOWN,
        converter=_to_rounding,
        validator=enum_member(Rounding),
    )
    """How fractional points are rounded."""

    @end.validator
    def _check_end(self, attribute: attrs.Attribute[Any], value: dt.datetime) -> None:
        if value <= self.start:
            raise InvalidValueError("Campaign", "end", value, f"must be after start {self.start}")

    @property
    def scope(self) -> str:
        """``"transaction"``."""
        return "transaction"

    @property
    def triggers(self) -> frozenset[str]:
        """Purchases."""
        return frozenset({"purchase"})

    @property
    def depends_on(self) -> tuple[str, ...]:
        """The multiplied rule."""
        return (self.of,)

    def _extra(self) -> int:
        return _factor("Campaign", "multiplier", self.multiplier, Decimal(1)) - _F

    def points(self, ctx: EarnContext) -> int:
        """Extra points for one purchase, before the budget."""
        if ctx.trigger != "purchase" or not self.start <= ctx.occurred_at < self.end:
            return 0
        if self.channels and ctx.channel not in self.channels:
            return 0
        return round_ratio(ctx.earlier.get(self.of, 0) * self._extra(), _F, self.rounding)

    def referrer_points(self, ctx: EarnContext) -> int:
        """0."""
        return 0

    def points_expr(self) -> pl.Expr:
        """Extra points before the budget; apply the budget with :func:`running_cap_expr`."""
        t = pl.col("occurred_at").dt.convert_time_zone("UTC")
        start = pl.lit(self.start.astimezone(dt.UTC)).dt.convert_time_zone("UTC")
        end = pl.lit(self.end.astimezone(dt.UTC)).dt.convert_time_zone("UTC")
        active = (t >= start) & (t < end)
        if self.channels:
            active = active & pl.col("channel").is_in(list(self.channels)).fill_null(False)
        raw = round_ratio_expr(pl.col(self.of).cast(pl.Int128) * self._extra(), _F, self.rounding)
        return pl.when(active).then(raw).otherwise(0).cast(pl.Int64)


# --------------------------------------------------------------------------------------------
# bonuses
# --------------------------------------------------------------------------------------------


class _Bonus:
    """What the bonus rules share: scope ``"bonus"`` and no rule they depend on."""

    __slots__ = ()

    @property
    def scope(self) -> str:
        """``"bonus"``."""
        return "bonus"

    @property
    def depends_on(self) -> tuple[str, ...]:
        """None."""
        return ()


class _MemberOnlyBonus(_Bonus):
    """A bonus for the member alone: nothing for a referrer."""

    __slots__ = ()

    def referrer_points(self, ctx: EarnContext) -> int:
        """0."""
        return 0


@attrs.frozen(kw_only=True)
class WelcomeBonus(_MemberOnlyBonus):
    """Points once, on enrolment."""

    name: str = attrs.field(validator=c.non_empty_str)
    """Rule name."""
    points_awarded: int = attrs.field(alias="points", validator=_points_int)
    """Points awarded (option ``points``)."""
    budget: int | None = attrs.field(default=None, validator=_optional_budget)
    """Most points awarded in all (``None``: unlimited)."""

    @property
    def triggers(self) -> frozenset[str]:
        """Enrolments."""
        return frozenset({"enroll"})

    def points(self, ctx: EarnContext) -> int:
        """The bonus on enrolment."""
        return self.points_awarded if ctx.trigger == "enroll" else 0

    def points_expr(self) -> pl.Expr:
        """The bonus, over a frame of enrolments."""
        return pl.lit(self.points_awarded, dtype=pl.Int64)


@attrs.frozen(kw_only=True)
class BirthdayBonus(_MemberOnlyBonus):
    """Points with the first purchase in the member's birthday month, once per (local) year."""

    name: str = attrs.field(validator=c.non_empty_str)
    """Rule name."""
    points_awarded: int = attrs.field(alias="points", validator=_points_int)
    """Points awarded (option ``points``)."""
    budget: int | None = attrs.field(default=None, validator=_optional_budget)
    """Most points awarded in all (``None``: unlimited)."""

    @property
    def triggers(self) -> frozenset[str]:
        """Purchases."""
        return frozenset({"purchase"})

    def points(self, ctx: EarnContext) -> int:
        """The bonus when ``ctx.is_first_in_birthday_month``."""
        ok = ctx.trigger == "purchase" and ctx.is_first_in_birthday_month
        return self.points_awarded if ok else 0

    def points_expr(self) -> pl.Expr:
        """From the ``is_first_in_birthday_month`` column."""
        return (
            pl.when(pl.col("is_first_in_birthday_month"))
            .then(pl.lit(self.points_awarded, dtype=pl.Int64))
            .otherwise(pl.lit(0, dtype=pl.Int64))
        )


@attrs.frozen(kw_only=True)
class ReferralBonus(_Bonus):
    """On a referred member's first purchase: points for them and for their referrer."""

    name: str = attrs.field(validator=c.non_empty_str)
    """Rule name."""
    referee_points: int = attrs.field(validator=_points_int)
    """Points for the new member."""
    referrer_points_awarded: int = attrs.field(alias="referrer_points", validator=_points_int)
    """Points for the referrer (option ``referrer_points``)."""
    budget: int | None = attrs.field(default=None, validator=_optional_budget)
    """Most points (referee's plus referrer's) awarded in all (``None``: unlimited)."""

    @property
    def triggers(self) -> frozenset[str]:
        """Purchases."""
        return frozenset({"purchase"})

    def _applies(self, ctx: EarnContext) -> bool:
        return ctx.trigger == "purchase" and ctx.is_first_purchase and ctx.has_referrer

    def points(self, ctx: EarnContext) -> int:
        """The referee's bonus."""
        return self.referee_points if self._applies(ctx) else 0

    def referrer_points(self, ctx: EarnContext) -> int:
        """The referrer's bonus."""
        return self.referrer_points_awarded if self._applies(ctx) else 0

    def _flag(self) -> pl.Expr:
        return pl.col("is_first_purchase") & pl.col("has_referrer")

    def points_expr(self) -> pl.Expr:
        """The referee's bonus from ``is_first_purchase`` and ``has_referrer``."""
        return pl.when(self._flag()).then(self.referee_points).otherwise(0).cast(pl.Int64)

    def referrer_points_expr(self) -> pl.Expr:
        """The referrer's bonus (credit it to the referrer's id)."""
        return pl.when(self._flag()).then(self.referrer_points_awarded).otherwise(0).cast(pl.Int64)
