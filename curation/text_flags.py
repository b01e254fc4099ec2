"""Which texts of a page may hold what three quality rules look for, in one compiled pass over their bytes.

The quality step's ``non_printable`` and ``mojibake`` rules and its personal-data check each ran a regular
expression over every sample's whole text (all its fields joined): three full scans of a page's text, about
0.2 CPU-s each for 50k real samples (100 MB), where few texts hold anything. This loop reads each text once:

- ``CONTROL``: a character of :data:`NON_PRINTABLE` (exact);
- ``MOJIBAKE``: a character of :data:`MOJIBAKE_LEAD` followed by one of :data:`MOJIBAKE_FOLLOW`, or U+FFFD
  (exact: what :data:`MOJIBAKE` matches);
- ``NUMBER_OR_KEY``: the text *may* hold a phone, ID or card number or a credential (a superset of the
  personal-data patterns, whose regular expression then runs on these texts only): ten ASCII digits with at
  most two of ``' ', '-', '(', ')'`` between one and the next, a ``+`` before a digit, or fifteen characters
  of ``[A-Za-z0-9_-]`` in a row (every key pattern needs that many; a quoted key at least 24).

The classes of non-ASCII characters are looked up in a table made by the regular-expression engine the rules
use (RE2 in DuckDB), from the same patterns, so the flags are what the patterns match. Hand-written: no
library scans for several character classes and sequences in one pass over Arrow strings.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
import pyarrow as pa

from curation.textscan import class_table, next_char, string_buffers
from curation.threads import ranges_in_threads

NON_PRINTABLE = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x{80}-\x{9f}\x{200b}\x{feff}]"
MOJIBAKE_LEAD = "[ÂÃÅÆÐÑØâ]"
MOJIBAKE_FOLLOW = (r"[\x{80}-\x{BF}\x{152}\x{153}\x{160}\x{161}\x{178}\x{17D}\x{17E}\x{192}\x{2C6}\x{2DC}"
                   r"\x{2013}\x{2014}\x{2018}-\x{201E}\x{2020}-\x{2022}\x{2026}\x{2030}\x{2039}\x{203A}\x{20AC}\x{2122}]")
MOJIBAKE = f"{MOJIBAKE_LEAD}{MOJIBAKE_FOLLOW}|\\x{{FFFD}}"

CONTROL, MOJIBAKE_SEEN, NUMBER_OR_KEY = 1, 2, 4  # the flags
_C_CONTROL, _C_LEAD, _C_FOLLOW, _C_BAD = 1, 2, 4, 8  # bits of the class table
MIN_DIGITS = 10  # the shortest number the personal-data patterns find (555-123-4567: ten digits)
MIN_KEY_RUN = 15  # the shortest key they find (xoxb- and ten more)


@functools.lru_cache(maxsize=1)
def _classes() -> np.ndarray:
    """One byte per code point: the ``_C_*`` bits, as RE2 in DuckDB matches the patterns above."""
    return class_table({_C_CONTROL: NON_PRINTABLE, _C_LEAD: MOJIBAKE_LEAD, _C_FOLLOW: MOJIBAKE_FOLLOW,
                        _C_BAD: r"\x{FFFD}"})


@numba.njit(nogil=True, cache=True)
def _scan(data, offs, table, base, out, lo, hi):  # noqa: ANN001  # pragma: no cover - compiled
    """``out[base + t] |= flags`` of texts ``t`` = ``lo .. hi - 1`` (bytes ``data[offs[t]:offs[t + 1]]``)."""
    for t in range(lo, hi):
        f = 0
        i, end = offs[t], offs[t + 1]
        digits = 0  # digits of the number going on
        gap = 0  # separators since its last digit
        run = 0  # [A-Za-z0-9_-] in a row
        plus = False  # the last character was "+"
        lead = False  # the last character was a mojibake lead
        while i < end:
            b = data[i]
            if b < 0x80:  # letters first: most bytes are
                lead = False
                if (97 <= b <= 122) or (65 <= b <= 90) or b == 95:
                    run += 1
                    gap = 3
                    plus = False
                elif 48 <= b <= 57:
                    run += 1
                    if plus:
                        f |= NUMBER_OR_KEY
                    digits = digits + 1 if gap <= 2 else 1
                    gap = 0
                    if digits >= MIN_DIGITS:
                        f |= NUMBER_OR_KEY
                    plus = False
                else:
                    run = run + 1 if b == 45 else 0
                    gap = gap + 1 if b == 32 or b == 45 or b == 40 or b == 41 else 3
                    plus = b == 43
                    if table[b] & _C_CONTROL:
                        f |= CONTROL
                if run >= MIN_KEY_RUN:
                    f |= NUMBER_OR_KEY
                i += 1
                continue
            cp, i = next_char(data, i)
            c = table[cp]
            if c & _C_CONTROL:
                f |= CONTROL
            if (lead and c & _C_FOLLOW) or c & _C_BAD:
                f |= MOJIBAKE_SEEN
            lead = (c & _C_LEAD) != 0
            gap = 3
            run = 0
            plus = False
        out[base + t] |= f


def text_flags(texts: pa.Array | pa.ChunkedArray, threads: int = 2) -> np.ndarray:
    """Per text, the flags ``CONTROL | MOJIBAKE_SEEN | NUMBER_OR_KEY`` (``uint8``; 0 for NULL), read in place."""
    out = np.zeros(len(texts), np.uint8)
    table = _classes()
    start = 0
    for c in texts.chunks if isinstance(texts, pa.ChunkedArray) else [texts]:
        n = len(c)
        if n:
            offs, data = string_buffers(c)
            ranges_in_threads(lambda lo, hi: _scan(data, offs, table, start, out, lo, hi), offs[1:] - offs[0], threads)
        start += n
    return out
