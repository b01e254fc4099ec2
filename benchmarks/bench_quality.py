#!/usr/bin/env python3
"""Quality-rules benchmark: our `QualityStep` next to datatrove's Gopher and C4 filters on the same data.

100,000 samples (``--rows``) are built from the bundled sample data in data/sample (instructions.jsonl,
dialogues_sharegpt.jsonl, messages_openai.json; Chinese and English, single-turn and dialogues), recycled
to the count in a fixed shuffled order; each recycled copy gets a counter sentence appended to its
instruction (first user turn), so that no two rows are identical while the answers keep their faults.
``<think>`` blocks are split into ``reasoning`` the way ingest does.

* ours: ``QualityStep().process(batch)`` (all rules, default settings) on batches of 50,000 rows, the
  pipeline's default batch size.
* datatrove: ``GopherRepetitionFilter``, ``GopherQualityFilter`` and ``C4QualityFilter`` (default
  settings, FineWeb's order) on ``Document(text=instruction + "\\n\\n" + output)`` (dialogues: the turns
  joined by a blank line), measured two ways: ``filter(doc)`` called in a loop (a document rejected by
  one filter is not shown to the next, as in a pipeline) and the filters' ``run()`` generators chained
  as a datatrove executor chains them. The faster of the two is the baseline.

Both sides are warmed up on a small slice first; each side runs in a fresh subprocess (so that its peak
memory is its own) on the same Parquet file. Rejections are printed as information only: the rule sets
differ (ours judges instruction data, Gopher/C4 judge web documents).

Target: ours (all rules) at least 2x datatrove's throughput (all three filters together).
Exits 1 when the target is missed, 2 when datatrove is not installed.

Requirements: the ``bench`` extra, ``pip install -e '.[bench]'`` (datatrove, plus spaCy and regex:
datatrove's English word and sentence splitter is a blank spaCy pipeline, ``spacy.blank("en")``, which
needs no model download and works offline).

Usage: python benchmarks/bench_quality.py [--rows 100000] [--workdir DIR] [--profile-rules]
``--profile-rules`` also times ours once per rule with that rule disabled (what each rule costs).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from _common import Targets, peak_rss_bytes, run_child

TARGET_RATIO = 2.0
BATCH_ROWS = 50_000  # the pipeline's default batch size
WARMUP_ROWS = 1_000
SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "sample"
INSTALL_HINT = ("datatrove is not installed; install the benchmark requirements with\n"
                "    pip install -e '.[bench]'\n"
                "or  pip install 'datatrove>=0.4' spacy regex")
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
_CJK = re.compile(r"[\u4e00-\u9fff]")


# --- data -------------------------------------------------------------------------------------------------
def _text(v) -> str | None:
    """A field as text: None stays None; OpenAI content parts are joined; other values become strings."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, list):
        return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in v)
    return str(v)


def _turn(role, content, reasoning=None) -> dict:
    from schemas.sample import split_reasoning

    content = _text(content)
    if role == "assistant" and reasoning is None:
        reasoning, content = split_reasoning(content)
    return {"role": role, "content": content, "reasoning": _text(reasoning)}


def load_samples() -> list[dict]:
    """The bundled samples as normalised records (the columns a pipeline batch has)."""
    from schemas.sample import split_reasoning

    out: list[dict] = []
    with open(SAMPLE_DIR / "instructions.jsonl", encoding="utf-8") as f:
        for line in f:
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if not isinstance(r, dict):
                continue
            reasoning, output = split_reasoning(_text(r.get("output", r.get("completion"))))
            out.append({"shape": "alpaca", "instruction": _text(r.get("instruction", r.get("prompt"))),
                        "input": _text(r.get("input")), "output": output, "reasoning": reasoning, "messages": None})
    with open(SAMPLE_DIR / "dialogues_sharegpt.jsonl", encoding="utf-8") as f:
        for line in f:
            try:
                r = json.loads(line)
            except ValueError:
                continue
            turns = [_turn(SHAREGPT_ROLES.get(t.get("from"), t.get("from")), t.get("value"))
                     for t in r.get("conversations") or [] if isinstance(t, dict)]
            out.append({"shape": "sharegpt", "messages": turns})
    for r in json.loads((SAMPLE_DIR / "messages_openai.json").read_text(encoding="utf-8")):
        turns = [_turn(t.get("role"), t.get("content"), t.get("reasoning_content"))
                 for t in r.get("messages") or [] if isinstance(t, dict)]
        out.append({"shape": "openai", "messages": turns})
    return out


def _vary(text: str | None, k: int) -> str | None:
    if not text or not k:
        return text
    return text + (f"（第{k}次提问。）" if _CJK.search(text) else f" (Request {k}.)")


def generate(path: Path, n: int) -> dict:
    """``n`` rows recycled from the samples, as a Parquet file with the batch columns and a ``text`` column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curation.pipeline.base import MESSAGE_TYPE

    pool = load_samples()
    random.Random(5).shuffle(pool)
    cols: dict[str, list] = {k: [] for k in ("sample_id", "batch_id", "row_number", "shape", "instruction", "input",
                                             "output", "system", "reasoning", "messages", "text")}
    for i in range(n):
        base, k = pool[i % len(pool)], i // len(pool)
        messages = None
        if base["messages"] is not None:
            messages = [dict(t) for t in base["messages"]]
            first_user = next((t for t in messages if t["role"] == "user"), None)
            if first_user is not None:
                first_user["content"] = _vary(first_user["content"], k)
            text = "\n\n".join(t["content"] for t in messages if t["content"])
            instruction = output = None
        else:
            instruction, output = _vary(base["instruction"], k), base["output"]
            text = (instruction or "") + "\n\n" + (output or "")
        cols["sample_id"].append(f"q{i:07d}")
        cols["batch_id"].append(1 + i // BATCH_ROWS)
        cols["row_number"].append(i + 1)
        cols["shape"].append(base["shape"])
        cols["instruction"].append(instruction)
        cols["input"].append(base.get("input"))
        cols["output"].append(output)
        cols["system"].append(None)
        cols["reasoning"].append(base.get("reasoning"))
        cols["messages"].append(messages)
        cols["text"].append(text)
    types = {"batch_id": pa.int64(), "row_number": pa.int64(), "messages": MESSAGE_TYPE}
    table = pa.table({k: pa.array(v, types.get(k, pa.string())) for k, v in cols.items()})
    pq.write_table(table, path)
    texts = cols["text"]
    return {"pool": len(pool), "dialogues": sum(m is not None for m in cols["messages"]),
            "with_cjk": sum(bool(_CJK.search(t)) for t in texts), "mean_chars": sum(map(len, texts)) / max(n, 1),
            "mib": path.stat().st_size / 2**20}


# --- measurements (each in a child process) -----------------------------------------------------------------
def _child_ours(src: str, rules_off: str) -> dict:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from curation.pipeline.steps.quality import QualityStep

    table = pq.read_table(src).drop_columns(["text"])
    off = [r for r in rules_off.split(",") if r and r != "-"]
    step = QualityStep(params={"rules": {r: {"enabled": False} for r in off}})
    step.process(table.slice(0, WARMUP_ROWS))
    outputs = []
    started = time.perf_counter()
    for start in range(0, table.num_rows, BATCH_ROWS):
        outputs.append(step.process(table.slice(start, BATCH_ROWS)))
    seconds = time.perf_counter() - started
    dropped: set[str] = set()
    reasons: Counter[str] = Counter()
    for out in outputs:
        if out.decisions is None:
            continue
        d = out.decisions.filter(pc.equal(out.decisions.column("verdict"), "drop"))
        dropped.update(d.column("sample_id").to_pylist())
        reasons.update(r.split(":", 1)[0] for r in d.column("reason").to_pylist())
    return {"rows": table.num_rows, "seconds": seconds, "rejected": len(dropped),
            "reasons": reasons.most_common(4), "peak_bytes": peak_rss_bytes()}


def _child_datatrove(src: str) -> dict:
    import pyarrow.parquet as pq
    from datatrove.data import Document
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )
    from datatrove.pipeline.filters.base_filter import get_filter_result

    t = pq.read_table(src, columns=["sample_id", "text"])
    ids, texts = t.column("sample_id").to_pylist(), t.column("text").to_pylist()
    del t

    def make_filters():  # FineWeb's order; C4 last (it rewrites doc.text, keeping the lines it accepts)
        return [GopherRepetitionFilter(), GopherQualityFilter(), C4QualityFilter()]

    def by_loop(n: int) -> tuple[int, Counter]:
        filters = make_filters()
        reasons: Counter[str] = Counter()
        for i in range(n):
            doc = Document(text=texts[i], id=ids[i])
            for f in filters:
                ok, reason = get_filter_result(f.filter(doc))
                if not ok:
                    reasons[reason or f.name] += 1
                    break
        return sum(reasons.values()), reasons

    def by_run(n: int) -> tuple[int, Counter]:
        filters = make_filters()
        stream = (Document(text=texts[i], id=ids[i]) for i in range(n))
        for f in filters:
            stream = f.run(stream)
        kept = sum(1 for _ in stream)
        reasons: Counter[str] = Counter()
        for f in filters:
            for key, stat in f.stats.stats.items():
                if key.startswith("dropped_"):
                    reasons[key.removeprefix("dropped_")] += int(stat.total)
        return n - kept, reasons

    res: dict = {"rows": len(texts)}
    for name, fn in (("loop", by_loop), ("run", by_run)):
        fn(min(WARMUP_ROWS, len(texts)))
        started = time.perf_counter()
        rejected, reasons = fn(len(texts))
        res[name] = {"seconds": time.perf_counter() - started, "rejected": rejected, "reasons": reasons.most_common(4)}
    res["peak_bytes"] = peak_rss_bytes()
    return res


def _check_datatrove() -> str | None:
    """None when datatrove and its English splitter import, else what is missing."""
    try:
        import datatrove  # noqa: F401
        import regex  # noqa: F401
        import spacy  # noqa: F401
    except ImportError as exc:
        return str(exc)
    return None


# --- report -------------------------------------------------------------------------------------------------
def _reasons(pairs) -> str:
    return ", ".join(f"{r} {n:,}" for r, n in pairs)


def print_results(ours: dict, dt: dict, best: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"quality rules, {ours['rows']:,} samples", title_justify="left")
    for col, just in (("engine", "left"), ("seconds", "right"), ("docs/s", "right"), ("vs best\ndatatrove", "right"),
                      ("rejected", "right"), ("peak\nMiB", "right"), ("top rejection reasons (info)", "left")):
        table.add_column(col, justify=just)
    base = dt["rows"] / dt[best]["seconds"]
    rows = [("ours: QualityStep (all rules)", ours, ours["rows"] / ours["seconds"], ours["peak_bytes"])]
    for mode, label in (("loop", "datatrove: filter() loop"), ("run", "datatrove: run() chain")):
        m = dt[mode]
        rows.append((label + (" *" if mode == best else ""), m, dt["rows"] / m["seconds"], dt["peak_bytes"]))
    for label, m, rate, peak in rows:
        table.add_row(label, f"{m['seconds']:.2f}", f"{rate:,.0f}", f"{rate / base:.2f}x", f"{m['rejected']:,}",
                      f"{peak / 2**20:,.0f}", _reasons(m["reasons"]))
    console = Console()
    console.width = max(console.width, 150)  # a pipe gets 80 columns: too narrow for the table
    console.print(table)
    print("* the datatrove baseline (the faster way); datatrove: Gopher repetition + Gopher quality + C4 quality, "
          "default settings; peak memory is per process (datatrove's two ways share one)")


def profile_rules(src: Path, full_seconds: float) -> None:
    from rich.console import Console
    from rich.table import Table

    from curation.pipeline.steps.quality import QualityRules

    table = Table(title="ours with one rule disabled (saving = what the rule costs)", title_justify="left")
    for col in ("rule disabled", "seconds", "saving s", "saving %"):
        table.add_column(col, justify="left" if col == "rule disabled" else "right")
    results = []
    for name in QualityRules.model_fields:
        m = run_child(__file__, "ours", str(src), name)
        results.append((full_seconds - m["seconds"], name, m["seconds"]))
    for saving, name, seconds in sorted(results, reverse=True):
        table.add_row(name, f"{seconds:.2f}", f"{saving:.2f}", f"{100 * saving / full_seconds:.0f}")
    console = Console()
    console.width = max(console.width, 100)
    console.print(table)


BIG_ANSWER_SECONDS = 10


def one_megabyte_answer_seconds() -> float:
    """Seconds for the quality step to judge one answer of about 1 MB (no rule may go quadratic on it)."""
    import pyarrow as pa

    from curation.pipeline.base import MESSAGE_TYPE
    from curation.pipeline.steps.quality import QualityStep

    big = " ".join(f"word{i % 5000}" for i in range(150_000))
    text = {"instruction": "Write a lot.", "input": None, "output": big, "system": None, "reasoning": None}
    batch = pa.table({"sample_id": pa.array(["big"]), "batch_id": pa.array([1], pa.int64()),
                      "row_number": pa.array([1], pa.int64()), "shape": pa.array(["alpaca"]),
                      **{k: pa.array([v], pa.string()) for k, v in text.items()},
                      "messages": pa.array([None], MESSAGE_TYPE)})
    started = time.perf_counter()
    QualityStep().process(batch)
    return time.perf_counter() - started


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--profile-rules", action="store_true", help="also time ours with each rule disabled in turn")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--generate", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generate:
        print(json.dumps(generate(Path(args.generate[0]), int(args.generate[1]))))
        return 0
    if args.child:
        kind, src, rules_off = args.child
        print(json.dumps(_child_ours(src, rules_off) if kind == "ours" else _child_datatrove(src)))
        return 0
    missing = _check_datatrove()
    if missing:
        print(f"{INSTALL_HINT}\n({missing})", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        src = work / "samples.parquet"
        t0 = time.perf_counter()
        # generated in a child, so that this process stays small: ru_maxrss survives exec, and the
        # measured children would otherwise report this process's peak
        res = subprocess.run([sys.executable, __file__, "--generate", str(src), str(args.rows)],
                             check=True, capture_output=True, text=True)
        info = json.loads(res.stdout.strip().splitlines()[-1])
        print(f"generated {args.rows:,} samples from {info['pool']:,} bundled ones in {time.perf_counter() - t0:.1f} s: "
              f"{info['dialogues']:,} dialogues, {info['with_cjk']:,} with Chinese, {info['mean_chars']:,.0f} characters "
              f"per document on average (parquet {info['mib']:.0f} MiB)")
        print(f"datatrove {_version('datatrove')}, spaCy {_version('spacy')}; ours in batches of {BATCH_ROWS:,} rows; warm-up {WARMUP_ROWS:,} rows each")
        ours = run_child(__file__, "ours", str(src), "-")
        dt = run_child(__file__, "datatrove", str(src), "-")
        best = min(("loop", "run"), key=lambda m: dt[m]["seconds"])
        print_results(ours, dt, best)
        ratio = dt[best]["seconds"] / ours["seconds"]
        print(f"ours / datatrove throughput: {ratio:.2f}x (target >= {TARGET_RATIO}x)")
        if args.profile_rules:
            profile_rules(src, ours["seconds"])
        big_seconds = one_megabyte_answer_seconds()
        print(f"one answer of 1 MB (150,000 words) judged by every rule in {big_seconds:.2f} s (target < {BIG_ANSWER_SECONDS} s)")
        targets = Targets()
        targets.check(ratio >= TARGET_RATIO, f"ours is {ratio:.2f}x datatrove's throughput (target >= {TARGET_RATIO}x)")
        targets.check(big_seconds < BIG_ANSWER_SECONDS,
                      f"a 1 MB answer took {big_seconds:.2f} s (target < {BIG_ANSWER_SECONDS} s)")
        return targets.finish()


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


if __name__ == "__main__":
    sys.exit(main())
