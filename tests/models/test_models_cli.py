"""``loyaltykit clv``: fit, score and write per-customer CLV from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

typer_testing = pytest.importorskip("typer.testing", reason="the cli extra is not installed")

from loyaltykit.cli import build_app  # noqa: E402

runner = typer_testing.CliRunner()


def test_clv_on_the_cdnow_sample_writes_scores(tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    result = runner.invoke(
        build_app(),
        ["clv", "--dataset", "cdnow-sample", "--as-of", "1997-09-30", "--out", str(out), "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    params = {
        r["parameter"]: r["estimate"] for r in report["parameters"] if r["part"] == "transactions"
    }
    assert round(params["r"], 3) == 0.243  # the published BG/NBD fit
    assert report["clv_column"] == "clv_52_weeks"
    scores = pl.read_csv(out)
    assert scores.height == 2357
    assert {"probability_alive", "expected_purchases", "clv_52_weeks", "clv_tier"} <= set(
        scores.columns
    )
    assert scores["clv_tier"].n_unique() == 3


def test_clv_table_output_and_other_model(tmp_path: Path) -> None:
    out = tmp_path / "scores.parquet"
    result = runner.invoke(
        build_app(),
        [
            "clv",
            "--dataset",
            "cdnow-sample",
            "--model",
            "pareto_nbd",
            "--time-unit",
            "D",
            "--horizon",
            "365",
            "--out",
            str(out),
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "ParetoNBD" in result.stdout
    assert "clv_365_days" in pl.read_parquet(out).columns


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["clv"], "either a TRANSACTIONS file or --dataset"),
        (["clv", "--dataset", "cdnow-sample", "--out", "x.txt"], ".parquet or .csv"),
        (["clv", "--dataset", "cdnow-sample", "--as-of", "yesterday"], "not a date"),
        (["clv", "--dataset", "cdnow-sample", "--tiers", "a,b"], "quantiles"),
    ],
)
def test_clv_refuses_bad_options(argv: list[str], message: str, tmp_path: Path) -> None:
    result = runner.invoke(build_app(), argv, env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert message in result.output


def test_clv_from_a_file_with_worthless_repeat_purchases(tmp_path: Path) -> None:
    """A repeat purchase worth 0 (a free item) leaves monetary_value 0: spend 0, no error."""
    import datetime as dt

    from loyaltykit.datasets import load_cdnow

    tx = load_cdnow(sample=True).drop("sample_id")
    extra = tx.head(2).with_columns(
        pl.Series("transaction_id", ["free-1", "free-2"]),
        pl.lit("zz").alias("customer_id"),
        pl.Series(
            "occurred_at",
            [dt.datetime(1997, 2, 1, tzinfo=dt.UTC), dt.datetime(1997, 3, 1, tzinfo=dt.UTC)],
        ).cast(tx.schema["occurred_at"]),
        pl.Series("amount", ["12.00", "0.00"]).cast(tx.schema["amount"]),
    )
    source = tmp_path / "sales.parquet"
    pl.concat([tx, extra]).write_parquet(source)
    out = tmp_path / "clv.csv"
    result = runner.invoke(
        build_app(),
        ["clv", str(source), "--as-of", "1997-09-30", "--out", str(out)],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    scores = pl.read_csv(out, schema_overrides={"customer_id": pl.String})
    zz = scores.filter(pl.col("customer_id") == "zz")
    assert zz["frequency"][0] == 1
    assert zz["monetary_value"][0] == 0.0
    assert zz["clv_52_weeks"][0] == 0.0
    assert scores["clv_52_weeks"].is_finite().all()
    assert scores.height == 2358
