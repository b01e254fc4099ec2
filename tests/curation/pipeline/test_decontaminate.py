"""Decontamination's run identity: the content hash of each evaluation file is part of it and stored with the run."""

from __future__ import annotations

import json
from pathlib import Path

import xxhash

from curation.ingest import ingest_paths
from curation.pipeline.executor import config_hash, run_pipeline
from curation.pipeline.registry import build_step
from curation.store import Store
from schemas.pipeline import PipelineConfig, StepConfig

Q1 = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
      "How many clips did Natalia sell altogether in April and May?")
Q2 = ("Weng earns 12 dollars an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. "
      "How much did she earn for the time she spent babysitting?")


def _eval(path: Path, question: str) -> None:
    path.write_text(json.dumps({"question": question, "answer": "42"}) + "\n", encoding="utf-8")


def _dropped(store: Store, run_id: int) -> set[str]:
    with store.reader() as con:
        return {r[0] for r in con.execute(
            "SELECT s.external_id FROM decisions d JOIN samples s USING (sample_id) WHERE d.run_id = ? AND d.verdict = 'drop'",
            [run_id]).fetchall()}


def _stored_inputs(store: Store, run_id: int) -> dict:
    with store.reader() as con:
        config = json.loads(con.execute("SELECT config FROM runs WHERE run_id = ?", [run_id]).fetchall()[0][0])
    return config["steps"][0]["inputs"]


def test_a_changed_evaluation_file_is_a_new_run_and_an_unchanged_one_is_not(tmp_path) -> None:
    store = Store(tmp_path / "curate.duckdb")
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in [
        {"id": "leak-1", "instruction": "Solve: " + Q1, "output": "72 clips."},
        {"id": "leak-2", "instruction": "Solve: " + Q2, "output": "10 dollars."},
        {"id": "clean", "instruction": "Name a prime number.", "output": "7"},
    ]), encoding="utf-8")
    ingest_paths(store, [str(train)])
    eval_file = tmp_path / "test.jsonl"
    _eval(eval_file, Q1)
    cfg = PipelineConfig(steps=[StepConfig(type="decontaminate", params={"eval_paths": [str(eval_file)]})])

    first = run_pipeline(store, cfg)
    assert not first.skipped and _dropped(store, first.run_id) == {"leak-1"}
    # the run records which evaluation file it was checked against, by content hash
    want = "xxh3-128:" + xxhash.xxh3_128_hexdigest(eval_file.read_bytes())
    assert _stored_inputs(store, first.run_id) == {
        "eval_files": [{"path": str(eval_file), "hash": want, "bytes": eval_file.stat().st_size}]}

    # unchanged (even rewritten with the same bytes): nothing to do
    _eval(eval_file, Q1)
    again = run_pipeline(store, cfg)
    assert again.skipped and again.run_id == first.run_id

    # the same path, other content: a new run, whose decisions follow the new file
    _eval(eval_file, Q2)
    changed = run_pipeline(store, cfg)
    assert not changed.skipped and changed.run_id != first.run_id
    assert _dropped(store, changed.run_id) == {"leak-2"}
    assert _stored_inputs(store, changed.run_id)["eval_files"][0]["hash"] != want
    with store.reader() as con:
        hashes = [r[0] for r in con.execute("SELECT config_hash FROM runs ORDER BY run_id").fetchall()]
    assert len(hashes) == 2 and hashes[0] != hashes[1]

    # and back to the first content: that run is found again
    _eval(eval_file, Q1)
    back = run_pipeline(store, cfg)
    assert back.skipped and back.run_id == first.run_id


def test_steps_without_inputs_hash_as_before() -> None:
    import hashlib

    cfg = PipelineConfig(steps=[StepConfig(type="clean"), StepConfig(type="exact_dedup")])
    steps = [build_step(s) for s in cfg.steps]
    assert "inputs" not in json.dumps(cfg.model_dump())
    # the identity of a config whose steps read nothing else is the sha256 of the config, as it always was
    plain = hashlib.sha256(json.dumps(cfg.model_dump(), sort_keys=True).encode()).hexdigest()
    assert config_hash(cfg) == config_hash(cfg, steps) == plain
