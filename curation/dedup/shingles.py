"""Shingles of lower-cased texts in one compiled pass: the same lists, bit for bit, as the SQL of
:func:`curation.dedup.minhash.shingles_query`, six to ten times faster.

The SQL (three regular expressions per text, a lambda per n-gram, a string built and hashed per n-gram) was
most of the near-dedup step's time. Here a numba loop decodes the UTF-8 once per pass, with the character
classes of the SQL's regular expressions in a table made by the same regular-expression engine, and hashes
every n-gram with DuckDB's own string hash (both from :mod:`curation.textscan`): the shingles, so the
signatures, candidates and decisions, are the ones the SQL gives. No library tokenises by
these rules (words, or CJK characters when CJK letters are a share of the letters) and hashes like DuckDB:
the loop is written here.

Rules (see :func:`curation.dedup.minhash.ngrams_query`): tokens are runs of ``[\\p{L}\\p{N}_]``; a text whose
CJK letters are at least ``cjk_share`` of its letters is shingled by characters (every CJK character is a token
unless it continues a word token, as the SQL's alternation does). A text with fewer than n tokens gives one
shingle of all of them; a text without tokens gives the hash of ``chr(0) || key``.
"""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa

from curation.textscan import (
    IS_CJK,
    LETTER,
    WORD,
    char_classes,
    hash_bytes,
    hash_span,
    next_char,
    text_words,
)
from curation.threads import ranges_in_threads


@numba.njit(nogil=True, cache=True)
def _plan(data, offs, table, word_n, char_n, cjk_share, cjk, count, lo, hi):  # noqa: ANN001  # pragma: no cover
    """Rows ``lo .. hi - 1``: whether each is shingled by characters, and its number of shingles."""
    for r in range(lo, hi):
        i, end = offs[r], offs[r + 1]
        n_cjk = 0
        letters = 0
        words = 0  # tokens of the word rule
        chars = 0  # tokens of the CJK rule
        in_word = False
        in_char_word = False
        while i < end:
            cp, i = next_char(data, i)
            c = table[cp]
            if c & IS_CJK:
                n_cjk += 1
            if c & LETTER:
                letters += 1
            if c & WORD:
                if not in_word:
                    words += 1
                    in_word = True
            else:
                in_word = False
            if in_char_word and (c & WORD):
                continue
            in_char_word = False
            if c & IS_CJK:
                chars += 1
            elif c & WORD:
                chars += 1
                in_char_word = True
        if n_cjk == 0:
            by_char = cjk_share <= 0
        else:
            by_char = n_cjk >= cjk_share * max(letters, 1)
        tokens = chars if by_char else words
        n = char_n if by_char else word_n
        cjk[r] = by_char
        count[r] = 1 if tokens < n else tokens - n + 1


@numba.njit(nogil=True, cache=True)
def _emit(data, text_words, offs, table, keys, key_offs, word_n, char_n, cjk, out_offs, out, lo, hi):  # noqa: ANN001  # pragma: no cover
    """Rows ``lo .. hi - 1``: their shingle hashes into ``out`` from ``out_offs``, in the SQL's order.

    ``text_words`` holds ``data`` (the texts' bytes) as little-endian words, padded: an n-gram whose tokens are
    separated by single spaces in the text is its own bytes there and is hashed in place (most of them, in
    prose); the others are copied with single spaces into a buffer first."""
    longest = 0
    for r in range(lo, hi):
        longest = max(longest, offs[r + 1] - offs[r], key_offs[r + 1] - key_offs[r] + 1)
    starts = np.empty(longest + 1, np.int64)
    ends = np.empty(longest + 1, np.int64)
    spaced = np.empty(longest + 1, np.bool_)
    words = np.zeros((2 * longest + 2) // 8 + 1, np.uint64)  # little-endian, as DuckDB loads the blocks
    buf = words.view(np.uint8)
    for r in range(lo, hi):
        i, end = offs[r], offs[r + 1]
        by_char = cjk[r]
        nt = 0
        in_tok = False
        while i < end:
            at = i
            cp, i = next_char(data, i)
            c = table[cp]
            if in_tok and (c & WORD):
                continue
            if in_tok:
                ends[nt - 1] = at
                in_tok = False
            if by_char and (c & IS_CJK):
                starts[nt] = at
                ends[nt] = i
                nt += 1
            elif c & WORD:
                starts[nt] = at
                nt += 1
                in_tok = True
        if in_tok:
            ends[nt - 1] = end
        o = out_offs[r]
        if nt == 0:  # hash(chr(0) || key): empty texts are never similar to each other
            buf[0] = 0
            k0 = key_offs[r]
            m = key_offs[r + 1] - k0
            for j in range(m):
                buf[1 + j] = keys[k0 + j]
            out[o] = hash_bytes(words, m + 1)
            continue
        n = char_n if by_char else word_n
        width = nt if nt < n else n
        for t in range(nt - 1):  # is token t followed by exactly one space, then token t + 1?
            spaced[t] = starts[t + 1] == ends[t] + 1 and data[ends[t]] == 32
        for g in range(nt - width + 1):
            in_place = True
            for t in range(g, g + width - 1):
                if not spaced[t]:
                    in_place = False
                    break
            if in_place:
                out[o + g] = hash_span(text_words, starts[g], ends[g + width - 1] - starts[g])
                continue
            m = 0
            for t in range(g, g + width):
                if t > g:
                    buf[m] = 32
                    m += 1
                for j in range(starts[t], ends[t]):
                    buf[m] = data[j]
                    m += 1
            out[o + g] = hash_bytes(words, m)


@numba.njit(nogil=True, cache=True)
def _count(data, offs, table, by_char, count, lo, hi):  # noqa: ANN001  # pragma: no cover
    """Rows ``lo .. hi - 1``: add to ``count[r]`` the tokens of text ``r`` by ``_plan``'s rules, by characters
    where ``by_char[r]``."""
    for r in range(lo, hi):
        i, end = offs[r], offs[r + 1]
        tokens = 0
        in_word = False
        chars = by_char[r]
        while i < end:
            cp, i = next_char(data, i)
            c = table[cp]
            if in_word and (c & WORD):
                continue
            in_word = False
            if chars and (c & IS_CJK):
                tokens += 1
            elif c & WORD:
                tokens += 1
                in_word = True
        count[r] += tokens


def token_counts(texts: list[pa.Array | pa.ChunkedArray], by_char: np.ndarray, threads: int = 2) -> np.ndarray:
    """The tokens of each row of ``texts`` (columns of one length, nulls empty) together, each shingled by
    characters where ``by_char`` (as :func:`shingle_lists` gives it for the text they begin).

    Columns joined by a line break (``concat_ws(chr(10), ...)``) have the sum of their tokens, the break being no
    token. Counted on the text as it is: DuckDB's ``lower`` maps each code point to one code point of the same
    classes (a letter to a letter), so the count is the lower-cased text's."""
    n = len(by_char)
    count = np.zeros(n, np.int64)
    table = char_classes()
    for col in texts:
        if len(col) != n:
            raise ValueError(f"token_counts: {n} rows but a column of {len(col)}")
        offs, words = text_words(col)
        data = words.view(np.uint8)
        if n:
            ranges_in_threads(lambda lo, hi: _count(data, offs, table, by_char, count, lo, hi),
                              np.cumsum(np.diff(offs) + 1), threads)
    return count


def shingle_lists(
    lowered: pa.Array | pa.ChunkedArray,
    keys: pa.Array | pa.ChunkedArray,
    word_n: int,
    char_n: int,
    cjk_share: float,
    threads: int = 2,
    by_char: np.ndarray | None = None,
) -> pa.ListArray:
    """The 64-bit shingle hashes of each text of ``lowered`` (already lower-cased by DuckDB's ``lower``), as
    ``shingles_query`` lists them; ``keys`` (strings, one per text) make the shingle of a text without tokens.
    ``by_char`` (booleans, one per text): filled with whether each text was shingled by characters."""
    n = len(lowered)
    if len(keys) != n:
        raise ValueError(f"shingle_lists: {n} texts but {len(keys)} keys")
    offs, words = text_words(lowered, pad=16)  # aligned, padded: every 8-byte read stays inside
    data = words.view(np.uint8)
    key_offs, key_words = text_words(keys)
    key_data = key_words.view(np.uint8)
    table = char_classes()
    cjk = np.zeros(n, np.bool_) if by_char is None else by_char
    if len(cjk) != n:
        raise ValueError(f"shingle_lists: {n} texts but {len(cjk)} places in by_char")
    count = np.zeros(n, np.int64)
    work = np.cumsum(np.diff(offs) + 1)
    args = (word_n, char_n, float(cjk_share))
    ranges_in_threads(lambda lo, hi: _plan(data, offs, table, *args, cjk, count, lo, hi), work, threads)
    out_offs = np.zeros(n + 1, np.int64)
    np.cumsum(count, out=out_offs[1:])
    out = np.empty(int(out_offs[-1]), np.uint64)
    ranges_in_threads(
        lambda lo, hi: _emit(data, words, offs, table, key_data, key_offs, word_n, char_n, cjk, out_offs, out, lo, hi),
        work,
        threads,
    )
    if out_offs[-1] >= 2**31:
        return pa.LargeListArray.from_arrays(pa.array(out_offs, pa.int64()), pa.array(out, pa.uint64()))
    return pa.ListArray.from_arrays(pa.array(out_offs.astype(np.int32)), pa.array(out, pa.uint64()))
