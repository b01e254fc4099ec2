#!/usr/bin/env python3
"""Review push / pull benchmark against a real local Label Studio and a real local Argilla, in one run.

A store with 12,000 generated samples (English and Chinese, some dialogues and reasoning traces), one
pipeline run (cleaning), one snapshot. Then, timed:

- **push**: ``push_review`` of a 10,000-sample review (draw, items with their text and hints, the
  existing-item check, import in batches) into a new project; next to it, in the same run, the bare
  SDK call ``projects.import_tasks`` of the same 10,000 tasks in one request into another project.
- **re-push**: the same again (nothing is created: the item ids are listed first).
- **pull**: 10,000 annotations (seeded untimed, by importing a second snapshot's tasks with an annotation
  each) pulled with ``pull_review`` (one export, parse, store the verdicts, certify, agreement); next to
  the bare SDK export of the same project.

Then the same push, re-push and pull through Argilla (the 10,000 reviews seeded untimed through its API as
the owner's submitted responses).

Targets (exit 1 on a miss): push of 10,000 samples under 30 s; pull of 10,000 reviews under 30 s; on each
backend.

Label Studio and Argilla are started the way ``curate review serve labelstudio|argilla`` starts them (their
own virtual environments, made when missing; SQLite; Argilla's embedded search engine and Redis; 127.0.0.1).

Usage: python benchmarks/bench_review.py [--items 10000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import socket
import sys
import tempfile
import time
from pathlib import Path

from _common import Targets

TARGET_PUSH_S = 30.0
TARGET_PULL_S = 30.0


def generate(path: Path, n: int, seed: int = 5) -> None:
    """Instruction pairs and dialogues, English and Chinese, some with reasoning."""
    rng = random.Random(seed)
    en = "the model answers each question with care and cites the data it used to reach the result".split()
    zh = list("模型根据数据回答问题并给出理由训练样本质量语言检查")
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            words = (lambda k: " ".join(rng.choice(en) for _ in range(k))) if i % 2 else \
                (lambda k: "".join(rng.choice(zh) for _ in range(k)))
            if i % 5 == 0:
                row = {"messages": [{"role": "user", "content": f"{i} " + words(12)},
                                    {"role": "assistant", "content": words(40) + "."},
                                    {"role": "user", "content": words(8)},
                                    {"role": "assistant", "content": words(30) + "."}]}
            else:
                row = {"instruction": f"{i} " + words(15), "input": "", "output": words(60) + "."}
                if i % 7 == 0:
                    row["output"] = "<think>" + words(50) + "</think>" + row["output"]
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=10_000, help="samples pushed and reviews pulled")
    ap.add_argument("--workdir", type=Path)
    args = ap.parse_args()
    from curation.ingest import ingest_paths
    from curation.pipeline.executor import run_pipeline
    from curation.review.backends import snapshot_key
    from curation.review.backends.labelstudio import LabelStudioBackend
    from curation.review.backends.labelstudio_config import task_of
    from curation.review.items import sample_items
    from curation.review.labelstudio_server import start
    from curation.review.loop import pull_review, push_review
    from curation.review.sampling import draw_sample
    from curation.snapshots import create_snapshot
    from curation.store import Store
    from schemas.pipeline import PipelineConfig, StepConfig

    targets = Targets()
    n = args.items
    with tempfile.TemporaryDirectory(prefix="bench-review-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        data = work / "rows.jsonl"
        generate(data, int(n * 1.2))
        store = Store(work / "curate.duckdb")
        ingest_paths(store, [str(data)])
        run_pipeline(store, PipelineConfig(steps=[StepConfig(type="clean")]))
        snap_a = create_snapshot(store).snapshot_id
        snap_b = create_snapshot(store, note="pull benchmark").snapshot_id

        creds = {"LABEL_STUDIO_USERNAME": "bench@example.com", "LABEL_STUDIO_PASSWORD": secrets.token_urlsafe(16),
                 "LABEL_STUDIO_USER_TOKEN": secrets.token_hex(20)}
        os.environ.update(creds)
        server = start(work / "labelstudio", port=_port())
        print(f"Label Studio up in {server.started_in:.1f} s at {server.url}")
        try:
            backend = LabelStudioBackend(url=server.url, token=creds["LABEL_STUDIO_USER_TOKEN"], timeout=600)
            rows = []

            t0 = time.perf_counter()
            pushed = push_review(store, snap_a, backend, reviews=n, seed=1)
            push_s = time.perf_counter() - t0
            rows.append(("push (ours: draw + items + check + import)", pushed["created"], push_s))

            tasks = [task_of(it) for it in sample_items(store, snap_a)]
            bare_pid = backend.client.projects.create(title="bare import", label_config=_config()).id
            t0 = time.perf_counter()
            backend.client.projects.import_tasks(bare_pid, request=tasks)
            bare_push_s = time.perf_counter() - t0
            rows.append(("push (bare SDK import_tasks, one request)", len(tasks), bare_push_s))

            t0 = time.perf_counter()
            again = push_review(store, snap_a, backend, reviews=n, seed=1)
            rows.append(("re-push (nothing created)", again["created"], time.perf_counter() - t0))
            assert again["created"] == 0, again

            # seed n annotations, untimed: snapshot B's items imported with one annotation each
            drawn = draw_sample(store, snap_b, n, seed=2)
            items = sample_items(store, snap_b)
            user = int(backend.client.users.whoami().id)
            rng = random.Random(3)
            seeded = []
            for it in items:
                task = task_of(it)
                verdict = "reject" if rng.random() < 0.01 else "accept"
                task["annotations"] = [{"completed_by": user, "result": [
                    {"from_name": "verdict", "to_name": "output", "type": "choices", "value": {"choices": [verdict]}}]}]
                seeded.append(task)
            pid_b = backend.project_id(snapshot_key(snap_b, store_id=store.store_id), "sample")
            for i in range(0, len(seeded), 2000):
                backend.client.projects.import_tasks(pid_b, request=seeded[i:i + 2000])

            t0 = time.perf_counter()
            pulled = pull_review(store, snap_b, backend)
            pull_s = time.perf_counter() - t0
            rows.append(("pull (ours: export + parse + store + certify)", pulled["new"], pull_s))
            t0 = time.perf_counter()
            body = b"".join(backend.client.projects.exports.download_sync(pid_b, export_type="JSON"))
            bare_pull_s = time.perf_counter() - t0
            rows.append(("pull (bare SDK export download)", len(json.loads(body)), bare_pull_s))
        finally:
            server.stop()

        from curation.review.argilla_server import start as start_argilla
        from curation.review.backends.argilla import ArgillaBackend
        from curation.review.scripted import Judgement

        acreds = {"ARGILLA_USERNAME": "bench", "ARGILLA_PASSWORD": secrets.token_urlsafe(16),
                  "ARGILLA_API_KEY": secrets.token_urlsafe(24)}
        os.environ.update(acreds)
        aserver = start_argilla(work / "argilla", port=_port())
        print(f"Argilla up in {aserver.started_in:.1f} s at {aserver.url}")
        try:
            argilla = ArgillaBackend(url=aserver.url, api_key=acreds["ARGILLA_API_KEY"], timeout=600)
            t0 = time.perf_counter()
            apushed = push_review(store, snap_a, argilla, reviews=n, seed=1)
            apush_s = time.perf_counter() - t0
            rows.append(("Argilla push (ours: items + check + log in batches)", apushed["created"], apush_s))
            t0 = time.perf_counter()
            aagain = push_review(store, snap_a, argilla, reviews=n, seed=1)
            rows.append(("Argilla re-push (nothing created)", aagain["created"], time.perf_counter() - t0))
            assert aagain["created"] == 0, aagain
            # n submitted responses of the owner, untimed, on snapshot B's items
            push_review(store, snap_b, argilla)
            key_b = snapshot_key(snap_b, store_id=store.store_id)
            rng = random.Random(3)
            argilla.annotate(key_b, "sample", "bench", "bench", {it.item_id: Judgement(
                "reject" if rng.random() < 0.01 else "accept") for it in items})
            t0 = time.perf_counter()
            apulled = pull_review(store, snap_b, argilla)
            apull_s = time.perf_counter() - t0
            rows.append(("Argilla pull (ours: read records + store + certify)", apulled["new"], apull_s))
        finally:
            aserver.stop()

    print(f"\n{'what':<50} {'items':>8} {'seconds':>9} {'items/s':>9}")
    for what, k, s in rows:
        print(f"{what:<50} {k:>8,} {s:>9.2f} {k / s if s else 0:>9,.0f}")
    print(f"\nours / bare: push {push_s / bare_push_s:.2f}x, pull {pull_s / bare_pull_s:.2f}x; "
          f"items drawn for the pull: {len(drawn.items):,}")
    targets.check(pushed["created"] >= n and push_s < TARGET_PUSH_S,
                  f"push of {n:,} samples in {push_s:.1f} s (target < {TARGET_PUSH_S:.0f} s)")
    targets.check(pulled["new"] >= n and pull_s < TARGET_PULL_S,
                  f"pull of {n:,} reviews in {pull_s:.1f} s (target < {TARGET_PULL_S:.0f} s)")
    targets.check(apushed["created"] >= n and apush_s < TARGET_PUSH_S,
                  f"Argilla push of {n:,} samples in {apush_s:.1f} s (target < {TARGET_PUSH_S:.0f} s)")
    targets.check(apulled["new"] >= n and apull_s < TARGET_PULL_S,
                  f"Argilla pull of {n:,} reviews in {apull_s:.1f} s (target < {TARGET_PULL_S:.0f} s)")
    return targets.finish()


def _config() -> str:
    from curation.review.backends.labelstudio_config import sample_config

    return sample_config()


if __name__ == "__main__":
    sys.exit(main())
