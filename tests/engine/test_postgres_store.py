"""The PostgreSQL store: the conformance suite, migrations, borrowed engines and bad URLs.

Needs a server: set ``LOYALTYKIT_TEST_POSTGRES_URL`` (for example
``postgresql+psycopg://postgres@127.0.0.1:5432/test``). Every test works in a schema of its own,
dropped afterwards, so runs do not interfere.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from sql_helpers import SQLStoreBehaviour, StoreMaker, fresh_schema, pg_url
from store_conformance import StoreConformance

from loyaltykit.core.program import Program
from loyaltykit.engine import PerUnit
from loyaltykit.engine.store import LedgerStore
from loyaltykit.engine.stores import open_store
from loyaltykit.errors import StoreError

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A schema of its own for each test."""
    with fresh_schema() as name:
        yield name


class TestPostgresStore(StoreConformance):
    """The conformance suite on one shared :class:`PostgresStore` (pooled connections)."""

    @pytest.fixture
    def store(self, pg_schema: str) -> Iterator[LedgerStore]:
        from loyaltykit.engine.stores.postgres import PostgresStore

        s = PostgresStore(pg_url(), schema=pg_schema)
        yield s
        s.close()


class TestPostgresStoreOneHandlePerThread(StoreConformance):
    """The conformance suite with a store (and pool) per thread, as separate processes have."""

    threads_share_store = False

    @pytest.fixture
    def store(self, pg_schema: str) -> Iterator[LedgerStore]:
        from loyaltykit.engine.stores.postgres import PostgresStore

        s = PostgresStore(pg_url(), schema=pg_schema)
        yield s
        s.close()

    @pytest.fixture
    def store_factory(
        self, ready: LedgerStore, pg_schema: str
    ) -> Iterator[Callable[[], LedgerStore]]:
        from loyaltykit.engine.stores.postgres import PostgresStore

        opened: list[PostgresStore] = []

        def make() -> LedgerStore:
            s = PostgresStore(pg_url(), schema=pg_schema)
            opened.append(s)
            return s

        yield make
        for s in opened:
            s.close()


class TestPostgresMigrations(SQLStoreBehaviour):
    """Schema creation, upgrades and refusals on PostgreSQL."""

    @property  # type: ignore[override]
    def migrations_module(self) -> Any:
        from loyaltykit.engine.stores import postgres

        return postgres

    @pytest.fixture
    def make_store(self, pg_schema: str) -> Iterator[StoreMaker]:
        from loyaltykit.engine.stores.postgres import PostgresStore

        opened: list[PostgresStore] = []

        def make() -> PostgresStore:
            s = PostgresStore(pg_url(), schema=pg_schema)
            opened.append(s)
            return s

        yield make
        for s in opened:
            s.close()

    def execute(self, store: Any, sql: str) -> list[tuple[Any, ...]]:
        import sqlalchemy as sa

        with store.engine.begin() as conn:
            result = conn.execute(sa.text(sql.format(**store._names)))
            return [tuple(row) for row in result] if result.returns_rows else []


# --------------------------------------------------------------------------------------------
# engines, URLs and schemas
# --------------------------------------------------------------------------------------------


def test_borrowed_engine_is_shared_and_not_disposed(pg_schema: str) -> None:
    import sqlalchemy as sa

    from loyaltykit.engine.stores.postgres import PostgresStore

    engine = sa.create_engine(pg_url().replace("postgresql://", "postgresql+psycopg://", 1))
    store = open_store(engine)
    assert isinstance(store, PostgresStore)
    assert store.engine is engine
    store.close()
    # even an engine set to autocommit gets atomic units
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    with_options = PostgresStore(autocommit, schema=pg_schema)
    with_options.migrate()

    class RolledBackError(Exception):
        pass

    def add_then_fail() -> None:
        with with_options.unit("m1") as u:
            assert u.counter_add("c", 5, None)
            raise RolledBackError

    with pytest.raises(RolledBackError):
        add_then_fail()
    with with_options.unit("m1") as u:
        assert u.counter_value("c") == 0
    with_options.close()
    # the application's engine keeps working after the store is closed
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    scoped = PostgresStore(engine, schema=pg_schema)
    scoped.migrate()
    with scoped.unit("m1") as u:
        assert u.counter_add("c", 2, None)
    with engine.connect() as conn:
        value = conn.execute(
            sa.text(f'SELECT value FROM "{pg_schema}".loyaltykit_counters')
        ).scalar_one()
    assert value == 2
    scoped.close()
    engine.dispose()


def test_schemas_keep_ledgers_apart(pg_schema: str) -> None:
    from loyaltykit.engine.stores.postgres import PostgresStore

    with fresh_schema() as other_schema:
        one = PostgresStore(pg_url(), schema=pg_schema)
        two = PostgresStore(pg_url(), schema=other_schema)
        one.migrate()
        two.migrate()
        with one.unit("m1") as u:
            u.counter_add("c", 1, None)
        with two.unit("m1") as u:
            assert u.counter_value("c") == 0
        one.close()
        two.close()


def test_plain_postgresql_url_uses_psycopg3() -> None:
    from loyaltykit.engine.stores.postgres import PostgresStore

    plain = "postgresql://" + pg_url().split("://", 1)[1]
    store = PostgresStore(plain)
    assert store.engine.dialect.driver == "psycopg"
    store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql+psycopg://lk:hunter2@127.0.0.1:1/test", "cannot connect"),
        ("postgresql+psycopg://postgres@127.0.0.1:5432/no_such_db_lk", "cannot connect"),
        ("postgresql+nosuchdriver://postgres@127.0.0.1/test", "is not usable"),
        ("postgresql+psycopg2://postgres@127.0.0.1/test", "is not usable|psycopg 3 driver"),
    ],
)
def test_bad_urls_give_clear_errors(url: str, message: str) -> None:
    pg_url()
    with pytest.raises(StoreError, match=message) as info:
        open_store(url)
    assert "hunter2" not in str(info.value)


def test_bad_schema_names_and_engines_are_refused(tmp_path: Any) -> None:
    import sqlalchemy as sa

    from loyaltykit.engine.stores.postgres import PostgresStore

    with pytest.raises(StoreError, match="plain identifier"):
        PostgresStore(pg_url(), schema='x"; DROP TABLE y; --')
    sqlite_engine = sa.create_engine(f"sqlite:///{tmp_path}/x.db")
    with pytest.raises(StoreError, match="needs a PostgreSQL database, got a 'sqlite'"):
        PostgresStore(sqlite_engine)
    with pytest.raises(StoreError, match="engine_options only apply to a URL"):
        PostgresStore(sa.create_engine(pg_url()), engine_options={"pool_size": 1})


# --------------------------------------------------------------------------------------------
# the activity cache (validated by the member row's version)
# --------------------------------------------------------------------------------------------


def test_activity_cache_sees_other_stores_writes(pg_schema: str) -> None:
    """Two store objects on one schema (as two processes): each keeps the activity rows it read,
    and must notice when the other wrote the member (the member row's version moved)."""
    from store_conformance import day

    from loyaltykit.engine import Activity
    from loyaltykit.engine.stores.postgres import PostgresStore

    a = PostgresStore(pg_url(), schema=pg_schema)
    b = PostgresStore(pg_url(), schema=pg_schema)
    try:
        a.migrate()
        with a.unit("m1") as u:
            u.append_activity(Activity(member_id="m1", event_id="e1", occurred_at=day(1), visits=1))
        with a.unit("m1") as u:  # reads the rows, keeps them
            assert u.activity_totals("m1", day(0), day(9)).visits == 1
        with a.unit("m1") as u:  # from the cache, plus this unit's own row
            u.append_activity(Activity(member_id="m1", event_id="e2", occurred_at=day(2), visits=1))
            assert u.activity_totals("m1", day(0), day(9)).visits == 2
        with b.unit("m1") as u:
            assert u.activity_totals("m1", day(0), day(9)).visits == 2
            u.append_activity(
                Activity(member_id="m1", event_id="e3", occurred_at=day(3), spend="2.5", visits=1)
            )
        with a.unit("m1") as u:
            totals = u.activity_totals("m1", day(0), day(9))
            assert (totals.visits, totals.spend) == (3, Decimal("2.5"))
            assert u.activity_totals("m1", day(2), day(2)).visits == 1
    finally:
        a.close()
        b.close()


def test_activity_cache_forgets_a_rolled_back_unit(pg_schema: str) -> None:
    from store_conformance import ForcedRollbackError, day

    from loyaltykit.engine import Activity
    from loyaltykit.engine.stores.postgres import PostgresStore

    store = PostgresStore(pg_url(), schema=pg_schema)
    try:
        store.migrate()
        with store.unit("m1") as u:
            u.append_activity(Activity(member_id="m1", event_id="e1", occurred_at=day(1), visits=1))
        with store.unit("m1") as u:
            assert u.activity_totals("m1", day(0), day(9)).visits == 1

        def write_then_fail() -> None:
            with store.unit("m1") as u:
                u.append_activity(
                    Activity(member_id="m1", event_id="e2", occurred_at=day(2), visits=1)
                )
                assert u.activity_totals("m1", day(0), day(9)).visits == 2
                raise ForcedRollbackError

        with pytest.raises(ForcedRollbackError):
            write_then_fail()
        with store.unit("m1") as u:
            assert u.activity_totals("m1", day(0), day(9)).visits == 1
    finally:
        store.close()


def test_activity_cache_starts_over_past_its_row_budget(
    pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from store_conformance import day

    from loyaltykit.engine import Activity
    from loyaltykit.engine.stores import postgres

    monkeypatch.setattr(postgres, "_CACHE_ROWS", 4)
    store = postgres.PostgresStore(pg_url(), schema=pg_schema)
    try:
        store.migrate()
        for i in range(8):
            mid = f"m{i % 3}"
            with store.unit(mid) as u:
                u.append_activity(
                    Activity(member_id=mid, event_id=f"e{i}", occurred_at=day(i), visits=1)
                )
                assert u.activity_totals(mid, day(0), day(99)).visits == i // 3 + 1
            cache = store._activity_cache
            assert cache.rows == sum(len(rows) for _, rows in cache.values()) <= 4
    finally:
        store.close()


# --------------------------------------------------------------------------------------------
# the locking statement's reads, the open-batch cache and borrowed connections
# --------------------------------------------------------------------------------------------


def _wait_for_lock_waiter(engine: Any, timeout_seconds: float = 30.0) -> None:
    """Return once some session of the test database waits for a row lock."""
    import time

    import sqlalchemy as sa

    deadline = time.monotonic() + timeout_seconds
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            ).scalar_one()
            conn.rollback()
            if waiting:
                return
            time.sleep(0.01)
    raise AssertionError("no session ever waited for the lock")


@pytest.mark.parametrize("other_store", [False, True])
def test_unit_that_waited_for_the_lock_reads_what_the_holder_committed(
    pg_schema: str, other_store: bool
) -> None:
    """The statement that locks the member reads the event and the open batches with its own
    snapshot, taken before it waited: after the wait it must read them again (the holder's
    commit moved the member row's version on)."""
    import threading

    from store_conformance import T0, batch, day, member

    from loyaltykit.engine import EventRecord
    from loyaltykit.engine.stores.postgres import PostgresStore

    store = PostgresStore(pg_url(), schema=pg_schema)
    second = PostgresStore(pg_url(), schema=pg_schema) if other_store else store
    try:
        store.migrate()
        with store.unit("m1") as u:  # the member row exists, with a batch
            u.save_member(member())
            u.put_batches([batch("b0", earned_at=day(0))])
        with second.unit("m1") as u:  # the waiting store has seen (cached) the member
            assert [b.id for b in u.open_batches("m1")] == ["b0"]
            state = u.load_member("m1")
            assert state is not None
            assert state.debt == 7
        seen: dict[str, Any] = {}
        started = threading.Event()

        def waiter() -> None:
            started.set()
            with second.unit("m1") as u:
                seen["event"] = u.get_event("e-holder")
                seen["batches"] = [b.id for b in u.open_batches("m1")]
                state = u.load_member("m1")
                seen["debt"] = None if state is None else state.debt

        with store.unit("m1") as u:
            assert u.load_member("m1") is not None  # holds the lock from here
            thread = threading.Thread(target=waiter)
            thread.start()
            started.wait()
            _wait_for_lock_waiter(store.engine)
            u.save_member(member(debt=11))
            u.put_batches([batch("b1", earned_at=day(1))])
            u.put_event(
                EventRecord(
                    event_id="e-holder",
                    member_id="m1",
                    kind="k",
                    fingerprint="f",
                    outcome={},
                    recorded_at=T0,
                )
            )
        thread.join(timeout=60)
        assert seen == {
            "event": store.get_event("e-holder"),
            "batches": ["b0", "b1"],
            "debt": 11,
        }
    finally:
        store.close()
        if other_store:
            second.close()


def test_cached_batches_and_states_see_other_stores_writes_and_forget_rollbacks(
    pg_schema: str,
) -> None:
    from store_conformance import ForcedRollbackError, batch, day, member

    from loyaltykit.engine.stores.postgres import PostgresStore

    a = PostgresStore(pg_url(), schema=pg_schema)
    b = PostgresStore(pg_url(), schema=pg_schema)

    def open_ids(store: PostgresStore) -> list[str]:
        with store.unit("m1") as u:
            return [x.id for x in u.open_batches("m1")]

    def debt(store: PostgresStore) -> int | None:
        with store.unit("m1") as u:
            state = u.load_member("m1")
            return None if state is None else state.debt

    try:
        a.migrate()
        with a.unit("m1") as u:
            u.put_batches([batch("b1", earned_at=day(1))])
            u.save_member(member(debt=1))
        assert open_ids(a) == ["b1"]
        assert debt(a) == 1
        with b.unit("m1") as u:
            u.save_member(member(debt=2))
        assert debt(a) == 2
        with a.unit("m1") as u:  # spends b1 without reading: the cache follows
            u.put_batches([batch("b1", earned_at=day(1), remaining=0)])
        assert open_ids(a) == []
        with b.unit("m1") as u:
            u.put_batches([batch("b2", earned_at=day(2))])
        assert open_ids(a) == ["b2"]

        def write_then_fail() -> None:
            with a.unit("m1") as u:
                u.put_batches([batch("b3", earned_at=day(3))])
                u.save_member(member(debt=3))
                assert [x.id for x in u.open_batches("m1")] == ["b2", "b3"]
                raise ForcedRollbackError

        with pytest.raises(ForcedRollbackError):
            write_then_fail()
        assert open_ids(a) == ["b2"]
        assert open_ids(b) == ["b2"]
        assert debt(a) == debt(b) == 2
    finally:
        a.close()
        b.close()


def test_borrowed_connections_go_back_with_their_own_settings(pg_schema: str) -> None:
    import psycopg
    import sqlalchemy as sa

    from loyaltykit.engine.stores.postgres import PostgresStore

    engine = sa.create_engine(
        pg_url().replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="AUTOCOMMIT",
        pool_size=1,
        max_overflow=0,
    )
    store = PostgresStore(engine, schema=pg_schema)
    try:
        store.migrate()
        with store.unit("m1") as u:
            assert u.counter_add("c", 1, None)
        assert store.get_member("m1") is None
        pooled = engine.raw_connection()
        try:
            raw = pooled.driver_connection
            assert isinstance(raw, psycopg.Connection)
            assert raw.autocommit is True
            assert raw.isolation_level is None
        finally:
            pooled.close()
    finally:
        store.close()
        engine.dispose()


def test_unit_of_several_members_reads_event_and_batches_after_locking(pg_schema: str) -> None:
    from store_conformance import batch, day

    from loyaltykit.engine.stores.postgres import PostgresStore

    store = PostgresStore(pg_url(), schema=pg_schema)
    try:
        store.migrate()
        with store.unit("m1") as u:
            u.put_batches([batch("a1", earned_at=day(1))])
        with store.unit("m1") as u:  # m1's open batches are now cached, m2's are not
            assert [b.id for b in u.open_batches("m1")] == ["a1"]
        with store.unit("m2", "m1") as u:
            assert u.get_event("e1") is None
            assert [b.id for b in u.open_batches("m1")] == ["a1"]
            assert u.open_batches("m2") == []
            u.put_batches([batch("a2", "m2", earned_at=day(2)), batch("a3", earned_at=day(3))])
        for mid, ids in (("m1", ["a1", "a3"]), ("m2", ["a2"])):
            with store.unit(mid) as u:
                assert [b.id for b in u.open_batches(mid)] == ids
        with store.unit("m1", "m2") as u:
            assert [b.id for b in u.open_batches("m2")] == ["a2"]
            assert u.get_event("e1") is None
    finally:
        store.close()


def test_rolled_back_unit_keeps_the_prepared_statements(pg_schema: str) -> None:
    """psycopg forgets every prepared statement on ``Connection.rollback()``; the store rolls
    units back without that, so a refused event does not make the next units plan again."""
    import psycopg
    import sqlalchemy as sa
    from store_conformance import ForcedRollbackError

    from loyaltykit.engine.stores.postgres import PostgresStore

    engine = sa.create_engine(
        pg_url().replace("postgresql://", "postgresql+psycopg://", 1), pool_size=1, max_overflow=0
    )
    store = PostgresStore(engine, schema=pg_schema)

    def prepared() -> int:
        pooled = engine.raw_connection()
        try:
            raw = pooled.driver_connection
            assert isinstance(raw, psycopg.Connection)
            with raw.cursor() as cur:
                cur.execute("SELECT count(*) FROM pg_prepared_statements")
                row = cur.fetchone()
            raw.commit()  # (a rollback would drop them)
            assert row is not None
            return int(row[0])
        finally:
            pooled.close()

    def fail() -> None:
        with store.unit("m1") as u:
            assert u.counter_add("c", 1, None)
            raise ForcedRollbackError

    try:
        store.migrate()
        for _ in range(8):  # psycopg prepares a statement on its sixth run
            with store.unit("m1") as u:
                assert u.get_event("e") is None
                assert u.counter_add("c", 1, None)
        before = prepared()
        assert before >= 2
        with pytest.raises(ForcedRollbackError):
            fail()
        assert prepared() == before
        with store.unit("m1") as u:
            assert u.counter_value("c") == 8
    finally:
        store.close()
        engine.dispose()


def test_open_batch_cache_starts_over_past_its_row_budget(
    pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from store_conformance import batch, day

    from loyaltykit.engine.stores import postgres

    monkeypatch.setattr(postgres, "_BATCH_ROWS", 3)
    store = postgres.PostgresStore(pg_url(), schema=pg_schema)
    try:
        store.migrate()
        for i in range(8):
            mid = f"m{i % 3}"
            with store.unit(mid) as u:
                u.put_batches([batch(f"b{i}", mid, earned_at=day(i))])
            with store.unit(mid) as u:
                assert [b.id for b in u.open_batches(mid)] == [
                    f"b{k}" for k in range(i % 3, i + 1, 3)
                ]
            cache = store._batch_cache
            assert cache.rows == sum(len(rows) for _, rows in cache.values()) <= 3
    finally:
        store.close()


# --------------------------------------------------------------------------------------------
# statements prepared per connection, arguments as literals
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reset", ["DEALLOCATE ALL", "DISCARD ALL"])
def test_units_and_reads_survive_statements_dropped_behind_the_store(
    pg_schema: str, reset: str
) -> None:
    """The store prepares its statements once per connection; when someone else using the
    pooled connection drops them, the next unit (or read) prepares them again."""
    import psycopg
    import sqlalchemy as sa
    from store_conformance import T0, entry

    from loyaltykit.engine import EventRecord, PurchaseRecord
    from loyaltykit.engine.stores.postgres import PostgresStore

    engine = sa.create_engine(
        pg_url().replace("postgresql://", "postgresql+psycopg://", 1), pool_size=1, max_overflow=0
    )
    store = PostgresStore(engine, schema=pg_schema)

    def drop_statements() -> None:
        pooled = engine.raw_connection()
        try:
            raw = pooled.driver_connection
            assert isinstance(raw, psycopg.Connection)
            raw.autocommit = True
            raw.execute(reset)
            raw.autocommit = False
        finally:
            pooled.close()

    def purchase(n: int) -> None:
        with store.unit("m1") as u:
            assert u.get_event(f"e{n}") is None
            assert u.get_purchase(f"t{n}") is None
            u.put_purchase(
                PurchaseRecord(
                    transaction_id=f"t{n}",
                    member_id="m1",
                    event_id=f"e{n}",
                    occurred_at=T0,
                    amount=Decimal("1.50"),
                    currency="USD",
                    points=1,
                )
            )
            u.append_entries([entry(f"x{n}", points=1)])
            u.put_event(
                EventRecord(
                    event_id=f"e{n}",
                    member_id="m1",
                    kind="purchase",
                    fingerprint="f",
                    outcome={},
                    recorded_at=T0,
                )
            )

    try:
        store.migrate()
        purchase(1)
        drop_statements()
        purchase(2)  # the unit's first statement finds them gone: all prepared again
        drop_statements()
        assert store.get_event("e2") is not None  # a read, likewise
        drop_statements()
        with store.unit("m1", "m2") as u:  # the locking statements of several members
            assert u.get_event("e1") is not None
            assert u.counter_add("c", 1, None)
        purchase(3)
        assert [e.id for e in store.entries("m1")] == ["x1", "x2", "x3"]
    finally:
        store.close()
        engine.dispose()


AWKWARD = ["o'brien", "back\\slash", "quote\\'mix", "$1 ; -- /* x", "e\\x27", "naïve ☃ 😀", ""]


@pytest.mark.parametrize("text", AWKWARD)
def test_text_with_quotes_and_backslashes_round_trips(pg_schema: str, text: str) -> None:
    """Arguments travel as SQL literals: quotes, backslashes and the like come back as sent."""
    from store_conformance import T0, batch, entry, member

    from loyaltykit.engine import EventRecord
    from loyaltykit.engine.stores.postgres import PostgresStore

    mid = f"m-{text}"
    store = PostgresStore(pg_url(), schema=pg_schema)
    try:
        store.migrate()
        record = EventRecord(
            event_id=f"e-{text}",
            member_id=mid,
            kind="k",
            fingerprint=f"f-{text}",
            outcome={"note": text},
            recorded_at=T0,
        )
        with store.unit(mid) as u:
            assert u.get_event(record.event_id) is None
            u.save_member(member(mid, referred_by=text or None))
            u.put_batches([batch(f"b-{text}", mid, transaction_id=f"t-{text}")])
            u.append_entries([entry(f"x-{text}", mid, reason=text or None)])
            assert u.counter_add(f"c-{text}", 2, None)
            u.put_event(record)
        with store.unit(mid) as u:  # the locking statement finds them
            assert u.get_event(record.event_id) == record
            assert u.counter_value(f"c-{text}") == 2
            assert [b.id for b in u.transaction_batches(mid, f"t-{text}")] == [f"b-{text}"]
        assert store.get_event(record.event_id) == record
        state = store.get_member(mid)
        assert state is not None
        assert state.referred_by == (text or None)
        assert [e.reason for e in store.entries(mid)] == [text or None]
        assert mid in store.member_ids()
    finally:
        store.close()


def test_text_with_nul_is_refused_and_nothing_is_written(pg_schema: str) -> None:
    from store_conformance import entry

    from loyaltykit.engine.stores.postgres import PostgresStore

    store = PostgresStore(pg_url(), schema=pg_schema)
    try:
        store.migrate()
        with pytest.raises(StoreError, match="NUL"), store.unit("m\x00") as u:
            u.get_event("e")
        # (rows travel as JSON, where the server refuses the escaped NUL)
        with pytest.raises(StoreError, match="Unicode escape"), store.unit("m1") as u:
            u.append_entries([entry("x\x00", "m1")])
        with pytest.raises(StoreError, match="NUL"):
            store.get_event("e\x00")
        assert store.member_ids() == []
        assert store.entries("m1") == []
    finally:
        store.close()


def test_units_run_read_committed_whatever_the_engine_default(pg_schema: str) -> None:
    import sqlalchemy as sa

    from loyaltykit.engine.stores.postgres import PostgresStore

    engine = sa.create_engine(
        pg_url().replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="SERIALIZABLE",
        connect_args={"options": "-c default_transaction_isolation=serializable"},
    )
    store = PostgresStore(engine, schema=pg_schema)
    try:
        store.migrate()
        with store.unit("m1") as u:
            assert u.counter_add("c", 1, None)
            session = u._s  # type: ignore[attr-defined]
            (row,) = session.rows(session.run("SHOW transaction_isolation")[-1])
            assert row == ("read committed",)
    finally:
        store.close()
        engine.dispose()


def test_a_new_members_unit_takes_two_round_trips(pg_schema: str) -> None:
    """The unit that creates a member's row knows the member has no activity yet; a known
    member's activity is cached: neither reads it. BEGIN travels with the locking statement,
    the writes with COMMIT."""
    from store_conformance import day

    from loyaltykit.engine import Activity
    from loyaltykit.engine.stores import postgres
    from loyaltykit.engine.stores.postgres import PostgresStore

    store = PostgresStore(pg_url(), schema=pg_schema)
    sent: list[str] = []
    run = postgres._Session.run

    def counting(self: Any, sql: str, preparing: Any = ()) -> Any:
        sent.append(sql)
        return run(self, sql, preparing)

    try:
        store.migrate()
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(postgres._Session, "run", counting)
            for n in range(2):
                sent.clear()
                with store.unit("new") as u:
                    assert u.get_event(f"e{n}") is None
                    assert u.activity_totals("new", day(0), day(9)).visits == n
                    u.append_activity(
                        Activity(member_id="new", event_id=f"e{n}", occurred_at=day(1), visits=1)
                    )
                assert len(sent) == 2, sent
                assert sent[0].startswith("BEGIN")
                assert sent[1].endswith("COMMIT")
        with store.unit("new") as u:
            assert u.activity_totals("new", day(0), day(9)).visits == 2
    finally:
        store.close()


def test_a_state_saved_before_the_lock_is_what_the_unit_reads(pg_schema: str) -> None:
    from store_conformance import member

    from loyaltykit.engine.stores.postgres import PostgresStore

    store = PostgresStore(pg_url(), schema=pg_schema)
    try:
        store.migrate()
        with store.unit("m1", "m2") as u:
            u.save_member(member("m1", debt=1))
            u.save_member(member("m2", debt=1))
        for members in (("m1",), ("m1", "m2")):
            with store.unit(*members) as u:  # saved first: the lock comes after
                u.save_member(member("m1", debt=2))
                state = u.load_member("m1")
                assert state is not None
                assert state.debt == 2
            with store.unit(*members) as u:  # from the store's cache, or read
                state = u.load_member("m1")
                assert state is not None
                assert state.debt == 2
            with store.unit(*members) as u:
                u.save_member(member("m1", debt=1))
    finally:
        store.close()


def test_a_member_row_deleted_by_hand_is_inserted_again(pg_schema: str) -> None:
    """A member the store has cached is locked without the insert; if its row is gone, the unit
    inserts it again."""
    from store_conformance import member

    from loyaltykit.engine.stores.postgres import PostgresStore

    store = PostgresStore(pg_url(), schema=pg_schema)
    try:
        store.migrate()
        with store.unit("m1") as u:
            assert u.load_member("m1") is None
            u.save_member(member("m1"))
        assert store._state_cache.entry("m1")[0] >= 0
        with store.engine.begin() as conn:
            conn.exec_driver_sql(f'DELETE FROM "{pg_schema}".loyaltykit_members')
        with store.unit("m1") as u:
            assert u.get_event("e1") is None
            assert u.load_member("m1") is None
            u.save_member(member("m1", debt=5))
        state = store.get_member("m1")
        assert state is not None
        assert state.debt == 5
    finally:
        store.close()


def test_purchases_the_engine_expects_are_read_with_the_lock(pg_schema: str) -> None:
    """The engine names the purchases a purchase or refund event will look up
    (``expect_purchases``): they come with the locking statement, so a purchase of a known
    member takes two round trips, and the answers are those of the plain lookup."""
    from loyaltykit.engine import Engine, Purchase, Refund
    from loyaltykit.engine.stores import postgres
    from loyaltykit.engine.stores.postgres import PostgresStore
    from loyaltykit.errors import LedgerError
    from loyaltykit.plugins import PluginHost

    store = PostgresStore(pg_url(), schema=pg_schema)
    host = PluginHost(load_entrypoints=False, blocked=frozenset())
    sent: list[str] = []
    run = postgres._Session.run

    def counting(self: Any, sql: str, preparing: Any = ()) -> Any:
        sent.append(sql)
        return run(self, sql, preparing)

    t0 = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)

    def buy(n: int, tx: str) -> Purchase:
        return Purchase(
            event_id=f"p{n}",
            member_id="ann",
            occurred_at=t0 + dt.timedelta(hours=n),
            transaction_id=tx,
            amount=Decimal("10"),
        )

    try:
        engine = Engine(
            Program(name="P", earning=[PerUnit(name="base", points_per_unit=1)], auto_enroll=True),
            store,
            host=host,
        )
        engine.process(buy(0, "t0"))
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(postgres._Session, "run", counting)
            sent.clear()
            assert engine.process(buy(1, "t1")).points == 10
            assert len(sent) == 2, sent
            assert sent[0].count("EXECUTE") == 2  # the lock, and the purchase with it
            # a transaction id already recorded is found by the early read
            with pytest.raises(LedgerError, match="already recorded"):
                engine.process(buy(2, "t1"))
            # a refund names two: the purchase it refunds and its own id
            refund = Refund(
                event_id="r1",
                member_id="ann",
                occurred_at=t0 + dt.timedelta(hours=3),
                transaction_id="rt1",
                refund_of="t1",
                amount=Decimal("4"),
            )
            assert engine.process(refund).points == -4
            # its id is now used by a refund: a purchase under it is refused
            with pytest.raises(LedgerError, match="already used by a refund"):
                engine.process(buy(4, "rt1"))
    finally:
        store.close()
