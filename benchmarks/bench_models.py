"""BTYD models against lifetimes, in the same run and on the same data.

Three comparisons:

1. **CLV pipeline** on synthetic customers (:func:`loyaltykit.datasets.generate`, BG/NBD buying
   and Gamma-Gamma spend in days): per-customer summary, BG/NBD fit, Gamma-Gamma fit on the
   repeat buyers, then expected purchases (next 30 days), P(alive) and CLV (12 steps of 30 days,
   1% a step) for every customer. lifetimes gets the purchase rows only (refunds removed, not
   timed) as a pandas frame; loyaltykit nets the refunds itself inside the timed summary.
2. **BG/NBD log-likelihood** on the same summary (lifetimes' own): loyaltykit's optimum against
   lifetimes' parameters, both evaluated with the same formula.
3. **Pareto/NBD fit** on the full CDNOW data (23,570 customers, weeks): loyaltykit's
   :class:`~loyaltykit.models.ParetoNBD` against lifetimes' ``ParetoNBDFitter``.

Peak memory of loyaltykit's pipeline (and of the modelling part alone) is reported next to the
size of the per-customer summary. Needs the benchmark environment (lifetimes, pandas<2,
numpy<2)::

    .venv-bench/bin/python benchmarks/bench_models.py --customers 1000000
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import polars as pl

from _common import Report, bench_parser, measure, synthetic_data
from loyaltykit.analytics import summary
from loyaltykit.datasets import load_cdnow
from loyaltykit.models import BetaGeo, GammaGamma, ParetoNBD, customer_lifetime_value

STEP_DAYS = 30
STEPS = 12
RATE_PER_STEP = 0.01
DAILY_RATE = (1 + RATE_PER_STEP) ** (1 / STEP_DAYS) - 1


def to_pandas(frame: pl.DataFrame) -> Any:
    """A pandas frame without pyarrow (the benchmark environment has none)."""
    import pandas as pd

    return pd.DataFrame({c: frame.get_column(c).to_numpy() for c in frame.columns})


def ours_pipeline(tx: pl.DataFrame, end: dt.date) -> pl.DataFrame:
    s = summary(tx, observation_end=end, time_unit="D")
    return ours_models(s)


def ours_models(s: pl.DataFrame) -> pl.DataFrame:
    bg = BetaGeo(time_unit="D").fit(s)
    gg = GammaGamma().fit(s.filter(pl.col("monetary_value") > 0))
    out = bg.expected_purchases(STEP_DAYS, bg.probability_alive(s))
    return customer_lifetime_value(  # type: ignore[return-value]
        bg,
        gg,
        out,
        horizon=STEP_DAYS * STEPS,
        step=STEP_DAYS,
        discount_rate=DAILY_RATE,
        time_unit="D",
    )


def lifetimes_pipeline(df: Any, end: dt.datetime) -> Any:
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    s = summary_data_from_transaction_data(
        df,
        "customer_id",
        "occurred_at",
        monetary_value_col="amount",
        observation_period_end=end,
        freq="D",
    )
    bgf = BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"])
    repeat = s[(s["frequency"] > 0) & (s["monetary_value"] > 0)]
    ggf = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    s["expected"] = bgf.conditional_expected_number_of_purchases_up_to_time(
        STEP_DAYS, s["frequency"], s["recency"], s["T"]
    )
    s["alive"] = bgf.conditional_probability_alive(s["frequency"], s["recency"], s["T"])
    s["clv"] = ggf.customer_lifetime_value(
        bgf,
        s["frequency"],
        s["recency"],
        s["T"],
        s["monetary_value"],
        time=STEPS,
        discount_rate=RATE_PER_STEP,
        freq="D",
    )
    return s, bgf


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--peer-repeat", type=int, default=1, help="measured runs of lifetimes")
    parser.add_argument("--skip-pipeline", action="store_true", help="only the Pareto/NBD part")
    args = parser.parse_args()
    report = Report("BTYD models vs lifetimes", args)

    if not args.skip_pipeline:
        data = synthetic_data(args.customers, args.seed)
        from loyaltykit.datasets.synthetic import DEFAULT_END

        end_date = (DEFAULT_END - dt.timedelta(days=1)).date()
        tx = data.transactions
        purchases = tx.filter(pl.col("kind") == "purchase").select(
            "customer_id",
            pl.col("occurred_at").dt.replace_time_zone(None),
            pl.col("amount").cast(pl.Float64),
        )
        pdf = to_pandas(purchases)
        end_naive = dt.datetime.combine(end_date, dt.time())
        report.data.update(
            customers=args.customers, transactions=tx.height, purchases=purchases.height
        )

        kept: dict[str, Any] = {}

        def run_ours() -> None:
            kept["ours"] = ours_pipeline(tx, end_date)

        def run_peer() -> None:
            kept["peer"] = lifetimes_pipeline(pdf, end_naive)

        ours = measure(
            "loyaltykit pipeline",
            run_ours,
            repeat=args.repeat,
            warmup=args.warmup,
            memory=not args.no_memory,
        )
        s = summary(tx, observation_end=end_date, time_unit="D")
        size_mb = s.estimated_size() / 2**20
        models = measure(
            "loyaltykit models only (on the summary)",
            lambda: ours_models(s),
            repeat=args.repeat,
            warmup=args.warmup,
            memory=not args.no_memory,
        )
        peer = measure(
            "lifetimes pipeline",
            run_peer,
            repeat=args.peer_repeat,
            warmup=0,
        )
        report.add(peer)
        speedup = report.add(ours, reference=peer)
        report.add(models)
        report.note(f"pipeline speed-up over lifetimes: {speedup:.1f}x (goal >= 20x)")
        report.note(f"per-customer summary: {s.height:,} rows, {size_mb:.1f} MB")
        for m in (ours, models):
            if m.memory is not None and m.memory.rss_peak_mb is not None:
                report.note(
                    f"{m.name}: RSS +{m.memory.rss_peak_mb:.0f} MB "
                    f"({m.memory.rss_peak_mb / size_mb:.1f}x the summary), python peak "
                    f"{m.memory.python_peak_mb:.0f} MB"
                )

        # 2. log-likelihood on lifetimes' own summary
        s_peer, bgf = kept["peer"]
        same = pl.DataFrame({c: s_peer[c].to_numpy() for c in ("frequency", "recency", "T")})
        ours_fit = BetaGeo().fit(same)
        peer_params = {k: float(bgf.params_[k]) for k in ("r", "alpha", "a", "b")}
        peer_ll = float(
            BetaGeo.from_params(**peer_params)
            .individual_log_likelihood(same)["log_likelihood"]
            .sum()
        )
        report.note(
            f"BG/NBD log-likelihood on lifetimes' summary: loyaltykit {ours_fit.log_likelihood_:.4f} "
            f"vs lifetimes {peer_ll:.4f} (difference {ours_fit.log_likelihood_ - peer_ll:+.6f}); "
            f"params loyaltykit { {k: round(v, 6) for k, v in ours_fit.params_.items()} } "
            f"lifetimes { {k: round(v, 6) for k, v in peer_params.items()} }"
        )
        clv_ours = kept["ours"]
        report.note(
            f"CLV totals: loyaltykit {clv_ours.get_column(clv_ours.columns[-1]).sum():,.0f}, "
            f"lifetimes {s_peer['clv'].sum():,.0f}"
        )

    # 3. Pareto/NBD on CDNOW
    from lifetimes import ParetoNBDFitter

    cd = summary(load_cdnow(), observation_end=dt.date(1998, 6, 30), time_unit="W")
    cd_pd = to_pandas(cd.select("frequency", "recency", "T"))
    pn_ours = measure(
        "loyaltykit ParetoNBD fit (CDNOW 23,570)",
        lambda: ParetoNBD().fit(cd),
        repeat=args.repeat,
        warmup=args.warmup,
    )
    fitted_peer: dict[str, Any] = {}

    def run_peer_pareto() -> None:
        fitted_peer["model"] = ParetoNBDFitter().fit(
            cd_pd["frequency"], cd_pd["recency"], cd_pd["T"]
        )

    pn_peer = measure(
        "lifetimes ParetoNBDFitter fit (CDNOW 23,570)",
        run_peer_pareto,
        repeat=args.peer_repeat,
        warmup=0,
    )
    report.add(pn_peer)
    pn_speedup = report.add(pn_ours, reference=pn_peer)
    fitted = ParetoNBD().fit(cd)
    peer_fit = fitted_peer["model"]
    peer_params = {k: float(peer_fit.params_[k]) for k in ("r", "alpha", "s", "beta")}
    peer_ll = float(
        ParetoNBD.from_params(**peer_params).individual_log_likelihood(cd)["log_likelihood"].sum()
    )
    report.note(f"Pareto/NBD speed-up over lifetimes: {pn_speedup:.1f}x (goal >= 50x)")
    report.note(
        f"Pareto/NBD log-likelihood: loyaltykit {fitted.log_likelihood_:.4f} vs lifetimes "
        f"{peer_ll:.4f} (difference {fitted.log_likelihood_ - peer_ll:+.6f}); evaluations of the "
        f"full-data objective: {fitted.convergence_.function_evaluations} "
        f"({fitted.convergence_.message})"
        + ("" if math.isfinite(peer_ll) else " (lifetimes' parameters give a non-finite value)")
    )
    report.finish()


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
