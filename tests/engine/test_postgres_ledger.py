"""The ledger state machine (``ledger_machine.py``) on the PostgreSQL store, both debt policies.

Needs ``LOYALTYKIT_TEST_POSTGRES_URL``. Each run works in a fresh schema, dropped when the run
ends. PostgreSQL round trips make each step slower than on SQLite, so the runs are fewer and
shorter than the profile's default (the SQLite and memory runs cover the breadth).
"""

from __future__ import annotations

import uuid

import pytest
from hypothesis import settings
from ledger_machine import ledger_machine
from sql_helpers import drop_schema, pg_url

pytestmark = pytest.mark.postgres


def _store() -> object:
    from loyaltykit.engine.stores.postgres import PostgresStore

    schema = f"lk_machine_{uuid.uuid4().hex[:12]}"

    class _TempSchemaStore(PostgresStore):
        def close(self) -> None:
            super().close()
            drop_schema(schema)

    return _TempSchemaStore(pg_url(), schema=schema)


_FEWER = settings(max_examples=8, stateful_step_count=25, deadline=None)

TestPostgresLedgerDebt = ledger_machine(_store, "debt").TestCase  # type: ignore[arg-type]
TestPostgresLedgerDebt.settings = _FEWER
TestPostgresLedgerClamp = ledger_machine(_store, "clamp").TestCase  # type: ignore[arg-type]
TestPostgresLedgerClamp.settings = _FEWER
