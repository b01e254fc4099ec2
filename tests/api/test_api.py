"""The HTTP API against a real uvicorn server on 127.0.0.1 over a real store: every route's token and role,
SQL and upload abuse, the error shape, pagination, the audit log, and the whole flow from an upload to an
export through a real Label Studio."""

from __future__ import annotations

import json
import os
import time

import httpx
import pytest

from curation.api.app import ApiSettings, create_app, routes_and_roles
from curation.api.tokens import ROLES
from curation.review.sampling import start_review
from curation.review.verdicts import record_verdicts
from curation.store import Store
from tests.api.conftest import start_service
from tests.conftest import SAMPLE_DIR


def _one(svc, sql: str) -> object:  # noqa: ANN001
    with svc.store.reader() as con:
        return con.execute(sql).fetchone()[0]


def _examples(svc, model) -> dict[tuple[str, str], dict]:  # noqa: ANN001
    """A valid request for every route (path parameters, query, body): the matrix below fails for a route
    missing here, so a new route cannot skip the auth test."""
    sample = _one(svc, "SELECT min(sample_id) FROM samples")
    upload = (SAMPLE_DIR / "instructions.jsonl").read_bytes()[:20_000].rsplit(b"\n", 1)[0] + b"\n"
    return {
        ("GET", "/v1/audit"): {},
        ("GET", "/v1/batches"): {"params": {"limit": 5}},
        ("POST", "/v1/batches"): {"params": {"filename": "small.jsonl"}, "content": upload},
        ("POST", "/v1/eval"): {"json": {"snapshot_id": 1, "model": "/nonexistent/model"}},
        ("GET", "/v1/jobs"): {},
        ("GET", "/v1/jobs/{job_id}"): {"path": {"job_id": 1}},
        ("GET", "/v1/jobs/{job_id}/log"): {"path": {"job_id": 1}},
        ("GET", "/v1/quarantine"): {"params": {"limit": 5}},
        ("GET", "/v1/runs"): {},
        ("POST", "/v1/runs"): {"json": {}},
        ("GET", "/v1/runs/{run_id}/decisions"): {"path": {"run_id": 1}, "params": {"verdict": "drop", "limit": 5}},
        ("GET", "/v1/runs/{run_id}/funnel"): {"path": {"run_id": 1}},
        ("GET", "/v1/runs/{run_id}/report"): {"path": {"run_id": 1}},
        ("GET", "/v1/samples"): {"params": {"limit": 5}},
        ("GET", "/v1/samples/{sample_id}"): {"path": {"sample_id": sample}},
        ("GET", "/v1/snapshots"): {},
        ("POST", "/v1/snapshots"): {"json": {"note": "made through the API"}},
        ("GET", "/v1/snapshots/{snapshot_id}"): {"path": {"snapshot_id": 1}},
        ("POST", "/v1/snapshots/{snapshot_id}/approve"): {"path": {"snapshot_id": 1}, "json": {"force": True}},
        ("POST", "/v1/snapshots/{snapshot_id}/export"): {"path": {"snapshot_id": 1}},
        ("POST", "/v1/snapshots/{snapshot_id}/review/apply"): {"path": {"snapshot_id": 1}},
        ("GET", "/v1/snapshots/{snapshot_id}/review/plan"): {"path": {"snapshot_id": 1}},
        ("POST", "/v1/snapshots/{snapshot_id}/review/pull"): {"path": {"snapshot_id": 1},
                                                             "json": {"url": "http://127.0.0.1:9"}},
        ("POST", "/v1/snapshots/{snapshot_id}/review/push"): {"path": {"snapshot_id": 1},
                                                             "json": {"url": "http://127.0.0.1:9"}},
        ("GET", "/v1/snapshots/{snapshot_id}/review/status"): {"path": {"snapshot_id": 1}},
        ("POST", "/v1/sql"): {"json": {"query": "SELECT count(*) AS n FROM samples"}},
        ("GET", "/v1/tokens"): {},
        ("POST", "/v1/tokens"): {"json": {"role": "viewer", "name": "made in the matrix"}},
        ("DELETE", "/v1/tokens/{token_id}"): {"path": {"token_id": "FRESH"}},
        ("GET", "/v1/servers"): {},
        ("POST", "/v1/servers"): {"json": {"model": str(model)}},
        ("GET", "/v1/servers/{server_id}"): {"path": {"server_id": "SERVER"}},
        ("GET", "/v1/servers/{server_id}/log"): {"path": {"server_id": "SERVER"}},
        ("DELETE", "/v1/servers/{server_id}"): {"path": {"server_id": "FRESH_SERVER"}},
        ("POST", "/v1/train"): {"json": {"snapshot_id": 1, "model": "/nonexistent/model"}},
    }


def _call(c: httpx.Client, method: str, path: str, ex: dict, fresh=None) -> httpx.Response:  # noqa: ANN001
    values = {k: (fresh(v) if v in ("FRESH", "SERVER", "FRESH_SERVER") else v) for k, v in ex.get("path", {}).items()}
    return c.request(method, path.format(**values), params=ex.get("params"), json=ex.get("json"),
                     content=ex.get("content"))


def test_every_route_needs_a_token_and_its_role(service, tmp_path) -> None:
    """Generated from the published route table: 401 without a token (and with a wrong one), 403 with the role
    below the route's, success with the route's own role."""
    from tests.training.tiny import build_llama, build_tokenizer

    svc = service
    model = build_llama(build_tokenizer(tmp_path / "tok"), tmp_path / "tiny-llama")
    snap = 1
    start_review(svc.store, snap, seed=1, reviews=20)  # verdicts to apply (stored as a pull stores them)
    with svc.store.reader() as con:
        items = [r[0] for r in con.execute("SELECT item_id FROM reviews WHERE snapshot_id = 1").fetchall()]
    record_verdicts(svc.store, [{"item_id": i, "reviewer": "r@example.com", "verdict": "accept"} for i in items], "sim")
    with svc.client("admin") as admin:
        server: list[int] = []

        def fresh(kind: str) -> object:
            if kind == "FRESH":
                return admin.post("/v1/tokens", json={"role": "viewer", "name": "to revoke"}).json()["token_id"]
            if kind == "SERVER" and server:
                return server[0]
            made = admin.post("/v1/servers", json={"model": str(model)}).json()["server_id"]
            if kind == "SERVER":
                server.append(made)
            return made

        table = routes_and_roles(create_app(Store(svc.store.path), ApiSettings(worker=False)))
        examples = _examples(svc, model)
        assert {(m, p) for m, p, _ in table} == set(examples), "every route needs an example request here"
        assert all(role in ROLES for _, _, role in table), [r for r in table if r[2] not in ROLES]
        for method, path, role in table:
            ex = examples[(method, path)]
            with svc.client(None) as anon:
                r = _call(anon, method, path, ex, fresh)
                assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated", (method, path, r.text)
                r = anon.request(method, path.replace("{", "").replace("}", ""), headers={"Authorization": "Bearer cur_x"})
                assert r.status_code in (401, 422), (method, path, r.text)
            rank = ROLES.index(role)
            if rank:
                with svc.client(ROLES[rank - 1]) as weak:
                    r = _call(weak, method, path, ex, fresh)
                    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", (method, path, r.text)
            with svc.client(role) as ok:
                r = _call(ok, method, path, ex, fresh)
                assert 200 <= r.status_code < 300, (method, path, role, r.status_code, r.text[:500])
        for s in admin.get("/v1/servers").json()["items"]:  # the servers the matrix started
            admin.delete(f"/v1/servers/{s['server_id']}")


def test_health_and_ready_need_no_token_and_the_schema_is_published(service) -> None:
    with service.client(None) as c:
        assert c.get("/health").json() == {"status": "ok"}
        assert c.get("/ready").json()["status"] == "ready"
        schema = c.get("/openapi.json").json()
    assert all(op.get("x-role") in ROLES for p, ops in schema["paths"].items() if p.startswith("/v1/")
               for op in ops.values())


SQL_ABUSE = [
    ("DELETE FROM samples", "read-only"),
    ("UPDATE samples SET output = 'x'", "read-only"),
    ("INSERT INTO api_tokens VALUES ('a', 'b', 'admin', 'h', now(), NULL)", "refused"),
    ("CREATE TABLE x AS SELECT 1", "read-only"),
    ("COPY samples TO '/tmp/stolen.csv'", "read-only"),
    ("ATTACH '/tmp/other.duckdb' AS o", "read-only"),
    ("INSTALL httpfs", "read-only"),
    ("LOAD httpfs", "read-only"),
    ("SELECT * FROM read_csv('/etc/passwd')", "reads or lists files"),
    ("SELECT * FROM '/etc/passwd'", "reads a file"),
    ("SELECT * FROM glob('/*')", "reads or lists files"),
    ("SET memory_limit = '1GB'", "read-only"),
    ("PRAGMA enable_profiling", "read-only"),
    ("SELECT 1; DELETE FROM samples", "read-only"),
    ("SELECT 1; SELECT 2", "one statement"),
    ("SELECT * FROM api_tokens", "API tokens"),
    ("SELECT query('DELETE FROM samples')", "SQL given as a string"),
]


def test_sql_abuse_through_the_api_is_refused_and_the_server_stays_healthy(service) -> None:
    before = _one(service, "SELECT count(*) FROM samples")
    with service.client("viewer") as c:
        for query, why in SQL_ABUSE:
            r = c.post("/v1/sql", json={"query": query})
            assert r.status_code in (400, 409), (query, r.status_code, r.text)
            assert why in r.json()["error"]["message"], (query, r.json())
        # a huge cross join: stopped by the statement timeout (3 s here), not left running
        r = c.post("/v1/sql", json={"query": "SELECT count(*) FROM samples a, samples b, samples c "
                                             "WHERE hash(a.sample_id || b.sample_id || c.sample_id) % 7 = 0"})
        assert r.status_code == 409 and "timeout" in r.json()["error"]["message"], r.text
        # a row cap: 1,000 here, said in the answer
        r = c.post("/v1/sql", json={"query": "SELECT * FROM range(5000)"})
        assert r.json()["cut"] is True and len(r.json()["rows"]) == 1000 and r.headers["X-Cut"] == "true"
        assert c.get("/health").status_code == 200
        assert c.post("/v1/sql", json={"query": "SELECT count(*) AS n FROM samples"}).json()["rows"] == [{"n": before}]
        csv = c.post("/v1/sql", json={"query": "SELECT 1 AS a, '中文' AS b", "format": "csv"})
        assert csv.headers["content-type"].startswith("text/csv") and "中文" in csv.text
        pq = c.post("/v1/sql", json={"query": "SELECT 42 AS answer", "format": "parquet"})
        import io

        import pyarrow.parquet as papq

        assert papq.read_table(io.BytesIO(pq.content)).to_pylist() == [{"answer": 42}]
    assert not os.path.exists("/tmp/stolen.csv")
    assert _one(service, "SELECT count(*) FROM samples") == before


def test_upload_abuse(service, tmp_path) -> None:
    """Path-traversal names land inside the upload folder; an oversize file and a binary file are refused with
    nothing loaded; a GB18030 CSV loads; a file with a broken line in the middle loads the rest, the broken line
    quarantined with its line number, every row accounted for."""
    svc = service
    uploads = svc.store.path.parent / "uploads"
    body = (SAMPLE_DIR / "instructions.jsonl").read_bytes()[:3000].rsplit(b"\n", 1)[0] + b"\n"
    with svc.client("lead") as c:
        for name in ("../../../../tmp/evil.jsonl", "..\\..\\evil.jsonl", "/etc/cron.d/evil.jsonl", ".hidden.jsonl"):
            r = c.post("/v1/batches", params={"filename": name}, content=body)
            assert r.status_code == 202, r.text
            path = r.json()["job"]["params"]["paths"][0]
            assert os.path.realpath(path).startswith(os.path.realpath(uploads) + os.sep), path
            assert ".." not in path and os.path.basename(path) in ("evil.jsonl", "hidden.jsonl")
        assert not os.path.exists("/tmp/evil.jsonl")
        for bad in ("", "..", "/", "../"):
            r = c.post("/v1/batches", params={"filename": bad}, content=body)
            assert r.status_code in (400, 422), (bad, r.text)

        jobs_before = _one(svc, "SELECT count(*) FROM jobs")
        big = b'{"instruction": "x", "output": "y"}\n' * ((4 << 20) // 36 + 10)
        r = c.post("/v1/batches", params={"filename": "big.jsonl"}, content=big)  # Content-Length over the limit
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_large", r.text

        def chunks():  # no Content-Length: the limit is enforced while streaming
            for i in range(0, len(big), 1 << 16):
                yield big[i:i + (1 << 16)]

        r = c.post("/v1/batches", params={"filename": "big.jsonl"}, content=chunks())
        assert r.status_code == 413, r.text
        r = c.post("/v1/batches", params={"filename": "model.jsonl"}, content=b"\x7fELF\x02\x01\x01\x00" + os.urandom(4000))
        assert r.status_code == 415 and r.json()["error"]["code"] == "not_data", r.text
        assert _one(svc, "SELECT count(*) FROM jobs") == jobs_before  # nothing queued
        assert not any(p.name in ("big.jsonl", "model.jsonl") for p in uploads.rglob("*")), "refused files are not kept"

        gb = c.post("/v1/batches", params={"filename": "instructions_gb18030.csv"},
                    content=(SAMPLE_DIR / "instructions_gb18030.csv").read_bytes())
        lines = body.decode().splitlines()
        half = "\n".join([*lines[:3], '{"instruction": "broken', "\x00\x01 not json", *lines[3:]]) + "\n"
        broken = c.post("/v1/batches", params={"filename": "half.jsonl"}, content=half.encode())
    gb_job, broken_job = svc.wait(gb.json()["job"]["job_id"]), svc.wait(broken.json()["job"]["job_id"])
    assert gb_job["status"] == "done", gb_job
    rep = gb_job["result"]["batches"][0]
    assert rep["encoding"] == "gb18030" and rep["rows_loaded"] > 100
    assert broken_job["status"] == "done", broken_job
    rep = broken_job["result"]["batches"][0]
    assert rep["rows_read"] == len(lines) + 2 and rep["rows_quarantined"] >= 2
    assert rep["rows_read"] == rep["rows_loaded"] + rep["rows_already_present"] + rep["rows_quarantined"] or \
        rep["rows_read"] == rep["rows_loaded"] + rep["rows_quarantined"]
    with svc.client("viewer") as c:
        q = c.get("/v1/quarantine", params={"batch": rep["batch_id"]}).json()["items"]
    assert {row["line"] for row in q} >= {4, 5} and all(row["file"] == "half.jsonl" for row in q)


def test_errors_have_one_shape_and_lists_page_by_cursor(service) -> None:
    with service.client("viewer") as c:
        for r, status in ((c.get("/v1/samples/nope"), 404), (c.get("/v1/jobs/999999"), 404),
                          (c.get("/v1/runs/99/funnel"), 404), (c.get("/v1/samples", params={"limit": 0}), 422),
                          (c.get("/v1/samples", params={"cursor": "garbage!"}), 400),
                          (c.post("/v1/sql", json={"nothing": 1}), 422), (c.get("/v1/nowhere"), 404)):
            assert r.status_code == status, r.text
            err = r.json()["error"]
            assert set(err) == {"code", "exit_code", "message"} and err["exit_code"] == 2 and err["message"]
        seen, cursor = [], None
        while True:
            page = c.get("/v1/samples", params={"limit": 400, "cursor": cursor}).json()
            seen += [s["sample_id"] for s in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
    assert len(seen) == len(set(seen)) == _one(service, "SELECT count(*) FROM samples")


def test_mutating_calls_are_audited_with_who_and_refusals_too(service) -> None:
    with service.client("viewer") as c:
        assert c.post("/v1/snapshots", json={}).status_code == 403
    with service.client("lead") as c:
        assert c.post("/v1/snapshots", json={"note": "audited"}).status_code == 201
    with service.client("admin") as c:
        rows = []
        cursor = None
        while True:
            page = c.get("/v1/audit", params={"limit": 200, "cursor": cursor}).json()
            rows += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                break
    mine = [(r["token_name"], r["role"], r["status"]) for r in rows if r["path"] == "/v1/snapshots"]
    assert ("test-viewer", "viewer", 403) in mine and ("test-lead", "lead", 201) in mine
    with service.client("viewer") as c:
        assert c.post("/v1/sql", json={"query": "SELECT * FROM audit_log"}).status_code == 200  # readable, no secret


def test_an_audited_read_does_not_wait_for_a_jobs_write_transaction(service) -> None:
    """A job's step holds the store's write lock for seconds: the audit row of a POST /v1/sql is appended beside
    it (its own lock, its own commit), so the read answers at once and is still audited."""
    import threading

    held, release = threading.Event(), threading.Event()

    def long_write() -> None:
        with service.store.writer() as con:
            con.execute("UPDATE jobs SET heartbeat_at = heartbeat_at WHERE false")
            held.set()
            release.wait(30)

    writer = threading.Thread(target=long_write)
    writer.start()
    try:
        assert held.wait(10)
        query = "SELECT count(*) AS n FROM samples -- while a job writes"
        with service.client("viewer", timeout=5) as c:
            r = c.post("/v1/sql", json={"query": query})
        assert r.status_code == 200 and r.json()["rows"][0]["n"] > 0
        assert writer.is_alive()  # the write transaction was still open
    finally:
        release.set()
        writer.join()
    with service.client("admin") as c:
        rows = c.post("/v1/sql", json={"query": "SELECT token_name, status FROM audit_log WHERE path = '/v1/sql' "
                                                 "ORDER BY audit_id DESC LIMIT 3"}).json()["rows"]
    assert {"token_name": "test-viewer", "status": 200} in rows


def test_placeholder_secrets_and_open_cors_are_refused_at_start(tmp_path, monkeypatch) -> None:
    from curation.errors import UsageError

    store = Store(tmp_path / "c.duckdb")
    monkeypatch.setenv("CURATE_ARGILLA_API_KEY", "changeme")
    with pytest.raises(UsageError, match="CURATE_ARGILLA_API_KEY is a placeholder"):
        create_app(store, ApiSettings(worker=False))
    monkeypatch.delenv("CURATE_ARGILLA_API_KEY")
    monkeypatch.setenv("CURATE_API_CORS_ORIGINS", "*")
    with pytest.raises(UsageError, match="name the origins"):
        ApiSettings.from_env()
    monkeypatch.delenv("CURATE_API_CORS_ORIGINS")
    monkeypatch.setenv("CURATE_API_JOB_GIL_SHARE", "0")
    with pytest.raises(UsageError, match="CURATE_API_JOB_GIL_SHARE must be more than 0"):
        ApiSettings.from_env()
    monkeypatch.setenv("CURATE_API_JOB_GIL_SHARE", "0.25")
    assert ApiSettings.from_env().job_gil_share == 0.25


def test_cors_is_closed_by_default_and_open_to_named_origins(api_curated, tmp_path) -> None:
    import shutil

    from curation.language import gil_share

    shutil.copy(api_curated, tmp_path / "c.duckdb")
    before = gil_share()
    closed = start_service(tmp_path / "c.duckdb", ApiSettings(worker=False, job_gil_share=0.3))
    try:
        assert gil_share() == 0.3  # lingua's pauses while the service runs (CURATE_API_JOB_GIL_SHARE)
        with closed.client("viewer") as c:
            r = c.options("/v1/samples", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
            assert "access-control-allow-origin" not in r.headers
            r = c.get("/v1/samples", params={"limit": 1}, headers={"Origin": "https://evil.example"})
            assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    finally:
        closed.server.stop()
    assert gil_share() == before  # and put back when it stops
    shutil.copy(api_curated, tmp_path / "d.duckdb")
    named = start_service(tmp_path / "d.duckdb", ApiSettings(worker=False, cors_origins=["https://review.example"]))
    try:
        with named.client("viewer") as c:
            r = c.get("/v1/samples", params={"limit": 1}, headers={"Origin": "https://review.example"})
            assert r.headers.get("access-control-allow-origin") == "https://review.example"
            r = c.get("/v1/samples", params={"limit": 1}, headers={"Origin": "https://evil.example"})
            assert "access-control-allow-origin" not in r.headers
    finally:
        named.server.stop()


def test_the_whole_flow_through_the_api(api_curated, labelstudio, tmp_path, monkeypatch) -> None:
    """Upload, run, snapshot, plan, push to a real Label Studio, reviewers answer there, pull, status, apply,
    approve, export: each through the API, the export's files checked."""
    from curation.review.backends import snapshot_key
    from curation.review.backends.labelstudio import LabelStudioBackend
    from curation.review.items import sample_items
    from curation.review.scripted import Judgement

    monkeypatch.setenv("CURATE_LABEL_STUDIO_TOKEN", labelstudio.token)
    svc = start_service(tmp_path / "flow.duckdb")
    try:
        with svc.client("admin") as c:
            up = c.post("/v1/batches", params={"filename": "messages_openai.json"},
                        content=(SAMPLE_DIR / "messages_openai.json").read_bytes())
            ingest = svc.wait(up.json()["job"]["job_id"])
            assert ingest["status"] == "done" and ingest["result"]["batches"][0]["rows_loaded"] > 100, ingest
            run = svc.wait(c.post("/v1/runs", json={}).json()["job"]["job_id"])
            assert run["status"] == "done", run
            run_id = run["result"]["run_id"]
            funnel = {r["stage"]: r["rows"] for r in c.get(f"/v1/runs/{run_id}/funnel").json()["items"]}
            assert funnel["read"] == funnel["loaded"] + funnel["quarantined"] and funnel["kept"] > 0
            assert "<html" in c.get(f"/v1/runs/{run_id}/report").text
            snap = c.post("/v1/snapshots", json={"run_id": run_id}).json()["snapshot_id"]
            assert c.get(f"/v1/snapshots/{snap}/review/plan").json()["reviews"] > 0
            push = svc.wait(c.post(f"/v1/snapshots/{snap}/review/push",
                                   json={"url": labelstudio.url, "reviews": 40, "seed": 3}).json()["job"]["job_id"])
            assert push["status"] == "done" and push["result"]["created"] > 0, push
            be = LabelStudioBackend(url=labelstudio.url, token=labelstudio.token)
            items = sample_items(svc.store, snap)
            rejected = {it.item_id for it in items[:2]}
            be.annotate(snapshot_key(snap, store_id=svc.store.store_id), "sample", "api-reviewer@example.com", "API reviewer",
                        {it.item_id: Judgement("reject" if it.item_id in rejected else "accept") for it in items})
            pull = svc.wait(c.post(f"/v1/snapshots/{snap}/review/pull", json={"url": labelstudio.url}).json()["job"]["job_id"])
            assert pull["status"] == "done" and pull["result"]["new"] == len(items), pull
            status = c.get(f"/v1/snapshots/{snap}/review/status").json()
            assert status["certification"]["counts"]["rejected"] == 2
            parent = c.get(f"/v1/snapshots/{snap}").json()
            child = c.post(f"/v1/snapshots/{snap}/review/apply").json()
            assert child["applied_from"] == snap and child["n_samples"] == parent["n_samples"] - 2, child
            approved = c.post(f"/v1/snapshots/{child['snapshot_id']}/approve", json={"force": True}).json()
            assert approved["state"] == "approved"
            export = svc.wait(c.post(f"/v1/snapshots/{child['snapshot_id']}/export").json()["job"]["job_id"])
            assert export["status"] == "done", export
        manifest = json.loads(open(os.path.join(export["result"]["path"], "manifest.json"), encoding="utf-8").read())
        assert manifest["snapshot_id"] == child["snapshot_id"] and manifest["samples"] == child["n_samples"]
        assert manifest["reviewers"] == [{"reviewer": "api-reviewer@example.com", "reviews": len(items), "scripted": False}]
        with svc.store.reader() as con:
            gone = con.execute("SELECT count(*) FROM snapshot_samples WHERE snapshot_id = ? AND sample_id IN "
                               "(SELECT sample_id FROM reviews WHERE item_id IN (SELECT unnest(?)))",
                               [child["snapshot_id"], list(rejected)]).fetchone()[0]
        assert gone == 0
    finally:
        svc.server.stop()


def test_training_and_evaluation_jobs_through_the_api(service, tmp_path) -> None:
    """An approved snapshot trains a LoRA adapter on a tiny Llama as a job, then the base model and the adapter
    are evaluated as another, then the adapter is served: status, log and results through the API, the adapter
    on disk, an answer from the served model."""
    from tests.training.tiny import build_llama, build_tokenizer

    model = build_llama(build_tokenizer(tmp_path / "tok"), tmp_path / "tiny-llama")
    with service.client("admin") as c:
        with service.client("lead") as lead:
            snap = lead.post("/v1/snapshots", json={"note": "to train"}).json()["snapshot_id"]
        assert c.post(f"/v1/snapshots/{snap}/approve", json={"force": True}).json()["state"] == "approved"
        r = c.post("/v1/train", json={"snapshot_id": snap, "model": str(model), "force": True,
                                      "set": ["max_steps=3", "eval_steps=3", "logging_steps=1", "per_device_train_batch_size=2",
                                              "gradient_accumulation_steps=1", "gradient_checkpointing=false",
                                              "max_seq_length=96", "max_eval_samples=4"]})
        assert r.status_code == 202, r.text
        train = service.wait(r.json()["job"]["job_id"], timeout=900)
        assert train["status"] == "done", train
        out = train["result"]["out"]
        assert os.path.isfile(os.path.join(out, "adapter_config.json")) and train["result"]["snapshot_id"] == snap
        r = c.post("/v1/eval", json={"snapshot_id": snap, "model": str(model), "adapters": [out], "max_samples": 2,
                                     "max_new_tokens": 6})
        ev = service.wait(r.json()["job"]["job_id"], timeout=900)
        assert ev["status"] == "done", ev
        assert len(ev["result"]["models"]) == 2, ev["result"]  # the base model and the adapter
        assert all(m["eval_loss"] is not None for m in ev["result"]["models"].values())
        assert "done" in c.get(f"/v1/jobs/{ev['job_id']}/log").text
        # the adapter served through the API: a curate serve process, asked through its OpenAI API
        served = c.post("/v1/servers", json={"model": str(model), "adapters": {"tuned": out}})
        assert served.status_code == 201, served.text
        sid = served.json()["server_id"]
        deadline = time.time() + 300
        while (state := c.get(f"/v1/servers/{sid}").json())["state"] == "starting" and time.time() < deadline:
            time.sleep(0.5)
        assert state["state"] == "running", (state, c.get(f"/v1/servers/{sid}/log").text[-2000:])
        assert state["url"].startswith("http://127.0.0.1:")
        answer = httpx.post(state["url"] + "/v1/chat/completions", timeout=120, json={
            "model": "tuned", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 4}).json()
        assert answer["choices"][0]["message"]["content"] is not None and answer["model"] == "tuned", answer
        assert c.delete(f"/v1/servers/{sid}").json()["state"] == "exited"
        assert c.get(f"/v1/servers/{sid}").status_code == 404
        # a model folder that is not there: the job fails with the CLI's message and exit code, the worker goes on
        bad = service.wait(c.post("/v1/train", json={"snapshot_id": snap, "model": str(tmp_path / "none")})
                           .json()["job"]["job_id"])
        assert bad["status"] == "failed" and bad["error"]["exit_code"] == 2 and "none" in bad["error"]["message"]
