"""NPS with its interval, CSAT, latest feedback per customer and advocates."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest
from analytics_strategies import make_tx
from polars.testing import assert_frame_equal

from loyaltykit.analytics import advocates, csat, latest_feedback, nps, nps_group
from loyaltykit.errors import InvalidValueError
from loyaltykit.schema import FEEDBACK_SCHEMA

UTC = dt.UTC


def _feedback() -> pl.DataFrame:
    rows = [
        ("a", "2024-01-05", 10, None, "web"),
        ("a", "2024-03-05", 9, 5, "web"),
        ("b", "2024-01-10", 3, 2, "store"),
        ("c", "2024-02-10", 7, 4, "store"),
        ("d", "2024-02-11", 9, None, "web"),
        ("e", "2024-02-12", None, 1, "store"),
    ]
    return pl.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "answered_at": [dt.datetime.fromisoformat(r[1]).replace(tzinfo=UTC) for r in rows],
            "nps": [r[2] for r in rows],
            "csat": [r[3] for r in rows],
            "comment": [None] * len(rows),
            "channel": [r[4] for r in rows],
        },
        schema=FEEDBACK_SCHEMA,
    )


def test_nps_with_interval() -> None:
    row = nps(_feedback()).row(0, named=True)
    n, p, d = 5, 3 / 5, 1 / 5
    assert (row["responses"], row["promoters"], row["passives"], row["detractors"]) == (5, 3, 1, 1)
    assert row["nps"] == pytest.approx(40.0)
    se = 100 * math.sqrt((p + d - (p - d) ** 2) / n)
    assert row["nps_se"] == pytest.approx(se)
    assert row["nps_low"] == pytest.approx(40 - 1.959964 * se, rel=1e-6)
    assert row["nps_high"] == pytest.approx(min(100.0, 40 + 1.959964 * se), rel=1e-6)
    wide = nps(_feedback(), confidence=0.99).row(0, named=True)
    assert wide["nps_low"] < row["nps_low"]


def test_nps_per_group_period_and_segment() -> None:
    by = nps(_feedback(), by="channel")
    assert by["channel"].to_list() == ["store", "web"]
    assert by["nps"].to_list() == pytest.approx([-50.0, 100.0])
    monthly = nps(_feedback(), period="M")
    assert monthly["period"].to_list() == [
        dt.date(2024, 1, 1),
        dt.date(2024, 2, 1),
        dt.date(2024, 3, 1),
    ]
    segments = pl.DataFrame({"customer_id": ["a", "b", "c", "d"], "segment": ["x", "y", "x", "y"]})
    seg = nps(_feedback(), by="segment", segments=segments)
    assert seg["segment"].to_list() == ["x", "y"]
    assert seg["responses"].to_list() == [3, 2]
    lazy = nps(_feedback().lazy(), by="channel")
    assert isinstance(lazy, pl.LazyFrame)
    assert_frame_equal(lazy.collect(), by)
    with pytest.raises(InvalidValueError, match="confidence"):
        nps(_feedback(), confidence=1.5)
    with pytest.raises(InvalidValueError, match="period"):
        nps(_feedback(), period="H")


def test_nps_group() -> None:
    out = pl.DataFrame({"nps": [0, 6, 7, 8, 9, 10, None]}).select(nps_group())
    assert out.to_series().to_list() == [
        "detractor",
        "detractor",
        "passive",
        "passive",
        "promoter",
        "promoter",
        None,
    ]


def test_csat_with_wilson_interval() -> None:
    row = csat(_feedback()).row(0, named=True)
    assert (row["responses"], row["satisfied"]) == (4, 2)
    assert row["csat"] == pytest.approx(0.5)
    assert row["mean_score"] == pytest.approx(3.0)
    z = 1.959964
    centre = (0.5 + z**2 / 8) / (1 + z**2 / 4)
    half = z * math.sqrt(0.25 / 4 + z**2 / 64) / (1 + z**2 / 4)
    assert row["csat_low"] == pytest.approx(centre - half, rel=1e-5)
    assert row["csat_high"] == pytest.approx(centre + half, rel=1e-5)


def test_latest_feedback_and_advocates() -> None:
    latest = latest_feedback(_feedback())
    a = latest.row(0, named=True)
    assert (a["responses"], a["latest_nps"], a["nps_group"], a["mean_nps"]) == (
        2,
        9,
        "promoter",
        9.5,
    )
    early = latest_feedback(_feedback(), as_of=dt.date(2024, 1, 31))
    assert early["customer_id"].to_list() == ["a", "b"]
    assert early.row(0, named=True)["latest_nps"] == 10
    tx = make_tx(
        [("a", "2024-01-01", "500.00", "web")]
        + [(c, "2024-01-02", "10.00", "web") for c in "bcdefghij"]
    )
    interactions = pl.DataFrame(
        {
            "customer_id": ["d"],
            "occurred_at": [dt.datetime(2024, 2, 1, tzinfo=UTC)],
            "channel": ["web"],
            "type": ["referral"],
        }
    )
    out = advocates(_feedback(), tx, as_of=dt.date(2024, 3, 31), interactions=interactions)
    assert out["customer_id"].to_list() == ["a", "d"]
    assert out["high_value"].to_list() == [True, False]
    assert out["referrer"].to_list() == [False, True]
    customers = pl.DataFrame({"customer_id": ["x"], "referred_by": ["d"]})
    both = advocates(
        _feedback(), tx, as_of=dt.date(2024, 3, 31), interactions=interactions, customers=customers
    )
    assert both.filter(pl.col("customer_id") == "d")["referrals"].item() == 2
    alone = advocates(_feedback(), tx, as_of=dt.date(2024, 3, 31))
    assert alone["customer_id"].to_list() == ["a"]
