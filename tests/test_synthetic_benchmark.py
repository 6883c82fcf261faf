"""The benchmark harness (``benchmarks/_common.py``) and ``bench_synthetic`` on tiny inputs.

Benchmarks are run by hand, not in CI; these tests keep them from rotting: the helpers measure,
compare and report what they say, and the synthetic benchmark's variate counter counts.
No timing is asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def common() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import _common

        yield _common
    finally:
        sys.path.remove(str(BENCHMARKS))


@pytest.fixture(scope="module")
def bench(common: ModuleType) -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import bench_synthetic

        yield bench_synthetic
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_timed_runs_warmup_then_repeats(common: ModuleType) -> None:
    calls: list[int] = []

    def fn() -> int:
        calls.append(1)
        return len(calls)

    times, last = common.timed(fn, repeat=3, warmup=2)
    assert len(times) == 3
    assert all(t >= 0 for t in times)
    assert len(calls) == 5
    assert last == 5
    with pytest.raises(ValueError, match="repeat"):
        common.timed(fn, repeat=0)


def test_measure_and_ratio(common: ModuleType) -> None:
    fast = common.Measurement(name="fast", times=[1.0, 2.0, 3.0])
    slow = common.Measurement(name="slow", times=[4.0, 5.0, 9.0])
    assert fast.best == 1.0
    assert fast.median == 2.0
    assert common.ratio(fast, slow) == 4.0
    assert common.ratio(fast, slow, use="median") == 2.5
    m = common.measure("sum", lambda: sum(range(1000)), repeat=2, warmup=0)
    assert len(m.times) == 2
    assert m.memory is None


def test_measure_memory_sees_a_large_numpy_allocation(common: ModuleType) -> None:
    def allocate() -> float:
        block = np.ones(20_000_000 // 8)  # 20 MB, touched
        return float(block.sum())

    mem = common.measure_memory(allocate)
    assert mem.python_peak_mb >= 18
    if mem.rss_peak_mb is not None:
        assert mem.rss_hwm_mb is not None
        assert mem.rss_hwm_mb >= mem.rss_peak_mb
        assert mem.rss_method in {"clear_refs", "psutil-sampling", "statm-sampling"}


def test_report_table_and_json(common: ModuleType, tmp_path: Path) -> None:
    args = argparse.Namespace(customers=10, json=tmp_path / "out" / "r.json")
    report = common.Report("demo", args, data={"rows": 1234})
    floor = common.Measurement(name="floor", times=[0.5, 0.6])
    ours = common.Measurement(
        name="ours",
        times=[1.0, 1.5],
        memory=common.Memory(
            python_peak_mb=1.5, rss_peak_mb=2.0, rss_hwm_mb=100.0, rss_method="clear_refs"
        ),
        extra={"rows_per_second": "1,234"},
    )
    report.add(floor)
    assert report.add(ours, reference=floor) == 0.5
    report.note("a note")
    lines = report.lines()
    assert lines[0] == "== demo (rows=1,234)"
    assert "0.50x vs floor" in "\n".join(lines)
    assert any(line.startswith("note: a note") for line in lines)
    report.finish()
    saved = json.loads(args.json.read_text())
    assert saved["benchmark"] == "demo"
    assert [r["name"] for r in saved["results"]] == ["floor", "ours"]
    assert saved["results"][1]["speedup_vs_reference"] == 0.5
    assert saved["results"][1]["memory"]["rss_method"] == "clear_refs"
    assert "numpy" in saved["environment"]


def test_bench_parser_defaults(common: ModuleType) -> None:
    args = common.bench_parser("Doc line.\n\nMore.").parse_args([])
    assert args.customers == 1_000_000
    assert args.repeat == 3
    assert args.json is None
    args = common.bench_parser(None, customers=5).parse_args(["--json", "x.json", "--no-memory"])
    assert args.customers == 5
    assert args.no_memory
    assert args.json == Path("x.json")


def test_variate_counter_counts_and_restores(bench: ModuleType) -> None:
    from loyaltykit.datasets import generate, synthetic

    original = synthetic._make_rngs
    count = bench.count_variates(200, seed=1)
    assert synthetic._make_rngs is original
    data = generate(200, seed=1)
    # at least one variate per purchase amount and per interaction time
    assert count > data.transactions.height + data.interactions.height
    assert count == bench.count_variates(200, seed=1)
    assert bench.draw_uniforms(2_500_000, seed=3) >= 0
