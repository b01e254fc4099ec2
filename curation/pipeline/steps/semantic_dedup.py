"""Semantic dedup step (see :mod:`curation.dedup.semantic`): samples whose embeddings are closer than a
cosine threshold form clusters; each keeps its best sample (``quality_score``, then the earliest).
``reference_batches`` (see :class:`curation.pipeline.base.ReferenceParams`, the same in every dedup step):
samples of these batches are never dropped and are kept in preference; new samples in their cluster are
dropped, naming the reference sample.

Embeddings are cached in the store's ``embeddings`` table, keyed by the content hash of the current text
and the model (and what is compared), so a re-run, or a run with another threshold, encodes nothing
again. The executor hands the step the cached vectors (``cached_vector``) and stores the new ones
(``new_vector``); the step never sees the store.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import ConfigDict, Field

from curation.dedup.minhash import components
from curation.dedup.semantic import embedding_dim, encode, model_key, neighbour_pairs
from curation.duck import query_arrow, scratch
from curation.pipeline.base import (
    DECISION_SCHEMA,
    SIGNAL_SCHEMA,
    GlobalStep,
    ReferenceParams,
    StepOutput,
    reference_mask,
)
from curation.pipeline.steps.near_dedup import compared_text_sql


class SemanticDedupParams(ReferenceParams):
    """Semantic dedup parameters."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(default=None, description="sentence-transformers model path or id (default all-MiniLM-L6-v2).")
    threshold: float = Field(default=0.95, gt=0, le=1, description="Cosine similarity from which samples are duplicates.")
    method: Literal["auto", "exact", "hnsw", "kmeans"] = Field(
        default="auto", description="Neighbour search: exact (small sets), hnsw (default above 20,000), kmeans (SemDeDup).")
    k: int = Field(default=16, ge=1, le=256, description="Neighbours searched per sample (hnsw).")
    batch_size: int = Field(default=64, ge=1, description="Encoding batch size.")
    compare: Literal["sample", "instruction", "output"] = Field(default="sample", description="What is embedded.")
    include_reasoning: bool = Field(default=False, description="Embed reasoning traces too.")
    score_signal: str = Field(default="quality_score", description="Signal that ranks copies (higher is kept).")


class SemanticDedupStep(GlobalStep):
    """Embedding neighbours above a cosine threshold; keep the best of each cluster (a reference sample first)."""

    type_name = "semantic_dedup"
    Params = SemanticDedupParams
    reads_signals = ("quality_score",)

    def __init__(self, name: str | None = None, params: dict | None = None) -> None:
        super().__init__(name, params)
        p = self.params
        suffix = p.compare + ("+reasoning" if p.include_reasoning else "")
        self.embedding_model = f"{model_key(p.model)}#{suffix}"
        self._text = compared_text_sql(p.compare, p.include_reasoning)
        try:
            import faiss  # noqa: F401
            import sentence_transformers  # noqa: F401
        except ImportError as e:
            raise ValueError(f"step {self.name!r} needs the embed extra: pip install 'llm-curate[embed]' ({e})") from e

    def signatures(self, batch: pa.Table) -> pa.Table:
        """Stage 1: the vector of every sample, from the cache or encoded now (``new_vector``)."""
        con = scratch()
        try:
            con.register("b", batch.select(["shape", "system", "instruction", "input", "output", "reasoning", "messages"]))
            texts = query_arrow(con, f"SELECT {self._text} AS t FROM b").column("t").to_pylist()
        finally:
            con.close()
        n = batch.num_rows
        cached = batch.column("cached_vector").combine_chunks() if "cached_vector" in batch.column_names \
            else pa.nulls(n, pa.list_(pa.float32()))
        missing = np.flatnonzero(pc.is_null(cached).to_numpy(zero_copy_only=False))
        dim = embedding_dim(self.params.model)
        vectors = np.zeros((n, dim), dtype=np.float32)
        have = np.flatnonzero(pc.is_valid(cached).to_numpy(zero_copy_only=False))
        if len(have):
            vectors[have] = np.asarray(cached.filter(pc.is_valid(cached)).flatten(), dtype=np.float32).reshape(len(have), dim)
        if len(missing):
            vectors[missing] = encode([texts[i] or "" for i in missing], self.params.model, self.params.batch_size)
        flat = pa.array(vectors.reshape(-1), pa.float32())
        offsets = pa.array(np.arange(0, n * dim + 1, dim, dtype=np.int32))
        vec = pa.ListArray.from_arrays(offsets, flat)
        new_mask = np.zeros(n, dtype=bool)
        new_mask[missing] = True
        new_vec = pc.if_else(pa.array(new_mask), vec, pa.nulls(n, vec.type))
        score_col = self.params.score_signal
        score = batch.column(score_col) if score_col in batch.column_names else pa.nulls(n, pa.float64())
        return pa.table({"sample_id": batch.column("sample_id"), "batch_id": batch.column("batch_id"),
                         "row_number": batch.column("row_number"), "score": score.cast(pa.float64()),
                         "content_hash": batch.column("content_hash") if "content_hash" in batch.column_names
                         else pa.nulls(n, pa.string()),
                         "vector": vec, "new_vector": new_vec})

    def decide(self, signatures: pa.Table) -> StepOutput:
        """Stage 2: neighbour pairs above the threshold, clusters, the best sample of each kept."""
        n = signatures.num_rows
        vec = signatures.column("vector").combine_chunks()
        dim = len(vec[0]) if n else 0
        x = np.asarray(vec.flatten(), dtype=np.float32).reshape(n, dim) if n else np.zeros((0, 0), np.float32)
        i, j, sims = neighbour_pairs(x, self.params.threshold, self.params.method, self.params.k)
        counters: Counter[str] = Counter(pairs=len(i))
        members, cluster = components(n, i, j)
        if not len(members):
            return StepOutput(counters=counters)
        score = np.nan_to_num(signatures.column("score").to_numpy(zero_copy_only=False).astype(float), nan=-1e308)
        is_ref = reference_mask(signatures.column("batch_id"), self.params.reference_batches).to_numpy(zero_copy_only=False)
        # the keeper of a cluster: a reference sample, then the highest score, then the earliest
        order_key = np.lexsort((signatures.column("row_number").to_numpy(), signatures.column("batch_id").to_numpy(), -score,
                                ~is_ref))
        rank = np.empty(n, dtype=np.int64)
        rank[order_key] = np.arange(n)
        keeper: dict[int, int] = {}
        for m, c in zip(members.tolist(), cluster.tolist()):
            if c not in keeper or rank[m] < rank[keeper[c]]:
                keeper[c] = m
        size = Counter(cluster.tolist())
        ids = signatures.column("sample_id").to_pylist()
        d_ids, d_reasons, d_refs, d_scores = [], [], [], []
        for m, c in zip(members.tolist(), cluster.tolist()):
            k = keeper[c]
            if m == k or is_ref[m]:  # a reference sample is never dropped
                continue
            cos = float(x[m] @ x[k])
            d_ids.append(ids[m])
            d_refs.append(ids[k])
            d_scores.append(round(cos, 4))
            what = "reference sample" if is_ref[k] else "sample"
            d_reasons.append(f"semantic duplicate of {what} {ids[k]} (cosine {cos:.3f}; cluster of {size[c]}, one kept)")
        counters.update(clusters=len(keeper), in_clusters=len(members), dropped=len(d_ids))
        decisions = pa.table([pa.array(d_ids, pa.string()), pa.array(["drop"] * len(d_ids), pa.string()),
                              pa.array(d_reasons, pa.string()), pa.array(d_refs, pa.string()),
                              pa.array(d_scores, pa.float64())], schema=DECISION_SCHEMA)
        signals = pa.table([pa.array([ids[m] for m in members.tolist()], pa.string()),
                            pa.array(["semantic_cluster"] * len(members), pa.string()),
                            pa.array([float(size[c]) for c in cluster.tolist()], pa.float64()),
                            pa.array([ids[keeper[c]] for c in cluster.tolist()], pa.string())], schema=SIGNAL_SCHEMA)
        return StepOutput(decisions=decisions, signals=signals, counters=counters)
