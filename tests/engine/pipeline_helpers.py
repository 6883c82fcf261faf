"""What the pipeline tests of every store share: a program, a stream of events the engine
accepts, a hook recorder and a ledger snapshot."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

from loyaltykit import hookimpl
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
from loyaltykit.plugins import PluginHost

PROGRAM = """
[program]
name = "Pipeline Club"
currency = "USD"

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
threshold = 500
"""

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def make_events(members: int, count: int, seed: int) -> list[Event]:
    """Enrolments, then purchases, partial refunds, redemptions and adjustments that the
    engine accepts (a lower bound of each member's points covers every spend)."""
    rng = random.Random(seed)
    out: list[Event] = []
    low: dict[str, int] = {}
    bought: dict[str, list[tuple[str, Decimal]]] = {}
    for i in range(members):
        mid = f"m{i}"
        out.append(Enroll(event_id=f"enroll-{mid}", member_id=mid, occurred_at=T0))
        low[mid] = 50
        bought[mid] = []
    for k in range(count):
        at = T0 + dt.timedelta(hours=k + 1)
        mid = f"m{rng.randrange(members)}"
        roll = rng.random()
        if roll < 0.1 and bought[mid]:
            tx, left = bought[mid].pop()
            part = (left / 2).quantize(Decimal("0.01"))
            out.append(
                Refund(
                    event_id=f"e{k}",
                    member_id=mid,
                    occurred_at=at,
                    transaction_id=f"r{k}",
                    refund_of=tx,
                    amount=part,
                )
            )
            low[mid] -= int(part) + 2
        elif roll < 0.25 and low[mid] >= 30:
            points = rng.randrange(1, low[mid] // 3)
            out.append(Redeem(event_id=f"e{k}", member_id=mid, occurred_at=at, points=points))
            low[mid] -= points
        elif roll < 0.3:
            out.append(
                Adjust(event_id=f"e{k}", member_id=mid, occurred_at=at, points=3, reason="x")
            )
            low[mid] += 3
        else:
            amount = Decimal(rng.randrange(100, 20000)) / 100
            out.append(
                Purchase(
                    event_id=f"e{k}",
                    member_id=mid,
                    occurred_at=at,
                    transaction_id=f"t{k}",
                    amount=amount,
                )
            )
            bought[mid].append((f"t{k}", amount))
            low[mid] += int(amount) - 1
    return out


EVENTS = make_events(8, 120, seed=7)
END = T0 + dt.timedelta(days=400)


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
    return Engine(program_from_toml(PROGRAM, host=host), store, host=host)


def ledger(store: Any, engine: Engine) -> dict[str, Any]:
    return {
        m: (
            engine.balance(m, END).total,
            [(e.id, e.kind, e.points) for e in store.entries(m)],
            store.get_member(m),
        )
        for m in store.member_ids()
    }
