"""Cleaning: broken-encoding repair (ftfy), Unicode NFKC, control characters, whitespace. Writes text versions.

Vectorised with pyarrow compute over whole columns (and over the turns of dialogues); ftfy, which is
per string, runs only on the few strings that look like mojibake.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from curation.normalize import may_change, normalize
from curation.pipeline.base import TEXT_FIELDS, RowStep, StepOutput
from curation.pipeline.text import text_versions
from curation.text_flags import MOJIBAKE_FOLLOW, MOJIBAKE_LEAD
from curation.threads import thread_map

SLICE_MIN_ROWS = 5000  # a page is cleaned in slices of at least this many rows, one per core

# Latin-1 / cp1252 read of UTF-8 bytes: 'Ã©' for 'é', 'â€œ' for '“', 'Ã¤', 'Â ' ...
MOJIBAKE = MOJIBAKE_LEAD + MOJIBAKE_FOLLOW
ANSI_ESCAPE = r"\x1b\[[0-9;?]*[ -/]*[@-~]"
# C0 controls except tab and newline (carriage returns are handled as line breaks), DEL, C1 controls.
CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x{80}-\x{9f}]"


class CleanParams(BaseModel):
    """Which cleaning rules run."""

    model_config = ConfigDict(extra="forbid")

    fix_encoding: bool = Field(default=True, description="Repair mojibake with ftfy.fix_encoding.")
    nfkc: bool = Field(default=True, description="Unicode NFKC normalisation (full-width forms, ligatures, ...).")
    keep_cjk_punctuation: bool = Field(
        default=True, description="Keep Chinese full-width punctuation (，！？：；（）) that NFKC would make ASCII."
    )
    control_chars: bool = Field(default=True, description="Remove control characters and ANSI escapes; keep newline and tab.")
    whitespace: bool = Field(
        default=True,
        description="CRLF/CR to LF, no trailing spaces on lines, at most one blank line in a row, trimmed ends.",
    )


def _fix_encoding(a: pa.Array) -> pa.Array:
    import ftfy

    cand = pc.fill_null(pc.match_substring_regex(a, MOJIBAKE), False)
    idx = np.flatnonzero(cand.to_numpy(zero_copy_only=False))
    if not len(idx):
        return a
    values = a.to_pylist()
    for i in idx:
        values[i] = ftfy.fix_encoding(values[i])
    return pa.array(values, pa.string())


# NFKC maps full-width punctuation to ASCII, which would turn Chinese "，？：" into ",?:". These are kept
# (protected by private-use stand-ins around the normalisation); full-width letters and digits still fold.
CJK_PUNCTUATION = "，！？：；（）"
_PROTECT = {c: chr(0xF0000 + i) for i, c in enumerate(CJK_PUNCTUATION)}


# Strings made only of these characters are left unchanged by NFKC (with the protected punctuation kept):
# ASCII, CJK unified ideographs, NFKC-stable CJK symbols and punctuation, and the protected full-width marks.
# Only the other strings are normalised, which skips nearly all English and Chinese text.
_STABLE_SET = r"\x00-\x7f\x{4E00}-\x{9FFF}\x{3001}-\x{3035}\x{303B}-\x{303E}" + CJK_PUNCTUATION
NFKC_STABLE = f"^[{_STABLE_SET}]*$"
# What the other rules look for; a string without a match is left as it is.
NEEDS_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x{80}-\x{9f}]"
NEEDS_WHITESPACE = r"\r|[ \t]\n|\n\n\n|^\s|\s$"
# A string that none of these match is left unchanged by every rule (each rule changes only what its own check
# matches: a character outside the NFKC-stable set, or ASCII with nfkc without keep_cjk_punctuation, mojibake,
# a control character, spacing): one pass finds the few strings the rules need to see.
NEEDS_NFKC = f"[^{_STABLE_SET}]"
NEEDS_NFKC_ALL = r"[^\x00-\x7f]"


def _where(a: pa.Array, needs: pa.Array, fn: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """Apply ``fn`` only to the strings where ``needs`` is true."""
    needs = pc.fill_null(needs, False)
    if not pc.any(needs).as_py():
        return a
    return pc.replace_with_mask(a, needs, fn(a.filter(needs)).cast(a.type))


def _nfkc_keep_cjk_punctuation(a: pa.Array) -> pa.Array:
    return _where(a, pc.invert(pc.match_substring_regex(a, NFKC_STABLE)), _nfkc_protected)


def _nfkc_protected(a: pa.Array) -> pa.Array:
    protected = a
    for c, stand_in in _PROTECT.items():
        protected = pc.replace_substring(protected, pattern=c, replacement=stand_in)
    # only the strings NFKC may change (most with a character outside NFKC_STABLE are in NFKC already: curly
    # quotes, accented letters, emoji); a string that holds a stand-in already comes back with the punctuation
    # instead, so it goes through as well
    need = may_change(protected, "NFKC") | _matches(a, f"[{''.join(_PROTECT.values())}]")
    if not need.any():
        return a
    mask = pa.array(need)
    done = pc.utf8_normalize(protected.filter(mask), form="NFKC")
    for c, stand_in in _PROTECT.items():
        done = pc.replace_substring(done, pattern=stand_in, replacement=c)
    return pc.replace_with_mask(a, mask, done)


def _nfkc(a: pa.Array) -> pa.Array:
    return _where(a, pc.invert(pc.string_is_ascii(a)), lambda x: normalize(x, "NFKC"))


def _matches(a: pa.Array, regex: str) -> np.ndarray:
    return pc.fill_null(pc.match_substring_regex(a, regex), False).to_numpy(zero_copy_only=False)


def _control(a: pa.Array) -> pa.Array:
    return _where(a, pc.match_substring_regex(a, NEEDS_CONTROL), _control_all)


def _control_all(a: pa.Array) -> pa.Array:
    a = pc.replace_substring_regex(a, pattern=ANSI_ESCAPE, replacement="")
    return pc.replace_substring_regex(a, pattern=CONTROL, replacement="")


def _whitespace(a: pa.Array) -> pa.Array:
    return _where(a, pc.match_substring_regex(a, NEEDS_WHITESPACE), _whitespace_all)


def _whitespace_all(a: pa.Array) -> pa.Array:
    a = pc.replace_substring_regex(a, pattern=r"\r\n?", replacement="\n")
    a = pc.replace_substring_regex(a, pattern=r"[ \t]+\n", replacement="\n")
    a = pc.replace_substring_regex(a, pattern=r"\n{3,}", replacement="\n\n")
    return pc.utf8_trim_whitespace(a)


def _changed(old: pa.Array, new: pa.Array) -> np.ndarray:
    return pc.fill_null(pc.not_equal(old, new), False).to_numpy(zero_copy_only=False)


class CleanStep(RowStep):
    """Clean every text field and every turn; a sample whose text changes gets a new text version."""

    type_name = "clean"
    Params = CleanParams

    def _rules(self) -> list[tuple[str, Callable[[pa.Array], pa.Array]]]:
        p = self.params
        nfkc = _nfkc_keep_cjk_punctuation if p.keep_cjk_punctuation else _nfkc
        rules = [("fix_encoding", _fix_encoding, p.fix_encoding), ("nfkc", nfkc, p.nfkc),
                 ("control_chars", _control, p.control_chars), ("whitespace", _whitespace, p.whitespace)]
        return [(n, f) for n, f, on in rules if on]

    def _needs(self) -> str:
        """A regex that every string some rule would change matches (see NEEDS_NFKC)."""
        p = self.params
        parts = [(MOJIBAKE, p.fix_encoding), (NEEDS_NFKC if p.keep_cjk_punctuation else NEEDS_NFKC_ALL, p.nfkc),
                 (NEEDS_CONTROL, p.control_chars), (NEEDS_WHITESPACE, p.whitespace)]
        return "|".join(f"(?:{rx})" for rx, on in parts if on)

    def process(self, batch: pa.Table) -> StepOutput:
        # slices of the page in threads, one per core: the rules are Arrow kernels, which release the GIL, and a
        # row's cleaning does not depend on another row's
        threads = min(os.cpu_count() or 1, max(1, batch.num_rows // SLICE_MIN_ROWS))
        if threads < 2:
            return self._process(batch)
        size = -(-batch.num_rows // threads)
        outs = thread_map(self._process, [batch.slice(k, size) for k in range(0, batch.num_rows, size)])
        counters: Counter[str] = Counter()
        for o in outs:
            counters.update(o.counters)
        texts = [o.texts for o in outs if o.texts is not None]
        return StepOutput(texts=pa.concat_tables(texts) if texts else None, counters=counters)

    def _process(self, batch: pa.Table) -> StepOutput:
        n = batch.num_rows
        counters: Counter[str] = Counter()
        any_changed = np.zeros(n, dtype=bool)
        cols = {f: batch.column(f).combine_chunks() for f in TEXT_FIELDS}
        msgs = batch.column("messages").combine_chunks()
        flat = msgs.flatten()
        parents = pc.list_parent_indices(msgs).to_numpy(zero_copy_only=False)
        turn_cols = {k: flat.field(k) for k in ("content", "reasoning")}
        rules = self._rules()
        hits = {rule: np.zeros(n, dtype=bool) for rule, _ in rules}
        needs = self._needs()
        # per column, the rules run on the strings they may change (one regex pass finds them), which are then
        # put back in place: on real data most strings need nothing, and a pass of each rule over every string was
        # half of the step
        for name, column, owner in [*((f, cols, None) for f in TEXT_FIELDS), *((k, turn_cols, parents) for k in turn_cols)]:
            a = column[name]
            if not rules or not len(a):
                continue
            mask = pc.fill_null(pc.match_substring_regex(a, needs), False)
            at = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
            if not len(at):
                continue
            sub = a.take(pa.array(at))
            rows = at if owner is None else owner[at]
            for rule, fn in rules:
                new = fn(sub)
                ch = _changed(sub, new)
                if ch.any():
                    hits[rule][rows[ch]] = True
                sub = new
            column[name] = pc.replace_with_mask(a, mask, sub.cast(a.type))
        for rule, _ in rules:
            counters[rule] += int(hits[rule].sum())
            any_changed |= hits[rule]
        counters["changed"] = int(any_changed.sum())
        if not any_changed.any():
            return StepOutput(counters=counters)
        return StepOutput(texts=text_versions(batch, cols, turn_cols, any_changed), counters=counters)
