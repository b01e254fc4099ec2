"""The review loop on every backend, against real servers started once per test session (Label Studio; Argilla
with its embedded search engine and Redis): push, reviewers answering through each tool's own API, pull,
certify, apply, approve and export give the same results as the same verdicts stored directly."""

from __future__ import annotations

import json
import shutil

import pytest

from curation.review.apply import apply_reviews
from curation.review.backends import snapshot_key
from curation.review.certification import snapshot_certification
from curation.review.items import sample_items
from curation.review.loop import pull_review, push_review
from curation.review.sampling import start_review
from curation.review.scripted import Judgement, planted_problems
from curation.review.verdicts import record_verdicts
from curation.snapshots import approve, create_snapshot, export_snapshot
from curation.store import Store

REVIEWERS = ("reviewer-a@example.com", "reviewer-b@example.com")


def _new_store_id(store: Store) -> None:
    with store.writer() as con:
        con.execute("UPDATE store_info SET store_id = CAST(uuid() AS VARCHAR)")


@pytest.fixture(params=["labelstudio", "argilla"])
def backend(request):  # noqa: ANN001, ANN201
    if request.param == "labelstudio":
        from curation.review.backends.labelstudio import LabelStudioBackend

        server = request.getfixturevalue("labelstudio")
        return LabelStudioBackend(url=server.url, token=server.token)
    from curation.review.backends.argilla import ArgillaBackend

    server = request.getfixturevalue("argilla")
    return ArgillaBackend(url=server.url, api_key=server.api_key)


def _judgements(items: list, bad: dict, reviewer: int) -> dict[str, Judgement]:
    """Reviewer 0 judges from the planted truth; reviewer 1 too, but accepts every 40th bad item (a disagreement)."""
    out = {}
    for k, it in enumerate(items):
        j = bad.get(it.sample_id) or Judgement("accept")
        if reviewer == 1 and j.verdict == "reject" and k % 40 == 0:
            j = Judgement("accept")
        out[it.item_id] = j
    return out


def test_every_backend_gives_the_results_of_the_same_verdicts_stored_directly(store, curated, backend, truth,
                                                                             tmp_path) -> None:
    _new_store_id(store)
    snap = create_snapshot(store)
    pushed = push_review(store, snap.snapshot_id, backend, seed=7, overlap=2, reviews=150)
    assert pushed["created"] == pushed["items"] == pushed["plan"]["items"] > 0
    again = push_review(store, snap.snapshot_id, backend, seed=7, overlap=2, reviews=150)
    assert again["created"] == 0 and again["already_there"] == pushed["items"]  # upsert by item id

    items = sample_items(store, snap.snapshot_id)
    bad = planted_problems(store, truth)
    key = snapshot_key(snap.snapshot_id, store_id=store.store_id)
    given = {}
    for r, email in enumerate(REVIEWERS):
        given[email] = _judgements(items, bad, r)
        assert backend.annotate(key, "sample", email, f"Reviewer {r}", given[email]) == len(items)
        assert backend.annotate(key, "sample", email, f"Reviewer {r}", given[email]) == 0  # answered once only
    pulled = pull_review(store, snap.snapshot_id, backend)
    assert pulled["new"] == 2 * len(items) and pull_review(store, snap.snapshot_id, backend)["new"] == 0
    with store.reader() as con:
        got = {(i, r): (v, list(c)) for i, r, v, c in con.execute(
            "SELECT item_id, reviewer, verdict, categories FROM reviews WHERE status = 'submitted'").fetchall()}
    assert got == {(i, email): (j.verdict, list(j.categories)) for email, js in given.items() for i, j in js.items()}

    # the same verdicts stored directly, in another copy of the same curated store
    shutil.copy(curated, tmp_path / "ref.duckdb")
    ref = Store(tmp_path / "ref.duckdb")
    _new_store_id(ref)
    ref_snap = create_snapshot(ref)
    start_review(ref, ref_snap.snapshot_id, seed=7, overlap=2, reviews=150)
    record_verdicts(ref, [{"item_id": i, "reviewer": email, "verdict": j.verdict, "categories": list(j.categories)}
                          for email, js in given.items() for i, j in js.items()], "sim")
    cert, ref_cert = pulled["certification"], snapshot_certification(ref, ref_snap.snapshot_id)
    assert cert == ref_cert and cert["counts"]["rejected"] > 0

    child, ref_child = apply_reviews(store, snap.snapshot_id), apply_reviews(ref, ref_snap.snapshot_id)
    assert (child.n_samples, child.content_hash) == (ref_child.n_samples, ref_child.content_hash)
    assert approve(store, child.snapshot_id).certification["verdict"] == "certified"
    out = export_snapshot(store, child.snapshot_id, tmp_path / "export", hf=False)
    manifest = json.loads((out.path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["reviewers"] == [{"reviewer": e, "reviews": len(items), "scripted": False} for e in REVIEWERS]
