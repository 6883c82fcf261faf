"""The ledger state machine (``ledger_machine.py``) on the SQLite store, both debt policies.

Each run gets a fresh database file, removed when the run ends. ``synchronous="normal"`` keeps
the runs fast; durability is not what this test checks (the crash test does).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

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
