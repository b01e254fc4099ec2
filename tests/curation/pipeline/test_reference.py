"""The reference set (``reference_batches``) in every dedup step: an approved sample is never dropped, even
when a new copy of it scores higher; the new copy is dropped, naming it.

Real store, real steps, the real all-MiniLM-L6-v2 for semantic dedup. The reference copy carries a control
character: the quality step (run first, on the text as read) flags it, so it scores lower than the new
copy; cleaning then removes the character, so the two are duplicates for the dedup step.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curation.ingest import ingest_paths
from curation.pipeline.executor import run_pipeline
from curation.pipeline.registry import REFERENCE_STEP_TYPES, build_step
from curation.store import Store
from schemas.pipeline import PipelineConfig, StepConfig

BELL = "\x07"  # quality flags it (non_printable: score 0.85); cleaning removes it
EN = ("Binary search finds an item in a sorted list by comparing the target with the middle element and "
      "discarding the half that cannot contain it, repeating until the item is found or the list is empty.")

# per dedup step: (params, reference copy, new copy): the new copy is a duplicate of the reference for that step
CASES = {
    "exact_dedup": ({}, EN + BELL, EN),
    "near_dedup": ({}, EN + BELL, EN.replace("middle", "central")),
    "semantic_dedup": ({"threshold": 0.9}, "A man is playing a guitar." + BELL, "A man plays the guitar."),
}


def _write(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def _store(tmp_path: Path, ref_output: str, new_output: str) -> tuple[Store, int]:
    store = Store(tmp_path / "curate.duckdb")
    instruction = "Describe it in one sentence."
    ingest_paths(store, [_write(tmp_path / "approved.jsonl", [{"id": "ref", "instruction": instruction, "output": ref_output}])])
    ingest_paths(store, [_write(tmp_path / "new.jsonl", [
        {"id": "new", "instruction": instruction, "output": new_output},
        {"id": "other", "instruction": "Give a recipe.", "output": "Rinse the rice, add water and simmer for twenty minutes."},
    ])])
    with store.reader() as con:
        ref_batch = con.execute("SELECT batch_id FROM batches WHERE source LIKE '%approved.jsonl'").fetchall()[0][0]
    return store, int(ref_batch)


def _dropped(store: Store, run_id: int, step: str) -> dict[str, tuple[str, str]]:
    """external id of each dropped sample -> (external id of the sample it names, reason)."""
    with store.reader() as con:
        return {a: (b, why) for a, b, why in con.execute(
            """SELECT s.external_id, r.external_id, d.reason FROM decisions d JOIN samples s USING (sample_id)
               LEFT JOIN samples r ON r.sample_id = d.ref_sample_id
               WHERE d.run_id = ? AND d.step = ? AND d.verdict = 'drop'""", [run_id, step]).fetchall()}


def _pipeline(step_type: str, params: dict) -> PipelineConfig:
    return PipelineConfig(steps=[StepConfig(type="quality"), StepConfig(type="clean"),
                                 StepConfig(type=step_type, params=params)])


def test_every_dedup_step_takes_the_reference_parameter() -> None:
    assert REFERENCE_STEP_TYPES == {"exact_dedup", "near_dedup", "semantic_dedup"}
    for t in REFERENCE_STEP_TYPES:
        assert build_step(StepConfig(type=t, params={"reference_batches": [3]})).params.reference_batches == [3]


@pytest.mark.parametrize("step_type", sorted(CASES))
def test_a_reference_sample_is_never_dropped_even_when_a_new_copy_scores_higher(tmp_path, step_type) -> None:
    params, ref_output, new_output = CASES[step_type]
    store, ref_batch = _store(tmp_path, ref_output, new_output)

    # without a reference: the new copy scores higher, so it is kept and the approved sample is dropped
    plain = run_pipeline(store, _pipeline(step_type, params))
    with store.reader() as con:
        scores = dict(con.execute(
            """SELECT s.external_id, g.value FROM signals g JOIN samples s USING (sample_id)
               WHERE g.run_id = ? AND g.name = 'quality_score'""", [plain.run_id]).fetchall())
    assert scores["new"] > scores["ref"], scores
    got = _dropped(store, plain.run_id, step_type)
    assert list(got) == ["ref"] and got["ref"][0] == "new", got

    # with the approved batch as the reference: it is kept, and the new copy is dropped naming it
    ref_run = run_pipeline(store, _pipeline(step_type, {**params, "reference_batches": [ref_batch]}))
    assert ref_run.run_id != plain.run_id and not ref_run.skipped
    got = _dropped(store, ref_run.run_id, step_type)
    assert list(got) == ["new"], got
    assert got["new"][0] == "ref" and "reference sample" in got["new"][1], got
    with store.reader() as con:
        kept = {r[0] for r in con.execute("SELECT s.external_id FROM kept k JOIN samples s USING (sample_id)").fetchall()}
    assert kept == {"ref", "other"}


def test_copies_inside_the_reference_are_all_kept(tmp_path) -> None:
    store = Store(tmp_path / "curate.duckdb")
    ingest_paths(store, [_write(tmp_path / "approved.jsonl", [
        {"id": "r1", "instruction": "Q", "output": EN}, {"id": "r2", "instruction": "Q", "output": EN}])])
    ingest_paths(store, [_write(tmp_path / "new.jsonl", [{"id": "n", "instruction": "Q", "output": EN}])])
    with store.reader() as con:
        ref_batch = con.execute("SELECT batch_id FROM batches WHERE source LIKE '%approved.jsonl'").fetchall()[0][0]
    run = run_pipeline(store, PipelineConfig(steps=[StepConfig(type="exact_dedup", params={"reference_batches": [ref_batch]})]))
    got = _dropped(store, run.run_id, "exact_dedup")
    assert list(got) == ["n"] and got["n"][0] == "r1" and "2 reference copies kept" in got["n"][1], got
