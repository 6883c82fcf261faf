"""``loyaltykit analyze`` and the plot functions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from matplotlib.axes import Axes
from typer.testing import CliRunner

from loyaltykit import analytics as a
from loyaltykit.analytics import plot
from loyaltykit.cli import build_app
from loyaltykit.datasets import load_cdnow
from loyaltykit.datasets.synthetic import generate
from loyaltykit.errors import InvalidValueError

runner = CliRunner()


def test_analyze_bundled_cdnow_sample(tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = runner.invoke(build_app(), ["analyze", "--dataset", "cdnow-sample", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in (
        "summary",
        "rfm",
        "lifecycle",
        "cohort_retention",
        "period_kpis",
        "customer_profile",
    ):
        assert (out / f"{name}.parquet").is_file(), name
    profile = pl.read_parquet(out / "customer_profile.parquet")
    assert profile.height == 2357
    assert (out / "cohort_retention.png").stat().st_size > 10_000
    assert (out / "rfm_segments.png").is_file()
    assert not (out / "channels.parquet").exists()  # CDNOW has no channels
    summary = pl.read_parquet(out / "summary.parquet")
    expected = a.summary(
        load_cdnow(sample=True).drop("sample_id"), observation_end=dt.date(1998, 6, 30)
    )
    assert summary.equals(expected)


def test_analyze_files_with_feedback_interactions_csv(tmp_path: Path) -> None:
    data = generate(800, seed=5)
    data.transactions.write_parquet(tmp_path / "tx.parquet")
    data.feedback.write_csv(tmp_path / "fb.csv")
    data.interactions.write_ipc(tmp_path / "inter.arrow")
    out = tmp_path / "out"
    result = runner.invoke(
        build_app(),
        [
            "analyze",
            str(tmp_path / "tx.parquet"),
            "--feedback",
            str(tmp_path / "fb.csv"),
            "--interactions",
            str(tmp_path / "inter.arrow"),
            "--out",
            str(out),
            "--format",
            "csv",
            "--as-of",
            "2024-12-31",
            "--period",
            "Q",
            "--no-plots",
        ],
    )
    assert result.exit_code == 0, result.output
    for name in (
        "nps",
        "nps_by_period",
        "csat",
        "advocates",
        "journey_funnel",
        "channels",
        "channel_transitions",
        "touchpoints_before_outcomes",
        "churn_signals",
    ):
        assert (out / f"{name}.csv").is_file(), name
    assert not list(out.glob("*.png"))
    kpis = pl.read_csv(out / "period_kpis.csv")
    assert kpis.height == 8  # quarters of 2023-2024
    assert "2024-12-31" in result.stdout  # the title names the day of the analysis


def test_analyze_invalid_input_and_lenient(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text(
        "transaction_id,customer_id,occurred_at,amount\n"
        "t1,c1,2024-01-01T10:00:00Z,10.00\n"
        "t2,c1,2024-02-01T10:00:00Z,-3.00\n"
        "t3,c2,2024-02-03T10:00:00Z,7.50\n"
    )
    strict = runner.invoke(build_app(), ["analyze", str(path), "--out", str(tmp_path / "o")])
    assert strict.exit_code == 2
    assert "negative amount" in strict.output
    lenient = runner.invoke(
        build_app(), ["analyze", str(path), "--out", str(tmp_path / "o"), "--lenient", "--no-plots"]
    )
    assert lenient.exit_code == 0, lenient.output
    rejected = pl.read_csv(tmp_path / "o" / "rejected_transactions.csv")
    assert rejected["row"].to_list() == [1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["analyze", "--out", "x"], "either a TRANSACTIONS file or --dataset"),
        (["analyze", "a.csv", "--dataset", "cdnow"], "either a TRANSACTIONS file or --dataset"),
        (["analyze", "--dataset", "cdnow", "--period", "H"], "--period"),
        (["analyze", "--dataset", "cdnow", "--as-of", "June"], "--as-of"),
        (["analyze", "missing.csv"], "no such file"),
    ],
)
def test_analyze_usage_errors(tmp_path: Path, argv: list[str], message: str) -> None:
    result = runner.invoke(build_app(), [*argv[:1], *argv[1:], "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert message in result.output


def test_every_plot_returns_axes() -> None:
    data = generate(1500, seed=9)
    tx, fb, inter = data.transactions, data.feedback, data.interactions
    as_of = dt.date(2024, 12, 31)
    signals = a.churn_signals(tx, as_of=as_of)
    made = [
        plot.plot_cohort_retention(a.cohort_retention(tx, as_of=as_of)),
        plot.plot_segments(a.rfm(tx, as_of=as_of)),
        plot.plot_lifecycle(a.lifecycle(tx, as_of=as_of).lazy()),
        plot.plot_period_kpis(a.period_kpis(tx, as_of=as_of)),
        plot.plot_nps(a.nps(fb, period="Q", by="channel")),
        plot.plot_nps(a.nps(fb, by="channel")),
        plot.plot_inter_purchase_times(a.inter_purchase_times(tx, as_of=as_of)),
        plot.plot_channels(a.channel_summary(tx, as_of=as_of)),
        plot.plot_funnel(a.journey_funnel(inter, tx, as_of=as_of)),
        plot.plot_risk(signals),
        plot.plot_risk(signals.drop("stage")),
    ]
    for ax in made:
        assert isinstance(ax, Axes)
        assert ax.get_title()
    import matplotlib.figure

    fig = matplotlib.figure.Figure()
    given = fig.add_subplot()
    assert plot.plot_lifecycle(a.lifecycle(tx, as_of=as_of), ax=given) is given
    with pytest.raises(InvalidValueError, match="needs column"):
        plot.plot_segments(pl.DataFrame({"x": [1]}))
