"""``loyaltykit analyze``: every customer-analytics table (and plots) from a transaction log.

Reads and validates the transactions (and optional feedback and interaction logs) with
:mod:`loyaltykit.io`, or takes a bundled data set (``--dataset``), runs the analytics of
:mod:`loyaltykit.analytics` as of a day, and writes one Parquet or CSV file per table into
``--out``; with matplotlib installed (the ``plot`` extra) it also writes PNG plots next to them.
Progress goes to stderr; the list of files written to stdout.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich.progress import Progress
from rich.table import Table

from loyaltykit.cli._app import app, console, err_console, fail, step_progress
from loyaltykit.errors import LoyaltyKitError


class Dataset(StrEnum):
    """Bundled data ``--dataset`` can name."""

    CDNOW = "cdnow"
    CDNOW_SAMPLE = "cdnow-sample"
    SYNTHETIC = "synthetic"


class Format(StrEnum):
    """Output file format."""

    PARQUET = "parquet"
    CSV = "csv"


def _parse_day(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise fail(f"--as-of={value!r}: not a date; write it as YYYY-MM-DD") from None


class _Inputs:
    """What ``analyze`` works on, however it was given."""

    def __init__(
        self,
        transactions: pl.DataFrame,
        feedback: pl.DataFrame | None,
        interactions: pl.DataFrame | None,
        customers: pl.DataFrame | None,
        as_of: dt.date,
        label: str,
    ) -> None:
        self.transactions = transactions
        self.feedback = feedback
        self.interactions = interactions
        self.customers = customers
        self.as_of = as_of
        self.label = label


def _last_day(frame: pl.DataFrame) -> dt.date:
    last = frame["occurred_at"].max()
    if not isinstance(last, dt.datetime):
        raise fail("the transactions are empty: nothing to analyse")
    return last.date()


def _load_dataset(dataset: Dataset, n_customers: int, seed: int) -> _Inputs:
    from loyaltykit import datasets

    if dataset is Dataset.SYNTHETIC:
        from loyaltykit.datasets.synthetic import generate

        data = generate(n_customers, seed=seed)
        last = data.end - dt.timedelta(microseconds=1)
        return _Inputs(
            data.transactions,
            data.feedback,
            data.interactions,
            data.customers,
            last.date(),
            f"synthetic data ({n_customers:,} customers, seed {seed})",
        )
    sample = dataset is Dataset.CDNOW_SAMPLE
    tx = datasets.load_cdnow(sample=sample)
    if sample:
        tx = tx.drop("sample_id")
    label = "CDNOW 1/10 sample" if sample else "CDNOW (Fader, Hardie & Lee 2005)"
    return _Inputs(tx, None, None, None, datasets.CDNOW_OBSERVATION_END.date(), label)


def _write(frame: pl.DataFrame, out: Path, name: str, fmt: Format) -> Path:
    path = out / f"{name}.{fmt.value}"
    if fmt is Format.PARQUET:
        frame.write_parquet(path)
    else:
        # CSV has no nested or enum types: write enums as text
        frame.with_columns(pl.col(pl.Enum).cast(pl.String)).write_csv(path)
    return path


def _steps(inputs: _Inputs, period: str) -> list[tuple[str, Callable[[], pl.DataFrame]]]:
    """The tables to compute, in order, as (name, thunk)."""
    from loyaltykit import analytics as a

    tx = inputs.transactions
    as_of = inputs.as_of
    steps: list[tuple[str, Callable[[], pl.DataFrame]]] = [
        ("summary", lambda: a.summary(tx, observation_end=as_of)),
        ("rfm", lambda: a.rfm(tx, as_of=as_of)),
        ("lifecycle", lambda: a.lifecycle(tx, as_of=as_of, customers=inputs.customers)),
        ("cohort_retention", lambda: a.cohort_retention(tx, as_of=as_of, period=period)),
        ("period_kpis", lambda: a.period_kpis(tx, as_of=as_of, period=period)),
        ("kpi_summary", lambda: a.kpi_summary(tx, as_of=as_of)),
        ("inter_purchase_times", lambda: a.inter_purchase_times(tx, as_of=as_of)),
        ("purchase_patterns", lambda: a.purchase_patterns(tx, as_of=as_of)),
    ]
    if tx["channel"].null_count() < tx.height:
        steps.append(("channels", lambda: a.channel_summary(tx, as_of=as_of)))
    fb, inter = inputs.feedback, inputs.interactions
    if fb is not None and fb.height:
        steps += [
            ("nps", lambda: a.nps(fb)),
            ("nps_by_period", lambda: a.nps(fb, period=period)),
            ("csat", lambda: a.csat(fb)),
            (
                "advocates",
                lambda: a.advocates(
                    fb, tx, as_of=as_of, interactions=inter, customers=inputs.customers
                ),
            ),
        ]
    if inter is not None and inter.height:
        steps += [
            ("journey_paths", lambda: a.touchpoint_paths(inter, as_of=as_of)),
            ("channel_transitions", lambda: a.channel_transitions(inter, as_of=as_of)),
            ("journey_funnel", lambda: a.journey_funnel(inter, tx, as_of=as_of)),
            (
                "touchpoints_before_outcomes",
                lambda: a.touchpoints_before_outcomes(inter, tx, as_of=as_of),
            ),
        ]
    steps += [
        (
            "churn_signals",
            lambda: a.churn_signals(tx, as_of=as_of, feedback=fb, interactions=inter),
        ),
        (
            "customer_profile",
            lambda: a.customer_profile(
                tx,
                as_of=as_of,
                feedback=fb,
                interactions=inter,
                customers=inputs.customers,
            ),
        ),
    ]
    return steps


_PLOTS: dict[str, tuple[str, str]] = {
    # table -> (plot function in loyaltykit.analytics.plot, file name)
    "cohort_retention": ("plot_cohort_retention", "cohort_retention.png"),
    "rfm": ("plot_segments", "rfm_segments.png"),
    "lifecycle": ("plot_lifecycle", "lifecycle_stages.png"),
    "period_kpis": ("plot_period_kpis", "period_kpis.png"),
    "inter_purchase_times": ("plot_inter_purchase_times", "inter_purchase_times.png"),
    "channels": ("plot_channels", "channels.png"),
    "nps_by_period": ("plot_nps", "nps_by_period.png"),
    "journey_funnel": ("plot_funnel", "journey_funnel.png"),
    "churn_signals": ("plot_risk", "churn_risk.png"),
}


def _plotting_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


@app.command("analyze")
def analyze_command(
    transactions: Annotated[
        Path | None,
        typer.Argument(
            help="Transactions file (.csv, .parquet, .arrow); or use --dataset.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Directory for the tables (and plots).")
    ] = Path("results"),
    dataset: Annotated[
        Dataset | None,
        typer.Option("--dataset", help="Analyse bundled data instead of a file."),
    ] = None,
    feedback: Annotated[
        Path | None, typer.Option("--feedback", help="Survey answers file (NPS / CSAT).")
    ] = None,
    interactions: Annotated[
        Path | None, typer.Option("--interactions", help="Touchpoints file (journeys).")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Table file format.")] = Format.PARQUET,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Day of the analysis, YYYY-MM-DD (default: the last purchase day)."
        ),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option("--timezone", help="IANA time zone of timestamps written without offset."),
    ] = None,
    period: Annotated[
        str, typer.Option("--period", help="Cohort and KPI period: D, W, M, Q or Y.")
    ] = "M",
    lenient: Annotated[
        bool,
        typer.Option(
            "--lenient",
            help="Skip invalid rows (written to rejected_*.csv) instead of stopping.",
        ),
    ] = False,
    plots: Annotated[
        bool, typer.Option("--plots/--no-plots", help="Write PNG plots (needs matplotlib).")
    ] = True,
    n_customers: Annotated[
        int, typer.Option("--customers", help="Customers of --dataset synthetic.", min=1)
    ] = 20_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of --dataset synthetic.")] = 1,
) -> None:
    """Write every customer-analytics table (and plots) for a transaction log.

    Examples: 'loyaltykit analyze sales.csv --out results --timezone Europe/Paris', or
    'loyaltykit analyze --dataset cdnow --out results' for the bundled CDNOW data.
    """
    if (transactions is None) == (dataset is None):
        raise fail("give either a TRANSACTIONS file or --dataset (cdnow, cdnow-sample, synthetic)")
    if period not in ("D", "W", "M", "Q", "Y"):
        raise fail(f"--period={period!r}: use D, W, M, Q or Y")
    day = _parse_day(as_of)
    progress = step_progress()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fail(f"--out {str(out)!r}: cannot create the directory ({exc})") from None
    written: list[tuple[str, Path, int | None]] = []
    try:
        with progress:
            load = progress.add_task("reading input", total=None)
            inputs = _read_inputs(
                transactions,
                dataset,
                feedback,
                interactions,
                timezone,
                lenient,
                out,
                n_customers,
                seed,
                written,
            )
            if day is not None:
                inputs.as_of = day
            progress.update(load, total=1, completed=1, description=f"read {inputs.label}")
            steps = _steps(inputs, period)
            task = progress.add_task("analysing", total=len(steps))
            tables: dict[str, pl.DataFrame] = {}
            for name, thunk in steps:
                progress.update(task, description=f"computing {name}")
                table = thunk()
                tables[name] = table
                written.append((name, _write(table, out, name, fmt), table.height))
                progress.advance(task)
            matrix = _cohort_matrix(tables)
            if matrix is not None:
                written.append(
                    ("cohort_matrix", _write(matrix, out, "cohort_matrix", fmt), matrix.height)
                )
            if plots and _plotting_available():
                _write_plots(tables, out, progress, written)
            elif plots:
                err_console.print(
                    "plots skipped: matplotlib is not installed (pip install 'loyaltykit[plot]')"
                )
    except LoyaltyKitError as exc:
        raise fail(exc) from None
    report = Table(title=f"loyaltykit analyze: {inputs.label}, as of {inputs.as_of}")
    report.add_column("table")
    report.add_column("file")
    report.add_column("rows", justify="right")
    for name, path, rows in written:
        report.add_row(name, str(path), "" if rows is None else f"{rows:,}")
    console.print(report)


def _read_inputs(
    transactions: Path | None,
    dataset: Dataset | None,
    feedback: Path | None,
    interactions: Path | None,
    timezone: str | None,
    lenient: bool,
    out: Path,
    n_customers: int,
    seed: int,
    written: list[tuple[str, Path, int | None]],
) -> _Inputs:
    from loyaltykit.io import read_feedback, read_interactions, read_transactions

    def read(reader: Any, source: Path, what: str) -> pl.DataFrame:
        if not lenient:
            frame: pl.DataFrame = reader(source, timezone=timezone)
            return frame
        clean, rejected = reader(source, timezone=timezone, strict=False)
        if rejected.height:
            path = out / f"rejected_{what}.csv"
            rejected.write_csv(path)
            written.append((f"rejected {what}", path, rejected.height))
            err_console.print(
                f"[yellow]{rejected.height:,} invalid {what} row(s) skipped; see {path}[/]"
            )
        result: pl.DataFrame = clean
        return result

    if dataset is not None:
        inputs = _load_dataset(dataset, n_customers, seed)
    else:
        assert transactions is not None
        tx = read(read_transactions, transactions, "transactions")
        inputs = _Inputs(tx, None, None, None, _last_day(tx), str(transactions))
    if feedback is not None:
        inputs.feedback = read(read_feedback, feedback, "feedback")
    if interactions is not None:
        inputs.interactions = read(read_interactions, interactions, "interactions")
    return inputs


def _cohort_matrix(tables: dict[str, pl.DataFrame]) -> pl.DataFrame | None:
    from loyaltykit.analytics import retention_matrix

    cohorts = tables.get("cohort_retention")
    if cohorts is None or cohorts.height == 0:
        return None
    return retention_matrix(cohorts)


def _write_plots(
    tables: dict[str, pl.DataFrame],
    out: Path,
    progress: Progress,
    written: list[tuple[str, Path, int | None]],
) -> None:
    from loyaltykit.analytics import plot

    todo = [(name, spec) for name, spec in _PLOTS.items() if name in tables and tables[name].height]
    task = progress.add_task("plotting", total=len(todo))
    for name, (function, file_name) in todo:
        progress.update(task, description=f"plotting {file_name}")
        ax = getattr(plot, function)(tables[name])
        path = out / file_name
        ax.figure.savefig(path, dpi=110)
        written.append((f"plot: {name}", path, None))
        progress.advance(task)
