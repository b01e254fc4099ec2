#!/usr/bin/env python3
"""Ingest benchmark: 1,000,000 generated rows from JSONL and from Parquet.

Prints rows/s and peak memory of `curation` ingest next to DuckDB's own
``CREATE TABLE AS SELECT * FROM read_json(...)`` / ``read_parquet(...)`` on the same files, in the
same run. Exits non-zero when a target is missed.

Targets: ingest within 3x of DuckDB's time; peak memory (RSS) under 4 GiB.

Usage: python benchmarks/bench_ingest.py [--rows 1000000] [--repeat 3] [--workdir DIR]
Each measurement runs in a fresh subprocess so that peak memory is its own. The two engines run in
turns, ``--repeat`` times each, and the ratio is of their median times: on a shared machine one run
of either can be 15% off. The generated files are synced to disk before anything is timed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Targets, peak_rss_bytes, run_child

TARGET_RATIO = 3.0
TARGET_PEAK_GIB = 4.0


def generate(path_jsonl: Path, path_parquet: Path, n: int) -> None:
    """Alpaca (80%) and OpenAI-messages (20%) rows, zh and en, some with <think> reasoning."""
    import pyarrow as pa
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    rng = random.Random(7)
    words = "data model train sample review quality answer question token language 数据 模型 训练 样本 质量".split()
    with open(path_jsonl, "w", encoding="utf-8") as f:
        for i in range(n):
            text = " ".join(rng.choice(words) for _ in range(rng.randint(20, 80)))
            if i % 5 == 0:
                row = {"id": i, "messages": [{"role": "user", "content": f"q{i} {text[:60]}"},
                                             {"role": "assistant", "content": text}]}
            else:
                out = f"<think>reason {i}</think>{text}" if i % 7 == 0 else text
                row = {"id": i, "instruction": f"question {i}: {text[:50]}", "input": "", "output": out}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    # Parquet: the alpaca rows as a typed table (what a Parquet export of such data looks like)
    table = pj.read_json(path_jsonl, parse_options=pj.ParseOptions(unexpected_field_behavior="ignore",
                         explicit_schema=pa.schema([("id", pa.int64()), ("instruction", pa.string()),
                                                    ("input", pa.string()), ("output", pa.string())])))
    table = table.filter(table.column("instruction").is_valid())
    pq.write_table(table, path_parquet, row_group_size=100_000)


def _child(kind: str, src: str, db: str) -> None:
    started = time.perf_counter()
    if kind.startswith("duckdb"):
        import duckdb

        con = duckdb.connect(db)
        reader = "read_json" if kind == "duckdb-jsonl" else "read_parquet"
        extra = ", format='newline_delimited'" if reader == "read_json" else ""
        con.execute(f"CREATE TABLE t AS SELECT * FROM {reader}(?{extra})", [src])
        rows = con.execute("SELECT count(*) FROM t").fetchall()[0][0]
        con.close()
    else:
        from curation.ingest import ingest_paths
        from curation.store import Store

        report = ingest_paths(Store(db), [src])[0]
        assert report.balanced
        rows = report.rows_loaded
    seconds = time.perf_counter() - started
    print(json.dumps({"kind": kind, "rows": rows, "seconds": seconds, "peak_bytes": peak_rss_bytes()}))


def measure(kind: str, src: Path, workdir: Path) -> dict:
    db = workdir / f"{kind}.duckdb"
    db.unlink(missing_ok=True)
    return run_child(__file__, kind, str(src), str(db))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each engine (median time, highest peak)")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--generate", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generate:
        generate(Path(args.generate[0]), Path(args.generate[1]), int(args.generate[2]))
        return 0
    if args.child:
        _child(*args.child)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        jl, pqf = work / "rows.jsonl", work / "rows.parquet"
        t0 = time.perf_counter()
        # generated in a child, so that this process stays small: ru_maxrss survives exec, and the
        # measured children would otherwise report this process's peak
        subprocess.run([sys.executable, __file__, "--generate", str(jl), str(pqf), str(args.rows)], check=True)
        os.sync()  # the files' dirty pages are written now, not while an engine is timed
        print(f"generated {args.rows:,} rows in {time.perf_counter() - t0:.1f} s "
              f"(jsonl {jl.stat().st_size / 2**20:.0f} MiB, parquet {pqf.stat().st_size / 2**20:.0f} MiB)")
        targets = Targets()
        print(f"{'input':8} {'engine':8} {'rows':>10} {'seconds':>8} {'rows/s':>10} {'peak MiB':>9} {'ratio':>6}  runs (s)")
        for fmt, src in (("jsonl", jl), ("parquet", pqf)):
            runs: dict[str, list[dict]] = {"duckdb": [], "curate": []}
            for _ in range(max(1, args.repeat)):
                for name in runs:
                    runs[name].append(measure(f"{name}-{fmt}", src, work))
            summary = {}
            for name, ms in runs.items():
                summary[name] = {"rows": ms[0]["rows"], "seconds": statistics.median(m["seconds"] for m in ms),
                                 "peak_bytes": max(m["peak_bytes"] for m in ms),
                                 "all": " ".join(f"{m['seconds']:.2f}" for m in ms)}
            base, ours = summary["duckdb"], summary["curate"]
            ratio = ours["seconds"] / base["seconds"]
            for name, m, r in (("duckdb", base, 1.0), ("curate", ours, ratio)):
                print(f"{fmt:8} {name:8} {m['rows']:>10,} {m['seconds']:>8.2f} {m['rows'] / m['seconds']:>10,.0f} "
                      f"{m['peak_bytes'] / 2**20:>9,.0f} {r:>6.2f}  {m['all']}")
            targets.check(ratio <= TARGET_RATIO, f"{fmt} ingest is {ratio:.2f}x DuckDB's time (target <= {TARGET_RATIO}x)")
            targets.check(ours["peak_bytes"] <= TARGET_PEAK_GIB * 2**30,
                          f"{fmt} ingest peak memory {ours['peak_bytes'] / 2**30:.2f} GiB (target < {TARGET_PEAK_GIB} GiB)")
        return targets.finish()


if __name__ == "__main__":
    sys.exit(main())
