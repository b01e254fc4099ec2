"""Unicode normalisation of a page of text with Arrow, only where it changes something.

Arrow's ``utf8_normalize`` (utf8proc) rewrites every string it is given, at about 150 MB/s, and most strings
of instruction data are in NFC and NFKC already (English, and Chinese with nothing but ideographs and the
common punctuation). :func:`normalize` hands it only the strings that may change: not ASCII, and not in the
form by Python's quick check (``unicodedata.is_normalized``, several times faster), or holding a code point
that Python's Unicode data does not have (Arrow's is newer: Unicode's stability policy keeps a character's
normalisation once it is assigned, so for the others both agree). The result is Arrow's, string for string.
"""

from __future__ import annotations

import functools
import unicodedata

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def normalize(a: pa.Array, form: str) -> pa.Array:
    """``pc.utf8_normalize(a, form)``, computed only for the strings it may change (see the module docstring)."""
    need = may_change(a, form)
    if not need.any():
        return a
    mask = pa.array(need)
    return pc.replace_with_mask(a, mask, pc.utf8_normalize(a.filter(mask), form=form).cast(a.type))


def may_change(a: pa.Array, form: str) -> np.ndarray:
    """Per string of ``a``, whether ``utf8_normalize(form)`` may change it (False for nulls)."""
    need = np.zeros(len(a), dtype=bool)
    wide = np.flatnonzero(~pc.fill_null(pc.string_is_ascii(a), True).to_numpy(zero_copy_only=False))
    if not len(wide):
        return need
    sub = a.take(pa.array(wide))
    quick = unicodedata.is_normalized
    need[wide] = np.array([not quick(form, s) for s in sub.to_pylist()], dtype=bool)
    need[wide] |= pc.fill_null(pc.match_substring_regex(sub, unknown_to_python()), False).to_numpy(zero_copy_only=False)
    return need


@functools.lru_cache(maxsize=1)
def unknown_to_python() -> str:
    """An RE2 class of the code points unassigned in Python's Unicode data (0.2 s, once per process)."""
    cps = np.array([cp for cp in range(0x110000) if unicodedata.category(chr(cp)) == "Cn"], dtype=np.int64)
    starts = cps[np.r_[True, np.diff(cps) > 1]]
    ends = cps[np.r_[np.diff(cps) > 1, True]]
    return "[" + "".join(f"\\x{{{lo:X}}}-\\x{{{hi:X}}}" for lo, hi in zip(starts.tolist(), ends.tolist())) + "]"
