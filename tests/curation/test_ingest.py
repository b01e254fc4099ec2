"""Ingest: every row accounted for, bad rows quarantined verbatim with where and why."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.errors import UsageError
from curation.ingest import FieldMapping, IngestOptions, ingest_paths
from tests.conftest import SAMPLE_DIR, write_lines

GOOD = '{"instruction": "Say hi", "input": "", "output": "hi"}'


def rows(store, sql: str, params: list | None = None) -> list[tuple]:
    with store.reader() as con:
        return con.execute(sql, params or []).fetchall()


def assert_balanced(store) -> None:
    bad = rows(store, "SELECT batch_id FROM batch_accounting WHERE NOT balanced OR status <> 'done'")
    assert bad == []
    # and the tables agree with the counters
    per_batch = rows(store, """
        SELECT b.batch_id, b.rows_loaded - b.rows_already_present,
               (SELECT count(*) FROM samples s WHERE s.batch_id = b.batch_id),
               b.rows_quarantined,
               (SELECT count(*) FROM quarantine q WHERE q.batch_id = b.batch_id
                  AND (q.row_number IS NOT NULL OR q.line IS NOT NULL))
        FROM batches b""")
    for bid, new, in_samples, quarantined, in_quarantine in per_batch:
        assert new == in_samples and quarantined == in_quarantine, bid


def test_bundled_sample_is_fully_accounted_for(store, truth) -> None:
    files = ["instructions.jsonl", "dialogues_sharegpt.jsonl", "messages_openai.json", "instructions_gb18030.csv"]
    reports = ingest_paths(store, [str(SAMPLE_DIR / f) for f in files])
    assert_balanced(store)
    by_file = {Path(r.source).name: r for r in reports}
    assert by_file["instructions_gb18030.csv"].encoding == "gb18030"
    # exactly the planted malformed rows are quarantined, at the planted places
    ingest_kinds = {"malformed_json", "wrong_type", "missing_field", "not_an_object", "unknown_shape",
                    "unknown_role", "empty_dialogue", "malformed_csv"}
    planted = sorted((t["file"], t.get("row_number") or t.get("line")) for t in truth["planted"] if t["problem"] in ingest_kinds)
    got = sorted((Path(s).name, int(n)) for s, n in rows(store, "SELECT source, coalesce(row_number, line) FROM quarantine"))
    assert got == planted
    # planted quality problems are loaded (they are for the filters, not for ingest)
    kept = {(t["file"], t["row_number"]) for t in truth["planted"] if t["problem"] not in ingest_kinds}
    loaded = {(Path(s).name, int(n)) for s, n in rows(store, "SELECT source, row_number FROM samples")}
    assert kept <= loaded
    # reasoning is split from answers: every planted R1 row with a closed think block
    lines = (SAMPLE_DIR / "instructions.jsonl").read_text(encoding="utf-8").splitlines()
    r1 = [i + 1 for i, ln in enumerate(lines) if '"has_reasoning": true' in ln]
    got_r1 = rows(store, "SELECT row_number, output, reasoning FROM samples WHERE source LIKE '%instructions.jsonl' AND reasoning IS NOT NULL")
    assert {r[0] for r in got_r1} == set(r1)
    assert all("<think>" not in out and reasoning for _, out, reasoning in got_r1)
    openai_r = rows(store, "SELECT count(*) FROM samples WHERE shape = 'openai' AND list_bool_or(list_transform(messages, lambda m: m.reasoning IS NOT NULL))")[0][0]
    assert openai_r == 75  # every 4th of 300


def test_identical_input_is_a_no_op(store, tmp_path) -> None:
    f = write_lines(tmp_path / "a.jsonl", [GOOD, GOOD.replace("hi", "yo")])
    first = ingest_paths(store, [str(f)])[0]
    again = ingest_paths(store, [str(f)])[0]
    assert first.rows_loaded == 2 and again.skipped and "identical to batch" in again.skipped
    assert rows(store, "SELECT count(*) FROM batches")[0][0] == 1
    # a changed file is a new batch; unchanged rows keep their ids and are not loaded twice
    write_lines(f, [GOOD, GOOD.replace("hi", "yo"), GOOD.replace("hi", "new")])
    third = ingest_paths(store, [str(f)])[0]
    assert (third.rows_read, third.rows_loaded, third.rows_already_present) == (3, 3, 2)
    assert rows(store, "SELECT count(*) FROM samples")[0][0] == 3
    assert_balanced(store)


def test_every_kind_of_bad_jsonl_row(store, tmp_path) -> None:
    big = json.dumps({"instruction": "x", "output": "y" * 5000})
    f = write_lines(tmp_path / "bad.jsonl", [
        GOOD,                                                   # 1 ok
        '{"instruction": "q", "output": "a"',                   # 2 malformed
        '{"instruction": "q", "output": 42}',                   # 3 wrong type
        '{"instruction": "q"}',                                 # 4 missing field
        b'{"instruction": "caf\xe9", "output": "a"}',           # 5 invalid UTF-8 bytes
        big,                                                    # 6 huge row
        "",                                                     # 7 blank line: not a row
        '"just a string"',                                      # 8 not an object
        '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant"}]}',  # 9 turn without content
        GOOD.replace("hi", "bye"),                              # 10 ok
    ])
    r = ingest_paths(store, [str(f)], IngestOptions(max_row_bytes=4096))[0]
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined, r.blank_lines) == (9, 2, 7, 1)
    q = {n: (reason, field, raw, raw_bytes) for n, reason, field, raw, raw_bytes in rows(
        store, "SELECT line, reason, field, raw, raw_bytes FROM quarantine ORDER BY line")}
    assert set(q) == {2, 3, 4, 5, 6, 8, 9}
    assert q[2][0].startswith("malformed JSON: Expecting") and "column" in q[2][0]
    assert q[3][:2] == ("field 'output' is a number, expected a string", "output")
    assert q[4][:2] == ("missing required field 'output'", "output")
    assert "invalid utf-8 bytes" in q[5][0] and q[5][3] == b'{"instruction": "caf\xe9", "output": "a"}'
    assert "over the 4.0 KiB limit" in q[6][0] and q[6][2] == big  # verbatim, whole
    assert q[8][0] == "row is a string, expected a JSON object"
    assert q[9][0] == "messages[1] has no 'content'"
    assert q[2][2] == '{"instruction": "q", "output": "a"'
    assert_balanced(store)


def test_empty_file_is_recorded_not_lost(store, tmp_path) -> None:
    for name in ("empty.jsonl", "empty.json", "empty.csv"):
        (tmp_path / name).write_bytes(b"")
    reports = ingest_paths(store, [str(tmp_path / n) for n in ("empty.jsonl", "empty.json", "empty.csv")])
    assert all(r.rows_read == 0 and r.problems and "empty" in r.problems[0] for r in reports)
    assert rows(store, "SELECT count(*) FROM quarantine WHERE row_number IS NULL AND line IS NULL AND reason LIKE 'file is empty%'")[0][0] == 3
    assert_balanced(store)


def test_json_array_with_bad_elements_and_unparseable_array(store, tmp_path) -> None:
    good = tmp_path / "arr.json"
    good.write_text(json.dumps([json.loads(GOOD), {"instruction": "q", "output": None}, [1], json.loads(GOOD.replace("hi", "x"))]))
    broken = tmp_path / "broken.json"
    broken.write_text('[{"instruction": "q", "output": "a"}, {"instruction": ')
    r1, r2 = ingest_paths(store, [str(good), str(broken)])
    assert (r1.rows_read, r1.rows_loaded, r1.rows_quarantined) == (4, 2, 2)
    assert rows(store, "SELECT row_number, reason FROM quarantine WHERE batch_id = 1 ORDER BY 1") == [
        (2, "field 'output' is null, expected a string"), (3, "row is an array, expected a JSON object")]
    assert r2.rows_read == 0 and r2.problems[0].startswith("not a readable JSON array")
    raw = rows(store, "SELECT raw FROM quarantine WHERE batch_id = 2")[0][0]
    assert raw == broken.read_text()
    assert_balanced(store)


def test_csv_tsv_and_gb18030(store, tmp_path) -> None:
    csv_path = tmp_path / "pairs.csv"
    csv_path.write_bytes(
        "instruction,input,output\n"
        '"什么是复利？",,"利滚利。"\n'
        '"two, with comma","","multi\nline answer"\n'
        '"too","many","columns","here"\n'
        '"empty output",,\n'.encode("gb18030")
    )
    tsv_path = write_lines(tmp_path / "pairs.tsv", ["instruction\toutput", "q1\ta1", b"q\xff2\ta2", "q3\ta3"])
    r_csv, r_tsv = ingest_paths(store, [str(csv_path), str(tsv_path)])
    assert r_csv.encoding == "gb18030"
    assert (r_csv.rows_read, r_csv.rows_loaded, r_csv.rows_quarantined) == (4, 3, 1)
    assert rows(store, "SELECT instruction, output FROM samples WHERE batch_id = 1 ORDER BY row_number") == [
        ("什么是复利？", "利滚利。"), ("two, with comma", "multi\nline answer"), ("empty output", "")]
    assert rows(store, "SELECT line, raw FROM quarantine WHERE batch_id = 1") == [(5, '"too","many","columns","here"')]
    assert (r_tsv.rows_read, r_tsv.rows_loaded, r_tsv.rows_quarantined) == (3, 2, 1)
    line, raw_bytes, reason = rows(store, "SELECT line, raw_bytes, reason FROM quarantine WHERE batch_id = 2")[0]
    assert line == 3 and raw_bytes == b"q\xff2\ta2" and "malformed CSV record" in reason
    assert_balanced(store)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030", "gbk", "utf-16"])
def test_text_encodings(store, tmp_path, encoding: str) -> None:
    text = "\n".join(json.dumps({"instruction": f"解释第{i}个概念", "output": "这是一个关于递归的回答。"}, ensure_ascii=False)
                     for i in range(50)) + "\n"
    f = tmp_path / f"zh-{encoding}.jsonl"
    f.write_bytes(text.encode(encoding))
    r = ingest_paths(store, [str(f)])[0]
    assert (r.rows_read, r.rows_loaded) == (50, 50)
    assert rows(store, "SELECT instruction FROM samples WHERE row_number = 7")[0][0] == "解释第6个概念"


def test_gzip_jsonl(store, tmp_path) -> None:
    f = tmp_path / "a.jsonl.gz"
    with gzip.open(f, "wt", encoding="utf-8") as g:
        g.write(GOOD + "\n" + "{bad\n")
    r = ingest_paths(store, [str(f)])[0]
    assert (r.format, r.rows_read, r.rows_loaded, r.rows_quarantined) == ("jsonl", 2, 1, 1)


def test_parquet_with_nested_messages_and_wrong_types(store, tmp_path) -> None:
    msgs = [[{"role": "user", "content": "q"}, {"role": "assistant", "content": "<think>r</think>a"}],
            [{"role": "user", "content": "q2"}, {"role": "assistant", "content": "b"}]]
    pq.write_table(pa.table({"messages": msgs, "id": [1, 2]}), tmp_path / "m.parquet")
    pq.write_table(pa.table({"instruction": ["q", "r"], "output": [1, 2]}), tmp_path / "typed.parquet")
    r1, r2 = ingest_paths(store, [str(tmp_path / "m.parquet"), str(tmp_path / "typed.parquet")])
    assert (r1.rows_loaded, r2.rows_quarantined) == (2, 2)
    m = rows(store, "SELECT external_id, messages FROM samples ORDER BY row_number")
    assert m[0][0] == "1" and m[0][1][1] == {"role": "assistant", "content": "a", "reasoning": "r"}
    assert rows(store, "SELECT DISTINCT reason FROM quarantine") == [("field 'output' is a number, expected a string",)]


def test_hf_save_to_disk_dataset_dict(store, tmp_path) -> None:
    import datasets

    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_list([{"conversations": [{"from": "human", "value": f"q{i}"}, {"from": "gpt", "value": "a"}]} for i in range(5)]),
        "test": datasets.Dataset.from_list([{"instruction": "q", "output": "a"}]),
    })
    dd.save_to_disk(str(tmp_path / "ds"))
    reports = ingest_paths(store, [str(tmp_path / "ds")])
    assert sorted((r.source.split("#")[1], r.rows_loaded) for r in reports) == [("test", 1), ("train", 5)]
    assert rows(store, "SELECT DISTINCT shape FROM samples ORDER BY 1") == [("alpaca",), ("sharegpt",)]
    assert_balanced(store)


def test_field_mapping(store, tmp_path) -> None:
    f = write_lines(tmp_path / "qa.jsonl", [
        '{"question": "q1", "answer": "a1", "meta": {"src": "x"}, "uid": "u1"}',
        '{"question": "q2", "answer": 7}',
    ])
    r = ingest_paths(store, [str(f)], IngestOptions(mapping=FieldMapping.parse(["instruction=question", "output=answer", "id=uid"])))[0]
    assert (r.rows_loaded, r.rows_quarantined) == (1, 1)
    assert rows(store, "SELECT instruction, output, external_id, metadata FROM samples") == [("q1", "a1", "u1", '{"meta":{"src":"x"}}')]
    assert rows(store, "SELECT reason, field FROM quarantine") == [("field 'answer' is a number, expected a string", "answer")]
    with pytest.raises(UsageError, match="not a sample field"):
        FieldMapping.parse(["answer=output"])


def test_sample_ids_are_stable_across_stores(tmp_path) -> None:
    from curation.store import Store

    ids = []
    for name in ("one", "two"):
        s = Store(tmp_path / name / "c.duckdb")
        ingest_paths(s, [str(SAMPLE_DIR / "dialogues_sharegpt.jsonl")])
        ids.append(rows(s, "SELECT list(sample_id ORDER BY row_number) FROM samples")[0][0])
    assert ids[0] == ids[1] and len(set(ids[0])) == len(ids[0])
    # the documented formulas: raw_hash is XXH3-128 of the line's text, the id md5(name, row, hash hex)[:16]
    import hashlib

    import xxhash

    lines = (SAMPLE_DIR / "dialogues_sharegpt.jsonl").read_text(encoding="utf-8").splitlines()
    got = rows(s, "SELECT row_number, printf('%032x', raw_hash), sample_id FROM samples ORDER BY row_number")
    for row_number, hex_hash, sample_id in got:
        assert hex_hash == xxhash.xxh3_128_hexdigest(lines[row_number - 1].encode())
        key = f"dialogues_sharegpt.jsonl\n{row_number}\n{hex_hash}".encode()
        assert sample_id == hashlib.md5(key).hexdigest()[:16]


def test_interrupted_batch_is_reloaded_whole(store, tmp_path) -> None:
    f = write_lines(tmp_path / "a.jsonl", [GOOD.replace("hi", str(i)) for i in range(30)])
    opts = IngestOptions(chunk_bytes=1024, write_rows=1)

    def boom(*a, **k):
        raise KeyboardInterrupt

    import curation.ingest.ingest as mod

    real = mod._write_chunk
    calls = {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            boom()
        return real(*a, **k)

    mod._write_chunk = flaky
    try:
        with pytest.raises(KeyboardInterrupt):
            ingest_paths(store, [str(f)], opts)
    finally:
        mod._write_chunk = real
    assert rows(store, "SELECT status FROM batches") == [("failed",)]
    r = ingest_paths(store, [str(f)], opts)[0]
    assert r.batch_id == 1 and r.rows_loaded == 30 and r.rows_already_present == 0
    assert rows(store, "SELECT count(*), count(DISTINCT sample_id) FROM samples") == [(30, 30)]
    assert_balanced(store)


def test_unreadable_inputs_fail_alone_and_the_others_load(store, tmp_path) -> None:
    good = write_lines(tmp_path / "good.jsonl", [GOOD])
    (tmp_path / "x.xml").write_text("<a/>")
    reports = ingest_paths(store, [str(tmp_path / "missing.jsonl"), str(tmp_path / "x.xml"), str(good)])
    assert [bool(r.failed) for r in reports] == [True, True, False]
    assert "no such file" in reports[0].failed and "pass --format" in reports[1].failed
    assert reports[2].rows_loaded == 1
    assert rows(store, "SELECT count(*) FROM samples") == [(1,)]


def test_blank_and_whitespace_lines_are_not_rows(store, tmp_path) -> None:
    f = write_lines(tmp_path / "ws.jsonl", ["", GOOD, "   \t  " * 10, "\r", GOOD.replace("hi", "x") + "\r", "  " + GOOD.replace("hi", "y")])
    r = ingest_paths(store, [str(f)])[0]
    assert (r.rows_read, r.rows_loaded, r.blank_lines) == (3, 3, 3)
    assert rows(store, "SELECT row_number FROM samples ORDER BY 1") == [(2,), (5,), (6,)]
    assert rows(store, "SELECT output FROM samples WHERE row_number = 5") == [("x",)]


def test_hf_local_data_files_through_load_dataset(store, tmp_path) -> None:
    folder = tmp_path / "hfdir"
    folder.mkdir()
    write_lines(folder / "train.jsonl", [GOOD, GOOD.replace("hi", "two")])
    reports = ingest_paths(store, [str(folder)], IngestOptions(format="hf"))
    assert [(r.format, r.rows_loaded) for r in reports] == [("hf", 2)]
    assert reports[0].source.endswith("#train")


def test_gb18030_json_array(store, tmp_path) -> None:
    f = tmp_path / "zh.json"
    f.write_bytes(json.dumps([{"instruction": "什么是哈希表？", "output": "一种键值数据结构。"}], ensure_ascii=False).encode("gb18030"))
    r = ingest_paths(store, [str(f)])[0]
    assert (r.encoding, r.rows_loaded) == ("gb18030", 1)
    assert rows(store, "SELECT output FROM samples") == [("一种键值数据结构。",)]


_line_parts = st.sampled_from(['{"a": "x"}', "", " ", "\r", "中文", "<bad>", "é" * 40, "\t", "{", "z" * 90])


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(st.lists(_line_parts, max_size=4).map("".join), min_size=1, max_size=25),
       final_newline=st.booleans(), chunk=st.integers(8, 200))
def test_jsonl_blocks_split_like_one_block(tmp_path_factory, lines: list[str], final_newline: bool, chunk: int) -> None:
    """Reading in small blocks (lines cut across blocks, rows longer than a block) gives the same rows,
    line numbers, raw text and blank-line count as reading the file whole."""
    from curation.ingest.readers import read_jsonl

    path = tmp_path_factory.mktemp("blocks") / "x.jsonl"
    # "<bad>" stands for bytes that are not UTF-8
    body = "\n".join(lines).encode("utf-8").replace(b"<bad>", b"\xc3\x28")
    path.write_bytes(body + (b"\n" if final_newline else b""))

    def read(chunk_bytes: int) -> tuple[list[dict], int]:
        chunks = list(read_jsonl(path, "utf-8", chunk_bytes=chunk_bytes))
        table = pa.concat_tables([c.table for c in chunks]) if chunks else None
        if table is not None:  # raw is not checked to be UTF-8 by the reader: compare bytes
            raw = table.column("raw").combine_chunks().view(pa.binary())
            table = table.set_column(table.schema.get_field_index("raw"), "raw", raw)
        return (table.to_pylist() if table is not None else []), sum(c.blank_lines for c in chunks)

    assert read(chunk) == read(1 << 20)
    got, blank = read(1 << 20)
    physical = body.split(b"\n")
    assert len(got) + blank == len(physical) - (1 if body.endswith(b"\n") and not final_newline else 0) or body == b""
    for row in got:
        line = physical[row["line"] - 1].rstrip(b"\r")
        assert (row["raw"] if row["raw"] is not None else row["raw_bytes"]) == line


def test_bytes_that_are_not_utf8_are_named_wherever_they_are(store, tmp_path) -> None:
    """The JSON parser rejects a row with any byte sequence that is not UTF-8 (in a value, a key, after
    the object, in a row too large to parse); each is quarantined with its exact bytes and the first
    bad byte, and no text column receives them."""
    good = b'{"instruction": "q", "output": "a"}'
    seqs = [b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80", b"\xe6\x95", b"\xff"]
    lines = [good]
    for b in seqs:
        lines += [b'{"instruction": "q' + b + b'", "output": "a"}', b'{"instr' + b + b'": "q", "output": "a"}',
                  good + b" " + b, b'{"messages": [{"role": "user", "content": "' + b + b'"}]}']
    lines.append(b'{"instruction": "q", "output": "' + b"y" * 5000 + b"\xff" + b'"}')  # too large as well
    f = write_lines(tmp_path / "bytes.jsonl", lines)
    # so many bad lines would make the file read as GB18030: the encoding is given
    r = ingest_paths(store, [str(f)], IngestOptions(max_row_bytes=4096, encoding="utf-8"))[0]
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (len(lines), 1, len(lines) - 1)
    got = rows(store, "SELECT line, reason, raw, raw_bytes, field FROM quarantine ORDER BY line")
    assert [g[0] for g in got] == list(range(2, len(lines) + 1))
    for line, reason, raw, raw_bytes, field in got:
        data = lines[line - 1]
        with pytest.raises(UnicodeDecodeError) as e:
            data.decode("utf-8")
        assert reason == f"invalid utf-8 bytes at byte {e.value.start + 1} of the line ({e.value.reason})"
        assert (raw, raw_bytes, field) == (None, data, None)
    assert r.reasons == {"invalid utf-8 bytes": len(lines) - 1}
    assert_balanced(store)


_json_values = st.sampled_from([
    '"text"', '""', '"42"', '"-1.5e3"', '"true"', '"{\\"a\\": 1}"', '"[1]"', '"1. First"', '"<think>r</think>a"',
    "42", "-1.5e3", "1e400", "true", "false", "null", '{"a": 1}', "[1, 2]", "[]",
    '[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]',
    '[{"from": "human", "value": "q"}, {"from": "gpt", "value": "<think>r</think> a"}]',
    '[{"role": "user", "content": 42}]', '[{"role": "user", "content": "42"}]', '[{"role": "tool", "content": "{\\"a\\": 1}"}]',
    '[{"role": 5, "content": "x"}]', '[{"role": "user"}]', '["hi"]', '[{"from": "gpt", "value": true}]',
    '[{"role": "assistant", "content": "a", "reasoning_content": null}]', '[{"role": "assistant", "content": "a", "reasoning_content": 1}]',
    '[{"role": "USER", "content": "[1]"}, {"role": "robot", "content": "x"}]',
])
_json_keys = st.sampled_from(["instruction", "input", "output", "system", "id", "reasoning", "reasoning_content",
                              "messages", "conversations", "extra", "meta"])


@settings(max_examples=80, deadline=None)
@given(rows_=st.lists(st.dictionaries(_json_keys, _json_values, max_size=6), min_size=1, max_size=20))
def test_fast_types_agree_with_json_type(rows_: list[dict[str, str]]) -> None:
    """Types read from keys and json_transform (no json_type parse) give the same samples and the same
    quarantine reasons as json_type on every path."""
    from curation.ingest.normalize import Normalizer, build_sql
    from curation.ingest.readers import add_row_hashes

    raw = ["{" + ", ".join(f'"{k}": {v}' for k, v in r.items()) + "}" for r in rows_]
    n = len(raw)
    chunk = pa.table({"row_number": pa.array(range(1, n + 1), pa.int64()), "line": pa.array(range(1, n + 1), pa.int64()),
                      "raw": pa.array(raw, pa.string()), "raw_bytes": pa.nulls(n, pa.binary()),
                      "problem": pa.nulls(n, pa.string())})
    chunk = add_row_hashes(chunk)
    results = []
    for fast in (True, False):
        with Normalizer(FieldMapping()) as norm:
            norm.sql = build_sql(FieldMapping(), fast_types=fast)
            good, bad = norm.run(chunk, 1, "x.jsonl", "x.jsonl")
            results.append((good.to_pylist(), bad.to_pylist()))
    assert results[0] == results[1]


_role_names = st.sampled_from(["user", "assistant", "system", "tool", "developer", "function", "Assistant", "USER",
                               "human", "gpt", "GPT", "Human", "model", "observation", "robot"])
_contents = st.sampled_from(["a", "", "<think>r</think>a", "  <think>\nr\n</think>\n\n a", "<think>open", "x </think>",
                             "<think></think>", "中文<think>r</think>", "\t<think>多</think>答"])


@settings(max_examples=100, deadline=None)
@given(turns=st.lists(st.tuples(_role_names, _contents, st.sampled_from([None, "rc"])), min_size=1, max_size=5),
       shape=st.sampled_from(["openai", "sharegpt"]))
def test_dialogue_turns_match_the_python_reference(turns: list[tuple[str, str, str | None]], shape: str) -> None:
    """Roles are mapped case-insensitively per shape, an unknown role quarantines the row, and an
    assistant turn without reasoning_content has its leading think block split off exactly as
    ``split_reasoning`` does; other turns are kept as written."""
    from curation.ingest.normalize import OPENAI_ROLES, SHAREGPT_ROLES, Normalizer
    from curation.ingest.readers import add_row_hashes
    from schemas.sample import split_reasoning

    roles, (rk, ck, field) = ((OPENAI_ROLES, ("role", "content", "messages")) if shape == "openai"
                              else (SHAREGPT_ROLES, ("from", "value", "conversations")))
    row = {field: [{rk: r, ck: c, **({"reasoning_content": rc} if rc else {})} for r, c, rc in turns]}
    chunk = pa.table({"row_number": pa.array([1], pa.int64()), "line": pa.array([1], pa.int64()),
                      "raw": pa.array([json.dumps(row, ensure_ascii=False)], pa.string()),
                      "raw_bytes": pa.nulls(1, pa.binary()), "problem": pa.nulls(1, pa.string())})
    with Normalizer(FieldMapping()) as norm:
        good, bad = norm.run(add_row_hashes(chunk), 1, "x.jsonl", "x.jsonl")
    canonical = [roles.get(r.lower()) for r, _c, _rc in turns]
    if None in canonical:
        assert good.num_rows == 0 and "has unknown" in bad.column("reason")[0].as_py()
        return
    expected = []
    for role, (_r, content, rc) in zip(canonical, turns, strict=True):
        if role == "assistant" and rc is None:
            reasoning, answer = split_reasoning(content)
            expected.append({"role": role, "content": answer, "reasoning": reasoning})
        else:
            expected.append({"role": role, "content": content, "reasoning": rc})
    assert bad.num_rows == 0
    assert good.column("messages").to_pylist() == [expected]
