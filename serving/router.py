"""The A/B router: one public model alias in front of engines, split between variants by weight.

``curate route --config ab.toml``. A request for an alias goes to one of its variants (an engine's base URL
and the model name there: an adapter, or the base), chosen by weight and sticky per user (the request's
``user`` field, else the ``x-user-id`` header: one user always meets one variant); requests without a user
are drawn at random by weight. Streaming passes through. Per variant, Prometheus metrics:
``requests_total{variant,status}``, ``request_latency_seconds{variant}``, ``time_to_first_token_seconds{variant}``,
``tokens_total{variant,kind}``. ``POST /v1/feedback`` records a rating (1-5 or thumbs) with an optional
comment and corrected answer.

Every request is logged (time, alias, variant, engine URL, model, the snapshot its adapter was trained on,
latency, status, tokens, the conversation with the answer, user, and the feedback) as Parquet files in
``log_dir``: data engineers query them, and ``curate ingest`` loads them like any other input (OpenAI
``messages`` with the answer as the last turn; a correction becomes its own row with the corrected answer),
so low-rated answers flow back through curation and review as a new batch.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from curation.errors import UsageError


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    url: str = Field(description="The engine's OpenAI base URL, e.g. http://127.0.0.1:8000/v1")
    model: str = Field(description="The model name at that engine: an adapter, or the base model")
    weight: float = Field(gt=0)


class Alias(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    variants: list[Variant] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Alias:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"alias {self.name}: variant names repeat: {names}")
        return self


class RouterSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = "127.0.0.1"
    port: int = Field(default=9000, ge=1, le=65535)
    log_dir: Path = Path("data/requests")
    flush_rows: int = Field(default=500, ge=1, description="Rows kept in memory before a Parquet file is written.")
    flush_seconds: float = Field(default=30.0, gt=0)
    user_header: str = "x-user-id"
    timeout: float = Field(default=600.0, gt=0)


class RouterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    router: RouterSettings = RouterSettings()
    aliases: list[Alias] = Field(min_length=1)


def load_router_config(path: Path) -> RouterConfig:
    """The router's TOML file, validated (:class:`UsageError` naming the file and the field)."""
    from curation.tomlfile import problems, read_toml

    data = read_toml(Path(path), "router config")
    try:
        return RouterConfig(**data)
    except ValidationError as e:
        raise UsageError(f"{path}: {problems(e)}") from e


def choose(alias: Alias, user: str | None, rng: random.Random | None = None) -> Variant:
    """The variant of ``alias`` for ``user``: a stable hash of (alias, user) placed on the weights; no user:
    drawn by weight."""
    total = sum(v.weight for v in alias.variants)
    if user:
        h = int.from_bytes(hashlib.sha256(f"{alias.name}\0{user}".encode()).digest()[:8], "big")
        point = h / 2**64 * total
    else:
        point = (rng or random).random() * total
    for v in alias.variants:
        point -= v.weight
        if point < 0:
            return v
    return alias.variants[-1]


LOG_COLUMNS = ("time", "request_id", "alias", "variant", "engine_url", "model", "snapshot_id", "latency_seconds",
               "status", "prompt_tokens", "completion_tokens", "user", "messages", "answer", "rating", "thumbs",
               "comment", "corrected_answer", "kind")


class RequestLog:
    """Rows in memory, written as Parquet files of up to ``flush_rows`` rows (and every ``flush_seconds``)."""

    def __init__(self, folder: Path, flush_rows: int = 500, flush_seconds: float = 30.0) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.flush_rows, self.flush_seconds = flush_rows, flush_seconds
        self.rows: list[dict] = []
        self.pending: set[str] = set()  # ids of the rows not yet in a file
        self.by_id: dict[str, dict] = {}  # recent requests, for feedback (kept after their file is written)
        self._lock = threading.Lock()
        self._last = time.monotonic()
        self._files = 0

    def add(self, row: dict) -> None:
        with self._lock:
            self.rows.append(row)
            self.pending.add(row["request_id"])
            self.by_id[row["request_id"]] = row
            if len(self.by_id) > 100_000:
                for k in list(self.by_id)[:10_000]:
                    del self.by_id[k]
            if len(self.rows) >= self.flush_rows or time.monotonic() - self._last > self.flush_seconds:
                self._flush()

    def feedback(self, request_id: str, rating: int | None, thumbs: str | None, comment: str | None,
                 corrected: str | None) -> dict:
        with self._lock:
            row = self.by_id.get(request_id)
            if row is None:
                raise KeyError(request_id)
            written = request_id not in self.pending
            row.update(rating=rating, thumbs=thumbs, comment=comment, corrected_answer=corrected)
            if written:  # its file is written: the feedback goes in a file of its own, with the request
                self.rows.append({**row, "kind": "feedback"})
            if corrected:  # a correction is a sample of its own: the conversation with the corrected answer
                msgs = json.loads(row["messages"])
                msgs[-1] = {"role": "assistant", "content": corrected}
                self.rows.append({**row, "request_id": f"{request_id}:corrected", "messages": json.dumps(msgs, ensure_ascii=False),
                                  "answer": corrected, "kind": "correction"})
            return row

    def _flush(self) -> None:
        if not self.rows:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        msg_type = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
        types = {"time": pa.timestamp("us", tz="UTC"), "snapshot_id": pa.int64(), "latency_seconds": pa.float64(),
                 "prompt_tokens": pa.int64(), "completion_tokens": pa.int64(), "rating": pa.int64(), "messages": msg_type}
        table = pa.table({
            "id" if c == "request_id" else c: pa.array(
                [(json.loads(r[c]) if r.get(c) else None) if c == "messages" else r.get(c) for r in self.rows],
                types.get(c, pa.string()))
            for c in LOG_COLUMNS})
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        self._files += 1
        tmp = self.folder / f".requests-{stamp}-{self._files}.parquet.tmp"
        pq.write_table(table, tmp)
        tmp.rename(self.folder / f"requests-{stamp}-{self._files}.parquet")  # readers never see half a file
        self.rows = []
        self.pending.clear()
        self._last = time.monotonic()

    def flush(self) -> None:
        with self._lock:
            self._flush()


class FeedbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, description="The id of the response rated.")
    rating: int | None = Field(default=None, ge=1, le=5)
    thumbs: str | None = Field(default=None, pattern="^(up|down)$")
    comment: str | None = None
    corrected_answer: str | None = None

    @model_validator(mode="after")
    def _something(self) -> FeedbackBody:
        if self.rating is None and self.thumbs is None and not self.corrected_answer:
            raise ValueError("give a rating (1-5), thumbs (up / down) or a corrected_answer")
        return self


def create_router(cfg: RouterConfig, rng: random.Random | None = None):  # noqa: ANN201
    """The router's FastAPI app."""
    import httpx
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response, StreamingResponse
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

    from serving.api import _error, invalid_request

    from contextlib import asynccontextmanager

    aliases = {a.name: a for a in cfg.aliases}
    log = RequestLog(cfg.router.log_dir, cfg.router.flush_rows, cfg.router.flush_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        yield
        log.flush()  # the rows not yet in a file
        await client.aclose()

    app = FastAPI(title="llm-curate A/B router", version="1", lifespan=lifespan)
    app.state.log = log
    registry = CollectorRegistry()
    requests_total = Counter("requests_total", "Requests by variant and status", ["variant", "status"], registry=registry)
    latency = Histogram("request_latency_seconds", "Request latency", ["variant"], registry=registry)
    ttft = Histogram("time_to_first_token_seconds", "Time to the first streamed piece (whole answer when not "
                     "streamed)", ["variant"], registry=registry)
    tokens = Counter("tokens_total", "Tokens by variant and kind", ["variant", "kind"], registry=registry)
    client = httpx.AsyncClient(timeout=cfg.router.timeout)
    snapshots: dict[tuple[str, str], int | None] = {}

    async def snapshot_of(v: Variant) -> int | None:
        key = (v.url, v.model)
        if key not in snapshots:  # the engine's /v1/models names the snapshot an adapter was trained on
            try:
                data = (await client.get(f"{v.url.rstrip('/')}/models")).json().get("data", [])
                snapshots[key] = next((m.get("snapshot_id") for m in data if m.get("id") == v.model), None)
            except (httpx.HTTPError, ValueError):
                return None
        return snapshots[key]

    app.add_exception_handler(RequestValidationError, invalid_request)

    @app.get("/health")
    async def health() -> Response:
        return Response(status_code=200)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [{"id": a.name, "object": "model", "owned_by": "llm-curate-router",
                                            "variants": [v.model_dump() for v in a.variants]} for a in cfg.aliases]}

    @app.post("/v1/feedback")
    async def feedback(body: FeedbackBody) -> JSONResponse:
        try:
            row = log.feedback(body.id, body.rating, body.thumbs, body.comment, body.corrected_answer)
        except KeyError:
            return _error(404, f"no response with id {body.id!r} (or it is too old)", "not_found_error", "id")
        return JSONResponse({"id": body.id, "variant": row["variant"], "recorded": True})

    async def _route(request: Request, path: str) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError as e:
            return _error(400, f"the request body is not valid JSON: {e}")
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return _error(400, "the request needs a model (one of the router's aliases)", param="model")
        alias = aliases.get(body["model"])
        if alias is None:
            return _error(404, f"The model `{body['model']}` does not exist. Aliases: {', '.join(aliases)}", "not_found_error",
                          "model")
        user = body.get("user") or request.headers.get(cfg.router.user_header)
        v = choose(alias, user, rng)
        forward = {**body, "model": v.model}
        started = time.perf_counter()
        url = f"{v.url.rstrip('/')}/{path}"
        prompt = body.get("messages") or [{"role": "user", "content": body.get("prompt") if isinstance(body.get("prompt"), str) else json.dumps(body.get("prompt"))}]
        snapshot = await snapshot_of(v)
        row = {"time": datetime.now(timezone.utc), "alias": alias.name, "variant": v.name, "engine_url": v.url,
               "model": v.model, "snapshot_id": snapshot, "user": user, "kind": "request"}

        def record(status: int, rid: str, answer: str | None, usage: dict | None, first: float | None) -> None:
            took = time.perf_counter() - started
            requests_total.labels(v.name, str(status)).inc()
            latency.labels(v.name).observe(took)
            if first is not None:
                ttft.labels(v.name).observe(first)
            if usage:
                tokens.labels(v.name, "prompt").inc(usage.get("prompt_tokens") or 0)
                tokens.labels(v.name, "completion").inc(usage.get("completion_tokens") or 0)
            msgs = [{"role": m.get("role"), "content": m.get("content") if isinstance(m.get("content"), str) else json.dumps(m.get("content"))}
                    for m in prompt if isinstance(m, dict)]
            if answer is not None:
                msgs.append({"role": "assistant", "content": answer})
            log.add({**row, "request_id": rid, "latency_seconds": round(took, 4), "status": str(status),
                     "prompt_tokens": (usage or {}).get("prompt_tokens"), "completion_tokens": (usage or {}).get("completion_tokens"),
                     "messages": json.dumps(msgs, ensure_ascii=False), "answer": answer})

        headers = {"x-variant": v.name, "x-model": v.model}
        if not body.get("stream"):
            try:
                res = await client.post(url, json=forward)
            except httpx.HTTPError as e:
                record(502, f"router-{uuid.uuid4().hex}", None, None, None)
                return _error(502, f"variant {v.name} ({v.url}) did not answer: {e}", "server_error")
            try:
                data = res.json()
            except ValueError:
                data = {}
            rid = data.get("id") or f"router-{uuid.uuid4().hex}"
            answer = None
            if res.status_code == 200 and data.get("choices"):
                c = data["choices"][0]
                answer = (c.get("message") or {}).get("content") if "message" in c else c.get("text")
            took = time.perf_counter() - started
            record(res.status_code, rid, answer, data.get("usage"), took if res.status_code == 200 else None)
            return Response(res.content, status_code=res.status_code, media_type="application/json", headers=headers)

        async def passthrough():
            pieces: list[str] = []
            rid, first, status, n = None, None, 200, 0
            try:
                async with client.stream("POST", url, json=forward) as res:
                    status = res.status_code
                    async for line in res.aiter_lines():
                        if line.startswith("data: ") and line != "data: [DONE]":
                            if first is None:
                                first = time.perf_counter() - started
                            try:
                                chunk = json.loads(line[6:])
                                rid = rid or chunk.get("id")
                                c = (chunk.get("choices") or [{}])[0]
                                piece = (c.get("delta") or {}).get("content") if "delta" in c else c.get("text")
                                if piece:
                                    pieces.append(piece)
                                    n += 1
                            except ValueError:
                                pass
                        yield line + "\n"
            except httpx.HTTPError as e:
                status = 502
                yield f"data: {json.dumps({'error': {'message': f'variant {v.name} failed: {e}', 'type': 'server_error'}})}\n\n"
            record(status, rid or f"router-{uuid.uuid4().hex}", "".join(pieces), {"completion_tokens": n}, first)

        return StreamingResponse(passthrough(), media_type="text/event-stream", headers=headers)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        return await _route(request, "chat/completions")

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return await _route(request, "completions")

    return app
