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
from tests.curation.review.conftest import eval_round

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


def test_argilla_items_carry_the_stored_embedding_and_find_similar_samples(argilla, tmp_path) -> None:
    """A store whose semantic dedup step cached embeddings: each pushed record carries its text's vector (the
    real all-MiniLM-L6-v2's, as stored), and Argilla's "find similar" ranks records as the vectors' cosine does."""
    import argilla as rg
    import numpy as np

    from curation.ingest import ingest_paths
    from curation.pipeline.executor import run_pipeline
    from curation.review.backends.argilla import VECTOR, ArgillaBackend, dataset_name
    from schemas.pipeline import PipelineConfig, StepConfig
    from tests.conftest import SAMPLE_DIR

    store = Store(tmp_path / "curate.duckdb")
    ingest_paths(store, [str(SAMPLE_DIR / "dialogues_sharegpt.jsonl")])
    run_pipeline(store, PipelineConfig(steps=[StepConfig(type="clean"), StepConfig(type="semantic_dedup")]))
    snap = create_snapshot(store)
    be = ArgillaBackend(url=argilla.url, api_key=argilla.api_key)
    pushed = push_review(store, snap.snapshot_id, be, seed=3, overlap=1, reviews=60)
    items = {it.item_id: it for it in sample_items(store, snap.snapshot_id)}
    assert pushed["created"] == len(items) >= 40
    assert all(it.embedding is not None and len(it.embedding) == 384 for it in items.values())

    ds = be.client.datasets(name=dataset_name(snapshot_key(snap.snapshot_id, store_id=store.store_id)),
                            workspace=be.workspace)
    field = ds.settings.vectors[VECTOR]
    assert field.dimensions == 384 and "all-MiniLM-L6-v2" in field.title
    got = {str(r.id): r.vectors[VECTOR] for r in ds.records(with_vectors=True, batch_size=500)}
    assert got.keys() == items.keys()
    assert all(np.allclose(got[i], items[i].embedding, atol=1e-6) for i in got)

    ids = sorted(items)
    x = np.array([items[i].embedding for i in ids], dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    query = ids[0]
    cosine = x @ x[0]
    want = [ids[j] for j in np.argsort(-cosine)[1:6]]
    similar = ds.records(query=rg.Query(similar=rg.Similar(name=VECTOR, value=got[query])), limit=6)
    found = [(str(r.id), score) for r, score in similar if str(r.id) != query][:5]  # (record, score) pairs
    assert [i for i, _ in found] == want
    # the score as Elasticsearch gives it for cosine similarity: (1 + cosine) / 2
    assert np.allclose([s for _, s in found], [(1 + cosine[ids.index(i)]) / 2 for i in want], atol=1e-3)


def test_the_evaluation_s_human_round_in_argilla(store, argilla, runner, tmp_path, monkeypatch) -> None:
    """curate eval's generations pushed to Argilla as rating records (factual, logic, style: rating questions)
    and pairs to compare (models hidden), rated through Argilla's API by two reviewers, and summarised by
    `curate eval-report --backend argilla` per model beside the automatic scores."""
    import argilla as rg

    from curation.cli.app import app
    from curation.review.backends import round_key
    from curation.review.backends.argilla import ArgillaBackend
    from training.evaluate import push_human_round

    _new_store_id(store)
    monkeypatch.setenv("CURATE_ARGILLA_API_KEY", argilla.api_key)
    results, gens = eval_round(tmp_path, 4)
    pushed = push_human_round(store, "round-a", gens, backend="argilla", url=argilla.url, results=results)
    assert (pushed.ratings.created, pushed.preference.created) == (8, 4)
    assert push_human_round(store, "round-a", gens, backend="argilla", url=argilla.url).created == 0

    be = ArgillaBackend(url=argilla.url, api_key=argilla.api_key)
    ds = be.dataset(round_key("round-a", store_id=store.store_id), "answer", create=False)
    assert {q.name: type(q).__name__ for q in ds.settings.questions} == {
        "factual": "RatingQuestion", "logic": "RatingQuestion", "style": "RatingQuestion", "comment": "TextQuestion"}
    pds = be.dataset(round_key("round-a preference", store_id=store.store_id), "answer", create=False)
    assert [q.name for q in pds.settings.questions][0] == "preferred"
    for r, email in enumerate(("rater-a@example.com", "rater-b@example.com")):
        uid = be.user_id(email, f"Rater {r}")
        records = list(ds.records(batch_size=100))
        for record in records:
            good = str(record.id).endswith(":lora-v1")
            for q in ("factual", "logic", "style"):
                record.responses.add(rg.Response(q, (5 - r) if good else 2, user_id=uid, status="submitted"))
        ds.records.log(records)
        precords = list(pds.records(batch_size=100))
        for record in precords:
            lora_first = "lora-v1 answer" in record.fields["answer"].split("----------")[0]
            choice = "Equally good" if ":p3:" in str(record.id) else ("Answer A" if lora_first else "Answer B")
            record.responses.add(rg.Response("preferred", choice, user_id=uid, status="submitted"))
        pds.records.log(precords)

    res = runner.invoke(app, ["--db", str(store.path), "eval-report", "round-a", "--backend", "argilla",
                              "--url", argilla.url])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout[res.stdout.index("{"):])
    assert rep["pulled"] == 16 and rep["new"] == 16, rep
    assert rep["models"]["lora-v1"]["ratings"]["factual"] == {"mean": 4.5, "n": 8}, rep
    assert rep["models"]["base"]["ratings"]["style"] == {"mean": 2.0, "n": 8} and rep["models"]["base"]["rated"] == 4
    assert rep["models"]["lora-v1"]["automatic"]["bleu4"] == 9.0
    pref = rep["preference"]["base vs lora-v1"]
    assert (pref["lora-v1"], pref["base"], pref["equally good"], pref["n"]) == (6, 0, 2, 8), pref
    assert pref["sign_test_p"] == pytest.approx(2 / 64)  # 6 of 6 decided for one side


def test_argilla_full_text_search_finds_exactly_the_records_holding_every_word(argilla) -> None:
    """The embedded engine's full-text search through the SDK: every word a case-insensitive substring of some
    field (FTS5 trigrams; words under three characters, a Chinese word often is, checked apart)."""
    import uuid

    import argilla as rg

    from curation.review.backends.argilla import ArgillaBackend

    be = ArgillaBackend(url=argilla.url, api_key=argilla.api_key)
    ws = be._workspace()
    ds = rg.Dataset(name=f"fts-{uuid.uuid4().hex[:8]}", workspace=ws, client=be.client, settings=rg.Settings(
        fields=[rg.TextField(name="q"), rg.TextField(name="a")],
        questions=[rg.LabelQuestion(name="verdict", labels=["accept", "reject"])])).create()
    texts = [("How does a river form?", "Water does it."), ("Name three rivers.", "Nile, Amazon, Yangtze."),
             ("北京在哪里？", "北京在中国北部。"), ("What does DOES mean?", "A verb."), ("Plain", "nothing here")]
    ds.records.log([rg.Record(id=f"r{i}", fields={"q": q, "a": a}) for i, (q, a) in enumerate(texts)])

    def found(query: str) -> set[str]:
        return {str(r.id) for r in ds.records(query=rg.Query(query=query))}

    def want(*words: str) -> set[str]:
        return {f"r{i}" for i, (q, a) in enumerate(texts)
                if all(w.lower() in q.lower() or w.lower() in a.lower() for w in words)}

    assert found("does") == want("does") == {"r0", "r3"}
    assert found("river") == want("river") == {"r0", "r1"}
    assert found("does river") == want("does", "river") == {"r0"}
    assert found("北京") == want("北京") == {"r2"}
    assert found("zebra") == set()
