"""The OpenAI contract suite, through the real `openai` client: models, chat per model, streaming equal to the
whole answer, completions and stop sequences, adapters loaded and unloaded at run time, errors as bodies and
never a 500.

In CI it runs against the CPU engine the session starts (conftest.py). Against any other OpenAI-compatible
server, a vLLM included:

    CURATE_CONTRACT_URL=http://gpu-box:8000 CURATE_CONTRACT_BASE=Qwen2.5-7B-Instruct \\
    CURATE_CONTRACT_ADAPTER=v1 CURATE_CONTRACT_ADAPTER_PATH=/adapters/v1 pytest tests/serving/test_contract.py

Error bodies are read in OpenAI's shape (``{"error": {"message": ...}}``) or vLLM's (``{"message": ...}``).
"""

from __future__ import annotations

import httpx
import openai
import pytest

QUESTION = [{"role": "user", "content": "What is 3 plus 4?"}]
PROSE = "Once upon a time, in a small village by the sea, there lived"


def _message(res: httpx.Response) -> str:
    body = res.json()
    return (body.get("error") or {}).get("message") or body.get("message") or ""


def test_models_list_the_base_and_its_adapters(client, served) -> None:  # noqa: ANN001
    models = {m.id: m for m in client.models.list().data}
    assert {served.base, served.adapter} <= set(models)
    assert models[served.adapter].model_extra["parent"] == served.base
    assert models[served.base].model_extra.get("parent") is None


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
    res = client.completions.create(model=served.base, prompt=PROSE, max_tokens=12, temperature=0)
    text = res.choices[0].text
    assert res.object == "text_completion" and res.usage.completion_tokens > 0
    assert len(text.strip()) > 3, text  # a story goes on past 12 tokens
    # a stop sequence taken from the answer cuts it just before, streamed or not
    stop = text.strip()[2:4]
    cut = client.completions.create(model=served.base, prompt=PROSE, max_tokens=12, temperature=0, stop=[stop])
    assert cut.choices[0].text == text[:text.index(stop)] and cut.choices[0].finish_reason == "stop"
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model=served.base, prompt=PROSE, max_tokens=12, temperature=0, stop=[stop], stream=True))
    assert streamed == cut.choices[0].text


def test_adapters_load_and_unload_at_run_time(client, served) -> None:  # noqa: ANN001
    url = served.url
    res = httpx.post(f"{url}/v1/load_lora_adapter", json={"lora_name": "sums-v2", "lora_path": str(served.adapter_dir)})
    assert res.status_code == 200 and "sums-v2" in res.text
    assert "sums-v2" in {m.id for m in client.models.list().data}
    a = client.chat.completions.create(model="sums-v2", messages=QUESTION, max_tokens=8, temperature=0)
    b = client.chat.completions.create(model=served.adapter, messages=QUESTION, max_tokens=8, temperature=0)
    assert a.choices[0].message.content == b.choices[0].message.content  # the same weights
    again = httpx.post(f"{url}/v1/load_lora_adapter", json={"lora_name": "sums-v2", "lora_path": str(served.adapter_dir)})
    assert again.status_code == 400 and "already" in _message(again)
    bad = httpx.post(f"{url}/v1/load_lora_adapter", json={"lora_name": "x", "lora_path": "/no/such/adapter"})
    assert bad.status_code in (400, 404) and _message(bad)
    assert httpx.post(f"{url}/v1/unload_lora_adapter", json={"lora_name": "sums-v2"}).status_code == 200
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="sums-v2", messages=QUESTION, max_tokens=4)
    gone = httpx.post(f"{url}/v1/unload_lora_adapter", json={"lora_name": "sums-v2"})
    assert gone.status_code in (400, 404) and _message(gone)


def test_errors_are_openai_bodies_never_500(client, served) -> None:  # noqa: ANN001
    url = f"{served.url}/v1/chat/completions"
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="no-such-model", messages=QUESTION, max_tokens=4)
    res = httpx.post(url, json={"model": served.base, "messages": QUESTION, "max_tokens": 0})
    assert res.status_code == 400 and _message(res), res.text
    res = httpx.post(url, content=b'{"model": "m", "messages": [', headers={"content-type": "application/json"})
    assert res.status_code == 400 and _message(res), res.text
    # a prompt over the context length: 400 naming the limit
    limit = next(m for m in client.models.list().data if m.id == served.base).model_extra["max_model_len"]
    long = [{"role": "user", "content": "plus " * (limit + 100)}]
    with pytest.raises(openai.BadRequestError, match=rf"(?i)maximum context length is {limit}"):
        client.chat.completions.create(model=served.base, messages=long, max_tokens=8)
    assert httpx.get(f"{served.url}/v1/nothing-here").status_code == 404
    assert httpx.get(f"{served.url}/health").status_code == 200
