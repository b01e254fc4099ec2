"""Optional personal-data redaction: e-mail addresses, phone numbers, resident IDs and card numbers are
replaced by placeholders in every text field and turn. Writes a new text version (the original stays).

Candidates are found with the same patterns as the ``personal_data`` quality rule; ID and card numbers
are replaced only when their checksum holds. Rows without a candidate are not touched by Python.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from curation.pipeline.base import TEXT_FIELDS, RowStep, StepOutput
from curation.pipeline.pii import (
    CARD,
    CN_ID,
    EMAIL,
    PHONE,
    valid_card,
    valid_cn_id,
)
from curation.pipeline.text import text_versions

Kind = Literal["email", "phone", "cn_id", "card"]


class RedactParams(BaseModel):
    """Redaction parameters."""

    model_config = ConfigDict(extra="forbid")

    kinds: list[Kind] = ["email", "phone", "cn_id", "card"]
    placeholders: dict[str, str] = Field(
        default_factory=lambda: {"email": "[EMAIL]", "phone": "[PHONE]", "cn_id": "[ID_NUMBER]", "card": "[CARD_NUMBER]"},
        description="Replacement text per kind.")


def _py(pattern: str) -> re.Pattern[str]:
    """The RE2 pattern for Python's re (\\x{..} -> \\x..)."""
    # re.ASCII: \b and \d as RE2 reads them (Python's Unicode \b sees no boundary between 号 and a digit)
    return re.compile(re.sub(r"\\x\{([0-9A-Fa-f]+)\}", lambda m: f"\\U{int(m.group(1), 16):08x}", pattern), re.ASCII)


# order matters: IDs and cards (checked) before phone numbers, whose pattern can match inside them
_PATTERNS: list[tuple[str, re.Pattern[str], object]] = [
    ("email", _py(EMAIL), None),
    ("cn_id", _py(CN_ID), valid_cn_id),
    ("card", _py(CARD), valid_card),
    ("phone", _py(PHONE), None),
]
_IN_DECIMAL = re.compile(r"\d\.$")
_ANY = "|".join(f"(?:{p})" for p in (EMAIL, CN_ID, CARD, PHONE))


class RedactStep(RowStep):
    """Replace personal data with placeholders; a sample whose text changes gets a new text version."""

    type_name = "redact_pii"
    Params = RedactParams

    def redact(self, text: str | None, counts: Counter[str]) -> str | None:
        """One string with its personal data replaced (counting replacements per kind)."""
        if not text:
            return text
        ph = self.params.placeholders
        for kind, pat, check in _PATTERNS:
            if kind not in self.params.kinds:
                continue

            def sub(m: re.Match[str], kind: str = kind, check=check, text: str = text) -> str:  # noqa: ANN001
                if check is not None and not check(m.group(0)):
                    return m.group(0)
                if kind == "card" and _IN_DECIMAL.match(text, max(0, m.start() - 2), m.start()):
                    return m.group(0)  # the digits of a decimal fraction (3.4111111111111111), not a card
                counts[kind] += 1
                return ph.get(kind, f"[{kind.upper()}]")

            text = pat.sub(sub, text)
        return text

    def _column(self, col: pa.Array, counts: Counter[str]) -> tuple[pa.Array, np.ndarray]:
        """A redacted copy of a string column and the indices of the strings that changed."""
        cand = np.flatnonzero(pc.fill_null(pc.match_substring_regex(col, _ANY), False).to_numpy(zero_copy_only=False))
        if not len(cand):
            return col, cand
        values = col.to_pylist()
        hit = []
        for i in cand:
            new = self.redact(values[i], counts)
            if new != values[i]:
                values[i] = new
                hit.append(i)
        return pa.array(values, pa.string()), np.asarray(hit, dtype=np.int64)

    def process(self, batch: pa.Table) -> StepOutput:
        counters: Counter[str] = Counter()
        changed = np.zeros(batch.num_rows, dtype=bool)
        cols = {}
        for f in TEXT_FIELDS:
            cols[f], hit = self._column(batch.column(f).combine_chunks(), counters)
            changed[hit] = True
        msgs = batch.column("messages").combine_chunks()
        parents = pc.list_parent_indices(msgs).to_numpy(zero_copy_only=False)
        turn_cols = {}
        for k in ("content", "reasoning"):
            turn_cols[k], hit = self._column(msgs.flatten().field(k), counters)
            changed[parents[hit]] = True
        counters["changed"] = int(changed.sum())
        if not changed.any():
            return StepOutput(counters=counters)
        return StepOutput(texts=text_versions(batch, cols, turn_cols, changed), counters=counters)
