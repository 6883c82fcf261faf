"""Regenerate lifetimes_conditional_pmf.json: lifetimes 0.11.3's conditional P(X(t) = n | x, t_x, T)
of the Pareto/NBD model (Fader & Hardie's closed form, note 028) at the published CDNOW parameters.

Run with the benchmark environment (lifetimes needs pandas<2, numpy<2)::

    .venv-bench/bin/python tests/models/generate_conditional_pmf_fixture.py

The tests compare loyaltykit's values with these numbers; they never import lifetimes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from lifetimes import ParetoNBDFitter

from loyaltykit.datasets import load_cdnow_summary

OUT = Path(__file__).with_name("lifetimes_conditional_pmf.json")
ROWS = [0, 1, 2, 10, 50, 100, 200, 1000, 2000, 2356]
PARAMS = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
COUNTS = [0, 1, 2, 3, 5]
T_WINDOW = 39.0


def main() -> None:
    summary = load_cdnow_summary()[ROWS]
    model = ParetoNBDFitter()
    model.params_ = pd.Series(PARAMS)
    table = {
        str(n): [
            float(
                model.conditional_probability_of_n_purchases_up_to_time(
                    n, T_WINDOW, float(row["frequency"]), float(row["recency"]), float(row["T"])
                )
            )
            for row in summary.iter_rows(named=True)
        ]
        for n in COUNTS
    }
    out = {"rows": ROWS, "params": PARAMS, "t": T_WINDOW, "probability": table}
    OUT.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
