"""Plots of the analytics tables (needs the ``plot`` extra: matplotlib).

Every function takes the table an analytics function returned (eager or lazy) and an optional
matplotlib ``Axes`` to draw on, and returns the ``Axes`` it drew on. Without ``ax`` a new figure
is made (with :class:`matplotlib.figure.Figure`, not pyplot, so nothing global changes); save it
with ``ax.figure.savefig("plot.png")``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

from loyaltykit.analytics.lifecycle import LIFECYCLE_STAGES
from loyaltykit.analytics.rfm import DEFAULT_SEGMENT_MAP
from loyaltykit.errors import InvalidValueError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "plot_channels",
    "plot_cohort_retention",
    "plot_funnel",
    "plot_inter_purchase_times",
    "plot_lifecycle",
    "plot_nps",
    "plot_period_kpis",
    "plot_risk",
    "plot_segments",
]

_BLUE = "#2b6cb0"
_GREY = "#a0aec0"


def _axes(ax: Axes | None, size: tuple[float, float] = (8.0, 5.0)) -> Axes:
    if ax is not None:
        return ax
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ImportError(
            "loyaltykit plots need the 'plot' extra (matplotlib): pip install 'loyaltykit[plot]'"
        ) from exc
    fig = Figure(figsize=size, layout="constrained")
    result: Axes = fig.add_subplot()
    return result


def _eager(frame: pl.DataFrame | pl.LazyFrame, needed: tuple[str, ...], owner: str) -> pl.DataFrame:
    df = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise InvalidValueError(
            owner,
            "frame",
            df.columns,
            f"needs column(s) {missing}; pass the table of the matching analytics function",
        )
    return df


def plot_cohort_retention(
    cohorts: pl.DataFrame | pl.LazyFrame, *, max_periods: int = 24, ax: Axes | None = None
) -> Axes:
    """Heatmap of :func:`~loyaltykit.analytics.cohort_retention`: cohorts down, periods across.

    :param max_periods: show periods 0 .. ``max_periods`` since acquisition.
    """
    df = _eager(cohorts, ("cohort", "periods_since", "retention"), "plot_cohort_retention")
    df = df.filter(pl.col("periods_since") <= max_periods)
    ax = _axes(ax, (10.0, 6.0))
    cohorts_sorted = df["cohort"].unique().sort().to_list()
    n_periods = int(df["periods_since"].cast(pl.Int64).max() or 0) + 1  # type: ignore[arg-type]
    import numpy as np

    grid = np.full((len(cohorts_sorted), n_periods), np.nan)
    row_of = {c: i for i, c in enumerate(cohorts_sorted)}
    for cohort, since, retention in df.select("cohort", "periods_since", "retention").iter_rows():
        grid[row_of[cohort], since] = retention
    shown = np.ma.masked_invalid(grid)
    later = grid[:, 1:]
    top = float(np.nanmax(later)) if later.size and np.isfinite(later).any() else 1.0
    image = ax.imshow(
        shown, aspect="auto", cmap="Blues", vmin=0.0, vmax=max(top, 0.05), interpolation="nearest"
    )
    ax.set_yticks(range(len(cohorts_sorted)), [str(c) for c in cohorts_sorted], fontsize=8)
    step = max(1, n_periods // 12)
    ax.set_xticks(range(0, n_periods, step))
    ax.set_xlabel("periods since acquisition")
    ax.set_ylabel("cohort (acquisition period)")
    ax.set_title("Cohort retention (share of the cohort buying; column 0 is always 100%)")
    ax.figure.colorbar(image, ax=ax, label="retention", format="{x:.0%}")
    return ax


def _barh(ax: Axes, labels: list[str], values: list[float], *, fmt: str = "{:,.0f}") -> None:
    bars = ax.barh(labels, values, color=_BLUE)
    ax.invert_yaxis()
    top = max(values) if values else 1.0
    for bar, value in zip(bars, values, strict=True):
        ax.text(
            bar.get_width() + top * 0.01,
            bar.get_y() + bar.get_height() / 2,
            fmt.format(value),
            va="center",
            fontsize=8,
        )
    ax.set_xlim(0, top * 1.15 if top > 0 else 1)
    ax.spines[["top", "right"]].set_visible(False)


def plot_segments(rfm: pl.DataFrame | pl.LazyFrame, *, ax: Axes | None = None) -> Axes:
    """Customers per RFM segment (from :func:`~loyaltykit.analytics.rfm` or a profile)."""
    df = _eager(rfm, ("segment",), "plot_segments")
    counts = df.group_by("segment").len()
    order = [r.name for r in DEFAULT_SEGMENT_MAP]
    counts = counts.with_columns(
        pl.col("segment")
        .map_elements(lambda s: order.index(s) if s in order else len(order), return_dtype=pl.Int64)
        .alias("__o")
    ).sort("__o", "segment")
    ax = _axes(ax)
    _barh(
        ax,
        [str(s) for s in counts["segment"].to_list()],
        [float(v) for v in counts["len"].to_list()],
    )
    ax.set_xlabel("customers")
    ax.set_title("RFM segments")
    return ax


def plot_lifecycle(stages: pl.DataFrame | pl.LazyFrame, *, ax: Axes | None = None) -> Axes:
    """Customers per lifecycle stage (from :func:`~loyaltykit.analytics.lifecycle`)."""
    df = _eager(stages, ("stage",), "plot_lifecycle")
    counts = dict(df.group_by(pl.col("stage").cast(pl.String)).len().iter_rows())
    labels = [s for s in LIFECYCLE_STAGES if s in counts]
    ax = _axes(ax)
    _barh(ax, [s.replace("_", " ") for s in labels], [float(counts[s]) for s in labels])
    ax.set_xlabel("customers")
    ax.set_title("Lifecycle stages")
    return ax


def plot_period_kpis(kpis: pl.DataFrame | pl.LazyFrame, *, ax: Axes | None = None) -> Axes:
    """Active customers (bars: new and returning) and the retention rate (line) per period."""
    df = _eager(
        kpis,
        ("period", "new_customers", "returning_customers", "retention_rate"),
        "plot_period_kpis",
    )
    ax = _axes(ax, (10.0, 5.0))
    x = list(range(df.height))
    new = df["new_customers"].to_list()
    ret = df["returning_customers"].to_list()
    ax.bar(x, ret, color=_BLUE, label="returning customers")
    ax.bar(x, new, bottom=ret, color=_GREY, label="new customers")
    ax.set_ylabel("active customers")
    step = max(1, df.height // 12)
    ax.set_xticks(
        x[::step],
        [str(p) for p in df["period"].to_list()][::step],
        rotation=45,
        ha="right",
        fontsize=8,
    )
    twin = ax.twinx()
    twin.plot(
        x,
        df["retention_rate"].to_list(),
        color="#c05621",
        marker="o",
        markersize=3,
        label="retention rate",
    )
    twin.set_ylim(0, 1)
    twin.set_ylabel("retention rate")
    handles = ax.get_legend_handles_labels()
    twin_handles = twin.get_legend_handles_labels()
    ax.legend(
        handles[0] + twin_handles[0], handles[1] + twin_handles[1], loc="upper right", fontsize=8
    )
    ax.set_title("Customers and retention per period")
    return ax


def plot_nps(nps: pl.DataFrame | pl.LazyFrame, *, ax: Axes | None = None) -> Axes:
    """NPS with its confidence interval: over time (a ``period`` column) or per group."""
    df = _eager(nps, ("nps", "nps_low", "nps_high"), "plot_nps")
    ax = _axes(ax)
    if "period" in df.columns:
        groups = [c for c in df.columns if c not in _NPS_COLUMNS and c != "period"]
        parts: list[tuple[str, pl.DataFrame]] = (
            [(str(k[0]), g) for k, g in df.group_by(groups[0], maintain_order=True)]
            if groups
            else [("NPS", df)]
        )
        for label, part in parts:
            part = part.sort("period")
            x = part["period"].to_list()
            line = ax.plot(x, part["nps"].to_list(), marker="o", markersize=3, label=label)
            ax.fill_between(
                x,
                part["nps_low"].to_list(),
                part["nps_high"].to_list(),
                alpha=0.2,
                color=line[0].get_color(),
            )
        ax.legend(fontsize=8)
        ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    else:
        groups = [c for c in df.columns if c not in _NPS_COLUMNS]
        labels = (
            [" / ".join(str(v) for v in row) for row in df.select(groups).iter_rows()]
            if groups
            else ["all"]
        )
        values = df["nps"].to_list()
        low = [v - lo for v, lo in zip(values, df["nps_low"].to_list(), strict=True)]
        high = [hi - v for v, hi in zip(values, df["nps_high"].to_list(), strict=True)]
        ax.bar(labels, values, yerr=[low, high], color=_BLUE, capsize=4)
        ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylim(-100, 100)
    ax.set_ylabel("Net Promoter Score")
    ax.set_title("NPS with confidence interval")
    return ax


_NPS_COLUMNS = {
    "responses",
    "promoters",
    "passives",
    "detractors",
    "promoter_share",
    "detractor_share",
    "nps",
    "nps_se",
    "nps_low",
    "nps_high",
}


def plot_inter_purchase_times(
    gaps: pl.DataFrame | pl.LazyFrame, *, max_days: int = 365, ax: Axes | None = None
) -> Axes:
    """Histogram of the days between purchase days (:func:`~loyaltykit.analytics.inter_purchase_times`)."""
    df = _eager(gaps, ("gap_days",), "plot_inter_purchase_times")
    values = df.filter(pl.col("gap_days") <= max_days)["gap_days"].to_numpy()
    ax = _axes(ax)
    ax.hist(values, bins=min(60, max(10, max_days // 7)), color=_BLUE)
    if df.height:
        median = float(df["gap_days"].cast(pl.Float64).median() or 0.0)  # type: ignore[arg-type]
        ax.axvline(median, color="#c05621", linestyle="--", label=f"median {median:.0f} days")
        ax.legend(fontsize=8)
    ax.set_xlabel("days between purchase days")
    ax.set_ylabel("repeat purchases")
    ax.set_title("Inter-purchase times")
    return ax


def plot_channels(channels: pl.DataFrame | pl.LazyFrame, *, ax: Axes | None = None) -> Axes:
    """Revenue by channel with the repeat rate of customers acquired there (:func:`~loyaltykit.analytics.channel_summary`)."""
    df = _eager(channels, ("channel", "revenue", "acquired_repeat_rate"), "plot_channels")
    ax = _axes(ax)
    _barh(
        ax,
        [str(c) for c in df["channel"].to_list()],
        [float(v) for v in df["revenue"].to_list()],
    )
    for i, rate in enumerate(df["acquired_repeat_rate"].to_list()):
        if rate is not None:
            ax.text(0, i, f"  repeat {rate:.0%}", va="center", color="white", fontsize=8)
    ax.set_xlabel("net revenue")
    ax.set_title("Revenue by channel (and repeat rate of its acquired customers)")
    return ax


def plot_funnel(funnel: pl.DataFrame | pl.LazyFrame, *, ax: Axes | None = None) -> Axes:
    """The journey funnel (:func:`~loyaltykit.analytics.journey_funnel`)."""
    df = _eager(funnel, ("stage", "customers", "conversion"), "plot_funnel")
    ax = _axes(ax)
    labels = [s.replace("_", " ") for s in df["stage"].to_list()]
    _barh(ax, labels, [float(v) for v in df["customers"].to_list()])
    for i, conv in enumerate(df["conversion"].to_list()):
        if i and conv is not None:
            ax.text(0, i, f"  {conv:.0%} of previous", va="center", color="white", fontsize=8)
    ax.set_xlabel("customers")
    ax.set_title("Customer journey funnel")
    return ax


def plot_risk(signals: pl.DataFrame | pl.LazyFrame, *, ax: Axes | None = None) -> Axes:
    """Distribution of the churn risk score by lifecycle stage (:func:`~loyaltykit.analytics.churn_signals`)."""
    df = _eager(signals, ("risk_score",), "plot_risk")
    ax = _axes(ax)
    bins = [i / 20 for i in range(21)]
    if "stage" in df.columns:
        stages = [s for s in LIFECYCLE_STAGES if s in set(df["stage"].cast(pl.String).to_list())]
        data: list[Any] = [
            df.filter(pl.col("stage").cast(pl.String) == s)["risk_score"].to_numpy() for s in stages
        ]
        ax.hist(data, bins=bins, stacked=True, label=[s.replace("_", " ") for s in stages])
        ax.legend(fontsize=8)
    else:
        ax.hist(df["risk_score"].to_numpy(), bins=bins, color=_BLUE)
    ax.set_xlabel("risk score")
    ax.set_ylabel("customers")
    ax.set_title("Churn risk score")
    return ax
