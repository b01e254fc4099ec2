"""Shingles of lower-cased texts in one compiled pass: the same lists, bit for bit, as the SQL of
:func:`curation.dedup.minhash.shingles_query`, six to ten times faster.

The SQL (three regular expressions per text, a lambda per n-gram, a string built and hashed per n-gram) was
most of the near-dedup step's time. Here a numba loop decodes the UTF-8 once per pass, with the character
classes of the SQL's regular expressions in a table made by the same regular-expression engine (RE2, through
DuckDB, once per process), and hashes every n-gram with DuckDB's own string hash (reimplemented below: the
shingles, so the signatures, candidates and decisions, are the ones the SQL gives). No library tokenises by
these rules (words, or CJK characters when CJK letters are a share of the letters) and hashes like DuckDB:
the loop is written here.

Rules (see :func:`curation.dedup.minhash.ngrams_query`): tokens are runs of ``[\\p{L}\\p{N}_]``; a text whose
CJK letters are at least ``cjk_share`` of its letters is shingled by characters (every CJK character is a token
unless it continues a word token, as the SQL's alternation does). A text with fewer than n tokens gives one
shingle of all of them; a text without tokens gives the hash of ``chr(0) || key``.
"""

from __future__ import annotations

import functools

import duckdb
import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curation.threads import ranges_in_threads

CJK = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}"
WORD, IS_CJK, LETTER = 1, 2, 4  # bits of the class table

_M = np.uint64(0xD6E8FEB86659FD93)  # DuckDB's hash constants (src/common/types/hash.cpp)
_SEED = np.uint64(0xE17A1465)
_LEN_MUL = np.uint64(0xC6A4A7935BD1E995)


@functools.lru_cache(maxsize=1)
def char_classes() -> np.ndarray:
    """One byte per code point: WORD (``[\\p{L}\\p{N}_]``), IS_CJK, LETTER (``\\p{L}``), as RE2 in DuckDB sees it."""
    con = duckdb.connect()
    try:
        r = con.execute(
            f"""SELECT cp, regexp_matches(c, '[\\p{{L}}\\p{{N}}_]') AS w, regexp_matches(c, '[{CJK}]') AS k,
                       regexp_matches(c, '\\p{{L}}') AS l
                FROM (SELECT cp, chr(cp::INTEGER) AS c FROM range(0, 1114112) t(cp)
                      WHERE cp < 55296 OR cp > 57343)"""  # surrogates are not characters
        ).fetchnumpy()
    finally:
        con.close()
    table = np.zeros(0x110000, np.uint8)
    table[r["cp"]] = (
        r["w"].astype(np.uint8) * WORD | r["k"].astype(np.uint8) * IS_CJK | r["l"].astype(np.uint8) * LETTER
    )
    return table


@numba.njit(inline="always")
def _next(data: np.ndarray, i: int) -> tuple[int, int]:  # pragma: no cover - compiled
    """The code point starting at byte ``i`` of valid UTF-8, and the index after it."""
    b = np.int64(data[i])
    if b < 0x80:
        return b, i + 1
    if b < 0xE0:
        return ((b & 0x1F) << 6) | (np.int64(data[i + 1]) & 0x3F), i + 2
    if b < 0xF0:
        return ((b & 0x0F) << 12) | ((np.int64(data[i + 1]) & 0x3F) << 6) | (np.int64(data[i + 2]) & 0x3F), i + 3
    return (
        ((b & 0x07) << 18) | ((np.int64(data[i + 1]) & 0x3F) << 12) | ((np.int64(data[i + 2]) & 0x3F) << 6)
        | (np.int64(data[i + 3]) & 0x3F)
    ), i + 4


@numba.njit(inline="always")
def _hash_bytes(words: np.ndarray, n: int) -> np.uint64:  # pragma: no cover - compiled
    """DuckDB's ``hash()`` of a VARCHAR of ``n`` bytes, given as little-endian 8-byte ``words`` (the bytes past
    ``n`` in the last word are ignored): the blocks folded by multiplication, then MurmurHash64's finaliser."""
    h = _SEED ^ (np.uint64(n) * _LEN_MUL)
    full = n >> 3
    for k in range(full):
        h = (h ^ words[k]) * _M
    rest = n & 7
    if rest:
        h = (h ^ (words[full] & ((np.uint64(1) << np.uint64(8 * rest)) - np.uint64(1)))) * _M
    h ^= h >> np.uint64(32)
    h *= _M
    h ^= h >> np.uint64(32)
    h *= _M
    h ^= h >> np.uint64(32)
    return h


@numba.njit(inline="always")
def _word_at(words: np.ndarray, p: int) -> np.uint64:  # pragma: no cover - compiled
    """The 8 bytes from byte ``p`` of ``words`` (little-endian), from the one or two aligned words holding them."""
    q = p >> 3
    r = np.uint64(8 * (p & 7))
    if r == 0:
        return words[q]
    return (words[q] >> r) | (words[q + 1] << (np.uint64(64) - r))


@numba.njit(inline="always")
def _hash_span(words: np.ndarray, start: int, n: int) -> np.uint64:  # pragma: no cover - compiled
    """:func:`_hash_bytes` of the ``n`` bytes from byte ``start`` of ``words``, read in place (no copy)."""
    h = _SEED ^ (np.uint64(n) * _LEN_MUL)
    full = n >> 3
    for k in range(full):
        h = (h ^ _word_at(words, start + 8 * k)) * _M
    rest = n & 7
    if rest:
        w = _word_at(words, start + 8 * full) & ((np.uint64(1) << np.uint64(8 * rest)) - np.uint64(1))
        h = (h ^ w) * _M
    h ^= h >> np.uint64(32)
    h *= _M
    h ^= h >> np.uint64(32)
    h *= _M
    h ^= h >> np.uint64(32)
    return h


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
            cp, i = _next(data, i)
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
            cp, i = _next(data, i)
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
            out[o] = _hash_bytes(words, m + 1)
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
                out[o + g] = _hash_span(text_words, starts[g], ends[g + width - 1] - starts[g])
                continue
            m = 0
            for t in range(g, g + width):
                if t > g:
                    buf[m] = 32
                    m += 1
                for j in range(starts[t], ends[t]):
                    buf[m] = data[j]
                    m += 1
            out[o + g] = _hash_bytes(words, m)


def _utf8(arr: pa.Array | pa.ChunkedArray, pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(offsets from 0 as int64, bytes) of a string column, nulls as empty strings, the bytes copied once into
    an array of little-endian words with at least ``pad`` bytes of zeros after them: one copy of the page's
    text, not a concatenation, a cast and a copy."""
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    for c in arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]:
        if not (pa.types.is_string(c.type) or pa.types.is_large_string(c.type)):
            c = c.cast(pa.large_string())
        if c.null_count:  # a null's offsets need not be equal
            c = pc.fill_null(c, "")
        bufs = c.buffers()
        width = np.int64 if pa.types.is_large_string(c.type) else np.int32
        offs = np.frombuffer(bufs[1], width)[c.offset : c.offset + len(c) + 1].astype(np.int64)
        data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
        parts.append((offs, data))
    total = sum(int(o[-1] - o[0]) for o, _ in parts if len(o))
    words = np.zeros((total + pad) // 8 + 1, np.uint64)
    out = words.view(np.uint8)
    offsets = [np.zeros(1, np.int64)]
    at = 0
    for offs, data in parts:
        if len(offs) < 2:
            continue
        size = int(offs[-1] - offs[0])
        out[at : at + size] = data[offs[0] : offs[-1]]
        offsets.append(offs[1:] - offs[0] + at)
        at += size
    return np.concatenate(offsets), words


def shingle_lists(
    lowered: pa.Array | pa.ChunkedArray,
    keys: pa.Array | pa.ChunkedArray,
    word_n: int,
    char_n: int,
    cjk_share: float,
    threads: int = 2,
) -> pa.ListArray:
    """The 64-bit shingle hashes of each text of ``lowered`` (already lower-cased by DuckDB's ``lower``), as
    ``shingles_query`` lists them; ``keys`` (strings, one per text) make the shingle of a text without tokens."""
    n = len(lowered)
    if len(keys) != n:
        raise ValueError(f"shingle_lists: {n} texts but {len(keys)} keys")
    offs, text_words = _utf8(lowered, pad=16)  # aligned, padded: every 8-byte read stays inside
    data = text_words.view(np.uint8)
    key_offs, key_words = _utf8(keys)
    key_data = key_words.view(np.uint8)
    table = char_classes()
    cjk = np.zeros(n, np.bool_)
    count = np.zeros(n, np.int64)
    work = np.cumsum(np.diff(offs) + 1)
    args = (word_n, char_n, float(cjk_share))
    ranges_in_threads(lambda lo, hi: _plan(data, offs, table, *args, cjk, count, lo, hi), work, threads)
    out_offs = np.zeros(n + 1, np.int64)
    np.cumsum(count, out=out_offs[1:])
    out = np.empty(int(out_offs[-1]), np.uint64)
    ranges_in_threads(
        lambda lo, hi: _emit(data, text_words, offs, table, key_data, key_offs, word_n, char_n, cjk, out_offs, out, lo, hi),
        work,
        threads,
    )
    if out_offs[-1] >= 2**31:
        return pa.LargeListArray.from_arrays(pa.array(out_offs, pa.int64()), pa.array(out, pa.uint64()))
    return pa.ListArray.from_arrays(pa.array(out_offs.astype(np.int32)), pa.array(out, pa.uint64()))
