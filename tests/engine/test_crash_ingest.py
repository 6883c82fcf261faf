"""Crash safety: SIGKILL ``loyaltykit ingest`` at random points, resume, and compare the ledger
with an uninterrupted run, on SQLite and on PostgreSQL.

Each kill lands while the process is writing: the test picks a random number of events (up to
half of those still missing) and kills the process as soon as that many more are recorded. Entry and batch ids are derived
from event ids, so the two ledgers must be equal field by field (only the wall-clock
``recorded_at`` of event records is left out of the comparison).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
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

from loyaltykit.engine import Engine, program_from_toml
from loyaltykit.engine.stores import open_store
from loyaltykit.plugins import DISABLE_AUTOLOAD_ENV, PluginHost

KILLS = 3
STARTUP_TIMEOUT_S = 120.0


def _count_sqlite(path: Path) -> Callable[[], int]:
    def count() -> int:
        if not path.exists():
            return 0
        # A read-write connection, closed each time: once the killed process is gone, opening
        # the file alone runs WAL recovery, so a commit whose frames reached the WAL just before
        # the kill (but not yet the shared index) is counted, as the resumed ingest will see it.
        try:
            with contextlib.closing(sqlite3.connect(path, timeout=5)) as conn:
                return int(conn.execute("SELECT COUNT(*) FROM loyaltykit_events").fetchone()[0])
        except sqlite3.OperationalError:  # no schema yet
            return 0

    return count


def _count_pg(url: str, schema: str) -> Callable[[], int]:
    import sqlalchemy as sa

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))

    def count() -> int:
        with engine.connect() as conn:
            found = conn.execute(
                sa.text("SELECT to_regclass(:t)"), {"t": f'"{schema}".loyaltykit_events'}
            ).scalar()
            if found is None:
                return 0
            return int(
                conn.execute(
                    sa.text(f'SELECT COUNT(*) FROM "{schema}".loyaltykit_events')
                ).scalar_one()
            )

    return count


def _ingest(program: Path, events: Path, db: str) -> subprocess.Popen[str]:
    env = {**os.environ, DISABLE_AUTOLOAD_ENV: "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "loyaltykit", "ingest", str(program), str(events), "--db", db, "--json", "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )  # fmt: skip


def _crash_and_resume(
    program: Path, events: Path, db: str, count: Callable[[], int], total: int, seed: int
) -> list[int]:
    """Kill ``KILLS`` ingest runs mid-write, then finish; returns the recorded counts at each
    kill."""
    rng = random.Random(seed)
    at_kill: list[int] = []
    for _ in range(KILLS):
        before = count()
        if before >= total:
            break
        # kill once a random number of further events (up to half of what is left) is in
        target = before + rng.randint(1, max(1, (total - before) // 2))
        proc = _ingest(program, events, db)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while count() < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        at_kill.append(count())
    final = _ingest(program, events, db)
    out, errors = final.communicate(timeout=300)
    assert final.returncode == 0, errors
    summary = json.loads(out)
    assert summary["applied"] + summary["already_recorded"] == total
    if at_kill:
        assert summary["already_recorded"] == at_kill[-1]
    return at_kill


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Any]:
    program = tmp_path / "program.toml"
    program.write_text(PROGRAM_TOML)
    events = make_events(10, 300, seed=11)
    path = tmp_path / "events.jsonl"
    write_events(path, events)
    return {"program": program, "path": path, "events": events, "tmp": tmp_path}


def _reference(inputs: dict[str, Any]) -> dict[str, Any]:
    """The ledger of one uninterrupted in-process run."""
    host = PluginHost(load_entrypoints=False, blocked=frozenset())
    store = open_store(inputs["tmp"] / "reference.db")
    try:
        engine = Engine(program_from_toml(PROGRAM_TOML, host=host), store, host=host)
        for event in inputs["events"]:
            engine.process(event)
        return ledger_snapshot(store, [e.event_id for e in inputs["events"]])
    finally:
        store.close()


@pytest.fixture
def seed() -> int:
    return int.from_bytes(os.urandom(4), "big")


def test_sigkilled_sqlite_ingest_resumes_to_the_same_ledger(
    inputs: dict[str, Any], seed: int
) -> None:
    db = inputs["tmp"] / "crashed.db"
    total = len(inputs["events"])
    kills = _crash_and_resume(
        inputs["program"], inputs["path"], str(db), _count_sqlite(db), total, seed
    )
    assert any(0 < k < total for k in kills), f"no kill landed mid-ingest (seed {seed}): {kills}"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store = open_store(db, migrate=False)
    try:
        got = ledger_snapshot(store, [e.event_id for e in inputs["events"]])
    finally:
        store.close()
    assert got == _reference(inputs), f"ledgers differ (seed {seed}, kills at {kills})"


@pytest.fixture
def pg_target() -> Iterator[tuple[str, str]]:
    import sqlalchemy as sa

    with fresh_schema() as schema:
        url = pg_url()
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
        sep = "&" if "?" in url else "?"
        yield f"{url}{sep}options=-csearch_path%3D{schema}", schema


@pytest.mark.postgres
def test_sigkilled_postgres_ingest_resumes_to_the_same_ledger(
    inputs: dict[str, Any], pg_target: tuple[str, str], seed: int
) -> None:
    url, schema = pg_target
    total = len(inputs["events"])
    count = _count_pg(pg_url(), schema)
    kills = _crash_and_resume(inputs["program"], inputs["path"], url, count, total, seed)
    assert any(0 < k < total for k in kills), f"no kill landed mid-ingest (seed {seed}): {kills}"
    store = open_store(url, migrate=False)
    try:
        got = ledger_snapshot(store, [e.event_id for e in inputs["events"]])
    finally:
        store.close()
    want = _reference(inputs)
    # PostgreSQL returns times in UTC and SQLite too: entries, batches and states compare equal;
    # event outcomes are JSON written by the same engine code.
    assert got == want, f"ledgers differ (seed {seed}, kills at {kills})"
