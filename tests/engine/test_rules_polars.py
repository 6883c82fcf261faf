"""Every earning and tier rule agrees with its polars expression, on random data."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction

import polars as pl
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from loyaltykit.core.program import EarnContext, Rounding, Tier, TierPolicy, round_ratio
from loyaltykit.core.records import LineItem
from loyaltykit.engine.rules import (
    BirthdayBonus,
    Campaign,
    PerUnit,
    ReferralBonus,
    TierMultiplier,
    WelcomeBonus,
    round_ratio_expr,
    running_cap_expr,
)
from loyaltykit.engine.tiers import WindowedMetric, tier_expr

UTC = dt.UTC
T0 = dt.datetime(2025, 3, 1, tzinfo=UTC)

money = st.decimals(min_value=0, max_value=5000, places=2, allow_nan=False, allow_infinity=False)
factor = st.decimals(min_value=0, max_value=5, places=3, allow_nan=False, allow_infinity=False)
boost = st.decimals(min_value=1, max_value=4, places=4, allow_nan=False, allow_infinity=False)
rounding = st.sampled_from(list(Rounding))
SKUS = ["s1", "s2", "s3"]
CATS = ["food", "drink", None]
TIERS = ["base", "silver", "gold"]


@st.composite
def purchases(draw: st.DrawFn) -> dict[str, object]:
    n_lines = draw(st.integers(0, 4))
    lines = [
        LineItem(
            sku=draw(st.sampled_from(SKUS)),
            amount=draw(money),
            category=draw(st.sampled_from(CATS)),
        )
        for _ in range(n_lines)
    ]
    amount = sum((li.amount for li in lines), Decimal(0)) if lines else draw(money)
    return {
        "items": lines,
        "amount": amount,
        "tier": draw(st.sampled_from(TIERS)),
        "channel": draw(st.sampled_from(["web", "store", None])),
        "occurred_at": T0 + dt.timedelta(hours=draw(st.integers(-200, 400))),
        "is_first_purchase": draw(st.booleans()),
        "has_referrer": draw(st.booleans()),
        "is_first_in_birthday_month": draw(st.booleans()),
    }


def ctx_of(p: dict[str, object], earlier: dict[str, int] | None = None) -> EarnContext:
    return EarnContext(
        trigger="purchase",
        member_id="m",
        occurred_at=p["occurred_at"],  # type: ignore[arg-type]
        amount=p["amount"],
        items=p["items"],  # type: ignore[arg-type]
        channel=p["channel"],  # type: ignore[arg-type]
        tier=p["tier"],  # type: ignore[arg-type]
        is_first_purchase=p["is_first_purchase"],  # type: ignore[arg-type]
        has_referrer=p["has_referrer"],  # type: ignore[arg-type]
        is_first_in_birthday_month=p["is_first_in_birthday_month"],  # type: ignore[arg-type]
        earlier=earlier or {},
    )


def frames(rows: list[dict[str, object]], rule: PerUnit) -> pl.DataFrame:
    """The bulk earning frame of ``rows`` with ``rule``'s weight column."""
    lines = []
    for i, p in enumerate(rows):
        items = p["items"] or [LineItem(sku="-", amount=p["amount"])]  # type: ignore[list-item]
        for li in items:  # type: ignore[attr-defined]
            lines.append(
                {
                    "row": i,
                    "amount": li.amount,
                    "sku": None if not p["items"] else li.sku,
                    "category": None if not p["items"] else li.category,
                }
            )
    line_frame = pl.DataFrame(
        lines,
        schema={
            "row": pl.Int64,
            "amount": pl.Decimal(18, 2),
            "sku": pl.String,
            "category": pl.String,
        },
    )
    weights = line_frame.group_by("row").agg(
        rule.line_weight_expr().sum().alias(rule.weight_column)
    )
    base = pl.DataFrame(
        [
            {k: v for k, v in p.items() if k not in ("items", "amount")} | {"row": i}
            for i, p in enumerate(rows)
        ],
        schema={
            "tier": pl.String,
            "channel": pl.String,
            "occurred_at": pl.Datetime("us", "UTC"),
            "is_first_purchase": pl.Boolean,
            "has_referrer": pl.Boolean,
            "is_first_in_birthday_month": pl.Boolean,
            "row": pl.Int64,
        },
    )
    return base.join(weights, on="row", how="left").sort("row")


@given(st.integers(-(10**30), 10**30), st.integers(1, 10**15), rounding)
@example(25, 2, Rounding.HALF_EVEN)
@example(-25, 2, Rounding.HALF_UP)
def test_round_ratio_matches_fraction_and_polars(num: int, den: int, mode: Rounding) -> None:
    exact = Fraction(num, den)
    got = round_ratio(num, den, mode)
    if mode is Rounding.DOWN:
        assert got == exact.__floor__()
    elif mode is Rounding.UP:
        assert got == exact.__ceil__()
    elif mode is Rounding.HALF_EVEN:
        assert got == round(exact)
    else:
        assert got == (exact + Fraction(1, 2)).__floor__()
    if abs(num) < 10**18:
        frame = pl.DataFrame({"n": [num]}, schema={"n": pl.Int128})
        assert frame.select(round_ratio_expr(pl.col("n"), den, mode))["n"][0] == got


@given(
    rows=st.lists(purchases(), min_size=1, max_size=12),
    ppu=st.decimals(min_value=0, max_value=20, places=2, allow_nan=False, allow_infinity=False),
    unit=st.sampled_from([Decimal(1), Decimal(10), Decimal("0.5"), Decimal(3)]),
    mode=rounding,
    cat_mult=st.dictionaries(st.sampled_from(["food", "drink"]), factor, max_size=2),
    sku_mult=st.dictionaries(st.sampled_from(SKUS), factor, max_size=2),
    tier_mult=st.dictionaries(st.sampled_from(TIERS), boost, max_size=3),
    camp_mult=boost,
    channels=st.sampled_from([(), ("web",), ("web", "store")]),
)
def test_transaction_rules_agree_with_polars(
    rows: list[dict[str, object]],
    ppu: Decimal,
    unit: Decimal,
    mode: Rounding,
    cat_mult: dict[str, Decimal],
    sku_mult: dict[str, Decimal],
    tier_mult: dict[str, Decimal],
    camp_mult: Decimal,
    channels: tuple[str, ...],
) -> None:
    base = PerUnit(
        name="base",
        points_per_unit=ppu,
        unit_amount=unit,
        rounding=mode,
        category_multipliers=cat_mult,
        sku_multipliers=sku_mult,
    )
    tiers = TierMultiplier(name="tiers", of="base", multipliers=tier_mult, rounding=mode)
    camp = Campaign(
        name="camp",
        of="base",
        multiplier=camp_mult,
        start=T0,
        end=T0 + dt.timedelta(days=7),
        channels=channels,
        rounding=mode,
    )
    per_event = []
    for p in rows:
        b = base.points(ctx_of(p))
        per_event.append(
            (b, tiers.points(ctx_of(p, {"base": b})), camp.points(ctx_of(p, {"base": b})))
        )
    frame = frames(rows, base)
    frame = frame.with_columns(base.points_expr().alias("base"))
    frame = frame.with_columns(tiers.points_expr().alias("tiers"), camp.points_expr().alias("camp"))
    bulk = list(zip(frame["base"], frame["tiers"], frame["camp"], strict=True))
    assert bulk == per_event


@given(rows=st.lists(purchases(), min_size=1, max_size=10), pts=st.integers(0, 500))
def test_bonus_rules_agree_with_polars(rows: list[dict[str, object]], pts: int) -> None:
    frame = frames(rows, PerUnit(name="x", points_per_unit=1))
    birthday = BirthdayBonus(name="bday", points=pts)
    referral = ReferralBonus(name="ref", referee_points=pts, referrer_points=pts + 1)
    welcome = WelcomeBonus(name="w", points=pts)
    got = frame.select(
        birthday.points_expr().alias("b"),
        referral.points_expr().alias("r"),
        referral.referrer_points_expr().alias("rr"),
        welcome.points_expr().alias("w"),
    )
    for i, p in enumerate(rows):
        ctx = ctx_of(p)
        assert got["b"][i] == birthday.points(ctx)
        assert got["r"][i] == referral.points(ctx)
        assert got["rr"][i] == referral.referrer_points(ctx)
        enrol = EarnContext(trigger="enroll", member_id="m", occurred_at=T0)
        assert got["w"][i] == welcome.points(enrol)


@given(st.lists(st.integers(0, 300), max_size=30), st.integers(0, 2000))
@example([], 10)
def test_running_cap_matches_one_at_a_time(points: list[int], cap: int) -> None:
    granted, total = [], 0
    for p in points:
        g = max(0, min(p, cap - total))
        granted.append(g)
        total += g
    frame = pl.DataFrame({"p": points}, schema={"p": pl.Int64})
    assert frame.select(running_cap_expr(pl.col("p"), cap))["p"].to_list() == granted


@given(
    st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 300)), max_size=30),
    st.integers(0, 900),
)
def test_running_cap_per_group(rows: list[tuple[str, int]], cap: int) -> None:
    totals: dict[str, int] = {}
    granted = []
    for key, p in rows:
        g = max(0, min(p, cap - totals.get(key, 0)))
        totals[key] = totals.get(key, 0) + g
        granted.append(g)
    frame = pl.DataFrame(rows, schema={"k": pl.String, "p": pl.Int64}, orient="row")
    got = frame.select(running_cap_expr(pl.col("p"), cap, over="k"))["p"].to_list()
    assert got == granted


@given(
    st.lists(st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False), max_size=20),
    st.lists(
        st.decimals(min_value=1, max_value=10**5, places=2, allow_nan=False),
        min_size=1,
        max_size=4,
        unique=True,
    ),
)
def test_tier_expr_matches_qualified(values: list[Decimal], thresholds: list[Decimal]) -> None:
    levels = [Tier(name="t0", threshold=0)] + [
        Tier(name=f"t{i + 1}", threshold=t) for i, t in enumerate(sorted(thresholds))
    ]
    policy = TierPolicy(rule=WindowedMetric(metric="spend"), levels=levels)
    frame = pl.DataFrame({"v": values}, schema={"v": pl.Decimal(18, 2)})
    got = frame.select(tier_expr(policy, pl.col("v")).alias("t"))["t"].to_list()
    assert got == [policy.qualified(v) for v in values]


@pytest.mark.parametrize("metric", ["spend", "points", "visits"])
def test_metric_value_expr_sums_like_activity_totals(metric: str) -> None:
    from loyaltykit.engine.store import ActivityTotals

    rule = WindowedMetric(metric=metric, window="rolling", window_days=30)
    frame = pl.DataFrame(
        {"spend": [Decimal("10.50"), Decimal("-2.25")], "points": [10, -2], "visits": [1, 0]},
        schema={"spend": pl.Decimal(18, 2), "points": pl.Int64, "visits": pl.Int64},
    )
    bulk = frame.select(rule.value_expr().sum()).item()
    totals = ActivityTotals(spend=Decimal("8.25"), points=8, visits=1)
    assert Decimal(str(bulk)) == rule.value(totals)


@st.composite
def purchase_streams(
    draw: st.DrawFn, max_minutes: int = 200 * 24 * 60
) -> list[tuple[str, int, Decimal]]:
    """(member, minutes after the start, amount) in time order."""
    n = draw(st.integers(1, 25))
    minutes = sorted(
        draw(st.lists(st.integers(0, max_minutes), min_size=n, max_size=n, unique=True))
    )
    return [
        (draw(st.sampled_from(["a", "b"])), m, draw(st.decimals(0, 120, places=2, allow_nan=False)))
        for m in minutes
    ]


@pytest.mark.parametrize("window", ["calendar_year", "rolling", "anniversary"])
@given(
    stream=purchase_streams(max_minutes=800 * 24 * 60),
    enrolled=st.sampled_from(
        [
            dt.datetime(2024, 2, 29, 15, tzinfo=UTC),
            dt.datetime(2024, 7, 1, tzinfo=UTC),
            dt.datetime(2024, 12, 31, 23, 30, tzinfo=UTC),
        ]
    ),
    zone=st.sampled_from(["UTC", "Asia/Tokyo", "America/New_York"]),
)
def test_tier_upgrades_agree_with_polars(
    window: str, stream: list[tuple[str, int, Decimal]], enrolled: dt.datetime, zone: str
) -> None:
    """The engine's tier after each purchase equals WindowedMetric.qualifying_expr mapped by
    tier_expr (tiers kept once reached: downgrade = never)."""
    from loyaltykit.core.program import Program
    from loyaltykit.engine import Engine, MemoryStore

    policy = TierPolicy(
        rule=WindowedMetric(metric="spend", window=window, window_days=30),
        levels=[
            Tier(name="t0", threshold=0),
            Tier(name="t1", threshold=100),
            Tier(name="t2", threshold=250),
        ],
        downgrade="never",
    )
    engine = Engine(
        Program(
            name="p", earning=[PerUnit(name="base", points_per_unit=1)], tiers=policy, timezone=zone
        ),
        MemoryStore(),
    )
    start = enrolled + dt.timedelta(hours=1)
    engine.enroll("a", at=enrolled, event_id="ea")
    engine.enroll("b", at=enrolled, event_id="eb")
    tiers_after = []
    for i, (member, minute, amount) in enumerate(stream):
        when = start + dt.timedelta(minutes=minute)
        engine.purchase(member, amount, at=when, event_id=f"e{i}", transaction_id=f"t{i}")
        state = engine.store.get_member(member)
        assert state is not None
        tiers_after.append(state.tier)

    frame = pl.DataFrame(
        [
            {
                "member_id": m,
                "occurred_at": start + dt.timedelta(minutes=mi),
                "enrolled_at": enrolled,
                "spend": a,
            }
            for m, mi, a in stream
        ],
        schema={
            "member_id": pl.String,
            "occurred_at": pl.Datetime("us", "UTC"),
            "enrolled_at": pl.Datetime("us", "UTC"),
            "spend": pl.Decimal(18, 2),
        },
    )
    # sum exact integer cents, and compare with thresholds in cents
    cents = (policy.rule.value_expr() * 100).cast(pl.Int64)
    in_cents = TierPolicy(
        rule=policy.rule,
        levels=[Tier(name=t.name, threshold=t.threshold * 100) for t in policy.levels],
    )
    qualifying = policy.rule.qualifying_expr(cents, zone=zone)
    rank = {t.name: i for i, t in enumerate(policy.levels)}
    bulk = (
        frame.with_columns(tier_expr(in_cents, qualifying).alias("qualified"))
        .with_columns(pl.col("qualified").replace_strict(rank, return_dtype=pl.Int64).alias("r"))
        .with_columns(pl.col("r").cum_max().over("member_id").alias("kept"))
    )
    names = [t.name for t in policy.levels]
    assert [names[r] for r in bulk["kept"]] == tiers_after


@given(
    stream=purchase_streams(),
    per_txn=st.one_of(st.none(), st.integers(0, 80)),
    per_day=st.one_of(st.none(), st.integers(0, 150)),
)
def test_caps_agree_with_polars(
    stream: list[tuple[str, int, Decimal]], per_txn: int | None, per_day: int | None
) -> None:
    """Engine points under per-transaction and per-day caps equal the bulk formula."""
    from loyaltykit.core.program import Caps, Program
    from loyaltykit.engine import Engine, MemoryStore

    rule = PerUnit(name="base", points_per_unit=1)
    engine = Engine(
        Program(name="p", earning=[rule], caps=Caps(per_transaction=per_txn, per_day=per_day)),
        MemoryStore(),
    )
    start = dt.datetime(2025, 1, 1, tzinfo=UTC)
    engine.enroll("a", at=start, event_id="ea")
    engine.enroll("b", at=start, event_id="eb")
    # several purchases per day: squeeze the minutes into a few days
    rows = [(m, start + dt.timedelta(minutes=mi // 50), a) for m, mi, a in stream]
    got = [
        engine.purchase(m, a, at=t, event_id=f"e{i}", transaction_id=f"t{i}").details["points"]
        for i, (m, t, a) in enumerate(rows)
    ]
    frame = pl.DataFrame(
        [{"member": m, "occurred_at": t, "amount": a} for m, t, a in rows],
        schema={
            "member": pl.String,
            "occurred_at": pl.Datetime("us", "UTC"),
            "amount": pl.Decimal(18, 2),
        },
    ).with_columns(
        rule.line_weight_expr().alias(rule.weight_column),
        pl.col("occurred_at").dt.date().alias("day"),
    )
    points = rule.points_expr()
    if per_txn is not None:
        points = pl.min_horizontal(points, pl.lit(per_txn))
    frame = frame.with_columns(points.alias("p"))
    if per_day is not None:
        frame = frame.with_columns(
            running_cap_expr(pl.col("p"), per_day, over=["member", "day"]).alias("p")
        )
    assert frame["p"].to_list() == got


@given(
    stream=purchase_streams(max_minutes=800 * 24 * 60),
    birthdays=st.tuples(
        st.one_of(st.none(), st.dates(dt.date(1950, 1, 1), dt.date(2005, 12, 31))),
        st.one_of(st.none(), st.dates(dt.date(1950, 1, 1), dt.date(2005, 12, 31))),
    ),
    zone=st.sampled_from(["UTC", "Pacific/Auckland"]),
)
def test_birthday_and_first_purchase_flags_agree_with_polars(
    stream: list[tuple[str, int, Decimal]],
    birthdays: tuple[dt.date | None, dt.date | None],
    zone: str,
) -> None:
    from loyaltykit.core.program import Program
    from loyaltykit.engine import Engine, MemoryStore
    from loyaltykit.engine.rules import purchase_flags_expr

    bday = BirthdayBonus(name="bday", points=7)
    engine = Engine(Program(name="p", earning=[bday], timezone=zone), MemoryStore())
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    born = dict(zip(["a", "b"], birthdays, strict=True))
    for m in ("a", "b"):
        engine.enroll(m, at=start, event_id=f"en-{m}", birthday=born[m])
    got = []
    for i, (member, minute, amount) in enumerate(stream):
        when = start + dt.timedelta(minutes=minute * 3)
        out = engine.purchase(member, amount, at=when, event_id=f"e{i}", transaction_id=f"t{i}")
        got.append(out.details["rules"]["bday"])
    frame = pl.DataFrame(
        [
            {
                "member_id": m,
                "occurred_at": start + dt.timedelta(minutes=mi * 3),
                "birthday": born[m],
            }
            for m, mi, _ in stream
        ],
        schema={
            "member_id": pl.String,
            "occurred_at": pl.Datetime("us", "UTC"),
            "birthday": pl.Date,
        },
    )
    bulk = frame.with_columns(purchase_flags_expr(zone=zone)).with_columns(
        bday.points_expr().alias("p")
    )
    assert bulk["p"].to_list() == got
    firsts = bulk["is_first_purchase"].to_list()
    seen: set[str] = set()
    for (member, _, _), flag in zip(stream, firsts, strict=True):
        assert flag == (member not in seen)
        seen.add(member)
