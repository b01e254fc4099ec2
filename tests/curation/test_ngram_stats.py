"""Gopher's repetition statistics (curation/ngram_stats.py) against a plain Counter reference, on real text
(the bundled sample's answers) and on loops, ties and short rows."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa

from curation.ngram_stats import ngram_stats
from tests.conftest import sample_texts

TOKENS = re.compile(r"[\u4e00-\u9fff]{1,2}|[^\W\u4e00-\u9fff]+")


def _reference(tok: list[str], min_top: int, min_dup: int) -> dict:
    chars = sum(len(t) for t in tok)
    out = {"n_tok": len(tok), "tok_chars": chars}
    for n in (2, 3, 4, 5):
        grams = [tuple(tok[k:k + n]) for k in range(len(tok) - n + 1)]
        if len(tok) < (min_top if n < 5 else min_dup):
            out[f"top{n}" if n < 5 else "dup5"] = math.nan
        elif n == 5:
            out["dup5"] = 1 - len(set(grams)) / max(len(grams), 1)
        else:
            (gram, count), = Counter(grams).most_common(1)  # ties: the first seen
            out[f"top{n}"] = count * sum(len(t) for t in gram) / max(chars, 1)
    return out


def _rows() -> list[list[str]]:
    sample = Path(__file__).resolve().parents[2] / "data" / "sample" / "instructions.jsonl"
    texts = []
    for line in sample.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:  # the sample keeps bad rows on purpose
            continue
        if isinstance(row, dict) and isinstance(row.get("output"), str):
            texts.append(row["output"])
    rows = [TOKENS.findall(t.lower()) for t in texts[:400]]
    rows += [["the", "cat", "sat"] * 60, ["a", "b"] * 100 + ["c", "d"] * 100,  # a loop; two tied 2-grams
             ["x"] * 3, [], ["猫", "在", "垫子", "上"] * 50, [str(k) for k in range(300)]]
    return rows


def test_statistics_match_a_counter_reference() -> None:
    rows = _rows()
    got = ngram_stats(pa.array(rows + [None], pa.list_(pa.string())), 20, 10)
    assert math.isnan(got["top2"][-1]) and got["n_tok"][-1] == 0  # a missing answer
    judged = 0
    for k, tok in enumerate(rows):
        ref = _reference(tok, 20, 10)
        for name, value in ref.items():
            g = got[name][k]
            assert (math.isnan(value) and math.isnan(g)) or math.isclose(g, value, rel_tol=1e-12), (k, name, g, value, tok[:20])
        judged += not math.isnan(ref["top2"])
    assert judged > 100
    # the loop is caught; two tied 2-grams: the first seen ("a b", 2 chars), not the later one
    loop = ngram_stats(pa.array([rows[400]], pa.list_(pa.string())), 20, 10)
    assert loop["top3"][0] > 0.9 and loop["dup5"][0] > 0.9
    assert got["top2"][401] == 100 * 2 / 400


def test_chunked_and_empty_input() -> None:
    empty = ngram_stats(pa.chunked_array([], pa.list_(pa.string())), 5, 5)
    assert len(empty["top2"]) == 0
    chunked = ngram_stats(pa.chunked_array([[["a", "b"] * 10], [["c"] * 30]], pa.list_(pa.string())), 5, 5)
    assert chunked["top2"][1] == 29 * 2 / 30 and chunked["dup5"][1] == 1 - 1 / 26


def test_slices_give_the_same_statistics(monkeypatch) -> None:  # noqa: ANN001
    import numpy as np

    from curation import ngram_stats as mod

    rows = _rows()
    arr = pa.array(rows, pa.list_(pa.string()))
    whole = ngram_stats(arr, 20, 10)
    monkeypatch.setattr(mod, "CHUNK_TOKENS", 500)  # many slices, some rows longer than a slice
    sliced = ngram_stats(arr.slice(0), 20, 10)
    for k in whole:
        np.testing.assert_array_equal(whole[k], sliced[k], err_msg=k)
    texts = pa.array([" ".join(r) for r in rows])
    monkeypatch.setattr(mod, "CHUNK_TOKENS", 1 << 21)
    one = mod.text_ngram_stats(texts, 20, 10)
    monkeypatch.setattr(mod, "CHUNK_TOKENS", 500)
    many = mod.text_ngram_stats(texts, 20, 10)
    for k in one:
        np.testing.assert_array_equal(one[k], many[k], err_msg=k)


def _answers() -> list[str]:
    # RE2's leftmost-first alternation: CJK in pairs unless a word run has started (then it continues through
    # them), a Han radical that is no letter (U+2E80) still paired, Hangul in word runs, apostrophes in words
    return sample_texts(("output", "instruction")) + ["abc中文def 中abc文 ⺀⺁中文字 abc⺀def", "한국어 텍스트입니다 don't 'quoted' it’s", "ΣΊΣΥΦΟΣ a\u0301e\u0301 😀", ""]


def test_compiled_tokens_are_the_quality_queries_tokens() -> None:
    import duckdb

    from curation.duck import sql_literal
    from curation.ngram_stats import text_ngram_stats, text_tokens
    from curation.pipeline.steps.quality import TOKENS as SQL_TOKENS

    texts = _answers()
    con = duckdb.connect()
    con.register("t", pa.table({"text": texts}))
    want = con.sql(f"SELECT regexp_extract_all(lower(text), {sql_literal(SQL_TOKENS)}) AS tok FROM t").to_arrow_table()
    low = con.sql("SELECT lower(text) AS l FROM t").to_arrow_table().column("l")
    con.close()
    offsets, hashes, chars, spans = text_tokens(low, spans=True)
    raw = "".join(low.to_pylist()).encode()
    got = [[raw[a:b].decode() for a, b in spans[offsets[r]:offsets[r + 1]]] for r in range(len(texts))]
    assert got == want.column("tok").to_pylist()
    flat = [t for row in got for t in row]
    assert chars.tolist() == [len(t) for t in flat]
    assert len(set(zip(flat, hashes.tolist()))) == len(set(flat)) == len(set(hashes.tolist()))  # equal iff equal text
    # the same statistics as from the token strings (the quality step's numbers do not change)
    a, b = ngram_stats(want.column("tok"), 20, 10), text_ngram_stats(low, 20, 10)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert np.isfinite(b["top2"]).sum() > 500
