"""The cleaning step on crafted text: each rule, counted, and dialogues turn by turn."""

from __future__ import annotations

import pyarrow as pa

from curation.pipeline.base import MESSAGE_TYPE
from curation.pipeline.steps.clean import CleanStep


def batch(rows: list[dict]) -> pa.Table:
    cols = {k: [r.get(k) for r in rows] for k in ("sample_id", "shape", "instruction", "input", "output", "system", "reasoning")}
    return pa.table({
        **{k: pa.array(v, pa.string()) for k, v in cols.items()},
        "batch_id": pa.array([1] * len(rows), pa.int32()),
        "row_number": pa.array(range(1, len(rows) + 1), pa.int64()),
        "messages": pa.array([r.get("messages") for r in rows], MESSAGE_TYPE),
    })


def test_each_rule_and_its_count() -> None:
    rows = [
        {"sample_id": "a", "shape": "alpaca", "instruction": "Ｗｈａｔ ｉｓ ２＋２？", "output": "4"},  # nfkc
        {"sample_id": "b", "shape": "alpaca", "instruction": "q", "output": "bell\u0007 and \x1b[31mred\x1b[0m"},  # control
        {"sample_id": "c", "shape": "alpaca", "instruction": "  q  \r\n", "output": "line  \r\nnext\n\n\n\nend\t"},  # whitespace
        {"sample_id": "d", "shape": "alpaca", "instruction": "q", "output": "cafÃ© crÃ¨me"},  # mojibake
        {"sample_id": "e", "shape": "alpaca", "instruction": "什么是复利？", "output": "利滚利，对吧！"},  # untouched
        {"sample_id": "f", "shape": "openai", "messages": [{"role": "user", "content": "hi\u0000", "reasoning": None},
                                                        {"role": "assistant", "content": "ok", "reasoning": "r\u200b"}]},
    ]
    out = CleanStep().process(batch(rows))
    texts = {r["sample_id"]: r for r in out.texts.to_pylist()}
    assert set(texts) == {"a", "b", "c", "d", "f"}
    assert texts["a"]["instruction"] == "What is 2+2？"  # letters and digits fold; Chinese punctuation is kept
    assert texts["b"]["output"] == "bell and red"
    assert texts["c"]["instruction"] == "q" and texts["c"]["output"] == "line\nnext\n\nend"
    assert texts["d"]["output"] == "café crème"
    assert texts["f"]["messages"][0] == {"role": "user", "content": "hi", "reasoning": None}
    assert out.counters["nfkc"] == 1 and out.counters["control_chars"] == 2 and out.counters["fix_encoding"] == 1
    assert out.counters["whitespace"] == 1 and out.counters["changed"] == 5
    assert all(len(t["content_hash"]) == 32 for t in texts.values())


def test_chinese_full_width_punctuation_is_kept_unless_asked() -> None:
    rows = [{"sample_id": "z", "shape": "alpaca", "instruction": "问：什么（简单）？", "output": "Ａ１，好！"}]
    kept = CleanStep().process(batch(rows)).texts.to_pylist()[0]
    assert kept["instruction"] == "问：什么（简单）？" and kept["output"] == "A1，好！"
    folded = CleanStep(params={"keep_cjk_punctuation": False}).process(batch(rows)).texts.to_pylist()[0]
    assert folded["instruction"] == "问:什么(简单)?"


def test_rules_can_be_turned_off() -> None:
    rows = [{"sample_id": "a", "shape": "alpaca", "instruction": "Ｑ", "output": "x\u0007"}]
    out = CleanStep(params={"nfkc": False, "control_chars": False}).process(batch(rows))
    assert out.texts is None and out.counters["changed"] == 0


def test_a_page_in_slices_cleans_as_in_one_piece(monkeypatch) -> None:
    """A page is cleaned in slices, one thread each: the text versions and counts are those of one piece,
    in the page's order, with the slices cut through dialogues and rows that change and rows that do not."""
    import curation.pipeline.steps.clean as clean

    rows = []
    for k in range(60):
        rows += [
            {"sample_id": f"a{k}", "shape": "alpaca", "instruction": f"Ｑｕｅｓｔｉｏｎ {k}", "output": "cafÃ© crÃ¨me  \r\n"},
            {"sample_id": f"b{k}", "shape": "alpaca", "instruction": "什么是复利？", "output": "利滚利，对吧！"},
            {"sample_id": f"c{k}", "shape": "openai", "messages": [
                {"role": "user", "content": f"turn {k}\u0000", "reasoning": None},
                {"role": "assistant", "content": "ok\n\n\n\nfine", "reasoning": "r\u0007" if k % 2 else None}]},
        ]
    page = batch(rows)
    whole = CleanStep().process(page)
    monkeypatch.setattr(clean, "SLICE_MIN_ROWS", 7)  # 180 rows: as many slices as cores, cut mid-pattern
    monkeypatch.setattr(clean.os, "cpu_count", lambda: 4)
    sliced = CleanStep().process(page)
    assert sliced.texts.equals(whole.texts)
    assert sliced.counters == whole.counters and whole.counters["changed"] == 120
    assert sliced.texts.column("sample_id").to_pylist()[:2] == ["a0", "c0"]


def _every_string(step: CleanStep, a: pa.Array) -> pa.Array:
    """The rules as first written: each one's Arrow kernels on every string (no pass that picks the strings)."""
    import ftfy
    import pyarrow.compute as pc

    from curation.pipeline.steps import clean

    p = step.params
    if p.fix_encoding:
        a = pa.array([ftfy.fix_encoding(s) if s is not None and pc.match_substring_regex(pa.array([s]), clean.MOJIBAKE)[0].as_py()
                      else s for s in a.to_pylist()], pa.string())
    if p.nfkc:
        for c, stand_in in clean._PROTECT.items():
            a = pc.replace_substring(a, pattern=c, replacement=stand_in) if p.keep_cjk_punctuation else a
        a = pc.utf8_normalize(a, form="NFKC")
        for c, stand_in in clean._PROTECT.items():
            a = pc.replace_substring(a, pattern=stand_in, replacement=c) if p.keep_cjk_punctuation else a
    if p.control_chars:
        a = clean._control_all(a)
    if p.whitespace:
        a = clean._whitespace_all(a)
    return a


def test_strings_no_rule_needs_are_left_as_they_are() -> None:
    """The rules run only on the strings one regex pass picks, and NFKC only where Python's quick check says the
    text is not in NFKC: the texts equal each rule's kernels run on every string. With text in NFKC already
    (curly quotes, accents, emoji), a stand-in character in the input, and characters that Python's Unicode data
    does not have but Arrow's newer one normalises (U+1CCD6, Unicode 16: a letter 'A' in another style)."""
    from tests.conftest import sample_texts

    crafted = ["“quoted” café — ok 😀", "ﬁne ligature", "已经是：正常的（文本）。", "\U000f0000 stand-in，",
               "new in Unicode 16: \U0001ccd6", "Ａ１，好！", "plain ascii", "tab\tend ", "cafÃ© ", "x\u0007\r\n",
               "", None, "漢字 and “mixed” ＡＢＣ！"]
    texts = crafted + sample_texts(("instruction", "output"))
    rows = [{"sample_id": f"s{i}", "shape": "alpaca", "instruction": t, "output": texts[-1 - i]} for i, t in enumerate(texts)]
    rows.append({"sample_id": "d", "shape": "openai", "messages": [
        {"role": "user", "content": t, "reasoning": None} for t in crafted if t is not None]})
    table = batch(rows)
    for params in ({}, {"keep_cjk_punctuation": False}, {"fix_encoding": False, "whitespace": False}):
        step = CleanStep(params=params)
        out = step.process(table)
        got = {r["sample_id"]: r for r in out.texts.to_pylist()}
        for f in ("instruction", "output"):
            want = _every_string(step, table.column(f).combine_chunks()).to_pylist()
            for sid, old, new in zip(table.column("sample_id").to_pylist(), table.column(f).to_pylist(), want):
                assert (got[sid][f] if sid in got else old) == new, (params, sid, f, old)
        turns = _every_string(step, pa.array([t for t in crafted if t is not None], pa.string())).to_pylist()
        assert [m["content"] for m in got["d"]["messages"]] == turns
        if not params:
            assert got["s4"]["instruction"] == "new in Unicode 16: A"
