"""What the pipeline tests of every store share: the engine on a store (the program and the
valid event stream of ``sql_helpers``), a stream that fails half-way, a hook recorder and a
ledger snapshot."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sql_helpers import PROGRAM_TOML, make_events

from loyaltykit import hookimpl
from loyaltykit.engine import Adjust, Engine, Enroll, Event, Purchase, Redeem, program_from_toml
from loyaltykit.engine.memory import MemoryStore
from loyaltykit.plugins import PluginHost

EVENTS = make_events(8, 120, seed=7)
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
END = T0 + dt.timedelta(days=400)

# two good events, one that fails (more points than the member has), one that never runs
FAILING_STREAM: list[Event] = [
    Enroll(event_id="enrol", member_id="ann", occurred_at=T0),
    Purchase(
        event_id="buy",
        member_id="ann",
        occurred_at=T0 + dt.timedelta(hours=1),
        transaction_id="t1",
        amount=Decimal("20"),
    ),
    Redeem(
        event_id="greedy", member_id="ann", occurred_at=T0 + dt.timedelta(hours=2), points=10**6
    ),
    Adjust(
        event_id="after",
        member_id="ann",
        occurred_at=T0 + dt.timedelta(hours=3),
        points=1,
        reason="x",
    ),
]


class Fired:
    """Records each earn hook with whether its event was already durable and visible."""

    def __init__(self, probe: Any = None) -> None:
        self.calls: list[str] = []
        self.probe = probe
        self.visible: list[bool] = []

    @hookimpl
    def loyaltykit_points_earned(self, member_id: str, entries: Any) -> None:
        event_id = entries[0].event_id
        self.calls.append(event_id)
        if self.probe is not None:
            self.visible.append(self.probe.get_event(event_id) is not None)


def engine_on(store: Any, *plugins: object) -> Engine:
    host = PluginHost(load_entrypoints=False, blocked=frozenset())
    for i, plugin in enumerate(plugins):
        host.register(plugin, name=f"p{i}")
    return Engine(program_from_toml(PROGRAM_TOML, host=host), store, host=host)


def ledger(store: Any, engine: Engine) -> dict[str, Any]:
    return {
        m: (
            engine.balance(m, END).total,
            [(e.id, e.kind, e.points) for e in store.entries(m)],
            store.get_member(m),
        )
        for m in store.member_ids()
    }


def assert_process_many_matches_a_loop(store: Any) -> None:
    """``process_many`` on ``store`` answers and writes what a loop of ``process`` on a memory
    store does; processing the events again replays every one and writes nothing."""
    reference = MemoryStore()
    ref_engine = engine_on(reference)
    expected = [ref_engine.process(e).to_dict() for e in EVENTS]
    engine = engine_on(store)
    assert [o.to_dict() for o in engine.process_many(EVENTS)] == expected
    assert ledger(store, engine) == ledger(reference, ref_engine)
    again = engine.process_many(EVENTS)
    assert all(o.replayed for o in again)
    assert ledger(store, engine) == ledger(reference, ref_engine)
