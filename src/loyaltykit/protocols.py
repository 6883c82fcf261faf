"""What a plugin's factories must build, as typing protocols.

A plugin registers factories (classes or callables) through the registration hooks of
:mod:`loyaltykit.hookspecs`; what they build must satisfy the protocol of its kind.
"""

from __future__ import annotations

from typing import Protocol, Self, TypeVar, runtime_checkable

import polars as pl

__all__ = ["FrameT", "ScoringModel"]

FrameT = TypeVar("FrameT", pl.DataFrame, pl.LazyFrame)
"""A polars frame, eager or lazy; functions return the same kind they were given."""


@runtime_checkable
class ScoringModel(Protocol):
    """A model that learns from customer data and scores customers.

    ``fit`` learns (quantile edges for RFM, parameters for a BTYD model) and returns ``self``;
    ``score`` adds the model's columns to a frame of customers, keeping its rows and order.
    """

    def fit(self, frame: pl.DataFrame | pl.LazyFrame) -> Self:
        """Learn from ``frame``; return ``self``."""
        ...

    def score(self, frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame | pl.LazyFrame:
        """Return ``frame`` with the model's score columns added, same kind as given."""
        ...
