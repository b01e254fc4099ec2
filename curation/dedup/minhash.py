"""MinHash LSH near-duplicate detection, vectorised over whole record batches.

1. **Shingles** (DuckDB, one query per batch): the compared text is lower-cased and tokenised by script,
   per sample: word n-grams for space-delimited text, character n-grams for Chinese / Japanese / Korean
   (a word tokenizer finds almost none of their near-copies). Each shingle is hashed to 64 bits.
2. **Signatures** (numpy): ``num_perm`` multiply-shift hash functions ``(a*x + b) >> 32`` applied to all
   shingle hashes of a chunk at once, minimum per sample with ``np.minimum.reduceat``.
3. **Bands**: ``b`` bands of ``r`` rows, chosen from the threshold by minimising the false positive +
   false negative areas (as datasketch does); each band is folded to one 64-bit key.
4. **Candidates** (DuckDB): samples sharing a band key; each bucket links its members to the bucket's
   first member (a star, not all pairs, so a bucket of k costs k-1 pairs).
5. **Verification**: the true Jaccard similarity of the candidates' shingle sets; pairs under the
   threshold are discarded. **Clusters**: connected components (scipy) of the verified pairs.

Per sample only the band keys and the distinct shingle hashes are kept (about 0.5 KB for a typical
instruction sample), not the signature.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curation.duck import query_arrow, scratch
from curation.duck import sql_literal as _q

CJK = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}"
_MASK32 = np.uint64(0xFFFFFFFF)


@dataclass(frozen=True)
class MinHashParams:
    """Shingling and LSH settings shared by signatures and decisions."""

    threshold: float = 0.6
    num_perm: int = 128
    word_ngram: int = 3
    char_ngram: int = 3
    cjk_share: float = 0.3
    seed: int = 1
    # Candidates are verified by their true Jaccard, so a false positive costs only a check while a false
    # negative is a duplicate missed: the bands favour recall (0.2 / 0.8; datasketch's default is 0.5 / 0.5).
    fp_weight: float = 0.2
    fn_weight: float = 0.8

    def bands(self) -> tuple[int, int]:
        """(bands, rows) for the threshold."""
        return optimal_bands(self.threshold, self.num_perm, self.fp_weight, self.fn_weight)


@functools.lru_cache(maxsize=64)
def optimal_bands(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """The (b, r) with b*r <= num_perm minimising the weighted false positive and false negative areas.

    The same criterion as datasketch's ``MinHashLSH``; the integrals of the S-curve
    ``1 - (1 - s^r)^b`` are taken numerically on a fine grid.
    """
    best, best_err = (1, num_perm), float("inf")
    lo = np.linspace(0.0, threshold, 513)
    hi = np.linspace(threshold, 1.0, 513)
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = np.trapezoid(1 - (1 - lo**r) ** b, lo)
            fn = np.trapezoid((1 - hi**r) ** b, hi)
            err = fp * fp_weight + fn * fn_weight
            if err < best_err:
                best, best_err = (b, r), err
    return best


def ngrams_query(source: str, text_expr: str, word_n: int, char_n: int, cjk_share: float, *,
                 empty_key: str | None = None, short_whole: bool = True, hashed: bool = True, alias: str = "grams") -> str:
    """SQL: every row of ``source`` (a table or subquery) plus ``alias``, the distinct n-grams of ``text_expr``.

    The text is lower-cased and tokenised by script: word n-grams over ``[\\p{L}\\p{N}_]+`` tokens;
    when CJK letters are at least ``cjk_share`` of the letters, every CJK character is a token (and n is
    ``char_n``). ``hashed``: 64-bit hashes, else the n-grams as text (tokens joined by a space).
    ``short_whole``: a text with fewer than n tokens gives one n-gram of all of them (else none).
    ``empty_key``: a text without tokens gives one hash of this expression (unique per row), so that
    empty texts are never similar to each other. Tokens are materialised in an inner projection: an
    n-gram lambda over a token *expression* would re-run the regex for every n-gram.
    """
    t = "lower(__text)"
    not_cjk = _q("[^" + CJK + "]")
    not_letter = _q(r"[^\p{L}]")
    cjk_token = _q("[" + CJK + r"]|[\p{L}\p{N}_]+")
    word_token = _q(r"[\p{L}\p{N}_]+")
    is_cjk = (f"length(regexp_replace({t}, {not_cjk}, '', 'g')) >= "
              f"{cjk_share} * greatest(length(regexp_replace({t}, {not_letter}, '', 'g')), 1)")
    wrap = (lambda x: f"hash({x})") if hashed else (lambda x: x)
    none = "[]::UBIGINT[]" if hashed else "[]::VARCHAR[]"
    empty = f"[hash(chr(0) || {empty_key})]" if empty_key is not None else none
    whole = f"[{wrap('array_to_string(__tok, chr(32))')}]" if short_whole else none

    def grams(n: int) -> str:
        each = wrap("concat_ws(chr(32), " + ", ".join(f"__tok[k + {j}]" for j in range(n)) + ")")
        return f"list_transform(range(1, len(__tok) - {n - 2}), lambda k: {each})"

    n_of = f"CASE WHEN __cjk THEN {char_n} ELSE {word_n} END"
    return f"""SELECT * EXCLUDE (__text, __tok, __cjk),
           list_distinct(CASE WHEN len(__tok) = 0 THEN {empty} WHEN len(__tok) < {n_of} THEN {whole}
                              WHEN __cjk THEN {grams(char_n)} ELSE {grams(word_n)} END) AS {alias}
    FROM (
        SELECT *, CASE WHEN __cjk THEN regexp_extract_all({t}, {cjk_token}) ELSE regexp_extract_all({t}, {word_token}) END AS __tok
        FROM (SELECT *, {is_cjk} AS __cjk FROM (SELECT *, {text_expr} AS __text FROM {source}))
    )"""


def shingles_query(source: str, text_expr: str, p: MinHashParams, key_expr: str) -> str:
    """SQL: the rows of ``source`` plus ``shingles``, the distinct 64-bit shingle hashes of ``text_expr``.

    A text without tokens gets one shingle made from ``key_expr`` (unique per row), so that empty
    texts are never near duplicates of each other (exact dedup sees those).
    """
    return ngrams_query(source, text_expr, p.word_ngram, p.char_ngram, p.cjk_share, empty_key=key_expr, alias="shingles")


def _hash_params(p: MinHashParams) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(p.seed)
    a = rng.integers(1, 2**63, size=p.num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)  # odd
    b = rng.integers(0, 2**63, size=p.num_perm, dtype=np.uint64)
    return a, b


def signatures(shingles: pa.ListArray, p: MinHashParams, chunk_values: int = 1 << 20, perm_chunk: int = 32) -> np.ndarray:
    """MinHash signatures, shape (len(shingles), num_perm), uint32. Every list must be non-empty."""
    n = len(shingles)
    sig = np.empty((n, p.num_perm), dtype=np.uint32)
    if n == 0:
        return sig
    offsets = np.asarray(shingles.offsets, dtype=np.int64)
    offsets = offsets - offsets[0]
    values = np.asarray(shingles.flatten(), dtype=np.uint64)
    a, b = _hash_params(p)
    start = 0
    with np.errstate(over="ignore"):
        while start < n:
            # as many samples as fit in about chunk_values shingles (at least one)
            end = int(np.searchsorted(offsets, offsets[start] + chunk_values, side="right")) - 1
            end = min(max(end, start + 1), n)
            seg = offsets[start:end] - offsets[start]
            vals = values[offsets[start]:offsets[end]]
            for c in range(0, p.num_perm, perm_chunk):
                hv = (a[c:c + perm_chunk, None] * vals[None, :] + b[c:c + perm_chunk, None]) >> np.uint64(32)
                sig[start:end, c:c + perm_chunk] = np.minimum.reduceat(hv, seg, axis=1).T.astype(np.uint32)
            start = end
    return sig


def band_keys(sig: np.ndarray, p: MinHashParams) -> np.ndarray:
    """One 64-bit key per band, shape (n, bands): the band's rows folded by a random linear hash."""
    bands, rows = p.bands()
    rng = np.random.default_rng(p.seed + 1)
    mult = rng.integers(1, 2**63, size=rows, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    keys = np.empty((sig.shape[0], bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i in range(bands):
            block = sig[:, i * rows:(i + 1) * rows].astype(np.uint64)
            keys[:, i] = (block * mult[None, :]).sum(axis=1, dtype=np.uint64) + np.uint64(i)
    return keys


def signature_table(shingles: pa.ListArray, p: MinHashParams) -> tuple[pa.Array, pa.Array]:
    """(band keys, distinct shingle hashes) as Arrow list columns, one row per sample."""
    sig = signatures(shingles, p)
    keys = band_keys(sig, p)
    bands = keys.shape[1]
    offsets = pa.array(np.arange(0, keys.size + 1, bands, dtype=np.int32))
    band_col = pa.ListArray.from_arrays(offsets, pa.array(keys.reshape(-1), pa.uint64()))
    return band_col, shingles


def clusters(table: pa.Table, p: MinHashParams, con=None) -> pa.Table:  # noqa: ANN001
    """Verified near-duplicate clusters over ``table(idx, bands, shingles)``.

    Returns ``(idx, cluster)`` for every sample in a cluster of two or more, ``cluster`` being the
    smallest ``idx`` of the cluster, and the verified edges ``(a, b, jaccard)``.
    """
    own = con is None
    con = con or scratch()
    try:
        con.register("mh", table)
        edges = query_arrow(con, """
            WITH b AS (
                SELECT idx, unnest(bands) AS key, generate_subscripts(bands, 1) AS band FROM mh
            ), roots AS (
                SELECT band, key, min(idx) AS root FROM b GROUP BY band, key HAVING count(*) > 1
            ), pairs AS (
                SELECT DISTINCT r.root AS a, b.idx AS b FROM b JOIN roots r USING (band, key) WHERE b.idx <> r.root
            )
            SELECT pairs.a, pairs.b,
                   len(list_intersect(x.shingles, y.shingles)) / (len(x.shingles) + len(y.shingles)
                       - len(list_intersect(x.shingles, y.shingles)))::DOUBLE AS jaccard
            FROM pairs JOIN mh x ON x.idx = pairs.a JOIN mh y ON y.idx = pairs.b
            """)
        edges = edges.filter(pc.greater_equal(edges.column("jaccard"), p.threshold))
    finally:
        con.unregister("mh")
        if own:
            con.close()
    n = int(pc.max(table.column("idx")).as_py() or 0) + 1 if table.num_rows else 0
    idx, cluster = components(n, edges.column("a").to_numpy(), edges.column("b").to_numpy())
    return pa.table({"idx": pa.array(idx, pa.int64()), "cluster": pa.array(cluster, pa.int64())}), edges


def components(n: int, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of the graph with edges (a[k], b[k]) over nodes 0..n-1 (scipy).

    Returns (members, cluster) for the nodes that have an edge, ``cluster`` being the smallest member.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if len(a) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    members = np.unique(np.concatenate([a, b]))
    lab = labels[members]
    smallest = np.full(labels.max() + 1, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(smallest, lab, members)
    return members.astype(np.int64), smallest[lab]


def minhash_clusters(texts: list[str], threshold: float = 0.6, ngram: int | None = None, num_perm: int = 128,
                     char_ngram: int | None = None) -> list[int]:
    """One cluster id per text (equal ids = near duplicates; a text alone keeps its own index).

    ``ngram``: word n-gram size for space-delimited text; ``char_ngram``: character n-gram size for
    CJK text. The same code as the ``minhash_dedup`` step.
    """
    p = MinHashParams(threshold=threshold, num_perm=num_perm, word_ngram=ngram or MinHashParams.word_ngram,
                      char_ngram=char_ngram or MinHashParams.char_ngram)
    con = scratch()
    try:
        con.register("t", pa.table({"text": pa.array(texts, pa.string()), "i": pa.array(range(len(texts)), pa.int64())}))
        sql = shingles_query("t", "coalesce(text, '')", p, "i::VARCHAR")
        sh = query_arrow(con, f"SELECT shingles FROM ({sql}) ORDER BY i").column("shingles").combine_chunks()
        con.unregister("t")
        bands, sh = signature_table(sh, p)
        table = pa.table({"idx": pa.array(np.arange(len(texts)), pa.int64()), "bands": bands, "shingles": sh})
        found, _ = clusters(table, p, con)
    finally:
        con.close()
    out = list(range(len(texts)))
    for i, c in zip(found.column("idx").to_pylist(), found.column("cluster").to_pylist()):
        out[i] = c
    return out
