"""The SQLite store: the conformance suite, durability settings, migrations and bad paths."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from store_conformance import StoreConformance

from loyaltykit.engine.store import LedgerStore
from loyaltykit.engine.stores import SQLiteStore


class TestSQLiteStore(StoreConformance):
    """The conformance suite on one shared :class:`SQLiteStore` (a connection per thread)."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[LedgerStore]:
        s = SQLiteStore(tmp_path / "ledger.db")
        yield s
        s.close()


class TestSQLiteStoreOneHandlePerThread(StoreConformance):
    """The conformance suite with a separate store object per thread (as separate processes)."""

    threads_share_store = False

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[LedgerStore]:
        s = SQLiteStore(tmp_path / "ledger.db", synchronous="normal")
        yield s
        s.close()

    @pytest.fixture
    def store_factory(
        self, ready: LedgerStore, tmp_path: Path
    ) -> Iterator[Callable[[], LedgerStore]]:
        opened: list[SQLiteStore] = []

        def make() -> LedgerStore:
            s = SQLiteStore(tmp_path / "ledger.db", synchronous="normal")
            opened.append(s)
            return s

        yield make
        for s in opened:
            s.close()
