"""Bundled reference data and a synthetic generator of transaction histories.

The reference data sets are public and kept with their attribution in
``loyaltykit/datasets/data/ATTRIBUTION.md``:

* CDNOW (Fader, Hardie & Lee 2005): the full purchase log of 23,570 customers and the 1/10
  sample with its published calibration summary;
* the donations data of Fader, Hardie & Shang (2010), input of the BG/BB model;
* the retention curves of Fader & Hardie (2007), input of the sBG model.

Nothing is downloaded: every loader reads files shipped inside the package.
"""

from __future__ import annotations

import datetime as dt
from importlib import resources
from pathlib import Path
from typing import Literal

import polars as pl

from loyaltykit.datasets.synthetic import SyntheticData, SyntheticParams, generate
from loyaltykit.schema import AMOUNT_DTYPE, TIMESTAMP_DTYPE, TRANSACTION_SCHEMA

__all__ = [
    "CDNOW_CALIBRATION_END",
    "CDNOW_OBSERVATION_END",
    "SyntheticData",
    "SyntheticParams",
    "data_path",
    "generate",
    "load_cdnow",
    "load_cdnow_summary",
    "load_donations",
    "load_sbg_retention",
]

CDNOW_CALIBRATION_END = dt.datetime(1997, 9, 30, tzinfo=dt.UTC)
"""End of the 39-week calibration period used by Fader, Hardie & Lee (2005)."""

CDNOW_OBSERVATION_END = dt.datetime(1998, 6, 30, tzinfo=dt.UTC)
"""Last day of the CDNOW observation window (end of the 39-week holdout)."""


def data_path(name: str) -> Path:
    """Path of a bundled data file, e.g. ``data_path("CDNOW_master.txt")``."""
    path = resources.files("loyaltykit.datasets").joinpath("data", name)
    return Path(str(path))


def _read_whitespace_table(path: Path, names: list[str]) -> pl.DataFrame:
    lines = pl.read_csv(
        path, has_header=False, new_columns=["line"], separator="\x1f", quote_char=None
    )
    parts = pl.col("line").str.strip_chars().str.split_exact(" ", len(names) - 1)
    frame = lines.with_columns(pl.col("line").str.strip_chars().str.replace_all(r"\s+", " "))
    frame = frame.select(parts.struct.rename_fields(names)).unnest("line")
    return frame.filter(pl.col(names[0]).str.contains(r"^\d+$"))  # drop a header row


def load_cdnow(*, sample: bool = False) -> pl.DataFrame:
    """The CDNOW purchase log in the core transaction schema.

    :param sample: ``False`` (default) for the full log (69,659 transactions of 23,570 customers,
        1997-01-01 to 1998-06-30); ``True`` for the 1/10 sample of Fader, Hardie & Lee (2005)
        (6,919 transactions of 2,357 customers), which carries an extra ``sample_id`` column
        (the ``ID`` of the published summary).
    :returns: an eager frame with the columns of :data:`loyaltykit.schema.TRANSACTION_SCHEMA`
        (``channel`` and ``category`` are null, ``quantity`` is the number of CDs, ``currency`` is
        USD, every row a purchase at midnight UTC of its day), sorted by customer and time.
    """
    if sample:
        names = ["customer_id", "sample_id", "date", "quantity", "amount"]
        raw = _read_whitespace_table(data_path("CDNOW_sample.txt"), names)
    else:
        names = ["customer_id", "date", "quantity", "amount"]
        raw = _read_whitespace_table(data_path("CDNOW_master.txt"), names)
    frame = raw.with_row_index("row").select(
        pl.format("cdnow-{}", pl.col("row")).alias("transaction_id"),
        pl.col("customer_id"),
        pl.col("date")
        .str.strptime(pl.Date, "%Y%m%d")
        .cast(pl.Datetime("us"))
        .dt.replace_time_zone("UTC")
        .alias("occurred_at"),
        pl.col("amount").cast(AMOUNT_DTYPE),
        pl.lit("USD").alias("currency"),
        pl.lit("purchase").alias("kind"),
        pl.lit(None, pl.String).alias("refund_of"),
        pl.lit(None, pl.String).alias("channel"),
        pl.lit(None, pl.String).alias("category"),
        pl.col("quantity").cast(pl.Int64),
        *([pl.col("sample_id").cast(pl.Int64)] if sample else []),
    )
    frame = frame.cast(TRANSACTION_SCHEMA)
    assert frame.schema["occurred_at"] == TIMESTAMP_DTYPE
    return frame.sort("customer_id", "occurred_at", "transaction_id", maintain_order=True)


def load_cdnow_summary(*, with_monetary: bool = False) -> pl.DataFrame:
    """The published calibration summary of the CDNOW sample (time unit: weeks).

    :param with_monetary: add ``monetary_value``, the mean value of the repeat transactions.
    :returns: columns ``customer_id`` (the sample ``ID``, Int64), ``frequency`` (Int64),
        ``recency`` and ``T`` (Float64, weeks), and optionally ``monetary_value`` (Float64).
    """
    if with_monetary:
        raw = pl.read_csv(data_path("cdnow_customers_summary_with_transactions.csv"))
        return raw.select(
            pl.col("ID").cast(pl.Int64).alias("customer_id"),
            pl.col("x").cast(pl.Int64).alias("frequency"),
            pl.col("t_x").cast(pl.Float64).alias("recency"),
            pl.col("T").cast(pl.Float64),
            pl.col("zbar").cast(pl.Float64).alias("monetary_value"),
        )
    raw = pl.read_csv(data_path("cdnow_customers_summary.csv"))
    return raw.select(
        pl.col("ID").cast(pl.Int64).alias("customer_id"),
        pl.col("frequency").cast(pl.Int64),
        pl.col("recency").cast(pl.Float64),
        pl.col("T").cast(pl.Float64),
    )


def load_donations() -> pl.DataFrame:
    """Aggregated repeat donations of 11,104 donors over 6 annual opportunities (BG/BB input).

    :returns: columns ``frequency``, ``recency``, ``periods`` and ``weights`` (all Int64); a row is
        a pattern and ``weights`` the number of donors with it.
    """
    return pl.read_csv(data_path("donations.csv")).cast(pl.Int64)


def load_sbg_retention(
    segment: Literal["regular", "high_end"] = "regular", *, cohort_size: int = 1000
) -> pl.DataFrame:
    """Survival of a customer cohort year by year (Fader & Hardie 2007), as sBG input.

    :param segment: ``"regular"`` or ``"high_end"``.
    :param cohort_size: size of the initial cohort the percentages are applied to (the paper uses
        1,000).
    :returns: columns ``period`` (years since acquisition, 0-12, Int64), ``alive`` (customers still
        active, Int64, rounded) and ``pct_alive`` (Float64, as published).
    """
    if segment not in ("regular", "high_end"):
        from loyaltykit.errors import InvalidValueError

        raise InvalidValueError(
            "load_sbg_retention", "segment", segment, "must be 'regular' or 'high_end'"
        )
    raw = pl.read_csv(data_path("sbg_retention.csv"))
    pct = pl.col(f"{segment}_pct_alive").cast(pl.Float64)
    return raw.select(
        pl.col("year").cast(pl.Int64).alias("period"),
        (pct * cohort_size / 100).round(0).cast(pl.Int64).alias("alive"),
        pct.alias("pct_alive"),
    )
