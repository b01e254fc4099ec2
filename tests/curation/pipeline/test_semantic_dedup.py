"""Semantic dedup with the real all-MiniLM-L6-v2: clusters, the kept sample, the embedding cache."""

from __future__ import annotations

import json

import numpy as np

from curation.dedup import semantic
from curation.dedup.semantic import neighbour_pairs, semantic_clusters
from curation.ingest import ingest_paths
from curation.pipeline.executor import run_pipeline
from curation.store import Store
from schemas.pipeline import PipelineConfig, StepConfig

TEXTS = ["A man is playing a guitar.", "A man plays the guitar.", "A woman is slicing an onion.",
         "The stock market fell sharply today.", "Stock prices fell sharply today."]


def test_paraphrases_cluster_and_other_sentences_do_not() -> None:
    ids = semantic_clusters(TEXTS, threshold=0.85)
    assert ids[0] == ids[1] and len({ids[0], ids[2], ids[3]}) == 3


def test_ann_methods_find_the_exact_pairs() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(300, 32)).astype(np.float32)
    x = np.concatenate([base, base[:100] + rng.normal(scale=0.05, size=(100, 32)).astype(np.float32)])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    exact = set(zip(*neighbour_pairs(x, 0.95, "exact")[:2]))
    assert len(exact) >= 100
    for method in ("hnsw", "kmeans"):
        found = set(zip(*neighbour_pairs(x, 0.95, method)[:2]))
        assert len(found & exact) >= 0.99 * len(exact) and found <= exact, method


def test_step_keeps_the_earliest_and_reuses_cached_embeddings(tmp_path) -> None:
    store = Store(tmp_path / "curate.duckdb")
    src = tmp_path / "s.jsonl"
    rows = [{"id": f"r{i}", "instruction": "Describe the scene.", "output": t} for i, t in enumerate(TEXTS)]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    ingest_paths(store, [str(src)])
    cfg = PipelineConfig(steps=[StepConfig(type="semantic_dedup", params={"threshold": 0.9})])
    before = semantic.ENCODED["texts"]
    run_pipeline(store, cfg)
    assert semantic.ENCODED["texts"] - before == 5
    with store.reader() as con:
        got = con.execute("""SELECT s.external_id, r.external_id, d.reason FROM decisions d JOIN samples s USING (sample_id)
                             JOIN samples r ON r.sample_id = d.ref_sample_id WHERE d.step = 'semantic_dedup'""").fetchall()
        n_cached = con.execute("SELECT count(*) FROM embeddings").fetchall()[0][0]
    # the two paraphrase pairs; the earlier of each is kept and named
    assert sorted((a, b) for a, b, _ in got) == [("r1", "r0"), ("r4", "r3")] and all("cosine" in r for *_, r in got)
    assert n_cached == 5
    # another threshold: a new run, nothing encoded again
    before = semantic.ENCODED["texts"]
    run_pipeline(store, PipelineConfig(steps=[StepConfig(type="semantic_dedup", params={"threshold": 0.5})]))
    assert semantic.ENCODED["texts"] == before
    with store.reader() as con:
        assert con.execute("SELECT count(*) FROM embeddings").fetchall()[0][0] == 5
        dropped = {r[0] for r in con.execute("SELECT s.external_id FROM dropped d JOIN samples s USING (sample_id)").fetchall()}
    assert {"r1", "r4"} <= dropped
