"""The ledger state machine (``ledger_machine.py``) on the SQLite store, both debt policies.

Each run gets a fresh database file, removed when the run ends. ``synchronous="normal"`` keeps
the runs fast; durability is not what this test checks (the crash test does).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from ledger_machine import ledger_machine

from loyaltykit.engine.stores import SQLiteStore


class _TempSQLiteStore(SQLiteStore):
    """A SQLite store in a temporary folder that disappears with :meth:`close`."""

    def __init__(self) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="lk-machine-"))
        super().__init__(self._folder / "ledger.db", synchronous="normal")

    def close(self) -> None:
        super().close()
        shutil.rmtree(self._folder, ignore_errors=True)


TestSQLiteLedgerDebt = ledger_machine(_TempSQLiteStore, "debt").TestCase
TestSQLiteLedgerClamp = ledger_machine(_TempSQLiteStore, "clamp").TestCase


class _TwoHandles:
    """Two :class:`SQLiteStore` objects on one file, used in turn, as two processes would: every
    unit and read goes to the other handle than the last, so each handle's read cache must notice
    the other's commits (``PRAGMA data_version``) and never serve what it missed."""

    def __init__(self) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="lk-machine-"))
        path = self._folder / "ledger.db"
        self._handles = (
            SQLiteStore(path, synchronous="normal"),
            SQLiteStore(path, synchronous="normal"),
        )
        self._turn = 0

    def _next(self) -> SQLiteStore:
        self._turn ^= 1
        return self._handles[self._turn]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._next(), name)

    def close(self) -> None:
        for handle in self._handles:
            handle.close()
        shutil.rmtree(self._folder, ignore_errors=True)


TestSQLiteLedgerTwoHandles = ledger_machine(_TwoHandles, "debt").TestCase


class _TempDurableSQLiteStore(SQLiteStore):
    """Like :class:`_TempSQLiteStore`, with ``synchronous="full"``: what pipelines overlap."""

    def __init__(self) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="lk-machine-"))
        super().__init__(self._folder / "ledger.db")

    def close(self) -> None:
        super().close()
        shutil.rmtree(self._folder, ignore_errors=True)


# every event through one pipeline per run: each event's fsync overlapping the next event
TestSQLiteLedgerPipelined = ledger_machine(_TempDurableSQLiteStore, "debt", pipelined=True).TestCase
