"""Hypothesis strategies for the BTYD model tests: extreme but valid customers and parameters."""

from __future__ import annotations

import polars as pl
from hypothesis import strategies as st

positive = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False, allow_infinity=False)
"""A model parameter anywhere from near its lower bound to very large."""

moderate = st.floats(min_value=0.05, max_value=50.0, allow_nan=False, allow_infinity=False)
"""A parameter in the range real fits produce."""


@st.composite
def customer(
    draw: st.DrawFn, max_frequency: int = 5000, max_t: float = 1e4
) -> tuple[int, float, float]:
    """``(frequency, recency, T)``: heavy buyers, long histories, recency at 0 or at T."""
    T = draw(st.floats(min_value=1e-2, max_value=max_t, allow_nan=False))
    x = draw(st.integers(min_value=0, max_value=max_frequency))
    if x == 0:
        return 0, 0.0, T
    share = draw(st.one_of(st.just(0.0), st.just(1.0), st.floats(min_value=0.0, max_value=1.0)))
    return x, share * T, T


@st.composite
def summaries(draw: st.DrawFn, max_frequency: int = 5000) -> pl.DataFrame:
    """A small per-customer summary frame with frequency, recency and T."""
    rows = draw(st.lists(customer(max_frequency=max_frequency), min_size=1, max_size=8))
    return pl.DataFrame(
        {
            "frequency": [r[0] for r in rows],
            "recency": [r[1] for r in rows],
            "T": [r[2] for r in rows],
        }
    )
