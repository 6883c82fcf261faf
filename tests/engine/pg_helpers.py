"""PostgreSQL test helpers: the server URL from the environment and a schema per test."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest

URL_ENV = "LOYALTYKIT_TEST_POSTGRES_URL"


def pg_url() -> str:
    """The test server's URL, or skip the test with the reason."""
    url = os.environ.get(URL_ENV)
    if not url:
        pytest.skip(
            f"{URL_ENV} is not set; set it to a PostgreSQL URL such as "
            "postgresql+psycopg://postgres@127.0.0.1:5432/test to run the PostgreSQL tests"
        )
    pytest.importorskip("sqlalchemy", reason="the PostgreSQL store needs the 'postgres' extra")
    pytest.importorskip("psycopg", reason="the PostgreSQL store needs the 'postgres' extra")
    return url


def drop_schema(name: str) -> None:
    """Drop a test schema and everything in it."""
    import sqlalchemy as sa

    from loyaltykit.engine.stores.postgres import _with_psycopg

    engine = sa.create_engine(_with_psycopg(pg_url()))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    finally:
        engine.dispose()


@contextlib.contextmanager
def fresh_schema() -> Iterator[str]:
    """A fresh schema name for one test (created by the store's migrate), dropped afterwards.

    Test modules wrap it in their own ``pg_schema`` fixture.
    """
    pg_url()
    name = f"lk_test_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        drop_schema(name)
