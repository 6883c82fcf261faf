"""Shared helpers of the benchmarks: timing, peak memory, same-run ratios, one table format.

Every benchmark script compares loyaltykit with a reference measured **in the same run, on the
same data**: the peer (lifetimes, a bare SQLite loop ...) or the floor (the least work that could
give the answer: a minimal polars group_by, drawing the random numbers ...). Machines are shared
and noisy, so the figure that matters is the ratio, not the seconds.

Typical use::

    from _common import Report, bench_parser, measure

    args = bench_parser(__doc__).parse_args()
    report = Report("summary", args)
    floor = measure("polars group_by (floor)", lambda: ..., repeat=args.repeat)
    ours = measure("loyaltykit.summary", lambda: ..., repeat=args.repeat)
    report.add(floor)
    report.add(ours, reference=floor)        # prints "x.xx x floor"
    report.finish()                          # table, and JSON when --json is given

Timing: best and median of ``repeat`` runs after ``warmup`` unmeasured ones (best is the
least-noisy estimate of the cost; median shows the spread). Memory: one separate run (tracing
slows Python code down), made before the timed ones, measuring the Python allocations' peak with
:mod:`tracemalloc` (numpy buffers included) and the process's resident-set high-water mark over
that run: exact on Linux (``/proc/self/clear_refs`` resets the mark), else sampled every few
milliseconds with psutil or ``/proc/self/statm``. Polars and other native allocators are only
seen by the RSS figures: the growth over the RSS before the run ("RSS +MB") and the absolute
high-water mark ("RSS max MB"). Memory that allocators kept from earlier work is reused without
growing the RSS, so for the cleanest figure of one step run the benchmark with only that step.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "Measurement",
    "Memory",
    "Report",
    "bench_parser",
    "environment",
    "measure",
    "measure_memory",
    "ratio",
    "synthetic_data",
    "time_call",
    "timed",
]

T = TypeVar("T")

MB = 1024 * 1024


# --------------------------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------------------------


def time_call(fn: Callable[[], T]) -> tuple[float, T]:
    """Run ``fn`` once; return (seconds, result). A garbage collection runs first, not timed."""
    gc.collect()
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def timed(fn: Callable[[], T], *, repeat: int = 5, warmup: int = 1) -> tuple[list[float], T]:
    """Run ``fn`` ``warmup`` times unmeasured, then ``repeat`` times measured.

    :returns: the seconds of each measured run and the result of the last one.
    """
    if repeat < 1:
        raise ValueError(f"repeat={repeat}: must be >= 1")
    for _ in range(warmup):
        fn()
    seconds, result = time_call(fn)
    times = [seconds]
    for _ in range(repeat - 1):
        seconds, result = time_call(fn)
        times.append(seconds)
    return times, result


def synthetic_data(
    customers: int, seed: int, *, with_feedback: bool = False, with_interactions: bool = False
) -> Any:
    """The synthetic population benchmarks share (:func:`loyaltykit.datasets.generate`).

    Feedback and interactions are skipped unless asked for (transactions do not change). Prints
    the size and how long generation took.
    """
    from loyaltykit.datasets import generate

    seconds, data = time_call(
        lambda: generate(
            customers,
            seed=seed,
            with_feedback=with_feedback,
            with_interactions=with_interactions,
        )
    )
    print(
        f"synthetic data: {customers:,} customers, {data.transactions.height:,} transactions "
        f"(seed {seed}, generated in {seconds:.1f} s)",
        flush=True,
    )
    return data


# --------------------------------------------------------------------------------------------
# memory
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Memory:
    """Peak memory of one run of a function."""

    python_peak_mb: float
    """Peak of the Python allocations traced by tracemalloc during the run (numpy included)."""
    rss_peak_mb: float | None
    """Resident-set high-water mark during the run, above the RSS before it (None if unknown).

    Memory the allocators kept from earlier work (freed but not returned to the system) is
    reused without raising the RSS, so this can understate a run that follows bigger ones:
    :func:`measure` measures memory before timing, after returning what glibc can."""
    rss_hwm_mb: float | None
    """The absolute resident-set high-water mark during the run (None if unknown)."""
    rss_method: str
    """How the RSS peak was measured: ``clear_refs``, ``psutil-sampling``, ``statm-sampling``
    or ``none``."""


def _statm_rss() -> int | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def _status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def _reset_hwm() -> bool:
    """Reset the kernel's RSS high-water mark (Linux >= 4.0); False when not possible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        return False
    return _status_kb("VmHWM") is not None


class _Sampler:
    """Polls the RSS every ``interval`` seconds in a thread and keeps the maximum."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._read: Callable[[], int | None]
        try:
            import psutil  # type: ignore[import-untyped,unused-ignore]

            process = psutil.Process()
            self._read = lambda: int(process.memory_info().rss)
            self.method = "psutil-sampling"
        except ImportError:
            self._read = _statm_rss
            self.method = "statm-sampling" if _statm_rss() is not None else "none"
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._read() or 0)
            self._stop.wait(self.interval)

    def __enter__(self) -> _Sampler:
        self.peak = self._read() or 0
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._read() or 0)


def _current_rss() -> int | None:
    rss = _statm_rss()
    if rss is not None:
        return rss
    try:
        import psutil  # type: ignore[import-untyped,unused-ignore]

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        return None


def _trim() -> None:
    """Collect garbage and ask glibc to return freed memory to the system (no-op elsewhere)."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def measure_memory(fn: Callable[[], Any]) -> Memory:
    """Run ``fn`` once and report its peak memory (Python allocations and RSS above baseline)."""
    _trim()
    before = _current_rss()
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base_traced = tracemalloc.get_traced_memory()[0]
    try:
        if before is not None and _reset_hwm():
            fn()
            hwm = _status_kb("VmHWM")
            rss_peak = None if hwm is None else max(hwm - before, 0) / MB
            rss_hwm = None if hwm is None else hwm / MB
            method = "clear_refs"
        else:
            with _Sampler() as sampler:
                fn()
            method = sampler.method
            rss_peak = (
                None if method == "none" or before is None else max(sampler.peak - before, 0) / MB
            )
            rss_hwm = None if method == "none" else sampler.peak / MB
        python_peak = (tracemalloc.get_traced_memory()[1] - base_traced) / MB
    finally:
        if not tracing:
            tracemalloc.stop()
    return Memory(
        python_peak_mb=python_peak, rss_peak_mb=rss_peak, rss_hwm_mb=rss_hwm, rss_method=method
    )


# --------------------------------------------------------------------------------------------
# measurements, ratios, report
# --------------------------------------------------------------------------------------------


@dataclass
class Measurement:
    """Timings (and optionally memory) of one variant of a benchmark."""

    name: str
    """What was run (``"loyaltykit.summary"``, ``"lifetimes summary (peer)"`` ...)."""
    times: list[float]
    """Seconds of each measured run."""
    memory: Memory | None = None
    """Peak memory of one extra run, if measured."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Anything else worth reporting (rows, log-likelihood, throughput ...)."""

    @property
    def best(self) -> float:
        """Fastest run, in seconds."""
        return min(self.times)

    @property
    def median(self) -> float:
        """Median run, in seconds."""
        return statistics.median(self.times)


def measure(
    name: str,
    fn: Callable[[], Any],
    *,
    repeat: int = 5,
    warmup: int = 1,
    memory: bool = False,
    extra: dict[str, Any] | None = None,
) -> Measurement:
    """Time ``fn`` (best/median of ``repeat`` runs) and, if asked, its peak memory in one more
    run, made first (before the timed runs have filled the allocators' caches)."""
    mem = measure_memory(fn) if memory else None
    times, _ = timed(fn, repeat=repeat, warmup=warmup)
    return Measurement(name=name, times=times, memory=mem, extra=dict(extra or {}))


def ratio(candidate: Measurement, reference: Measurement, *, use: str = "best") -> float:
    """``reference / candidate`` time: how many times faster the candidate is (same run)."""
    ref = reference.best if use == "best" else reference.median
    cand = candidate.best if use == "best" else candidate.median
    return ref / cand if cand > 0 else float("inf")


def environment() -> dict[str, Any]:
    """Python, platform, CPU count and the versions of the libraries that matter."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "executable": sys.executable,
    }
    for module in ("loyaltykit", "numpy", "polars", "scipy", "pandas", "lifetimes"):
        mod = sys.modules.get(module)
        if mod is not None:
            info[module] = getattr(mod, "__version__", "?")
    return info


def bench_parser(description: str | None, *, customers: int = 1_000_000) -> argparse.ArgumentParser:
    """The options every benchmark shares: size, seed, repeats, JSON output."""
    parser = argparse.ArgumentParser(
        description=(description or "").strip().splitlines()[0] if description else None
    )
    parser.add_argument(
        "--customers",
        type=int,
        default=customers,
        help=f"synthetic customers to generate (default {customers:,})",
    )
    parser.add_argument("--seed", type=int, default=42, help="seed of the synthetic data")
    parser.add_argument("--repeat", type=int, default=3, help="measured runs per variant")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured runs first")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    parser.add_argument("--json", type=Path, default=None, help="also write results to this file")
    return parser


@dataclass
class _Row:
    measurement: Measurement
    reference: str | None
    speedup: float | None


class Report:
    """Collects measurements of one benchmark, prints them as a table and writes JSON.

    :param title: the benchmark's name.
    :param args: the parsed options (recorded in the JSON output).
    :param data: what the data was (rows, customers ...), shown above the table.
    """

    def __init__(
        self, title: str, args: argparse.Namespace | None = None, data: dict[str, Any] | None = None
    ) -> None:
        self.title = title
        self.args = args
        self.data = dict(data or {})
        self.rows: list[_Row] = []
        self.notes: list[str] = []

    def add(
        self, measurement: Measurement, *, reference: Measurement | None = None
    ) -> float | None:
        """Add a row; with ``reference``, its speed-up over it (``reference / this``, same run)."""
        speedup = None if reference is None else ratio(measurement, reference)
        self.rows.append(_Row(measurement, None if reference is None else reference.name, speedup))
        return speedup

    def note(self, text: str) -> None:
        """A line printed under the table (e.g. a claim checked, a caveat)."""
        self.notes.append(text)

    def lines(self) -> list[str]:
        """The report as plain text lines."""
        header = [
            "variant",
            "best s",
            "median s",
            "speed-up",
            "py peak MB",
            "RSS +MB",
            "RSS max MB",
        ]
        body = []
        for row in self.rows:
            m = row.measurement
            speed = "" if row.speedup is None else f"{row.speedup:.2f}x vs {row.reference}"
            mem = m.memory
            body.append(
                [
                    m.name,
                    f"{m.best:.4f}",
                    f"{m.median:.4f}",
                    speed,
                    "" if mem is None else f"{mem.python_peak_mb:.1f}",
                    "" if mem is None or mem.rss_peak_mb is None else f"{mem.rss_peak_mb:.1f}",
                    "" if mem is None or mem.rss_hwm_mb is None else f"{mem.rss_hwm_mb:.1f}",
                ]
            )
        widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

        def fmt(cells: Sequence[str]) -> str:
            first = cells[0].ljust(widths[0])
            pairs = list(zip(cells, widths, strict=True))[1:]
            rest = [c.ljust(w) if i == 2 else c.rjust(w) for i, (c, w) in enumerate(pairs)]
            return "  ".join([first, *rest]).rstrip()

        data = ", ".join(f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}" for k, v in
                         self.data.items())  # fmt: skip
        out = [f"== {self.title}" + (f" ({data})" if data else "")]
        out.append(fmt(header))
        out.append("  ".join("-" * w for w in widths))
        out.extend(fmt(cells) for cells in body)
        for row in self.rows:
            for key, value in row.measurement.extra.items():
                out.append(f"   {row.measurement.name}: {key} = {value}")
        out.extend(f"note: {n}" for n in self.notes)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready."""
        return {
            "benchmark": self.title,
            "data": self.data,
            "options": {k: str(v) for k, v in vars(self.args).items()} if self.args else {},
            "environment": environment(),
            "results": [
                {
                    "name": r.measurement.name,
                    "times_s": r.measurement.times,
                    "best_s": r.measurement.best,
                    "median_s": r.measurement.median,
                    "reference": r.reference,
                    "speedup_vs_reference": r.speedup,
                    "memory": None
                    if r.measurement.memory is None
                    else asdict(r.measurement.memory),
                    "extra": r.measurement.extra,
                }
                for r in self.rows
            ],
            "notes": self.notes,
        }

    def finish(self, json_path: Path | None = None) -> None:
        """Print the table; write JSON to ``json_path`` (or the ``--json`` option) if given."""
        print("\n".join(self.lines()), flush=True)
        path = json_path
        if path is None and self.args is not None:
            path = getattr(self.args, "json", None)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n")
            print(f"results written to {path}")
