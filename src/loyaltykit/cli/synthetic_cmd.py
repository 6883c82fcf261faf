"""``loyaltykit synthetic``: write a seeded synthetic population to files.

Draws customers and their histories with :func:`loyaltykit.datasets.generate` and writes one
Parquet or CSV file per frame (``transactions``, ``feedback``, ``interactions``, ``customers``,
``truth``) plus ``manifest.json`` (how the data were made: version, seed, window, parameters,
row counts) into ``--out``. The transaction, feedback and interaction files are in the core
schemas, so ``loyaltykit analyze`` and :func:`loyaltykit.read_transactions` read them as they are.

The files are first written to a temporary folder next to ``--out`` and moved into place only when
all of them are complete: an error or an interruption leaves no partial data set behind. A
non-empty ``--out`` is refused unless ``--force`` is given; then the data files of an earlier run
(the names above, in either format) are replaced or removed and any other file is left alone.
Progress goes to stderr; the list of files written (or the ``--json`` summary) to stdout.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import os
import shutil
import time
import tomllib
import uuid
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import polars as pl
import typer
from rich.progress import Progress
from rich.table import Table

from loyaltykit.cli._app import app, console, fail, print_json, step_progress
from loyaltykit.errors import ConfigError, InvalidValueError, LoyaltyKitError

if TYPE_CHECKING:
    from loyaltykit.datasets.synthetic import SyntheticData, SyntheticParams

FRAMES: Final = ("transactions", "feedback", "interactions", "customers", "truth")
"""The frames written, in order; each goes to ``<name>.parquet`` or ``<name>.csv``."""
MANIFEST: Final = "manifest.json"
"""Name of the file that records how the data set was made."""


class Format(StrEnum):
    """Output file format."""

    PARQUET = "parquet"
    CSV = "csv"


def _owned_names() -> set[str]:
    """File names a run of ``synthetic`` may write (and ``--force`` may replace)."""
    return {f"{name}.{fmt.value}" for name in FRAMES for fmt in Format} | {MANIFEST}


# --------------------------------------------------------------------------------------------
# options
# --------------------------------------------------------------------------------------------


def _parse_bound(value: str | None, option: str) -> dt.datetime | None:
    """A day (midnight UTC) or an ISO 8601 time with a UTC offset."""
    if value is None:
        return None
    text = value.strip()
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        pass
    else:
        return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise fail(
            f"{option}={value!r}: not a date or time; write a day as YYYY-MM-DD (midnight UTC) "
            "or a time with its offset, e.g. 2024-01-01T00:00:00+01:00"
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise fail(
            f"{option}={value!r}: a time needs a UTC offset, e.g. {text}+00:00 or {text}Z; "
            "or give a day, YYYY-MM-DD, which means midnight UTC"
        )
    return parsed


def _window(start: str | None, end: str | None) -> tuple[dt.datetime, dt.datetime]:
    from loyaltykit.datasets.synthetic import DEFAULT_END, DEFAULT_START

    first = _parse_bound(start, "--start")
    last = _parse_bound(end, "--end")
    begin = DEFAULT_START if first is None else first
    finish = DEFAULT_END if last is None else last
    if finish - begin < dt.timedelta(days=1):
        shown_end = end if last is not None else f"{DEFAULT_END.date()} (the default)"
        shown_start = start if first is not None else f"{DEFAULT_START.date()} (the default)"
        raise fail(
            f"--end={shown_end}: must be at least one day after --start={shown_start}; "
            "the window is [start, end), end excluded"
        )
    return begin, finish


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _coerce(key: str, value: Any, kind: str, source: str) -> Any:
    """The TOML value of one :class:`SyntheticParams` field, checked against its type."""
    if kind == "float":
        if not _is_number(value):
            raise ConfigError(key, value, "must be a number", source)
        return float(value)
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(key, value, "must be a string", source)
        return value
    if kind == "Mix":
        if not isinstance(value, dict) or not all(_is_number(w) for w in value.values()):
            raise ConfigError(
                key,
                value,
                "must be a table of name = weight, e.g. {store = 0.6, app = 0.4}",
                source,
            )
        return value
    if kind == "tuple[float, ...]":
        if not isinstance(value, list) or not all(_is_number(w) for w in value):
            raise ConfigError(key, value, "must be an array of numbers", source)
        return tuple(float(w) for w in value)
    if kind == "tuple[str, ...]":
        if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
            raise ConfigError(key, value, "must be an array of strings", source)
        return tuple(value)
    return value


def read_params(path: Path) -> SyntheticParams:
    """:class:`~loyaltykit.datasets.SyntheticParams` from a TOML file of ``field = value`` lines.

    Fields left out keep their defaults. Mixes (``channels``, ``categories``, ...) are tables of
    ``name = weight``; weight lists (``hour_weights``, ``nps_weights``, ``csat_weights``) and
    comments are arrays.

    :raises ConfigError: for an unreadable file, invalid TOML, an unknown field, a value of the
        wrong type or one that breaks the field's rule, naming the file and the field.
    """
    import attrs

    from loyaltykit.datasets.synthetic import SyntheticParams

    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            "<file>", source, f"cannot be read ({exc.strerror}); check the path"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("<file>", None, f"is not valid TOML: {exc}", source) from None
    kinds = {field.name: str(field.type) for field in attrs.fields(SyntheticParams)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in kinds:
            close = difflib.get_close_matches(key, list(kinds), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                key,
                value,
                f"is not a SyntheticParams field; {hint}the fields are listed in the "
                "SyntheticParams reference",
                source,
            )
        values[key] = _coerce(key, value, kinds[key], source)
    try:
        return SyntheticParams(**values)
    except InvalidValueError as exc:
        raise ConfigError(exc.field, exc.value, exc.rule, source) from None


def params_as_dict(params: SyntheticParams) -> dict[str, Any]:
    """The parameters as plain JSON/TOML values (mixes as ``{name: weight}`` tables), in the
    form :func:`read_params` accepts."""
    import attrs

    out: dict[str, Any] = {}
    for field in attrs.fields(type(params)):
        value = getattr(params, field.name)
        if str(field.type) == "Mix":
            out[field.name] = dict(value)
        elif isinstance(value, tuple):
            out[field.name] = list(value)
        else:
            out[field.name] = value
    return out


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise fail(f"--out {str(out)!r}: exists and is not a folder; give a folder path")
    if out.is_dir() and not force:
        entries = sum(1 for _ in out.iterdir())
        if entries:
            raise fail(
                f"--out {str(out)!r}: the folder is not empty ({entries} entries); choose a new "
                "folder, or pass --force to replace the data files of an earlier run "
                "(other files are left alone)"
            )


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


def _write_frame(frame: pl.DataFrame, path: Path, fmt: Format) -> None:
    # the same files as SyntheticData.write: Parquet keeps the dtypes, CSV has ISO 8601 times
    # with their offset and amounts as decimal text, which loyaltykit.io reads back exactly
    if fmt is Format.PARQUET:
        frame.write_parquet(path)
    else:
        frame.write_csv(path)


def _publish(staging: Path, out: Path) -> None:
    """Move the complete data set from ``staging`` into ``out``."""
    if not out.exists():
        staging.rename(out)
        return
    keep = {p.name for p in staging.iterdir()}
    for name in sorted(_owned_names() - keep):
        (out / name).unlink(missing_ok=True)
    for name in sorted(keep):
        os.replace(staging / name, out / name)
    staging.rmdir()


def _write_data_set(
    data: SyntheticData,
    names: list[str],
    out: Path,
    fmt: Format,
    manifest: dict[str, Any],
    progress: Progress,
) -> dict[str, Path]:
    target = out.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    # a hidden sibling folder on the same file system (so the final moves are renames), created
    # with the default permissions of a new folder (tempfile.mkdtemp would make it private)
    staging = target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}.partial"
    staging.mkdir()
    try:
        task = progress.add_task("writing", total=len(names) + 1)
        paths: dict[str, Path] = {}
        for name in names:
            file_name = f"{name}.{fmt.value}"
            progress.update(task, description=f"writing {file_name}")
            _write_frame(getattr(data, name), staging / file_name, fmt)
            paths[name] = out / file_name
            progress.advance(task)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _publish(staging, target)
        progress.update(task, advance=1, description=f"wrote {len(names) + 1} files")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return paths


# --------------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------------


@app.command("synthetic")
def synthetic_command(
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Folder for the files (must be new or empty)."),
    ] = Path("synthetic"),
    n_customers: Annotated[
        int,
        typer.Option("--customers", "-n", help="How many customers (buyers and prospects).", min=1),
    ] = 20_000,
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed; the same seed gives the same data.", min=0)
    ] = 1,
    start: Annotated[
        str | None,
        typer.Option(
            "--start",
            help="Start of the window (included): YYYY-MM-DD (midnight UTC) or an ISO 8601 "
            "time with offset. Default 2023-01-01.",
            show_default=False,
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            "--end",
            help="End of the window (excluded), like --start; at least a day later. "
            "Default 2025-01-01.",
            show_default=False,
        ),
    ] = None,
    params: Annotated[
        Path | None,
        typer.Option(
            "--params",
            help="TOML file of SyntheticParams fields to change (field = value lines).",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="File format.")] = Format.PARQUET,
    feedback: Annotated[
        bool, typer.Option("--feedback/--no-feedback", help="Draw and write survey answers.")
    ] = True,
    interactions: Annotated[
        bool,
        typer.Option("--interactions/--no-interactions", help="Draw and write touchpoints."),
    ] = True,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Write into a non-empty --out, replacing an earlier data set."
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON summary instead of a table.")
    ] = False,
) -> None:
    """Write a seeded synthetic population (transactions, feedback, touchpoints, truth) to files.

    The transactions, feedback and interactions files are in the core schemas: 'loyaltykit
    analyze' reads them directly. Examples: 'loyaltykit synthetic --customers 50000 --seed 7
    --out data', or 'loyaltykit synthetic -n 1000 --start 2024-01-01 --end 2024-07-01
    --format csv --no-interactions --out small'.
    """
    from loyaltykit import __version__
    from loyaltykit.datasets.synthetic import generate

    begin, finish = _window(start, end)
    if params is not None and not params.is_file():
        raise fail(
            f"--params {str(params)!r}: no such file; give a TOML file of SyntheticParams fields"
        )
    try:
        chosen = None if params is None else read_params(params)
    except LoyaltyKitError as exc:
        raise fail(exc) from None
    _check_out(out, force)
    names = [
        name
        for name in FRAMES
        if (name != "feedback" or feedback) and (name != "interactions" or interactions)
    ]
    progress = step_progress()
    clock = time.perf_counter()
    try:
        with progress:
            task = progress.add_task(f"generating {n_customers:,} customers", total=None)
            data = generate(
                n_customers,
                seed=seed,
                start=begin,
                end=finish,
                params=chosen,
                with_feedback=feedback,
                with_interactions=interactions,
            )
            progress.update(task, total=1, completed=1)
            rows = {name: getattr(data, name).height for name in names}
            manifest = {
                "generator": "loyaltykit.datasets.generate",
                "loyaltykit_version": __version__,
                "customers": n_customers,
                "seed": seed,
                "start": data.start.isoformat(),
                "end": data.end.isoformat(),
                "format": fmt.value,
                "files": {
                    name: {"file": f"{name}.{fmt.value}", "rows": rows[name]} for name in names
                },
                "params": params_as_dict(data.params),
            }
            paths = _write_data_set(data, names, out, fmt, manifest, progress)
    except LoyaltyKitError as exc:
        raise fail(exc) from None
    except OSError as exc:
        raise fail(f"--out {str(out)!r}: cannot write ({exc}); nothing was written") from None
    seconds = time.perf_counter() - clock
    as_of = (data.end - dt.timedelta(microseconds=1)).date()
    if as_json:
        print_json(
            {
                "out": str(out),
                "manifest": str(out / MANIFEST),
                "customers": n_customers,
                "seed": seed,
                "start": data.start.isoformat(),
                "end": data.end.isoformat(),
                "as_of": str(as_of),
                "format": fmt.value,
                "files": {
                    name: {"path": str(path), "rows": rows[name]} for name, path in paths.items()
                },
                "seconds": round(seconds, 3),
            }
        )
        return
    report = Table(
        title=f"loyaltykit synthetic: {n_customers:,} customers, seed {seed}, "
        f"[{data.start:%Y-%m-%d %H:%M}, {data.end:%Y-%m-%d %H:%M}) UTC"
    )
    report.add_column("data")
    report.add_column("file")
    report.add_column("rows", justify="right")
    for name, path in paths.items():
        report.add_row(name, str(path), f"{rows[name]:,}")
    report.add_row("manifest", str(out / MANIFEST), "")
    console.print(report)
    command = ["loyaltykit analyze", str(paths["transactions"])]
    for name in ("feedback", "interactions"):
        if name in paths:
            command.append(f"--{name} {paths[name]}")
    command.append(f"--as-of {as_of} --out results")
    console.print(
        f"written in {seconds:.1f} s; analyse with:\n  {' '.join(command)}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
