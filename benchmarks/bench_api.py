#!/usr/bin/env python3
"""The HTTP API under load: 50 concurrent clients on read and SQL routes for 60 s while pipeline runs write.

A store with the bundled sample ingested and curated once; ``curate api`` started on 127.0.0.1 in its own
process, as a user starts it. Then, for ``--seconds``, ``--clients`` asyncio clients (httpx, one connection
each) loop over a mix of read routes (a page of samples, one sample with its history, a run's decisions, the
batches, the jobs) and ``POST /v1/sql`` (a GROUP BY over the samples), while the service's worker runs
pipeline runs (``POST /v1/runs`` with ``fresh``, one after another): the store's one writer writing all along.

Printed: requests, throughput, p50 / p99 / max latency per route kind and overall, status counts, runs
finished; beside them the same reads called directly through the library in this process with no writer and
no HTTP (the floor the API's latency is compared to).

Targets (exit 1 on a miss): no 5xx (nor a connection error), p99 under 2 s, and at least one run finished
while the clients read. Loopback only; bounded in clients, time and requests.

Usage: python benchmarks/bench_api.py [--clients 50] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Targets

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SQL = "SELECT shape, count(*) AS n, avg(length(coalesce(output, ''))) AS chars FROM samples GROUP BY shape ORDER BY shape"


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def _prepare(work: Path) -> tuple[Path, str, list[str]]:
    from curation.api.tokens import create_token
    from curation.ingest import ingest_paths
    from curation.pipeline import load_config
    from curation.pipeline.executor import run_pipeline
    from curation.store import Store

    store = Store(work / "curate.duckdb")
    sample = REPO / "data" / "sample"
    ingest_paths(store, [str(sample / f) for f in ("instructions.jsonl", "dialogues_sharegpt.jsonl",
                                                    "messages_openai.json", "instructions_gb18030.csv")])
    run_pipeline(store, load_config())
    token, _ = create_token(store, "lead", "bench")
    with store.reader() as con:
        ids = [r[0] for r in con.execute("SELECT sample_id FROM samples USING SAMPLE 200 ROWS (reservoir, 1)").fetchall()]
    return store.path, token, ids


def _direct_floor(db: Path, ids: list[str], n: int = 40) -> dict[str, float]:
    """p50 seconds of the same reads called through the library in this process (no HTTP, no writer)."""
    from curation.inspect import find_samples, list_batches, run_decisions, sample_history
    from curation.sql import run_sql
    from curation.store import Store

    store = Store(db)
    calls = {"samples page": lambda: find_samples(store, limit=50),
             "one sample": lambda: (find_samples(store, sample_id=random.choice(ids), limit=1),
                                    sample_history(store, random.choice(ids))),
             "decisions": lambda: run_decisions(store, 1, limit=100),
             "batches": lambda: list_batches(store),
             "sql": lambda: run_sql(store, SQL, timeout=10, limit_rows=10_000)}
    out = {}
    for name, fn in calls.items():
        times = []
        for _ in range(n):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        out[name] = statistics.median(times)
    return out


async def _load(url: str, token: str, ids: list[str], clients: int, seconds: float,
                writes: bool = True) -> tuple[dict, dict, int]:
    import httpx

    lat: dict[str, list[float]] = {}
    statuses: dict[str, int] = {}
    runs_done = 0
    stop = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {token}"}

    def pick(rnd: random.Random) -> tuple[str, str, str, dict | None]:
        k = rnd.random()
        if k < 0.25:
            return "samples page", "GET", f"/v1/samples?limit=50&batch={rnd.randint(1, 4)}", None
        if k < 0.45:
            return "one sample", "GET", f"/v1/samples/{rnd.choice(ids)}", None
        if k < 0.6:
            return "decisions", "GET", "/v1/runs/1/decisions?limit=100", None
        if k < 0.7:
            return "batches", "GET", "/v1/batches", None
        if k < 0.75:
            return "jobs", "GET", "/v1/jobs?limit=20", None
        return "sql", "POST", "/v1/sql", {"query": SQL}

    async def client(i: int) -> None:
        rnd = random.Random(i)
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30,
                                     limits=httpx.Limits(max_connections=1)) as c:
            while time.monotonic() < stop:
                kind, method, path, body = pick(rnd)
                t = time.perf_counter()
                try:
                    r = await c.request(method, path, json=body)
                    key = str(r.status_code)
                except httpx.HTTPError as e:
                    key = f"error {type(e).__name__}"
                lat.setdefault(kind, []).append(time.perf_counter() - t)
                statuses[key] = statuses.get(key, 0) + 1

    async def writer() -> None:
        nonlocal runs_done
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as c:
            while time.monotonic() < stop:
                job = (await c.post("/v1/runs", json={"fresh": True})).json()["job"]["job_id"]
                while time.monotonic() < stop + 120:
                    status = (await c.get(f"/v1/jobs/{job}")).json()["status"]
                    if status in ("done", "failed", "interrupted"):
                        if status == "done":
                            runs_done += 1
                        else:
                            statuses[f"run {status}"] = statuses.get(f"run {status}", 0) + 1
                        break
                    await asyncio.sleep(0.5)
                if time.monotonic() >= stop:
                    break

    await asyncio.gather(*([writer()] if writes else []), *(client(i) for i in range(clients)))
    return lat, statuses, runs_done


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--no-writer", action="store_true", help="No pipeline runs meanwhile (to see what the writer costs).")
    args = ap.parse_args()
    if not 1 <= args.clients <= 200 or not 1 <= args.seconds <= 600:
        ap.error("--clients 1..200 and --seconds 1..600: this benchmark is bounded")
    import httpx

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-api-"))
    work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    db, token, ids = _prepare(work)
    print(f"store ready in {time.perf_counter() - t:.1f} s: {db}")
    floor = _direct_floor(db, ids)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "curation", "--db", str(db), "api", "--port", str(port)], env=env,
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=open(work / "api.log", "wb"))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                if httpx.get(url + "/ready", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline or proc.poll() is not None:
                print((work / "api.log").read_text()[-3000:])
                return 1
            time.sleep(0.2)
        lat, statuses, runs_done = asyncio.run(_load(url, token, ids, args.clients, args.seconds,
                                                      not args.no_writer))
        healthy = httpx.get(url + "/health", timeout=10).status_code == 200
    finally:
        proc.terminate()
        proc.wait(30)
    every = [x for xs in lat.values() for x in xs]
    n = len(every)
    meanwhile = "with no writer" if args.no_writer else "while pipeline runs wrote"
    print(f"\n{args.clients} clients for {args.seconds:.0f} s {meanwhile}: {n:,} requests, "
          f"{n / args.seconds:,.0f} requests/s, {runs_done} runs finished meanwhile")
    print(f"\n{'route':<14} {'requests':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'direct p50 ms':>14} {'p50 ratio':>10}")
    for kind in sorted(lat):
        xs = lat[kind]
        d = floor.get(kind)
        ratio = f"{statistics.median(xs) / d:>10.1f}" if d else f"{'':>10}"
        direct = f"{d * 1000:>14.1f}" if d else f"{'':>14}"
        print(f"{kind:<14} {len(xs):>9,} {statistics.median(xs) * 1000:>8.1f} {_pct(xs, 0.99) * 1000:>8.1f} "
              f"{max(xs) * 1000:>8.1f} {direct} {ratio}")
    p99 = _pct(every, 0.99)
    print(f"{'all':<14} {n:>9,} {statistics.median(every) * 1000:>8.1f} {p99 * 1000:>8.1f} {max(every) * 1000:>8.1f}")
    print(f"\nstatuses: {dict(sorted(statuses.items()))}")
    bad = {k: v for k, v in statuses.items() if not k.startswith(("2",))}
    targets = Targets()
    targets.check(not any(k.startswith("5") or k.startswith("error") for k in bad), f"no 5xx or connection error ({bad})")
    targets.check(p99 < 2.0, f"p99 {p99 * 1000:.0f} ms under 2,000 ms")
    if not args.no_writer:
        targets.check(runs_done >= 1, f"{runs_done} pipeline runs finished while the clients read (at least 1)")
    targets.check(healthy, "/health answers after the load")
    return targets.finish()


if __name__ == "__main__":
    raise SystemExit(main())
