"""SQLite pipelines: each event's fsync overlapping the next event's work (Engine.pipeline,
Engine.process_many, SQLiteStore.pipeline)."""

from __future__ import annotations

import time
from pathlib import Path
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

from loyaltykit import hookimpl
from loyaltykit.engine.memory import MemoryStore
from loyaltykit.engine.store import PipelinedStore
from loyaltykit.engine.stores import SQLiteStore
from loyaltykit.engine.stores import sqlite as sqlite_module
from loyaltykit.errors import InsufficientPointsError, StoreError


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = SQLiteStore(tmp_path / "ledger.db")
    s.migrate()
    yield s
    s.close()


def test_sqlite_store_is_a_pipelined_store_and_memory_store_is_not(store: SQLiteStore) -> None:
    assert isinstance(store, PipelinedStore)
    assert not isinstance(MemoryStore(), PipelinedStore)


@pytest.mark.parametrize("synchronous", ["full", "normal"])
def test_process_many_writes_what_a_loop_of_process_writes(
    tmp_path: Path, synchronous: str
) -> None:
    with SQLiteStore(tmp_path / "a.db", synchronous=synchronous) as piped:  # type: ignore[arg-type]
        assert_process_many_matches_a_loop(piped)


def test_every_writing_event_gets_its_own_fsync_and_replays_none(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[int] = []
    real_ask = sqlite_module._Syncer.ask

    def ask(self: Any) -> None:
        # at most one unit in flight: the previous fsync is answered before the next commit
        assert not self.busy
        asked.append(1)
        real_ask(self)

    monkeypatch.setattr(sqlite_module._Syncer, "ask", ask)
    engine = engine_on(store)
    engine.process_many(EVENTS)
    assert len(asked) == len(EVENTS)
    engine.process_many(EVENTS[:10])  # replays: read-only units, nothing to make durable
    assert len(asked) == len(EVENTS)


def test_a_pipeline_commits_with_synchronous_normal_and_restores_full(
    store: SQLiteStore,
) -> None:
    conn = store._conn()
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    with store.pipeline():
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    with pytest.raises(RuntimeError), store.pipeline():
        raise RuntimeError("boom")
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_hooks_fire_in_order_once_their_event_is_durable(
    store: SQLiteStore, tmp_path: Path
) -> None:
    probe = SQLiteStore(tmp_path / "ledger.db")
    fired = Fired(probe)
    engine = engine_on(store, fired)
    reference = Fired()
    engine_on(MemoryStore(), reference).process_many(EVENTS)
    earning = reference.calls
    asked: list[str] = []
    real_ask = sqlite_module._Syncer.ask
    current: list[str] = []

    def ask(self: Any) -> None:
        asked.append(current[-1])
        real_ask(self)

    early: list[str] = []

    class Durable:
        @hookimpl
        def loyaltykit_points_earned(self, member_id: str, entries: Any) -> None:
            # the fsync asked for this event has been answered when its hook fires
            syncer = store._local.syncer
            assert syncer is not None
            answered = len(asked) - syncer._asked
            if answered <= asked.index(entries[0].event_id):
                early.append(entries[0].event_id)

    engine._host.register(Durable(), name="durable")  # type: ignore[attr-defined]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sqlite_module._Syncer, "ask", ask)
        with engine.pipeline() as pipe:
            for event in EVENTS:
                current.append(event.event_id)
                pipe.process(event)
    probe.close()
    assert fired.calls == earning
    assert all(fired.visible)
    assert early == []


def test_hooks_of_the_events_before_a_failure_fire_and_the_failing_event_writes_nothing(
    store: SQLiteStore,
) -> None:
    fired = Fired()
    engine = engine_on(store, fired)
    with pytest.raises(InsufficientPointsError):
        engine.process_many(FAILING_STREAM)
    assert fired.calls == ["enrol", "buy"]
    assert store.get_event("buy") is not None
    assert store.get_event("greedy") is None
    assert store.get_event("after") is None
    assert store._conn().execute("PRAGMA synchronous").fetchone()[0] == 2


def ready(store: SQLiteStore) -> Any:
    """The thread's fsync helper of ``store``, once it says it is up."""
    syncer = store._syncer()
    deadline = time.monotonic() + 30
    while not syncer._is_ready():
        assert time.monotonic() < deadline, "the fsync helper did not start"
        time.sleep(0.005)
    return syncer


def test_units_are_fsynced_here_until_the_helper_is_up(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    here: list[int] = []
    real = sqlite_module._Syncer._fsync_here

    def fsync_here(self: Any) -> None:
        here.append(1)
        real(self)

    monkeypatch.setattr(sqlite_module._Syncer, "_fsync_here", fsync_here)
    # the helper takes a Python start; hold its readiness back so the test does not race it
    up = False
    real_ready = sqlite_module._Syncer._is_ready

    def is_ready(self: Any) -> bool:
        return up and real_ready(self)

    monkeypatch.setattr(sqlite_module._Syncer, "_is_ready", is_ready)
    engine = engine_on(store)
    with engine.pipeline() as pipe:
        pipe.process(EVENTS[0])
        assert here == [1]
        up = True
        syncer = ready(store)
        pipe.process(EVENTS[1])
        assert here == [1]
        assert syncer.busy  # its fsync is the helper's


def test_a_dead_fsync_helper_is_replaced_by_fsyncs_here(store: SQLiteStore) -> None:
    engine = engine_on(store)
    with engine.pipeline() as pipe:
        pipe.process(EVENTS[0])
        syncer = ready(store)
        pipe.process(EVENTS[1])
        assert syncer.busy
        # killed with an fsync asked for: the store fsyncs here, for it and after it
        syncer._proc.kill()
        syncer._proc.wait()
        pipe.process(EVENTS[2])
        assert not syncer.alive
        pipe.process(EVENTS[3])
    for event in EVENTS[:4]:
        assert store.get_event(event.event_id) is not None
    # the next pipeline starts a new helper
    engine.process_many(EVENTS[:10])
    assert store._local.syncer is not syncer
    assert store.get_event(EVENTS[9].event_id) is not None


def test_a_failed_fsync_is_reported_with_its_errno(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        sqlite_module,
        "_SYNC_CHILD",
        "import os\nos.write(1, b'r')\nwhile True:\n    n = len(os.read(0, 4096))\n"
        "    if not n: break\n    os.write(1, b'5;' * n)\n",
    )
    with SQLiteStore(tmp_path / "x.db") as s:
        s.migrate()
        engine = engine_on(s)
        engine.process_many(EVENTS[:1])  # (fsynced here: the helper is not up yet)
        ready(s)
        with pytest.raises(StoreError, match=r"fsync of the write-ahead log failed \(errno 5\)"):
            engine.process_many(EVENTS[1:4])
        # committed (the store does not hide it), but reported as not known durable
        assert s.get_event(EVENTS[1].event_id) is not None


def test_without_a_helper_process_units_stay_fsynced_at_commit(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module.sys, "executable", "/nonexistent/python")
    fired = Fired()
    engine = engine_on(store, fired)
    engine.process_many(EVENTS[:20])
    assert store._local.syncer is None
    assert len(fired.calls) > 0
    assert store._conn().execute("PRAGMA synchronous").fetchone()[0] == 2


def test_a_synchronous_normal_store_has_nothing_to_overlap(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "n.db", synchronous="normal") as s:
        s.migrate()
        fired = Fired()
        engine_on(s, fired).process_many(EVENTS[:20])
        assert s._local.syncer is None
        assert len(fired.calls) > 0


def test_pipelines_do_not_nest_or_open_inside_a_unit(store: SQLiteStore) -> None:
    with store.pipeline(), pytest.raises(StoreError, match="cannot open inside"):  # noqa: SIM117
        with store.pipeline():
            pass
    with store.unit("ann"), pytest.raises(StoreError, match="cannot open inside"):  # noqa: SIM117
        with store.pipeline():
            pass
    with store.pipeline(), pytest.raises(StoreError, match="cannot run inside"):
        store.migrate()


def test_close_stops_the_helper_process(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path / "c.db")
    s.migrate()
    engine_on(s).process_many(EVENTS[:5])
    syncer = s._local.syncer
    assert syncer is not None
    assert syncer._proc.poll() is None
    s.close()
    assert syncer._proc.poll() == 0


def test_two_handles_on_one_file_interleaving_with_a_pipeline_stay_correct(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shared.db"
    reference = MemoryStore()
    ref_engine = engine_on(reference)
    expected = [ref_engine.process(e).to_dict() for e in EVENTS]
    with SQLiteStore(path) as a, SQLiteStore(path) as b:
        a.migrate()
        ea, eb = engine_on(a), engine_on(b)
        got = []
        with ea.pipeline() as pipe:
            for i, event in enumerate(EVENTS):
                # every third event goes through the other handle, in the middle of the pipeline
                got.append((eb.process(event) if i % 3 == 2 else pipe.process(event)).to_dict())
        assert got == expected
        assert ledger(a, ea) == ledger(reference, ref_engine)
        assert ledger(b, eb) == ledger(reference, ref_engine)
