"""RFM values, scores, segment maps and the built-in scoring-model plugin."""

from __future__ import annotations

import datetime as dt
import itertools

import polars as pl
import pytest
from analytics_strategies import END, transactions
from hypothesis import given
from polars.testing import assert_frame_equal

from loyaltykit.analytics.rfm import (
    DEFAULT_SEGMENT_MAP,
    RFM,
    SegmentRule,
    rfm,
    rfm_values,
    segment_map_from_records,
)
from loyaltykit.datasets import load_cdnow
from loyaltykit.errors import InvalidValueError, ModelInputError, NotFittedError
from loyaltykit.plugins import PluginHost
from loyaltykit.protocols import ScoringModel

AS_OF = dt.date(1998, 6, 30)


def test_default_map_partitions_the_grid() -> None:
    for r, f in itertools.product(range(1, 6), range(1, 6)):
        hits = [
            rule.name
            for rule in DEFAULT_SEGMENT_MAP
            if r in range(rule.r[0], rule.r[1] + 1) and f in range(rule.f[0], rule.f[1] + 1)
        ]
        assert len(hits) == 1, (r, f, hits)
    assert {rule.name for rule in DEFAULT_SEGMENT_MAP} == {
        "Champions",
        "Loyal",
        "Potential Loyalist",
        "New",
        "Promising",
        "Need Attention",
        "About to Sleep",
        "At Risk",
        "Can't Lose Them",
        "Hibernating",
        "Lost",
    }


def test_scores_by_hand() -> None:
    values = pl.DataFrame(
        {
            "customer_id": list("abcdefghij"),
            "recency_days": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            "frequency": [10, 9, 8, 7, 6, 5, 4, 3, 2, 1],
            "monetary": [100.0, 90, 80, 70, 60, 50, 40, 30, 20, 10],
        }
    )
    model = RFM().fit(values)
    assert model.edges_["recency"] == pytest.approx([2.8, 4.6, 6.4, 8.2])
    out = model.score(values)
    assert isinstance(out, pl.DataFrame)
    assert out["r_score"].to_list() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]  # recent = high
    assert out["f_score"].to_list() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert out["rfm_cell"][0] == "555"
    assert out["rfm_score"][0] == 15
    assert out["segment"].to_list() == [
        "Champions",
        "Champions",
        "Loyal",
        "Loyal",
        "Need Attention",
        "Need Attention",
        "Hibernating",
        "Hibernating",
        "Lost",
        "Lost",
    ]


def test_ties_get_equal_scores_whatever_the_order() -> None:
    values = pl.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(12)],
            "recency_days": [5] * 6 + [50] * 6,
            "frequency": [1] * 9 + [2, 3, 4],
            "monetary": [10.0] * 12,
        }
    )
    out = RFM().fit(values).score(values)
    assert out.group_by("recency_days").agg(pl.col("r_score").n_unique())["r_score"].to_list() == [
        1,
        1,
    ]
    assert out.filter(pl.col("frequency") == 1)["f_score"].unique().to_list() == [1]
    assert out["m_score"].unique().to_list() == [1]
    shuffled = values.sample(fraction=1.0, shuffle=True, seed=3)
    again = RFM().fit(shuffled).score(shuffled).sort("customer_id")
    assert_frame_equal(again, out.sort("customer_id"))


def test_rfm_on_cdnow_and_lazy() -> None:
    tx = load_cdnow()
    out = rfm(tx, as_of=AS_OF)
    assert out.height == 23570
    assert out["segment"].null_count() == 0
    # recency quintiles are balanced on CDNOW (few ties in days since last purchase)
    sizes = out.group_by("r_score").len()["len"]
    assert sizes.min() > 0.18 * out.height  # type: ignore[operator]
    lazy = rfm(tx.lazy(), as_of=AS_OF)
    assert isinstance(lazy, pl.LazyFrame)
    assert_frame_equal(lazy.collect(), out)
    assert_frame_equal(lazy.collect(engine="streaming").sort("customer_id"), out)
    values = rfm_values(tx, as_of=AS_OF, monetary="mean")
    row = values.filter(pl.col("customer_id") == "00003").row(0, named=True)
    assert row == {
        "customer_id": "00003",
        "recency_days": 33,
        "frequency": 6,
        "monetary": pytest.approx(156.46 / 6),
    }


def test_custom_segment_map_bins_and_m_refinement() -> None:
    rules = segment_map_from_records(
        [
            {"name": "Whales", "r": [1, 3], "f": [1, 3], "m": 3},
            {"name": "Fans", "r": 3, "f": [1, 3]},
            {"name": "Rest", "r": [1, 3], "f": [1, 3]},
        ]
    )
    assert rules[0] == SegmentRule(name="Whales", r=(1, 3), f=(1, 3), m=(3, 3))
    out = rfm(load_cdnow(sample=True), as_of=dt.date(1997, 9, 30), bins=3, segment_map=rules)
    assert set(out["segment"].unique()) <= {"Whales", "Fans", "Rest"}
    assert (out.filter(pl.col("m_score") == 3)["segment"] == "Whales").all()
    none = rfm(load_cdnow(sample=True), as_of=dt.date(1997, 9, 30), segment_map=None)
    assert "segment" not in none.columns
    partial = RFM(segment_map=[SegmentRule(name="Top", r=5, f=5)])
    scored = partial.fit(none).score(none)
    assert scored.filter(pl.col("segment").is_null()).height > 0  # uncovered cells stay null


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: RFM(bins=1), InvalidValueError, "from 2 to 10"),
        (lambda: RFM(bins=3), InvalidValueError, "within 1..3"),  # default map needs 5 bins
        (lambda: RFM(segment_map=[{"name": "x"}]), InvalidValueError, "SegmentRule"),  # type: ignore[list-item]
        (lambda: segment_map_from_records([{"name": "x", "r": 1}]), InvalidValueError, "records"),
        (lambda: RFM().score(pl.DataFrame()), NotFittedError, "fit"),
        (lambda: RFM().fit(pl.DataFrame({"x": [1]})), ModelInputError, "recency_days"),
        (
            lambda: RFM().fit(
                pl.DataFrame(
                    schema={"recency_days": pl.Int64, "frequency": pl.Int64, "monetary": pl.Float64}
                )
            ),
            ModelInputError,
            "no customers",
        ),
        (
            lambda: rfm_values(load_cdnow(sample=True), as_of=AS_OF, monetary="max"),
            InvalidValueError,
            "monetary",
        ),  # type: ignore[arg-type]
    ],
)
def test_errors(build: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        build()  # type: ignore[operator]


def test_registered_as_builtin_scoring_model(plugin_host: PluginHost) -> None:
    assert "rfm" in plugin_host.scoring_models
    entry = plugin_host.scoring_models.get("rfm")
    assert entry.plugin == "loyaltykit.default_plugins.rfm"
    model = plugin_host.scoring_models.create("rfm", bins=5)
    assert isinstance(model, ScoringModel)
    values = rfm_values(load_cdnow(sample=True), as_of=dt.date(1997, 9, 30))
    assert model.fit(values) is model
    scored = model.score(values.lazy())
    assert isinstance(scored, pl.LazyFrame)
    assert scored.collect().height == values.height


@given(transactions())
def test_scores_are_in_range_and_monotone(tx: pl.DataFrame) -> None:
    values = rfm_values(tx, as_of=END)
    if values.height == 0:
        return
    out = RFM().fit(values).score(values)
    for col in ("r_score", "f_score", "m_score"):
        assert out[col].is_between(1, 5).all()
    # more recent never scores lower; more frequent never scores lower
    by_r = out.sort("recency_days")
    assert (by_r["r_score"].diff().drop_nulls() <= 0).all()
    by_f = out.sort("frequency")
    assert (by_f["f_score"].diff().drop_nulls() >= 0).all()
