"""The engine commands: ingest (validation, resume, rejections), balance, statement, redeem,
expire, and clear errors for bad programs, events and stores."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sql_helpers import (
    PROGRAM_TOML,
    fresh_schema,
    ledger_snapshot,
    make_events,
    pg_url,
    write_events,
)
from typer.testing import CliRunner

from loyaltykit.cli import build_app
from loyaltykit.engine.stores import SQLiteStore, open_store
from loyaltykit.plugins import PluginHost

runner = CliRunner()


def invoke(*args: str, input: str | None = None) -> Any:
    """Run ``loyaltykit ARGS`` in-process."""
    return runner.invoke(build_app(), list(args), input=input)


def err(result: Any) -> str:
    """The result's stderr with the console's line wrapping undone."""
    return " ".join(result.stderr.split())


@pytest.fixture
def files(tmp_path: Path, plugin_host: PluginHost) -> dict[str, Any]:
    """A program file, an events file (8 members, 120 events) and a ledger path."""
    program = tmp_path / "program.toml"
    program.write_text(PROGRAM_TOML)
    events = make_events(8, 120, seed=5)
    path = tmp_path / "events.jsonl"
    write_events(path, events)
    return {
        "program": str(program),
        "events": str(path),
        "list": events,
        "ids": [e.event_id for e in events],
        "db": str(tmp_path / "ledger.db"),
        "tmp": tmp_path,
    }


def snapshot(db: str, ids: list[str]) -> dict[str, Any]:
    store = SQLiteStore(db)
    try:
        return ledger_snapshot(store, ids)
    finally:
        store.close()


# --------------------------------------------------------------------------------------------
# ingest
# --------------------------------------------------------------------------------------------


def test_ingest_then_rerun_changes_nothing(files: dict[str, Any]) -> None:
    first = invoke("ingest", files["program"], files["events"], "--db", files["db"], "--json")
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    n = len(files["list"])
    assert (summary["events"], summary["applied"], summary["already_recorded"]) == (n, n, 0)
    assert summary["rejected"] == 0
    before = snapshot(files["db"], files["ids"])
    assert all(record is not None for record in before["events"].values())
    again = invoke("ingest", files["program"], files["events"], "--db", files["db"], "--json")
    assert again.exit_code == 0, again.output
    summary = json.loads(again.stdout)
    assert (summary["applied"], summary["already_recorded"]) == (0, n)
    assert snapshot(files["db"], files["ids"]) == before


def test_ingest_resumes_where_it_stopped(files: dict[str, Any]) -> None:
    whole = invoke(
        "ingest", files["program"], files["events"], "--db", files["db"], "--no-progress"
    )
    assert whole.exit_code == 0, whole.output
    expected = snapshot(files["db"], files["ids"])

    resumed_db = str(files["tmp"] / "resumed.db")
    head = files["tmp"] / "head.jsonl"
    write_events(head, files["list"][:50])
    part = invoke("ingest", files["program"], str(head), "--db", resumed_db, "--json")
    assert json.loads(part.stdout)["applied"] == 50
    rest = invoke("ingest", files["program"], files["events"], "--db", resumed_db, "--json")
    summary = json.loads(rest.stdout)
    assert (summary["applied"], summary["already_recorded"]) == (len(files["list"]) - 50, 50)
    assert snapshot(resumed_db, files["ids"]) == expected


def test_ingest_reads_stdin_and_keeps_stdout_json(files: dict[str, Any]) -> None:
    text = Path(files["events"]).read_text()
    result = invoke("ingest", files["program"], "-", "--db", files["db"], "--json", input=text)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["applied"] == len(files["list"])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "line 41.*not valid JSON"),
        ('{"type": "purchase"}', "line 41.*'event_id'.*is required"),
        (
            '{"type": "gift", "event_id": "x", "member_id": "m000", '
            '"occurred_at": "2025-01-01T00:00:00+00:00"}',
            "line 41.*'type'.*must be one of",
        ),
        (
            '{"type": "purchase", "event_id": "x", "member_id": "m000", "transaction_id": "t", '
            '"occurred_at": "2025-01-01T00:00:00+00:00", "amount": "-3"}',
            "line 41.*'amount'.*>= 0",
        ),
        (
            '{"type": "purchase", "event_id": "x", "member_id": "m000", "transaction_id": "t", '
            '"occurred_at": "2025-01-01T00:00:00", "amount": "1.50"}',
            "line 41.*UTC offset",
        ),
    ],
)
def test_malformed_event_stops_before_anything_is_written(
    files: dict[str, Any], line: str, message: str
) -> None:
    lines = Path(files["events"]).read_text().splitlines()
    lines.insert(40, line)
    bad = files["tmp"] / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    result = invoke("ingest", files["program"], str(bad), "--db", files["db"])
    assert result.exit_code == 2
    assert "nothing was written" in err(result)
    import re

    assert re.search(message, err(result)), result.stderr
    assert not Path(files["db"]).exists()


def test_bad_file_leaves_an_existing_ledger_unchanged(files: dict[str, Any]) -> None:
    head = files["tmp"] / "head.jsonl"
    write_events(head, files["list"][:60])
    assert invoke("ingest", files["program"], str(head), "--db", files["db"]).exit_code == 0
    before = snapshot(files["db"], files["ids"])
    lines = Path(files["events"]).read_text().splitlines()
    lines[100] = lines[100].replace('"member_id"', '"member"')
    bad = files["tmp"] / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    result = invoke("ingest", files["program"], str(bad), "--db", files["db"])
    assert result.exit_code == 2
    assert "line 101" in err(result)
    assert snapshot(files["db"], files["ids"]) == before


def test_same_event_id_with_two_payloads_is_refused_up_front(files: dict[str, Any]) -> None:
    events = files["list"]
    clash = json.loads(events[30].to_json())
    clash["occurred_at"] = "2026-06-01T00:00:00+00:00"
    path = files["tmp"] / "clash.jsonl"
    write_events(path, events)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(clash) + "\n")
        fh.write(events[31].to_json() + "\n")  # an exact re-delivery is fine
    result = invoke("ingest", files["program"], str(path), "--db", files["db"])
    assert result.exit_code == 2
    assert "appears twice with different payloads" in err(result)
    assert not Path(files["db"]).exists()


def test_rejected_event_stops_or_is_skipped(files: dict[str, Any]) -> None:
    from loyaltykit.engine import Redeem

    events = list(files["list"])
    greedy = Redeem(
        event_id="greedy",
        member_id="m001",
        occurred_at=events[60].occurred_at,
        points=10**9,
    )
    events.insert(61, greedy)
    path = files["tmp"] / "greedy.jsonl"
    write_events(path, events)
    ids = [e.event_id for e in events]

    stop = invoke("ingest", files["program"], str(path), "--db", files["db"], "--json")
    assert stop.exit_code == 2
    summary = json.loads(stop.stdout)
    assert summary["stopped_at"]["event_id"] == "greedy"
    assert summary["applied"] == 61
    message = err(stop)
    assert "stopped at event #62 ('greedy')" in message
    assert "run the same command again to resume" in message
    store = SQLiteStore(files["db"])
    assert store.get_event(ids[60]) is not None
    assert store.get_event("greedy") is None
    assert store.get_event(ids[62]) is None
    store.close()

    skip = invoke(
        "ingest", files["program"], str(path), "--db", files["db"], "--json", "--on-error", "skip"
    )
    assert skip.exit_code == 1
    summary = json.loads(skip.stdout)
    assert summary["rejected"] == 1
    assert summary["rejections"][0]["event_id"] == "greedy"
    assert "needed" in summary["rejections"][0]["error"]
    assert (summary["applied"], summary["already_recorded"]) == (len(events) - 62, 61)


def test_bad_program_is_refused_before_the_store_is_touched(files: dict[str, Any]) -> None:
    bad = files["tmp"] / "bad.toml"
    bad.write_text(PROGRAM_TOML.replace("points_per_unit = 1", 'points_per_unit = "lots"'))
    result = invoke("ingest", str(bad), files["events"], "--db", files["db"])
    assert result.exit_code == 2
    assert "earning[0].points_per_unit" in err(result)
    assert not Path(files["db"]).exists()
    missing = invoke(
        "ingest", str(files["tmp"] / "nope.toml"), files["events"], "--db", files["db"]
    )
    assert missing.exit_code == 2
    assert "cannot be read" in err(missing)


def test_bad_options_are_named(files: dict[str, Any]) -> None:
    result = invoke(
        "ingest", files["program"], files["events"], "--db", files["db"], "--on-error", "maybe"
    )
    assert result.exit_code == 2
    assert "--on-error='maybe'" in err(result)
    missing = invoke(
        "ingest", files["program"], str(files["tmp"] / "none.jsonl"), "--db", files["db"]
    )
    assert missing.exit_code == 2
    assert "no such file" in err(missing)
    assert not Path(files["db"]).exists()


@pytest.mark.parametrize(
    ("db", "message"),
    [
        ("mysql://root:s3cret@db/shop", "unknown scheme 'mysql'"),
        ("postgresql+psycopg://lk:s3cret@127.0.0.1:1/x", "cannot connect"),
        ("/no/such/folder/ledger.db", "does not exist"),
    ],
)
def test_bad_stores_are_named_without_passwords(
    files: dict[str, Any], db: str, message: str
) -> None:
    result = invoke("ingest", files["program"], files["events"], "--db", db)
    assert result.exit_code == 2
    text = err(result)
    assert message in text
    assert "s3cret" not in result.output


def test_db_from_environment(files: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOYALTYKIT_DB", files["db"])
    result = invoke("ingest", files["program"], files["events"], "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["db"] == files["db"]


# --------------------------------------------------------------------------------------------
# balance, statement, redeem, expire
# --------------------------------------------------------------------------------------------


@pytest.fixture
def ledger(files: dict[str, Any]) -> dict[str, Any]:
    result = invoke("ingest", files["program"], files["events"], "--db", files["db"], "--json")
    assert result.exit_code == 0, result.output
    return files


def test_balance_and_statement_agree(ledger: dict[str, Any]) -> None:
    as_of = "2025-03-01T00:00:00+00:00"
    balance = invoke("balance", "m002", "--db", ledger["db"], "--as-of", as_of, "--json")
    assert balance.exit_code == 0, balance.output
    figures = json.loads(balance.stdout)
    statement = invoke("statement", "m002", "--db", ledger["db"], "--end", as_of, "--json")
    assert statement.exit_code == 0, statement.output
    lines = json.loads(statement.stdout)
    assert figures["total"] == lines["closing_balance"] == sum(x["points"] for x in lines["lines"])
    assert (
        figures["total"]
        == figures["available"] + figures["pending"] + figures["overdue"] - figures["debt"]
    )
    assert lines["tier_history"][0]["to_tier"] == "green"
    text = invoke("balance", "m002", "--db", ledger["db"], "--as-of", as_of)
    assert text.exit_code == 0
    assert str(figures["available"]) in text.stdout
    table = invoke("statement", "m002", "--db", ledger["db"])
    assert table.exit_code == 0
    assert "tier history" in table.stdout


def test_read_commands_never_create_a_ledger(ledger: dict[str, Any]) -> None:
    missing = str(ledger["tmp"] / "typo.db")
    for command in ("balance", "statement"):
        result = invoke(command, "m001", "--db", missing)
        assert result.exit_code == 2
        assert "no such ledger file" in err(result)
    assert not Path(missing).exists()
    unknown = invoke("balance", "nobody", "--db", ledger["db"])
    assert unknown.exit_code == 2
    assert "'nobody' is not enrolled" in err(unknown)
    bad_time = invoke("balance", "m001", "--db", ledger["db"], "--as-of", "2025-13-01")
    assert bad_time.exit_code == 2
    assert "--as-of='2025-13-01'" in err(bad_time)
    naive = invoke("statement", "m001", "--db", ledger["db"], "--start", "2025-01-01T00:00:00")
    assert naive.exit_code == 2
    assert "needs a UTC offset" in err(naive)


def test_redeem_is_idempotent_and_checks_stock(ledger: dict[str, Any]) -> None:
    at = "2025-03-01T00:00:00+00:00"
    base = ("redeem", ledger["program"], "m003", "--db", ledger["db"], "--at", at, "--json")
    before = json.loads(
        invoke("balance", "m003", "--db", ledger["db"], "--as-of", at, "--json").stdout
    )
    first = invoke(*base, "--reward", "coffee", "--event-id", "cli-r1")
    assert first.exit_code == 0, first.output
    outcome = json.loads(first.stdout)
    assert outcome["points"] == -100
    assert outcome["replayed"] is False
    assert outcome["balance"]["available"] == before["available"] - 100
    again = invoke(*base, "--reward", "coffee", "--event-id", "cli-r1")
    assert json.loads(again.stdout)["replayed"] is True
    assert json.loads(again.stdout)["balance"]["available"] == before["available"] - 100
    clash = invoke(*base, "--points", "5", "--event-id", "cli-r1")
    assert clash.exit_code == 2
    assert "different payload" in err(clash)
    both = invoke(*base, "--points", "5", "--reward", "coffee", "--event-id", "cli-r2")
    assert both.exit_code == 2
    assert "exactly one of --reward ID or --points N" in err(both)
    too_much = invoke(*base, "--points", "999999", "--event-id", "cli-r3")
    assert too_much.exit_code == 2
    assert "needed" in err(too_much)
    text = invoke(
        "redeem", ledger["program"], "m003", "--db", ledger["db"], "--at", at, "--points", "1",
        "--event-id", "cli-r4",
    )  # fmt: skip
    assert text.exit_code == 0, text.output
    assert "redeemed 1 points" in text.stdout


def test_expire_runs_once(ledger: dict[str, Any]) -> None:
    late = "2027-01-01T00:00:00+00:00"
    first = invoke("expire", ledger["program"], "--db", ledger["db"], "--as-of", late, "--json")
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert report["members"] == 8
    assert report["points"] > 0
    again = invoke("expire", ledger["program"], "--db", ledger["db"], "--as-of", late, "--json")
    assert json.loads(again.stdout)["points"] == 0
    balance = invoke("balance", "m000", "--db", ledger["db"], "--as-of", late, "--json")
    figures = json.loads(balance.stdout)
    assert figures["available"] == 0
    assert figures["overdue"] == 0
    text = invoke("expire", ledger["program"], "--db", ledger["db"])
    assert text.exit_code == 0
    assert "expired 0 points" in text.stdout


# --------------------------------------------------------------------------------------------
# PostgreSQL through the CLI
# --------------------------------------------------------------------------------------------


@pytest.fixture
def pg_db() -> Iterator[str]:
    """A PostgreSQL URL whose search_path points at a fresh schema."""
    import sqlalchemy as sa

    with fresh_schema() as schema:
        url = pg_url()
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
        sep = "&" if "?" in url else "?"
        yield f"{url}{sep}options=-csearch_path%3D{schema}"


@pytest.mark.postgres
def test_ingest_into_postgresql_matches_sqlite(files: dict[str, Any], pg_db: str) -> None:
    on_sqlite = invoke("ingest", files["program"], files["events"], "--db", files["db"], "--json")
    assert on_sqlite.exit_code == 0, on_sqlite.output
    on_pg = invoke("ingest", files["program"], files["events"], "--db", pg_db, "--json")
    assert on_pg.exit_code == 0, on_pg.output
    assert json.loads(on_pg.stdout)["applied"] == len(files["list"])
    sqlite_store = SQLiteStore(files["db"])
    pg_store = open_store(pg_db, migrate=False)
    try:
        for member in sqlite_store.member_ids():
            assert pg_store.entries(member) == sqlite_store.entries(member)
            assert pg_store.batches(member) == sqlite_store.batches(member)
            assert pg_store.get_member(member) == sqlite_store.get_member(member)
    finally:
        sqlite_store.close()
        pg_store.close()
    balance = invoke("balance", "m001", "--db", pg_db, "--json", "--as-of", "2025-03-01T00:00:00Z")
    assert balance.exit_code == 0, balance.output
