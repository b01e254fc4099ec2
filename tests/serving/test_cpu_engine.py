"""The CPU engine's OpenAI-compatible API, through the real `openai` client: models, chat, streaming,
completions, adapters chosen per request and loaded / unloaded at run time, batching, metrics, and every
error case as an OpenAI-style body."""

from __future__ import annotations

import json
import threading

import httpx
import openai
import pytest

QUESTION = [{"role": "user", "content": "What is 3 plus 4?"}]


def test_models_list_the_base_and_its_adapters(client, served) -> None:  # noqa: ANN001
    models = {m.id: m for m in client.models.list().data}
    assert set(models) == {served.base, served.adapter}
    extra = models[served.adapter].model_extra
    assert extra["parent"] == served.base and extra["lora_rank"] == 8 and extra["snapshot_id"] == 1
    assert models[served.base].model_extra["parent"] is None


def test_chat_per_model_and_streaming_gives_the_same_answer(client, served) -> None:  # noqa: ANN001
    answers = {}
    for model in (served.base, served.adapter):
        res = client.chat.completions.create(model=model, messages=QUESTION, max_tokens=16, temperature=0)
        choice = res.choices[0]
        assert res.model == model and choice.message.role == "assistant" and choice.finish_reason in ("stop", "length")
        assert res.usage.prompt_tokens > 5 and 0 < res.usage.completion_tokens <= 16
        answers[model] = choice.message.content
        # the same request streamed: the pieces make the same answer
        pieces, finish = [], None
        for chunk in client.chat.completions.create(model=model, messages=QUESTION, max_tokens=16, temperature=0,
                                                    stream=True):
            delta = chunk.choices[0].delta
            pieces.append(delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
        assert "".join(pieces) == answers[model] and finish == choice.finish_reason
    # the adapter was trained on sums: its greedy answer is not the base model's
    assert answers[served.adapter] != answers[served.base], answers


def test_completions_and_stop_sequences(client, served) -> None:  # noqa: ANN001
    res = client.completions.create(model=served.base, prompt="What is 3 plus", max_tokens=12, temperature=0)
    text = res.choices[0].text
    assert res.object == "text_completion" and res.usage.completion_tokens > 0
    assert len(text.strip()) > 3, text  # 12 tokens of a random model: never empty
    # a stop sequence taken from the answer cuts it just before, streamed or not
    stop = text.strip()[2:4]
    cut = client.completions.create(model=served.base, prompt="What is 3 plus", max_tokens=12, temperature=0, stop=[stop])
    assert cut.choices[0].text == text[:text.index(stop)] and cut.choices[0].finish_reason == "stop"
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model=served.base, prompt="What is 3 plus", max_tokens=12, temperature=0, stop=[stop], stream=True))
    assert streamed == cut.choices[0].text


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


def test_adapters_load_and_unload_at_run_time(client, served) -> None:  # noqa: ANN001
    url = served.url
    res = httpx.post(f"{url}/v1/load_lora_adapter", json={"lora_name": "sums-v2", "lora_path": str(served.adapter_dir)})
    assert res.status_code == 200 and "sums-v2" in res.text
    assert "sums-v2" in {m.id for m in client.models.list().data}
    a = client.chat.completions.create(model="sums-v2", messages=QUESTION, max_tokens=8, temperature=0)
    b = client.chat.completions.create(model=served.adapter, messages=QUESTION, max_tokens=8, temperature=0)
    assert a.choices[0].message.content == b.choices[0].message.content  # the same weights
    again = httpx.post(f"{url}/v1/load_lora_adapter", json={"lora_name": "sums-v2", "lora_path": str(served.adapter_dir)})
    assert again.status_code == 400 and "already loaded" in again.json()["error"]["message"]
    bad = httpx.post(f"{url}/v1/load_lora_adapter", json={"lora_name": "x", "lora_path": str(served.model_dir)})
    assert bad.status_code == 400 and "adapter_config.json" in bad.json()["error"]["message"]
    assert httpx.post(f"{url}/v1/unload_lora_adapter", json={"lora_name": "sums-v2"}).status_code == 200
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="sums-v2", messages=QUESTION, max_tokens=4)
    gone = httpx.post(f"{url}/v1/unload_lora_adapter", json={"lora_name": "sums-v2"})
    assert gone.status_code == 404 and gone.json()["error"]["type"] == "not_found_error"


def test_errors_are_openai_bodies_never_500(client, served) -> None:  # noqa: ANN001
    url = f"{served.url}/v1/chat/completions"
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="no-such-model", messages=QUESTION, max_tokens=4)
    for bad in ({"max_tokens": 0}, {"temperature": 3}, {"n": 2}, {"messages": []}):
        body = {"model": served.base, "messages": QUESTION, "max_tokens": 4, **bad}
        res = httpx.post(url, json=body)
        assert res.status_code == 400 and res.json()["error"]["message"], (bad, res.text)
    res = httpx.post(url, content=b'{"model": "tiny-llama", "messages": [', headers={"content-type": "application/json"})
    assert res.status_code == 400 and "JSON" in res.json()["error"]["message"]
    res = httpx.post(url, json={"model": served.base, "messages": [{"role": "wizard", "content": "hi"}]})
    assert res.status_code == 400
    # a prompt over the context length: 400 with the lengths
    long = [{"role": "user", "content": "plus " * 1200}]
    with pytest.raises(openai.BadRequestError, match=r"maximum context length is 1024 tokens.*requested \d+ tokens"):
        client.chat.completions.create(model=served.base, messages=long, max_tokens=8)
    assert httpx.get(f"{served.url}/v1/nothing-here").status_code == 404
    assert httpx.get(f"{served.url}/health").status_code == 200


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
