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
