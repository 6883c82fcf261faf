"""Synthetic data generation throughput against the floor of drawing the same random numbers.

The generator (:func:`loyaltykit.datasets.generate`) is vectorised numpy and polars. Its floor is
the cost of the random numbers alone: this benchmark counts every variate the generator draws
(one instrumented run), then times drawing that many standard uniforms with numpy (the cheapest
variate), in chunks of one million. The ratio says how much the model, the sorting and the
building of the polars frames (ids, timestamps, decimals) cost on top of the randomness.

Variants, all on the same seed and size:

* ``generate (all frames)``: customers, transactions, feedback, interactions and the truth;
* ``generate (transactions only)``: ``with_feedback=False, with_interactions=False``;
* ``numpy uniforms (floor)``: as many ``Generator.random`` variates as the full run draws.

Run::

    .venv/bin/python benchmarks/bench_synthetic.py --customers 1000000
"""

from __future__ import annotations

from typing import Any

import numpy as np

from _common import Report, bench_parser, measure
from loyaltykit.datasets import generate, synthetic

_CHUNK = 1_000_000


class _CountingGenerator:
    """Wraps a numpy Generator and counts the variates its methods return."""

    def __init__(self, rng: np.random.Generator, counter: list[int]) -> None:
        self._rng = rng
        self._counter = counter

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._rng, name)
        if not callable(method):
            return method

        def counted(*args: Any, **kwargs: Any) -> Any:
            out = method(*args, **kwargs)
            self._counter[0] += int(np.size(out))
            return out

        return counted


def count_variates(customers: int, seed: int) -> int:
    """How many random variates one full ``generate`` run draws."""
    counter = [0]
    original = synthetic._make_rngs

    def counting(seed: int) -> dict[str, Any]:
        return {k: _CountingGenerator(v, counter) for k, v in original(seed).items()}

    synthetic._make_rngs = counting  # type: ignore[assignment]
    try:
        generate(customers, seed=seed)
    finally:
        synthetic._make_rngs = original
    return counter[0]


def draw_uniforms(count: int, seed: int) -> float:
    """Draw ``count`` standard uniforms in chunks; returns a checksum so nothing is skipped."""
    rng = np.random.default_rng(seed)
    total = 0.0
    left = count
    while left > 0:
        n = min(left, _CHUNK)
        total += float(rng.random(n)[0])
        left -= n
    return total


def main() -> None:
    args = bench_parser(__doc__).parse_args()
    n, seed = args.customers, args.seed
    variates = count_variates(n, seed)
    sample = generate(n, seed=seed)
    rows = {
        "transactions": sample.transactions.height,
        "feedback": sample.feedback.height,
        "interactions": sample.interactions.height,
    }
    del sample
    report = Report(
        "synthetic data generation",
        args,
        data={"customers": n, **rows, "random_variates": variates},
    )
    memory = not args.no_memory
    floor = measure(
        "numpy uniforms (floor)",
        lambda: draw_uniforms(variates, seed),
        repeat=args.repeat,
        warmup=args.warmup,
        memory=memory,
    )
    full = measure(
        "generate (all frames)",
        lambda: generate(n, seed=seed),
        repeat=args.repeat,
        warmup=args.warmup,
        memory=memory,
    )
    slim = measure(
        "generate (transactions only)",
        lambda: generate(n, seed=seed, with_feedback=False, with_interactions=False),
        repeat=args.repeat,
        warmup=args.warmup,
        memory=memory,
    )
    total_rows = sum(rows.values()) + 2 * n  # plus customers and truth
    full.extra["rows_per_second"] = f"{total_rows / full.best:,.0f}"
    slim.extra["transactions_per_second"] = f"{rows['transactions'] / slim.best:,.0f}"
    report.add(floor)
    report.add(full, reference=floor)
    report.add(slim, reference=floor)
    report.note(
        "speed-up below 1 is expected: it is the floor's time over the generator's, i.e. the "
        f"generator takes {full.best / floor.best:.1f}x the time of drawing its random numbers "
        "alone"
    )
    report.finish()


if __name__ == "__main__":
    main()
