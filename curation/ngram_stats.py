"""Gopher's repetition statistics over a batch of token lists, counted in a loop compiled with numba.

For each row: the share of token characters taken by the most frequent 2-, 3- and 4-gram (Rae et al. 2021,
"top n-gram character share") and the share of 5-gram occurrences that repeat an earlier 5-gram. The quality
step computed these in SQL by building every n-gram as a string, which cost more than all its other rules
together; here each n-gram is a hash of its token ids, counted per row in a hash table: one pass per n.
numba, not numpy: the numpy version (every key of the batch sorted once per n) took 5 s of the quality
step's 26 s on 34k real rows; a per-row count in numpy would be a Python loop over rows.

The quality step hands over the answers' text (:func:`text_ngram_stats`): a compiled loop finds the tokens of its
SQL definition and hashes them (:func:`text_tokens`), with no token strings built; :func:`ngram_stats` takes
token lists.

Ties for the most frequent n-gram go to the one that occurs first, as ``collections.Counter.most_common`` and
DuckDB's ``mode`` do.
"""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curation.textscan import (
    PAIRED,
    WORD_QUOTE,
    char_classes,
    hash_span,
    next_char,
    text_words,
)
from curation.threads import ranges_in_threads, thread_map


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


@numba.njit(nogil=True, cache=True)
def _tokens(data, words, offs, table, count, tok_offs, hashes, chars, starts, lo, hi):  # noqa: ANN001  # pragma: no cover
    """Rows ``lo .. hi - 1``: the tokens of ``TOKENS`` (``[PAIRED]{1,2}|[\\p{L}\\p{N}_']+``, leftmost first, as
    RE2 matches it). ``count`` given (``tok_offs`` empty): the number of tokens per row into it; else each token's
    hash (DuckDB's hash of its text: equal tokens, equal hashes), its length in characters and, where ``starts``
    is not empty, its first and last byte, from ``tok_offs[r]``."""
    counting = len(tok_offs) == 0
    spans = len(starts) > 0
    for r in range(lo, hi):
        i, end = offs[r], offs[r + 1]
        t = 0 if counting else tok_offs[r]
        n = 0
        while i < end:
            cp, j = next_char(data, i)
            c = table[cp]
            if c & PAIRED:  # one or two of these characters
                k = j
                length = 1
                if k < end:
                    cp2, k2 = next_char(data, k)
                    if table[cp2] & PAIRED:
                        k = k2
                        length = 2
            elif c & WORD_QUOTE:  # a run of word characters (CJK ones included)
                k = j
                length = 1
                while k < end:
                    cp2, k2 = next_char(data, k)
                    if not (table[cp2] & WORD_QUOTE):
                        break
                    k = k2
                    length += 1
            else:
                i = j
                continue
            if not counting:
                hashes[t + n] = hash_span(words, i, k - i)
                chars[t + n] = length
                if spans:
                    starts[2 * (t + n)] = i
                    starts[2 * (t + n) + 1] = k
            n += 1
            i = k
        if counting:
            count[r] = n


def text_tokens(lowered: pa.Array | pa.ChunkedArray, spans: bool = False,
                threads: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """The quality step's tokens (``TOKENS`` of :mod:`curation.pipeline.steps.quality`) of each lower-cased text:
    ``(offsets, hashes, chars, spans)``, row r's tokens being ``offsets[r] .. offsets[r + 1] - 1``; a token's
    hash is DuckDB's ``hash()`` of its text, ``chars`` its length in characters; with ``spans``, each token's
    first and one-past-last byte in the texts joined (shape (tokens, 2)), else None.

    A compiled loop over the text instead of ``regexp_extract_all`` then a dictionary of the token strings:
    the page's token lists were never needed as strings, only which tokens are equal (written here: no library
    tokenises by RE2's classes with its leftmost-first alternation)."""
    offs, words = text_words(lowered, pad=16)
    data = words.view(np.uint8)
    table = char_classes()
    n = len(offs) - 1
    count = np.zeros(n, np.int64)
    none = np.zeros(0, np.int64)
    work = np.cumsum(np.diff(offs) + 1)
    ranges_in_threads(lambda lo, hi: _tokens(data, words, offs, table, count, none, none, none, none, lo, hi), work,
                      threads)
    tok_offs = np.zeros(n + 1, np.int64)
    np.cumsum(count, out=tok_offs[1:])
    total = int(tok_offs[-1])
    hashes = np.empty(total, np.uint64)
    chars = np.empty(total, np.int64)
    where = np.empty(2 * total if spans else 0, np.int64)
    ranges_in_threads(lambda lo, hi: _tokens(data, words, offs, table, count, tok_offs, hashes, chars, where, lo, hi),
                      work, threads)
    return tok_offs, hashes, chars, where.reshape(-1, 2) if spans else None


def text_ngram_stats(lowered: pa.Array | pa.ChunkedArray, min_top_tokens: int,
                     min_dup_tokens: int) -> dict[str, np.ndarray]:
    """:func:`ngram_stats` of the lower-cased texts' tokens (:func:`text_tokens`), without building them as strings:
    the same statistics (a token's id is its 64-bit hash instead of its index in a dictionary of the page's
    tokens)."""
    offsets, ids, chars, _ = text_tokens(lowered)

    def part(lo: int, hi: int) -> dict[str, np.ndarray]:
        t0, t1 = offsets[lo], offsets[hi]
        return _counted(offsets[lo : hi + 1] - t0, ids[t0:t1], chars[t0:t1], min_top_tokens, min_dup_tokens)

    return _in_slices(offsets, part)


CHUNK_TOKENS = 1 << 21  # tokens per slice: the working arrays stay near 100 MB however large the batch


def ngram_stats(tokens: pa.Array | pa.ChunkedArray, min_top_tokens: int, min_dup_tokens: int) -> dict[str, np.ndarray]:
    """Per row of a list<string> array: ``n_tok``, ``tok_chars``, ``top2``, ``top3``, ``top4`` (NaN where the
    row has fewer than ``min_top_tokens`` tokens) and ``dup5`` (NaN under ``min_dup_tokens``)."""
    if isinstance(tokens, pa.ChunkedArray):
        tokens = tokens.combine_chunks() if tokens.num_chunks else pa.array([], tokens.type)
    tokens = tokens.fill_null(pa.scalar([], tokens.type))
    offsets = tokens.offsets.to_numpy().astype(np.int64)
    return _in_slices(offsets - offsets[0], lambda lo, hi: _stats(tokens.slice(lo, hi - lo), min_top_tokens,
                                                                   min_dup_tokens))


def _in_slices(offsets: np.ndarray, stats) -> dict[str, np.ndarray]:  # noqa: ANN001
    """``stats(lo, hi)`` over slices of whole rows of about CHUNK_TOKENS tokens each (``offsets``: each row's first
    token, from 0), joined. In threads: the compiled loop releases the GIL and so do Arrow's kernels (a page's 6 M
    tokens: 0.67 -> 0.4 s on 2 cores)."""
    n = len(offsets) - 1
    cuts = np.searchsorted(offsets[1:], np.arange(CHUNK_TOKENS, int(offsets[-1]), CHUNK_TOKENS), side="left") + 1
    bounds = [0, *sorted(set(int(c) for c in cuts if 0 < c < n)), n]
    spans = [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]
    parts = thread_map(lambda span: stats(*span), spans)
    if not parts:
        return stats(0, n)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _stats(tokens: pa.Array, min_top_tokens: int, min_dup_tokens: int) -> dict[str, np.ndarray]:
    offsets = tokens.offsets.to_numpy().astype(np.int64)
    flat = tokens.flatten()
    offsets = offsets - offsets[0]  # a slice's offsets start where the slice does
    lengths = pc.utf8_length(flat).to_numpy(zero_copy_only=False).astype(np.int64)
    ids = (pc.dictionary_encode(flat).indices.to_numpy(zero_copy_only=False) if len(flat)
           else np.zeros(0, np.int32)).astype(np.int64)
    return _counted(offsets, ids, lengths, min_top_tokens, min_dup_tokens)


def _counted(offsets: np.ndarray, ids: np.ndarray, lengths: np.ndarray, min_top_tokens: int,
             min_dup_tokens: int) -> dict[str, np.ndarray]:
    """The statistics of rows whose tokens are ``ids[offsets[r] .. offsets[r + 1] - 1]`` (equal tokens, equal
    ids) of ``lengths`` characters; ``offsets`` from 0."""
    n_rows = len(offsets) - 1
    n_tok = np.diff(offsets)
    cs = np.concatenate(([0], np.cumsum(lengths)))
    tok_chars = cs[offsets[1:]] - cs[offsets[:-1]]
    out = {"n_tok": n_tok, "tok_chars": tok_chars}
    for n in (2, 3, 4, 5):
        judged = n_tok >= (min_top_tokens if n < 5 else min_dup_tokens)
        res = np.full(n_rows, np.nan)
        if judged.any():
            _gram_counts(ids, offsets, cs, tok_chars, judged, n, res)
        out[f"top{n}" if n < 5 else "dup5"] = res
    return out
