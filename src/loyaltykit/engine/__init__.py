"""The online program engine: a points ledger with tiers, rewards, expiry, refunds and
idempotency, on pluggable stores.

* :mod:`loyaltykit.engine.store` - the :class:`LedgerStore` protocol every store implements;
* :mod:`loyaltykit.engine.memory` - :class:`MemoryStore`, the in-memory reference store.
"""

from loyaltykit.engine.memory import MemoryStore
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

__all__ = [
    "Activity",
    "ActivityTotals",
    "Batch",
    "EventExistsError",
    "EventRecord",
    "LedgerStore",
    "MemberState",
    "MemoryStore",
    "PurchaseRecord",
    "StoreUnit",
    "fingerprint",
]
