"""The bundled sample (data/sample): near dedup drops the planted copies and almost nothing else, and the
generator (scripts/make_sample_data.py) reproduces the committed files byte for byte."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from curation.ingest import ingest_paths
from curation.pipeline import load_config
from curation.pipeline.executor import run_pipeline
from curation.store import Store
from tests.conftest import REPO, SAMPLE_DIR

FILES = ["instructions.jsonl", "dialogues_sharegpt.jsonl", "messages_openai.json", "instructions_gb18030.csv"]
GENERATED = [*FILES, "truth.json"]
MIN_PLANTED_SHARE = 0.9  # of the near-dedup drops that are planted copies (or the originals they copy)
MIN_CAUGHT = 0.9  # of the planted near copies that end up in one cluster with their original

Key = tuple[str, int]  # (file name, row number)


@pytest.fixture(scope="module")
def near_dedup(tmp_path_factory) -> dict[Key, Key]:
    """The bundled sample through ingest and the default pipeline, once: near-dedup drops -> kept sample."""
    store = Store(tmp_path_factory.mktemp("sample") / "curate.duckdb")
    ingest_paths(store, [str(SAMPLE_DIR / f) for f in FILES])
    result = run_pipeline(store, load_config())
    assert result.status == "done"
    with store.reader() as con:
        rows = con.execute(
            """SELECT s.source, s.row_number, k.source, k.row_number
               FROM decisions d JOIN samples s USING (sample_id) JOIN samples k ON k.sample_id = d.ref_sample_id
               WHERE d.run_id = ? AND d.step = 'near_dedup' AND d.verdict = 'drop'""", [result.run_id]).fetchall()
    return {(Path(src).name, n): (Path(ref).name, m) for src, n, ref, m in rows}


def _copies(truth: dict, problem: str) -> list[dict]:
    return [t for t in truth["planted"] if t["problem"] == problem]


def test_near_dedup_drops_are_planted_copies(near_dedup, truth) -> None:
    planted: set[Key] = set()
    for t in _copies(truth, "near_duplicate") + _copies(truth, "exact_duplicate"):
        planted |= {(t["file"], t["row_number"]), (t["file"], t["duplicate_of"])}
    assert near_dedup, "near dedup dropped nothing on the bundled sample"
    unplanted = sorted(k for k in near_dedup if k not in planted)
    share = 1 - len(unplanted) / len(near_dedup)
    print(f"near dedup dropped {len(near_dedup)}, {share:.1%} planted; not planted: {unplanted[:20]}")
    assert share >= MIN_PLANTED_SHARE, (len(near_dedup), unplanted[:20])


def test_near_dedup_catches_the_planted_near_copies(near_dedup, truth) -> None:
    # an original may have an exact duplicate that exact dedup kept in its place: they are one family
    family: dict[Key, Key] = {}
    for t in _copies(truth, "exact_duplicate"):
        family[(t["file"], t["row_number"])] = (t["file"], t["duplicate_of"])

    def kept(k: Key) -> Key:  # the sample a row's cluster kept, as a family
        k = near_dedup.get(k, k)
        return family.get(k, k)

    near = _copies(truth, "near_duplicate")
    caught = []
    for t in near:
        copy, orig = (t["file"], t["row_number"]), (t["file"], t["duplicate_of"])
        members = [orig] + [k for k, v in family.items() if v == orig]
        dropped = copy in near_dedup or any(m in near_dedup for m in members)
        caught.append(dropped and any(kept(m) == kept(copy) for m in members))
    print(f"planted near copies caught: {sum(caught)} of {len(near)}")
    assert len(near) >= 50
    assert sum(caught) >= MIN_CAUGHT * len(near), (sum(caught), len(near))


def test_generator_reproduces_the_committed_sample(tmp_path) -> None:
    out = tmp_path / "sample"
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "make_sample_data.py"), "--out", str(out)],
                         capture_output=True, text=True, timeout=900)
    committed = json.loads((SAMPLE_DIR / "truth.json").read_text(encoding="utf-8"))["material"]
    if res.returncode != 0 and "missing" in res.stderr:
        # a machine without the material: the generator must say what to install, and write nothing
        assert "install Debian's postgresql-15" in res.stderr and not (out / "truth.json").exists(), res.stderr
        return
    assert res.returncode == 0, res.stderr
    made = json.loads((out / "truth.json").read_text(encoding="utf-8"))["material"]
    assert made["sha256"] == committed["sha256"], (
        f"the generator's material differs on this machine ({made}) from the committed sample's ({committed}): "
        "another Python or PostgreSQL catalogue version; the committed sample stays what every test uses")
    differ = [f for f in GENERATED if (out / f).read_bytes() != (SAMPLE_DIR / f).read_bytes()]
    assert not differ, f"regenerated files differ from data/sample: {differ}"
