"""Snapshots: frozen from a run, immutable, incremental on an approved parent, approval gated by certification."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from curation.errors import RefusedError, UsageError
from curation.ingest import ingest_paths
from curation.pipeline.executor import run_pipeline
from curation.review.certification import snapshot_certification
from curation.snapshots import approve, create_snapshot, get_snapshot
from curation.store import Store
from schemas.pipeline import PipelineConfig, StepConfig
from tests.conftest import SAMPLE_DIR

CFG = PipelineConfig(steps=[StepConfig(type="clean"), StepConfig(type="exact_dedup")])


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("snap") / "curate.duckdb"
    store = Store(path)
    ingest_paths(store, [str(SAMPLE_DIR / "instructions.jsonl")])
    run_pipeline(store, CFG)
    return path


@pytest.fixture
def store(base, tmp_path) -> Store:
    shutil.copy(base, tmp_path / "curate.duckdb")
    return Store(tmp_path / "curate.duckdb")


def q(store: Store, sql: str, params: list | None = None) -> list[tuple]:
    with store.reader() as con:
        return con.execute(sql, params or []).fetchall()


def test_a_snapshot_pins_the_kept_samples_and_their_versions(store) -> None:
    snap = create_snapshot(store, note="first")
    assert snap.state == "draft" and snap.n_samples == q(store, "SELECT count(*) FROM kept")[0][0] == snap.n_new
    # cleaned samples are pinned to their new text version
    pinned = dict(q(store, "SELECT sample_id, version FROM snapshot_samples WHERE snapshot_id = ?", [snap.snapshot_id]))
    kept = dict(q(store, "SELECT sample_id, version FROM kept"))
    assert pinned == kept and any(v > 0 for v in pinned.values())
    # the same run frozen again has the same content hash
    assert create_snapshot(store).content_hash == snap.content_hash


def test_approval_needs_certification_or_force(store, tmp_path) -> None:
    snap = create_snapshot(store)
    cert = snapshot_certification(store, snap.snapshot_id)
    assert cert["verdict"] == "undecided" and cert["counts"]["reviewed"] == 0
    with pytest.raises(RefusedError, match="no reviews yet"):
        approve(store, snap.snapshot_id)
    done = approve(store, snap.snapshot_id, force=True)
    assert done.state == "approved" and done.forced and done.certification["verdict"] == "undecided"
    with pytest.raises(RefusedError, match="already approved"):
        approve(store, snap.snapshot_id, force=True)


def test_an_incremental_snapshot_only_needs_its_new_samples_reviewed(store, tmp_path) -> None:
    parent = approve(store, create_snapshot(store).snapshot_id, force=True)
    extra = tmp_path / "more.jsonl"
    extra.write_text(json.dumps({"instruction": "New question?", "output": "A new, complete answer."}) + "\n", encoding="utf-8")
    ingest_paths(store, [str(extra)])
    run_pipeline(store, CFG)
    child = create_snapshot(store, parent_id=parent.snapshot_id)
    assert child.n_samples == parent.n_samples + 1 and child.n_new == 1
    with pytest.raises(UsageError, match="only an approved snapshot"):
        create_snapshot(store, parent_id=create_snapshot(store).snapshot_id)


def test_cli(cli, store) -> None:
    res = cli("snapshot", "create", "--note", "cli")
    assert res.exit_code == 0, res.output
    sid = json.loads(res.output)["snapshot"]
    res = cli("snapshot", "approve", str(sid))
    assert res.exit_code == 3 and "not certified" in res.output
    res = cli("review", "plan")
    assert res.exit_code == 0 and 400 < json.loads(res.output)["reviews"] < 800
    res = cli("review", "certify", "700", "697")
    assert json.loads(res.output)["verdict"] == "certified"
    assert cli("review", "certify", "10", "11").exit_code == 2
    assert get_snapshot(store, sid).state == "draft"


def test_an_incremental_round_dedups_new_batches_against_the_approved_parent(store, tmp_path, runner) -> None:
    from curation.cli.app import app

    parent = approve(store, create_snapshot(store).snapshot_id, force=True)
    with store.reader() as con:
        sid, instruction, output = con.execute(
            """SELECT s.sample_id, s.instruction, s.output FROM snapshot_samples ss JOIN samples s USING (sample_id)
               WHERE ss.snapshot_id = ? AND s.shape = 'alpaca' AND length(s.output) > 200 ORDER BY s.sample_id LIMIT 1""",
            [parent.snapshot_id]).fetchall()[0]
    words = output.split(" ")
    near = " ".join(words[:-1]) + " indeed."  # the last word changed: a near copy of a parent sample
    extra = tmp_path / "round2.jsonl"
    extra.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in (
        {"instruction": instruction, "output": near},
        {"instruction": "A question nobody asked before?", "output": "A new, complete answer to it."})) + "\n",
        encoding="utf-8")
    ingest_paths(store, [str(extra)])
    cfg = tmp_path / "round2.toml"
    cfg.write_text('[[steps]]\ntype = "clean"\n\n[[steps]]\ntype = "near_dedup"\n', encoding="utf-8")
    res = runner.invoke(app, ["--db", str(store.path), "run", "--config", str(cfg), "--reference-snapshot",
                              str(parent.snapshot_id)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    drops = q(store, """SELECT d.reason, d.ref_sample_id FROM decisions d JOIN samples s USING (sample_id)
                        WHERE d.run_id = (SELECT max(run_id) FROM runs) AND d.verdict = 'drop'
                        AND s.source LIKE '%round2.jsonl'""")
    assert len(drops) == 1 and drops[0][1] == sid and "reference" in drops[0][0], drops
    # the parent's samples are never dropped by the reference mode
    assert not q(store, """SELECT 1 FROM decisions d JOIN snapshot_samples ss USING (sample_id)
                           WHERE d.run_id = (SELECT max(run_id) FROM runs) AND d.verdict = 'drop'
                           AND ss.snapshot_id = ? AND d.ref_sample_id IN
                               (SELECT sample_id FROM samples WHERE source LIKE '%round2.jsonl')""",
                  [parent.snapshot_id])
    child = create_snapshot(store, parent_id=parent.snapshot_id)
    assert child.n_new >= 1
    new = q(store, """SELECT s.source FROM snapshot_samples ss JOIN samples s USING (sample_id)
                      WHERE ss.snapshot_id = ? AND ss.is_new""", [child.snapshot_id])
    assert any(src.endswith("round2.jsonl") for (src,) in new) and sid not in {r[0] for r in new}


def test_the_reference_snapshot_reaches_every_dedup_step(store) -> None:
    from curation.snapshots import with_reference_snapshot

    cfg = PipelineConfig(steps=[StepConfig(type="clean"), StepConfig(type="exact_dedup"), StepConfig(type="near_dedup"),
                                StepConfig(type="semantic_dedup")])
    with pytest.raises(UsageError, match="only an approved snapshot"):
        with_reference_snapshot(store, cfg, create_snapshot(store).snapshot_id)
    parent = approve(store, create_snapshot(store).snapshot_id, force=True)
    got = with_reference_snapshot(store, cfg, parent.snapshot_id)
    batches = sorted({r[0] for r in q(store, """SELECT s.batch_id FROM snapshot_samples ss JOIN samples s USING (sample_id)
                                                WHERE ss.snapshot_id = ?""", [parent.snapshot_id])})
    assert [s.params.get("reference_batches") for s in got.steps] == [None, batches, batches, batches]
    with pytest.raises(UsageError, match="no dedup step"):
        with_reference_snapshot(store, PipelineConfig(steps=[StepConfig(type="clean")]), parent.snapshot_id)
