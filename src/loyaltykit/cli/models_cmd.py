"""``loyaltykit clv``: fit a BTYD model and a spend model, score every customer.

Reads and validates a transaction log with :mod:`loyaltykit.io` (or takes a bundled data set),
builds the per-customer summary in the chosen time unit, fits the transaction model
(BG/NBD by default) and the Gamma-Gamma spend model, and writes one row per customer: P(alive),
expected purchases and CLV over the horizon, and a value tier. The fitted parameters, with their
standard errors, are printed as a table (or JSON).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich.table import Table

from loyaltykit.cli._app import app, console, err_console, fail, print_json
from loyaltykit.errors import LoyaltyKitError


class TransactionModel(StrEnum):
    """Transaction models ``--model`` can name."""

    BGNBD = "bgnbd"
    MBGNBD = "mbgnbd"
    PARETO_NBD = "pareto_nbd"


class Unit(StrEnum):
    """Time units of the summary (and of ``--horizon``)."""

    DAYS = "D"
    WEEKS = "W"


class Source(StrEnum):
    """Bundled data ``--dataset`` can name."""

    CDNOW = "cdnow"
    CDNOW_SAMPLE = "cdnow-sample"
    SYNTHETIC = "synthetic"


def _load(
    transactions: Path | None, dataset: Source | None, timezone: str | None, n: int, seed: int
) -> tuple[pl.DataFrame, dt.date, str]:
    if dataset is None:
        from loyaltykit.io import read_transactions

        assert transactions is not None
        tx = read_transactions(transactions, timezone=timezone)
        last = tx["occurred_at"].max()
        if not isinstance(last, dt.datetime):
            raise fail("the transactions are empty: nothing to model")
        return tx, last.date(), str(transactions)
    from loyaltykit import datasets

    if dataset is Source.SYNTHETIC:
        from loyaltykit.datasets.synthetic import generate

        data = generate(n, seed=seed, with_feedback=False, with_interactions=False)
        last_day = (data.end - dt.timedelta(microseconds=1)).date()
        return data.transactions, last_day, f"synthetic data ({n:,} customers, seed {seed})"
    sample = dataset is Source.CDNOW_SAMPLE
    tx = datasets.load_cdnow(sample=sample)
    if sample:
        tx = tx.drop("sample_id")
    return tx, datasets.CDNOW_OBSERVATION_END.date(), "CDNOW" + (" 1/10 sample" if sample else "")


def _parse_tiers(value: str) -> list[float]:
    try:
        cuts = [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise fail(f"--tiers={value!r}: write quantiles as e.g. 0.5,0.9") from None
    return cuts


@app.command("clv")
def clv_command(
    transactions: Annotated[
        Path | None,
        typer.Argument(
            help="Transactions file (.csv, .parquet, .arrow); or use --dataset.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Per-customer scores file (.parquet or .csv).")
    ] = Path("clv.parquet"),
    dataset: Annotated[
        Source | None, typer.Option("--dataset", help="Model bundled data instead of a file.")
    ] = None,
    model: Annotated[
        TransactionModel, typer.Option("--model", help="Transaction model.")
    ] = TransactionModel.BGNBD,
    time_unit: Annotated[
        Unit, typer.Option("--time-unit", help="Time unit of the summary and the horizon.")
    ] = Unit.WEEKS,
    horizon: Annotated[
        float, typer.Option("--horizon", help="CLV horizon, in --time-unit.", min=0.001)
    ] = 52.0,
    annual_discount: Annotated[
        float,
        typer.Option("--annual-discount", help="Yearly discount rate (converted to --time-unit)."),
    ] = 0.10,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="End of observation, YYYY-MM-DD (default: last purchase)."),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option("--timezone", help="IANA time zone of timestamps written without offset."),
    ] = None,
    tiers: Annotated[
        str, typer.Option("--tiers", help="Quantiles that cut CLV into tiers, e.g. 0.5,0.9.")
    ] = "0.5,0.9",
    as_json: Annotated[bool, typer.Option("--json", help="Print the parameters as JSON.")] = False,
    n_customers: Annotated[
        int, typer.Option("--customers", help="Customers of --dataset synthetic.", min=1)
    ] = 20_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of --dataset synthetic.")] = 1,
) -> None:
    """Fit a BTYD model and Gamma-Gamma, and write P(alive), expected purchases and CLV.

    Examples: ``loyaltykit clv sales.csv --time-unit W --horizon 52 --out clv.parquet`` or
    ``loyaltykit clv --dataset cdnow-sample --model pareto_nbd --out clv.csv``.
    """
    from loyaltykit.analytics import summary
    from loyaltykit.models import (
        BetaGeo,
        GammaGamma,
        ModifiedBetaGeo,
        ParetoNBD,
        clv_column_name,
        customer_lifetime_value,
        period_discount_rate,
        value_tiers,
    )

    if (transactions is None) == (dataset is None):
        raise fail("give either a TRANSACTIONS file or --dataset (cdnow, cdnow-sample, synthetic)")
    if out.suffix not in (".parquet", ".csv"):
        raise fail(f"--out {str(out)!r}: use a .parquet or .csv file name")
    cuts = _parse_tiers(tiers)
    classes: dict[TransactionModel, Any] = {
        TransactionModel.BGNBD: BetaGeo,
        TransactionModel.MBGNBD: ModifiedBetaGeo,
        TransactionModel.PARETO_NBD: ParetoNBD,
    }
    unit = time_unit.value
    try:
        tx, last_day, label = _load(transactions, dataset, timezone, n_customers, seed)
        end = dt.date.fromisoformat(as_of) if as_of else last_day
        customers = summary(tx, observation_end=end, time_unit=time_unit.value)
        err_console.print(f"summary of {customers.height:,} customers from {label}, as of {end}")
        fitted = classes[model](time_unit=unit).fit(customers)
        repeat = customers.filter((pl.col("frequency") > 0) & (pl.col("monetary_value") > 0))
        spend = GammaGamma().fit(repeat)
        scored = fitted.expected_purchases(horizon, fitted.probability_alive(customers))
        rate = period_discount_rate(annual_discount, unit)
        # discounted expected transactions (CLV at one unit of spend), times the expected spend;
        # repeat buyers whose purchases were worth nothing (free items, full refunds) spend 0
        clv_col = clv_column_name(horizon, unit)
        scored = customer_lifetime_value(
            fitted, 1.0, scored, horizon=horizon, discount_rate=rate, time_unit=unit, name=clv_col
        )
        usable = (pl.col("frequency") == 0) | (pl.col("monetary_value") > 0)
        spend_frame = spend.expected_spend(
            scored.select("frequency", pl.when(usable).then("monetary_value").otherwise(1.0))
        )
        assert isinstance(spend_frame, pl.DataFrame)
        scored = scored.with_columns(
            pl.when(usable)
            .then(pl.col(clv_col) * spend_frame.get_column("expected_spend"))
            .otherwise(0.0)
            .alias(clv_col)
        )
        assert isinstance(scored, pl.DataFrame)  # eager in, eager out
        if cuts:
            tiered = value_tiers(scored, value=clv_col, quantiles=cuts)
            scored = scored.join(tiered.select("customer_id", "clv_tier"), on="customer_id")
        total_clv = float(scored.get_column(clv_col).sum())
    except ValueError as exc:
        if isinstance(exc, LoyaltyKitError):
            raise fail(exc) from None
        raise fail(f"--as-of={as_of!r}: not a date; write it as YYYY-MM-DD") from None
    except LoyaltyKitError as exc:
        raise fail(exc) from None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == ".csv":
            scored.write_csv(out)
        else:
            scored.write_parquet(out)
    except OSError as exc:
        raise fail(f"--out {str(out)!r}: cannot write ({exc})") from None
    rows = []
    for name, m in (("transactions", fitted), ("spend", spend)):
        table = m.summary_
        for rec in table.iter_rows(named=True):
            rows.append({"model": type(m).__name__, "part": name, **rec})
    if as_json:
        print_json(
            {
                "data": label,
                "as_of": str(end),
                "time_unit": unit,
                "customers": customers.height,
                "log_likelihood": {"transactions": fitted.log_likelihood_},
                "parameters": rows,
                "output": str(out),
                "clv_column": clv_col,
                "total_clv": total_clv,
            }
        )
        return
    report = Table(title=f"loyaltykit clv: {label}, as of {end}, time unit {unit}")
    for col in ("model", "parameter", "estimate", "std error", "95% interval"):
        report.add_column(col)
    for rec in rows:
        report.add_row(
            rec["model"],
            rec["parameter"],
            f"{rec['estimate']:.4g}",
            f"{rec['std_error']:.3g}",
            f"{rec['lower_95']:.4g} - {rec['upper_95']:.4g}",
        )
    console.print(report)
    console.print(
        f"{customers.height:,} customers scored; {clv_col} total {total_clv:,.0f}; written to {out}"
    )
