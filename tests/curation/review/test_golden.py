"""Golden figures of the bundled sample: the kept set, the funnel, the report's figures and a snapshot export.

They hold the store's one definition of a sample's text (run_texts, run_kept, snapshot_texts, funnel_for)
to what it gave when the copies it replaced were removed. Regenerate on purpose only, after a change
that is meant to change them: ``UPDATE_GOLDEN=1 pytest tests/curation/review/test_golden.py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

from curation.report.data import gather
from curation.snapshots import create_snapshot, export_snapshot

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "bundled_sample.json"
VOLATILE = {"started_at", "finished_at", "exported_at", "store_id", "created_at", "owner", "heartbeat_at"}


def _strip(x: object) -> object:
    if isinstance(x, dict):
        return {k: _strip(v) for k, v in x.items() if k not in VOLATILE}
    if isinstance(x, list):
        return [_strip(v) for v in x]
    return x


def _figures(store, tmp_path: Path) -> dict:
    with store.reader() as con:
        funnel = con.execute("SELECT stage, rows FROM funnel ORDER BY position").fetchall()
        kept = con.execute(
            """SELECT sample_id, version, md5(concat_ws(chr(31), instruction, input, output, system, reasoning,
                                                        CAST(messages AS VARCHAR))) FROM kept ORDER BY sample_id""").fetchall()
    report = json.loads(json.dumps(dataclasses.asdict(gather(store, None)), default=str, ensure_ascii=False))
    snap = create_snapshot(store)
    res = export_snapshot(store, snap.snapshot_id, tmp_path / "export", seed=0, force=True, hf=False)
    files = {name: hashlib.sha256((res.path / name).read_bytes()).hexdigest()
             for name in ("train.jsonl", "eval.jsonl")}
    manifest = json.loads((res.path / "manifest.json").read_text(encoding="utf-8"))
    return _strip({"funnel": [list(r) for r in funnel], "kept": [list(r) for r in kept], "report": report,
                   "snapshot": {"content_hash": snap.content_hash, "n_samples": snap.n_samples},
                   "export": {"files": files, "manifest": manifest}})


def test_the_bundled_sample_gives_its_golden_figures(store, tmp_path) -> None:
    got = json.loads(json.dumps(_figures(store, tmp_path), ensure_ascii=False))
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(got, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    want = json.loads(GOLDEN.read_text(encoding="utf-8"))
    for key in want:
        assert got[key] == want[key], f"{key} differs from {GOLDEN.name} (regenerate only on purpose: UPDATE_GOLDEN=1)"
    assert set(got) == set(want)
