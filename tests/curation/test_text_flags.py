"""The compiled text flags against the regular expressions the quality step ran for them (RE2 in DuckDB):
exactly what ``non_printable`` and ``mojibake`` match, and every text the personal-data patterns find anything in."""

from __future__ import annotations

import random

import duckdb
import numpy as np
import pyarrow as pa

from curation.duck import sql_literal
from curation.pipeline.pii import CARD_IN_TEXT, CN_ID, CREDENTIAL, PHONE
from curation.text_flags import CONTROL, MOJIBAKE, MOJIBAKE_SEEN, NON_PRINTABLE, NUMBER_OR_KEY, text_flags
from tests.conftest import sample_texts

PII = "|".join(f"(?:{p})" for p in (PHONE, CN_ID, CARD_IN_TEXT, CREDENTIAL))


def regex_flags(texts: list[str | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    con = duckdb.connect()
    try:
        con.register("t", pa.table({"i": range(len(texts)), "x": pa.array(texts, pa.string())}))
        rows = con.execute(f"""SELECT coalesce(regexp_matches(x, {sql_literal(NON_PRINTABLE)}), false),
                                      coalesce(regexp_matches(x, {sql_literal(MOJIBAKE)}), false),
                                      coalesce(regexp_matches(x, {sql_literal(PII)}), false)
                               FROM t ORDER BY i""").fetchall()
    finally:
        con.close()
    return tuple(np.array([r[k] for r in rows], np.bool_) for k in range(3))


def check(texts: list[str | None], flags: np.ndarray) -> None:
    control, mojibake, pii = regex_flags(texts)
    got_control, got_mojibake = (flags & CONTROL) > 0, (flags & MOJIBAKE_SEEN) > 0
    assert [t for t, a, b in zip(texts, control, got_control) if a != b] == []
    assert [t for t, a, b in zip(texts, mojibake, got_mojibake) if a != b] == []
    # a superset: the pattern runs on the flagged texts only, so none it matches may go unflagged
    assert [t for t, a, b in zip(texts, pii, (flags & NUMBER_OR_KEY) > 0) if a and not b] == []


CRAFTED = [
    None, "", "plain text\twith tab\r\nand lines\n", "bell \x07 here", "vertical \x0b tab", "form \x0c feed", "\x00",
    "del \x7f", "next line \x85 (C1)", "zero\u200bwidth", "\ufeffBOM first", "\u00a0no-break space only",
    "cafÃ© au lait", "â€œquotedâ€\x9d", "Ã at the end Ã", "Ã\n© split by a line", "Â\u00a0", "Ø\u2122", "ÂÃ©",
    "replacement \ufffd char", "a\u2019s curly (fine)", "Ñandú (Spanish, fine)", "Ð\u0161", "â\u20ac\u0153",
    "call 13912345678 now", "电话：139 1234 5678", "+44 20 7946 0958", "(555) 010-4477", "(212)555-0199",
    "415-555-0100", "010-12345678", "ID 11010519491231002X", "card 4111 1111 1111 1111.", "4111-1111-1111-1111",
    "pi 3.14159265358979 (not a card)", "sk-abcdefghijklmnopqrstuvwxyz123", "AKIAIOSFODNN7EXAMPLE", "ghp_" + "a1" * 18,
    "xoxb-1234567890-abc", "AIza" + "B" * 35, 'api_key = "abcdefghijklmnopqrstuvwxyz0123"', "x-sk-abcdefghijklmnopqrstuv1",
    "year 2024-2025, 12 items", "version 1.2.3.4.5.6.7.8.9.10", "+1", "a+1b", "１３９１２３４５６７８ (full-width)",
    "ISBN 978-0-306-40615-7", "1 2 3 4 5 6 7 8 9 0", "12--34--56--78--90", "(1)(2)(3)(4)(5)(6)(7)(8)(9)(0)",
]


def test_crafted_texts_match_the_patterns() -> None:
    flags = text_flags(pa.array(CRAFTED, pa.string()))
    check(CRAFTED, flags)
    assert flags[0] == 0 and flags[CRAFTED.index("cafÃ© au lait")] == MOJIBAKE_SEEN
    assert flags[CRAFTED.index("zero\u200bwidth")] == CONTROL
    assert flags[CRAFTED.index("a\u2019s curly (fine)")] == 0 and flags[CRAFTED.index("year 2024-2025, 12 items")] == 0
    assert flags[CRAFTED.index("call 13912345678 now")] == NUMBER_OR_KEY


def test_random_texts_match_the_patterns() -> None:
    """Texts drawn from the characters the flags turn on (digits and their separators, key characters, mojibake
    leads and followers, control and zero-width characters) and some others, in runs of every length."""
    rng = random.Random(7)
    alphabet = list("0123456789     --()+.xXsk_AIzaKé中") + ["Ã", "Â", "â", "©", "\u20ac", "\u2122", "\u0153", "\x85",
                                                        "\u200b", "\ufeff", "\ufffd", "\x07", "\n", "\t", "\u00a0", "😀"]
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))) for _ in range(4000)]
    texts += ["".join(rng.choice("0123456789 -()") for _ in range(rng.randint(8, 30))) for _ in range(2000)]
    check(texts, text_flags(pa.array(texts, pa.string())))


def test_real_texts_in_chunks_and_slices() -> None:
    """The bundled sample's rows (every field of a row joined, as the quality step reads a sample), in a chunked
    array with a slice and NULLs, over two threads; the superset leaves most texts to skip the pattern."""
    texts: list[str | None] = sample_texts(("instruction", "input", "output"), joined=True)
    texts = texts + [t + "\n\x0b" + "cafÃ©" for t in texts[:50]] + [None] * 3
    arr = pa.array(["head"] + texts, pa.string()).slice(1)
    flags = text_flags(pa.chunked_array([arr.slice(0, 700), arr.slice(700)]))
    check(texts, flags)
    assert ((flags & CONTROL) > 0).sum() >= 50 and ((flags & MOJIBAKE_SEEN) > 0).sum() >= 50
    pii = regex_flags(texts)[2]
    assert pii.any() and ((flags & NUMBER_OR_KEY) > 0).mean() < 0.5
