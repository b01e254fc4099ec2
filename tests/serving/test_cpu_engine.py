"""What is particular to the CPU engine (the OpenAI contract it shares with vLLM is test_contract.py):
batching, a full queue, metrics, its own parameter checks, R1 reasoning, and `curate serve` as a process."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

QUESTION = [{"role": "user", "content": "What is 3 plus 4?"}]


def test_models_carry_rank_and_snapshot(client, served) -> None:  # noqa: ANN001
    models = {m.id: m for m in client.models.list().data}
    extra = models[served.adapter].model_extra
    assert extra["lora_rank"] == 8 and extra["snapshot_id"] == 1 and len(extra["snapshot_content_hash"]) == 64


def test_parameters_the_engine_refuses(served) -> None:  # noqa: ANN001
    url = f"{served.url}/v1/chat/completions"
    for bad in ({"temperature": 3}, {"n": 2}, {"messages": []}, {"messages": [{"role": "wizard", "content": "hi"}]}):
        body = {"model": served.base, "messages": QUESTION, "max_tokens": 4, **bad}
        res = httpx.post(url, json=body)
        assert res.status_code == 400 and res.json()["error"]["message"], (bad, res.text)


def test_concurrent_requests_share_forward_passes(client, served) -> None:  # noqa: ANN001
    before = dict(served.engine.stats)
    results: list[str] = []
    errors: list[Exception] = []

    def ask(k: int) -> None:
        try:
            r = client.chat.completions.create(model=served.adapter, max_tokens=8, temperature=0,
                                               messages=[{"role": "user", "content": f"What is {k} plus 2?"}])
            results.append(r.choices[0].message.content)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=ask, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 8
    requests = served.engine.stats["requests"] - before["requests"]
    batches = served.engine.stats["batches"] - before["batches"]
    assert requests == 8 and batches < 8, served.engine.stats  # not one at a time


def test_a_full_queue_answers_503(served) -> None:  # noqa: ANN001
    from serving.engine import Overloaded, Request

    engine = served.engine
    ids = engine.chat_prompt(QUESTION)
    engine._model_lock.acquire()  # the worker is busy: requests wait
    try:
        queued = []
        with pytest.raises(Overloaded, match="busy"):
            for _ in range(engine._queue.maxsize + engine.max_batch * 4 + 2):
                queued.append(engine.submit(Request(model=engine.name, prompt_ids=ids, max_tokens=2, temperature=0)))
    finally:
        engine._model_lock.release()
    for r in queued:
        engine.result(r, timeout=120)
    # the server answers again
    res = httpx.post(f"{served.url}/v1/chat/completions", json={"model": engine.name, "messages": QUESTION, "max_tokens": 2})
    assert res.status_code == 200


def test_metrics_count_requests_per_model(client, served) -> None:  # noqa: ANN001
    client.chat.completions.create(model=served.adapter, messages=QUESTION, max_tokens=4, temperature=0)
    text = httpx.get(f"{served.url}/metrics").text
    assert f'requests_total{{model="{served.adapter}",status="200"}}' in text
    assert "request_latency_seconds_bucket" in text and 'tokens_total{kind="completion"' in text


def test_reasoning_comes_apart_from_the_answer() -> None:
    from serving.engine import split_reasoning

    assert split_reasoning("<think>\n3 + 4 = 7\n</think>\n\nSeven.") == ("3 + 4 = 7", "Seven.")
    assert split_reasoning("3 + 4 = 7</think>Seven.") == ("3 + 4 = 7", "Seven.")  # the tag opened in the prompt
    assert split_reasoning("Seven.") == (None, "Seven.")
    assert split_reasoning("<think>still thinking") == ("still thinking", "")
    assert json.dumps(split_reasoning("")) == '[null, ""]'


def test_curate_serve_answers_over_http(served, tmp_path) -> None:  # noqa: ANN001
    """`curate serve` as a user starts it: a process on 127.0.0.1 that answers the OpenAI client, and stops on
    SIGINT; a bad adapter folder is refused before it binds."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    from openai import OpenAI

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    bad = subprocess.run([sys.executable, "-m", "curation", "serve", "--model", str(served.model_dir), "--adapter",
                          f"x={tmp_path}", "--port", str(port)], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "adapter_config.json" in bad.stderr, bad.stderr
    proc = subprocess.Popen([sys.executable, "-m", "curation", "serve", "--model", str(served.model_dir), "--adapter",
                             f"v1={served.adapter_dir}", "--port", str(port)], stderr=subprocess.PIPE, text=True, env=env)
    try:
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0, timeout=60)
        deadline = time.time() + 90
        while True:
            try:
                ids = {m.id for m in client.models.list().data}
                break
            except Exception:  # noqa: BLE001 - not up yet
                assert proc.poll() is None and time.time() < deadline, proc.stderr.read() if proc.poll() is not None else "timeout"
                time.sleep(0.3)
        assert ids == {"tiny-llama", "v1"}
        res = client.chat.completions.create(model="v1", messages=QUESTION, max_tokens=6, temperature=0)
        assert res.choices[0].message.content is not None
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert "serving tiny-llama, v1 on http://127.0.0.1" in proc.stderr.read()


def test_int8_weights_shrink_the_model_and_the_adapter_still_applies(served) -> None:  # noqa: ANN001
    """--quantization int8: the linear weights held as int8 (torchao), LoRA layers around them, answers served,
    and logits close to the full-precision engine's."""
    import torch
    from openai import OpenAI

    from serving.api import ThreadServer, create_app
    from serving.engine import CpuEngine
    from training.models import weight_bytes

    engine = CpuEngine(served.model_dir, {"a": served.adapter_dir}, name="tiny-int8", quantization="int8")
    server = ThreadServer(create_app(engine))
    try:
        full, small = weight_bytes(served.engine.base), weight_bytes(engine.base)
        # the decoder's linear weights (fp32) shrink to int8 and a scale per row: about a quarter
        linear = sum(p.numel() * p.element_size() for n, p in served.engine.base.named_parameters()
                     if ".layers." in n and n.endswith(("proj.weight", "proj.base_layer.weight")))
        assert full - small > 0.7 * linear, (full, small, linear)
        q_proj = engine.net.base_model.model.model.layers[0].self_attn.q_proj
        assert type(q_proj.base_layer.weight).__name__ == "Int8Tensor" and q_proj.lora_A["a"].weight.dtype == torch.float32

        client = OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0, timeout=120)
        base_entry = next(m for m in client.models.list().data if m.id == "tiny-int8")
        assert base_entry.model_extra["quantization"] == "int8"
        for model in ("tiny-int8", "a"):
            res = client.chat.completions.create(model=model, messages=QUESTION, max_tokens=4, temperature=0)
            assert res.usage.completion_tokens > 0

        ids = torch.tensor([engine.chat_prompt(QUESTION)])
        with torch.no_grad():
            engine.net.set_adapter("a")
            q_adapter = engine.net(input_ids=ids).logits[0, -1]
            with engine.net.disable_adapter():
                q_base = engine.net(input_ids=ids).logits[0, -1]
            served.engine.net.set_adapter(served.adapter)
            f_adapter = served.engine.net(input_ids=ids).logits[0, -1]
        assert not torch.allclose(q_adapter, q_base, atol=1e-4), "the adapter changes nothing on the int8 model"
        assert torch.nn.functional.cosine_similarity(q_adapter, f_adapter, dim=0) > 0.99
    finally:
        server.stop()
        engine.close()


def test_an_unknown_quantization_is_refused(served, runner, tmp_path) -> None:  # noqa: ANN001
    from curation.cli.app import app

    res = runner.invoke(app, ["serve", "--model", str(served.model_dir), "--quantization", "int3"])
    assert res.exit_code == 2 and "int8" in res.output
