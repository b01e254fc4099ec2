"""Gopher's repetition statistics over a batch of token lists, counted in a loop compiled with numba.

For each row: the share of token characters taken by the most frequent 2-, 3- and 4-gram (Rae et al. 2021,
"top n-gram character share") and the share of 5-gram occurrences that repeat an earlier 5-gram. The quality
step computed these in SQL by building every n-gram as a string, which cost more than all its other rules
together; here each n-gram is a hash of its token ids, counted per row in a hash table: one pass per n.
numba, not numpy: the numpy version (every key of the batch sorted once per n) took 5 s of the quality
step's 26 s on 34k real rows; a per-row count in numpy would be a Python loop over rows.

Ties for the most frequent n-gram go to the one that occurs first, as ``collections.Counter.most_common`` and
DuckDB's ``mode`` do.
"""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curation.threads import thread_map


@numba.njit(nogil=True, cache=True)
def _gram_counts(ids: np.ndarray, offsets: np.ndarray, cs: np.ndarray, tok_chars: np.ndarray, judged: np.ndarray,
                 n: int, res: np.ndarray) -> None:  # pragma: no cover - compiled (its Python is never run)
    """Per judged row: the top n-gram's character share (n < 5) or the share of repeated 5-grams, into ``res``.

    Each n-gram is a 64-bit multiply-add hash of its token ids, finalised, of which the top 40 bits are the
    key; a row's keys are counted in an open-addressing table (linear probing) sized to twice its n-grams.
    Ties for the most frequent n-gram go to the one whose first occurrence comes first.
    """
    mul = np.uint64(0x9E3779B97F4A7C15)
    fin = np.uint64(0xC2B2AE3D27D4EB4F)
    one = np.uint64(1)
    for r in range(len(judged)):
        if not judged[r]:
            continue
        s = offsets[r]
        g = offsets[r + 1] - s - n + 1
        if g <= 0:
            if n == 5:
                res[r] = 1.0
            continue
        size = 16
        while size < 2 * g:
            size *= 2
        mask = np.uint64(size - 1)
        keys = np.empty(size, np.uint64)
        counts = np.zeros(size, np.int64)
        slot_of = np.empty(g, np.int64)
        distinct = 0
        top = 0
        for j in range(g):
            h = np.uint64(ids[s + j]) + one
            for k in range(1, n):
                h = h * mul + np.uint64(ids[s + j + k]) + one
            h ^= h >> np.uint64(29)
            h *= fin
            h ^= h >> np.uint64(32)
            key = h >> np.uint64(24)
            slot = np.int64(key & mask)
            while counts[slot] != 0 and keys[slot] != key:
                slot = (slot + np.int64(1)) & np.int64(size - 1)
            if counts[slot] == 0:
                keys[slot] = key
                distinct += 1
            counts[slot] += 1
            slot_of[j] = slot
            if counts[slot] > top:
                top = counts[slot]
        if n == 5:  # share of occurrences that repeat an earlier one: 1 - distinct / all
            res[r] = 1.0 - distinct / g
            continue
        for j in range(g):  # the first n-gram, in text order, with the top count
            if counts[slot_of[j]] == top:
                res[r] = top * (cs[s + j + n] - cs[s + j]) / max(tok_chars[r], 1)
                break


CHUNK_TOKENS = 1 << 21  # tokens per slice: the working arrays stay near 100 MB however large the batch


def ngram_stats(tokens: pa.Array | pa.ChunkedArray, min_top_tokens: int, min_dup_tokens: int) -> dict[str, np.ndarray]:
    """Per row of a list<string> array: ``n_tok``, ``tok_chars``, ``top2``, ``top3``, ``top4`` (NaN where the
    row has fewer than ``min_top_tokens`` tokens) and ``dup5`` (NaN under ``min_dup_tokens``)."""
    if isinstance(tokens, pa.ChunkedArray):
        tokens = tokens.combine_chunks() if tokens.num_chunks else pa.array([], tokens.type)
    tokens = tokens.fill_null(pa.scalar([], tokens.type))
    sizes = np.diff(tokens.offsets.to_numpy().astype(np.int64))
    # slices of whole rows of about CHUNK_TOKENS tokens each
    cuts = np.searchsorted(np.cumsum(sizes), np.arange(CHUNK_TOKENS, int(sizes.sum()), CHUNK_TOKENS), side="left") + 1
    bounds = [0, *sorted(set(int(c) for c in cuts if 0 < c < len(sizes))), len(sizes)]
    spans = [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]
    # the slices in threads: the compiled loop releases the GIL and so do Arrow's kernels (a page's 6 M tokens:
    # 0.67 -> 0.4 s on 2 cores)
    parts = thread_map(lambda span: _stats(tokens.slice(span[0], span[1] - span[0]), min_top_tokens, min_dup_tokens),
                       spans)
    if not parts:
        return _stats(tokens, min_top_tokens, min_dup_tokens)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _stats(tokens: pa.Array, min_top_tokens: int, min_dup_tokens: int) -> dict[str, np.ndarray]:
    n_rows = len(tokens)
    offsets = tokens.offsets.to_numpy().astype(np.int64)
    flat = tokens.flatten()
    offsets = offsets - offsets[0]  # a slice's offsets start where the slice does
    n_tok = np.diff(offsets)
    lengths = pc.utf8_length(flat).to_numpy(zero_copy_only=False).astype(np.int64)
    cs = np.concatenate(([0], np.cumsum(lengths)))
    tok_chars = cs[offsets[1:]] - cs[offsets[:-1]]
    ids = (pc.dictionary_encode(flat).indices.to_numpy(zero_copy_only=False) if len(flat)
           else np.zeros(0, np.int32)).astype(np.int64)
    out = {"n_tok": n_tok, "tok_chars": tok_chars}
    for n in (2, 3, 4, 5):
        judged = n_tok >= (min_top_tokens if n < 5 else min_dup_tokens)
        res = np.full(n_rows, np.nan)
        if judged.any():
            _gram_counts(ids, offsets, cs, tok_chars, judged, n, res)
        out[f"top{n}" if n < 5 else "dup5"] = res
    return out
