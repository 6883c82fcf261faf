"""Hypothesis strategies of transaction frames in the core schema (shared by the analytics tests)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
from hypothesis import strategies as st

from loyaltykit.schema import TRANSACTION_SCHEMA

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
END = dt.date(2024, 3, 31)
"""Observation end used with :func:`transactions`: every generated purchase is on or before it."""

_row = st.tuples(
    st.sampled_from([f"c{i}" for i in range(8)]),
    st.integers(
        min_value=0, max_value=90 * 24 * 60 - 1
    ),  # minutes after START, inside [START, END]
    st.integers(min_value=0, max_value=50_000),  # cents
)


@st.composite
def transactions(draw: st.DrawFn, *, max_rows: int = 40, refunds: bool = True) -> pl.DataFrame:
    """A transaction frame: purchases of up to 8 customers within 90 days, some refunded."""
    rows = draw(st.lists(_row, min_size=0, max_size=max_rows))
    records: list[dict[str, object]] = []
    for i, (customer, minutes, cents) in enumerate(rows):
        records.append(
            {
                "transaction_id": f"t{i}",
                "customer_id": customer,
                "occurred_at": START + dt.timedelta(minutes=minutes),
                "amount": Decimal(cents).scaleb(-2),
                "currency": "EUR",
                "kind": "purchase",
                "refund_of": None,
                "channel": draw(st.sampled_from(["web", "store", None])),
                "category": None,
                "quantity": 1,
            }
        )
    if refunds and records:
        refunded = draw(st.lists(st.integers(0, len(records) - 1), unique=True, max_size=5))
        for j, index in enumerate(refunded):
            purchase = records[index]
            cents = int(Decimal(str(purchase["amount"])) * 100)
            part = draw(st.integers(min_value=0, max_value=cents))
            records.append(
                {
                    "transaction_id": f"r{j}",
                    "customer_id": purchase["customer_id"],
                    "occurred_at": purchase["occurred_at"],
                    "amount": Decimal(part).scaleb(-2),
                    "currency": "EUR",
                    "kind": "refund",
                    "refund_of": purchase["transaction_id"],
                    "channel": None,
                    "category": None,
                    "quantity": 1,
                }
            )
    return pl.DataFrame(records, schema=TRANSACTION_SCHEMA)


def make_tx(
    rows: list[tuple[str, str, str, str]], refunds: list[tuple[str, str, str]] = ()
) -> pl.DataFrame:  # type: ignore[assignment]
    """Transactions from ``(customer, ISO day or datetime, amount, channel)`` purchase rows and
    ``(purchase index, ISO time, amount)`` refunds; timestamps in UTC."""
    records: list[dict[str, object]] = []
    for i, (customer, when, amount, channel) in enumerate(rows):
        records.append(
            {
                "transaction_id": f"t{i}",
                "customer_id": customer,
                "occurred_at": dt.datetime.fromisoformat(when).replace(tzinfo=dt.UTC),
                "amount": Decimal(amount),
                "currency": "EUR",
                "kind": "purchase",
                "refund_of": None,
                "channel": channel,
                "category": None,
                "quantity": 1,
            }
        )
    for j, (index, when, amount) in enumerate(refunds):
        records.append(
            {
                "transaction_id": f"r{j}",
                "customer_id": rows[int(index)][0],
                "occurred_at": dt.datetime.fromisoformat(when).replace(tzinfo=dt.UTC),
                "amount": Decimal(amount),
                "currency": "EUR",
                "kind": "refund",
                "refund_of": f"t{index}",
                "channel": None,
                "category": None,
                "quantity": 1,
            }
        )
    return pl.DataFrame(records, schema=TRANSACTION_SCHEMA)
