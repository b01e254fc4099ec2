"""Compiled scanning of UTF-8 text by the character classes of DuckDB's regular expressions.

Loops that tokenise a page of text (the near-dedup shingles, the quality step's n-gram statistics) decode the
UTF-8 themselves and look each code point up in a table of the classes their SQL used, made by the same
regular-expression engine (RE2, through DuckDB, once per process): the tokens are the ones the SQL gave. Tokens
and n-grams are hashed with DuckDB's own string hash (reimplemented here), so a hash made here equals
``hash(text)`` in SQL.

The helpers here are inlined into the callers' compiled loops, which numba caches per file: its cache does not
see an edit of this file. After changing a helper, touch the files that use it (``curation/dedup/shingles.py``,
``curation/ngram_stats.py``, ``curation/answer_stats.py``) or remove their ``__pycache__``; an installed release has new files throughout.
"""

from __future__ import annotations

import functools

import duckdb
import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curation.duck import sql_literal

CJK = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}"
PAIRED_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}"  # the quality step's tokens: these characters in pairs
# bits of the class table: [\p{L}\p{N}_], the CJK scripts, \p{L}, PAIRED_CJK, [\p{L}\p{N}_'], \p{S}, \p{N}, \p{P}
WORD, IS_CJK, LETTER, PAIRED, WORD_QUOTE, SYMBOL, NUMBER, PUNCT = 1, 2, 4, 8, 16, 32, 64, 128

_M = np.uint64(0xD6E8FEB86659FD93)  # DuckDB's hash constants (src/common/types/hash.cpp)
_SEED = np.uint64(0xE17A1465)
_LEN_MUL = np.uint64(0xC6A4A7935BD1E995)


@functools.lru_cache(maxsize=1)
def char_classes() -> np.ndarray:
    """One byte per code point, the bits WORD, IS_CJK, LETTER, PAIRED, WORD_QUOTE, SYMBOL, NUMBER and PUNCT, as
    RE2 in DuckDB sees it."""
    return class_table({WORD: r"[\p{L}\p{N}_]", IS_CJK: f"[{CJK}]", LETTER: r"\p{L}", PAIRED: f"[{PAIRED_CJK}]",
                        WORD_QUOTE: r"[\p{L}\p{N}_']", SYMBOL: r"\p{S}", NUMBER: r"\p{N}", PUNCT: r"\p{P}"})


def class_table(classes: dict[int, str]) -> np.ndarray:
    """One byte per code point (0 .. 0x10FFFF): the bits (keys of ``classes``) of the regular expressions (values)
    that match the character, as RE2 in DuckDB matches them."""
    cols = ", ".join(f"regexp_matches(c, {sql_literal(regex)}) AS b{bit}" for bit, regex in classes.items())
    con = duckdb.connect()
    try:
        r = con.execute(
            f"""SELECT cp, {cols}
                FROM (SELECT cp, chr(cp::INTEGER) AS c FROM range(0, 1114112) t(cp)
                      WHERE cp < 55296 OR cp > 57343)"""  # surrogates are not characters
        ).fetchnumpy()
    finally:
        con.close()
    bits = np.zeros(len(r["cp"]), np.uint8)
    for bit in classes:
        bits |= r[f"b{bit}"].astype(np.uint8) * np.uint8(bit)
    table = np.zeros(0x110000, np.uint8)
    table[r["cp"]] = bits
    return table


@numba.njit(inline="always")
def next_char(data: np.ndarray, i: int) -> tuple[int, int]:  # pragma: no cover - compiled
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
def word_at(words: np.ndarray, p: int) -> np.uint64:  # pragma: no cover - compiled
    """The 8 bytes from byte ``p`` of ``words`` (little-endian), from the one or two aligned words holding them."""
    q = p >> 3
    r = np.uint64(8 * (p & 7))
    if r == 0:
        return words[q]
    return (words[q] >> r) | (words[q + 1] << (np.uint64(64) - r))


@numba.njit(inline="always")
def hash_span(words: np.ndarray, start: int, n: int) -> np.uint64:  # pragma: no cover - compiled
    """DuckDB's ``hash()`` of the VARCHAR whose ``n`` bytes start at byte ``start`` of ``words`` (read in place):
    8-byte blocks folded by multiplication, then MurmurHash64's finaliser."""
    h = _SEED ^ (np.uint64(n) * _LEN_MUL)
    full = n >> 3
    for k in range(full):
        h = (h ^ word_at(words, start + 8 * k)) * _M
    rest = n & 7
    if rest:
        w = word_at(words, start + 8 * full) & ((np.uint64(1) << np.uint64(8 * rest)) - np.uint64(1))
        h = (h ^ w) * _M
    h ^= h >> np.uint64(32)
    h *= _M
    h ^= h >> np.uint64(32)
    h *= _M
    h ^= h >> np.uint64(32)
    return h


@numba.njit(inline="always")
def hash_bytes(words: np.ndarray, n: int) -> np.uint64:  # pragma: no cover - compiled
    """DuckDB's ``hash()`` of a VARCHAR of ``n`` bytes, given as little-endian 8-byte ``words`` from the first."""
    return hash_span(words, 0, n)


def text_words(arr: pa.Array | pa.ChunkedArray, pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(offsets from 0 as int64, bytes) of a string column, nulls as empty strings, the bytes copied once into
    an array of little-endian words with at least ``pad`` bytes of zeros after them: one copy of the page's
    text, not a concatenation, a cast and a copy."""
    parts = [string_buffers(c) for c in (arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr])]
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


def string_buffers(c: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets as int64, bytes) of one string array, nulls as empty strings: the bytes in place (not copied)
    unless the array holds nulls, the offsets as they index them (not from 0)."""
    if not (pa.types.is_string(c.type) or pa.types.is_large_string(c.type)):
        c = c.cast(pa.large_string())
    if c.null_count:  # a null's offsets need not be equal
        c = pc.fill_null(c, "")
    bufs = c.buffers()
    width = np.int64 if pa.types.is_large_string(c.type) else np.int32
    offs = np.frombuffer(bufs[1], width)[c.offset : c.offset + len(c) + 1].astype(np.int64)
    data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    return offs, data
