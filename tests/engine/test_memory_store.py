"""The in-memory store passes the store conformance suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from store_conformance import StoreConformance

from loyaltykit.engine.memory import MemoryStore
from loyaltykit.engine.store import LedgerStore


class TestMemoryStore(StoreConformance):
    """Runs the conformance suite on :class:`MemoryStore`."""

    @pytest.fixture
    def store(self) -> Iterator[LedgerStore]:
        s = MemoryStore()
        yield s
        s.close()
