"""Several processes earning and redeeming for the same members at once, on SQLite and on
PostgreSQL: every purchase is applied exactly once although every process delivers it, no
member is ever overdrawn, reward stock is never oversold, and the totals are exact.

Each worker is a separate Python process (``spawn``) with its own store object on the same
database. All workers deliver *all* purchases (in their own shuffled order, so the same event
id often arrives from several processes at the same moment), plus redemptions of their own that
may be refused for want of points, and a few attempts at a reward with a stock of five.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import random
import traceback
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sql_helpers import PROGRAM_TOML, fresh_schema, pg_url

from loyaltykit.core.ledger import EntryKind
from loyaltykit.engine import Engine, Enroll, Purchase, Redeem, program_from_toml
from loyaltykit.engine.stores import open_store
from loyaltykit.errors import InsufficientPointsError, LedgerError
from loyaltykit.plugins import PluginHost

WORKERS = 4
MEMBERS = ("ann", "bob", "cyd")
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
STOCK = 5  # the program's "coffee" reward


def purchases() -> list[Purchase]:
    """The purchases every worker delivers: 15 per member."""
    rng = random.Random(7)
    out = []
    for k in range(15 * len(MEMBERS)):
        member = MEMBERS[k % len(MEMBERS)]
        out.append(
            Purchase(
                event_id=f"p{k:03d}",
                member_id=member,
                occurred_at=T0 + dt.timedelta(minutes=k + 1),
                transaction_id=f"t{k:03d}",
                amount=Decimal(rng.randrange(500, 6000)) / 100,
            )
        )
    return out


def worker_events(index: int) -> list[Any]:
    """Worker ``index``'s stream: all purchases shuffled, its own redemptions mixed in."""
    rng = random.Random(100 + index)
    stream: list[Any] = list(purchases())
    rng.shuffle(stream)
    for k in range(20):
        stream.insert(
            rng.randrange(len(stream) + 1),
            Redeem(
                event_id=f"w{index}-r{k}",
                member_id=rng.choice(MEMBERS),
                occurred_at=T0 + dt.timedelta(minutes=rng.randrange(1, 60)),
                points=rng.randrange(5, 60),
            ),
        )
    for k in range(3):
        stream.insert(
            rng.randrange(len(stream) + 1),
            Redeem(
                event_id=f"w{index}-coffee{k}",
                member_id=rng.choice(MEMBERS),
                occurred_at=T0 + dt.timedelta(minutes=rng.randrange(1, 60)),
                reward_id="coffee",
            ),
        )
    return stream


def worker(index: int, target: str, start: Any, results: Any) -> None:
    """Process worker ``index``'s events on its own store; report every outcome."""
    try:
        host = PluginHost(load_entrypoints=False, blocked=frozenset())
        store = open_store(target)
        engine = Engine(program_from_toml(PROGRAM_TOML, host=host), store, host=host)
        report: list[tuple[str, str, int, bool, str | None]] = []
        start.wait(timeout=120)
        for event in worker_events(index):
            try:
                outcome = engine.process(event)
            except InsufficientPointsError as exc:
                report.append((event.event_id, event.member_id, 0, False, f"points: {exc}"))
            except LedgerError as exc:
                report.append((event.event_id, event.member_id, 0, False, f"refused: {exc}"))
            else:
                report.append(
                    (event.event_id, event.member_id, outcome.points, outcome.replayed, None)
                )
        store.close()
        results.put((index, report, None))
    except BaseException:
        results.put((index, [], traceback.format_exc()))


def run_workers(target: str) -> dict[int, list[tuple[str, str, int, bool, str | None]]]:
    """Enrol the members, then run the workers together; return their reports."""
    host = PluginHost(load_entrypoints=False, blocked=frozenset())
    store = open_store(target)
    engine = Engine(program_from_toml(PROGRAM_TOML, host=host), store, host=host)
    for member in MEMBERS:
        engine.process(Enroll(event_id=f"enroll-{member}", member_id=member, occurred_at=T0))
    store.close()
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(WORKERS)
    results = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(i, target, start, results)) for i in range(WORKERS)]
    for p in procs:
        p.start()
    reports: dict[int, list[tuple[str, str, int, bool, str | None]]] = {}
    for _ in procs:
        index, report, error = results.get(timeout=300)
        assert error is None, f"worker {index} failed:\n{error}"
        reports[index] = report
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return reports


def check(target: str, reports: dict[int, list[tuple[str, str, int, bool, str | None]]]) -> None:
    """The invariants, from the workers' reports and the ledger itself."""
    store = open_store(target, migrate=False)
    try:
        # every purchase applied exactly once, every worker told the same outcome
        purchase_points: dict[str, tuple[str, int]] = {}
        for p in purchases():
            seen = [r for rep in reports.values() for r in rep if r[0] == p.event_id]
            assert len(seen) == WORKERS
            assert sum(1 for r in seen if not r[3]) == 1, f"{p.event_id} applied {seen}"
            assert len({r[2] for r in seen}) == 1, f"{p.event_id} outcomes differ: {seen}"
            assert all(r[4] is None for r in seen)
            purchase_points[p.event_id] = (p.member_id, seen[0][2])
            assert store.get_event(p.event_id) is not None

        redeemed: dict[str, int] = dict.fromkeys(MEMBERS, 0)
        coffees = 0
        for rep in reports.values():
            for event_id, member, points, replayed, problem in rep:
                if event_id.startswith("p"):
                    continue
                assert not replayed
                if problem is None:
                    redeemed[member] += -points
                    coffees += "coffee" in event_id
                    assert store.get_event(event_id) is not None
                else:
                    assert problem.startswith("points:") or "out of stock" in problem, problem
                    assert store.get_event(event_id) is None
        assert coffees <= STOCK

        for member in MEMBERS:
            entries = store.entries(member)
            earned = 50 + sum(points for who, points in purchase_points.values() if who == member)
            balance = sum(e.points for e in entries)
            assert balance == earned - redeemed[member], member
            running = 0
            for e in entries:  # append order is commit order: never overdrawn at any point
                running += e.points
                assert running >= 0, f"{member} overdrawn at entry {e.id}"
            assert all(e.kind is not EntryKind.DEBT for e in entries)
            batches = store.batches(member)
            assert all(b.remaining >= 0 for b in batches)
            assert sum(b.remaining for b in batches) == balance
    finally:
        store.close()


def test_processes_on_one_sqlite_file(tmp_path: Path) -> None:
    target = str(tmp_path / "shared.db")
    check(target, run_workers(target))


@pytest.mark.postgres
def test_processes_on_one_postgres_schema() -> None:
    import sqlalchemy as sa

    with fresh_schema() as schema:
        url = pg_url()
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
        sep = "&" if "?" in url else "?"
        target = f"{url}{sep}options=-csearch_path%3D{schema}"
        check(target, run_workers(target))
