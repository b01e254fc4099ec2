"""The content hash: whitespace runs collapsed (RE2's \\s: tab, newline, form feed, carriage return, space),
computed in DuckDB without the per-character regex, checked against a Python statement of the definition."""

from __future__ import annotations

import hashlib
import re

import duckdb
import pyarrow as pa

from curation.pipeline.base import MESSAGE_TYPE
from curation.pipeline.text import collapse_ws_sql, content_hashes
from tests.conftest import sample_texts

WS = re.compile(r"[\t\n\f\r ]+")  # RE2's \s; \v, NBSP and other Unicode spaces are not in it


def reference(row: dict) -> str:
    """The hash as the product defines it, in plain Python."""
    msgs = row.get("messages")
    turns = "" if msgs is None else "\x1d".join(
        f"{m['role']}\x1e{m['content'] or ''}\x1e{m.get('reasoning') or ''}" for m in msgs)
    joined = "\x1f".join([row["shape"]] + [row.get(f) or "" for f in ("system", "instruction", "input", "output", "reasoning")]
                         + [turns])
    text = WS.sub(" ", joined)
    for sep in ("\x1d", "\x1e", "\x1f"):
        text = text.replace(" " + sep, sep).replace(sep + " ", sep)
    return hashlib.md5(text.strip(" ").encode()).hexdigest()


ROWS = [
    {"shape": "alpaca", "instruction": "Say  hi\n\n\tplease", "input": "", "output": " hi\r\nthere \f"},
    {"shape": "alpaca", "instruction": "Say hi please", "input": None, "output": "hi there"},
    {"shape": "alpaca", "instruction": "vertical\vtab", "output": "no\u00a0break  space\u3000ideographic"},
    {"shape": "alpaca", "instruction": "   ", "output": "\n\n\n"},
    {"shape": "sharegpt", "messages": [{"role": "user", "content": " 你好 \n 世界 ", "reasoning": None},
                                       {"role": "assistant", "content": "hello\t\tworld\n", "reasoning": "  think\r\n"}]},
    {"shape": "sharegpt", "messages": [{"role": "user", "content": "你好 世界", "reasoning": None},
                                       {"role": "assistant", "content": "hello world", "reasoning": "think"}]},
]


def _table(rows: list[dict]) -> pa.Table:
    cols = {f: pa.array([r.get(f) for r in rows], pa.string())
            for f in ("shape", "system", "instruction", "input", "output", "reasoning")}
    cols["messages"] = pa.array([r.get("messages") for r in rows], MESSAGE_TYPE)
    return pa.table(cols)


def test_hash_matches_the_definition_for_every_kind_of_whitespace() -> None:
    got = content_hashes(_table(ROWS)).to_pylist()
    assert got == [reference(r) for r in ROWS]
    # copies that differ only in spacing share a hash; \v, NBSP and U+3000 are text, not spacing
    assert got[0] == got[1] and got[4] == got[5]
    assert len(set(got)) == 4


def test_collapse_equals_the_regex_it_replaces() -> None:
    texts = ["a \t\n\r\f b", "  lead", "trail \n", "\v\u00a0 x", "no space", "", None, "中 \n\n 文", " " * 50 + "x"]
    con = duckdb.connect()
    con.register("t", pa.table({"x": pa.array(texts, pa.string())}))
    fast, slow = zip(*con.execute(f"SELECT {collapse_ws_sql('x')}, regexp_replace(x, '\\s+', ' ', 'g') FROM t").fetchall())
    assert list(fast) == list(slow)
    assert fast[0] == "a b" and fast[3] == "\v\u00a0 x"


EDGE_ROWS = ROWS + [
    {"shape": "alpaca", "instruction": "sep\x1f inside \x1d text \x1e", "output": " \x1f\x1e lead"},
    {"shape": "alpaca", "instruction": "", "input": "", "output": "", "system": "  sys  \n"},
    {"shape": "alpaca", "instruction": "\t\t", "output": "x\n\n\n\ny", "reasoning": " \r\n think \r\n"},
    {"shape": "alpaca", "instruction": "nul\x00 byte", "output": "\x00 first, last \x00"},
    {"shape": "openai", "messages": []},
    {"shape": "openai", "messages": [{"role": "system", "content": None, "reasoning": None},
                                     {"role": "user", "content": "  ", "reasoning": "  "}]},
    {"shape": "openai", "messages": [{"role": None, "content": "a turn without a role", "reasoning": None},
                                     {"role": "assistant", "content": "answer", "reasoning": None}]},
]


def test_compiled_hash_equals_the_sql() -> None:
    """The compiled pass gives the SQL's hashes: separators inside the text, empty fields and dialogues, a turn
    without a role (the SQL leaves it out of the join), a table slice, and the bundled sample's rows."""
    from curation.pipeline.text import _content_hashes_sql

    table = _table(EDGE_ROWS)
    assert content_hashes(table).to_pylist() == _content_hashes_sql(table).to_pylist()
    assert content_hashes(table.slice(3, 7)).to_pylist() == _content_hashes_sql(table.slice(3, 7)).to_pylist()
    assert content_hashes(table.slice(0, 0)).to_pylist() == []
    texts = sample_texts(("instruction", "input", "output"))
    rows = [{"shape": "alpaca", "instruction": a, "input": b, "output": c} for a, b, c in zip(*[iter(texts)] * 3)]
    many = _table(rows * 3)  # over 1,000 rows: the compiled pass runs in two threads
    assert many.num_rows > 1000
    assert content_hashes(many).to_pylist() == _content_hashes_sql(many).to_pylist()
