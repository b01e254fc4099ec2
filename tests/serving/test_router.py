"""The A/B router in front of the CPU engine: the weighted split, stickiness, streaming passed through,
per-variant metrics, feedback, the Parquet request log (ingested back as a batch) and the A/B report."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import httpx
import pytest

from serving.router import Alias, RouterConfig, RouterSettings, Variant, choose


def _alias(url: str = "http://x/v1") -> Alias:
    return Alias(name="assistant", variants=[Variant(name="v1", url=url, model="sums-v1", weight=70),
                                            Variant(name="v0", url=url, model="tiny-llama", weight=30)])


def test_a_70_30_split_lands_within_4_points_and_users_stay_put() -> None:
    alias = _alias()
    picks = [choose(alias, f"user-{k}").name for k in range(2000)]
    assert abs(picks.count("v1") / 2000 - 0.70) <= 0.04, picks.count("v1")
    assert all(choose(alias, f"user-{k}").name == picks[k] for k in range(0, 2000, 7))  # sticky
    rng = random.Random(11)  # no user: drawn by weight
    drawn = [choose(alias, None, rng).name for _ in range(2000)]
    assert abs(drawn.count("v1") / 2000 - 0.70) <= 0.04


@pytest.fixture(scope="module")
def router(served, tmp_path_factory):  # noqa: ANN001, ANN201
    from serving.api import ThreadServer
    from serving.router import create_router

    log_dir = tmp_path_factory.mktemp("requests")
    cfg = RouterConfig(router=RouterSettings(log_dir=log_dir, flush_rows=10), aliases=[_alias(f"{served.url}/v1")])
    server = ThreadServer(create_router(cfg))
    yield server.url, log_dir, server.server
    server.stop()


def test_routed_requests_metrics_feedback_and_the_log(router, served, tmp_path, runner) -> None:  # noqa: ANN001
    from openai import OpenAI

    url, log_dir, server = router
    client = OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=120)
    alias = _alias()
    seen: dict[str, str] = {}
    ids: dict[str, list[str]] = {"v1": [], "v0": []}
    for k in range(30):
        user = f"u{k}"
        raw = client.chat.completions.with_raw_response.create(
            model="assistant", user=user, max_tokens=3, temperature=0,
            messages=[{"role": "user", "content": f"What is {k} plus 1?"}])
        variant = raw.headers["x-variant"]
        assert variant == choose(alias, user).name  # sticky: the hash of the user decides
        seen[user] = variant
        ids[variant].append(raw.parse().id)
    assert ids["v1"] and ids["v0"]
    # the same user again meets the same variant, streamed too
    with httpx.stream("POST", f"{url}/v1/chat/completions", json={
            "model": "assistant", "user": "u3", "stream": True, "max_tokens": 4, "temperature": 0,
            "messages": [{"role": "user", "content": "What is 3 plus 1?"}]}) as res:
        assert res.headers["x-variant"] == seen["u3"]
        lines = [x for x in res.iter_lines() if x.startswith("data: ")]
    assert lines[-1] == "data: [DONE]" and len(lines) >= 2
    # feedback: ratings for both variants, a thumbs down with a correction
    for k, rid in enumerate(ids["v1"][:6]):
        assert httpx.post(f"{url}/v1/feedback", json={"id": rid, "rating": 4 + k % 2, "thumbs": "up"}).status_code == 200
    for k, rid in enumerate(ids["v0"][:6]):
        body = {"id": rid, "rating": 1 + k % 2, "thumbs": "down"}
        if k == 0:
            body["corrected_answer"] = "The answer is 1."
        assert httpx.post(f"{url}/v1/feedback", json=body).status_code == 200
    missing = httpx.post(f"{url}/v1/feedback", json={"id": "nope", "rating": 3})
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    assert httpx.post(f"{url}/v1/feedback", json={"id": ids["v1"][0], "rating": 9}).status_code == 400
    assert httpx.post(f"{url}/v1/feedback", json={"id": ids["v1"][0]}).status_code == 400
    # errors: an unknown alias, malformed JSON
    assert httpx.post(f"{url}/v1/chat/completions", json={"model": "nope", "messages": []}).status_code == 404
    assert httpx.post(f"{url}/v1/chat/completions", content=b"{", headers={"content-type": "application/json"}).status_code == 400
    # metrics per variant
    text = httpx.get(f"{url}/metrics").text
    assert f'requests_total{{status="200",variant="v1"}} {float(len(ids["v1"]) + (seen["u3"] == "v1"))}' in text
    assert 'time_to_first_token_seconds_count{variant="v0"}' in text and 'tokens_total{kind="completion",variant="v1"}' in text
    # the log: written on shutdown too; every request a row, the correction a row of its own
    server.should_exit = True
    deadline = time.time() + 20
    while server.started and time.time() < deadline and not list(Path(log_dir).glob("requests-*.parquet")):
        time.sleep(0.1)
    time.sleep(1.0)
    import duckdb

    files = sorted(Path(log_dir).glob("requests-*.parquet"))
    con = duckdb.connect()
    q = f"SELECT kind, variant, snapshot_id, count(*) FROM read_parquet({[str(f) for f in files]}, union_by_name=true) GROUP BY ALL"
    counts = {(k, v): (snap, n) for k, v, snap, n in con.execute(q).fetchall()}
    assert sum(n for (k, _), (_, n) in counts.items() if k == "request") == 31
    assert counts[("correction", "v0")][1] == 1 and counts[("request", "v1")][0] == 1  # v1 is snapshot 1's adapter
    # curate ingest loads the log like any other input: every row accounted for
    from curation.cli.app import app

    db = tmp_path / "store" / "curate.duckdb"
    res = runner.invoke(app, ["--db", str(db), "ingest", str(log_dir)])
    assert res.exit_code == 0, res.output
    total = sum(n for _, n in counts.values())
    loaded = duckdb.connect(str(db), read_only=True).execute(
        "SELECT count(*), count(*) FILTER (WHERE messages IS NOT NULL) FROM samples").fetchone()
    assert loaded == (total, total), (loaded, total)
    # the A/B report
    res = runner.invoke(app, ["ab-report", "--log-dir", str(log_dir)])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)["aliases"]["assistant"]
    v1, v0 = rep["variants"]["v1"], rep["variants"]["v0"]
    assert v1["requests"] + v0["requests"] == 31 and v1["error_rate"] == 0 and v1["latency_p95"] >= v1["latency_p50"] > 0
    assert v1["rating_mean"] == pytest.approx(4.5) and v0["rating_mean"] == pytest.approx(1.5)
    cmp = rep["comparison"]
    assert cmp["variants"] == ["v0", "v1"] or cmp["variants"] == ["v1", "v0"]
    assert cmp["rating_mann_whitney_p"] < 0.05 and cmp["thumbs_z_test_p"] < 0.05
    # significant already: the samples needed for this difference are no more than the 6 per variant given
    assert 1 <= cmp["ratings_needed_per_variant"] <= 6 and cmp["thumbs_needed_per_variant"] <= 6


def test_2000_routed_requests_split_70_30_within_4_points_and_are_all_counted_and_logged(tmp_path) -> None:  # noqa: ANN001
    """Through the router over HTTP, in front of an engine that answers at once (a canned completion per model,
    so that the model's time stays out): the split per request, stickiness, metrics and log rows all agree."""
    import duckdb
    from fastapi import FastAPI

    from serving.api import ThreadServer
    from serving.router import create_router

    backend = FastAPI()

    @backend.post("/v1/chat/completions")
    async def _canned(body: dict) -> dict:
        return {"id": f"cmpl-{random.getrandbits(48):x}", "object": "chat.completion", "created": 0,
                "model": body["model"], "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                                                     "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}

    engine = ThreadServer(backend)
    log_dir = tmp_path / "requests"
    cfg = RouterConfig(router=RouterSettings(log_dir=log_dir, flush_rows=500), aliases=[_alias(f"{engine.url}/v1")])
    router = ThreadServer(create_router(cfg))
    got: dict[str, str] = {}
    try:
        with httpx.Client(base_url=router.url, timeout=30) as c:
            for k in range(2000):
                res = c.post("/v1/chat/completions", json={"model": "assistant", "user": f"user-{k}", "max_tokens": 1,
                                                          "messages": [{"role": "user", "content": f"hi {k}"}]})
                assert res.status_code == 200, res.text
                got[f"user-{k}"] = res.headers["x-variant"]
            for k in range(0, 2000, 50):  # a user comes back: the same variant
                res = c.post("/v1/chat/completions", headers={"x-user-id": f"user-{k}"},
                             json={"model": "assistant", "max_tokens": 1, "messages": [{"role": "user", "content": "again"}]})
                assert res.headers["x-variant"] == got[f"user-{k}"]
            metrics = c.get("/metrics").text
    finally:
        router.stop()  # flushes the log
        engine.stop()
    share = sum(v == "v1" for v in got.values()) / 2000
    assert abs(share - 0.70) <= 0.04, share
    n_v1 = sum(v == "v1" for v in got.values()) + sum(got[f"user-{k}"] == "v1" for k in range(0, 2000, 50))
    assert f'requests_total{{status="200",variant="v1"}} {float(n_v1)}' in metrics
    assert f'requests_total{{status="200",variant="v0"}} {float(2040 - n_v1)}' in metrics
    files = [str(f) for f in sorted(log_dir.glob("requests-*.parquet"))]
    rows = duckdb.connect().execute(f"SELECT variant, count(*) FROM read_parquet({files}, union_by_name=true) "
                                    "WHERE kind = 'request' GROUP BY ALL").fetchall()
    assert dict(rows) == {"v1": n_v1, "v0": 2040 - n_v1}
