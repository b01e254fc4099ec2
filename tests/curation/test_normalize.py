"""Normalisation only where it changes something gives Arrow's result string for string."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from curation.normalize import may_change, normalize
from tests.conftest import sample_texts

CRAFTED = ["plain ascii", None, "", "café", "cafe\u0301", "Ｆｕｌｌ ｗｉｄｔｈ １２３", "ﬁ ligature", "中文，标点。",
           "Tiếng Việt", "Tie\u0302\u0301ng Vie\u0323\u0302t", "new in Unicode 16: \U0001ccd6", "emoji 🙂 “quotes”", "\u212b sign"]


def test_normalize_equals_arrow_for_both_forms() -> None:
    texts = pa.array(CRAFTED + sample_texts(("instruction", "output")), pa.string())
    for form in ("NFC", "NFKC"):
        assert normalize(texts, form).to_pylist() == pc.utf8_normalize(texts, form=form).to_pylist(), form
        assert normalize(texts.slice(3, 9), form).to_pylist() == pc.utf8_normalize(texts.slice(3, 9), form=form).to_pylist()
    # what is handed to Arrow: not the ASCII or null strings, nor those Python finds in the form already; a character
    # Python's Unicode data lacks (U+1CCD6, Unicode 16) goes whatever Python says
    need = dict(zip(CRAFTED, may_change(pa.array(CRAFTED, pa.string()), "NFC").tolist()))
    assert not need["plain ascii"] and not need[None] and not need["café"] and not need["中文，标点。"]
    assert need["cafe\u0301"] and need["new in Unicode 16: \U0001ccd6"] and need["\u212b sign"]
    assert not need["Ｆｕｌｌ ｗｉｄｔｈ １２３"]  # in NFC already; NFKC folds it
    assert may_change(pa.array(["Ｆｕｌｌ"], pa.string()), "NFKC").tolist() == [True]
