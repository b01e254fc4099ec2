"""GPU check of LoRA training: bf16 tokens/s and peak GPU memory at two model sizes.

Runs wherever a CUDA GPU is, with only torch, transformers and peft installed (this file imports nothing
else from the project, and downloads nothing): each model is a Llama built from a config with random
weights, trained on random tokens for a few steps with the trainer's defaults (LoRA r=8, alpha=16 on
q_proj and v_proj, AdamW at 2e-4, gradient checkpointing, bf16 weights).

    python benchmarks/gpu_lora_check.py                   # two sizes: about 0.5B and 1.5B parameters
    python benchmarks/gpu_lora_check.py --sizes 1.5b,7b --seq 2048 --batch 4
    python benchmarks/gpu_lora_check.py --cpu --sizes tiny --steps 2   # a smoke run without a GPU

Prints one row per size (parameters, trainable share, tokens/s, peak memory, loss) and a JSON line; exits 1
when a run fails (out of memory, a loss that is not finite, no GPU without --cpu).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

# (hidden, layers, intermediate, heads, kv heads): Llama / Qwen2-like shapes
SIZES = {
    "tiny": (64, 2, 128, 4, 2),
    "0.5b": (1024, 24, 2816, 16, 8),
    "1.5b": (2048, 24, 5632, 16, 8),
    "3b": (2560, 32, 6912, 20, 4),
    "7b": (4096, 32, 11008, 32, 32),
}


def run_size(name: str, args: argparse.Namespace) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    hidden, layers, inter, heads, kv = SIZES[name]
    device = "cpu" if args.cpu else "cuda"
    dtype = torch.float32 if args.cpu else torch.bfloat16
    cfg = LlamaConfig(vocab_size=args.vocab, hidden_size=hidden, num_hidden_layers=layers, intermediate_size=inter,
                      num_attention_heads=heads, num_key_value_heads=kv, max_position_embeddings=max(4096, args.seq),
                      use_cache=False)
    torch.manual_seed(0)
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    with torch.device(device):
        model = LlamaForCausalLM(cfg).to(dtype)
    total = sum(p.numel() for p in model.parameters())
    if hasattr(model, "activation_checkpointing_enable"):  # transformers 5.x's name
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"],
                                             task_type="CAUSAL_LM"))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    gen = torch.Generator(device="cpu").manual_seed(0)
    ids = torch.randint(0, args.vocab, (args.steps + args.warmup, args.batch, args.seq), generator=gen)

    def step(k: int) -> float:
        x = ids[k].to(device)
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    losses = [step(k) for k in range(args.warmup)]
    sync()
    t0 = time.perf_counter()
    losses += [step(args.warmup + k) for k in range(args.steps)]
    sync()
    seconds = time.perf_counter() - t0
    tokens = args.steps * args.batch * args.seq
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else 0
    del model, opt
    return {"size": name, "parameters": total, "trainable": trainable, "trainable_share": trainable / total,
            "device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "dtype": str(dtype).split(".")[-1],
            "batch": args.batch, "seq": args.seq, "steps": args.steps, "seconds": seconds,
            "tokens_per_s": tokens / seconds, "peak_gib": peak / 2**30, "first_loss": losses[0], "last_loss": losses[-1],
            "ok": all(math.isfinite(v) for v in losses)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="0.5b,1.5b", help=f"comma-separated, of {', '.join(SIZES)}")
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--cpu", action="store_true", help="run on the CPU in fp32 (a smoke run of this script)")
    args = ap.parse_args()
    import warnings

    import torch

    # transformers 5 / peft warn about each other's renamed internals: not this check's concern
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|peft)\.")

    if not args.cpu and not torch.cuda.is_available():
        print("no CUDA GPU here: run where one is, or pass --cpu for a smoke run", file=sys.stderr)
        return 1
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        print(f"unknown sizes {unknown}; known: {', '.join(SIZES)}", file=sys.stderr)
        return 2
    results, failed = [], False
    print(f"{'size':6} {'params':>8} {'trainable':>10} {'tokens/s':>10} {'peak GiB':>9} {'loss':>15}")
    for name in sizes:
        try:
            r = run_size(name, args)
        except torch.OutOfMemoryError as e:  # a size too large for this GPU is a result, not a crash
            r = {"size": name, "ok": False, "error": f"out of memory: {str(e).splitlines()[0]}"}
        results.append(r)
        if "error" in r:
            print(f"{name:6} {r['error']}")
        else:
            print(f"{name:6} {r['parameters'] / 1e9:>7.2f}B {r['trainable_share']:>9.3%} {r['tokens_per_s']:>10,.0f} "
                  f"{r['peak_gib']:>9.2f} {r['first_loss']:>7.3f}>{r['last_loss']:<7.3f}")
        failed |= not r["ok"]
    print(json.dumps({"gpu_lora_check": results}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
