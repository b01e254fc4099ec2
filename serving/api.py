"""The OpenAI-compatible HTTP surface of the CPU engine (the endpoints vLLM's server has).

``/health``, ``/metrics`` (Prometheus), ``/v1/models``, ``/v1/chat/completions`` (streaming included),
``/v1/completions``, ``/v1/load_lora_adapter``, ``/v1/unload_lora_adapter``. Errors are OpenAI-style JSON
bodies, ``{"error": {"message", "type", "param", "code"}}``: an unknown model 404, malformed JSON or bad
parameters 400, a prompt over the context length 400 with the lengths, a full queue 503; bad input never
gives a 500. An R1-style ``<think>`` block comes back as ``reasoning_content`` beside the answer, as vLLM's
reasoning parser returns it.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving.engine import CpuEngine, EngineError, Request as GenRequest, split_reasoning


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict] | None = None


class _Sampling(BaseModel):
    model_config = ConfigDict(extra="allow")  # OpenAI clients send fields we do not use (they are ignored)
    model: str
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0, le=2)
    top_p: float = Field(default=1.0, gt=0, le=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    n: int = Field(default=1, ge=1, le=1)
    user: str | None = None

    def stops(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])


class ChatRequest(_Sampling):
    messages: list[Message] = Field(min_length=1)


class CompletionRequest(_Sampling):
    prompt: str | list[str]


class LoadAdapter(BaseModel):
    lora_name: str = Field(min_length=1)
    lora_path: str = Field(min_length=1)


class UnloadAdapter(BaseModel):
    lora_name: str = Field(min_length=1)


def _error(status: int, message: str, kind: str = "invalid_request_error", param: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": status}}, status_code=status)


async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """A body that is not JSON, or fails the request model: 400 (FastAPI's default is 422), naming the fields."""
    errs = exc.errors()
    first = errs[0] if errs else {}
    where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
    if first.get("type") == "json_invalid":
        return _error(400, f"the request body is not valid JSON: {first.get('msg', '')}")
    return _error(400, "; ".join(f"{'.'.join(str(x) for x in e.get('loc', ()) if x != 'body')}: {e.get('msg')}"
                                  for e in errs) or "invalid request", param=where or None)


def _text(content: str | list[dict] | None) -> str:
    if isinstance(content, list):  # OpenAI's content parts: the text ones
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return content or ""


def create_app(engine: CpuEngine, max_wait: float = 600.0) -> FastAPI:
    """The FastAPI app serving ``engine``."""
    from concurrent.futures import ThreadPoolExecutor

    app = FastAPI(title="llm-curate CPU engine", version="1")
    # waiting for an answer blocks a thread: its own pool, as large as the queue, so that waiting requests never
    # hold up new ones (asyncio's default pool has cpu_count + 4 threads: on 2 cores the 7th request waited)
    waiters = ThreadPoolExecutor(max_workers=engine._queue.maxsize + engine.max_batch * 4 + 8,
                                 thread_name_prefix="engine-wait")
    registry = CollectorRegistry()
    requests_total = Counter("requests_total", "Requests by model and status", ["model", "status"], registry=registry)
    latency = Histogram("request_latency_seconds", "Request latency", ["model"], registry=registry)
    tokens = Counter("tokens_total", "Tokens by model and kind (prompt, completion)", ["model", "kind"], registry=registry)
    waiting = Gauge("queue_size", "Requests waiting for the engine", registry=registry)
    batch_size = Histogram("batch_size", "Requests sharing one generate call", buckets=(1, 2, 4, 8, 16, 32),
                           registry=registry)

    app.add_exception_handler(RequestValidationError, invalid_request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), "not_found_error" if exc.status_code == 404 else "invalid_request_error")

    @app.exception_handler(EngineError)
    async def _engine(request: Request, exc: EngineError) -> JSONResponse:
        return _error(exc.status, str(exc), exc.kind)

    @app.get("/health")
    async def health() -> Response:
        return Response(status_code=200)

    @app.get("/metrics")
    async def metrics() -> Response:
        waiting.set(engine.queue_size())
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models() -> dict:
        now = int(time.time())
        data = [{"id": engine.name, "object": "model", "created": now, "owned_by": "llm-curate",
                 "root": str(engine.model_path), "parent": None, "max_model_len": engine.context_length,
                 "quantization": engine.quantization}]
        for a in engine.adapters.values():
            data.append({"id": a.name, "object": "model", "created": now, "owned_by": "llm-curate", "root": str(a.path),
                         "parent": engine.name, "max_model_len": engine.context_length, "lora_rank": a.rank,
                         "snapshot_id": a.snapshot_id, "snapshot_content_hash": a.content_hash})
        return {"object": "list", "data": data}

    @app.post("/v1/load_lora_adapter")
    async def load_adapter(body: LoadAdapter) -> PlainTextResponse:
        from pathlib import Path

        await asyncio.to_thread(engine.load_adapter, body.lora_name, Path(body.lora_path))
        return PlainTextResponse(f"Success: LoRA adapter '{body.lora_name}' added successfully.")

    @app.post("/v1/unload_lora_adapter")
    async def unload_adapter(body: UnloadAdapter) -> PlainTextResponse:
        await asyncio.to_thread(engine.unload_adapter, body.lora_name)
        return PlainTextResponse(f"Success: LoRA adapter '{body.lora_name}' removed successfully.")

    async def _run(req: GenRequest) -> GenRequest:
        engine.submit(req)
        started = time.perf_counter()
        try:
            done = await asyncio.get_running_loop().run_in_executor(waiters, engine.result, req, max_wait)
        except EngineError as e:
            requests_total.labels(req.model, str(e.status)).inc()
            raise
        latency.labels(req.model).observe(time.perf_counter() - started)
        requests_total.labels(req.model, "200").inc()
        tokens.labels(req.model, "prompt").inc(len(req.prompt_ids))
        tokens.labels(req.model, "completion").inc(req.completion_tokens)
        batch_size.observe(req.batch_size)
        return done

    def _gen_request(body: _Sampling, prompt_ids: list[int], where: str) -> GenRequest:
        max_tokens = body.max_completion_tokens or body.max_tokens or max(1, min(256, engine.context_length - len(prompt_ids)))
        engine.check_length(len(prompt_ids), max_tokens, where)
        return GenRequest(model=body.model, prompt_ids=prompt_ids, max_tokens=max_tokens, temperature=body.temperature,
                          top_p=body.top_p, seed=body.seed, stop=body.stops(), stream=body.stream)

    def _usage(req: GenRequest) -> dict:
        return {"prompt_tokens": len(req.prompt_ids), "completion_tokens": req.completion_tokens,
                "total_tokens": len(req.prompt_ids) + req.completion_tokens}

    def _sse(req: GenRequest, chunk_of) -> StreamingResponse:  # noqa: ANN001
        engine.submit(req)
        started = time.perf_counter()

        def events():
            first = True
            try:
                for piece in engine.stream(req):
                    yield f"data: {json.dumps(chunk_of(req, piece, None, first), ensure_ascii=False)}\n\n"
                    first = False
                req.done.wait()
                yield f"data: {json.dumps(chunk_of(req, '', req.finish_reason, first), ensure_ascii=False)}\n\n"
                requests_total.labels(req.model, "200").inc()
                latency.labels(req.model).observe(time.perf_counter() - started)
                tokens.labels(req.model, "prompt").inc(len(req.prompt_ids))
                tokens.labels(req.model, "completion").inc(req.completion_tokens)
            except Exception as e:  # noqa: BLE001 - the status line is sent: the error goes in the stream
                requests_total.labels(req.model, "500").inc()
                yield f"data: {json.dumps({'error': {'message': str(e), 'type': 'server_error'}})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest) -> Response:
        messages = [{"role": "system" if m.role == "developer" else m.role, "content": _text(m.content)}
                    for m in body.messages]
        engine.check_model(body.model)
        prompt_ids = await asyncio.to_thread(engine.chat_prompt, messages)
        req = _gen_request(body, prompt_ids, "messages")
        cid = f"chatcmpl-{req.id}"
        if body.stream:
            def chunk(r: GenRequest, piece: str, finish: str | None, first: bool) -> dict:
                delta = {"role": "assistant", "content": piece} if first else ({"content": piece} if piece else {})
                return {"id": cid, "object": "chat.completion.chunk", "created": r.created, "model": r.model,
                        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return _sse(req, chunk)
        done = await _run(req)
        reasoning, answer = split_reasoning(done.text)
        message = {"role": "assistant", "content": answer}
        if reasoning is not None:
            message["reasoning_content"] = reasoning
        return JSONResponse({"id": cid, "object": "chat.completion", "created": done.created, "model": done.model,
                             "choices": [{"index": 0, "message": message, "finish_reason": done.finish_reason,
                                          "logprobs": None}], "usage": _usage(done)})

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest) -> Response:
        if isinstance(body.prompt, list):
            if len(body.prompt) != 1:
                return _error(400, "one prompt per request", param="prompt")
            prompt = body.prompt[0]
        else:
            prompt = body.prompt
        engine.check_model(body.model)
        req = _gen_request(body, engine.text_prompt(prompt), "prompt")
        cid = f"cmpl-{req.id}"
        if body.stream:
            def chunk(r: GenRequest, piece: str, finish: str | None, first: bool) -> dict:
                return {"id": cid, "object": "text_completion", "created": r.created, "model": r.model,
                        "choices": [{"index": 0, "text": piece, "finish_reason": finish, "logprobs": None}]}
            return _sse(req, chunk)
        done = await _run(req)
        return JSONResponse({"id": cid, "object": "text_completion", "created": done.created, "model": done.model,
                             "choices": [{"index": 0, "text": done.text, "finish_reason": done.finish_reason,
                                          "logprobs": None}], "usage": _usage(done)})

    return app


class ThreadServer:
    """An app under uvicorn in a thread of this process, on a free port of ``host`` (loopback by default):
    what the README's main command and the tests use to serve without a second process."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", timeout: float = 60.0) -> None:
        import socket
        import threading
        import time

        import uvicorn

        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        self.url = f"http://{host}:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="uvicorn")
        self.thread.start()
        deadline = time.time() + timeout
        while not self.server.started and self.thread.is_alive() and time.time() < deadline:
            time.sleep(0.05)
        if not self.server.started:
            self.stop()
            raise RuntimeError(f"the server on {self.url} did not start within {timeout:.0f} s")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
