"""Helpers shared by the analytics modules: frame kinds, time units, periods and dates.

Everything here builds polars expressions; nothing loops over rows.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Final, Literal, TypeAlias

import polars as pl

from loyaltykit.errors import InvalidValueError, ModelInputError
from loyaltykit.protocols import FrameT

__all__ = [
    "PERIODS",
    "TIME_UNITS",
    "DateLike",
    "Period",
    "TimeUnit",
    "as_lazy",
    "check_columns",
    "exact_ratio",
    "like",
    "local_naive",
    "period_start",
    "period_start_of",
    "unit_micros",
]

TimeUnit: TypeAlias = Literal["s", "min", "H", "h", "D", "W"]
"""Units of durations (recency, T, gaps): seconds, minutes, hours, days, weeks (7 days)."""

Period: TypeAlias = Literal["s", "min", "H", "h", "D", "W", "M", "Q", "Y"]
"""Calendar periods purchases are grouped into: second ... day, ISO week (Monday first), month,
quarter, year."""

DateLike: TypeAlias = dt.date | dt.datetime
"""A calendar date (read in the time zone of the data) or a timezone-aware datetime."""

_MICROS_PER_SECOND: Final = 1_000_000

TIME_UNITS: Final[dict[str, int]] = {
    "s": _MICROS_PER_SECOND,
    "min": 60 * _MICROS_PER_SECOND,
    "H": 3_600 * _MICROS_PER_SECOND,
    "h": 3_600 * _MICROS_PER_SECOND,
    "D": 86_400 * _MICROS_PER_SECOND,
    "W": 7 * 86_400 * _MICROS_PER_SECOND,
}
"""Length of each time unit in microseconds."""

_FIXED_PERIODS: Final[dict[str, int]] = {k: v for k, v in TIME_UNITS.items() if k != "W"}
_CALENDAR_PERIODS: Final[dict[str, str]] = {"W": "1w", "M": "1mo", "Q": "1q", "Y": "1y"}
PERIODS: Final[tuple[str, ...]] = (*_FIXED_PERIODS, *_CALENDAR_PERIODS)
"""The accepted period codes."""


def as_lazy(frame: pl.DataFrame | pl.LazyFrame, owner: str, name: str) -> pl.LazyFrame:
    """``frame`` as a LazyFrame; anything that is not a polars frame is refused."""
    if isinstance(frame, pl.LazyFrame):
        return frame
    if isinstance(frame, pl.DataFrame):
        return frame.lazy()
    raise InvalidValueError(
        owner,
        name,
        type(frame).__name__,
        "must be a polars DataFrame or LazyFrame; read files and pandas/pyarrow frames with "
        "loyaltykit.read_transactions (or pl.from_pandas / pl.from_arrow) first",
    )


def exact_ratio(value: pl.Expr, numerator: int, denominator: int) -> pl.Expr:
    """``value x numerator / denominator`` as Float64, correctly rounded, like Python's ``/``.

    ``value`` is an integer expression (a count of periods, say); the result is the nearest
    float to the exact ratio as long as ``value x numerator / gcd`` stays below 2**53. polars
    divides by a literal as a multiplication by its reciprocal, which can miss the nearest float
    by one bit (``x / 24`` for ``x = 2158`` hours gives ``89.91666666666667``, the exact ratio
    rounds to ``...666``), and lifetimes, with numpy's division, is exact. Dividing by a
    column of the denominator (``x * 0 + denominator``: the optimizer does not fold it into a
    literal) makes polars divide element by element. A test checks this against Python.
    """
    gcd = math.gcd(numerator, denominator)
    scaled = value.cast(pl.Int64) * (numerator // gcd)
    if denominator == gcd:
        return scaled.cast(pl.Float64)
    return scaled.cast(pl.Float64) / (scaled * 0 + denominator // gcd).cast(pl.Float64)


def like(template: FrameT, result: pl.LazyFrame) -> FrameT:
    """``result`` as the same kind of frame as ``template`` (collected if it was eager)."""
    if isinstance(template, pl.LazyFrame):
        return result
    return result.collect()


_PACKED_SORT_MIN_ROWS: Final = 50_000


def sort_frame(frame: pl.DataFrame, by: str) -> pl.DataFrame:
    """``frame`` sorted by the column ``by``, as ``frame.sort(by)`` orders it.

    Large frames keyed by short strings (at most 16 bytes, no NUL byte: customer ids such as
    ``"C000123"`` or ``"4711-0815"``) are sorted by a fixed-width integer image of the key
    instead: its UTF-8 bytes, padded with zero bytes and read big-endian as ``UInt64`` or
    ``UInt128``. Integers compare like the byte strings (and polars orders strings by their
    bytes), so the order is the same; sorting integers saves about half of a string sort.
    Other frames use the string sort.
    """
    column = frame.get_column(by)
    if column.dtype != pl.String or frame.height < _PACKED_SORT_MIN_ROWS:
        return frame.sort(by)
    stats = frame.select(
        pl.col(by).str.len_bytes().max().alias("width"),
        pl.col(by).str.contains("\x00", literal=True).any().alias("nul"),
    ).row(0)
    width, nul = stats
    if width is None or width > 16 or nul:
        return frame.sort(by)
    size, dtype = (8, pl.UInt64) if width <= 8 else (16, pl.UInt128)
    image = (
        pl.col(by)
        .str.pad_end(size, "\x00")
        .cast(pl.Binary)
        .bin.head(size)
        .bin.reinterpret(dtype=dtype, endianness="big")
    )
    return frame.sort(image)


def like_sorted(template: FrameT, result: pl.LazyFrame, by: str) -> FrameT:
    """:func:`like`, sorted by the column ``by`` (with :func:`sort_frame` when eager)."""
    if isinstance(template, pl.LazyFrame):
        return result.sort(by)
    return sort_frame(result.collect(), by)


def check_columns(schema: pl.Schema, needed: dict[str, str], owner: str) -> None:
    """Raise :class:`ModelInputError` when a needed column is missing.

    :param needed: ``{column name: what it is for}``.
    """
    missing = [f"{col!r} ({why})" for col, why in needed.items() if col not in schema]
    if missing:
        raise ModelInputError(
            f"{owner}: missing column(s) {', '.join(missing)}; the frame has "
            f"{list(schema.names())}. Pass the column names as keyword arguments "
            "(customer_id=..., timestamp=..., amount=...)"
        )


def unit_micros(time_unit: str, owner: str, name: str = "time_unit") -> int:
    """Length of ``time_unit`` in microseconds."""
    try:
        return TIME_UNITS[time_unit]
    except KeyError:
        raise InvalidValueError(
            owner, name, time_unit, f"must be one of {', '.join(TIME_UNITS)}"
        ) from None


def _check_period(period: str, owner: str) -> None:
    if period not in PERIODS:
        raise InvalidValueError(owner, "period", period, f"must be one of {', '.join(PERIODS)}")


def timestamp_zone(schema: pl.Schema, column: str, owner: str) -> str | None:
    """The time zone of timestamp column ``column`` (``None`` for a Date column).

    :raises ModelInputError: for a naive Datetime or a column that is not a date/time.
    """
    dtype = schema[column]
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            raise ModelInputError(
                f"{owner}: column {column!r} holds naive timestamps; declare their time zone, "
                f'e.g. frame.with_columns(pl.col("{column}").dt.replace_time_zone("UTC")), or '
                "read the data with loyaltykit.read_transactions(..., timezone=...)"
            )
        return dtype.time_zone
    if dtype == pl.Date:
        return None
    raise ModelInputError(
        f"{owner}: column {column!r} has dtype {dtype}, expected a timezone-aware Datetime or a "
        "Date; parse it first (loyaltykit.read_transactions does)"
    )


def local_naive(expr: pl.Expr, zone: str | None) -> pl.Expr:
    """Wall-clock time of ``expr`` in its own time zone, as naive ``Datetime("us")``."""
    if zone is None:  # a Date column
        return expr.cast(pl.Datetime("us"))
    return expr.dt.replace_time_zone(None).cast(pl.Datetime("us"))


def period_start(naive: pl.Expr, period: str, owner: str) -> pl.Expr:
    """Start of the period of each naive timestamp, as Int64 microseconds since the epoch.

    Fixed periods (seconds to days) are integer floor divisions; weeks (starting Monday), months,
    quarters and years use :meth:`polars.Expr.dt.truncate`.
    """
    _check_period(period, owner)
    if period in _FIXED_PERIODS:
        size = _FIXED_PERIODS[period]
        micros = naive.dt.epoch("us")
        return (micros // size) * size
    return naive.dt.truncate(_CALENDAR_PERIODS[period]).dt.epoch("us")


def period_number(naive: pl.Expr, period: str, owner: str) -> tuple[pl.Expr, int]:
    """A compact integer number of the period of each naive timestamp, and its scale.

    ``number x scale`` is the period start in microseconds since the epoch. Fixed periods count
    periods since the epoch (Int32 from minutes up, Int64 for seconds); weeks, months, quarters
    and years count the days to their first day (Int32, scale one day). Small integer keys make
    the grouping by customer and period cheaper than microsecond timestamps.
    """
    _check_period(period, owner)
    if period in _FIXED_PERIODS:
        size = _FIXED_PERIODS[period]
        number = naive.dt.epoch("us") // size
        return (number.cast(pl.Int32) if size >= 60 * _MICROS_PER_SECOND else number), size
    day = TIME_UNITS["D"]
    return naive.dt.truncate(_CALENDAR_PERIODS[period]).dt.epoch("d").cast(pl.Int32), day


def period_start_of(value: DateLike, zone: str | None, period: str, owner: str, name: str) -> int:
    """Period start (Int64 microseconds, wall-clock) of one date or datetime ``value``.

    A :class:`datetime.date` is that calendar day in the data's time zone; a datetime must be
    timezone-aware and is converted to the data's time zone.
    """
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise InvalidValueError(
                owner,
                name,
                value,
                "must be timezone-aware (e.g. datetime(..., tzinfo=UTC)) or a datetime.date",
            )
        naive_value = pl.lit(value).dt.convert_time_zone(zone or "UTC").dt.replace_time_zone(None)
    elif isinstance(value, dt.date):
        naive_value = pl.lit(dt.datetime(value.year, value.month, value.day))
    else:
        raise InvalidValueError(owner, name, value, "must be a datetime.date or datetime.datetime")
    start = pl.select(period_start(naive_value.cast(pl.Datetime("us")), period, owner)).item()
    return int(start)
