"""The compiled shingler gives the SQL's shingle lists exactly (same tokens, same n-grams, DuckDB's hash)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from curation.dedup.minhash import MinHashParams, shingles_query
from curation.dedup.shingles import shingle_lists
from curation.textscan import (
    IS_CJK,
    LETTER,
    NUMBER,
    PAIRED,
    PUNCT,
    SYMBOL,
    WORD,
    WORD_QUOTE,
    char_classes,
)
from tests.conftest import sample_texts

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample"

# each line exercises a rule of the SQL: short texts, CJK inside and after a word token, a Han-script symbol
# that is no letter (U+2E80), full-width letters, combining marks, emoji, other scripts' digits, no-break and
# em spaces, title-case and dotted capitals that lower() changes, a text without tokens, NULL
EDGE = [
    "", " ", "a", "a b", "a b c", "Hello, World! 123 foo_bar", "中", "中文", "中文字", "abc中文def", "中abc文",
    "⺀⺁中文字", "abc⺀def", "ＡＢＣ全角文字", "Ünïcödé façade naïve", "emoji 😀 test 😀😀 ok", "日本語のテキストです",
    "한국어 텍스트입니다", "mixed 中文 and english words here", "x" * 100, "word " * 50, "\u00a0nbsp\u2003em",
    "İstanbul ΣΊΣΥΦΟΣ", "ǅ titlecase", "a\u0301e\u0301", "١٢٣ arabic digits ٤٥", "!!! ??? ...", None,
]


def _sample_texts() -> list[str]:
    texts = sample_texts(("instruction", "input", "output"), joined=True)
    for line in (SAMPLE / "dialogues_sharegpt.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            turns = json.loads(line).get("conversations") or []
        except (json.JSONDecodeError, AttributeError):
            continue
        texts.append("\n".join(str(t.get("value") or "") for t in turns if isinstance(t, dict)))
    return texts


def _both(texts: list[str | None], p: MinHashParams) -> tuple[pa.ListArray, pa.ListArray, pa.Array]:
    con = duckdb.connect()
    table = pa.table({"text": pa.array(texts, pa.string()), "k": [f"row-{i}" for i in range(len(texts))]})
    con.register("t", table)
    src = "(SELECT k, coalesce(text, '') AS text FROM t)"
    sql = con.sql(f"SELECT shingles FROM ({shingles_query(src, 'text', p, 'k')})").to_arrow_table()
    low = con.sql("SELECT lower(coalesce(text, '')) AS l FROM t").to_arrow_table()
    con.close()
    ours = shingle_lists(low.column("l"), table.column("k"), p.word_ngram, p.char_ngram, p.cjk_share)
    return sql.column("shingles").combine_chunks(), ours, low.column("l").combine_chunks()


@pytest.mark.parametrize(
    "p",
    [
        MinHashParams(),
        MinHashParams(word_ngram=1, char_ngram=1),
        MinHashParams(word_ngram=2, char_ngram=5),
        MinHashParams(cjk_share=0.0),
        MinHashParams(cjk_share=1.0),
    ],
    ids=["default", "n1", "n2-5", "share0", "share1"],
)
def test_compiled_shingles_equal_the_sql_on_edge_cases(p: MinHashParams) -> None:
    sql, ours, _ = _both(EDGE, p)
    for i, text in enumerate(EDGE):
        assert ours[i].as_py() == sql[i].as_py(), repr(text)


def test_compiled_shingles_equal_the_sql_on_the_bundled_data_in_both_scripts() -> None:
    texts = _sample_texts()
    sql, ours, low = _both(texts, MinHashParams())
    assert ours.equals(sql)
    # the data covers both rules: texts shingled by characters (Chinese) and by words
    table = char_classes()
    cjk = sum(1 for t in low.to_pylist() if sum(bool(table[ord(c)] & IS_CJK) for c in t) > len(t) / 3)
    assert cjk > 50 and len(texts) - cjk > 1000


def test_class_table_follows_the_regular_expressions() -> None:
    table = char_classes()
    word = WORD | WORD_QUOTE
    assert table[ord("a")] == word | LETTER and table[ord("7")] == word | NUMBER and table[ord("_")] == word | PUNCT
    assert table[ord("'")] == WORD_QUOTE | PUNCT and table[ord("’")] == PUNCT
    assert table[ord("中")] == word | IS_CJK | LETTER | PAIRED and table[ord("ア")] & PAIRED
    assert table[ord("한")] == word | IS_CJK | LETTER  # Hangul: CJK for the shingles, not paired by quality
    assert table[0x2E80] == IS_CJK | PAIRED | SYMBOL  # a Han radical: CJK script, a symbol, not a letter
    assert table[ord(" ")] == 0 and table[ord("!")] == PUNCT and table[ord("é")] == word | LETTER
    assert table[ord("$")] == SYMBOL and table[ord("½")] == word | NUMBER and table[ord("（")] == PUNCT


def test_a_text_without_tokens_gets_a_shingle_of_its_own_key() -> None:
    low = pa.array(["!!!", "???", "", "!!!"])
    got = shingle_lists(low, pa.array(["a", "b", "c", "a"]), 3, 3, 0.3).to_pylist()
    con = duckdb.connect()
    want = [con.execute("SELECT hash(chr(0) || ?)", [k]).fetchone()[0] for k in "abca"]
    con.close()
    assert got == [[w] for w in want]
    assert len(set(want)) == 3


def test_mismatched_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="2 texts but 1 keys"):
        shingle_lists(pa.array(["a", "b"]), pa.array(["k"]), 3, 3, 0.3)


def test_chunked_sliced_and_null_texts_are_read_as_one_column() -> None:
    texts = ["the quick brown fox jumps", None, "中文的句子在这里", "over the lazy dog", "", "a b"]
    whole = pa.array([t or "" for t in texts])
    keys = pa.array([f"k{i}" for i in range(len(texts))])
    want = shingle_lists(whole, keys, 3, 3, 0.3).to_pylist()
    sliced = pa.array(["padding before the slice", *texts[:3]]).slice(1)
    assert sliced.offset == 1
    chunked = pa.chunked_array([sliced, pa.array([], pa.string()), pa.array(texts[3:])])
    assert shingle_lists(chunked, pa.chunked_array([keys.slice(0, 2), keys.slice(2)]), 3, 3, 0.3).to_pylist() == want
    assert shingle_lists(pa.array(texts, pa.large_string()), keys, 3, 3, 0.3).to_pylist() == want
