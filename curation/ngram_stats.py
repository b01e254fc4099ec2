"""Gopher's repetition statistics over a batch of token lists, vectorised with numpy.

For each row: the share of token characters taken by the most frequent 2-, 3- and 4-gram (Rae et al. 2021,
"top n-gram character share") and the share of 5-gram occurrences that repeat an earlier 5-gram. The quality
step computed these in SQL by building every n-gram as a string, which cost more than all its other rules
together; here each n-gram is a hash of its token ids, keyed by its row, and the counting is one sort per n.

Ties for the most frequent n-gram go to the one that occurs first, as ``collections.Counter.most_common`` and
DuckDB's ``mode`` do.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_MUL = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constants: multiply-and-add hashing of id sequences
_ROW = np.uint64(0xC2B2AE3D27D4EB4F)


def _positions(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat positions ``starts[r] .. starts[r] + counts[r] - 1`` for every row, and their row numbers."""
    total = int(counts.sum())
    rows = np.repeat(np.arange(len(counts)), counts)
    if not total:
        return np.zeros(0, np.int64), rows
    first = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    return first + np.arange(total), rows


def _gram_hashes(ids: np.ndarray, pos: np.ndarray, n: int) -> np.ndarray:
    """A 64-bit hash of the token ids at ``pos .. pos + n - 1`` (multiply-add, then a final mix)."""
    with np.errstate(over="ignore"):
        h = ids[pos].astype(np.uint64) + np.uint64(1)
        for j in range(1, n):
            h = h * _MUL + ids[pos + j].astype(np.uint64) + np.uint64(1)
        h ^= h >> np.uint64(29)
        h *= _ROW
        h ^= h >> np.uint64(32)
        return h


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
    parts = [_stats(tokens.slice(a, b - a), min_top_tokens, min_dup_tokens) for a, b in zip(bounds, bounds[1:]) if b > a]
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
    ids = pc.dictionary_encode(flat).indices.to_numpy(zero_copy_only=False) if len(flat) else np.zeros(0, np.int32)
    out = {"n_tok": n_tok, "tok_chars": tok_chars}
    starts = offsets[:-1]
    for n in (2, 3, 4, 5):
        judged = n_tok >= (min_top_tokens if n < 5 else min_dup_tokens)
        res = np.full(n_rows, np.nan)
        grams = np.where(judged, np.maximum(n_tok - n + 1, 0), 0)
        pos, rows = _positions(starts, grams)
        if len(pos):
            # key: the row in the top 24 bits, 40 bits of the n-gram's hash below (two n-grams of one row share a
            # key with a chance of about 1e-6 for a row of 1,000 tokens); sorted, equal keys are one n-gram
            key = (rows.astype(np.uint64) << np.uint64(40)) | (_gram_hashes(ids, pos, n) >> np.uint64(24))
            order = np.argsort(key) if n < 5 else None
            ks = key[order] if n < 5 else np.sort(key)
            new = np.empty(len(ks), bool)
            new[0] = True
            np.not_equal(ks[1:], ks[:-1], out=new[1:])
            run_start = np.flatnonzero(new)
            run_rows = (ks[run_start] >> np.uint64(40)).astype(np.int64)
            if n == 5:  # share of occurrences that repeat an earlier one: 1 - distinct / all
                distinct = np.bincount(run_rows, minlength=n_rows)
                res[judged] = 1 - distinct[judged] / np.maximum(grams[judged], 1)
            else:
                count = np.diff(np.append(run_start, len(ks)))
                top = np.zeros(n_rows, np.int64)
                np.maximum.at(top, run_rows, count)
                # ties for the most frequent n-gram: the one that occurs first (positions are in text order)
                run_of = np.empty(len(ks), np.int64)
                run_of[order] = np.cumsum(new) - 1  # each position's n-gram, in text order
                at_top = count[run_of] == top[rows]
                idx = np.flatnonzero(at_top)
                r = rows[idx]
                head = np.empty(len(idx), bool)
                head[:1] = True
                np.not_equal(r[1:], r[:-1], out=head[1:])
                best_rows, best_pos = r[head], pos[idx[head]]
                gram_chars = cs[best_pos + n] - cs[best_pos]
                res[best_rows] = top[best_rows] * gram_chars / np.maximum(tok_chars[best_rows], 1)
        out[f"top{n}" if n < 5 else "dup5"] = res
    return out
