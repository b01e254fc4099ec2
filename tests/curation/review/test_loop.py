"""The review loop on the bundled data with simulated reviewers (verdicts from the planted truth, 2% noise)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest

from curation.errors import RefusedError
from curation.review.apply import apply_reviews
from curation.review.certification import snapshot_certification
from curation.review.sampling import draw_sample, start_review
from curation.review.scripted import planted_problems
from curation.review.stats import plan
from curation.review.verdicts import majority, record_verdicts
from curation.snapshots import approve, create_snapshot, export_snapshot, get_snapshot
from curation.store import Store
from schemas.manifest import SnapshotManifest


def _bad_samples(store: Store, truth: dict) -> set[str]:
    """What a careful reviewer of the kept set would reject, from the planted truth (the demo's scripted reviewer's
    judgement)."""
    return set(planted_problems(store, truth))


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


def _rows(folder: Path) -> dict[str, dict]:
    rows = {}
    for name in ("train", "eval"):
        for line in (folder / f"{name}.jsonl").read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            rows[r["sample_id"]] = r
    return rows


def test_the_certified_path_exports_what_was_certified(store, truth, cli, tmp_path) -> None:
    """push (plan + draw) -> verdicts -> status -> apply -> approve the child -> export the child, row by row."""
    snap = create_snapshot(store)
    with store.reader() as con:
        kept_before = con.execute("SELECT sample_id, version, output FROM kept ORDER BY 1").fetchall()
    p = start_review(store, snap.snapshot_id, overlap=3, seed=7)
    assert get_snapshot(store, snap.snapshot_id).state == "in_review"
    with store.reader() as con:
        items = [{"item_id": i, "sample_id": s, "stratum": h} for i, s, h in con.execute(
            "SELECT item_id, sample_id, stratum FROM reviews WHERE snapshot_id = ? AND review_id = item_id ORDER BY 1",
            [snap.snapshot_id]).fetchall()]
        shapes = dict(con.execute("SELECT sample_id, shape FROM samples").fetchall())
    assert len(items) == p["items"] and {it["stratum"] for it in items} >= {"flagged"}
    bad = _bad_samples(store, truth)
    _simulate(store, items, bad, reviewers=3, noise=0.0, seed=1)
    # corrections: an alpaca answer and a dialogue's last assistant turn, each rejected by two reviewers of three
    fix = {}
    for shape in ("alpaca", "sharegpt"):
        it = next(it for it in items if shapes[it["sample_id"]] == shape and it["sample_id"] not in bad)
        fix[it["sample_id"]] = f"A corrected {shape} answer."
        record_verdicts(store, [{"item_id": it["item_id"], "reviewer": f"lead{r}", "verdict": "reject",
                                 "corrected_output": fix[it["sample_id"]], "categories": ["factual error"]}
                                for r in range(4)], "sim")
    votes = majority(store, snap.snapshot_id)
    rejected = {k.split(":")[1] for k, d in votes.items() if d["verdict"] == "reject" and not d["corrected_output"]}
    assert rejected and set(fix) <= {k.split(":")[1] for k, d in votes.items() if d["corrected_output"]}
    # every stratum counts: the flagged stratum's rejections are in the exact counts
    cert = snapshot_certification(store, snap.snapshot_id)
    flagged = next(h for h in cert["strata"] if h["name"] == "flagged")
    assert flagged["full"] and flagged["reviewed"] == flagged["population"]
    assert cert["counts"]["rejected"] == len(rejected) + len(fix) == sum(h["rejected"] for h in cert["strata"])
    assert cert["counts"]["reviewed"] == len(items)
    res = cli("review", "status", str(snap.snapshot_id))
    assert res.exit_code == 0, res.output
    assert "counts (exact)" in res.output and "estimates" in res.output and "flagged" in res.output
    assert len(res.output.splitlines()) < 80
    full = json.loads(cli("review", "status", str(snap.snapshot_id), "--json").output)
    assert full["certification"]["counts"] == cert["counts"]
    # apply: the child; the finished run does not change
    res = cli("review", "apply", str(snap.snapshot_id))
    assert res.exit_code == 0, res.output
    child = json.loads(res.stdout)["snapshot"]
    assert get_snapshot(store, child).applied_from == snap.snapshot_id
    with store.reader() as con:
        assert con.execute("SELECT sample_id, version, output FROM kept ORDER BY 1").fetchall() == kept_before
    child_cert = snapshot_certification(store, child)
    assert child_cert["basis"] == "lineage" and child_cert["lineage"]["rejected_removed"] == len(rejected)
    assert child_cert["lower"] >= cert["lower"]
    # the bundled sample keeps planted problems that the filters flag: counted exactly, they keep the parent
    # below the gate; the child, without them, certifies through its lineage and is approved without --force
    assert flagged["rejected"] > 0 and cert["verdict"] != "certified", cert
    assert cli("snapshot", "approve", str(snap.snapshot_id)).exit_code == 3
    assert child_cert["verdict"] == "certified", child_cert
    res = cli("snapshot", "approve", str(child))
    assert res.exit_code == 0, res.output
    assert not get_snapshot(store, child).forced
    out = tmp_path / "export"
    res = cli("snapshot", "export", str(child), "--to", str(out), "--seed", "3")
    assert res.exit_code == 0 and "warning" not in res.output, res.output
    rows = _rows(out)
    assert not rejected & set(rows)
    assert len(rows) == snap.n_samples - len(rejected) == get_snapshot(store, child).n_samples
    for sid, text in fix.items():
        r = rows[sid]
        if r["messages"]:
            last = [m for m in r["messages"] if m["role"] == "assistant"][-1]
            assert last["content"] == text and r["output"] is None
        else:
            assert r["output"] == text
    assert all("/" not in r["source"] and (r["metadata"] is None or isinstance(r["metadata"], dict)) for r in rows.values())
    manifest = SnapshotManifest.model_validate_json((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest.snapshot_id == child and manifest.lineage.certified_through == snap.snapshot_id
    assert manifest.lineage.rejected_removed == len(rejected) and manifest.lineage.corrected == len(fix)
    assert manifest.certification["verdict"] == "certified" and manifest.certification["parent"]["snapshot"] == snap.snapshot_id
    assert manifest.split.train + manifest.split.eval == len(rows)
    assert pq.read_table(out / "train.parquet").num_rows == manifest.split.train
    assert datasets.load_from_disk(str(out / "hf"))["eval"].num_rows == manifest.split.eval > 0
    # the split is reproducible
    again = export_snapshot(store, child, out.parent / "again", seed=3).path
    assert (again / "eval.jsonl").read_bytes() == (out / "eval.jsonl").read_bytes()
    # the parent (forced) exports with a warning naming the child
    approve(store, snap.snapshot_id, force=True)
    res = cli("snapshot", "export", str(snap.snapshot_id), "--to", str(tmp_path / "parent"), "--no-hf")
    assert res.exit_code == 0 and f"snapshot {child} applies them" in " ".join(res.output.split()), res.output
    warned = SnapshotManifest.model_validate_json((tmp_path / "parent" / "manifest.json").read_text(encoding="utf-8"))
    assert warned.warnings and str(child) in warned.warnings[0]
    # applying again returns the same child
    assert apply_reviews(store, snap.snapshot_id).snapshot_id == child


def test_a_snapshot_with_four_percent_errors_does_not_certify(store) -> None:
    snap = create_snapshot(store)
    with store.reader() as con:
        ids = [r[0] for r in con.execute("SELECT sample_id FROM snapshot_samples WHERE snapshot_id = ? ORDER BY sample_id",
                                         [snap.snapshot_id]).fetchall()]
    bad = set(random.Random(3).sample(ids, int(0.04 * len(ids))))
    drawn = draw_sample(store, snap.snapshot_id, plan(expected=0.995), seed=7)
    _simulate(store, drawn.items, bad, reviewers=3, noise=0.02, seed=2)
    cert = snapshot_certification(store, snap.snapshot_id)
    assert cert["verdict"] != "certified", cert
    with pytest.raises(RefusedError):
        approve(store, snap.snapshot_id)
    with pytest.raises(RefusedError, match="not approved"):
        export_snapshot(store, snap.snapshot_id)


def test_a_loop_of_rounds_looks_only_at_complete_rounds_and_spends_alpha(store, truth) -> None:
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
    with store.reader() as con:
        flagged = [{"item_id": i, "sample_id": s} for i, s in con.execute(
            "SELECT item_id, sample_id FROM reviews WHERE snapshot_id = ? AND stratum = 'flagged'",
            [snap.snapshot_id]).fetchall()]
    # every judged sample is fine here: this is about when the loop looks, not about what it finds
    _simulate(store, items[: p["per_round"] - 1], set(), reviewers=1, noise=0.0, seed=1)
    early = snapshot_certification(store, snap.snapshot_id)
    # one more sampled review completes the first round; the flagged samples are all still to judge
    assert early["look"] == 0 and early["verdict"] == "undecided"
    assert early["more_reviews_needed"] == 1 + len(flagged) > 1
    _simulate(store, items[: p["per_round"]] + flagged, set(), reviewers=1, noise=0.0, seed=1)
    first = snapshot_certification(store, snap.snapshot_id)
    assert first["look"] == 1 and first["alpha"] == pytest.approx(spending(0.05, 4)[0])
    _simulate(store, items, set(), reviewers=1, noise=0.0, seed=1)
    last = snapshot_certification(store, snap.snapshot_id)
    assert last["look"] == 4 and last["verdict"] == "certified", last


def test_error_summary_names_the_sources_languages_and_filters_behind_rejections(store, truth) -> None:
    from curation.review.status import error_summary

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
    from curation.review.verdicts import add_answer_items

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
