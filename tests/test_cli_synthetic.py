"""``loyaltykit synthetic``: a seeded synthetic population written to files."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

typer_testing = pytest.importorskip("typer.testing", reason="the cli extra is not installed")

from loyaltykit import read_feedback, read_interactions, read_transactions  # noqa: E402
from loyaltykit.analytics import summary  # noqa: E402
from loyaltykit.cli import build_app, click_command  # noqa: E402
from loyaltykit.cli import synthetic_cmd as cmd  # noqa: E402
from loyaltykit.datasets import SyntheticParams, generate  # noqa: E402

runner = typer_testing.CliRunner()
WIDE = {"COLUMNS": "250"}


def invoke(*argv: str) -> Any:
    return runner.invoke(build_app(), ["synthetic", *argv], env=WIDE)


def flat(text: str) -> str:
    """The text with every run of white space made one space (rich wraps long messages)."""
    return " ".join(text.split())


def leftovers(folder: Path) -> list[Path]:
    return list(folder.glob(".*.partial"))


def test_parquet_files_are_the_frames_of_generate(tmp_path: Path) -> None:
    out = tmp_path / "data"
    result = invoke("--customers", "300", "--seed", "11", "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    direct = generate(300, seed=11)
    assert report["customers"] == 300
    assert report["seed"] == 11
    assert report["start"] == "2023-01-01T00:00:00+00:00"
    assert report["end"] == "2025-01-01T00:00:00+00:00"
    assert report["as_of"] == "2024-12-31"
    assert list(report["files"]) == [
        "transactions",
        "feedback",
        "interactions",
        "customers",
        "truth",
    ]
    files = {name: Path(f["path"]) for name, f in report["files"].items()}
    for name, frame in (
        ("transactions", read_transactions(files["transactions"])),
        ("feedback", read_feedback(files["feedback"])),
        ("interactions", read_interactions(files["interactions"])),
        ("customers", pl.read_parquet(files["customers"])),
        ("truth", pl.read_parquet(files["truth"])),
    ):
        expected: pl.DataFrame = getattr(direct, name)
        assert expected.height > 0, name
        assert frame.equals(expected), name
        assert frame.schema == expected.schema, name
        assert report["files"][name]["rows"] == expected.height
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 11
    assert manifest["customers"] == 300
    assert manifest["files"]["transactions"] == {
        "file": "transactions.parquet",
        "rows": direct.transactions.height,
    }
    assert manifest["params"] == cmd.params_as_dict(SyntheticParams())
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{name}.parquet" for name in cmd.FRAMES] + ["manifest.json"]
    )
    assert not leftovers(tmp_path)


def test_csv_window_without_interactions_then_analyze(tmp_path: Path) -> None:
    out = tmp_path / "small"
    result = invoke(
        "-n",
        "250",
        "--seed",
        "3",
        "--start",
        "2024-01-01",
        "--end",
        "2024-07-01T00:00:00+02:00",
        "--format",
        "csv",
        "--no-interactions",
        "--out",
        str(out),
        "--json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["end"] == "2024-06-30T22:00:00+00:00"
    assert report["as_of"] == "2024-06-30"
    assert "interactions" not in report["files"]
    assert not (out / "interactions.csv").exists()
    direct = generate(
        250,
        seed=3,
        start=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        end=dt.datetime(2024, 6, 30, 22, tzinfo=dt.UTC),
        with_interactions=False,
    )
    tx = read_transactions(out / "transactions.csv")
    assert tx.equals(direct.transactions)
    assert read_feedback(out / "feedback.csv").equals(direct.feedback)

    # the written files are valid input of `loyaltykit analyze`
    results = tmp_path / "results"
    analysed = runner.invoke(
        build_app(),
        [
            "analyze",
            str(out / "transactions.csv"),
            "--feedback",
            str(out / "feedback.csv"),
            "--as-of",
            report["as_of"],
            "--out",
            str(results),
            "--no-plots",
        ],
        env=WIDE,
    )
    assert analysed.exit_code == 0, analysed.output
    expected = summary(direct.transactions, observation_end=dt.date(2024, 6, 30))
    assert pl.read_parquet(results / "summary.parquet").equals(expected)
    assert (results / "nps.parquet").is_file()


def test_table_output_names_the_files_and_the_analyze_command(tmp_path: Path) -> None:
    out = tmp_path / "data"
    result = invoke("-n", "200", "--out", str(out), "--no-feedback")
    assert result.exit_code == 0, result.output
    text = flat(result.stdout)
    assert "200 customers, seed 1" in text
    for name in ("transactions", "interactions", "customers", "truth", "manifest"):
        assert str(out / name) in text, name
    assert "feedback" not in text
    command = (
        f"loyaltykit analyze {out / 'transactions.parquet'} "
        f"--interactions {out / 'interactions.parquet'} --as-of 2024-12-31"
    )
    assert command in text


def test_params_file(tmp_path: Path) -> None:
    params = tmp_path / "params.toml"
    params.write_text(
        'refund_rate = 0.2\nchannels = { web = 3, phone = 1 }\nr = 1\ncurrency = "USD"\n'
    )
    out = tmp_path / "data"
    result = invoke("-n", "300", "--seed", "2", "--params", str(params), "--out", str(out))
    assert result.exit_code == 0, result.output
    chosen = SyntheticParams(
        refund_rate=0.2, channels={"web": 3.0, "phone": 1.0}, r=1.0, currency="USD"
    )
    direct = generate(300, seed=2, params=chosen)
    tx = read_transactions(out / "transactions.parquet")
    assert tx.equals(direct.transactions)
    assert set(tx["channel"].unique()) == {"web", "phone"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["params"]["channels"] == {"web": 3.0, "phone": 1.0}
    assert manifest["params"]["refund_rate"] == 0.2
    # the manifest's parameters, written back as TOML, are read as the same parameters
    assert cmd.params_as_dict(cmd.read_params(params)) == manifest["params"]


def test_non_empty_out_is_refused_and_force_replaces_the_data_set(tmp_path: Path) -> None:
    out = tmp_path / "data"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    refused = invoke("-n", "100", "--out", str(out))
    assert refused.exit_code == 2
    assert "not empty" in flat(refused.output)
    assert "--force" in flat(refused.output)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]

    first = invoke("-n", "100", "--seed", "1", "--format", "csv", "--out", str(out), "--force")
    assert first.exit_code == 0, first.output
    assert (out / "feedback.csv").is_file()

    second = invoke(
        "-n", "150", "--seed", "2", "--no-feedback", "--out", str(out), "--force", "--json"
    )
    assert second.exit_code == 0, second.output
    names = sorted(p.name for p in out.iterdir())
    # the earlier CSV data set is gone (its feedback too), the unrelated file stays
    assert names == sorted(
        [
            "customers.parquet",
            "interactions.parquet",
            "manifest.json",
            "notes.txt",
            "transactions.parquet",
            "truth.parquet",
        ]
    )
    assert (out / "notes.txt").read_text() == "keep me"
    assert pl.read_parquet(out / "customers.parquet").height == 150
    assert not leftovers(tmp_path)


def test_a_failed_write_leaves_no_partial_data_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "data"
    assert invoke("-n", "100", "--seed", "5", "--out", str(out)).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    written = 0
    real = cmd._write_frame

    def flaky(frame: pl.DataFrame, path: Path, fmt: cmd.Format) -> None:
        nonlocal written
        written += 1
        if written == 3:
            raise OSError(28, "No space left on device")
        real(frame, path, fmt)

    monkeypatch.setattr(cmd, "_write_frame", flaky)
    fresh = invoke("-n", "100", "--out", str(tmp_path / "fresh"))
    assert fresh.exit_code == 2
    assert "No space left on device" in flat(fresh.output)
    assert "nothing was written" in flat(fresh.output)
    assert not (tmp_path / "fresh").exists()

    written = 0
    forced = invoke("-n", "100", "--seed", "6", "--out", str(out), "--force")
    assert forced.exit_code == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the old set is intact
    assert not leftovers(tmp_path)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--customers", "-5"], "--customers"),
        (["--customers", "0"], "--customers"),
        (["--seed", "-1"], "--seed"),
        (["--start", "2024-13-01"], "--start='2024-13-01': not a date or time"),
        (["--start", "2024-01-01T08:00:00"], "a time needs a UTC offset"),
        (["--end", "soon"], "--end='soon': not a date or time"),
        (
            ["--start", "2024-06-01", "--end", "2024-01-01"],
            "--end=2024-01-01: must be at least one day after --start=2024-06-01",
        ),
        (
            ["--start", "2024-01-01T00:00:00Z", "--end", "2024-01-01T12:00:00Z"],
            "must be at least one day after",
        ),
        (["--start", "2025-06-01"], "--end=2025-01-01 (the default): must be at least one day"),
        (["--format", "xlsx"], "--format"),
        (["--params", "missing.toml"], "--params 'missing.toml': no such file"),
    ],
)
def test_bad_options_are_refused(argv: list[str], message: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke(*argv, "--out", str(out))
    assert result.exit_code == 2
    assert message in flat(result.output)
    assert "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            "refund_rat = 0.1",
            "refund_rat = 0.1: is not a SyntheticParams field; did you mean 'refund_rate'?",
        ),
        ("refund_rate = 2", "refund_rate = 2.0: must be a probability between 0 and 1"),
        ('r = "fast"', "r = 'fast': must be a number"),
        ("r = true", "r = True: must be a number"),
        ("channels = ['web']", "channels = ['web']: must be a table of name = weight"),
        ("channels = {}", "channels = (): must name at least one choice"),
        ("hour_weights = [1, 2]", "hour_weights = (1.0, 2.0): must have exactly 24 weights"),
        ("comments_passive = [1]", "comments_passive = [1]: must be an array of strings"),
        ("currency = 'EURO'", "currency = 'EURO': must be a three-letter ISO 4217 code"),
        ("r = ", "is not valid TOML"),
    ],
)
def test_bad_params_files_are_refused(toml: str, message: str, tmp_path: Path) -> None:
    params = tmp_path / "params.toml"
    params.write_text(toml + "\n")
    out = tmp_path / "out"
    result = invoke("--params", str(params), "--out", str(out))
    assert result.exit_code == 2
    text = flat(result.output)
    assert f"{params}:" in text
    assert message in text
    assert not out.exists()


def test_the_command_is_listed_and_in_the_cli_reference() -> None:
    result = runner.invoke(build_app(), ["--help"], env=WIDE)
    assert result.exit_code == 0
    assert "synthetic" in result.output
    assert "synthetic" in click_command().commands
    text = flat(invoke("--help").output)
    for option in ("--customers", "--seed", "--start", "--end", "--format", "--force", "--json"):
        assert option in text


def test_the_how_to_parameters_file_is_valid(tmp_path: Path) -> None:
    page = Path(__file__).resolve().parent.parent / "docs" / "howto" / "synthetic-data-cli.md"
    block = page.read_text().split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "busy.toml"
    path.write_text(block)
    params = cmd.read_params(path)
    assert params == SyntheticParams(
        r=1.0, alpha=20.0, refund_rate=0.1, channels={"web": 3.0, "phone": 1.0}
    )
