"""PostgreSQL pipelines: each unit's COMMIT overlapping the next unit's work
(PostgresStore.pipeline, through Engine.pipeline and Engine.process_many).

Needs a server: set ``LOYALTYKIT_TEST_POSTGRES_URL``; every test works in a schema of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pipeline_helpers import (
    EVENTS,
    FAILING_STREAM,
    Fired,
    assert_process_many_matches_a_loop,
    engine_on,
    ledger,
)
from sql_helpers import fresh_schema, pg_url

from loyaltykit import hookimpl
from loyaltykit.engine.memory import MemoryStore
from loyaltykit.engine.store import PipelinedStore
from loyaltykit.errors import InsufficientPointsError, StoreError


@pytest.fixture
def pg_schema() -> Iterator[str]:
    with fresh_schema() as name:
        yield name


@pytest.fixture
def store(pg_schema: str) -> Iterator[Any]:
    from loyaltykit.engine.stores.postgres import PostgresStore

    s = PostgresStore(pg_url(), schema=pg_schema)
    s.migrate()
    yield s
    s.close()


def other(pg_schema: str) -> Any:
    """Another store object on the same schema: another process, as far as the data goes."""
    from loyaltykit.engine.stores.postgres import PostgresStore

    return PostgresStore(pg_url(), schema=pg_schema)


def test_postgres_store_is_a_pipelined_store(store: Any) -> None:
    assert isinstance(store, PipelinedStore)


def test_process_many_writes_what_a_loop_of_process_writes(store: Any) -> None:
    assert_process_many_matches_a_loop(store)


def test_one_commit_in_flight_and_each_answered_before_the_next_is_sent(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loyaltykit.engine.stores import postgres

    sent: list[str] = []
    real_send = postgres._Session.send

    def send(self: Any, sql: str) -> None:
        if sql == "COMMIT":
            pipe = store._local.pipeline
            assert pipe is not None
            assert pipe._flight is None  # the previous COMMIT was answered
            sent.append(sql)
        real_send(self, sql)

    monkeypatch.setattr(postgres._Session, "send", send)
    engine_on(store).process_many(EVENTS)
    assert len(sent) == len(EVENTS)  # every event wrote, and committed on its own
    assert store._local.pipeline is None


def test_hooks_fire_in_order_once_their_commit_is_answered(store: Any, pg_schema: str) -> None:
    probe = other(pg_schema)
    fired = Fired(probe)
    reference = Fired()
    engine_on(MemoryStore(), reference).process_many(EVENTS)
    engine = engine_on(store, fired)
    early: list[str] = []

    class Answered:
        @hookimpl
        def loyaltykit_points_earned(self, member_id: str, entries: Any) -> None:
            # committed (visible to another connection) when its hook fires
            if probe.get_event(entries[0].event_id) is None:
                early.append(entries[0].event_id)

    engine._host.register(Answered(), name="answered")  # type: ignore[attr-defined]
    engine.process_many(EVENTS)
    probe.close()
    assert fired.calls == reference.calls
    assert all(fired.visible)
    assert early == []


def test_reads_in_a_pipeline_see_the_unit_in_flight(store: Any) -> None:
    engine = engine_on(store)
    with engine.pipeline() as pipe:
        for event in EVENTS[:30]:
            pipe.process(event)
            assert store.get_event(event.event_id) is not None


def test_a_duplicate_in_the_stream_is_a_replay(store: Any) -> None:
    engine = engine_on(store)
    first, second = EVENTS[0], EVENTS[1]
    outcomes = engine.process_many([first, second, second, first])
    assert [o.replayed for o in outcomes] == [False, False, True, True]


def test_a_failing_event_stops_the_stream_after_the_events_before_it(store: Any) -> None:
    fired = Fired()
    engine = engine_on(store, fired)
    with pytest.raises(InsufficientPointsError):
        engine.process_many(FAILING_STREAM)
    assert fired.calls == ["enrol", "buy"]
    assert store.get_event("buy") is not None
    assert store.get_event("greedy") is None
    assert store.get_event("after") is None


def test_a_lost_commit_answer_is_reported_and_the_caches_are_dropped(
    store: Any, pg_schema: str
) -> None:
    engine = engine_on(store)
    engine.process_many(EVENTS[:20])
    assert len(store._state_cache) > 0

    def run() -> None:
        with engine.pipeline() as pipe:
            pipe.process(EVENTS[20])
            flight = store._local.pipeline._flight
            assert flight is not None
            # the connection breaks with the COMMIT on its way
            flight[1].conn.pgconn.finish()

    with pytest.raises(StoreError, match="COMMIT of the last unit failed"):
        run()
    assert len(store._state_cache) == 0
    # the next stream goes on (a new connection from the pool); the event in doubt is
    # processed again: applied if its COMMIT never arrived, replayed if it did
    engine.process_many(EVENTS[20:40])
    reference = MemoryStore()
    ref_engine = engine_on(reference)
    ref_engine.process_many(EVENTS[:40])
    assert ledger(store, engine) == ledger(reference, ref_engine)


def test_two_stores_on_one_schema_interleaving_with_a_pipeline_stay_correct(
    store: Any, pg_schema: str
) -> None:
    reference = MemoryStore()
    ref_engine = engine_on(reference)
    expected = [ref_engine.process(e).to_dict() for e in EVENTS]
    second = other(pg_schema)
    ea, eb = engine_on(store), engine_on(second)
    got = []
    with ea.pipeline() as pipe:
        for i, event in enumerate(EVENTS):
            got.append((eb.process(event) if i % 3 == 2 else pipe.process(event)).to_dict())
    assert got == expected
    assert ledger(store, ea) == ledger(reference, ref_engine)
    second.close()


def test_pipelines_do_not_nest(store: Any) -> None:
    with store.pipeline(), pytest.raises(StoreError, match="cannot open inside"):  # noqa: SIM117
        with store.pipeline():
            pass
