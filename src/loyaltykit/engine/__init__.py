"""The online program engine: a points ledger with tiers, rewards, expiry, refunds and
idempotency, on pluggable stores.

* :mod:`loyaltykit.engine.engine` - :class:`Engine`, outcomes, balances and statements;
* :mod:`loyaltykit.engine.events` - the typed events and their JSON-lines form;
* :mod:`loyaltykit.engine.rules` - built-in earning rules (per event and as polars expressions);
* :mod:`loyaltykit.engine.tiers` - built-in tier rules and the tier logic;
* :mod:`loyaltykit.engine.config` - loading programs from TOML;
* :mod:`loyaltykit.engine.store` - the :class:`LedgerStore` protocol every store implements;
* :mod:`loyaltykit.engine.memory` - :class:`MemoryStore`, the in-memory reference store.
"""

from loyaltykit.engine.config import load_program, program_from_dict, program_from_toml
from loyaltykit.engine.engine import (
    Balance,
    Engine,
    EventPipeline,
    ExpiryReport,
    Outcome,
    RetierReport,
    Statement,
    StatementLine,
)
from loyaltykit.engine.events import (
    Adjust,
    AssignTier,
    Enroll,
    Event,
    EventError,
    Purchase,
    Redeem,
    Refund,
    event_from_json,
    parse_event,
    read_events,
)
from loyaltykit.engine.memory import MemoryStore
from loyaltykit.engine.rules import (
    BirthdayBonus,
    Campaign,
    PerUnit,
    ReferralBonus,
    TierMultiplier,
    WelcomeBonus,
)
from loyaltykit.engine.store import (
    Activity,
    ActivityTotals,
    Batch,
    EventExistsError,
    EventRecord,
    LedgerStore,
    MemberState,
    PurchaseRecord,
    StoreUnit,
    fingerprint,
)
from loyaltykit.engine.tiers import WindowedMetric

__all__ = [
    "Activity",
    "ActivityTotals",
    "Adjust",
    "AssignTier",
    "Balance",
    "Batch",
    "BirthdayBonus",
    "Campaign",
    "Engine",
    "Enroll",
    "Event",
    "EventError",
    "EventExistsError",
    "EventPipeline",
    "EventRecord",
    "ExpiryReport",
    "LedgerStore",
    "MemberState",
    "MemoryStore",
    "Outcome",
    "PerUnit",
    "Purchase",
    "PurchaseRecord",
    "Redeem",
    "ReferralBonus",
    "Refund",
    "RetierReport",
    "Statement",
    "StatementLine",
    "StoreUnit",
    "TierMultiplier",
    "WelcomeBonus",
    "WindowedMetric",
    "event_from_json",
    "fingerprint",
    "load_program",
    "parse_event",
    "program_from_dict",
    "program_from_toml",
    "read_events",
]
