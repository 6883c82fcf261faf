"""Customer analytics against lifetimes and the polars floor, in the same run and on the same data.

Data: the synthetic population of :func:`loyaltykit.datasets.generate` (``--customers``, default
1,000,000: about 2.8 million transactions with refunds, 0.3 million survey answers and 4.2
million touchpoints).

1. **Summary** (frequency, recency, T, monetary value in days):

   - ``loyaltykit.summary`` on the transaction frame (refunds netted inside the timed call),
     which takes the packed-integer plan for such an eager frame, and the same call on a
     ``LazyFrame`` (the lazy form of that plan: a few small results collected first, the rest
     returned as a lazy query), collected;
   - the **floor**: one polars ``group_by`` over the same frame with count, min and max of the
     timestamp and sum of the amount -- the least work any per-customer summary needs -- run
     as a lazy query, on the engine polars uses for lazy queries (the streaming engine since
     polars 2.0), as ``loyaltykit.summary`` is. The same aggregation through the eager
     ``DataFrame.group_by`` (the in-memory engine, about twice as slow) is shown as well;
   - the **peer**: lifetimes' ``summary_data_from_transaction_data`` on the purchase rows as a
     pandas frame (refunds removed beforehand, not timed; lifetimes has no notion of refunds).
     Skipped, saying so, when lifetimes is not importable.

   Both outputs are checked to agree (frequency, recency and T exactly, monetary value to 1e-9
   relative) on the customers without refunds.
2. **Streaming**: ``summary`` on ``pl.scan_parquet`` of the same transactions, collected with
   polars' streaming engine, checked equal to the eager result.
3. **Items 3-9 of the analytics** (RFM, lifecycle, cohorts and KPIs, channels and value tiers,
   journeys, feedback, churn signals, the customer profile), each timed; peak memory of the
   profile (the largest) is reported against the size of the input frames.

Run with the benchmark environment so that lifetimes runs in the same process::

    .venv-bench/bin/python benchmarks/bench_analytics.py --customers 1000000
    .venv/bin/python benchmarks/bench_analytics.py --customers 100000 --no-peer
"""

from __future__ import annotations

import datetime as dt
import statistics
import tempfile
from pathlib import Path
from typing import Any

import polars as pl

from _common import (
    Measurement,
    Report,
    bench_parser,
    measure,
    measure_memory,
    synthetic_data,
    time_call,
)
from loyaltykit import analytics as a

MB = 1024 * 1024


def to_pandas(frame: pl.DataFrame) -> Any:
    """A pandas frame without pyarrow (the benchmark environment has none)."""
    import pandas as pd

    return pd.DataFrame({c: frame.get_column(c).to_numpy() for c in frame.columns})


def interleaved(
    variants: list[tuple[str, Any]], *, rounds: int, warmup: int, memory: set[str]
) -> list[Measurement]:
    """Time the variants in alternation, round after round, so that the load of a shared
    machine falls on all of them alike; the same-run ratios then compare like with like.
    The order rotates from round to round, so that no variant always runs in the same place
    (right after lifetimes' 6 s of pandas work, say): with a fixed order the summary measured
    1.76x the floor in the benchmark and 1.24x in a script timing only the two; the cause of
    that gap was not pinned down, and rotation spreads it over all variants. Peak memory (for
    the names in ``memory``) is measured first, in a separate run."""
    mems = {name: measure_memory(fn) for name, fn in variants if name in memory}
    for _ in range(warmup):
        for _, fn in variants:
            fn()
    times: dict[str, list[float]] = {name: [] for name, _ in variants}
    for r in range(rounds):
        shift = r % len(variants)
        for name, fn in variants[shift:] + variants[:shift]:
            seconds, _ = time_call(fn)
            times[name].append(seconds)
    return [Measurement(name=n, times=times[n], memory=mems.get(n)) for n, _ in variants]


def _floor_aggs() -> list[pl.Expr]:
    return [
        pl.len().alias("n"),
        pl.col("occurred_at").min().alias("first"),
        pl.col("occurred_at").max().alias("last"),
        pl.col("amount").sum().alias("total"),
    ]


def floor(tx: pl.DataFrame) -> pl.DataFrame:
    """The minimal one-pass per-customer aggregation, as a lazy query: polars runs it on its
    default engine for lazy queries (the streaming engine since polars 2.0), as it runs
    ``loyaltykit.summary``. The fastest way polars has to compute it, so the floor."""
    return tx.lazy().group_by("customer_id").agg(*_floor_aggs()).collect()


def floor_eager(tx: pl.DataFrame) -> pl.DataFrame:
    """The same aggregation through the eager ``DataFrame.group_by`` API (the in-memory engine),
    about twice as slow as :func:`floor` with polars 2.x."""
    return tx.group_by("customer_id").agg(*_floor_aggs())


def paired_ratios(ours: Measurement, reference: Measurement) -> str:
    """``ours / reference`` round by round (the variants ran interleaved), and their median."""
    ratios = [o / r for o, r in zip(ours.times, reference.times, strict=True)]
    listed = ", ".join(f"{x:.2f}" for x in ratios)
    return f"{statistics.median(ratios):.2f}x (rounds: {listed})"


def check_against_lifetimes(ours: pl.DataFrame, theirs: Any, tx: pl.DataFrame) -> str:
    refunded = tx.filter(pl.col("kind") == "refund")["customer_id"].unique()
    peer = pl.DataFrame(
        {
            "customer_id": theirs.index.to_numpy().astype(str),
            "frequency_p": theirs["frequency"].to_numpy(),
            "recency_p": theirs["recency"].to_numpy(),
            "T_p": theirs["T"].to_numpy(),
            "monetary_value_p": theirs["monetary_value"].to_numpy(),
        }
    )
    joined = ours.filter(~pl.col("customer_id").is_in(refunded.implode())).join(
        peer, on="customer_id", how="inner"
    )
    bad = joined.filter(
        (pl.col("frequency") != pl.col("frequency_p"))
        | (pl.col("recency") != pl.col("recency_p"))
        | (pl.col("T") != pl.col("T_p"))
        | (
            (pl.col("monetary_value") - pl.col("monetary_value_p")).abs()
            > 1e-9 * pl.col("monetary_value_p").abs().clip(lower_bound=1.0)
        )
    ).height
    return f"agreement with lifetimes on {joined.height:,} customers without refunds: {bad} differ"


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--no-peer", action="store_true", help="skip lifetimes")
    parser.add_argument("--no-items", action="store_true", help="only the summary comparisons")
    args = parser.parse_args()
    data = synthetic_data(
        args.customers,
        args.seed,
        with_feedback=not args.no_items,
        with_interactions=not args.no_items,
    )
    tx, fb, inter, customers = data.transactions, data.feedback, data.interactions, data.customers
    end = data.end.date()
    last = (data.end - dt.timedelta(microseconds=1)).date()
    memory = not args.no_memory
    input_mb = sum(f.estimated_size() for f in (tx, fb, inter, customers)) / MB

    # -- 1. summary: ours, the floor, the peer (interleaved) ------------------------------
    report = Report("analytics: per-customer summary", args)
    rep, warm = args.repeat, args.warmup
    ours = a.summary(tx, observation_end=end)
    variants: list[tuple[str, Any]] = [
        ("polars group_by count/min/max/sum, lazy (floor)", lambda: floor(tx)),
        ("loyaltykit.summary (refunds netted)", lambda: a.summary(tx, observation_end=end)),
        (
            "loyaltykit.summary of a LazyFrame, collected",
            lambda: a.summary(tx.lazy(), observation_end=end).collect(),
        ),
    ]
    peer_fn = None
    if not args.no_peer:
        try:
            from lifetimes.utils import summary_data_from_transaction_data
        except ImportError:
            report.note("lifetimes is not importable here: run with .venv-bench/bin/python")
        else:
            purchases = to_pandas(
                tx.filter(pl.col("kind") == "purchase").select(
                    "customer_id",
                    pl.col("occurred_at").dt.replace_time_zone(None),
                    pl.col("amount").cast(pl.Float64),
                )
            )
            obs_end = dt.datetime(end.year, end.month, end.day)

            def peer_fn() -> Any:
                return summary_data_from_transaction_data(
                    purchases,
                    "customer_id",
                    "occurred_at",
                    monetary_value_col="amount",
                    observation_period_end=obs_end,
                    freq="D",
                )

            variants.append(("lifetimes summary_data_from_transaction_data (peer)", peer_fn))
    variants.append(
        ("polars DataFrame.group_by, eager (in-memory engine)", lambda: floor_eager(tx))
    )
    measured = interleaved(
        variants,
        rounds=rep,
        warmup=warm,
        memory={"loyaltykit.summary (refunds netted)"} if memory else set(),
    )
    m_floor, m_ours, m_general = measured[:3]
    m_eager = measured[-1]
    report.add(m_floor)
    report.add(m_ours, reference=m_floor)
    report.add(m_general, reference=m_floor)
    report.add(m_eager, reference=m_floor)
    report.add(m_ours, reference=m_eager)
    for m in (m_ours, m_general):
        report.note(f"{m.name} / lazy floor, per round: {paired_ratios(m, m_floor)}")
        report.note(f"{m.name} / eager floor, per round: {paired_ratios(m, m_eager)}")
    if peer_fn is not None:
        m_peer = measured[3]
        report.add(m_peer)
        report.add(m_ours, reference=m_peer)
        report.add(m_general, reference=m_peer)
        for m in (m_ours, m_general):
            report.note(f"lifetimes / {m.name}, per round: {paired_ratios(m_peer, m)}")
        report.note(check_against_lifetimes(ours, peer_fn(), tx))
    report.note("the variants above ran interleaved, round by round, to share the machine's load")

    # -- 2. streaming ---------------------------------------------------------------------
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "transactions.parquet"
        tx.write_parquet(path)

        def streaming() -> pl.DataFrame:
            lazy = a.summary(pl.scan_parquet(path), observation_end=end)
            return lazy.collect(engine="streaming")

        m_stream = measure(
            "summary on scan_parquet, streaming engine",
            streaming,
            repeat=rep,
            warmup=warm,
            memory=memory,
        )
        report.add(m_stream, reference=m_floor)
        same = streaming().equals(ours)
        report.note(f"streaming result equals the eager one: {same}")
    report.note(
        f"input frames: {input_mb:,.0f} MB (transactions {tx.estimated_size() / MB:,.0f} MB)"
    )

    # -- 3. items 3-9 ---------------------------------------------------------------------
    if not args.no_items:
        act = a.customer_activity(tx, as_of=last)
        items: list[tuple[str, Any]] = [
            ("rfm (values, scores, segments)", lambda: a.rfm(tx, as_of=last)),
            ("lifecycle stages", lambda: a.lifecycle(tx, as_of=last, customers=customers)),
            ("cohort retention (monthly)", lambda: a.cohort_retention(tx, as_of=last)),
            ("period KPIs (monthly)", lambda: a.period_kpis(tx, as_of=last)),
            ("KPI summary", lambda: a.kpi_summary(tx, as_of=last)),
            ("inter-purchase times", lambda: a.inter_purchase_times(tx, as_of=last)),
            ("time-of-day / weekday patterns", lambda: a.purchase_patterns(tx, as_of=last)),
            ("channel summary", lambda: a.channel_summary(tx, as_of=last)),
            ("value tiers (terciles)", lambda: a.value_tiers(act)),
            ("touchpoint paths", lambda: a.touchpoint_paths(inter, as_of=last)),
            ("channel transitions", lambda: a.channel_transitions(inter, as_of=last)),
            ("journey funnel", lambda: a.journey_funnel(inter, tx, as_of=last)),
            (
                "touchpoints before churn/repeat",
                lambda: a.touchpoints_before_outcomes(inter, tx, as_of=last),
            ),
            ("NPS by month with CI", lambda: a.nps(fb, period="M")),
            ("CSAT by channel", lambda: a.csat(fb, by="channel")),
            (
                "advocates",
                lambda: a.advocates(fb, tx, as_of=last, interactions=inter, customers=customers),
            ),
            (
                "churn signals + risk score",
                lambda: a.churn_signals(tx, as_of=last, feedback=fb, interactions=inter),
            ),
        ]
        items_report = Report("analytics: items 3-9", args)
        items_report.add(m_floor)
        results: list[Measurement] = []
        for name, fn in items:
            m = measure(name, fn, repeat=max(1, rep - 1), warmup=0)
            items_report.add(m, reference=m_floor)
            results.append(m)
        m_profile = measure(
            "customer profile (everything joined)",
            lambda: a.customer_profile(
                tx, as_of=last, feedback=fb, interactions=inter, customers=customers
            ),
            repeat=max(1, rep - 1),
            warmup=0,
            memory=memory,
        )
        items_report.add(m_profile, reference=m_floor)
        total = sum(m.best for m in results) + m_profile.best
        items_report.note(f"all items together: {total:.1f} s (best runs)")
        if m_profile.memory is not None and m_profile.memory.rss_peak_mb is not None:
            items_report.note(
                f"profile peak RSS growth {m_profile.memory.rss_peak_mb:,.0f} MB = "
                f"{m_profile.memory.rss_peak_mb / input_mb:.1f}x the input frames ({input_mb:,.0f} MB)"
            )
        items_report.finish()
    report.finish()


if __name__ == "__main__":
    main()
