"""Column names and types of the frames loyaltykit reads and writes.

Bulk data travel as polars frames in these schemas. :mod:`loyaltykit.io` reads and validates raw
input into them; the analytics, the models and the simulator accept them.

Money columns are :class:`polars.Decimal` (exact); timestamps are timezone-aware
``Datetime("us", "UTC")``.
"""

from __future__ import annotations

from typing import Final

import polars as pl

__all__ = [
    "AMOUNT_DTYPE",
    "FEEDBACK_SCHEMA",
    "INTERACTION_SCHEMA",
    "TIMESTAMP_DTYPE",
    "TRANSACTION_SCHEMA",
]

TIMESTAMP_DTYPE: Final = pl.Datetime("us", "UTC")
"""Timestamps: microseconds, UTC."""

AMOUNT_DTYPE: Final = pl.Decimal(18, 2)
"""Money: exact decimal with two places (cents)."""

TRANSACTION_SCHEMA: Final = pl.Schema(
    {
        "transaction_id": pl.String(),
        "customer_id": pl.String(),
        "occurred_at": TIMESTAMP_DTYPE,
        "amount": AMOUNT_DTYPE,
        "currency": pl.String(),
        "kind": pl.String(),  # "purchase" or "refund"
        "refund_of": pl.String(),  # null for purchases
        "channel": pl.String(),
        "category": pl.String(),
        "quantity": pl.Int64(),
    }
)
"""Transactions: one row per purchase or refund. Refund amounts are positive; ``kind`` says
the direction and ``refund_of`` names the purchase."""

FEEDBACK_SCHEMA: Final = pl.Schema(
    {
        "customer_id": pl.String(),
        "answered_at": TIMESTAMP_DTYPE,
        "nps": pl.Int8(),  # 0-10 or null
        "csat": pl.Int8(),  # 1-5 or null
        "comment": pl.String(),
        "channel": pl.String(),
    }
)
"""Survey answers: NPS 0-10 and/or CSAT 1-5."""

INTERACTION_SCHEMA: Final = pl.Schema(
    {
        "customer_id": pl.String(),
        "occurred_at": TIMESTAMP_DTYPE,
        "channel": pl.String(),
        "type": pl.String(),
    }
)
"""Touchpoints: visits, e-mails, support calls, complaints ..."""
