#!/usr/bin/env python3
"""Argilla on one machine with the embedded search engine: how large a review dataset it serves, and how fast.

Starts a real Argilla as ``curate review serve argilla`` does (argilla-server 2.8 in its own environment,
SQLite, Redis, the engine of ``curation/review/argilla_search``), logs ``--records`` records of real text (the
bundled sample's instructions and answers, repeated with a counter past its size) with two metadata properties
and a 384-dimensional vector each, then times through the SDK and the UI's own routes:

* logging (records/s);
* a full-text search, a metadata filter, the UI's "pending for me" page (its filter, sort and per-user order),
  the dataset's progress, a metadata property's metrics and a similarity search: p50 and worst of ``--repeat``.

Target (exit 1 on a miss): every search and metric p50 under 1 s at the default 10,000 records.

Usage: python benchmarks/bench_argilla.py [--records 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import Targets

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TARGET_S = 1.0


def _texts(n: int) -> list[tuple[str, str]]:
    rows = []
    for line in (REPO / "data" / "sample" / "instructions.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(r, dict) and isinstance(r.get("instruction"), str) and isinstance(r.get("output"), str):
            rows.append((r["instruction"], r["output"]))
    return [(f"{q} (#{k})", a) for k, (q, a) in ((k, rows[k % len(rows)]) for k in range(n))]


def _timed(fn, repeat: int) -> tuple[float, float]:  # noqa: ANN001
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), max(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    import argilla as rg
    import httpx
    import numpy as np

    from curation.review.argilla_server import start

    creds = {"ARGILLA_USERNAME": "bench", "ARGILLA_PASSWORD": secrets.token_urlsafe(16),
             "ARGILLA_API_KEY": secrets.token_urlsafe(24)}
    os.environ.update(creds)
    rows: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = start(Path(tmp) / "argilla", port=port)
        print(f"Argilla up in {server.started_in:.1f} s at {server.url}", flush=True)
        try:
            client = rg.Argilla(api_url=server.url, api_key=creds["ARGILLA_API_KEY"], timeout=600)
            ws = client.workspaces("curate")
            settings = rg.Settings(
                fields=[rg.TextField(name="instruction"), rg.TextField(name="output")],
                questions=[rg.LabelQuestion(name="verdict", labels=["accept", "reject"])],
                metadata=[rg.TermsMetadataProperty(name="source"), rg.FloatMetadataProperty(name="quality_score")],
                vectors=[rg.VectorField(name="embedding", dimensions=384)])
            ds = rg.Dataset(name="bench", workspace=ws, settings=settings, client=client).create()
            rng = np.random.default_rng(0)
            texts = _texts(args.records)
            vecs = rng.normal(size=(args.records, 384)).astype(np.float32)
            t = time.perf_counter()
            for i in range(0, args.records, 1000):
                ds.records.log([{"id": f"r{k}", "instruction": q, "output": a, "source": f"s{k % 7}",
                                 "quality_score": float(k % 100) / 100, "embedding": vecs[k].tolist()}
                                for k, (q, a) in enumerate(texts[i:i + 1000], start=i)], batch_size=1000)
            log_s = time.perf_counter() - t
            print(f"logged {args.records:,} records in {log_s:.1f} s ({args.records / log_s:.0f} records/s)", flush=True)

            headers = {"X-Argilla-Api-Key": creds["ARGILLA_API_KEY"]}
            api = httpx.Client(base_url=f"{server.url}/api/v1", headers=headers, timeout=600)
            meta = {m["name"]: m["id"] for m in api.get(f"/me/datasets/{ds.id}/metadata-properties").json()["items"]}
            me = api.get("/me").json()["id"]

            def search(body: dict) -> dict:
                res = api.post(f"/datasets/{ds.id}/records/search", json=body, params={"limit": 50})
                res.raise_for_status()
                return res.json()

            word = texts[0][0].split()[1]
            checks = {
                f"text search ({word!r})": lambda: search({"query": {"text": {"q": word}}}),
                "metadata filter (source = s3)": lambda: search({"filters": {"and": [
                    {"type": "terms", "scope": {"entity": "metadata", "metadata_property": "source"}, "values": ["s3"]}]}}),
                "the UI's pending page for a user": lambda: api.post(
                    f"/me/datasets/{ds.id}/records/search", params={"limit": 10}, json={
                        "filters": {"and": [{"type": "terms", "scope": {"entity": "response", "property": "status"},
                                             "values": ["pending"]}]},
                        "sort": [{"scope": {"entity": "record", "property": "inserted_at"}, "order": "asc"}]}
                ).raise_for_status(),
                "progress": lambda: api.get(f"/datasets/{ds.id}/progress").raise_for_status(),
                "metadata metrics (source)": lambda: api.get(f"/metadata-properties/{meta['source']}/metrics").raise_for_status(),
                "similarity search (kNN 50)": lambda: search({"query": {"vector": {"name": "embedding",
                                                                                   "value": vecs[1].tolist()}}}),
            }
            found = search({"query": {"text": {"q": word}}})
            assert found["total"] > 0, found
            sim = search({"query": {"vector": {"name": "embedding", "value": vecs[1].tolist()}}})
            assert sim["items"][0]["record"]["external_id"] == "r1", sim["items"][0]  # the vector itself comes first
            assert me
            for name, fn in checks.items():
                rows[name] = _timed(fn, args.repeat)
                print(f"{name:<36} p50 {rows[name][0] * 1000:8.0f} ms   worst {rows[name][1] * 1000:8.0f} ms", flush=True)
        finally:
            server.stop()
    print(json.dumps({"records": args.records, "log_seconds": round(log_s, 1),
                      "p50_ms": {k: round(v[0] * 1000) for k, v in rows.items()}}))
    targets = Targets()
    for name, (p50, _) in rows.items():
        targets.check(p50 < TARGET_S, f"{name}: p50 {p50:.2f} s >= {TARGET_S} s at {args.records:,} records")
    return targets.finish()


if __name__ == "__main__":
    sys.exit(main())
