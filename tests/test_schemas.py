"""Sample model, reasoning split, and table documentation."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas import Message, Sample, split_reasoning
from schemas.sample import THINK_PATTERN_SQL, THINK_SPLIT_MACROS_SQL


def test_instruction_pair_and_dialogue_are_exclusive() -> None:
    Sample(instruction="q", output="a")
    Sample(messages=[Message(role="user", content="q")])
    with pytest.raises(ValidationError, match="not both"):
        Sample(instruction="q", output="a", messages=[Message(role="user", content="q")])
    with pytest.raises(ValidationError, match="needs output"):
        Sample(instruction="q")
    with pytest.raises(ValidationError, match="messages is empty"):
        Sample(messages=[])


def test_r1_answer_keeps_reasoning_apart() -> None:
    s = Sample.from_r1_answer("2+2?", "<think>\nadd them\n</think>\n\n4")
    assert s.reasoning == "\nadd them\n" and s.output == "4"
    assert split_reasoning("<think>never closed") == (None, "<think>never closed")
    assert split_reasoning("answer <think>late</think>") == (None, "answer <think>late</think>")


texts = st.text(alphabet=st.sampled_from(list("ab 中\n\t<>/thinkTHINK")), max_size=30)


@settings(max_examples=300, deadline=None)
@given(pre=st.sampled_from(["", " ", "\n", "\u3000"]), r=texts, a=texts, close=st.booleans())
def test_python_and_sql_reasoning_split_agree(pre: str, r: str, a: str, close: bool) -> None:
    text = f"{pre}<think>{r}{'</think>' if close else ''}{a}"
    expected = split_reasoning(text)
    con = duckdb.connect()
    got = con.execute(
        "SELECT CASE WHEN regexp_matches($1, $2, 's') THEN regexp_extract($1, $2, 1, 's') END, "
        "CASE WHEN regexp_matches($1, $2, 's') THEN regexp_extract($1, $2, 2, 's') ELSE $1 END",
        [text, THINK_PATTERN_SQL],
    ).fetchall()[0]
    assert got == expected
    for macro in THINK_SPLIT_MACROS_SQL:
        con.execute(macro)
    fast = con.execute(
        "SELECT CASE WHEN think_end($1) IS NOT NULL THEN think_reasoning($1) END, "
        "CASE WHEN think_end($1) IS NOT NULL THEN think_answer($1) ELSE $1 END", [text]
    ).fetchall()[0]
    assert fast == expected


message = st.builds(Message, role=st.sampled_from(["system", "user", "assistant", "tool"]), content=st.text(),
                    reasoning=st.none() | st.text())
samples = st.one_of(
    st.builds(Sample, instruction=st.text(), output=st.text(), input=st.none() | st.text(),
              reasoning=st.none() | st.text(), metadata=st.dictionaries(st.text(max_size=5), st.integers())),
    st.builds(Sample, messages=st.lists(message, min_size=1, max_size=4), shape=st.sampled_from(["openai", "sharegpt"])),
)


@settings(max_examples=100, deadline=None)
@given(samples)
def test_sample_json_round_trip(sample: Sample) -> None:
    assert Sample.model_validate_json(sample.model_dump_json()) == sample
