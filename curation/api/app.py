"""The HTTP API (FastAPI): ``curate api [--host 127.0.0.1] [--port 8700]``.

``GET /health`` (no token) and ``GET /ready`` sit outside the versioned routes; everything else is under ``/v1``
and needs ``Authorization: Bearer <token>`` (``curate token create``) of a role at least the route's
(``x-role`` in the OpenAPI schema at ``/openapi.json``): viewer (read, SQL) < lead (ingest, runs, snapshots,
review push / pull / apply) < admin (approve, export, train, evaluate, tokens, the audit log).

Every route calls the library function its CLI command calls; long work (ingest, a pipeline run, review push
and pull, export, training, evaluation) is a job (:mod:`curation.api.jobs`): ``202`` with the job, then
``GET /v1/jobs/{id}``. Errors are one JSON shape, ``{"error": {"code", "exit_code", "message"}}``, the exit
code the CLI would give: 2 usage -> 400 (404 for what does not exist, 413 too large, 415 not a data file,
422 a malformed request), 3 refused by a rule -> 409, 4 an external service or a busy store -> 502 / 503,
70 internal -> 500 (the traceback in a log file the message names). Lists page by an opaque ``cursor``.

The service is the store's one writer while it runs: its worker runs the jobs one at a time; CLI writes wait
for the store's lock as they would for another CLI. Mutating calls (and refused ones) go to the store's
``audit_log``: who (the token's name and role), what, when, the status.
"""

from __future__ import annotations

import threading
import time
import traceback
import uuid
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from curation.api import jobs as J
from curation.api.bodies import (
    Approve,
    EvalRequest,
    ReviewPull,
    ReviewPush,
    RunRequest,
    ServeRequest,
    SnapshotRequest,
    SqlRequest,
    TokenRequest,
    TrainRequest,
    arrow_rows,
    decode_cursor,
    encode_cursor,
    looks_binary,
    safe_upload_name,
)
from curation.api.held import HeldStore
from curation.api.settings import (
    ApiSettings,
    NotData,
    NotFound,
    TooLarge,
    check_secrets,
)
from curation.api.tokens import (
    TokenInfo,
    create_token,
    list_tokens,
    revoke_token,
    role_rank,
    verify_token,
)
from curation.errors import (
    EXIT_EXTERNAL,
    EXIT_INTERNAL,
    EXIT_REFUSED,
    EXIT_USAGE,
    CurateError,
    MissingExtraError,
    StoreBusyError,
    UsageError,
)
from curation.sql import locked_reader
from curation.store import Store
from curation.store.store import utcnow

API_VERSION = "v1"
# ------------------------------------------------------------------------------------------- the app
def create_app(store: Store, settings: ApiSettings | None = None):  # noqa: ANN201, C901, PLR0915
    """The FastAPI app over ``store`` (made and migrated when missing); the store is held open while the app
    runs (:mod:`curation.api.held`): use ``app.state.store`` to reach it from the same process."""
    settings = settings or ApiSettings.from_env()
    check_secrets()
    if not isinstance(store, HeldStore):
        store = HeldStore(store.path, store.lock_timeout)
    worker = J.Worker(store)
    from curation.api.servers import Servers

    servers = Servers(store.path.parent / "servers")
    cache: dict[str, tuple[float, TokenInfo | None]] = {}
    cache_lock = threading.Lock()

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        from curation.language import gil_share, second_opinion, share_gil

        store.hold()
        before = gil_share()
        share_gil(settings.job_gil_share)  # the job worker's language models leave the requests their turn
        try:
            app.state.recovered = J.recover(store)
            if settings.worker:
                # HeLI's model (the language step's second opinion) holds the GIL for its whole load (~0.8 s):
                # loaded before the service answers rather than in the middle of a job
                second_opinion()
                worker.start()
            yield
        finally:
            worker.stop()
            servers.stop_all()
            store.release()
            share_gil(before)

    app = FastAPI(title="llm-curate", version=API_VERSION, lifespan=lifespan,
                  description=(__doc__ or "").split("\n\n", 1)[1] if __doc__ else None)
    app.state.store, app.state.settings, app.state.worker = store, settings, worker
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])

    # --------------------------------------------------------------------------------- errors
    def error(status: int, code: str, exit_code: int, message: str) -> JSONResponse:
        return JSONResponse({"error": {"code": code, "exit_code": exit_code, "message": message}}, status_code=status)

    @app.exception_handler(CurateError)
    async def curate_error(request: Request, e: CurateError) -> JSONResponse:
        if isinstance(e, NotFound):
            return error(404, "not_found", e.exit_code, str(e))
        if isinstance(e, TooLarge):
            return error(413, "too_large", e.exit_code, str(e))
        if isinstance(e, NotData):
            return error(415, "not_data", e.exit_code, str(e))
        if isinstance(e, MissingExtraError):
            return error(501, "missing_extra", e.exit_code, str(e))
        if isinstance(e, StoreBusyError):
            return error(503, "busy", e.exit_code, str(e))
        status, code = {EXIT_REFUSED: (409, "refused"), EXIT_EXTERNAL: (502, "external")}.get(
            e.exit_code, (400, "usage"))
        return error(status, code, e.exit_code, str(e))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(x) for x in d.get('loc', []))}: {d.get('msg')}" for d in e.errors()]
        return error(422, "invalid", EXIT_USAGE, "; ".join(parts)[:2000] or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        code = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
                413: "too_large"}.get(e.status_code, "http")
        resp = error(e.status_code, code, EXIT_USAGE, str(e.detail))
        if e.status_code == 401:
            resp.headers["WWW-Authenticate"] = "Bearer"
        return resp

    @app.exception_handler(Exception)
    async def internal(request: Request, e: Exception) -> JSONResponse:
        folder = store.path.parent / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        log = folder / f"api-error-{int(time.time() * 1000)}.log"
        log.write_text(f"{request.method} {request.url.path}\n{traceback.format_exc()}", encoding="utf-8")
        return error(500, "internal", EXIT_INTERNAL, f"internal error: {type(e).__name__} (traceback in {log}); please "
                                                     "report it")

    # --------------------------------------------------------------------------------- auth and audit
    def lookup(token: str) -> TokenInfo | None:
        now = time.monotonic()
        with cache_lock:
            hit = cache.get(token)
            if hit and now - hit[0] < settings.token_cache_s:
                return hit[1]
        info = verify_token(store, token)
        with cache_lock:
            if len(cache) > 10_000:
                cache.clear()
            cache[token] = (now, info)
        return info

    def need(role: str) -> Callable:
        role_rank(role)

        def dependency(request: Request) -> TokenInfo:
            from fastapi import HTTPException

            header = request.headers.get("authorization") or ""
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise HTTPException(401, "no API token: send Authorization: Bearer <token> (curate token create)")
            info = lookup(token.strip())
            if info is None:
                raise HTTPException(401, "unknown or revoked API token")
            request.state.token = info
            if role_rank(info.role) < role_rank(role):
                raise HTTPException(403, f"this needs the {role} role; the token {info.name!r} is {info.role}")
            return info
        return dependency

    def audit(request: Request, status: int, detail: str | None = None, job_id: int | None = None) -> None:
        info: TokenInfo | None = getattr(request.state, "token", None)
        try:
            with store.appender() as con:
                con.execute("""INSERT INTO audit_log (logged_at, token_id, token_name, role, method, path, status, job_id, detail)
                               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                            [utcnow(), info.token_id if info else None, info.name if info else None,
                             info.role if info else None, request.method, request.url.path[:500], status, job_id,
                             (detail or "")[:500] or None])
        except Exception:  # noqa: BLE001  (an audit row lost to a busy store must not fail the call it records)
            pass

    @app.middleware("http")
    async def audit_and_limit(request: Request, call_next):  # noqa: ANN001, ANN202
        upload = request.method == "POST" and request.url.path == f"/{API_VERSION}/batches"
        length = request.headers.get("content-length")
        limit = settings.max_upload_bytes if upload else settings.max_body_bytes
        if length is not None and length.isdigit() and int(length) > limit:
            resp = error(413, "too_large", EXIT_USAGE, f"the request is {int(length)} bytes; the limit is {limit} "
                                                       f"({'CURATE_API_MAX_UPLOAD_BYTES' if upload else 'CURATE_API_MAX_BODY_BYTES'})")
        else:
            resp = await call_next(request)
        if request.method not in ("GET", "HEAD", "OPTIONS") and request.url.path.startswith(f"/{API_VERSION}/"):
            await run_in_threadpool(audit, request, resp.status_code, None, getattr(request.state, "job_id", None))
        return resp

    # --------------------------------------------------------------------------------- routes
    v1 = APIRouter(prefix=f"/{API_VERSION}")

    def route(method: str, path: str, role: str, status_code: int = 200, **kw: Any) -> Callable:
        return v1.api_route(path, methods=[method], dependencies=[Depends(need(role))], status_code=status_code,
                            openapi_extra={"x-role": role}, **kw)

    def page(items: list[dict], limit: int, key: Callable[[dict], list]) -> dict:
        return {"items": items, "next_cursor": encode_cursor(key(items[-1])) if len(items) == limit else None}

    def job_accepted(request: Request, kind: str, params: dict) -> dict:
        info: TokenInfo = request.state.token
        if role_rank(info.role) < role_rank(J.KINDS[kind].role):
            from fastapi import HTTPException

            raise HTTPException(403, f"a {kind} job needs the {J.KINDS[kind].role} role; the token is {info.role}")
        job = J.submit(store, kind, params, created_by=f"{info.name} ({info.role})")
        request.state.job_id = job["job_id"]
        worker.wake()
        return {"job": job, "url": f"/{API_VERSION}/jobs/{job['job_id']}"}

    @app.get("/health", include_in_schema=True)
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready")
    def ready() -> JSONResponse:
        problems = []
        try:
            with locked_reader(store) as con:
                con.execute("SELECT count(*) FROM jobs").fetchone()
        except CurateError as e:
            problems.append(f"store: {e}")
        if settings.worker and (worker._thread is None or not worker._thread.is_alive()):
            problems.append("the job worker is not running")
        body = {"status": "ready" if not problems else "not ready", "problems": problems, "store": str(store.path)}
        return JSONResponse(body, status_code=200 if not problems else 503)

    # batches and quarantine
    @route("GET", "/batches", "viewer")
    def batches(limit: int = Query(100, ge=1, le=1000), cursor: str | None = None) -> dict:
        from curation.inspect import list_batches

        after = decode_cursor(cursor, 1)
        rows = [r for r in arrow_rows(list_batches(store)) if after is None or r["batch_id"] > after[0]][:limit]
        return page(rows, limit, lambda r: [r["batch_id"]])

    @route("POST", "/batches", "lead", status_code=202)
    async def upload(request: Request, filename: str = Query(..., description="The file's name; its extension "
                                                               "picks the reader (.jsonl, .json, .csv, .parquet)"),
                     fmt: str = Query("auto", alias="format"), map: list[str] | None = Query(None),  # noqa: A002
                     encoding: str | None = None) -> dict:
        from starlette.requests import ClientDisconnect

        name = safe_upload_name(filename)
        folder = store.path.parent / "uploads" / uuid.uuid4().hex
        folder.mkdir(parents=True, exist_ok=False)
        path = folder / name
        size, head = 0, b""
        try:
            with open(path, "wb") as f:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > settings.max_upload_bytes:
                        raise TooLarge(f"upload {name}: over the limit of {settings.max_upload_bytes} bytes "
                                       "(CURATE_API_MAX_UPLOAD_BYTES); nothing was loaded")
                    if len(head) < 8192:
                        head += chunk[:8192 - len(head)]
                    f.write(chunk)
            if size == 0:
                raise UsageError(f"upload {name}: the body is empty; send the file as the request body "
                                 "(curl --data-binary @FILE)")
            if looks_binary(head):
                raise NotData(f"upload {name}: a binary file (over 5% control bytes in its first 8 KiB), not JSONL, "
                              "JSON, CSV or Parquet; nothing was loaded")
        except (CurateError, ClientDisconnect):
            path.unlink(missing_ok=True)
            folder.rmdir()
            raise
        return await run_in_threadpool(job_accepted, request, "ingest", {
            "paths": [str(path)], "format": fmt, "map": map, "encoding": encoding, "source_name": name,
            "upload": {"name": name, "given_name": filename[:300], "bytes": size}})

    @route("GET", "/quarantine", "viewer")
    def quarantine(batch: int | None = None, reason: str | None = None, limit: int = Query(100, ge=1, le=1000),
                   cursor: str | None = None) -> dict:
        from curation.inspect import list_quarantine

        rows = arrow_rows(list_quarantine(store, batch=batch, reason=reason, limit=limit, after=decode_cursor(cursor, 3)))
        return page(rows, limit, lambda r: [r["batch_id"], r["line"] or r["row_number"] or 0, r["row_number"] or 0])

    # runs

    @route("GET", "/runs", "viewer")
    def runs() -> dict:
        from curation.inspect import list_runs

        return {"items": arrow_rows(list_runs(store)), "next_cursor": None}

    @route("POST", "/runs", "lead", status_code=202)
    def start_run(request: Request, body: RunRequest = Body(default_factory=RunRequest)) -> dict:
        params: dict = {"fresh": body.fresh}
        if body.config is not None:
            from curation.pipeline import load_config

            folder = store.path.parent / "uploads" / "configs"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{uuid.uuid4().hex}.toml"
            path.write_text(body.config, encoding="utf-8")
            try:
                load_config(path)  # a bad config is refused now, not in the job
            except CurateError:
                path.unlink()
                raise
            params["config_path"] = str(path)
        return job_accepted(request, "run", params)

    def _run_exists(run_id: int) -> None:
        with locked_reader(store) as con:
            if not con.execute("SELECT 1 FROM runs WHERE run_id = ?", [run_id]).fetchone():
                raise NotFound(f"no run {run_id} (GET /v1/runs lists them)")

    @route("GET", "/runs/{run_id}/decisions", "viewer")
    def decisions(run_id: int, verdict: Literal["drop", "flag"] | None = None, step: str | None = None,
                  limit: int = Query(100, ge=1, le=1000), cursor: str | None = None) -> dict:
        from curation.inspect import run_decisions

        _run_exists(run_id)
        rows = arrow_rows(run_decisions(store, run_id, verdict, step, limit, decode_cursor(cursor, 3)))
        return page(rows, limit, lambda r: [r["sample_id"], r["step"], r["reason"]])

    @route("GET", "/runs/{run_id}/funnel", "viewer")
    def run_funnel(run_id: int) -> dict:
        from curation.inspect import funnel

        _run_exists(run_id)
        return {"items": arrow_rows(funnel(store, run_id))}

    @route("GET", "/runs/{run_id}/report", "viewer", response_class=HTMLResponse)
    def report(run_id: int) -> HTMLResponse:
        from curation.report import default_report_path, write_report

        _run_exists(run_id)
        path = default_report_path(store, run_id)
        if not path.is_file():
            path = write_report(store, run_id)
        return HTMLResponse(path.read_text(encoding="utf-8"))

    # samples
    @route("GET", "/samples", "viewer")
    def samples(batch: int | None = None, shape: Literal["alpaca", "sharegpt", "openai"] | None = None,
                contains: str | None = Query(None, max_length=1000), with_reasoning: bool = False,
                limit: int = Query(50, ge=1, le=1000), cursor: str | None = None) -> dict:
        from curation.inspect import find_samples

        rows = arrow_rows(find_samples(store, batch=batch, shape=shape, contains=contains, with_reasoning=with_reasoning,
                                  limit=limit, after=decode_cursor(cursor, 2)))
        return page(rows, limit, lambda r: [r["batch_id"], r["row_number"]])

    @route("GET", "/samples/{sample_id}", "viewer")
    def sample(sample_id: str) -> dict:
        from curation.inspect import find_samples, sample_history

        found = arrow_rows(find_samples(store, sample_id=sample_id, limit=1))
        if not found:
            raise NotFound(f"no sample {sample_id!r}")
        return {"sample": found[0], **{k: arrow_rows(v) for k, v in sample_history(store, sample_id).items()}}

    # SQL

    @route("POST", "/sql", "viewer")
    def sql(body: SqlRequest) -> Response:
        from curation.sql import csv_text, run_sql

        res = run_sql(store, body.query, timeout=settings.sql_timeout, limit_rows=settings.sql_max_rows)
        headers = {"X-Rows": str(res.table.num_rows), "X-Cut": "true" if res.cut else "false"}
        if body.format == "csv":
            return PlainTextResponse(csv_text(res.table), media_type="text/csv", headers=headers)
        if body.format == "parquet":
            import io

            import pyarrow.parquet as pq

            buf = io.BytesIO()
            pq.write_table(res.table, buf)
            return Response(buf.getvalue(), media_type="application/vnd.apache.parquet", headers=headers)
        return JSONResponse(jsonable_encoder({"columns": res.table.column_names, "rows": arrow_rows(res.table), "cut": res.cut,
                                              "row_limit": settings.sql_max_rows}), headers=headers)

    # snapshots and review
    def _snapshot(snapshot_id: int):  # noqa: ANN202
        from curation.snapshots import get_snapshot

        try:
            return get_snapshot(store, snapshot_id)
        except UsageError as e:
            raise NotFound(str(e)) from e





    @route("GET", "/snapshots", "viewer")
    def snapshots() -> dict:
        from curation.snapshots import list_snapshots

        return {"items": jsonable_encoder(list_snapshots(store)), "next_cursor": None}

    @route("POST", "/snapshots", "lead", status_code=201)
    def new_snapshot(body: SnapshotRequest = Body(default_factory=SnapshotRequest)) -> dict:
        from curation.snapshots import create_snapshot

        return jsonable_encoder(create_snapshot(store, run_id=body.run_id, note=body.note))

    @route("GET", "/snapshots/{snapshot_id}", "viewer")
    def snapshot(snapshot_id: int) -> dict:
        return jsonable_encoder(_snapshot(snapshot_id))

    @route("GET", "/snapshots/{snapshot_id}/review/plan", "viewer")
    def plan(snapshot_id: int, target: float = Query(0.98, gt=0, lt=1), confidence: float = Query(0.95, gt=0, lt=1),
             power: float = Query(0.95, gt=0, lt=1), expected: float = Query(0.995, gt=0, lt=1),
             rounds: int = Query(1, ge=1, le=10)) -> dict:
        from curation.review.sampling import review_plan

        _snapshot(snapshot_id)
        return jsonable_encoder(review_plan(target=target, confidence=confidence, power=power, expected=expected,
                                            rounds=rounds))

    @route("POST", "/snapshots/{snapshot_id}/review/push", "lead", status_code=202)
    def push(request: Request, snapshot_id: int, body: ReviewPush = Body(default_factory=ReviewPush)) -> dict:
        _snapshot(snapshot_id)
        return job_accepted(request, "review_push", {"snapshot_id": snapshot_id, **body.model_dump()})

    @route("POST", "/snapshots/{snapshot_id}/review/pull", "lead", status_code=202)
    def pull(request: Request, snapshot_id: int, body: ReviewPull = Body(default_factory=ReviewPull)) -> dict:
        _snapshot(snapshot_id)
        return job_accepted(request, "review_pull", {"snapshot_id": snapshot_id, **body.model_dump()})

    @route("GET", "/snapshots/{snapshot_id}/review/status", "viewer")
    def status(snapshot_id: int) -> dict:
        from curation.review.status import review_status

        _snapshot(snapshot_id)
        return jsonable_encoder(review_status(store, snapshot_id))

    @route("POST", "/snapshots/{snapshot_id}/review/apply", "lead", status_code=201)
    def apply(snapshot_id: int) -> dict:
        from curation.review.apply import apply_reviews

        _snapshot(snapshot_id)
        return jsonable_encoder(apply_reviews(store, snapshot_id))

    @route("POST", "/snapshots/{snapshot_id}/approve", "admin")
    def approve_snapshot(snapshot_id: int, body: Approve = Body(default_factory=Approve)) -> dict:
        from curation.snapshots import approve

        _snapshot(snapshot_id)
        return jsonable_encoder(approve(store, snapshot_id, force=body.force))

    @route("POST", "/snapshots/{snapshot_id}/export", "admin", status_code=202)
    def export(request: Request, snapshot_id: int) -> dict:
        _snapshot(snapshot_id)
        return job_accepted(request, "export", {"snapshot_id": snapshot_id})

    # training and evaluation


    @route("POST", "/train", "admin", status_code=202)
    def train(request: Request, body: TrainRequest) -> dict:
        _snapshot(body.snapshot_id)
        return job_accepted(request, "train", body.model_dump())

    @route("POST", "/eval", "admin", status_code=202)
    def evaluate(request: Request, body: EvalRequest) -> dict:
        _snapshot(body.snapshot_id)
        return job_accepted(request, "eval", body.model_dump())

    # jobs
    @route("GET", "/jobs", "viewer")
    def jobs(status: str | None = None, kind: str | None = None, limit: int = Query(50, ge=1, le=1000),
             cursor: str | None = None) -> dict:
        after = decode_cursor(cursor, 1)
        rows = J.list_jobs(store, status, kind, after[0] if after else None, limit)
        return page(rows, limit, lambda r: [r["job_id"]])

    @route("GET", "/jobs/{job_id}", "viewer")
    def job(job_id: int) -> dict:
        found = J.get_job(store, job_id)
        if found is None:
            raise NotFound(f"no job {job_id}")
        return found

    @route("GET", "/jobs/{job_id}/log", "viewer", response_class=PlainTextResponse)
    def job_log(job_id: int) -> PlainTextResponse:
        text = J.job_log(store, job_id)
        if text is None:
            raise NotFound(f"no job {job_id}")
        return PlainTextResponse(text)

    # served models
    def _served(server_id: int):  # noqa: ANN202
        served = servers.get(server_id)
        if served is None:
            raise NotFound(f"no server {server_id} (GET /v1/servers lists them)")
        return served

    @route("GET", "/servers", "viewer")
    def served_list() -> dict:
        return {"items": servers.list(), "next_cursor": None}

    @route("POST", "/servers", "admin", status_code=201)
    def serve_model(body: ServeRequest) -> dict:
        return servers.start(body.model, body.adapters, body.engine, body.quantization)

    @route("GET", "/servers/{server_id}", "viewer")
    def served_one(server_id: int) -> dict:
        return _served(server_id).status()

    @route("GET", "/servers/{server_id}/log", "viewer", response_class=PlainTextResponse)
    def served_log(server_id: int) -> PlainTextResponse:
        log = _served(server_id).log
        text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
        return PlainTextResponse(text[-100_000:])

    @route("DELETE", "/servers/{server_id}", "admin")
    def stop_served(server_id: int) -> dict:
        _served(server_id)
        return servers.stop(server_id) or {}

    # tokens and the audit log

    @route("POST", "/tokens", "admin", status_code=201)
    def new_token(body: TokenRequest) -> dict:
        token, info = create_token(store, body.role, body.name)
        return {"token": token, "token_id": info.token_id, "name": info.name, "role": info.role,
                "note": "shown once: only its hash is stored"}

    @route("GET", "/tokens", "admin")
    def tokens() -> dict:
        return {"items": list_tokens(store), "next_cursor": None}

    @route("DELETE", "/tokens/{token_id}", "admin")
    def revoke(token_id: str) -> dict:
        if not revoke_token(store, token_id):
            raise NotFound(f"no live token {token_id!r}")
        with cache_lock:
            cache.clear()
        return {"revoked": token_id}

    @route("GET", "/audit", "admin")
    def audit_log(limit: int = Query(100, ge=1, le=1000), cursor: str | None = None) -> dict:
        after = decode_cursor(cursor, 1)
        with locked_reader(store) as con:
            rows = con.execute("""SELECT audit_id, logged_at, token_name, role, method, path, status, job_id, detail FROM audit_log
                                  WHERE ? IS NULL OR audit_id > ? ORDER BY audit_id LIMIT ?""",
                               [after[0] if after else None, after[0] if after else None, limit]).fetchall()
        cols = ("audit_id", "logged_at", "token_name", "role", "method", "path", "status", "job_id", "detail")
        items = [dict(zip(cols, (r[0], r[1].isoformat(), *r[2:]), strict=True)) for r in rows]
        return page(items, limit, lambda r: [r["audit_id"]])

    app.include_router(v1)
    return app


def routes_and_roles(app) -> list[tuple[str, str, str | None]]:  # noqa: ANN001
    """(method, path, role) of every ``/v1`` route, from the published OpenAPI schema (``x-role``): what the auth
    tests and the README's table are generated from."""
    out = []
    for path, ops in app.openapi()["paths"].items():
        if path.startswith(f"/{API_VERSION}/"):
            for method, op in ops.items():
                out.append((method.upper(), path, op.get("x-role")))
    return sorted(out, key=lambda r: (r[1], r[0]))


def serve(store: Store, host: str = "127.0.0.1", port: int = 8700) -> None:
    """Run the API with uvicorn until stopped."""
    import uvicorn

    uvicorn.run(create_app(store), host=host, port=port, log_level="info", access_log=False)
