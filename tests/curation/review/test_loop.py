"""The review loop on the bundled data with simulated reviewers (verdicts from the planted truth, 2% noise)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest

from curation.errors import RefusedError
from curation.review.export import export_snapshot
from curation.review.loop import (
    agreement,
    apply_reviews,
    draw_sample,
    majority,
    record_verdicts,
    weighted_certification,
)
from curation.review.snapshots import approve, create_snapshot, get_snapshot
from curation.review.stats import plan
from curation.store import Store


def _bad_samples(store: Store, truth: dict) -> set[str]:
    """What a careful reviewer of the kept set would reject, from the planted truth."""
    with store.reader() as con:
        ids = {(Path(src).name, n): sid for sid, src, n in con.execute("SELECT sample_id, source, row_number FROM samples").fetchall()}
        kept = {r[0] for r in con.execute("SELECT sample_id FROM kept").fetchall()}
    bad = set()
    for p in truth["planted"]:
        sid = ids.get((p["file"], p["row_number"]))
        if sid is None or p["problem"] == "control_characters":  # repaired by cleaning: what reviewers see is fine
            continue
        if p["problem"] in ("exact_duplicate", "near_duplicate"):
            # a copy is wrong only while its twin is kept too
            if ids.get((p["file"], p["duplicate_of"])) in kept:
                bad.add(sid)
        else:
            bad.add(sid)
    return bad


def _simulate(store: Store, items: list[dict], bad: set[str], reviewers: int, noise: float, seed: int) -> None:
    rng = random.Random(seed)
    verdicts = []
    for it in items:
        right = "reject" if it["sample_id"] in bad else "accept"
        for r in range(reviewers):
            wrong = rng.random() < noise
            verdict = ("accept" if right == "reject" else "reject") if wrong else right
            v = {"item_id": it["item_id"], "reviewer": f"sim{r}", "verdict": verdict}
            if verdict == "reject" and it["sample_id"] in bad and r == 0:
                v["categories"] = ["other"]
            verdicts.append(v)
    record_verdicts(store, verdicts, "sim")


def test_end_to_end_certifies_a_clean_snapshot_and_applies_the_reviews(store, truth) -> None:
    snap = create_snapshot(store)
    n = plan(expected=0.995)
    drawn = draw_sample(store, snap.snapshot_id, n, seed=7)
    assert get_snapshot(store, snap.snapshot_id).state == "in_review"
    # drawing again with the same seed adds nothing
    assert len(draw_sample(store, snap.snapshot_id, n, seed=7).items) == len(drawn.items)
    with store.reader() as con:
        assert con.execute("SELECT count(*) FROM reviews WHERE snapshot_id = ?", [snap.snapshot_id]).fetchall()[0][0] == len(drawn.items)
    bad = _bad_samples(store, truth)
    _simulate(store, drawn.items, bad, reviewers=3, noise=0.02, seed=1)
    # a re-pull of the same verdicts is a no-op
    assert record_verdicts(store, [{"item_id": drawn.items[0]["item_id"], "reviewer": "sim0", "verdict": "accept"}], "sim") == 0
    cert = weighted_certification(store, snap.snapshot_id)
    assert cert["verdict"] == "certified", cert
    agree = agreement(store, snap.snapshot_id)
    assert agree["items_with_overlap"] == len(drawn.items) and agree["percent_agreement"] > 0.9
    done = approve(store, snap.snapshot_id, cert)
    assert done.state == "approved" and not done.forced
    out = export_snapshot(store, snap.snapshot_id, seed=3)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["samples"] == snap.n_samples == manifest["split"]["train"] + manifest["split"]["eval"]
    assert manifest["review"]["verdict"] == "certified" and manifest["content_hash"] == snap.content_hash
    assert pq.read_table(out / "train.parquet").num_rows == manifest["split"]["train"]
    assert datasets.load_from_disk(str(out / "hf"))["eval"].num_rows == manifest["split"]["eval"] > 0
    # the split is reproducible
    again = export_snapshot(store, snap.snapshot_id, out.parent / "again", seed=3)
    assert (again / "eval.jsonl").read_bytes() == (out / "eval.jsonl").read_bytes()
    # corrections and rejections make a child snapshot
    votes = majority(store, snap.snapshot_id)
    first = next(iter(votes))
    record_verdicts(store, [{"item_id": first, "reviewer": "lead", "verdict": "reject", "corrected_output": "A corrected answer."},
                            {"item_id": first, "reviewer": "lead2", "verdict": "reject"}], "sim")
    child = apply_reviews(store, snap.snapshot_id)
    sid = first.split(":")[1]
    with store.reader() as con:
        pinned = con.execute("SELECT version FROM snapshot_samples WHERE snapshot_id = ? AND sample_id = ?", [child, sid]).fetchall()
        text = con.execute("SELECT output FROM sample_texts WHERE sample_id = ? AND version = ?", [sid, pinned[0][0]]).fetchall()
    assert text[0][0] == "A corrected answer."
    rejected = sum(1 for d in majority(store, snap.snapshot_id).values() if d["verdict"] == "reject" and not d["corrected_output"])
    assert get_snapshot(store, child).n_samples == snap.n_samples - rejected


def test_a_snapshot_with_four_percent_errors_does_not_certify(store) -> None:
    snap = create_snapshot(store)
    with store.reader() as con:
        ids = [r[0] for r in con.execute("SELECT sample_id FROM snapshot_samples WHERE snapshot_id = ? ORDER BY sample_id",
                                         [snap.snapshot_id]).fetchall()]
    bad = set(random.Random(3).sample(ids, int(0.04 * len(ids))))
    drawn = draw_sample(store, snap.snapshot_id, plan(expected=0.995), seed=7)
    _simulate(store, drawn.items, bad, reviewers=3, noise=0.02, seed=2)
    cert = weighted_certification(store, snap.snapshot_id)
    assert cert["verdict"] != "certified", cert
    with pytest.raises(RefusedError):
        approve(store, snap.snapshot_id, cert)
    with pytest.raises(RefusedError, match="not approved"):
        export_snapshot(store, snap.snapshot_id)


def test_a_loop_of_rounds_looks_only_at_complete_rounds_and_spends_alpha(store, truth) -> None:
    from curation.review.loop import start_review
    from curation.review.snapshots import snapshot_certification
    from curation.review.stats import spending

    snap = create_snapshot(store)
    p = start_review(store, snap.snapshot_id, rounds=4, seed=5)
    assert p["rounds"] == 4 and p["per_round"] * 4 >= p["sampled"] > 0
    # idempotent: a second start keeps the plan and draws nothing more
    assert start_review(store, snap.snapshot_id, rounds=2, seed=9) == p
    with store.reader() as con:
        items = [{"item_id": i, "sample_id": s} for i, s in con.execute(
            "SELECT item_id, sample_id FROM reviews WHERE snapshot_id = ? AND stratum <> 'flagged' ORDER BY item_id",
            [snap.snapshot_id]).fetchall()]
    bad = _bad_samples(store, truth)
    _simulate(store, items[: p["per_round"] - 1], bad, reviewers=1, noise=0.0, seed=1)
    early = snapshot_certification(store, snap.snapshot_id)
    assert early["look"] == 0 and early["verdict"] == "undecided" and early["more_reviews_needed"] == 1
    _simulate(store, items[: p["per_round"]], bad, reviewers=1, noise=0.0, seed=1)
    first = snapshot_certification(store, snap.snapshot_id)
    assert first["look"] == 1 and first["alpha"] == pytest.approx(spending(0.05, 4)[0])
    _simulate(store, items, bad, reviewers=1, noise=0.0, seed=1)
    last = snapshot_certification(store, snap.snapshot_id)
    assert last["look"] == 4 and last["verdict"] == "certified", last


def test_error_summary_names_the_sources_languages_and_filters_behind_rejections(store, truth) -> None:
    from curation.review.loop import error_summary

    snap = create_snapshot(store)
    drawn = draw_sample(store, snap.snapshot_id, 300, seed=7)
    bad = _bad_samples(store, truth)
    _simulate(store, drawn.items, bad, reviewers=1, noise=0.0, seed=1)
    rows = error_summary(store, snap.snapshot_id)
    dims = {r["by"] for r in rows}
    assert dims == {"source", "language", "filter"}
    by_source = [r for r in rows if r["by"] == "source"]
    assert sum(r["reviewed"] for r in by_source) == len(drawn.items)
    rejected = sum(1 for it in drawn.items if it["sample_id"] in bad)
    assert sum(r["rejected"] for r in by_source) == rejected > 0
    assert all(r["categories"].get("other", 0) == r["rejected"] for r in by_source)
    assert all(0 <= r["error_rate"] <= 1 for r in rows)


def test_rating_items_take_ratings_and_refuse_verdicts_without_them(store) -> None:
    from curation.errors import UsageError
    from curation.review.items import answer_items
    from curation.review.loop import add_answer_items

    answers = [{"item_id": f"eval1:{i}", "prompt": f"问题 {i}", "answer": f"Answer {i}", "model": "lora-a"} for i in range(5)]
    assert add_answer_items(store, "eval1", answers) == 5
    assert add_answer_items(store, "eval1", answers) == 0
    items = answer_items(store, "eval1")
    assert [it.payload["prompt"] for it in items] == [f"问题 {i}" for i in range(5)]
    assert record_verdicts(store, [{"item_id": "eval1:0", "reviewer": "r1", "ratings": {"overall": 4, "correct": "yes"}}], "sim") == 1
    with pytest.raises(UsageError, match="needs ratings"):
        record_verdicts(store, [{"item_id": "eval1:1", "reviewer": "r1"}], "sim")
    with pytest.raises(UsageError, match="unknown review item"):
        record_verdicts(store, [{"item_id": "eval9:1", "reviewer": "r1", "ratings": {"overall": 1}}], "sim")
    with store.reader() as con:
        got = con.execute("SELECT ratings->>'overall', item_kind FROM reviews WHERE review_id = 'eval1:0:r1'").fetchall()
    assert got == [("4", "answer")]
