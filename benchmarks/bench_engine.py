"""Program engine throughput with one durable commit per event, against a bare loop on the same
kind of database.

The engine handles every event in its own transaction (lock the member, expire what is due, apply
the event, record the event id and its outcome, commit). Its floor is the cheapest durable loop
that commits one row per event to the same kind of database with the same durability settings:

* **SQLite**: a fresh WAL file with the same ``synchronous`` setting (``FULL`` by default: every
  commit is fsynced); per event ``BEGIN IMMEDIATE; INSERT one row (id, JSON payload); COMMIT``.
  The engine runs on :class:`~loyaltykit.engine.stores.SQLiteStore` on another fresh file in the
  same folder.
* **PostgreSQL** (with ``--postgres URL`` or ``LOYALTYKIT_TEST_POSTGRES_URL``): a bare psycopg 3
  connection doing ``BEGIN; INSERT one row; COMMIT`` per event, and, as a stricter floor, a
  single autocommit ``INSERT`` per event. The engine runs on
  :class:`~loyaltykit.engine.stores.PostgresStore` (SQLAlchemy Core + psycopg 3), each run in a
  fresh schema.

The engine runs the events through :meth:`Engine.process_many` (on SQLite each event's fsync,
on PostgreSQL each event's ``COMMIT``, overlapping the next event's work; every event still
commits on its own) and, as a second variant, through a loop of :meth:`Engine.process` (each
event durable before the next one starts).

The events are the same for every variant: enrolments, then purchases, partial refunds,
redemptions and adjustments of a few hundred members (seeded; every event is valid, so the engine
never rejects one). Rounds alternate the order of floor and engine, and the figure that matters
is the ratio **engine events per second / floor events per second** (goal: at least 0.5), taken
per round and then the median: the disks of shared machines are noisy, ratios less so.

Run::

    .venv/bin/python benchmarks/bench_engine.py --events 1000 --repeat 3
    .venv/bin/python benchmarks/bench_engine.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

from _common import Measurement, Report
from loyaltykit.engine import (
    Adjust,
    Engine,
    Enroll,
    Event,
    Purchase,
    Redeem,
    Refund,
    program_from_toml,
)
from loyaltykit.engine.stores import SQLiteStore
from loyaltykit.plugins import PluginHost, use_host

PROGRAM = """
[program]
name = "Benchmark Club"
currency = "USD"
negative_balance = "debt"

[expiry]
kind = "days_after_earn"
days = 365

[[earning]]
name = "base"
policy = "per_unit"
points_per_unit = 1

[[earning]]
name = "welcome"
policy = "welcome"
points = 50

[tiers]
rule = "spend"
window = "rolling"
window_days = 365

[[tiers.levels]]
name = "green"
threshold = 0

[[tiers.levels]]
name = "gold"
threshold = 2000

[[rewards]]
id = "coffee"
name = "Free coffee"
cost = 100
"""


def make_events(members: int, events: int, seed: int) -> list[Event]:
    """``members`` enrolments, then ``events`` purchases, refunds, redemptions and adjustments.

    A conservative model of each member's points (a lower bound) keeps every redemption and
    negative adjustment covered, so the engine accepts every event.
    """
    rng = random.Random(seed)
    t0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    out: list[Event] = []
    low: dict[str, int] = {}
    bought: dict[str, list[tuple[str, Decimal, Decimal]]] = {}
    for i in range(members):
        mid = f"m{i:05d}"
        out.append(Enroll(event_id=f"enroll-{mid}", member_id=mid, occurred_at=t0))
        low[mid] = 50
        bought[mid] = []
    for k in range(events):
        at = t0 + dt.timedelta(minutes=10 * (k + 1))
        mid = f"m{rng.randrange(members):05d}"
        roll = rng.random()
        eid = f"e{k:07d}"
        if roll < 0.10 and bought[mid]:
            i = rng.randrange(len(bought[mid]))
            tx, amount, left = bought[mid][i]
            part = min(left, (amount * rng.choice((1, 2, 3)) / 4).quantize(Decimal("0.01")))
            if part <= 0:
                continue
            out.append(
                Refund(
                    event_id=eid,
                    member_id=mid,
                    occurred_at=at,
                    transaction_id=f"r{k}",
                    refund_of=tx,
                    amount=part,
                )
            )
            bought[mid][i] = (tx, amount, left - part)
            low[mid] -= int(part) + 2
        elif roll < 0.25 and low[mid] >= 30:
            points = rng.randrange(1, low[mid] // 3)
            out.append(Redeem(event_id=eid, member_id=mid, occurred_at=at, points=points))
            low[mid] -= points
        elif roll < 0.30:
            sign = -1 if low[mid] >= 30 and rng.random() < 0.5 else 1
            points = sign * rng.randrange(1, 10)
            out.append(
                Adjust(event_id=eid, member_id=mid, occurred_at=at, points=points, reason="service")
            )
            low[mid] += min(points, 0)
        else:
            amount = Decimal(rng.randrange(100, 20000)) / 100
            tx = f"t{k}"
            out.append(
                Purchase(
                    event_id=eid, member_id=mid, occurred_at=at, transaction_id=tx, amount=amount
                )
            )
            bought[mid].append((tx, amount, amount))
            low[mid] += int(amount) - 1
    return out


# --------------------------------------------------------------------------------------------
# SQLite
# --------------------------------------------------------------------------------------------


def sqlite_bare(folder: Path, payloads: list[tuple[str, str]], synchronous: str) -> float:
    """Seconds for the bare loop: one ``BEGIN IMMEDIATE; INSERT; COMMIT`` per event."""
    path = folder / f"bare-{uuid.uuid4().hex}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
    conn.execute("CREATE TABLE events (event_id TEXT PRIMARY KEY, payload TEXT NOT NULL)")
    start = time.perf_counter()
    for event_id, payload in payloads:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO events VALUES (?, ?)", (event_id, payload))
        conn.execute("COMMIT")
    seconds = time.perf_counter() - start
    assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == len(payloads)
    conn.close()
    return seconds


def run_engine(store: Any, events: list[Event], host: PluginHost, *, loop: bool = False) -> float:
    """Seconds for the engine to process ``events`` on ``store`` (migrated before timing):
    with :meth:`Engine.process_many` (each event's fsync overlapping the next event's work on
    SQLite), or with ``loop`` a loop of :meth:`Engine.process` (each event's fsync before the
    next event starts)."""
    engine = Engine(program_from_toml(PROGRAM, host=host), store, host=host)
    start = time.perf_counter()
    if loop:
        for event in events:
            engine.process(event)
    else:
        engine.process_many(events)
    seconds = time.perf_counter() - start
    first = events[0].member_id
    assert engine.balance(first, events[-1].occurred_at).total == sum(
        e.points for e in store.entries(first)
    )
    return seconds


def sqlite_engine(
    folder: Path, events: list[Event], synchronous: str, host: PluginHost, *, loop: bool = False
) -> float:
    """Seconds for the engine on a fresh SQLite file (see :func:`run_engine`)."""
    store = SQLiteStore(folder / f"engine-{uuid.uuid4().hex}.db", synchronous=synchronous)  # type: ignore[arg-type]
    try:
        return run_engine(store, events, host, loop=loop)
    finally:
        store.close()


Statement = tuple[bool, str, Any]
"""One recorded call: (executemany?, SQL, parameters)."""


def record_sqlite_statements(
    folder: Path, events: list[Event], synchronous: str, host: PluginHost
) -> tuple[list[Statement], list[Statement]]:
    """Every statement the engine sends to SQLite for ``events``: (setup, per-event work).

    The setup is the connection's settings and the migration; the work is everything from the
    first event on (``BEGIN IMMEDIATE`` ... ``COMMIT`` per event).
    """
    log: list[Statement] = []

    class Recorder(sqlite3.Connection):
        def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
            log.append((False, sql, parameters))
            return super().execute(sql, parameters)

        def executemany(self, sql: str, rows: Any, /) -> sqlite3.Cursor:
            rows = list(rows)
            log.append((True, sql, rows))
            return super().executemany(sql, rows)

    real_connect = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        return real_connect(*args, factory=Recorder, **kwargs)

    with mock.patch.object(sqlite3, "connect", connect):
        store = SQLiteStore(folder / f"record-{uuid.uuid4().hex}.db", synchronous=synchronous)  # type: ignore[arg-type]
        try:
            engine = Engine(program_from_toml(PROGRAM, host=host), store, host=host)
            mark = len(log)
            for event in events:
                engine.process(event)
        finally:
            store.close()
    return log[:mark], log[mark:]


def sqlite_replay(folder: Path, setup: list[Statement], work: list[Statement]) -> float:
    """Seconds to send the engine's recorded per-event statements to a fresh file, without the
    engine: what the storage costs alone (same rows, same transactions, same fsyncs)."""
    conn = sqlite3.connect(folder / f"replay-{uuid.uuid4().hex}.db", isolation_level=None)
    try:
        for many, sql, params in setup:
            (conn.executemany if many else conn.execute)(sql, params)
        start = time.perf_counter()
        for many, sql, params in work:
            (conn.executemany if many else conn.execute)(sql, params)
        return time.perf_counter() - start
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------


def _libpq_url(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"postgresql://{rest}" if scheme.startswith("postgres") else url


def pg_bare(url: str, payloads: list[tuple[str, str]], *, autocommit: bool) -> float:
    """Seconds for a bare psycopg loop, one committed row per event, in a fresh schema."""
    import psycopg

    schema = f"lk_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_libpq_url(url), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(
            f'CREATE TABLE "{schema}".events (event_id TEXT PRIMARY KEY, payload TEXT NOT NULL)'
        )
        try:
            conn.autocommit = autocommit
            sql = f'INSERT INTO "{schema}".events VALUES (%s, %s)'
            start = time.perf_counter()
            if autocommit:
                for event_id, payload in payloads:
                    conn.execute(sql, (event_id, payload))
            else:
                for event_id, payload in payloads:
                    conn.execute(sql, (event_id, payload))
                    conn.commit()
            seconds = time.perf_counter() - start
        finally:
            conn.autocommit = True
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return seconds


def pg_engine(url: str, events: list[Event], host: PluginHost, *, loop: bool = False) -> float:
    """Seconds for the engine on :class:`PostgresStore`, in a fresh schema (see
    :func:`run_engine`)."""
    import psycopg

    from loyaltykit.engine.stores.postgres import PostgresStore

    schema = f"lk_bench_{uuid.uuid4().hex[:10]}"
    store = PostgresStore(url, schema=schema)
    try:
        return run_engine(store, events, host, loop=loop)
    finally:
        store.close()
        with psycopg.connect(_libpq_url(url), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------


def paired(
    rounds: int,
    floor: Callable[[], float],
    engine: Callable[[], float],
    *more: Callable[[], float],
) -> tuple[list[float], ...]:
    """Run the floor and each engine variant once per round, rotating their order from round
    to round; return their seconds (floor first)."""
    runs = (floor, engine, *more)
    times: list[list[float]] = [[] for _ in runs]
    for r in range(rounds):
        for k in range(len(runs)):
            i = (k + r) % len(runs)
            times[i].append(runs[i]())
        shown = ", ".join(f"{t[-1]:.2f} s" for t in times[1:])
        print(f"  round {r + 1}: floor {times[0][-1]:.2f} s, engine {shown}", flush=True)
    return tuple(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--events", type=int, default=1000, help="events after enrolments")
    parser.add_argument("--members", type=int, default=200, help="members (one enrolment each)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the events")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (floor + engine each)")
    parser.add_argument(
        "--synchronous",
        choices=("full", "normal"),
        default="full",
        help="SQLite durability for both sides (full: fsync every commit)",
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("LOYALTYKIT_TEST_POSTGRES_URL"),
        help="PostgreSQL URL (default: $LOYALTYKIT_TEST_POSTGRES_URL; unset: SQLite only)",
    )
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite part")
    parser.add_argument(
        "--no-breakdown",
        action="store_true",
        help="skip replaying the engine's SQLite statements without the engine",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write results to this file")
    args = parser.parse_args()

    events = make_events(args.members, args.events, args.seed)
    payloads = [(e.event_id, json.dumps(e.payload(), sort_keys=True)) for e in events]
    n = len(events)
    host = PluginHost(load_entrypoints=False, blocked=frozenset())
    report = Report(
        "engine: events/s with a durable commit per event",
        args,
        data={"events": n, "members": args.members, "sqlite synchronous": args.synchronous},
    )
    summary: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="lk-bench-engine-"))
    try:
        with use_host(host):
            if not args.no_sqlite:
                print(f"SQLite ({args.synchronous}), {n} events, files in {folder}", flush=True)
                floor_t, engine_t, loop_t = paired(
                    args.repeat,
                    lambda: sqlite_bare(folder, payloads, args.synchronous),
                    lambda: sqlite_engine(folder, events, args.synchronous, host),
                    lambda: sqlite_engine(folder, events, args.synchronous, host, loop=True),
                )
                summary.append(_add(report, "SQLite", n, floor_t, engine_t))
                summary.append(
                    _add(
                        report,
                        "SQLite",
                        n,
                        floor_t,
                        loop_t,
                        engine_name="engine, a loop of process()",
                        add_floor=False,
                    )
                )
                if not args.no_breakdown:
                    summary.append(
                        _sqlite_breakdown(report, folder, events, payloads, args, host, loop_t)
                    )
            if args.postgres:
                print(f"PostgreSQL, {n} events", flush=True)
                # the stricter floor (one autocommit INSERT per event) runs in the same rounds
                floor_t, engine_t, loop_t, strict = paired(
                    args.repeat,
                    lambda: pg_bare(args.postgres, payloads, autocommit=False),
                    lambda: pg_engine(args.postgres, events, host),
                    lambda: pg_engine(args.postgres, events, host, loop=True),
                    lambda: pg_bare(args.postgres, payloads, autocommit=True),
                )
                summary.append(
                    _add(
                        report, "PostgreSQL", n, floor_t, engine_t, floor_name="BEGIN/INSERT/COMMIT"
                    )
                )
                summary.append(
                    _add(
                        report,
                        "PostgreSQL",
                        n,
                        floor_t,
                        loop_t,
                        floor_name="BEGIN/INSERT/COMMIT",
                        engine_name="engine, a loop of process()",
                        add_floor=False,
                    )
                )
                summary.append(
                    _add(
                        report,
                        "PostgreSQL",
                        n,
                        strict,
                        engine_t,
                        floor_name="autocommit INSERT",
                        add_engine=False,
                    )
                )
            else:
                report.note(
                    "PostgreSQL skipped: pass --postgres URL or set LOYALTYKIT_TEST_POSTGRES_URL"
                )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    for line in summary:
        report.note(line)
    report.finish()
    sys.stdout.flush()


def _sqlite_breakdown(
    report: Report,
    folder: Path,
    events: list[Event],
    payloads: list[tuple[str, str]],
    args: argparse.Namespace,
    host: PluginHost,
    engine_t: list[float],
) -> str:
    """Where the engine's time goes on SQLite: its statements replayed alone vs the floor."""
    n = len(events)
    setup, work = record_sqlite_statements(folder, events, args.synchronous, host)
    print(f"SQLite, the engine's {len(work):,} statements replayed without the engine", flush=True)
    floor_t, replay_t = paired(
        args.repeat,
        lambda: sqlite_bare(folder, payloads, args.synchronous),
        lambda: sqlite_replay(folder, setup, work),
    )
    replay = Measurement(
        "SQLite engine's statements replayed alone",
        replay_t,
        extra={"events_per_s_median": n / statistics.median(replay_t)},
    )
    report.add(replay, reference=Measurement("floor (again)", floor_t))
    storage_ms = statistics.median(r - f for f, r in zip(floor_t, replay_t, strict=False)) / n * 1e3
    python_ms = (statistics.median(engine_t) - statistics.median(replay_t)) / n * 1e3
    ratio = statistics.median(f / r for f, r in zip(floor_t, replay_t, strict=False))
    return (
        f"SQLite breakdown: the engine's own statements ({len(work) / n:.1f} per event, same "
        f"transactions and fsyncs) replayed without the engine run at {ratio:.2f} of the floor; "
        f"the storage adds {storage_ms:.2f} ms per event to the floor's commit and the engine's "
        f"Python (rules, records, conversions) about {python_ms:.2f} ms more"
    )


def _add(
    report: Report,
    backend: str,
    n: int,
    floor_t: list[float],
    engine_t: list[float],
    *,
    floor_name: str = "BEGIN IMMEDIATE/INSERT/COMMIT",
    engine_name: str = "engine",
    add_engine: bool = True,
    add_floor: bool = True,
) -> str:
    floor = Measurement(
        f"{backend} bare loop, {floor_name} (floor)",
        floor_t,
        extra={"events_per_s_median": n / statistics.median(floor_t)},
    )
    engine = Measurement(
        f"{backend} {engine_name}",
        engine_t,
        extra={"events_per_s_median": n / statistics.median(engine_t)},
    )
    if add_floor:
        report.add(floor)
    if add_engine:
        report.add(engine, reference=floor)
    per_round = [f / e for f, e in zip(floor_t, engine_t, strict=False)]
    median_ratio = statistics.median(per_round)
    verdict = "meets" if median_ratio >= 0.5 else "misses"
    # what the engine adds to each event on top of the floor's commit: steadier than the ratio,
    # which also depends on how long the disk takes to fsync (the floor is mostly that)
    extra_ms = statistics.median(e - f for f, e in zip(floor_t, engine_t, strict=False)) / n * 1e3
    floor_ms = statistics.median(floor_t) / n * 1e3
    return (
        f"{backend}: {engine_name} {n / statistics.median(engine_t):,.0f} events/s, floor "
        f"({floor_name}) "
        f"{n / statistics.median(floor_t):,.0f} events/s; ratio engine/floor per round "
        f"{', '.join(f'{r:.2f}' for r in per_round)} -> median {median_ratio:.2f} "
        f"({verdict} the 0.5 goal); the floor takes {floor_ms:.2f} ms per event, the engine "
        f"{extra_ms:.2f} ms more"
    )


if __name__ == "__main__":
    main()
