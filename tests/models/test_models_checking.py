"""Model checking on CDNOW (calibration/holdout, tracking, metrics, comparison) and the plots."""

from __future__ import annotations

import datetime as dt
import sys

import numpy as np
import polars as pl
import pytest

from loyaltykit.analytics import calibration_and_holdout, summary
from loyaltykit.datasets import load_cdnow, load_cdnow_summary, load_sbg_retention
from loyaltykit.errors import ModelInputError
from loyaltykit.models import BetaGeo, GammaGamma, ModifiedBetaGeo, ParetoNBD, ShiftedBetaGeo, plot
from loyaltykit.models.checking import (
    calibration_vs_holdout,
    compare_models,
    error_metrics,
    frequency_spend_correlation,
    repeat_transactions,
    tracking,
)

TX = load_cdnow(sample=True)
ORIGIN = dt.datetime(1997, 1, 1, tzinfo=dt.UTC)
CH = calibration_and_holdout(
    TX, calibration_end=dt.date(1997, 9, 30), observation_end=dt.date(1998, 6, 30), time_unit="W"
)
CAL = CH.select(frequency="frequency_cal", recency="recency_cal", T="T_cal")
BG = BetaGeo().fit(CAL)


def test_calibration_vs_holdout_buckets_and_total() -> None:
    table = calibration_vs_holdout(BG, CH, max_frequency=7)
    assert table["bucket"].to_list() == ["0", "1", "2", "3", "4", "5", "6", "7+", "total"]
    assert table["customers"][-1] == 2357
    assert table["customers"][:-1].sum() == 2357
    direct = BG.expected_purchases(39, CAL)["expected_purchases"].mean()
    assert table["predicted"][-1] == pytest.approx(direct)
    assert table["actual"][-1] == pytest.approx(CH["frequency_holdout"].mean())
    # the model tracks the holdout within 15% in total and rises with calibration frequency
    assert abs(table["error"][-1]) / table["actual"][-1] < 0.15
    assert np.all(np.diff(table["predicted"].to_numpy()[:-1]) > 0)


def test_repeat_transactions_agree_with_summary() -> None:
    births, repeats = repeat_transactions(TX, origin=ORIGIN, time_unit="W")
    full = summary(TX, observation_end=dt.date(1998, 6, 30), time_unit="W")
    assert repeats["repeat_transactions"].sum() == full["frequency"].sum()
    assert births.height == 2357
    assert births["birth"].max() < 13  # first purchases in Q1 1997
    assert repeats["t"].min() >= 1


def test_tracking_is_the_sum_of_unconditional_curves() -> None:
    births, repeats = repeat_transactions(TX, origin=ORIGIN, time_unit="W")
    track = tracking(BG, births, times=np.arange(1, 79), actual=repeats)
    ages = 78.0 - births["birth"].to_numpy()
    direct = BG.expected_purchases_new(ages)["expected_purchases"].sum()
    assert track["expected_cumulative"][-1] == pytest.approx(direct, rel=1e-10)
    assert track["actual_cumulative"][-1] == repeats["repeat_transactions"].sum()
    assert np.all(track["expected_incremental"].to_numpy() >= 0)
    metrics = error_metrics(track["actual_cumulative"], track["expected_cumulative"])
    assert metrics["correlation"] > 0.99
    with pytest.raises(ModelInputError, match="increasing"):
        tracking(BG, births, times=[3, 2])


def test_error_metrics_known_values() -> None:
    m = error_metrics([1.0, 2.0, 0.0], [2.0, 2.0, 1.0])
    assert m["mae"] == pytest.approx(2 / 3)
    assert m["rmse"] == pytest.approx((2 / 3) ** 0.5)
    assert m["bias"] == pytest.approx(2 / 3)
    assert m["mape"] == pytest.approx(50.0)
    with pytest.raises(ModelInputError, match="one length"):
        error_metrics([1.0], [1.0, 2.0])


def test_compare_models() -> None:
    table = compare_models(
        {"bg": BG, "pnbd": ParetoNBD().fit(CAL), "mbg": ModifiedBetaGeo().fit(CAL)}
    )
    assert table["model"].to_list()[-1] == "pnbd"  # lowest likelihood on CDNOW
    assert table["aic"].is_sorted()
    gg = GammaGamma().fit(load_cdnow_summary(with_monetary=True))
    with pytest.raises(ModelInputError, match="different data sizes"):
        compare_models({"bg": BG, "gg": gg})


def test_frequency_spend_correlation_is_small_on_cdnow() -> None:
    assert frequency_spend_correlation(load_cdnow_summary(with_monetary=True)) == pytest.approx(
        0.11, abs=0.01
    )


def test_plots_return_axes() -> None:
    matplotlib = pytest.importorskip("matplotlib", reason="the plot extra is not installed")
    matplotlib.use("Agg")
    from matplotlib.axes import Axes

    births, repeats = repeat_transactions(TX, origin=ORIGIN)
    track = tracking(BG, births, times=np.arange(1, 79), actual=repeats)
    sbg = ShiftedBetaGeo().fit(load_sbg_retention().filter(pl.col("period") <= 7))
    axes = [
        plot.plot_frequency_recency_matrix(BG, T=39, t=10),
        plot.plot_probability_alive_matrix(BG, T=39, max_frequency=10),
        plot.plot_period_transactions(BG, CAL),
        plot.plot_calibration_vs_holdout(BG, CH),
        plot.plot_tracking(track),
        plot.plot_tracking(track, cumulative=False),
        plot.plot_retention(sbg, last_period=12, actual=load_sbg_retention(), fitted_through=7),
    ]
    for ax in axes:
        assert isinstance(ax, Axes)
        assert ax.get_title()
    bars = axes[2].patches
    assert len(bars) == 16  # 8 buckets, actual and model
    assert sum(b.get_height() for b in bars[8:]) == pytest.approx(2357)
    import matplotlib.pyplot as plt

    plt.close("all")
    with pytest.raises(ModelInputError, match="BetaGeo"):
        plot.plot_period_transactions(ParetoNBD().fit(CAL), CAL)


def test_plots_name_the_extra_when_matplotlib_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"loyaltykit\[plot\]"):
        plot.plot_tracking(pl.DataFrame({"t": [1.0], "expected_cumulative": [1.0]}))
