"""The quality step's figures of a page of answers (their code blocks already blanked out), in one compiled pass.

What the ``line_repetition`` rule reads, as its SQL defined them:

- the lines: ``list_filter(string_split(text, chr(10)), lambda x: length(wtrim(x)) > 0)``;
- the paragraphs: ``list_filter(string_split_regex(text, '\\n\\s*\\n'), lambda x: length(wtrim(x)) > 0)``;
- ``n_long_lines``: lines of at least ``min_chars`` characters once trimmed; ``dup_long_lines``: how many of
  those repeat one before them (``len(list) - len(list_distinct(list))``);
- ``line_loop`` / ``para_loop``: where the list has at least ``run - 1`` repeats, some item of at least
  ``min_chars`` characters ``run`` times in a row, or any item ``2 * run`` times in a row.

``wtrim`` trims tab, newline, form feed, carriage return and space (RE2's ``\\s``) from both ends and
``length`` counts code points; items are compared byte for byte. And what the ``char_ratios`` and
``unbalanced_brackets`` rules read: ``n_sym``, ``n_dig``, ``n_pun``, the characters in ``\\p{S}``, ``\\p{N}``
and ``\\p{P}`` (RE2's classes, from :func:`curation.textscan.char_classes`), and the round (ASCII and
full-width), square and curly brackets, opening and closing.

DuckDB built, filtered and compared the lists per answer and made four regex passes and eight replace() passes
for the counts: 65% of the rules' SQL on real answers (1.2 s of 2.2 s for 50k); the loop finds the same
figures (tests compare it with that SQL). Hand-written because no library computes them.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
import pyarrow as pa

from curation.textscan import (
    NUMBER,
    PUNCT,
    SYMBOL,
    char_classes,
    hash_span,
    next_char,
    text_words,
)
from curation.threads import ranges_in_threads


@numba.njit(inline="always")
def _is_ws(b: int) -> bool:  # pragma: no cover - compiled
    return b == 32 or b == 10 or b == 9 or b == 13 or b == 12


@numba.njit(inline="always")
def _trimmed_chars(data: np.ndarray, a: int, b: int) -> int:  # pragma: no cover - compiled
    """Code points of ``data[a:b]`` without the RE2 whitespace at both ends."""
    while a < b and _is_ws(data[a]):
        a += 1
    while b > a and _is_ws(data[b - 1]):
        b -= 1
    n = 0
    for i in range(a, b):
        if (data[i] & 0xC0) != 0x80:
            n += 1
    return n


@numba.njit(inline="always")
def _same(data: np.ndarray, a0: int, a1: int, b0: int, b1: int) -> bool:  # pragma: no cover - compiled
    if a1 - a0 != b1 - b0:
        return False
    for k in range(a1 - a0):
        if data[a0 + k] != data[b0 + k]:
            return False
    return True


@numba.njit(inline="always")
def _repeats(data: np.ndarray, starts: np.ndarray, ends: np.ndarray, hashes: np.ndarray, keep: np.ndarray,
             count: int) -> int:  # pragma: no cover - compiled
    """How many of the items ``k < count`` with ``keep[k]`` equal an earlier such item (len - len(distinct))."""
    idx = np.empty(count, np.int64)
    m = 0
    for k in range(count):
        if keep[k]:
            idx[m] = k
            m += 1
    if m < 2:
        return 0
    idx = idx[:m]
    order = idx[np.argsort(hashes[idx], kind="mergesort")]
    dup = 0
    g = 0
    while g < m:
        h = g + 1
        while h < m and hashes[order[h]] == hashes[order[g]]:
            h += 1
        # a group of equal hashes: its distinct texts, compared byte for byte (a collision is not a repeat)
        distinct = 0
        for x in range(g, h):
            seen = False
            for y in range(g, x):
                if _same(data, starts[order[x]], ends[order[x]], starts[order[y]], ends[order[y]]):
                    seen = True
                    break
            if not seen:
                distinct += 1
        dup += (h - g) - distinct
        g = h
    return dup


@numba.njit(inline="always")
def _in_a_row(data: np.ndarray, starts: np.ndarray, ends: np.ndarray, hashes: np.ndarray, chars: np.ndarray,
              count: int, run: int, min_chars: int) -> bool:  # pragma: no cover - compiled
    """Some item of at least ``min_chars`` characters ``run`` times in a row."""
    k = 0
    while k + run <= count:
        if chars[k] >= min_chars:
            j = 1
            while j < run and hashes[k + j] == hashes[k] and _same(data, starts[k], ends[k], starts[k + j], ends[k + j]):
                j += 1
            if j == run:
                return True
        k += 1
    return False


@numba.njit(inline="always")
def _loop(data: np.ndarray, starts: np.ndarray, ends: np.ndarray, hashes: np.ndarray, chars: np.ndarray,
          everything: np.ndarray, count: int, run: int, min_chars: int) -> bool:  # pragma: no cover - compiled
    if count - run + 2 <= 1 or _repeats(data, starts, ends, hashes, everything, count) < run - 1:
        return False
    return (_in_a_row(data, starts, ends, hashes, chars, count, run, min_chars)
            or _in_a_row(data, starts, ends, hashes, chars, count, 2 * run, 1))


# the bracket counts, in this order: ( and （, ) and ）, [, ], {, }
BRACKETS = ("opens_round", "closes_round", "opens_square", "closes_square", "opens_curly", "closes_curly")
_BRACKET_OF = {ord("("): 0, 0xFF08: 0, ord(")"): 1, 0xFF09: 1, ord("["): 2, ord("]"): 3, ord("{"): 4, ord("}"): 5}


@numba.njit(nogil=True, cache=True)
def _answer_stats(words: np.ndarray, offs: np.ndarray, table: np.ndarray, bracket_of: np.ndarray, min_chars: int,
                  min_run: int, min_para_run: int, n_long: np.ndarray, dup_long: np.ndarray, line_loop: np.ndarray,
                  para_loop: np.ndarray, marks: np.ndarray, brackets: np.ndarray, lo: int,
                  hi: int) -> None:  # pragma: no cover - compiled
    data = words.view(np.uint8)
    for r in range(lo, hi):
        s, e = offs[r], offs[r + 1]
        i = s
        while i < e:
            cp, i = next_char(data, i)
            c = table[cp]
            if c & SYMBOL:
                marks[r, 0] += 1
            elif c & NUMBER:
                marks[r, 1] += 1
            elif c & PUNCT:
                marks[r, 2] += 1
            if bracket_of[cp] >= 0:
                brackets[r, bracket_of[cp]] += 1
        cap = 1
        for i in range(s, e):
            if data[i] == 10:
                cap += 1
        starts = np.empty(cap, np.int64)
        ends = np.empty(cap, np.int64)
        hashes = np.empty(cap, np.uint64)
        chars = np.empty(cap, np.int64)
        # lines: the pieces between newlines that are not blank
        count = 0
        a = s
        for i in range(s, e + 1):
            if i == e or data[i] == 10:
                c = _trimmed_chars(data, a, i)
                if c > 0:
                    starts[count], ends[count], chars[count] = a, i, c
                    hashes[count] = hash_span(words, a, i - a)
                    count += 1
                a = i + 1
        long_ = chars[:count] >= min_chars
        n_long[r] = long_.sum()
        dup_long[r] = _repeats(data, starts, ends, hashes, long_, count)
        everything = np.ones(count, np.bool_)
        line_loop[r] = _loop(data, starts, ends, hashes, chars, everything, count, min_run, min_chars)
        # paragraphs: split where a newline is followed by whitespace holding another newline (the regex
        # \n\s*\n, leftmost first and greedy: the separator runs to the last newline of that whitespace)
        count = 0
        a = s
        i = s
        while True:
            p = i
            while p < e and data[p] != 10:
                p += 1
            q = -1
            j = p + 1
            while j < e and _is_ws(data[j]):
                if data[j] == 10:
                    q = j
                j += 1
            if p >= e or q < 0:
                if p >= e:
                    end = e
                else:
                    i = j  # no second newline in this whitespace: the next separator starts after it
                    continue
            else:
                end = p
            c = _trimmed_chars(data, a, end)
            if c > 0:
                starts[count], ends[count], chars[count] = a, end, c
                hashes[count] = hash_span(words, a, end - a)
                count += 1
            if end == e:
                break
            a = q + 1
            i = q + 1
        everything = np.ones(count, np.bool_)
        para_loop[r] = _loop(data, starts, ends, hashes, chars, everything, count, min_para_run, min_chars)


@functools.lru_cache(maxsize=1)
def _bracket_table() -> np.ndarray:
    """Per code point, its place in :data:`BRACKETS` (-1: not a bracket); made once per process, not per page."""
    table = np.full(0x110000, -1, np.int8)
    for cp, k in _BRACKET_OF.items():
        table[cp] = k
    return table


def answer_stats(texts: pa.Array | pa.ChunkedArray, min_chars: int, min_run: int, min_para_run: int) -> dict[str, pa.Array]:
    """Per text (see the module docstring): ``n_long_lines``, ``dup_long_lines``, ``line_loop``, ``para_loop``,
    ``n_sym``, ``n_dig``, ``n_pun`` and the :data:`BRACKETS` counts; NULL where the text is NULL."""
    arr = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
    n = len(arr)
    offs, words = text_words(arr, pad=8)
    out = {"n_long_lines": np.zeros(n, np.int64), "dup_long_lines": np.zeros(n, np.int64),
           "line_loop": np.zeros(n, np.bool_), "para_loop": np.zeros(n, np.bool_)}
    marks = np.zeros((n, 3), np.int64)
    brackets = np.zeros((n, len(BRACKETS)), np.int64)
    if n:
        table = char_classes()
        ranges_in_threads(lambda lo, hi: _answer_stats(
            words, offs, table, _bracket_table(), min_chars, min_run, min_para_run, out["n_long_lines"], out["dup_long_lines"],
            out["line_loop"], out["para_loop"], marks, brackets, lo, hi), offs[1:], 2)
    out.update(n_sym=marks[:, 0], n_dig=marks[:, 1], n_pun=marks[:, 2])
    out.update({name: brackets[:, k] for k, name in enumerate(BRACKETS)})
    mask = arr.is_null().to_numpy(zero_copy_only=False) if arr.null_count else None
    return {k: pa.array(v, mask=mask) for k, v in out.items()}
