"""Reading and validating raw transactions, feedback and interaction logs at the edge.

Raw data enters loyaltykit here, once. :func:`read_transactions`, :func:`read_feedback` and
:func:`read_interactions` take a file (CSV, Parquet, Arrow IPC) or an in-memory frame (polars,
pandas, pyarrow), map its column names, parse and check every value, and return a polars frame in
the core schema (:mod:`loyaltykit.schema`): ids as strings, timestamps as timezone-aware UTC
``Datetime("us", "UTC")``, money as exact ``Decimal(18, 2)``.

Nothing is silently dropped or coerced. Every value that cannot be taken as it is becomes a
*problem*: its row number (0-based, counting data rows of the source), column, raw value and a
reason that says how to fix it. With ``strict=True`` (the default) any problem raises
:class:`~loyaltykit.errors.DataValidationError`, which lists the first problems and counts all of
them. With ``strict=False`` the reader returns a :class:`ReadResult`: the clean rows, and the
rejected rows with their original values and every reason they were rejected.

A whole-frame problem (a missing column, a file that does not exist or cannot be parsed, an unknown
time zone) raises :class:`~loyaltykit.errors.InvalidValueError` in both modes: there is no clean
part to return.

The ``read_*`` functions materialise the source. For input larger than memory,
:func:`scan_transactions`, :func:`scan_feedback` and :func:`scan_interactions` take the same
arguments, scan files lazily and run the same checks as queries on polars' streaming engine that
collect only the problems; they return a ``LazyFrame`` in the core schema (``strict=True``) or a
:class:`LazyReadResult` (``strict=False``). Both kinds of reader share the parsing and checking
code below and give the same rows, problems, row numbers and errors.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple, TypeAlias, overload

import polars as pl

from loyaltykit.errors import DataValidationError, InvalidValueError, RowProblem
from loyaltykit.schema import (
    AMOUNT_DTYPE,
    FEEDBACK_SCHEMA,
    INTERACTION_SCHEMA,
    TIMESTAMP_DTYPE,
    TRANSACTION_SCHEMA,
)

__all__ = [
    "MAX_PROBLEMS_SHOWN",
    "LazyReadResult",
    "ReadResult",
    "Source",
    "read_feedback",
    "read_interactions",
    "read_transactions",
    "scan_feedback",
    "scan_interactions",
    "scan_transactions",
]

Source: TypeAlias = Any
"""What the readers accept: a path (``str`` or :class:`~pathlib.Path`) to a ``.csv``,
``.parquet`` or ``.arrow``/``.ipc``/``.feather`` file, a polars ``DataFrame`` or ``LazyFrame``,
a pandas ``DataFrame`` or a pyarrow ``Table``/``RecordBatch`` (pandas and pyarrow need the
``interop`` extra)."""

MAX_PROBLEMS_SHOWN: Final = 20
"""How many problems a :class:`~loyaltykit.errors.DataValidationError` lists (it counts all)."""

_ROW = "__row"
_HINT = (
    "fix the source, or pass strict=False to get the clean rows and the rejected rows with "
    "their reasons"
)


class ReadResult(NamedTuple):
    """What a reader returns with ``strict=False``: unpack as ``clean, rejected = ...``."""

    clean: pl.DataFrame
    """The rows without any problem, in the core schema, in source order."""
    rejected: pl.DataFrame
    """The rows with at least one problem: ``row`` (0-based source row number, Int64), the
    source's columns with their original values, and ``reasons`` (String: every problem of the
    row, ``"; "``-separated, each as ``column 'name' = value: reason``), in source order."""


class LazyReadResult(NamedTuple):
    """What a ``scan_*`` function returns with ``strict=False``: ``clean, rejected = ...``.

    The same rows as the :class:`ReadResult` of the matching ``read_*`` function, but the clean
    part stays lazy (it can be larger than memory); the rejected rows, which validation had to
    find, are collected.
    """

    clean: pl.LazyFrame
    """The rows without any problem, in the core schema, in source order: a query that reads and
    parses the source again when collected (and leaves out the rejected rows), so the source must
    not change before it is collected."""
    rejected: pl.DataFrame
    """As :attr:`ReadResult.rejected`: ``row``, the source's columns with their original values
    and ``reasons``, in source order."""


# ---------------------------------------------------------------------------------------------
# loading sources
# ---------------------------------------------------------------------------------------------

_CSV_SUFFIXES: Final = {".csv", ".txt", ".tsv"}
_PARQUET_SUFFIXES: Final = {".parquet", ".pq"}
_IPC_SUFFIXES: Final = {".arrow", ".ipc", ".feather"}


def _in_memory(source: Source, owner: str) -> pl.DataFrame:
    """A polars, pandas or pyarrow frame as a polars ``DataFrame``."""
    if isinstance(source, pl.DataFrame):
        return source
    module = type(source).__module__.split(".")[0]
    if module == "pandas":
        try:
            frame = pl.from_pandas(source)
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise InvalidValueError(
                owner,
                "source",
                type(source).__name__,
                f"reading pandas frames needs the 'interop' extra ({exc}): "
                "pip install 'loyaltykit[interop]'",
            ) from exc
        assert isinstance(frame, pl.DataFrame)
        return frame
    if module == "pyarrow":
        arrow = pl.from_arrow(source)
        if not isinstance(arrow, pl.DataFrame):
            raise InvalidValueError(
                owner, "source", type(source).__name__, "must be a pyarrow Table or RecordBatch"
            )
        return arrow
    raise InvalidValueError(
        owner,
        "source",
        type(source).__name__,
        "must be a path to a .csv, .parquet or .arrow file, or a polars, pandas or pyarrow frame",
    )


def _load(source: Source, owner: str) -> pl.DataFrame:
    """The whole source in memory (the ``read_*`` functions)."""
    if isinstance(source, pl.LazyFrame):
        return source.collect()
    if isinstance(source, str | Path):
        path = Path(source)
        frame = _scan_file(path, owner)
        with _reading(path, owner):
            return frame.collect()
    return _in_memory(source, owner)


def _scan(source: Source, owner: str) -> pl.LazyFrame:
    """The source as a lazy frame (the ``scan_*`` functions); files are scanned, not read."""
    if isinstance(source, pl.LazyFrame):
        return source
    if isinstance(source, str | Path):
        return _scan_file(Path(source), owner)
    return _in_memory(source, owner).lazy()


def _scan_file(path: Path, owner: str) -> pl.LazyFrame:
    """Scan a file by its suffix; reads only what it takes to know the columns."""
    if not path.is_file():
        raise InvalidValueError(owner, "source", str(path), "no such file")
    suffix = path.suffix.lower()
    with _reading(path, owner):
        if suffix in _CSV_SUFFIXES:
            # every column as text: parsing and checking is ours, so nothing is coerced
            frame = pl.scan_csv(
                path,
                infer_schema=False,
                separator="\t" if suffix == ".tsv" else ",",
            )
        elif suffix in _PARQUET_SUFFIXES:
            frame = pl.scan_parquet(path)
        elif suffix in _IPC_SUFFIXES:
            frame = pl.scan_ipc(path)
        else:
            raise InvalidValueError(
                owner,
                "source",
                str(path),
                "unknown file type; use .csv (or .tsv), .parquet, or .arrow/.ipc/.feather",
            )
        frame.collect_schema()  # a header or footer that cannot be read fails here
    return frame


@contextmanager
def _reading(path: Path | None, owner: str) -> Iterator[None]:
    """Errors of polars or the OS while reading the file ``path`` are the source's fault."""
    try:
        yield
    except (pl.exceptions.PolarsError, OSError) as exc:
        if path is None:
            raise
        raise InvalidValueError(
            owner, "source", str(path), f"cannot be read as a {path.suffix.lower()} file: {exc}"
        ) from exc


def _check_timezone(timezone: str | None, owner: str) -> None:
    if timezone is None:
        return
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidValueError(
            owner,
            "timezone",
            timezone,
            "is not a known IANA time zone (e.g. 'Europe/Paris', 'UTC')",
        ) from None


def _rename(
    frame: pl.LazyFrame,
    schema: pl.Schema,
    columns: Mapping[str, str] | None,
    required: tuple[str, ...],
    owner: str,
) -> pl.LazyFrame:
    """Rename source columns to schema names and check the required ones are there."""
    mapping = dict(columns or {})
    names = frame.collect_schema().names()
    unknown = [name for name in mapping if name not in schema]
    if unknown:
        raise InvalidValueError(
            owner,
            "columns",
            unknown,
            f"keys must be column names of the core schema: {list(schema.names())}",
        )
    absent = {target: src for target, src in mapping.items() if src not in names}
    if absent:
        raise InvalidValueError(
            owner,
            "columns",
            absent,
            f"names source columns that do not exist; the source has {names}",
        )
    clashes = [target for target in mapping if target in names and mapping[target] != target]
    if clashes:
        frame = frame.drop(clashes)
    frame = frame.rename({src: target for target, src in mapping.items()})
    names = frame.collect_schema().names()
    missing = [name for name in required if name not in names]
    if missing:
        raise InvalidValueError(
            owner,
            "columns",
            missing,
            f"missing required column(s); the source has {names}. Map source names "
            f"with columns={{{missing[0]!r}: 'YourColumn'}}",
        )
    return frame


# ---------------------------------------------------------------------------------------------
# parsing: each parser returns (parsed expression, reason expression: String, null when fine)
# ---------------------------------------------------------------------------------------------

Parsed: TypeAlias = tuple[pl.Expr, pl.Expr]

_NO_PROBLEM: Final = pl.lit(None, pl.String)


def _blank(expr: pl.Expr) -> pl.Expr:
    return expr.is_null() | (expr.str.strip_chars() == "")


def _parse_id(col: str, dtype: pl.DataType, *, nullable: bool = False) -> Parsed:
    raw = pl.col(col)
    if dtype == pl.String:
        text = raw
    elif dtype.is_integer() or dtype in (pl.Categorical, pl.Enum) or dtype == pl.Null:
        text = raw.cast(pl.String)
    else:
        bad = pl.lit(f"ids must be text or integers, not {dtype}")
        return pl.lit(None, pl.String), pl.when(raw.is_not_null()).then(bad).otherwise(
            None if nullable else pl.lit("missing id")
        )
    if nullable:
        reason = pl.when(text.is_not_null() & (text.str.strip_chars() == "")).then(
            pl.lit("empty id; leave the cell empty (null) or give an id")
        )
        return text, reason.otherwise(_NO_PROBLEM)
    return text, pl.when(_blank(text)).then(pl.lit("missing id")).otherwise(_NO_PROBLEM)


_AWARE_FORMATS: Final = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z")
_NAIVE_FORMATS: Final = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d")
_OFFSET_RE: Final = r"([+-]\d{2}:?\d{2}|Z)$"


def _localize(naive: pl.Expr, timezone: str | None, has_value: pl.Expr) -> Parsed:
    """Attach ``timezone`` to naive timestamps, with the reasons when that is impossible."""
    if timezone is None:
        reason = (
            pl.when(has_value)
            .then(
                pl.lit(
                    "naive timestamp (no UTC offset) and no declared time zone; pass "
                    "timezone='Europe/Paris' (the zone the times were recorded in) or write "
                    "offsets, e.g. 2024-03-01T14:30:00+01:00"
                )
            )
            .otherwise(_NO_PROBLEM)
        )
        return pl.lit(None, TIMESTAMP_DTYPE), reason
    local = naive.dt.replace_time_zone(timezone, ambiguous="null", non_existent="null")
    parsed = local.dt.convert_time_zone("UTC").cast(TIMESTAMP_DTYPE)
    reason = (
        pl.when(has_value & local.is_null())
        .then(
            pl.lit(
                f"local time does not exist or is ambiguous in {timezone} (a daylight-saving "
                "change); write it with its UTC offset"
            )
        )
        .otherwise(_NO_PROBLEM)
    )
    return parsed, reason


def _parse_timestamp(
    col: str, dtype: pl.DataType, timezone: str | None
) -> tuple[pl.Expr, pl.Expr] | tuple[pl.Expr, pl.Expr, tuple[pl.Expr, ...]]:
    raw = pl.col(col)
    missing = pl.lit("missing timestamp")
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            parsed = raw.dt.convert_time_zone("UTC").cast(TIMESTAMP_DTYPE)
            return parsed, pl.when(raw.is_null()).then(missing).otherwise(_NO_PROBLEM)
        naive = raw.cast(pl.Datetime("us"))
        parsed, reason = _localize(naive, timezone, raw.is_not_null())
        return parsed, pl.when(raw.is_null()).then(missing).otherwise(reason)
    if dtype == pl.Date:
        naive = raw.cast(pl.Datetime("us"))
        parsed, reason = _localize(naive, timezone, raw.is_not_null())
        return parsed, pl.when(raw.is_null()).then(missing).otherwise(reason)
    if dtype != pl.String:
        bad = pl.lit(
            f"timestamps must be text (ISO 8601), Datetime or Date, not {dtype}; convert the column"
        )
        return pl.lit(None, TIMESTAMP_DTYPE), pl.when(raw.is_null()).then(missing).otherwise(bad)
    # helper columns, computed in stages before the final expressions (see _read)
    text_col, aware_col, naive_col = f"__text_{col}", f"__aware_{col}", f"__naive_{col}"
    text_expr = (
        raw.str.strip_chars()
        .str.replace(r"^(\d{4}-\d{2}-\d{2})[ T]", "${1}T")
        .str.replace(r"Z$", "+00:00")
    )
    text = pl.col(text_col)
    has_offset = text.str.contains(_OFFSET_RE)
    aware_expr = pl.coalesce(
        [
            text.str.to_datetime(f, strict=False, time_unit="us", time_zone="UTC")
            for f in _AWARE_FORMATS
        ]
    ).cast(TIMESTAMP_DTYPE)
    naive_expr = pl.coalesce(
        [text.str.to_datetime(f, strict=False, time_unit="us") for f in _NAIVE_FORMATS]
    )
    pre = (
        text_expr.alias(text_col),
        pl.when(has_offset).then(aware_expr).alias(aware_col),
        pl.when(~has_offset).then(naive_expr).alias(naive_col),
    )
    aware, naive = pl.col(aware_col), pl.col(naive_col)
    localized, local_reason = _localize(naive, timezone, naive.is_not_null())
    parsed = pl.when(has_offset).then(aware).otherwise(localized)
    unparseable = pl.lit(
        "unparseable timestamp; use ISO 8601, e.g. 2024-03-01T14:30:00+01:00 or 2024-03-01"
    )
    reason = (
        pl.when(_blank(raw))
        .then(missing)
        .when(has_offset & aware.is_null())
        .then(unparseable)
        .when(has_offset)
        .then(_NO_PROBLEM)
        .when(naive.is_null())
        .then(unparseable)
        .otherwise(local_reason)
    )
    return parsed, reason, pre


_AMOUNT_RE: Final = r"^\d+(\.\d{1,2})?$"
_NUMBER_RE: Final = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


def _parse_amount(col: str, dtype: pl.DataType) -> Parsed:
    raw = pl.col(col)
    missing = pl.lit("missing amount")
    negative = pl.lit(
        "negative amount; amounts are positive, a refund is a row with kind='refund' and "
        "refund_of naming the purchase"
    )
    too_precise = pl.lit("more than 2 decimal places; amounts are in currency units with cents")
    if dtype == pl.String:
        text = raw.str.strip_chars()
        parsed = text.str.replace(r"^[+-]", "").cast(AMOUNT_DTYPE, strict=False)
        reason = (
            pl.when(_blank(raw))
            .then(missing)
            .when(~text.str.contains(_NUMBER_RE))
            .then(pl.lit("not a number; write amounts like 12.50 (no currency sign or separators)"))
            .when(text.str.starts_with("-") & (text.cast(pl.Float64, strict=False) != 0))
            .then(negative)
            .when(text.str.contains(r"^-?\d+\.\d{3,}$") | text.str.contains("[eE]"))
            .then(
                pl.when(text.str.contains("[eE]"))
                .then(pl.lit("exponent notation; write amounts like 12.50"))
                .otherwise(too_precise)
            )
            .when(~text.str.replace(r"^[+-]", "").str.contains(_AMOUNT_RE))
            .then(pl.lit("not a number; write amounts like 12.50"))
            .when(parsed.is_null())
            .then(pl.lit("too large for an amount (at most 16 digits before the point)"))
            .otherwise(_NO_PROBLEM)
        )
        return parsed, reason
    if dtype.is_integer():
        parsed = raw.cast(AMOUNT_DTYPE, strict=False)
        reason = (
            pl.when(raw.is_null())
            .then(missing)
            .when(raw < 0)
            .then(negative)
            .when(parsed.is_null())
            .then(pl.lit("too large for an amount"))
            .otherwise(_NO_PROBLEM)
        )
        return parsed, reason
    if dtype.is_float():
        cents = raw * 100
        parsed = raw.cast(AMOUNT_DTYPE, strict=False)
        reason = (
            pl.when(raw.is_null() | raw.is_nan())
            .then(missing)
            .when(raw.is_infinite())
            .then(pl.lit("not a finite number"))
            .when(raw < 0)
            .then(negative)
            .when((cents - cents.round()).abs() > 1e-9 * (1 + cents.abs()))
            .then(too_precise)
            .when(parsed.is_null())
            .then(pl.lit("too large for an amount"))
            .otherwise(_NO_PROBLEM)
        )
        return parsed, reason
    if isinstance(dtype, pl.Decimal):
        parsed = raw.cast(AMOUNT_DTYPE, strict=False)
        reason = (
            pl.when(raw.is_null())
            .then(missing)
            .when(raw < 0)
            .then(negative)
            .when(parsed.is_null())
            .then(pl.lit("too large for an amount"))
            .when(raw != parsed)
            .then(too_precise)
            .otherwise(_NO_PROBLEM)
        )
        return parsed, reason
    bad = pl.lit(f"amounts must be numbers or text, not {dtype}")
    return pl.lit(None, AMOUNT_DTYPE), pl.when(raw.is_null()).then(missing).otherwise(bad)


def _parse_int(
    col: str, dtype: pl.DataType, out: pl.DataType, low: int, high: int | None, what: str
) -> Parsed:
    """Optional integer column in ``[low, high]``; nulls are allowed (checked elsewhere)."""
    raw = pl.col(col)
    span = f"between {low} and {high}" if high is not None else f"at least {low}"
    out_of_range = pl.lit(f"{what} must be an integer {span}")
    if dtype == pl.String:
        text = raw.str.strip_chars()
        value = text.cast(pl.Int64, strict=False)
        not_int = ~text.str.contains(r"^[+-]?\d+$")
        blank = _blank(raw)
    elif dtype.is_integer():
        value = raw.cast(pl.Int64, strict=False)
        not_int = pl.lit(False)
        blank = raw.is_null()
    elif dtype.is_float():
        value = raw.cast(pl.Int64, strict=False)
        not_int = raw.is_nan() | (raw != raw.round())
        blank = raw.is_null()
    elif dtype == pl.Null:
        return raw.cast(out), _NO_PROBLEM
    else:
        bad = pl.lit(f"{what} must be an integer, not {dtype}")
        return pl.lit(None, out), pl.when(raw.is_not_null()).then(bad).otherwise(_NO_PROBLEM)
    in_range = value >= low if high is None else value.is_between(low, high)
    reason = (
        pl.when(blank)
        .then(_NO_PROBLEM)
        .when(not_int | value.is_null())
        .then(pl.lit(f"{what} is not an integer"))
        .when(~in_range)
        .then(out_of_range)
        .otherwise(_NO_PROBLEM)
    )
    parsed = pl.when(blank).then(None).otherwise(value).cast(out, strict=False)
    return parsed, reason


def _parse_text(col: str, dtype: pl.DataType, *, required: bool, what: str) -> Parsed:
    raw = pl.col(col)
    if dtype in (pl.String, pl.Categorical, pl.Null) or isinstance(dtype, pl.Enum):
        text = raw.cast(pl.String)
    else:
        bad = pl.lit(f"{what} must be text, not {dtype}")
        return pl.lit(None, pl.String), pl.when(raw.is_not_null()).then(bad).otherwise(_NO_PROBLEM)
    if required:
        return text, pl.when(_blank(text)).then(pl.lit(f"missing {what}")).otherwise(_NO_PROBLEM)
    # an empty optional cell is null: that is what an empty CSV cell means
    return pl.when(_blank(text)).then(None).otherwise(text), _NO_PROBLEM


def _parse_choice(col: str, dtype: pl.DataType, choices: tuple[str, ...], what: str) -> Parsed:
    text, reason = _parse_text(col, dtype, required=True, what=what)
    wrong = pl.lit(f"{what} must be one of {', '.join(map(repr, choices))}")
    reason = (
        pl.when(reason.is_not_null())
        .then(reason)
        .when(~text.is_in(choices))
        .then(wrong)
        .otherwise(_NO_PROBLEM)
    )
    return text, reason


# ---------------------------------------------------------------------------------------------
# assembling: parse every column, gather problems, split clean and rejected
# ---------------------------------------------------------------------------------------------


class _Check(NamedTuple):
    column: str
    parsed: pl.Expr
    reason: pl.Expr
    pre: tuple[pl.Expr, ...] = ()
    """helper columns, each computed (in order) before ``parsed`` and ``reason``"""


class _Cross(NamedTuple):
    """The checks across rows, on the parsed frame, in two steps.

    ``keys`` gives queries for small frames (hashes of ids that repeat, ids that refunds name),
    collected first; ``problems`` then gives lazy frames of (row, column, value, reason) that
    filter the source on those lists in memory. Filtering rather than joining two queries on the
    source keeps polars' streaming engine from holding one side of the join in memory, and lets
    it filter on the raw ids before parsing, so that it parses only the rows that pass.
    """

    keys: Callable[[pl.LazyFrame], list[pl.LazyFrame]]
    problems: Callable[[pl.LazyFrame, list[pl.DataFrame]], list[pl.LazyFrame]]


_NO_CROSS: Final = _Cross(lambda parsed: [], lambda parsed, keys: [])


class _Kind(NamedTuple):
    """What one reader reads: its name in errors, schema, required columns and checks."""

    what: str
    schema: pl.Schema
    required: tuple[str, ...]
    build: Callable[[pl.Schema, str | None], tuple[list[_Check], _Cross]]
    """the checks of every column, from the source's schema and the declared time zone"""


_BAD = "__bad"
_PART = "__part"
_PROBLEM_SCHEMA: Final = pl.Schema(
    {_ROW: pl.Int64, "column": pl.String, "value": pl.String, "reason": pl.String, _PART: pl.Int32}
)
"""A problem: source row, column, raw value as text, reason; ``__part`` numbers the check that
found it, so that sorting by (row, column, part) puts problems in the same order on any engine."""
_PROBLEM_ORDER: Final = (_ROW, "column", _PART)


def _why(column: str) -> str:
    return f"__why_{column}"


def _src(column: str) -> str:
    return f"__src_{column}"


def _value_text(source: pl.Schema, column: str) -> pl.Expr:
    """The raw value of a checked column as text, for the problems."""
    if column not in source:
        return pl.lit(None, pl.String)
    dtype = source[column]
    raw = pl.col(_src(column))
    if dtype == pl.String:
        return raw
    if dtype.is_nested() or dtype == pl.Object:
        # polars cannot write these as text; the reason says what the column should be
        return pl.when(raw.is_not_null()).then(pl.lit(f"<{dtype} value>"))
    return raw.cast(pl.String)


class _Plan(NamedTuple):
    """The lazy queries of one read, over the source with its row numbers."""

    raw: pl.LazyFrame
    """``__row`` and the source's columns (renamed), with their original values"""
    parsed: pl.LazyFrame
    """``__row``, every schema column parsed (null where it could not be), ``__bad``"""
    flagged: pl.LazyFrame
    """the rows with a problem in a cell: ``__row``, each checked column's reason and raw value"""
    cell_count: pl.LazyFrame
    """one value: how many problems the cells have in all"""
    keys: list[pl.LazyFrame]
    """what the checks across rows need collected first (see :class:`_Cross`)"""
    across: Callable[[list[pl.DataFrame]], list[pl.LazyFrame]]
    """the problems across rows (duplicates, refunds) from the collected keys, in
    :data:`_PROBLEM_SCHEMA`"""
    cells: Callable[[pl.DataFrame], pl.DataFrame]
    """the problems of (collected) flagged rows, one per bad cell, in :data:`_PROBLEM_SCHEMA`"""


def _plan(
    kind: _Kind,
    owner: str,
    frame: pl.LazyFrame,
    columns: Mapping[str, str] | None,
    timezone: str | None,
    *,
    materialise: bool,
) -> _Plan:
    """Build the parsing and checking queries; shared by the ``read_*`` and ``scan_*`` functions.

    With ``materialise`` (the eager readers) the parsed values and reasons are computed once, in
    memory, and the queries built on them read that; without, every query reads the source.
    """
    frame = _rename(frame, kind.schema, columns, kind.required, owner)
    if _ROW in frame.collect_schema():
        frame = frame.drop(_ROW)
    frame = frame.with_row_index(_ROW).with_columns(pl.col(_ROW).cast(pl.Int64))
    source = frame.collect_schema()
    checks, cross = kind.build(source, timezone)
    staged = frame
    for check in checks:
        for helper in check.pre:
            staged = staged.with_columns(helper)
    why = [_why(c.column) for c in checks]
    kept = [_src(c.column) for c in checks if c.column in source]
    # parse every column and give every cell its reason (or null) in one pass; keep the raw
    # values of the checked columns for the problems
    work = staged.select(
        pl.col(_ROW),
        *(c.parsed.alias(c.column) for c in checks),
        *(c.reason.alias(w) for c, w in zip(checks, why, strict=True)),
        *(pl.col(c.column).alias(_src(c.column)) for c in checks if c.column in source),
    )
    if materialise:
        work = work.collect().lazy()
    bad = pl.any_horizontal([pl.col(w).is_not_null() for w in why])
    parsed = work.select(pl.col(_ROW), *(c.column for c in checks), bad.alias(_BAD))
    # the rows with a bad cell come out of the source in one pass (a lazy frame per column
    # would read the source once per column); they are split into problems once collected
    flagged = work.filter(bad).select(_ROW, *why, *kept)
    cell_count = work.select(
        pl.sum_horizontal([pl.col(w).is_not_null() for w in why]).sum().cast(pl.Int64)
    )

    def cells(rows: pl.DataFrame) -> pl.DataFrame:
        parts = [
            rows.filter(pl.col(_why(c.column)).is_not_null()).select(
                pl.col(_ROW),
                pl.lit(c.column, pl.String).alias("column"),
                _value_text(source, c.column).alias("value"),
                pl.col(_why(c.column)).alias("reason"),
                pl.lit(i, pl.Int32).alias(_PART),
            )
            for i, c in enumerate(checks)
        ]
        return pl.concat([p.cast(_PROBLEM_SCHEMA) for p in parts])

    def across(keys: list[pl.DataFrame]) -> list[pl.LazyFrame]:
        return [
            part.select(
                _ROW, "column", "value", "reason", pl.lit(len(checks) + i).alias(_PART)
            ).cast(_PROBLEM_SCHEMA)
            for i, part in enumerate(cross.problems(parsed, keys))
        ]

    raw = frame.select(pl.col(_ROW), pl.exclude(_ROW))
    return _Plan(raw, parsed, flagged, cell_count, cross.keys(parsed), across, cells)


_Collect: TypeAlias = Callable[[list[pl.LazyFrame], bool], list[pl.DataFrame]]
"""Collect queries together; the flag says whether polars may run a part they share once."""


def _validate(plan: _Plan, what: str, strict: bool, collect: _Collect) -> pl.DataFrame:
    """Find the problems, in order (row, then column), with at most two ``collect`` calls.

    The first gets the rows with bad cells and the keys of the checks across rows, the second
    the problems across rows (none for feedback and interactions). With ``strict``, raise
    :class:`DataValidationError` if there are any problems: only the rows of the first
    :data:`MAX_PROBLEMS_SHOWN` cell problems are collected (the first problems overall are among
    those and the problems across rows), and the cell problems are counted in the second call
    when there are any. Without ``strict``, return every problem.
    """
    first_rows = plan.flagged.head(MAX_PROBLEMS_SHOWN) if strict else plan.flagged
    # not shared: the first rows stop early, and a shared part would be held for the others
    flagged, *keys = collect([first_rows, *plan.keys], False)
    count = [plan.cell_count] if strict and flagged.height else []
    queries = [*count, *plan.across(keys)]
    second = collect(queries, True) if queries else []
    cell_count: int = second.pop(0).item() if count else 0
    across = pl.concat([pl.DataFrame(schema=_PROBLEM_SCHEMA), *second])
    problems = pl.concat([plan.cells(flagged), across]).sort(_PROBLEM_ORDER)
    if strict and problems.height:
        total = cell_count + across.height
        shown = [
            RowProblem(row, column, value, reason)
            for row, column, value, reason in problems.head(MAX_PROBLEMS_SHOWN)
            .select(_ROW, "column", "value", "reason")
            .iter_rows()
        ]
        raise DataValidationError(what, shown, total, _HINT)
    return problems


def _bad_rows(problems: pl.DataFrame) -> pl.DataFrame:
    """One row per rejected source row: ``__row`` and ``reasons``, in source order."""
    return problems.group_by(_ROW, maintain_order=True).agg(
        pl.format("column '{}' = {}: {}", "column", pl.col("value").fill_null("null"), "reason")
        .str.join("; ")
        .alias("reasons")
    )


def _clean(plan: _Plan, schema: pl.Schema, bad_rows: pl.DataFrame | None) -> pl.LazyFrame:
    """The parsed rows without the rejected ones, in the core schema."""
    parsed = plan.parsed
    if bad_rows is not None:
        parsed = parsed.join(
            bad_rows.lazy().select(_ROW), on=_ROW, how="anti", maintain_order="left"
        )
    return parsed.select(schema.names()).cast(schema)


def _rejected(plan: _Plan, bad_rows: pl.DataFrame) -> pl.LazyFrame:
    """The rejected rows with their original values and reasons, in source order."""
    return (
        plan.raw.join(bad_rows.lazy(), on=_ROW, how="inner", maintain_order="left")
        .sort(_ROW)
        .rename({_ROW: "row"})
    )


def _read(
    kind: _Kind,
    owner: str,
    source: Source,
    columns: Mapping[str, str] | None,
    timezone: str | None,
    strict: bool,
) -> pl.DataFrame | ReadResult:
    """The ``read_*`` functions: everything in memory."""
    _check_timezone(timezone, owner)
    frame = _load(source, owner)
    plan = _plan(kind, owner, frame.lazy(), columns, timezone, materialise=True)
    problems = _validate(plan, kind.what, strict, lambda queries, _: pl.collect_all(queries))
    if strict:
        return _clean(plan, kind.schema, None).collect()
    bad_rows = _bad_rows(problems)
    clean, rejected = pl.collect_all(
        [_clean(plan, kind.schema, bad_rows), _rejected(plan, bad_rows)]
    )
    return ReadResult(clean, rejected)


def _scan_read(
    kind: _Kind,
    owner: str,
    source: Source,
    columns: Mapping[str, str] | None,
    timezone: str | None,
    strict: bool,
) -> pl.LazyFrame | LazyReadResult:
    """The ``scan_*`` functions: streaming queries for the problems, the rest stays lazy."""
    _check_timezone(timezone, owner)
    path = Path(source) if isinstance(source, str | Path) else None
    plan = _plan(kind, owner, _scan(source, owner), columns, timezone, materialise=False)

    def collect(queries: list[pl.LazyFrame], share: bool = True) -> list[pl.DataFrame]:
        flags = pl.QueryOptFlags(comm_subplan_elim=share)
        with _reading(path, owner):
            return pl.collect_all(queries, engine="streaming", optimizations=flags)

    problems = _validate(plan, kind.what, strict, collect)
    if strict:
        return _clean(plan, kind.schema, None)
    bad_rows = _bad_rows(problems)
    (rejected,) = collect([_rejected(plan, bad_rows)])
    return LazyReadResult(_clean(plan, kind.schema, bad_rows), rejected)


# ---------------------------------------------------------------------------------------------
# transactions
# ---------------------------------------------------------------------------------------------


def _transaction_checks(sch: pl.Schema, timezone: str | None) -> tuple[list[_Check], _Cross]:

    def have(name: str) -> bool:
        return name in sch

    checks = [
        _Check("transaction_id", *_parse_id("transaction_id", sch["transaction_id"])),
        _Check("customer_id", *_parse_id("customer_id", sch["customer_id"])),
        _Check("occurred_at", *_parse_timestamp("occurred_at", sch["occurred_at"], timezone)),
        _Check("amount", *_parse_amount("amount", sch["amount"])),
    ]
    if have("currency"):
        text, reason = _parse_text("currency", sch["currency"], required=False, what="currency")
        reason = (
            pl.when(reason.is_not_null())
            .then(reason)
            .when(text.is_not_null() & ~text.str.contains(r"^[A-Z]{3}$"))
            .then(pl.lit("currency must be an ISO 4217 code such as 'EUR' or 'USD'"))
            .otherwise(_NO_PROBLEM)
        )
        checks.append(_Check("currency", text, reason))
    else:
        checks.append(_Check("currency", pl.lit(None, pl.String), _NO_PROBLEM))
    if have("kind"):
        checks.append(
            _Check("kind", *_parse_choice("kind", sch["kind"], ("purchase", "refund"), "kind"))
        )
    else:
        checks.append(_Check("kind", pl.lit("purchase"), _NO_PROBLEM))
    if have("refund_of"):
        checks.append(_Check("refund_of", *_parse_id("refund_of", sch["refund_of"], nullable=True)))
    else:
        checks.append(_Check("refund_of", pl.lit(None, pl.String), _NO_PROBLEM))
    for name in ("channel", "category"):
        if have(name):
            checks.append(_Check(name, *_parse_text(name, sch[name], required=False, what=name)))
        else:
            checks.append(_Check(name, pl.lit(None, pl.String), _NO_PROBLEM))
    if have("quantity"):
        checks.append(
            _Check(
                "quantity",
                *_parse_int("quantity", sch["quantity"], pl.Int64(), 0, None, "quantity"),
            )
        )
    else:
        checks.append(_Check("quantity", pl.lit(None, pl.Int64), _NO_PROBLEM))

    tid = pl.col("transaction_id")
    hashed = pl.col("__hash")
    # a 32-bit hash of the id: the duplicates are found among the ids whose hash repeats
    # (collisions only add a few candidates, checked on the ids themselves)
    tid_hash = tid.hash().cast(pl.UInt32, wrap_numerical=True)

    def key_queries(lf: pl.LazyFrame) -> list[pl.LazyFrame]:
        # the hashes seen more than once: sorting 4 bytes per row takes much less memory than
        # a table of every id's text
        hashes = lf.filter(tid.is_not_null()).select(tid_hash.alias("__hash")).sort("__hash")
        repeated = hashes.filter((hashed == hashed.shift(1)) | (hashed == hashed.shift(-1)))
        refunded = lf.filter(pl.col("kind") == "refund").select(pl.col("refund_of").unique())
        return [repeated.unique(), refunded]

    def problem_queries(lf: pl.LazyFrame, keys: list[pl.DataFrame]) -> list[pl.LazyFrame]:
        # filters on lists in memory rather than joins (see _Cross)
        repeated = keys[0].get_column("__hash").implode()
        refund_ids = keys[1].get_column("refund_of").drop_nulls().implode()
        # duplicates: every occurrence after the first, among the ids whose hash repeats
        candidates = lf.filter(tid.is_not_null() & tid_hash.is_in(repeated)).select(_ROW, tid)
        dup = (
            candidates.filter(tid.is_duplicated())
            .with_columns(pl.col(_ROW).min().over(tid).alias("__first"))
            .filter(pl.col(_ROW) != pl.col("__first"))
            .select(
                pl.col(_ROW),
                pl.lit("transaction_id").alias("column"),
                tid.alias("value"),
                pl.format(
                    "duplicate transaction_id (first seen at row {}); each transaction must "
                    "appear once",
                    pl.col("__first"),
                ).alias("reason"),
            )
        )
        firsts = (
            lf.filter(tid.is_in(refund_ids))
            .sort(_ROW)
            .unique(tid, keep="first", maintain_order=True)
        )
        purchase_of = pl.col("refund_of")
        # a purchase must not name a refunded transaction
        purchase_with_ref = lf.filter(
            (pl.col("kind") == "purchase") & purchase_of.is_not_null()
        ).select(
            pl.col(_ROW),
            pl.lit("refund_of").alias("column"),
            purchase_of.alias("value"),
            pl.lit("a purchase must leave refund_of empty; only refunds name a purchase").alias(
                "reason"
            ),
        )
        refunds = lf.filter((pl.col("kind") == "refund") & ~pl.col("__bad"))
        targets = firsts.select(
            tid.alias("__target"),
            pl.col(_ROW).alias("__target_row"),
            pl.col("kind").alias("__target_kind"),
            pl.col("customer_id").alias("__target_customer"),
            pl.col("occurred_at").alias("__target_at"),
            pl.col("amount").alias("__target_amount"),
            pl.col("__bad").alias("__target_bad"),
        )
        matched = refunds.join(targets, left_on="refund_of", right_on="__target", how="left")
        reason = (
            pl.when(purchase_of.is_null())
            .then(pl.lit("a refund must name the purchase it refunds in refund_of"))
            .when(pl.col("__target_row").is_null())
            .then(pl.lit("refund of an unknown transaction; no purchase has this transaction_id"))
            .when(pl.col("__target_kind") != "purchase")
            .then(pl.lit("refund_of names a refund, not a purchase"))
            .when(pl.col("__target_bad"))
            .then(pl.format("refund of a rejected purchase (row {})", pl.col("__target_row")))
            .when(pl.col("__target_customer") != pl.col("customer_id"))
            .then(
                pl.format(
                    "refund by another customer than its purchase (row {}, customer {})",
                    pl.col("__target_row"),
                    pl.col("__target_customer"),
                )
            )
            .when(pl.col("occurred_at") < pl.col("__target_at"))
            .then(pl.format("refund before its purchase (row {})", pl.col("__target_row")))
            .otherwise(_NO_PROBLEM)
        )
        matched = matched.with_columns(reason.alias("reason"))
        # refunds that are otherwise fine must not add up to more than their purchase
        running = pl.col("amount").cum_sum().over("refund_of", order_by=["occurred_at", _ROW])
        too_much = (
            matched.filter(pl.col("reason").is_null())
            .with_columns(running.alias("__so_far"))
            .filter(pl.col("__so_far") > pl.col("__target_amount"))
            .with_columns(
                pl.format(
                    "refunds of this purchase add up to {}, more than its amount {} (row {})",
                    pl.col("__so_far"),
                    pl.col("__target_amount"),
                    pl.col("__target_row"),
                ).alias("reason")
            )
            .drop("__so_far")
        )
        matched = pl.concat([matched.filter(pl.col("reason").is_not_null()), too_much])
        bad_refunds = matched.select(
            pl.col(_ROW),
            pl.lit("refund_of").alias("column"),
            purchase_of.alias("value"),
            pl.col("reason"),
        )
        return [dup, purchase_with_ref, bad_refunds]

    return checks, _Cross(key_queries, problem_queries)


# ---------------------------------------------------------------------------------------------
# feedback and interactions
# ---------------------------------------------------------------------------------------------


def _feedback_checks(sch: pl.Schema, timezone: str | None) -> tuple[list[_Check], _Cross]:
    checks = [
        _Check("customer_id", *_parse_id("customer_id", sch["customer_id"])),
        _Check("answered_at", *_parse_timestamp("answered_at", sch["answered_at"], timezone)),
    ]
    for name, low, high in (("nps", 0, 10), ("csat", 1, 5)):
        if name in sch:
            checks.append(
                _Check(name, *_parse_int(name, sch[name], pl.Int8(), low, high, name.upper()))
            )
        else:
            checks.append(_Check(name, pl.lit(None, pl.Int8), _NO_PROBLEM))
    for name in ("comment", "channel"):
        if name in sch:
            checks.append(_Check(name, *_parse_text(name, sch[name], required=False, what=name)))
        else:
            checks.append(_Check(name, pl.lit(None, pl.String), _NO_PROBLEM))
    nps_parsed = checks[2].parsed
    csat_parsed = checks[3].parsed
    nps_reason = checks[2].reason
    csat_reason = checks[3].reason
    no_answer = (
        pl.when(
            nps_parsed.is_null()
            & csat_parsed.is_null()
            & nps_reason.is_null()
            & csat_reason.is_null()
        )
        .then(pl.lit("an answer needs an NPS (0-10), a CSAT (1-5), or both"))
        .otherwise(nps_reason)
    )
    checks[2] = _Check("nps", nps_parsed, no_answer)
    return checks, _NO_CROSS


def _interaction_checks(sch: pl.Schema, timezone: str | None) -> tuple[list[_Check], _Cross]:
    checks = [
        _Check("customer_id", *_parse_id("customer_id", sch["customer_id"])),
        _Check("occurred_at", *_parse_timestamp("occurred_at", sch["occurred_at"], timezone)),
        _Check("channel", *_parse_text("channel", sch["channel"], required=True, what="channel")),
        _Check("type", *_parse_text("type", sch["type"], required=True, what="type")),
    ]
    return checks, _NO_CROSS


_TRANSACTIONS: Final = _Kind(
    "transactions",
    TRANSACTION_SCHEMA,
    ("transaction_id", "customer_id", "occurred_at", "amount"),
    _transaction_checks,
)
_FEEDBACK: Final = _Kind(
    "feedback", FEEDBACK_SCHEMA, ("customer_id", "answered_at"), _feedback_checks
)
_INTERACTIONS: Final = _Kind(
    "interactions",
    INTERACTION_SCHEMA,
    ("customer_id", "occurred_at", "channel", "type"),
    _interaction_checks,
)


# ---------------------------------------------------------------------------------------------
# the readers: read_* in memory, scan_* lazily
# ---------------------------------------------------------------------------------------------


@overload
def read_transactions(
    source: Source,
    *,
    columns: Mapping[str, str] | None = ...,
    timezone: str | None = ...,
    strict: Literal[True] = ...,
) -> pl.DataFrame: ...
@overload
def read_transactions(
    source: Source,
    *,
    columns: Mapping[str, str] | None = ...,
    timezone: str | None = ...,
    strict: Literal[False],
) -> ReadResult: ...
def read_transactions(
    source: Source,
    *,
    columns: Mapping[str, str] | None = None,
    timezone: str | None = None,
    strict: bool = True,
) -> pl.DataFrame | ReadResult:
    """Read and validate a transaction log into :data:`~loyaltykit.schema.TRANSACTION_SCHEMA`.

    Required columns: ``transaction_id``, ``customer_id``, ``occurred_at``, ``amount``. Optional:
    ``currency``, ``kind`` (``"purchase"`` or ``"refund"``; without the column every row is a
    purchase), ``refund_of``, ``channel``, ``category``, ``quantity``; an absent optional column
    becomes nulls. Other source columns are ignored.

    Problems found (each with row, column, value and reason): missing ids; unparseable, missing or
    naive timestamps when no ``timezone`` is declared (and local times that do not exist or are
    ambiguous in it); missing, unparseable or negative amounts and amounts with more than 2
    decimals; unknown kinds; malformed currency codes; non-integer or negative quantities;
    duplicate transaction ids (every occurrence after the first); purchases that name a
    ``refund_of``; refunds without ``refund_of``, of unknown transactions, of refunds, of rejected
    purchases, by another customer, before their purchase, or adding up to more than the purchase.

    :param source: a file path (``.csv``, ``.parquet``, ``.arrow``) or a polars, pandas or
        pyarrow frame (see :data:`Source`). CSV columns are read as text and parsed here.
    :param columns: ``{schema name: source name}`` for columns named differently in the source,
        e.g. ``{"customer_id": "CustomerID", "occurred_at": "InvoiceDate"}``.
    :param timezone: IANA time zone of naive timestamps (text without an offset, naive
        ``Datetime`` or ``Date`` columns); ``None`` refuses naive timestamps. Timestamps with an
        offset or zone are converted to UTC.
    :param strict: raise on any problem (default) or return a :class:`ReadResult`.
    :returns: the clean frame (``strict=True``) or ``ReadResult(clean, rejected)``.
    :raises DataValidationError: (``strict=True``) listing the first problems and counting all.
    :raises InvalidValueError: for a missing column, an unreadable source or an unknown time zone.
    """
    return _read(_TRANSACTIONS, "read_transactions", source, columns, timezone, strict)


@overload
def read_feedback(
    source: Source,
    *,
    columns: Mapping[str, str] | None = ...,
    timezone: str | None = ...,
    strict: Literal[True] = ...,
) -> pl.DataFrame: ...
@overload
def read_feedback(
    source: Source,
    *,
    columns: Mapping[str, str] | None = ...,
    timezone: str | None = ...,
    strict: Literal[False],
) -> ReadResult: ...
def read_feedback(
    source: Source,
    *,
    columns: Mapping[str, str] | None = None,
    timezone: str | None = None,
    strict: bool = True,
) -> pl.DataFrame | ReadResult:
    """Read and validate survey answers into :data:`~loyaltykit.schema.FEEDBACK_SCHEMA`.

    Required columns: ``customer_id``, ``answered_at``. Optional: ``nps`` (integer 0-10),
    ``csat`` (integer 1-5), ``comment``, ``channel``. Every row needs an NPS, a CSAT or both.
    Parameters and results as in :func:`read_transactions`.
    """
    return _read(_FEEDBACK, "read_feedback", source, columns, timezone, strict)


@overload
def read_interactions(
    source: Source,
    *,
    columns: Mapping[str, str] | None = ...,
    timezone: str | None = ...,
    strict: Literal[True] = ...,
) -> pl.DataFrame: ...
@overload
def read_interactions(
    source: Source,
    *,
    columns: Mapping[str, str] | None = ...,
    timezone: str | None = ...,
    strict: Literal[False],
) -> ReadResult: ...
def read_interactions(
    source: Source,
    *,
    columns: Mapping[str, str] | None = None,
    timezone: str | None = None,
    strict: bool = True,
) -> pl.DataFrame | ReadResult:
    """Read and validate touchpoints into :data:`~loyaltykit.schema.INTERACTION_SCHEMA`.

    Required columns: ``customer_id``, ``occurred_at``, ``channel`` and ``type`` (both non-empty
    text; common types are listed in :class:`loyaltykit.InteractionType`, others are accepted).
    Parameters and results as in :func:`read_transactions`.
    """
    return _read(_INTERACTIONS, "read_interactions", source, columns, timezone, strict)


@overload
def scan_transactions(
    source: Source,
    *,
    columns: Mapping[str, str] | None = ...,
    timezone: str | None = ...,
    strict: Literal[True] = ...,
) -> pl.LazyFrame: ...
@overload
def scan_transactions(
    source: Source,
    *,
    columns: Mapping[str, str] | None = ...,
    timezone: str | None = ...,
    strict: Literal[False],
) -> LazyReadResult: ...
def scan_transactions(
    source: Source,
    *,
    columns: Mapping[str, str] | None = None,
    timezone: str | None = None,
    strict: bool = True,
) -> pl.LazyFrame | LazyReadResult:
    """Validate a transaction log larger than memory; the lazy :func:`read_transactions`.

    Same arguments, checks, problems, row numbers and errors as :func:`read_transactions`, but
    files are scanned (``pl.scan_csv``, ``scan_parquet``, ``scan_ipc``) and a ``LazyFrame``
    source stays lazy. The checks run on polars' streaming engine and collect only problems: a
    first pass gets the rows with bad cells (with ``strict=True`` only the first
    :data:`MAX_PROBLEMS_SHOWN`), the ids that refunds name and the hashes of ids seen more than
    once; a second the problems across rows (duplicates, refunds) and, with ``strict=True`` when
    there are problems, their count. With ``strict=False`` a third pass fetches the rejected
    rows' original values. Memory grows with the problems, with the refunded ids and, by a 32-bit
    hash per row sorted to find duplicate ids, with the number of rows; not with the other
    columns.

    What comes back is lazy: collecting it reads and parses the source **again**, so the source
    (file or frame) must not change between the call and the collection. Collect it, or write
    it with ``sink_parquet``, with ``engine="streaming"`` to keep memory low.

    :param source: as in :func:`read_transactions`; in-memory pandas and pyarrow frames are
        converted as they are there.
    :param columns: as in :func:`read_transactions`.
    :param timezone: as in :func:`read_transactions`.
    :param strict: raise on any problem (default) or return a :class:`LazyReadResult`.
    :returns: with ``strict=True`` a ``LazyFrame`` in
        :data:`~loyaltykit.schema.TRANSACTION_SCHEMA` (every row valid); with ``strict=False``
        ``LazyReadResult(clean, rejected)``: the clean rows lazily, the rejected ones collected.
    :raises DataValidationError: (``strict=True``) listing the first problems and counting all.
    :raises InvalidValueError: for a missing column, an unreadable source or an unknown time zone.
    """
    return _scan_read(_TRANSACTIONS, "scan_transactions", source, columns, timezone, strict)


@overload
def scan_feedback(
    source: Source,
    *,
    columns: Mapping[str, str] | None = ...,
    timezone: str | None = ...,
    strict: Literal[True] = ...,
) -> pl.LazyFrame: ...
@overload
def scan_feedback(
    source: Source,
    *,
    columns: Mapping[str, str] | None = ...,
    timezone: str | None = ...,
    strict: Literal[False],
) -> LazyReadResult: ...
def scan_feedback(
    source: Source,
    *,
    columns: Mapping[str, str] | None = None,
    timezone: str | None = None,
    strict: bool = True,
) -> pl.LazyFrame | LazyReadResult:
    """Validate survey answers larger than memory; the lazy :func:`read_feedback`.

    Checks as in :func:`read_feedback`; how it runs and what it returns as in
    :func:`scan_transactions` (no check spans rows, so memory grows only with the problems).
    """
    return _scan_read(_FEEDBACK, "scan_feedback", source, columns, timezone, strict)


@overload
def scan_interactions(
    source: Source,
    *,
    columns: Mapping[str, str] | None = ...,
    timezone: str | None = ...,
    strict: Literal[True] = ...,
) -> pl.LazyFrame: ...
@overload
def scan_interactions(
    source: Source,
    *,
    columns: Mapping[str, str] | None = ...,
    timezone: str | None = ...,
    strict: Literal[False],
) -> LazyReadResult: ...
def scan_interactions(
    source: Source,
    *,
    columns: Mapping[str, str] | None = None,
    timezone: str | None = None,
    strict: bool = True,
) -> pl.LazyFrame | LazyReadResult:
    """Validate touchpoints larger than memory; the lazy :func:`read_interactions`.

    Checks as in :func:`read_interactions`; how it runs and what it returns as in
    :func:`scan_transactions` (no check spans rows, so memory grows only with the problems).
    """
    return _scan_read(_INTERACTIONS, "scan_interactions", source, columns, timezone, strict)
