"""Plots of the BTYD models (needs the ``plot`` extra: ``pip install "loyaltykit[plot]"``).

Every function draws on ``ax`` (a new figure when ``None``) and returns the matplotlib ``Axes``,
so plots can be combined, restyled and saved by the caller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from loyaltykit.errors import ModelInputError
from loyaltykit.models._base import BTYDModel, FrameLike, as_polars, read_columns
from loyaltykit.models.checking import calibration_vs_holdout

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "plot_calibration_vs_holdout",
    "plot_frequency_recency_matrix",
    "plot_period_transactions",
    "plot_probability_alive_matrix",
    "plot_retention",
    "plot_tracking",
]


def _axes(ax: Axes | None) -> Axes:
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "loyaltykit.models.plot needs matplotlib: install the plot extra, "
            'pip install "loyaltykit[plot]"'
        ) from exc
    if ax is not None:
        return ax
    _, new = plt.subplots(figsize=(7, 4.5))
    return new


def _grid(
    model: BTYDModel, max_frequency: int | None, T: float | None
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], float]:
    if T is None or max_frequency is None:
        raise ModelInputError("give T (the observation length) and max_frequency for the matrix")
    freqs = np.arange(max_frequency + 1, dtype=np.float64)
    recs = np.linspace(0.0, T, 60)
    return freqs, recs, float(T)


def _matrix(
    model: BTYDModel, column: str, max_frequency: int | None, T: float | None, t: float | None
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    freqs, recs, big_t = _grid(model, max_frequency, T)
    f, r = np.meshgrid(freqs, recs, indexing="ij")
    r = np.where(f == 0, 0.0, r)
    frame = pl.DataFrame(
        {"frequency": f.ravel(), "recency": r.ravel(), "T": np.full(f.size, big_t)}
    )
    if column == "probability_alive":
        out = model.probability_alive(frame)  # type: ignore[attr-defined]
    else:
        out = model.expected_purchases(t, frame)  # type: ignore[attr-defined]
    values = out[column].to_numpy().reshape(f.shape)
    return freqs, recs, values


def _heatmap(
    ax: Axes,
    freqs: np.ndarray[Any, Any],
    recs: np.ndarray[Any, Any],
    values: np.ndarray[Any, Any],
    title: str,
    label: str,
) -> Axes:
    mesh = ax.pcolormesh(recs, freqs, values, shading="nearest", cmap="viridis")
    ax.figure.colorbar(mesh, ax=ax, label=label)
    ax.set_xlabel("recency (time of the last purchase)")
    ax.set_ylabel("frequency (repeat purchases)")
    ax.set_title(title)
    return ax


def plot_frequency_recency_matrix(
    model: BTYDModel,
    *,
    T: float,
    max_frequency: int = 20,
    t: float = 1.0,
    ax: Axes | None = None,
) -> Axes:
    """Heat map of expected purchases in the next ``t`` time units by frequency and recency,
    for customers observed for ``T`` time units."""
    ax = _axes(ax)
    freqs, recs, values = _matrix(model, "expected_purchases", max_frequency, T, t)
    return _heatmap(
        ax,
        freqs,
        recs,
        values,
        f"Expected purchases in the next {t:g} time units (T = {T:g})",
        "expected purchases",
    )


def plot_probability_alive_matrix(
    model: BTYDModel, *, T: float, max_frequency: int = 20, ax: Axes | None = None
) -> Axes:
    """Heat map of P(alive) by frequency and recency, for customers observed for ``T``."""
    ax = _axes(ax)
    freqs, recs, values = _matrix(model, "probability_alive", max_frequency, T, None)
    return _heatmap(ax, freqs, recs, values, f"Probability alive (T = {T:g})", "P(alive)")


def plot_period_transactions(
    model: BTYDModel, frame: FrameLike, *, max_frequency: int = 7, ax: Axes | None = None
) -> Axes:
    """Customers by number of repeat purchases in the calibration period: actual vs model.

    The model's count of customers with ``n`` repeat purchases is the sum over customers of
    ``P(X(T_i) = n)`` (BG/NBD and MBG/NBD, which have that probability in closed form); the last
    bar gathers ``max_frequency`` and more.
    """
    if not hasattr(model, "probability_of_purchases") or not hasattr(model, "_shift"):
        raise ModelInputError("plot_period_transactions needs a BetaGeo or ModifiedBetaGeo model")
    ax = _axes(ax)
    d = read_columns(frame, "plot_period_transactions", ("frequency", "T"))
    ns = np.arange(max_frequency)
    expected = np.zeros(max_frequency + 1)
    t_values, counts = np.unique(d["T"], return_counts=True)
    for t_value, count in zip(t_values, counts, strict=True):
        probs = model.probability_of_purchases(ns, float(t_value))["probability"].to_numpy()
        expected[:max_frequency] += count * probs
        expected[max_frequency] += count * (1.0 - probs.sum())
    actual = np.bincount(
        np.minimum(d["frequency"], max_frequency).astype(int), minlength=max_frequency + 1
    )
    x = np.arange(max_frequency + 1)
    ax.bar(x - 0.2, actual, width=0.4, label="actual")
    ax.bar(x + 0.2, expected, width=0.4, label="model")
    ax.set_xticks(x, [*map(str, range(max_frequency)), f"{max_frequency}+"])
    ax.set_xlabel("repeat purchases in the calibration period")
    ax.set_ylabel("customers")
    ax.set_title("Frequency of repeat transactions")
    ax.legend()
    return ax


def plot_calibration_vs_holdout(
    model: BTYDModel, frame: FrameLike, *, max_frequency: int = 7, ax: Axes | None = None
) -> Axes:
    """Mean holdout purchases by calibration frequency: actual vs predicted
    (see :func:`loyaltykit.models.checking.calibration_vs_holdout`)."""
    ax = _axes(ax)
    table = calibration_vs_holdout(model, frame, max_frequency=max_frequency)
    table = table.filter(pl.col("bucket") != "total")
    x = np.arange(table.height)
    ax.plot(x, table["actual"].to_numpy(), marker="o", label="actual")
    ax.plot(x, table["predicted"].to_numpy(), marker="s", linestyle="--", label="model")
    ax.set_xticks(x, table["bucket"].to_list())
    ax.set_xlabel("purchases in the calibration period")
    ax.set_ylabel("mean purchases in the holdout period")
    ax.set_title("Calibration vs holdout")
    ax.legend()
    return ax


def plot_tracking(
    tracking_frame: FrameLike, *, cumulative: bool = True, ax: Axes | None = None
) -> Axes:
    """Repeat transactions over time, model vs actual, from the output of
    :func:`loyaltykit.models.checking.tracking`."""
    ax = _axes(ax)
    pf = as_polars(tracking_frame, "plot_tracking")
    df = pf.collect() if isinstance(pf, pl.LazyFrame) else pf
    kind = "cumulative" if cumulative else "incremental"
    t = df["t"].to_numpy()
    if f"actual_{kind}" in df.columns:
        ax.plot(t, df[f"actual_{kind}"].to_numpy(), label="actual")
    ax.plot(t, df[f"expected_{kind}"].to_numpy(), linestyle="--", label="model")
    ax.set_xlabel("time since origin")
    ax.set_ylabel(f"{kind} repeat transactions")
    ax.set_title(f"Tracking {kind} repeat transactions")
    ax.legend()
    return ax


def plot_retention(
    model: BTYDModel,
    *,
    last_period: int,
    actual: FrameLike | None = None,
    fitted_through: int | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Survival curve of an sBG model, with the actual cohort (``period``, ``pct_alive`` or
    ``alive`` with period 0 the cohort size) and a marker of the end of the fitting window."""
    if not hasattr(model, "retention_curve"):
        raise ModelInputError("plot_retention needs a ShiftedBetaGeo model")
    ax = _axes(ax)
    curve = model.retention_curve(last_period)
    ax.plot(
        curve["period"].to_numpy(), 100 * curve["survival"].to_numpy(), linestyle="--", label="sBG"
    )
    if actual is not None:
        a = read_columns(actual, "plot_retention", ("period", "alive"))
        order = np.argsort(a["period"])
        alive = a["alive"][order]
        ax.plot(a["period"][order], 100 * alive / alive[0], marker="o", label="actual")
    if fitted_through is not None:
        ax.axvline(fitted_through, color="grey", linewidth=0.8)
    ax.set_xlabel("period")
    ax.set_ylabel("% of the cohort still active")
    ax.set_ylim(0, 100)
    ax.set_title("Retention")
    ax.legend()
    return ax
