#!/usr/bin/env python3
"""int8 weights on the CPU engine: what they save and what they cost, against full precision in the same run.

For SmolLM2-135M-Instruct (``curate models smollm2``) loaded in float32 (the engine's default), bfloat16 (a peer:
the other way to halve memory), int8 (``--quantization int8``: linear weights int8 with a scale per row, torchao
through transformers' ``TorchAoConfig``) and int8-dynamic (activations quantised on the fly too):

* weights in memory (MB);
* single-request tokens/s: greedy ``generate``, ``--new-tokens`` tokens (end of sequence ignored), the best of
  ``--rounds``;
* for float32 and int8, the evaluation's scores (``training.evaluate.evaluate_models``: BLEU-4, ROUGE-L,
  BERTScore F1, eval loss) of the base model and, with ``--adapter``, the adapter, on the first ``--eval-samples`` samples of an export
  (``--data``; default: the bundled sample curated, snapshotted and exported here, approved with force, which is
  fine for a measurement).

Targets (exit 1 on a miss): int8 weights at most 50% of float32's; int8's eval loss within 2% of float32's (each
model); int8's BLEU-4 and ROUGE-L within 2 points of float32's. Speed has no target: it is reported, and on
this CPU the int8 kernels are slower than float32 (see the README).

Usage: python benchmarks/bench_quantization.py [--data EXPORT] [--adapter DIR] [--eval-samples 24]
       [--new-tokens 48] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from _common import Targets

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PROMPT = [{"role": "user", "content": "Write a long story about a sailor who crosses the sea, in many sentences."}]
VARIANTS = (("float32", "float32", None), ("bfloat16", "bfloat16", None), ("int8", "float32", "int8"),
            ("int8-dynamic", "float32", "int8-dynamic"))


def _export(work: Path) -> Path:
    from curation.ingest import ingest_paths
    from curation.pipeline import load_config
    from curation.pipeline.executor import run_pipeline
    from curation.snapshots import approve, create_snapshot, export_snapshot
    from curation.store import Store
    from tests.conftest import SAMPLE_DIR

    store = Store(work / "curate.duckdb")
    ingest_paths(store, [str(SAMPLE_DIR / f) for f in ("instructions.jsonl", "dialogues_sharegpt.jsonl")])
    run_pipeline(store, load_config())
    snap = create_snapshot(store)
    approve(store, snap.snapshot_id, force=True)
    return export_snapshot(store, snap.snapshot_id, work / "export", hf=False).path


def _speed(model: Path, dtype: str, quantization: str | None, new_tokens: int, rounds: int) -> tuple[float, int]:
    import torch
    from transformers import AutoTokenizer

    from training.models import load_causal_lm, weight_bytes

    tok = AutoTokenizer.from_pretrained(model)
    net = load_causal_lm(model, dtype, quantization).eval()
    ids = tok.apply_chat_template(PROMPT, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    best = 0.0
    with torch.no_grad():
        net.generate(**ids, max_new_tokens=4, do_sample=False)  # warm-up
        for _ in range(rounds):
            t = time.perf_counter()
            net.generate(**ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
            best = max(best, new_tokens / (time.perf_counter() - t))
    return best, weight_bytes(net)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, help="an export folder (manifest.json); default: made from the bundled sample")
    ap.add_argument("--adapter", type=Path, help="a LoRA adapter of SmolLM2 to score too (curate train's output)")
    ap.add_argument("--eval-samples", type=int, default=24)
    ap.add_argument("--new-tokens", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    import torch

    import training  # noqa: F401 (its log filter)
    from training.data import load_export
    from training.evaluate import GenerationSettings, evaluate_models
    from training.models import smollm2_checkpoint

    model = smollm2_checkpoint()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = load_export(args.data or _export(work))
        for name, dtype, quant in VARIANTS:
            tps, size = _speed(model, dtype, quant, args.new_tokens, args.rounds)
            rows[name] = {"tokens_per_s": round(tps, 2), "weight_mb": round(size / 1e6, 1)}
            if name in ("float32", "int8"):  # the evaluation of the served option against full precision; the
                # others are measured for size and speed (int8-dynamic's int8 kernels are the slowest here)
                res = evaluate_models(data, model, [args.adapter] if args.adapter else [], work / f"eval-{name}",
                                      args.eval_samples, GenerationSettings(max_new_tokens=args.new_tokens, batch_size=8),
                                      quantization=quant)
                rows[name]["eval"] = {m: {k: round(v[k], 4) for k in ("bleu4", "rougeL", "bertscore_f1", "eval_loss")}
                                      for m, v in res["models"].items()}
            print(name, json.dumps(rows[name]), flush=True)

    print(f"\nSmolLM2-135M-Instruct, {args.new_tokens} new tokens, greedy, {torch.get_num_threads()} threads; "
          f"evaluation on {args.eval_samples} eval samples of snapshot {data.manifest.snapshot_id}")
    print(f"{'variant':<14}{'weights MB':>11}{'vs fp32':>9}{'tokens/s':>10}{'vs fp32':>9}   eval (model: BLEU-4 / ROUGE-L / "
          "BERTScore F1 / eval loss)")
    full = rows["float32"]
    for name, r in rows.items():
        ev = "; ".join(f"{m}: {v['bleu4']:.2f} / {v['rougeL']:.2f} / {v['bertscore_f1']:.3f} / {v['eval_loss']:.4f}"
                       for m, v in r.get("eval", {}).items())
        print(f"{name:<14}{r['weight_mb']:>11.1f}{r['weight_mb'] / full['weight_mb']:>8.2f}x{r['tokens_per_s']:>10.1f}"
              f"{r['tokens_per_s'] / full['tokens_per_s']:>8.2f}x   {ev}")
    print(json.dumps(rows))

    targets = Targets()
    q = rows["int8"]
    targets.check(q["weight_mb"] <= 0.5 * full["weight_mb"], f"int8 weights {q['weight_mb']} MB > 50% of {full['weight_mb']}")
    for m, v in full["eval"].items():
        got = q["eval"][m]
        targets.check(got["eval_loss"] <= v["eval_loss"] * 1.02, f"{m}: int8 eval loss {got['eval_loss']} > 1.02 x {v['eval_loss']}")
        for k in ("bleu4", "rougeL"):
            targets.check(abs(got[k] - v[k]) <= 2.0, f"{m}: int8 {k} {got[k]} vs float32 {v[k]}: more than 2 points apart")
    return targets.finish()


if __name__ == "__main__":
    sys.exit(main())
