"""Helpers shared by the SQL store tests.

* PostgreSQL: the server URL from the environment (skip with the reason when unset) and a
  schema per test;
* :class:`SQLStoreBehaviour`: migrations and schema-version checks, run on both SQL stores.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from loyaltykit.engine.store import LedgerStore
from loyaltykit.engine.stores import _sql
from loyaltykit.errors import StoreError

URL_ENV = "LOYALTYKIT_TEST_POSTGRES_URL"


def pg_url() -> str:
    """The test server's URL, or skip the test with the reason."""
    url = os.environ.get(URL_ENV)
    if not url:
        pytest.skip(
            f"{URL_ENV} is not set; set it to a PostgreSQL URL such as "
            "postgresql+psycopg://postgres@127.0.0.1:5432/test to run the PostgreSQL tests"
        )
    pytest.importorskip("sqlalchemy", reason="the PostgreSQL store needs the 'postgres' extra")
    pytest.importorskip("psycopg", reason="the PostgreSQL store needs the 'postgres' extra")
    return url


def drop_schema(name: str) -> None:
    """Drop a test schema and everything in it."""
    import sqlalchemy as sa

    from loyaltykit.engine.stores.postgres import _with_psycopg

    engine = sa.create_engine(_with_psycopg(pg_url()))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    finally:
        engine.dispose()


@contextlib.contextmanager
def fresh_schema() -> Iterator[str]:
    """A fresh schema name for one test (created by the store's migrate), dropped afterwards.

    Test modules wrap it in their own ``pg_schema`` fixture.
    """
    pg_url()
    name = f"lk_test_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        drop_schema(name)


StoreMaker = Callable[[], Any]


class SQLStoreBehaviour:
    """Schema creation, upgrades and refusals; subclasses provide the fixtures and raw SQL.

    ``make_store`` returns a new, unmigrated store object on the test's database each time it is
    called (several objects on one database behave like several processes).
    """

    @pytest.fixture
    def make_store(self) -> StoreMaker:  # pragma: no cover - overridden
        raise NotImplementedError

    def execute(self, store: Any, sql: str) -> list[tuple[Any, ...]]:  # pragma: no cover
        """Run raw SQL (``{members}`` etc. are table names) in its own transaction."""
        raise NotImplementedError

    #: the module holding the store's ``MIGRATIONS`` (looked up when a store migrates)
    migrations_module: Any = _sql

    @property
    def migrations(self) -> tuple[_sql.Migration, ...]:
        """The store's migration steps."""
        steps: tuple[_sql.Migration, ...] = self.migrations_module.MIGRATIONS
        return steps

    def add_step(self, monkeypatch: pytest.MonkeyPatch, description: str, *sql: str) -> int:
        """Append one step to the store's migrations for this test; returns its version."""
        version = len(self.migrations) + 1
        step = _sql.Migration(version, description, sql)
        monkeypatch.setattr(self.migrations_module, "MIGRATIONS", (*self.migrations, step))
        return version

    def test_fresh_database_has_version_zero_and_refuses_units(
        self, make_store: StoreMaker
    ) -> None:
        store = make_store()
        assert store.schema_version() == 0
        with pytest.raises(StoreError, match=r"migrate\(\)"), store.unit("m1"):
            pass  # pragma: no cover - never reached
        with pytest.raises(StoreError, match="no ledger schema"):
            store.member_ids()

    def test_migrate_records_each_step(self, make_store: StoreMaker) -> None:
        store = make_store()
        store.migrate()
        rows = self.execute(
            store, "SELECT version, description FROM {schema_version} ORDER BY version"
        )
        assert rows == [(m.version, m.description) for m in self.migrations]
        assert rows[0] == (1, "initial ledger schema")
        assert store.schema_version() == _sql.latest_version(self.migrations)

    def test_newer_schema_is_refused(self, make_store: StoreMaker) -> None:
        first = make_store()
        first.migrate()
        with first.unit("m1") as u:
            u.counter_add("c", 1, None)
        self.execute(
            first,
            "INSERT INTO {schema_version} (version, description, applied_at)"
            " VALUES (99, 'from the future', CURRENT_TIMESTAMP)",
        )
        later = make_store()
        with pytest.raises(StoreError, match=r"version 99.*newer loyaltykit"):
            later.migrate()
        with pytest.raises(StoreError, match="newer loyaltykit"), later.unit("m1"):
            pass  # pragma: no cover - never reached
        with pytest.raises(StoreError, match="newer loyaltykit"):
            later.entries("m1")
        assert later.schema_version() == 99
        assert self.execute(first, "SELECT value FROM {counters}") == [(1,)]

    def test_upgrade_applies_only_the_missing_steps(
        self, make_store: StoreMaker, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        old = make_store()
        old.migrate()
        with old.unit("m1") as u:
            assert u.counter_add("stock", 3, 10)
        old_version = old.schema_version()
        version = self.add_step(
            monkeypatch, "counter notes", "ALTER TABLE {counters} ADD COLUMN note TEXT"
        )
        stale = make_store()
        with (
            pytest.raises(
                StoreError, match=rf"schema version {old_version}.*needs version {version}"
            ),
            stale.unit("m1"),
        ):
            pass  # pragma: no cover - never reached
        new = make_store()
        new.migrate()
        assert new.schema_version() == version
        assert self.execute(new, "SELECT name, value, note FROM {counters}") == [("stock", 3, None)]
        assert self.execute(new, "SELECT version FROM {schema_version} ORDER BY version") == [
            (v,) for v in range(1, version + 1)
        ]
        new.migrate()
        assert new.schema_version() == version

    def test_failed_migration_changes_nothing(
        self, make_store: StoreMaker, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        store = make_store()
        store.migrate()
        before = store.schema_version()
        self.add_step(
            monkeypatch, "broken", "ALTER TABLE {counters} ADD COLUMN note TEXT", "THIS IS NOT SQL"
        )
        again = make_store()
        with pytest.raises(StoreError, match="migration failed, nothing changed"):
            again.migrate()
        assert again.schema_version() == before
        with pytest.raises(Exception, match="note"):
            self.execute(again, "SELECT note FROM {counters}")

    def test_migrations_must_be_numbered_without_gaps(self) -> None:
        steps = (_sql.MIGRATIONS[0], _sql.Migration(3, "skips 2", ()))
        with pytest.raises(StoreError, match="expected 2"):
            _sql.check_migrations(steps)

    def test_concurrent_migrations_apply_once(self, make_store: StoreMaker) -> None:
        stores = [make_store() for _ in range(4)]
        errors: list[BaseException] = []
        barrier = threading.Barrier(len(stores))

        def run(store: LedgerStore) -> None:
            try:
                barrier.wait()
                store.migrate()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [], errors
        assert self.execute(stores[0], "SELECT COUNT(*) FROM {schema_version}") == [
            (len(self.migrations),)
        ]

    def test_new_members_are_serialised_from_their_first_unit(self, make_store: StoreMaker) -> None:
        """Units racing on members that have no row yet still run one at a time, also when
        they name several members (sorted locks: no deadlock)."""
        from store_conformance import member

        first = make_store()
        first.migrate()
        workers, rounds = 6, 8
        stores = [make_store() for _ in range(workers)]
        barrier = threading.Barrier(workers)
        errors: list[BaseException] = []

        def bump(unit: Any, mid: str) -> None:
            state = unit.load_member(mid)
            unit.save_member(member(mid, debt=1 if state is None else state.debt + 1))

        def run(index: int, store: Any) -> None:
            try:
                for r in range(rounds):
                    barrier.wait()
                    with store.unit(f"solo-{r}") as u:
                        bump(u, f"solo-{r}")
                    trio = [f"a-{r}", f"b-{r}", f"c-{r}"]
                    pair = (trio[index % 3], trio[(index + 1) % 3])
                    barrier.wait()
                    with store.unit(*pair) as u:
                        for mid in pair:
                            bump(u, mid)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
                barrier.abort()

        threads = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate(stores)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        for r in range(rounds):
            solo = first.get_member(f"solo-{r}")
            assert solo is not None
            assert solo.debt == workers
            debts = [first.get_member(f"{x}-{r}").debt for x in "abc"]
            assert sum(debts) == 2 * workers
            assert debts == [4, 4, 4]


# --------------------------------------------------------------------------------------------
# a program, valid event streams and ledger snapshots (CLI, crash and concurrency tests)
# --------------------------------------------------------------------------------------------

PROGRAM_TOML = """
[program]
name = "Test Club"
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
threshold = 1000

[[rewards]]
id = "coffee"
name = "Free coffee"
cost = 100
stock = 5
"""
"""A small program: 1 point per dollar, 50 welcome points, a spend tier, a reward in stock."""


def make_events(members: int, events: int, seed: int) -> list[Any]:
    """``members`` enrolments, then seeded purchases, partial refunds, redemptions and
    adjustments that the engine accepts (a lower bound of each balance covers every spend)."""
    import datetime as dt
    import random
    from decimal import Decimal

    from loyaltykit.engine import Adjust, Enroll, Purchase, Redeem, Refund

    rng = random.Random(seed)
    t0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    out: list[Any] = []
    low: dict[str, int] = {}
    bought: dict[str, list[tuple[str, Decimal, Decimal]]] = {}
    for i in range(members):
        mid = f"m{i:03d}"
        out.append(Enroll(event_id=f"enroll-{mid}", member_id=mid, occurred_at=t0))
        low[mid], bought[mid] = 50, []
    for k in range(events):
        at = t0 + dt.timedelta(hours=k + 1)
        mid = f"m{rng.randrange(members):03d}"
        roll, eid = rng.random(), f"e{k:05d}"
        if roll < 0.10 and bought[mid]:
            i = rng.randrange(len(bought[mid]))
            tx, amount, left = bought[mid][i]
            part = min(left, (amount / 4).quantize(Decimal("0.01")))
            if part > 0:
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
            points = rng.randrange(1, 10)
            out.append(
                Adjust(event_id=eid, member_id=mid, occurred_at=at, points=points, reason="service")
            )
            low[mid] += points
        else:
            amount = Decimal(rng.randrange(100, 20000)) / 100
            out.append(
                Purchase(
                    event_id=eid,
                    member_id=mid,
                    occurred_at=at,
                    transaction_id=f"t{k}",
                    amount=amount,
                )
            )
            bought[mid].append((f"t{k}", amount, amount))
            low[mid] += int(amount) - 1
    return out


def write_events(path: Any, events: list[Any]) -> None:
    """Write events as JSON lines."""
    with open(path, "w", encoding="utf-8") as fh:
        for event in events:
            fh.write(event.to_json() + "\n")


def ledger_snapshot(store: Any, event_ids: list[str]) -> dict[str, Any]:
    """Everything a store holds, as comparable values. Event records keep their fingerprint
    and outcome (``recorded_at`` is wall-clock time, so it is left out)."""
    members = store.member_ids()
    records = {}
    for event_id in event_ids:
        record = store.get_event(event_id)
        records[event_id] = (
            None
            if record is None
            else (record.member_id, record.kind, record.fingerprint, dict(record.outcome))
        )
    return {
        "members": {m: store.get_member(m) for m in members},
        "entries": {m: store.entries(m) for m in members},
        "batches": {m: store.batches(m) for m in members},
        "tiers": {m: store.tier_history(m) for m in members},
        "events": records,
    }
