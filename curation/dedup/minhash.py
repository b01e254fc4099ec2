"""MinHash LSH near-duplicate detection, vectorised over whole record batches.

1. **Shingles**: the compared text is lower-cased (DuckDB) and tokenised by script, per sample: word
   n-grams for space-delimited text, character n-grams for Chinese / Japanese / Korean (a word tokenizer
   finds almost none of their near-copies). Each shingle is hashed to 64 bits. The rules are the SQL of
   :func:`shingles_query`; :func:`curation.dedup.shingles.shingle_lists` gives the same lists from a
   compiled loop, and the steps use it.
2. **Signatures** (numpy): ``num_perm`` multiply-shift hash functions ``(a*x + b) >> 32`` applied to all
   shingle hashes of a chunk at once (chunks small enough to stay in cache), minimum per sample with
   ``np.minimum.reduceat``.
3. **Bands**: ``b`` bands of ``r`` rows, chosen from the threshold by minimising the false positive +
   false negative areas (as datasketch does); each band is folded to one 64-bit key.
4. **Candidates** (numpy, per band: a sort by key): samples sharing a band key; a bucket of up to 50
   gives all its pairs, a larger one links its members to its first member (k - 1 pairs, not k^2 / 2).
5. **Verification**: a candidate whose signature estimate is far under the threshold (a 1-byte-per-row
   sketch of the signature; ``prefilter_floor``) is discarded; the others by the true Jaccard similarity of
   their shingle sets (numpy, :func:`jaccard`). **Clusters**: connected components (scipy) of the verified
   pairs.

Per sample only the band keys, the sketch and the shingle hashes are kept (about 1 KB for a typical
instruction sample), not the signature.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numba
import numpy as np
import pyarrow as pa

from curation.dedup.shingles import shingle_lists
from curation.duck import query_arrow, scratch
from curation.duck import sql_literal as _q
from curation.textscan import CJK
from curation.threads import ranges_in_threads

SMALL_BUCKET = (
    50  # buckets up to this size give all their pairs as candidates; larger ones a star
)
PREFILTER_SIGMAS = 5.0  # a candidate is checked exactly unless its estimate is this many deviations under t


@dataclass(frozen=True)
class MinHashParams:
    """Shingling and LSH settings shared by signatures and decisions."""

    threshold: float = 0.6
    num_perm: int = 128
    word_ngram: int = 3
    # 3, like words: a Chinese text with a share of its characters edited keeps about the Jaccard similarity to its
    # source that an English one with that share of its words edited does, short or long (the near-dedup benchmark's
    # short-text section); 2 makes Chinese far more lenient than English, and a size switched by length would make
    # a copy one character across the switch share nothing
    char_ngram: int = 3
    cjk_share: float = 0.3
    seed: int = 1
    # Candidates are verified by their true Jaccard, so a false positive costs only a check while a false
    # negative is a duplicate missed: the bands favour recall (0.2 / 0.8; datasketch's default is 0.5 / 0.5).
    fp_weight: float = 0.2
    fn_weight: float = 0.8

    def bands(self) -> tuple[int, int]:
        """(bands, rows) for the threshold."""
        return optimal_bands(
            self.threshold, self.num_perm, self.fp_weight, self.fn_weight
        )

    def prefilter_floor(self) -> float:
        """Candidates whose signature estimate is under this are not checked exactly (they cannot pass).

        The estimate of a pair at the threshold ``t`` has a standard deviation of ``sqrt(t (1 - t) / num_perm)``;
        the floor is ``PREFILTER_SIGMAS`` of them under ``t`` (0.38 at t = 0.6 with 128 permutations), so a
        pair at the threshold is discarded unchecked with a probability under 1e-6.
        """
        t = self.threshold
        return t - PREFILTER_SIGMAS * math.sqrt(t * (1 - t) / self.num_perm)


@functools.lru_cache(maxsize=64)
def optimal_bands(
    threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5
) -> tuple[int, int]:
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


def ngrams_query(
    source: str,
    text_expr: str,
    word_n: int,
    char_n: int,
    cjk_share: float,
    *,
    empty_key: str | None = None,
    short_whole: bool = True,
    hashed: bool = True,
    alias: str = "grams",
    distinct: bool = True,
) -> str:
    """SQL: every row of ``source`` (a table or subquery) plus ``alias``, the n-grams of ``text_expr``.

    The text is lower-cased and tokenised by script: word n-grams over ``[\\p{L}\\p{N}_]+`` tokens;
    when CJK letters are at least ``cjk_share`` of the letters, every CJK character is a token (and n is
    ``char_n``). ``hashed``: 64-bit hashes, else the n-grams as text (tokens joined by a space).
    ``short_whole``: a text with fewer than n tokens gives one n-gram of all of them (else none).
    ``empty_key``: a text without tokens gives one hash of this expression (unique per row), so that
    empty texts are never similar to each other. ``distinct``: each n-gram once (else once per occurrence,
    cheaper when the caller deduplicates anyway). Tokens are materialised in an inner projection: an
    n-gram lambda over a token *expression* would re-run the regex for every n-gram.
    """
    # Letters are counted by deleting *runs* of the other characters (far fewer replacements than one
    # per character, same counts); the letters of a text without any CJK character are not counted at all
    # (it is CJK only when cjk_share is 0).
    not_cjk = _q("[^" + CJK + "]+")
    not_letter = _q(r"[^\p{L}]+")
    cjk_token = _q("[" + CJK + r"]|[\p{L}\p{N}_]+")
    word_token = _q(r"[\p{L}\p{N}_]+")
    is_cjk = (
        f"CASE WHEN __ncjk = 0 THEN {cjk_share} <= 0 ELSE __ncjk >= "
        f"{cjk_share} * greatest(length(regexp_replace(__text, {not_letter}, '', 'g')), 1) END"
    )
    wrap = (lambda x: f"hash({x})") if hashed else (lambda x: x)
    none = "[]::UBIGINT[]" if hashed else "[]::VARCHAR[]"
    empty = f"[hash(chr(0) || {empty_key})]" if empty_key is not None else none
    whole = f"[{wrap('array_to_string(__tok, chr(32))')}]" if short_whole else none

    def grams(n: int) -> str:
        each = wrap(
            "concat_ws(chr(32), " + ", ".join(f"__tok[k + {j}]" for j in range(n)) + ")"
        )
        return f"list_transform(range(1, len(__tok) - {n - 2}), lambda k: {each})"

    n_of = f"CASE WHEN __cjk THEN {char_n} ELSE {word_n} END"
    listed = (
        f"CASE WHEN len(__tok) = 0 THEN {empty} WHEN len(__tok) < {n_of} THEN {whole} "
        f"WHEN __cjk THEN {grams(char_n)} ELSE {grams(word_n)} END"
    )
    return f"""SELECT * EXCLUDE (__text, __tok, __cjk), {f"list_distinct({listed})" if distinct else listed} AS {alias}
    FROM (
        SELECT *, CASE WHEN __cjk THEN regexp_extract_all(__text, {cjk_token})
                       ELSE regexp_extract_all(__text, {word_token}) END AS __tok
        FROM (
            SELECT * EXCLUDE (__ncjk), {is_cjk} AS __cjk
            FROM (SELECT *, length(regexp_replace(__text, {not_cjk}, '', 'g')) AS __ncjk
                  FROM (SELECT *, lower({text_expr}) AS __text FROM {source}))
        )
    )"""


def shingles_query(source: str, text_expr: str, p: MinHashParams, key_expr: str) -> str:
    """SQL: the rows of ``source`` plus ``shingles``, the 64-bit shingle hashes of ``text_expr``.

    A shingle occurring twice in a text is listed twice (signatures do not care, :func:`jaccard`
    deduplicates; DuckDB's ``list_distinct`` cost more than the rest of the shingling). A text without
    tokens gets one shingle made from ``key_expr`` (unique per row), so that empty texts are never near
    duplicates of each other (exact dedup sees those).
    """
    return ngrams_query(
        source,
        text_expr,
        p.word_ngram,
        p.char_ngram,
        p.cjk_share,
        empty_key=key_expr,
        alias="shingles",
        distinct=False,
    )


def _hash_params(p: MinHashParams) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(p.seed)
    a = rng.integers(1, 2**63, size=p.num_perm, dtype=np.uint64) * np.uint64(
        2
    ) + np.uint64(1)  # odd
    b = rng.integers(0, 2**63, size=p.num_perm, dtype=np.uint64)
    return a, b


def _list_parts(lists: pa.ListArray) -> tuple[np.ndarray, np.ndarray]:
    """(offsets from 0, values) of a list array, sliced or not, as numpy (values without a copy)."""
    offsets = np.asarray(lists.offsets, dtype=np.int64)
    return offsets - offsets[0], np.asarray(lists.flatten(), dtype=np.uint64)


@numba.njit(nogil=True, cache=True)
def _min_hashes(offsets: np.ndarray, values: np.ndarray, a: np.ndarray, b: np.ndarray, out: np.ndarray,
                start: int, end: int) -> None:  # pragma: no cover - compiled (its Python is never run)
    """Rows ``start .. end - 1`` of ``out``: per row and hash function k, min over its shingles x of
    ``(a[k] * x + b[k]) mod 2**64 >> 32``.

    Eight shingles per pass over the hash functions, in signed 64-bit arithmetic (the same bits; the shifted
    value fits 32 bits, so the signed minimum is the unsigned one): the compiler then keeps eight independent
    products in flight per loaded ``a[k]``, ``b[k]`` and vectorises the minimum; 2.3x faster than one
    shingle at a time (16 M shingles of a 50k-row real page: 1.38 s -> 0.59 s on one thread), same values."""
    perms = a.shape[0]
    ai = a.view(np.int64)
    bi = b.view(np.int64)
    vi = values.view(np.int64)
    low = np.int64(0xFFFFFFFF)
    mins = np.empty(perms, np.int64)
    for i in range(start, end):
        mins[:] = low
        j, e = offsets[i], offsets[i + 1]
        while j + 8 <= e:
            x0, x1, x2, x3 = vi[j], vi[j + 1], vi[j + 2], vi[j + 3]
            x4, x5, x6, x7 = vi[j + 4], vi[j + 5], vi[j + 6], vi[j + 7]
            for k in range(perms):
                ak, bk = ai[k], bi[k]
                h0 = min(((ak * x0 + bk) >> 32) & low, ((ak * x1 + bk) >> 32) & low)
                h1 = min(((ak * x2 + bk) >> 32) & low, ((ak * x3 + bk) >> 32) & low)
                h2 = min(((ak * x4 + bk) >> 32) & low, ((ak * x5 + bk) >> 32) & low)
                h3 = min(((ak * x6 + bk) >> 32) & low, ((ak * x7 + bk) >> 32) & low)
                mins[k] = min(mins[k], min(min(h0, h1), min(h2, h3)))
            j += 8
        while j < e:
            x = vi[j]
            for k in range(perms):
                mins[k] = min(mins[k], ((ai[k] * x + bi[k]) >> 32) & low)
            j += 1
        for k in range(perms):
            out[i, k] = np.uint32(mins[k])


def signatures(shingles: pa.ListArray, p: MinHashParams, threads: int = 2) -> np.ndarray:
    """MinHash signatures, shape (len(shingles), num_perm), uint32. Every list must be non-empty.

    One compiled loop reads each row's shingles once, in ``threads`` threads over row ranges of about equal
    shingle counts. numba, not numpy: the compiled loop releases the GIL for its whole range, so both cores
    work (numpy's many small ufunc calls per block did not overlap): 20 M shingles of 34k real rows took
    3.2 s in numpy, 2.9 s in the first compiled loop on one thread and 1.7 s on two, with the same signatures
    (and the loop is 2.3x faster since, see :func:`_min_hashes`).
    """
    n = len(shingles)
    sig = np.empty((n, p.num_perm), dtype=np.uint32)
    if n == 0:
        return sig
    offsets, values = _list_parts(shingles)
    a, b = _hash_params(p)
    ranges_in_threads(lambda lo, hi: _min_hashes(offsets, values, a, b, sig, lo, hi), offsets[1:], threads)
    return sig


def band_keys(sig: np.ndarray, p: MinHashParams) -> np.ndarray:
    """One 64-bit key per band, shape (n, bands): the band's rows folded by a random linear hash."""
    bands, rows = p.bands()
    rng = np.random.default_rng(p.seed + 1)
    mult = rng.integers(1, 2**63, size=rows, dtype=np.uint64) * np.uint64(
        2
    ) + np.uint64(1)
    keys = np.empty((sig.shape[0], bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i in range(bands):
            block = sig[:, i * rows : (i + 1) * rows].astype(np.uint64)
            keys[:, i] = (block * mult[None, :]).sum(
                axis=1, dtype=np.uint64
            ) + np.uint64(i)
    return keys


def signature_table(shingles: pa.ListArray, p: MinHashParams, copy: bool = True) -> pa.Table:
    """``(bands, sketch, shingles)`` per sample: band keys (fixed-size list of uint64), the lowest byte of each
    signature value (fixed-size list of uint8, for :func:`estimate`) and the shingle hashes.

    All three are new arrays, so nothing of a page-sized query result stays alive: ``shingles`` is copied unless
    ``copy`` is False (lists made for this table, by :func:`curation.dedup.shingles.shingle_lists`).
    """
    sig = signatures(shingles, p)
    keys = band_keys(sig, p)
    sketch = sig.astype(np.uint8)  # the lowest byte
    del sig
    if copy:
        offsets, values = _list_parts(shingles)
        large = offsets[-1] >= 2**31
        shingles = (pa.LargeListArray if large else pa.ListArray).from_arrays(
            pa.array(offsets, pa.int64() if large else pa.int32()), pa.array(values.copy(), pa.uint64())
        )
    return pa.table(
        {
            "bands": pa.FixedSizeListArray.from_arrays(pa.array(keys.reshape(-1), pa.uint64()), keys.shape[1]),
            "sketch": pa.FixedSizeListArray.from_arrays(pa.array(sketch.reshape(-1), pa.uint8()), p.num_perm),
            "shingles": shingles,
        }
    )


def fixed_list(col: pa.ChunkedArray | pa.Array, width: int, dtype: type) -> np.ndarray:
    """A fixed-size list column as a (rows, width) numpy array (one copy)."""
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    parts = [
        np.asarray(c.flatten(), dtype=dtype).reshape(-1, width)
        for c in chunks
        if len(c)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, width), dtype=dtype)


def _row_bits(n: int) -> int:
    return max(int(n - 1).bit_length(), 1)


def candidate_pairs(keys: np.ndarray, small: int = SMALL_BUCKET) -> np.ndarray:
    """Pairs ``(a, b)``, ``a < b``, shape (k, 2), of rows that share a band key; ``keys`` has shape (rows, bands).

    Per band, rows are sorted by key and each run of equal keys is a bucket. A bucket of up to ``small``
    members gives all its pairs (a copy is linked to every copy, not only to one of them, which matters when
    that one fails verification); a larger bucket (a template shared by many) links its members to its first
    member only, so it costs k - 1 pairs, not k^2 / 2.

    The sort is of one uint64 per row, ``key`` with its lowest bits replaced by the row (a plain sort is
    twice as fast as an argsort, and the row comes with it): two keys that differ only in those bits (2^-40
    for a 16M-row corpus) merge two buckets, which costs extra candidates, never a missed one.
    """
    n, n_bands = keys.shape
    bits = np.uint64(_row_bits(n))
    row_mask = (np.uint64(1) << bits) - np.uint64(1)
    rows = np.arange(n, dtype=np.uint64)
    lo_parts: list[np.ndarray] = []
    hi_parts: list[np.ndarray] = []
    for i in range(n_bands):
        s = keys[:, i] & ~row_mask
        s |= rows
        s.sort()
        order = (s & row_mask).astype(
            np.int64
        )  # rows by key, the smallest row first in a bucket
        s >>= bits
        first = np.ones(n, dtype=bool)
        np.not_equal(s[1:], s[:-1], out=first[1:])
        del s
        starts = np.flatnonzero(first)
        sizes = np.diff(np.append(starts, n))
        if sizes.max(initial=0) < 2:
            continue
        big = sizes > small
        if big.any():
            bs, bz = starts[big], sizes[big]
            root = np.repeat(bs, bz)
            members = (
                root + np.arange(int(bz.sum())) - np.repeat(np.cumsum(bz) - bz, bz)
            )  # every position of the big buckets
            keep = members != root
            lo_parts.append(order[root[keep]])
            hi_parts.append(order[members[keep]])
        # all pairs of the small buckets, one bucket size at a time (the pair pattern of a size is fixed)
        for z in np.unique(sizes[(sizes >= 2) & ~big]):
            ii, jj = np.triu_indices(int(z), 1)
            st = starts[sizes == z][:, None]
            lo_parts.append(order[(st + ii).ravel()])
            hi_parts.append(order[(st + jj).ravel()])
    if not lo_parts:
        return np.zeros((0, 2), dtype=np.int64)
    code = np.concatenate(lo_parts) << np.int64(
        bits
    )  # lo < hi: order is increasing within a bucket
    del lo_parts
    code |= np.concatenate(hi_parts)
    del hi_parts
    code = np.unique(code)  # the same pair from several bands once
    return np.stack([code >> np.int64(bits), code & np.int64(row_mask)], axis=1)


def estimate(
    sketch: np.ndarray, a: np.ndarray, b: np.ndarray, chunk: int = 1 << 16
) -> np.ndarray:
    """Jaccard estimates of the pairs ``(a[k], b[k])`` from the 1-byte sketches (b-bit MinHash, b = 8).

    Two lowest bytes are equal when the signature values are (probability J) or by chance (1/256 of the
    rest): J = (matches - 1/256) / (1 - 1/256). In chunks of pairs, so the gathered sketches stay small.
    """
    out = np.empty(len(a), dtype=np.float64)
    for s in range(0, len(a), chunk):
        out[s : s + chunk] = np.count_nonzero(
            sketch[a[s : s + chunk]] == sketch[b[s : s + chunk]], axis=1
        )
    return (out / sketch.shape[1] - 1 / 256) / (1 - 1 / 256)


@numba.njit(nogil=True, cache=True)
def _sorted_sets(values: np.ndarray, begin: np.ndarray, base: int, low: np.uint64, out: np.ndarray,
                 start: np.ndarray, count: np.ndarray, size: np.ndarray, lo: int, hi: int) -> None:  # pragma: no cover
    """Rows of rank ``lo .. hi - 1`` (``count[k]`` hashes of ``values`` from ``begin[k - base]``): the row's hashes
    shifted right by ``low`` bits, sorted and without repeats, at ``out[start[k]:]``; their number in ``size[k]``."""
    for k in range(lo, hi):
        a, n = begin[k - base], count[k]
        s = start[k]
        if n == 0:
            size[k] = 0
            continue
        seg = out[s:s + n]
        for j in range(n):
            seg[j] = values[a + j] >> low
        seg.sort()
        m = 1
        for j in range(1, n):
            if seg[j] != seg[m - 1]:
                seg[m] = seg[j]
                m += 1
        size[k] = m


def _row_sets(shingles: pa.ChunkedArray | pa.Array, rows: np.ndarray, bits: int, threads: int = 2,
              spans: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The shingle sets of ``rows`` (sorted, distinct): ``(keys, start, size)``, the set of the row of rank ``k``
    in ``rows`` being ``keys[start[k]:start[k] + size[k]]``, each hash shifted right by ``bits``. ``spans``:
    ``(first, count)`` per row of ``shingles``, each row's set being its ``count`` hashes from its ``first``-th.

    Each row's hashes are copied, sorted and deduplicated in place by a compiled loop, in ``threads`` threads
    (numpy sorted groups of rows' hashes, each prefixed by its row's rank, on one core: 3.0 s of the near-dedup
    step's 31 s on 300k real rows; the sets are the same)."""
    chunks = shingles.chunks if isinstance(shingles, pa.ChunkedArray) else [shingles]
    parts: list[tuple[int, int, np.ndarray, np.ndarray]] = []  # (rank lo, rank hi, first hash of each, values)
    counts = np.zeros(len(rows), dtype=np.int64)
    first_row = 0
    for part in chunks:
        lo, hi = (int(x) for x in np.searchsorted(rows, [first_row, first_row + len(part)]))
        first_row += len(part)
        if lo == hi:
            continue
        offsets, values = _list_parts(part)
        local = (rows[lo:hi] - (first_row - len(part))).astype(np.int64)
        begin = offsets[local]
        if spans is None:
            counts[lo:hi] = offsets[local + 1] - begin
        else:
            begin = begin + spans[0][rows[lo:hi]]
            counts[lo:hi] = spans[1][rows[lo:hi]]
        parts.append((lo, hi, begin, values))
    start = np.cumsum(counts) - counts
    keys = np.empty(int(counts.sum()), dtype=np.uint64)
    size = np.zeros(len(rows), dtype=np.int64)
    low = np.uint64(bits)
    for lo, hi, begin, values in parts:
        ranges_in_threads(
            lambda a, b, lo=lo, begin=begin, values=values: _sorted_sets(
                values, begin, lo, low, keys, start, counts, size, lo + a, lo + b),
            np.cumsum(counts[lo:hi]), threads)
    return keys, start, size


@numba.njit(nogil=True, cache=True)
def _intersections(keys: np.ndarray, start: np.ndarray, size: np.ndarray, ra: np.ndarray, rb: np.ndarray,
                   mask: np.uint64, out: np.ndarray, lo: int, hi: int) -> None:  # pragma: no cover - compiled
    """``out[k]`` for pairs ``lo .. hi - 1``: how many values the sorted runs of rows ``ra[k]`` and ``rb[k]`` of
    ``keys`` (each run ``start[r] .. start[r] + size[r] - 1``, compared under ``mask``) share. A merge of the
    two runs, or a binary search of the smaller run's values in the larger when it is 16x larger or more."""
    for k in range(lo, hi):
        i, j = start[ra[k]], start[rb[k]]
        ie, je = i + size[ra[k]], j + size[rb[k]]
        if ie - i > je - j:
            i, j, ie, je = j, i, je, ie
        c = 0
        if (je - j) >= 16 * (ie - i):
            while i < ie:
                x = keys[i] & mask
                a, b = j, je  # the first position of the larger run whose value is >= x
                while a < b:
                    m = (a + b) >> 1
                    if (keys[m] & mask) < x:
                        a = m + 1
                    else:
                        b = m
                if a < je and (keys[a] & mask) == x:
                    c += 1
                j = a
                i += 1
        else:
            while i < ie and j < je:
                x, y = keys[i] & mask, keys[j] & mask
                if x == y:
                    c += 1
                    i += 1
                    j += 1
                elif x < y:
                    i += 1
                else:
                    j += 1
        out[k] = c


def jaccard(
    shingles: pa.ListArray | pa.ChunkedArray,
    a: np.ndarray,
    b: np.ndarray,
    threads: int = 2,
    spans: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """True Jaccard similarity of the shingle sets of rows ``a[k]`` and ``b[k]`` (duplicates in a list count once).
    ``spans``: ``(first, count)`` per row of ``shingles``, each row's set being made of its ``count`` hashes from
    its ``first``-th (a part of the text, see ``near_dedup``), not of its whole list.

    The sets of the rows involved become sorted runs of one array (:func:`_row_sets`); each pair's runs are
    then intersected by a compiled merge, in ``threads`` threads
    over pair ranges of about equal work (numba, not numpy: numpy has no intersection of many small sets at
    once, and its sort-and-search version took 19.5 s for the 1.2 M candidate pairs of 300k real rows that
    are mostly near copies; the merge gives the same counts). The top ``64 - bits`` bits of the hashes
    are compared (44 bits with a million rows involved): a false shared shingle has a probability of about
    ``|A| |B| / 2^44`` per pair (1e-9 for sets of 120).
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if len(a) == 0:
        return np.zeros(0, dtype=np.float64)
    rows, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
    ra, rb = inv[: len(a)], inv[len(a) :]
    del inv
    bits = _row_bits(len(rows))
    shift = np.uint64(64 - bits)
    keys, start, size = _row_sets(shingles, rows, bits, threads, spans)
    mask = (np.uint64(1) << shift) - np.uint64(1)
    inter = np.empty(len(a), dtype=np.int64)
    ranges_in_threads(lambda lo, hi: _intersections(keys, start, size, ra, rb, mask, inter, lo, hi),
                np.cumsum(size[ra] + size[rb]), threads)
    union = size[ra] + size[rb] - inter
    return inter / np.maximum(union, 1)


def clusters(table: pa.Table, p: MinHashParams) -> tuple[pa.Table, pa.Table]:
    """Verified near-duplicate clusters over ``table(bands, sketch, shingles)`` (rows 0..n-1 in order).

    Returns ``(idx, cluster)`` for every sample in a cluster of two or more, ``cluster`` being the
    smallest ``idx`` of the cluster, and the verified edges ``(a, b, jaccard)``.
    """
    n = table.num_rows
    pairs = candidate_pairs(fixed_list(table.column("bands"), p.bands()[0], np.uint64))
    pairs = pairs[
        estimate(
            fixed_list(table.column("sketch"), p.num_perm, np.uint8),
            pairs[:, 0],
            pairs[:, 1],
        )
        >= p.prefilter_floor()
    ]
    j = jaccard(table.column("shingles"), pairs[:, 0], pairs[:, 1])
    keep = j >= p.threshold
    a, b, j = pairs[keep, 0], pairs[keep, 1], j[keep]
    del pairs
    edges = pa.table(
        {
            "a": pa.array(a, pa.int64()),
            "b": pa.array(b, pa.int64()),
            "jaccard": pa.array(j, pa.float64()),
        }
    )
    idx, cluster = components(n, a, b)
    return pa.table(
        {"idx": pa.array(idx, pa.int64()), "cluster": pa.array(cluster, pa.int64())}
    ), edges


def components(n: int, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of the graph with edges (a[k], b[k]) over nodes 0..n-1 (scipy).

    Returns (members, cluster) for the nodes that have an edge, ``cluster`` being the smallest member.
    """
    try:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components
    except ImportError as e:  # the base install has no scipy
        from curation.errors import MissingExtraError

        raise MissingExtraError("dedup", "near-duplicate clusters (scipy)") from e

    if len(a) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    members = np.unique(np.concatenate([a, b]))
    lab = labels[members]
    smallest = np.full(labels.max() + 1, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(smallest, lab, members)
    return members.astype(np.int64), smallest[lab]


def minhash_clusters(
    texts: list[str],
    threshold: float = 0.6,
    ngram: int | None = None,
    num_perm: int = 128,
    char_ngram: int | None = None,
) -> list[int]:
    """One cluster id per text (equal ids = near duplicates; a text alone keeps its own index).

    ``ngram``: word n-gram size for space-delimited text; ``char_ngram``: character n-gram size for
    CJK text. The same code as the ``minhash_dedup`` step.
    """
    p = MinHashParams(
        threshold=threshold,
        num_perm=num_perm,
        word_ngram=ngram or MinHashParams.word_ngram,
        char_ngram=char_ngram or MinHashParams.char_ngram,
    )
    con = scratch()
    try:
        con.register(
            "t",
            pa.table(
                {
                    "text": pa.array(texts, pa.string()),
                    "i": pa.array(np.arange(len(texts)), pa.int64()),
                }
            ),
        )
        low = query_arrow(con, "SELECT lower(coalesce(text, '')) AS t, i::VARCHAR AS k FROM t ORDER BY i")
    finally:
        con.close()
    sh = shingle_lists(low.column("t"), low.column("k"), p.word_ngram, p.char_ngram, p.cjk_share)
    found, _ = clusters(signature_table(sh, p, copy=False), p)
    out = np.arange(len(texts), dtype=np.int64)
    out[found.column("idx").to_numpy()] = found.column("cluster").to_numpy()
    return out.tolist()
