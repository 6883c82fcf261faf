"""The PostgreSQL store: the conformance suite, migrations, borrowed engines and bad URLs.

Needs a server: set ``LOYALTYKIT_TEST_POSTGRES_URL`` (for example
``postgresql+psycopg://postgres@127.0.0.1:5432/test``). Every test works in a schema of its own,
dropped afterwards, so runs do not interfere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from pg_helpers import fresh_schema, pg_url
from store_conformance import StoreConformance

from loyaltykit.engine.store import LedgerStore

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A schema of its own for each test."""
    with fresh_schema() as name:
        yield name


class TestPostgresStore(StoreConformance):
    """The conformance suite on one shared :class:`PostgresStore` (pooled connections)."""

    @pytest.fixture
    def store(self, pg_schema: str) -> Iterator[LedgerStore]:
        from loyaltykit.engine.stores.postgres import PostgresStore

        s = PostgresStore(pg_url(), schema=pg_schema)
        yield s
        s.close()


class TestPostgresStoreOneHandlePerThread(StoreConformance):
    """The conformance suite with a store (and pool) per thread, as separate processes have."""

    threads_share_store = False

    @pytest.fixture
    def store(self, pg_schema: str) -> Iterator[LedgerStore]:
        from loyaltykit.engine.stores.postgres import PostgresStore

        s = PostgresStore(pg_url(), schema=pg_schema)
        yield s
        s.close()

    @pytest.fixture
    def store_factory(
        self, ready: LedgerStore, pg_schema: str
    ) -> Iterator[Callable[[], LedgerStore]]:
        from loyaltykit.engine.stores.postgres import PostgresStore

        opened: list[PostgresStore] = []

        def make() -> LedgerStore:
            s = PostgresStore(pg_url(), schema=pg_schema)
            opened.append(s)
            return s

        yield make
        for s in opened:
            s.close()
