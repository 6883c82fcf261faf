"""Durable ledger stores: SQLite (embedded, stdlib only) and PostgreSQL (the ``postgres`` extra).

Both implement :class:`~loyaltykit.engine.store.LedgerStore` and pass the same conformance suite
as the in-memory :class:`~loyaltykit.engine.memory.MemoryStore`. :func:`open_store` picks one from
what you have: a file path, a URL, or an application's SQLAlchemy engine.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from loyaltykit.engine.memory import MemoryStore
from loyaltykit.engine.store import LedgerStore
from loyaltykit.engine.stores.sqlite import SQLiteStore
from loyaltykit.errors import StoreError

if TYPE_CHECKING:
    from loyaltykit.engine.stores.postgres import PostgresStore

__all__ = ["PostgresStore", "SQLiteStore", "open_store"]

_POSTGRES_SCHEMES = ("postgresql", "postgres")


def open_store(target: Any, *, migrate: bool = True) -> LedgerStore:
    """Open the store that ``target`` names, and (by default) create or upgrade its schema.

    :param target: one of

        * a path (``str`` or :class:`os.PathLike`), or a ``sqlite:///path`` URL: a
          :class:`SQLiteStore` on that file, created if missing;
        * a ``postgresql://`` / ``postgresql+psycopg://`` URL: a :class:`PostgresStore` (needs
          the ``postgres`` extra); plain ``postgresql://`` uses the psycopg 3 driver;
        * a SQLAlchemy :class:`~sqlalchemy.engine.Engine` on PostgreSQL: a :class:`PostgresStore`
          that borrows the application's connection pool;
        * ``":memory:"``: a :class:`~loyaltykit.engine.memory.MemoryStore`;
        * a store already (returned as is).
    :param migrate: call :meth:`~loyaltykit.engine.store.LedgerStore.migrate` before returning.
    :raises StoreError: the target is not understood, cannot be opened, or holds a schema newer
        than this loyaltykit.
    """
    store = _open(target)
    if migrate:
        try:
            store.migrate()
        except BaseException:
            if store is not target:
                store.close()
            raise
    return store


def _open(target: Any) -> LedgerStore:
    if isinstance(target, LedgerStore):
        return target
    if isinstance(target, os.PathLike):
        return SQLiteStore(target)
    if isinstance(target, str):
        text = target.strip()
        if text == ":memory:":
            return MemoryStore()
        scheme, sep, rest = text.partition("://")
        if not sep:
            return SQLiteStore(text)
        scheme = scheme.lower()
        if scheme == "sqlite":
            # sqlite:///relative.db and sqlite:////absolute.db, as SQLAlchemy spells them
            path = rest[1:] if rest.startswith("/") else rest
            if not path:
                raise StoreError(
                    f"store URL {target!r} names no file; write sqlite:///ledger.db (relative) "
                    "or sqlite:////var/lib/ledger.db (absolute)"
                )
            return SQLiteStore(path)
        if scheme.split("+")[0] in _POSTGRES_SCHEMES:
            from loyaltykit.engine.stores.postgres import PostgresStore

            return PostgresStore(text)
        raise StoreError(
            f"store URL {_hide_password(text)!r}: unknown scheme {scheme!r}; use a file path, "
            "sqlite:///path, postgresql://user@host/db or postgresql+psycopg://..."
        )
    if _is_sqlalchemy_engine(target):
        from loyaltykit.engine.stores.postgres import PostgresStore

        return PostgresStore(target)
    raise StoreError(
        f"cannot open a ledger store from {type(target).__name__} {target!r}; pass a file path, "
        "a postgresql:// URL, a SQLAlchemy Engine or a LedgerStore"
    )


def _is_sqlalchemy_engine(target: Any) -> bool:
    # without importing SQLAlchemy (an optional extra); subclasses such as OptionEngine count
    return any(
        cls.__module__.startswith("sqlalchemy") and cls.__name__ == "Engine"
        for cls in type(target).__mro__
    )


def _hide_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not (sep and at) or ":" not in creds:
        return url
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"


def __getattr__(name: str) -> Any:
    # PostgresStore needs the 'postgres' extra: import it only when asked for
    if name == "PostgresStore":
        from loyaltykit.engine.stores.postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
