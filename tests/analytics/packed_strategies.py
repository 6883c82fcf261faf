"""Hypothesis strategies for the packed summary (``loyaltykit.analytics._summary_packed``).

:func:`summary_cases` draws transaction frames that probe the edges of the packing: customer ids
of 0 to 8 bytes sharing prefixes (with inner NUL bytes), several purchases per day, partial, full
and repeated refunds, refunds of unknown ids and after the observation end, purchases after it,
decimal and integer amounts with nulls, frames without a ``kind`` column, Date columns and a
time zone with DST changes, and the periods and time units of :func:`loyaltykit.summary`. Each
case says whether the packed plan *must* apply (:attr:`SummaryCase.packable`): a sufficient
condition taken from the module's documented rules, with margins.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import polars as pl
from hypothesis import strategies as st

START = dt.datetime(2024, 3, 25, 12, tzinfo=dt.UTC)
"""First possible purchase; the Berlin DST changes of 2024-03-31 and 2024-10-27 follow."""

ID_ALPHABET = ("\x00", "\x01", " ", "-", "0", "1", "9", "A", "Z", "a", "z", "\x7f")
"""Single-byte characters of the string ids: NUL (only inside an id), control, digits, letters."""

PERIODS = ("D", "W", "M", "H", "Q", "s")

TIME_UNITS: dict[str, tuple[str, ...]] = {"s": ("s", "H", "D")}
"""Time units drawn for a period (default: days, weeks, hours). Both plans divide durations
exactly (``exact_ratio``), so hourly periods in days or weeks must agree to the last bit too."""

_SHORTEST_PERIOD_S = {"s": 1, "H": 3_600, "D": 23 * 3_600, "W": 7 * 86_400 - 3_600}
_SHORTEST_PERIOD_S |= {"M": 28 * 86_400 - 3_600, "Q": 90 * 86_400 - 3_600}

AMOUNT_DTYPES: dict[str, pl.DataType] = {
    "dec2": pl.Decimal(18, 2),
    "dec4": pl.Decimal(18, 4),
    "dec0": pl.Decimal(10, 0),
    "int": pl.Int64(),
}


@dataclass(frozen=True)
class SummaryCase:
    """A transaction frame and the keyword arguments of :func:`loyaltykit.summary` for it."""

    frame: pl.DataFrame
    kwargs: dict[str, Any]
    packable: bool
    """The packed plan must apply (when the window holds a purchase): every id is at most 8
    bytes without a trailing NUL (or an integer), amounts are exact and not null (or not used),
    sums and the packed key are far from 64 bits."""

    @property
    def customer_id(self) -> str:
        """Name of the customer id column."""
        return str(self.kwargs.get("customer_id", "customer_id"))


def image(customer: str | int) -> int:
    """The integer the packed plan orders string ids by (the id itself for integers)."""
    if isinstance(customer, int):
        return customer
    return int.from_bytes(customer.encode().ljust(8, b"\x00"), "big")


@st.composite
def string_ids(draw: st.DrawFn, *, max_size: int = 10) -> list[str]:
    """Distinct ids of 0 to 8 bytes sharing a drawn prefix; NUL bytes only inside an id."""
    prefix = draw(st.text(st.sampled_from(ID_ALPHABET), max_size=6))
    suffixes = st.text(st.sampled_from(ID_ALPHABET), max_size=8 - len(prefix))
    ids = {(prefix + s).rstrip("\x00") for s in draw(st.lists(suffixes, min_size=1, max_size=20))}
    return sorted(ids)[:max_size] if len(ids) > max_size else sorted(ids)


def integer_ids(dtype: pl.DataType) -> st.SearchStrategy[list[int]]:
    """Distinct ids of an integer dtype: clustered around a drawn centre, or anywhere."""
    bits = 64 if dtype in (pl.Int64, pl.UInt64) else 32 if dtype in (pl.Int32, pl.UInt32) else 16
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    if not dtype.is_signed_integer():
        low, high = 0, (1 << bits) - 1

    @st.composite
    def draw_ids(draw: st.DrawFn) -> list[int]:
        centre = draw(st.sampled_from([low, -1, 0, 1 << 31, 1 << 62, 1 << 63, high]))
        centre = min(max(centre, low), high)
        spread = draw(st.sampled_from([10, 1 << 40, high - low]))
        values = st.integers(max(low, centre - spread), min(high, centre + spread))
        return draw(st.lists(values, min_size=1, max_size=10, unique=True))

    return draw_ids()


@st.composite
def summary_cases(
    draw: st.DrawFn,
    *,
    ids: st.SearchStrategy[list[str]] | st.SearchStrategy[list[int]] | None = None,
    id_dtype: pl.DataType | None = None,
    max_purchases: int = 40,
) -> SummaryCase:
    """A frame for :func:`loyaltykit.summary` and its arguments (see the module docstring).

    :param ids: strategy of the distinct customer ids (default :func:`string_ids`).
    :param id_dtype: dtype of the customer id column (default ``String``).
    """
    customers: list[Any] = list(draw(string_ids() if ids is None else ids))
    dtype = pl.String() if id_dtype is None else id_dtype
    day_span = draw(st.sampled_from([0, 1, 2, 10, 45, 400]))
    period = draw(st.sampled_from(PERIODS))
    zone = draw(st.sampled_from(["UTC", "Europe/Berlin", "date"]))
    amount_kind = draw(st.sampled_from([*AMOUNT_DTYPES, "none"]))
    big = draw(st.integers(0, 5)) == 0  # minor units up to 10**15: near the bounds
    negative = draw(st.integers(0, 5)) == 0
    nulls = draw(st.integers(0, 5)) == 0  # null amounts (the packed plan leaves those)
    tid_format = draw(st.sampled_from(["t{}", "purchase-{:024d}", "{}"]))

    def minor_units() -> int | None:
        if nulls and draw(st.integers(0, 3)) == 0:
            return None
        top = 10**15 if big else 100_000
        return draw(st.integers(-top if negative else 0, top))

    n = draw(st.integers(1, max_purchases))
    purchases: list[dict[str, Any]] = []
    for i in range(n):
        offset = dt.timedelta(
            days=draw(st.integers(0, day_span)), minutes=draw(st.integers(0, 24 * 60 - 1))
        )
        purchases.append(
            {
                "transaction_id": tid_format.format(i),
                "customer_id": draw(st.sampled_from(customers)),
                "occurred_at": START + offset,
                "amount": minor_units(),
                "kind": "purchase",
                "refund_of": None,
            }
        )
    if n > 1 and draw(st.booleans()):  # two purchases sharing a transaction id
        purchases[-1]["transaction_id"] = purchases[0]["transaction_id"]
    refunds: list[dict[str, Any]] = []
    refunded = draw(st.lists(st.integers(0, n - 1), max_size=n))  # repeats: several refunds
    for index in refunded:
        purchase = purchases[index]
        value = int(purchase["amount"] or 0)
        how = draw(st.sampled_from(["full", "part", "more", "null" if nulls else "full"]))
        amount = {"full": value, "more": value + 1, "null": None}.get(how)
        if how == "part":
            amount = draw(st.integers(min(0, value), max(0, value)))
        later = dt.timedelta(hours=draw(st.integers(0, 24 * 60)))
        refunds.append(
            {
                "transaction_id": f"r{len(refunds)}",
                "customer_id": purchase["customer_id"],
                "occurred_at": purchase["occurred_at"] + later,
                "amount": amount,
                "kind": "refund",
                "refund_of": purchase["transaction_id"],
            }
        )
    for j in range(draw(st.integers(0, 2))):  # refunds of unknown (or no) transactions
        refunds.append(
            {
                "transaction_id": f"u{j}",
                "customer_id": draw(st.sampled_from(customers)),
                "occurred_at": START + dt.timedelta(days=draw(st.integers(0, day_span))),
                "amount": draw(st.integers(0, 1_000)),
                "kind": "refund",
                "refund_of": draw(st.sampled_from([None, "nope", "t"])),
            }
        )
    rows = purchases + refunds
    scale = {"dec2": 2, "dec4": 4}.get(amount_kind, 0)
    amount_dtype = AMOUNT_DTYPES.get(amount_kind, pl.Decimal(18, 2))
    if isinstance(amount_dtype, pl.Decimal):
        amounts: list[Any] = [
            None if r["amount"] is None else Decimal(r["amount"]).scaleb(-scale) for r in rows
        ]
        if amount_kind == "dec0":
            amounts = [None if a is None else a % 10**9 for a in amounts]
    else:
        amounts = [r["amount"] for r in rows]
    frame = pl.DataFrame(
        {
            "transaction_id": [r["transaction_id"] for r in rows],
            "customer_id": pl.Series([r["customer_id"] for r in rows], dtype=dtype),
            "occurred_at": pl.Series(
                [r["occurred_at"] for r in rows], dtype=pl.Datetime("us", "UTC")
            ),
            "amount": pl.Series(amounts, dtype=amount_dtype),
            "kind": [r["kind"] for r in rows],
            "refund_of": pl.Series([r["refund_of"] for r in rows], dtype=pl.String),
        }
    )
    if zone == "date":
        frame = frame.with_columns(pl.col("occurred_at").dt.date())
    elif zone != "UTC":
        frame = frame.with_columns(pl.col("occurred_at").dt.convert_time_zone(zone))
    with_kind = draw(st.integers(0, 4)) > 0
    if not with_kind:
        frame = frame.drop("kind")
    frame = frame.sample(fraction=1.0, shuffle=True, seed=draw(st.integers(0, 2**16)))
    end = (START + dt.timedelta(days=draw(st.integers(-1, day_span + 1)))).date()
    observation_end: dt.date = end
    if draw(st.booleans()):
        observation_end = dt.datetime(end.year, end.month, end.day, 18, tzinfo=dt.UTC)
    kwargs: dict[str, Any] = {
        "observation_end": observation_end,
        "period": period,
        "time_unit": draw(st.sampled_from(TIME_UNITS.get(period, ("D", "W", "H")))),
        "amount": None if amount_kind == "none" else "amount",
    }
    if draw(st.integers(0, 4)) == 0:  # other column names
        frame = frame.rename({"customer_id": "member", "occurred_at": "at"})
        kwargs |= {"customer_id": "member", "timestamp": "at"}

    # a sufficient condition for the packed plan (the window's purchases are a subset of these)
    bought = [r for r in rows if r["kind"] == "purchase" or not with_kind]
    images = [image(r["customer_id"]) for r in bought]
    span = (day_span + 62) * 86_400 // _SHORTEST_PERIOD_S[period] + 3
    total = sum(abs(r["amount"] or 0) for r in rows) * 10 ** (4 - scale)
    exact = amount_kind == "none" or all(r["amount"] is not None for r in rows)
    packable = (
        exact
        and (max(images) - min(images) + 1) * span < 1 << 63
        and total < 1 << 36
        and span < 1 << 20
        and len(rows) < 1 << 10
    )
    return SummaryCase(frame, kwargs, packable)
