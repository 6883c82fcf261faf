"""Validating a transaction log in memory and lazily: read_transactions against scan_transactions.

Both readers parse and check every cell of the same file and give the same rows; the question is
what each costs in time and, above all, in memory. Each variant reads the file, validates it and
writes the clean rows to Parquet:

* ``polars read + write (floor)``: ``pl.read_parquet`` / ``pl.read_csv`` (all text) and
  ``write_parquet``, no parsing or checking: the least an in-memory reader can do;
* ``polars scan + sink (floor)``: ``scan_*`` then ``sink_parquet`` on the streaming engine: the
  least a lazy reader can do;
* ``read_transactions + write``: the eager reader, then ``write_parquet``;
* ``scan_transactions + sink``: the lazy reader (its validation queries run on the streaming
  engine), then ``sink_parquet`` of the lazy result on the streaming engine.

The file is the synthetic population (``--customers``), written as Parquet and as CSV text (times
with their UTC offset, amounts as decimal text), as the synthetic-data CLI writes it.

Memory: each variant's peak is measured in a **fresh child process** that runs only it (memory that
allocators kept from another variant would hide a peak). ``RSS +MB`` is the growth of the resident
set over the run; for CSV it includes the pages of the file that polars maps into memory, which
the system can drop at any time. Times: the variants run interleaved, ``--repeat`` rounds.

Run::

    .venv/bin/python benchmarks/bench_io.py --customers 1000000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import polars as pl

from _common import Measurement, Memory, Report, bench_parser, measure_memory, synthetic_data, timed
from loyaltykit import read_transactions, scan_transactions

VARIANTS = (
    "polars read + write (floor)",
    "polars scan + sink (floor)",
    "read_transactions + write",
    "scan_transactions + sink",
)


def variant(name: str, source: Path, out: Path) -> Callable[[], Any]:
    """The function that runs ``name`` on ``source``, writing the clean rows to ``out``."""
    csv = source.suffix == ".csv"
    if name == "polars read + write (floor)":
        if csv:
            return lambda: pl.read_csv(source, infer_schema=False).write_parquet(out)
        return lambda: pl.read_parquet(source).write_parquet(out)
    if name == "polars scan + sink (floor)":
        scan = pl.scan_csv(source, infer_schema=False) if csv else pl.scan_parquet(source)
        return lambda: scan.sink_parquet(out, engine="streaming")
    if name == "read_transactions + write":
        return lambda: read_transactions(source).write_parquet(out)
    if name == "scan_transactions + sink":
        return lambda: scan_transactions(source).sink_parquet(out, engine="streaming")
    raise ValueError(name)


def child_memory(name: str, source: Path, out: Path) -> Memory:
    """Peak memory of one run of ``name``, in a new process."""
    result = subprocess.run(
        [sys.executable, __file__, "--child", name, "--source", str(source), "--out", str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    return Memory(**json.loads(result.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asdict(measure_memory(variant(args.child, args.source, args.out)))))
        return

    tx = synthetic_data(args.customers, args.seed).transactions
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = {"parquet": folder / "tx.parquet", "csv": folder / "tx.csv"}
        tx.write_parquet(files["parquet"])
        tx.with_columns(
            pl.col("occurred_at").dt.to_string("%Y-%m-%dT%H:%M:%S%.f%:z"),
            pl.col("amount").cast(pl.String),
        ).write_csv(files["csv"])
        in_memory_mb = tx.estimated_size("mb")
        del tx
        out = folder / "clean.parquet"
        for fmt, source in files.items():
            mb = source.stat().st_size / 2**20
            report = Report(
                f"validate transactions from {fmt}",
                args,
                {"rows": pl.scan_parquet(files["parquet"]).select(pl.len()).collect().item(),
                 "file MB": round(mb), "in memory MB": round(in_memory_mb)},
            )  # fmt: skip
            memory = (
                {}
                if args.no_memory
                else {name: child_memory(name, source, out) for name in VARIANTS}
            )
            runs = {name: variant(name, source, out) for name in VARIANTS}
            for run in runs.values():
                for _ in range(args.warmup):
                    run()
            times: dict[str, list[float]] = {name: [] for name in VARIANTS}
            for _ in range(args.repeat):  # interleaved: the machine's noise hits every variant
                for name, run in runs.items():
                    times[name].extend(timed(run, repeat=1, warmup=0)[0])
            m = {n: Measurement(n, times[n], memory.get(n)) for n in VARIANTS}
            report.add(m["polars read + write (floor)"])
            report.add(m["polars scan + sink (floor)"])
            report.add(m["read_transactions + write"], reference=m["polars read + write (floor)"])
            report.add(m["scan_transactions + sink"], reference=m["read_transactions + write"])
            eager, lazy = (
                memory.get("read_transactions + write"),
                memory.get("scan_transactions + sink"),
            )
            if eager and lazy and eager.rss_peak_mb and lazy.rss_peak_mb:
                report.note(
                    f"peak RSS growth: scan_transactions {lazy.rss_peak_mb:,.0f} MB, "
                    f"read_transactions {eager.rss_peak_mb:,.0f} MB "
                    f"({lazy.rss_peak_mb / eager.rss_peak_mb:.2f}x); the frame in memory is "
                    f"{in_memory_mb:,.0f} MB"
                )
            report.finish(
                None if args.json is None else args.json.with_name(f"{args.json.stem}-{fmt}.json")
            )


if __name__ == "__main__":
    main()
