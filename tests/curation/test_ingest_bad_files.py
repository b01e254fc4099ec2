"""Damaged and surprising input files: every row accounted for, good rows loaded, bad ones quarantined.

Each test writes real files to ``tmp_path`` and ingests them with ``ingest_paths`` into a real store,
then checks the store's tables: ``batches`` (the counts and problems), ``samples`` and ``quarantine``
(the line, the exact text or bytes, and a reason a person understands).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import random
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.errors import InputError
from curation.ingest import FieldMapping, IngestOptions, ingest_paths
from curation.store import Store
from curation.store.audit import audit

GOOD = {"instruction": "Say hi", "input": "", "output": "hi"}
# what an error message for a person must not contain
PYTHON_NAMES = re.compile(r"Error\b|Exception\b|Traceback|BadGzipFile|ArrowInvalid|OSError|EOFError|zlib")


def q(store: Store, sql: str, params: list | None = None) -> list[tuple]:
    with store.reader() as con:
        return con.execute(sql, params or []).fetchall()


def new_store(tmp_path: Path) -> Store:
    return Store(tmp_path / "s.duckdb")


def ingest_one(store: Store, path: Path, opts: IngestOptions | None = None):
    """Ingest one file: (report, None) when it loaded, (None, reason) when the file could not be read at all.

    A file that cannot be read is either raised as InputError or reported with ``failed`` set; either
    way its batch, if one was opened, must not be 'done' and must say why.
    """
    try:
        report = ingest_paths(store, [str(path)], opts)[0]
    except InputError as e:
        reason = str(e)
    else:
        reason = getattr(report, "failed", None)
        if not reason:
            return report, None
    assert not PYTHON_NAMES.search(reason), reason
    assert str(path.name) in reason, reason
    if store.path.exists():
        assert q(store, "SELECT count(*) FROM batches WHERE status = 'done'") == [(0,)]
        assert q(store, "SELECT count(*) FROM samples") == [(0,)]
    return None, reason


def assert_accounted(store: Store, report) -> None:
    """The batch is done and balanced, and the tables hold exactly the counted rows."""
    assert report.rows_read == report.rows_loaded + report.rows_quarantined
    bid = report.batch_id
    ((status, read, loaded, quarantined),) = q(
        store, "SELECT status, rows_read, rows_loaded, rows_quarantined FROM batches WHERE batch_id = ?", [bid])
    assert (status, read, loaded, quarantined) == ("done", report.rows_read, report.rows_loaded, report.rows_quarantined)
    assert q(store, "SELECT count(*) FROM samples WHERE batch_id = ?", [bid]) == [(loaded,)]
    assert q(store, "SELECT count(*) FROM quarantine WHERE batch_id = ? AND (row_number IS NOT NULL OR line IS NOT NULL)",
             [bid]) == [(quarantined,)]
    res = audit(store)  # and the store's invariants as a whole
    assert res.ok, res.violations


def quarantined(store: Store) -> list[tuple]:
    """(line, row_number, raw, raw_bytes, reason) of the quarantined rows, in file order."""
    return q(store, """SELECT line, row_number, raw, raw_bytes, reason FROM quarantine
                       WHERE row_number IS NOT NULL OR line IS NOT NULL ORDER BY coalesce(line, row_number)""")


def file_problems(store: Store) -> list[str]:
    return [r[0] for r in q(store, "SELECT reason FROM quarantine WHERE row_number IS NULL AND line IS NULL")]


def write_csv(path: Path, header: list[str], records: list[list[str]], delimiter: str = ",") -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    w.writerow(header)
    w.writerows(records)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


# --- 1. CSV: a bad record costs that record only ---------------------------------------------------


def _csv_with_bad_line(path: Path, n: int, bad_row: int, bad: bytes) -> Path:
    """n records ``q{i},a{i}`` after a header; record ``bad_row`` replaced by ``bad`` (physical line bad_row + 1)."""
    lines = [b"instruction,output"]
    for i in range(1, n + 1):
        lines.append(bad if i == bad_row else f"q{i},answer {i}".encode())
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.mark.parametrize("bad_row", [25_001, 3])
def test_csv_unterminated_quote_costs_one_line(tmp_path, bad_row: int) -> None:
    bad = f'"q{bad_row} broken,answer {bad_row}'.encode()
    f = _csv_with_bad_line(tmp_path / "quote.csv", 30_000, bad_row, bad)
    store = new_store(tmp_path)
    r, failed = ingest_one(store, f)
    assert failed is None
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (30_000, 29_999, 1)
    assert_accounted(store, r)
    ((line, _rn, raw, _raw_bytes, reason),) = quarantined(store)
    assert line == bad_row + 1 and raw == bad.decode()
    assert "quote" in reason and "malformed CSV record" in reason
    got = {x for (x,) in q(store, "SELECT instruction FROM samples")}
    assert got == {f"q{i}" for i in range(1, 30_001) if i != bad_row}


def test_csv_quote_closed_lines_later_loses_none_of_those_lines(tmp_path) -> None:
    # the bad quote on line 3 is closed by the quote that opens line 6; DuckDB reads lines 3-6 as one
    # broken record and goes on at line 7: lines 4-6 are read again
    f = tmp_path / "later.csv"
    f.write_bytes(b'instruction,output\nq1,a1\n"q2 broken,a2\nq3,a3\nq4,a4\n"q5",a5\nq6,a6\nq7,"a\n7"\nq8,a8\n')
    store = new_store(tmp_path)
    r, failed = ingest_one(store, f)
    assert failed is None
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (8, 7, 1)
    assert_accounted(store, r)
    assert [(x[0], x[2]) for x in quarantined(store)] == [(3, '"q2 broken,a2')]
    assert sorted(q(store, "SELECT instruction, output FROM samples")) == [
        ("q1", "a1"), ("q3", "a3"), ("q4", "a4"), ("q5", "a5"), ("q6", "a6"), ("q7", "a\n7"), ("q8", "a8")]


def test_csv_two_unterminated_quotes(tmp_path) -> None:
    lines = [b"instruction,output"] + [f"q{i},a{i}".encode() for i in range(1, 101)]
    lines[10] = b'"q10 broken,a10'
    lines[60] = b'q60,"a60 broken'
    f = tmp_path / "two.csv"
    f.write_bytes(b"\n".join(lines) + b"\n")
    store = new_store(tmp_path)
    r, failed = ingest_one(store, f)
    assert failed is None
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (100, 98, 2)
    assert_accounted(store, r)
    assert [(x[0], x[2]) for x in quarantined(store)] == [(11, '"q10 broken,a10'), (61, 'q60,"a60 broken')]


def test_csv_invalid_utf8_row_near_the_start(tmp_path) -> None:
    f = _csv_with_bad_line(tmp_path / "bytes.csv", 50, 2, b"q\xff2,answer 2")
    store = new_store(tmp_path)
    r, failed = ingest_one(store, f)
    assert failed is None
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (50, 49, 1)
    assert_accounted(store, r)
    ((line, _rn, _raw, raw_bytes, reason),) = quarantined(store)
    assert line == 3 and raw_bytes == b"q\xff2,answer 2"
    assert "utf-8" in reason and "byte 2" in reason and "not utf-8 encoded" not in reason


def test_csv_good_file_with_quoted_newlines_crlf_and_bom(tmp_path) -> None:
    f = tmp_path / "crlf.csv"
    f.write_bytes(b'\xef\xbb\xbfinstruction,input,output\r\n"multi\r\nline q",,"a, b"\r\nq2,"",""\r\n"q""3""",x,y\r\n')
    store = new_store(tmp_path)
    r, failed = ingest_one(store, f)
    assert failed is None and (r.rows_read, r.rows_loaded) == (3, 3)
    assert sorted(q(store, "SELECT instruction, input, output FROM samples")) == [
        ("multi\r\nline q", "", "a, b"), ('q"3"', "x", "y"), ("q2", "", "")]


# --- 2. CSV headers ----------------------------------------------------------------------------------


def test_csv_without_header_row_is_refused_with_how_to_map(tmp_path) -> None:
    f = tmp_path / "noheader.csv"
    f.write_text("What is 2+2?,4\nCapital of France?,Paris\n", encoding="utf-8")
    store = new_store(tmp_path)
    r, failed = ingest_one(store, f)
    assert r is None
    assert "first record" in failed and "What is 2+2?" in failed and "header" in failed and "--map" in failed


def test_csv_header_with_only_mapped_names_loads(tmp_path) -> None:
    f = write_csv(tmp_path / "qa.csv", ["question", "answer"], [["q1", "a1"]])
    store = new_store(tmp_path)
    opts = IngestOptions(mapping=FieldMapping.parse(["instruction=question", "output=answer"]))
    r, failed = ingest_one(store, f, opts)
    assert failed is None and r.rows_loaded == 1


def test_csv_reader_checks_the_header_against_the_mapping_it_is_given(tmp_path) -> None:
    from curation.ingest.readers import read_csv

    f = write_csv(tmp_path / "qa.csv", ["q", "a"], [["q1", "a1"]])
    with pytest.raises(InputError, match="does not name any field"):
        list(read_csv(f, fields=FieldMapping().consumed_top_level()))
    mapped = FieldMapping.parse(["instruction=q", "output=a"]).consumed_top_level()
    assert sum(c.table.num_rows for c in read_csv(f, fields=mapped)) == 1


def test_csv_and_tsv_with_blank_lines_before_the_header(tmp_path) -> None:
    f = tmp_path / "blank.tsv"
    f.write_bytes(b"\n  \ninstruction\toutput\nq1\ta1\n\n\"q2 broken\ta2\nq3\ta3\n")
    store = new_store(tmp_path)
    r, failed = ingest_one(store, f)
    assert failed is None and (r.rows_read, r.rows_loaded, r.rows_quarantined) == (3, 2, 1)
    assert_accounted(store, r)
    assert [(x[0], x[2]) for x in quarantined(store)] == [(6, '"q2 broken\ta2')]
    assert sorted(q(store, "SELECT instruction, output FROM samples")) == [("q1", "a1"), ("q3", "a3")]


def test_csv_duplicate_header_names_are_reported(tmp_path) -> None:
    f = write_csv(tmp_path / "dup.csv", ["instruction", "output", "output"], [["q1", "a1", "b1"], ["q2", "a2", "b2"]])
    store = new_store(tmp_path)
    r, failed = ingest_one(store, f)
    assert failed is None and (r.rows_read, r.rows_loaded) == (2, 2)
    assert_accounted(store, r)
    assert q(store, "SELECT output, metadata->>'output_1' FROM samples ORDER BY row_number") == [("a1", "b1"), ("a2", "b2")]
    (problem,) = file_problems(store)
    assert "'output'" in problem and "output_1" in problem and "columns 2 and 3" in problem
    assert problem in r.problems


# --- 3. gzip -------------------------------------------------------------------------------------------


def _jsonl_gz(path: Path, n: int) -> tuple[Path, bytes]:
    rng = random.Random(3)
    text = "".join(json.dumps({"instruction": f"q{i}", "output": "".join(rng.choice("abcdefgh ") for _ in range(200))}) + "\n"
                   for i in range(1, n + 1)).encode()
    path.write_bytes(gzip.compress(text, compresslevel=6, mtime=0))
    return path, text


def test_truncated_jsonl_gz_loads_every_complete_line(tmp_path) -> None:
    f, text = _jsonl_gz(tmp_path / "cut.jsonl.gz", 2000)
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    # what a stream decoder gets from the first half
    import zlib

    got = zlib.decompressobj(31).decompress(data[: len(data) // 2])
    complete = got.count(b"\n")
    tail = got[got.rfind(b"\n") + 1:]
    assert 0 < complete < 2000 and tail
    store = new_store(tmp_path)
    r, failed = ingest_one(store, f)
    assert failed is None
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (complete + 1, complete, 1)
    assert_accounted(store, r)
    ((line, _rn, raw, raw_bytes, reason),) = quarantined(store)
    assert line == complete + 1 and (raw == tail.decode() or raw_bytes == tail)
    assert "gzip stream ends early" in reason and "truncated" in reason and f"after {len(got)} bytes" in reason
    assert text.startswith(got)


def test_truncated_jsonl_gz_at_a_line_end_says_so(tmp_path) -> None:
    import zlib

    text = b"".join(json.dumps({"instruction": f"q{i}", "output": "a"}).encode() + b"\n" for i in range(10))
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    data = c.compress(text) + c.flush(zlib.Z_SYNC_FLUSH)  # every byte of text, no end of stream
    f = tmp_path / "sync.jsonl.gz"
    f.write_bytes(data)
    store = new_store(tmp_path)
    r, failed = ingest_one(store, f)
    assert failed is None and (r.rows_read, r.rows_loaded, r.rows_quarantined) == (10, 10, 0)
    assert any("gzip stream ends early" in p for p in file_problems(store))


@pytest.mark.parametrize("content", [bytes(random.Random(5).randrange(256) for _ in range(5000)),
                                     b'{"instruction": "q", "output": "a"}\n'])
def test_not_a_gzip_file(tmp_path, content: bytes) -> None:
    f = tmp_path / "fake.jsonl.gz"
    f.write_bytes(content)
    store = new_store(tmp_path)
    r, failed = ingest_one(store, f)
    assert r is None and "not a gzip file" in failed


def test_corrupt_gzip_data_mid_stream(tmp_path) -> None:
    f, text = _jsonl_gz(tmp_path / "bad.jsonl.gz", 3000)
    data = bytearray(gzip.compress(text, compresslevel=0, mtime=0))  # stored blocks: their lengths are checked
    length = int.from_bytes(data[11:13], "little")
    second = 10 + 5 + length  # the header of the second block, after the first block's bytes
    data[second + 4] ^= 0xFF  # its length's complement no longer matches (seen at its last byte)
    f.write_bytes(bytes(data))
    store = new_store(tmp_path)
    r, failed = ingest_one(store, f)
    assert failed is None
    assert_accounted(store, r)
    complete = text[:length].count(b"\n")
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (complete + 1, complete, 1)
    ((line, _rn, raw, _b, reason),) = quarantined(store)
    assert line == complete + 1 and raw == text[:length].rsplit(b"\n", 1)[1].decode()
    assert reason.startswith(f"corrupt gzip data at byte {second + 5} (invalid stored block lengths)")
    assert "this line is incomplete" in reason
    assert any("compressed bytes after it cannot be decoded" in p for p in r.problems)
    lines = text.split(b"\n")
    for rn, instr in q(store, "SELECT row_number, instruction FROM samples"):
        assert json.loads(lines[rn - 1])["instruction"] == instr


def test_gzip_checksum_mismatch_fails_the_file(tmp_path) -> None:
    # damage that still decodes (to wrong text) is found only by the checksum at the end: no row can be trusted
    f, _text = _jsonl_gz(tmp_path / "crc.jsonl.gz", 3000)
    data = bytearray(f.read_bytes())
    mid = len(data) // 2
    data[mid: mid + 64] = bytes(64)
    f.write_bytes(bytes(data))
    store = new_store(tmp_path)
    r, failed = ingest_one(store, f)
    assert r is None and "corrupt gzip data" in failed and "checksum" in failed


def test_csv_gz_truncated(tmp_path) -> None:
    text = "instruction,output\n" + "".join(f"q{i},answer number {i}\n" for i in range(1, 3001))
    full = gzip.compress(text.encode(), mtime=0)
    f = tmp_path / "cut.csv.gz"
    f.write_bytes(full[: len(full) // 2])
    store = new_store(tmp_path)
    r, failed = ingest_one(store, f)
    assert failed is None
    assert_accounted(store, r)
    ((line, _rn, raw, _b, reason),) = quarantined(store)
    assert "gzip stream ends early" in reason and r.rows_loaded == line - 2
    assert text.splitlines()[line - 1].startswith(raw)


# --- 4. Parquet ----------------------------------------------------------------------------------------


def _parquet(path: Path, n: int = 3000, row_group_size: int = 1000, **kw) -> Path:
    pq.write_table(pa.table({"instruction": [f"q{i}" for i in range(1, n + 1)],
                             "output": [f"answer {i} " + "x" * (i % 50) for i in range(1, n + 1)]}),
                   path, row_group_size=row_group_size, **kw)
    return path


def test_truncated_parquet_is_refused_clearly(tmp_path) -> None:
    f = _parquet(tmp_path / "cut.parquet")
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    r, failed = ingest_one(new_store(tmp_path), f)
    assert r is None and "Parquet" in failed and "truncated" in failed


def test_random_bytes_named_parquet_is_refused_clearly(tmp_path) -> None:
    f = tmp_path / "noise.parquet"
    f.write_bytes(bytes(random.Random(9).randrange(256) for _ in range(4000)))
    r, failed = ingest_one(new_store(tmp_path), f)
    assert r is None and "not a Parquet file" in failed


def test_parquet_with_a_corrupt_row_group(tmp_path) -> None:
    f = _parquet(tmp_path / "rg.parquet", write_page_checksum=True)
    meta = pq.ParquetFile(f).metadata
    col = meta.row_group(1).column(1)  # 'output' of the second row group
    start = min(x for x in (col.dictionary_page_offset, col.data_page_offset) if x is not None)
    mid = start + col.total_compressed_size // 2
    data = bytearray(f.read_bytes())
    for i in range(mid, mid + 40):  # damage the middle of the column chunk: a page's values
        data[i] ^= 0x5A
    f.write_bytes(bytes(data))
    store = new_store(tmp_path)
    r, failed = ingest_one(store, f)
    assert failed is None
    assert_accounted(store, r)
    assert r.rows_loaded == 2000
    assert q(store, "SELECT min(row_number), max(row_number) FROM samples WHERE row_number > 1000") == [(2001, 3000)]
    bad = quarantined(store)
    assert r.rows_read == 3000 and len(bad) == 1000
    assert {b[1] for b in bad} == set(range(1001, 2001))
    assert all("row group 2 of 3" in b[4] and "rows 1001-2000" in b[4] and "checksum" in b[4] for b in bad)
    assert not PYTHON_NAMES.search(bad[0][4])


# --- 5. silent choices in JSON -------------------------------------------------------------------------


def test_duplicate_json_keys_are_quarantined(tmp_path) -> None:
    f = tmp_path / "dup.jsonl"
    f.write_text("\n".join([
        json.dumps(GOOD),
        '{"instruction": "a", "output": "x", "output": "y"}',
        '{"instruction": "a", "meta": 1, "output": "x", "meta": 2}',
        '{"instruction": "a", "output": "x", "system": "s", "id": 1, "system": "t"}',
        '{"instruction": "ok", "output": "five keys", "system": "s", "id": 1, "m": {"k": 1}}',
    ]) + "\n", encoding="utf-8")
    store = new_store(tmp_path)
    r, failed = ingest_one(store, f)
    assert failed is None
    assert_accounted(store, r)
    reasons = {line: reason for line, _rn, _raw, _b, reason in quarantined(store)}
    assert reasons[2] == "duplicate key 'output'"
    assert reasons[3] == "duplicate key 'meta'"
    assert reasons[4] == "duplicate key 'system'"
    assert r.rows_loaded == 2 and r.rows_quarantined == 3


def test_lone_surrogate_is_named(tmp_path) -> None:
    f = tmp_path / "sur.jsonl"
    f.write_text(json.dumps(GOOD) + "\n" + '{"instruction": "q", "output": "bad \\ud800 here"}\n', encoding="utf-8")
    store = new_store(tmp_path)
    r, failed = ingest_one(store, f)
    assert failed is None and (r.rows_loaded, r.rows_quarantined) == (1, 1)
    ((line, _rn, raw, _b, reason),) = quarantined(store)
    assert line == 2 and raw == '{"instruction": "q", "output": "bad \\ud800 here"}'
    assert reason == "lone surrogate \\ud800 in field 'output' is not valid Unicode"


def _gb18030_lines(n: int, bad_line: int) -> bytes:
    out = []
    for i in range(1, n + 1):
        row = json.dumps({"instruction": f"解释第{i}个概念", "output": "这是一个关于递归的回答。"}, ensure_ascii=False).encode("gb18030")
        if i == bad_line:
            row = row.replace("递归".encode("gb18030"), b"\x81\x20")  # a lead byte with no trail byte
        out.append(row)
    return b"\n".join(out) + b"\n"


def test_gb18030_jsonl_with_one_bad_byte_sequence(tmp_path) -> None:
    f = tmp_path / "zh.jsonl"
    f.write_bytes(_gb18030_lines(40, 7))
    store = new_store(tmp_path)
    r, failed = ingest_one(store, f)
    assert failed is None and r.encoding == "gb18030"
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (40, 39, 1)
    assert_accounted(store, r)
    ((line, _rn, _raw, raw_bytes, reason),) = quarantined(store)
    offset = f.read_bytes().split(b"\n")[6].index(b"\x81\x20") + 1
    assert line == 7 and b"\x81\x20" in raw_bytes
    assert "gb18030" in reason and f"byte {offset}" in reason and "not utf-8" not in reason


def test_gb18030_csv_with_one_bad_byte_sequence(tmp_path) -> None:
    rows_ = ["instruction,output"] + [f"解释第{i}个概念,这是一个关于递归的回答。" for i in range(1, 41)]
    data = [r.encode("gb18030") for r in rows_]
    data[7] = data[7].replace("递归".encode("gb18030"), b"\x81\x20")
    f = tmp_path / "zh.csv"
    f.write_bytes(b"\n".join(data) + b"\n")
    store = new_store(tmp_path)
    r, failed = ingest_one(store, f)
    assert failed is None and r.encoding == "gb18030"
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (40, 39, 1)
    assert_accounted(store, r)
    ((line, _rn, _raw, raw_bytes, reason),) = quarantined(store)
    offset = data[7].index(b"\x81\x20") + 1
    assert line == 8 and b"\x81\x20" in raw_bytes
    assert "gb18030" in reason and f"byte {offset}" in reason and "not utf-8" not in reason


def test_gb18030_json_array_with_one_bad_byte_sequence(tmp_path) -> None:
    rows_ = [{"instruction": f"解释第{i}个概念", "output": "这是一个关于递归的回答。"} for i in range(1, 30)]
    lines = [b"["] + [json.dumps(r, ensure_ascii=False).encode("gb18030") + (b"," if i < len(rows_) - 1 else b"")
                      for i, r in enumerate(rows_)] + [b"]"]
    lines[7] = lines[7].replace("递归".encode("gb18030"), b"\x81\x20")  # element 7, on line 8
    f = tmp_path / "zh.json"
    f.write_bytes(b"\n".join(lines) + b"\n")
    store = new_store(tmp_path)
    r, failed = ingest_one(store, f)
    assert failed is None and r.encoding == "gb18030"
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (29, 28, 1)
    assert_accounted(store, r)
    ((_line, rn, _raw, raw_bytes, reason),) = quarantined(store)
    offset = lines[7].index(b"\x81\x20") + 1
    assert rn == 7 and raw_bytes == lines[7].rstrip(b",")
    assert reason.startswith(f"invalid gb18030 bytes at byte {offset} of line 8")
    assert q(store, "SELECT instruction FROM samples WHERE row_number = 8") == [("解释第8个概念",)]


# --- 6. empty and unopenable files ---------------------------------------------------------------------


@pytest.mark.parametrize("name, content", [
    (name, content) for name in ["e.jsonl", "e.json", "e.csv", "e.tsv", "e.parquet", "e.jsonl.gz"]
    for content in [b"", b"  \n\t\r\n \n"] if not (name.endswith(".parquet") and content)  # whitespace: no Parquet
])
def test_empty_and_whitespace_files(tmp_path, name: str, content: bytes) -> None:
    f = tmp_path / name
    f.write_bytes(gzip.compress(content, mtime=0) if name.endswith(".gz") else content)
    store = new_store(tmp_path)
    r, failed = ingest_one(store, f)
    assert failed is None and r.rows_read == 0
    assert any(p.startswith("file is empty") for p in r.problems)
    assert any(p.startswith("file is empty") for p in file_problems(store))


def _unopenable(tmp_path: Path, name: str) -> list[Path]:
    """Paths no reader can open: a folder, a broken link and (when not root) a file without permissions."""
    out = []
    d = tmp_path / "dir" / name
    d.mkdir(parents=True)
    out.append(d)
    link = tmp_path / "link" / name
    link.parent.mkdir()
    link.symlink_to(tmp_path / "nowhere" / name)
    out.append(link)
    if os.geteuid() != 0:
        p = tmp_path / "perm" / name
        p.parent.mkdir()
        p.write_text('{"instruction": "q", "output": "a"}\n')
        p.chmod(0)
        out.append(p)
    return out


@pytest.mark.parametrize("reader", ["jsonl", "jsonl.gz", "json", "csv", "parquet"])
def test_each_reader_raises_input_error_for_a_file_it_cannot_open(tmp_path, reader: str) -> None:
    from curation.ingest import readers

    fn = {"jsonl": readers.read_jsonl, "jsonl.gz": readers.read_jsonl, "json": readers.read_json_array,
          "csv": readers.read_csv, "parquet": readers.read_parquet}[reader]
    for path in _unopenable(tmp_path, f"x.{reader}"):
        with pytest.raises(InputError) as e:
            list(fn(path))
        msg = str(e.value)
        assert str(path) in msg and not PYTHON_NAMES.search(msg), msg
        assert any(w in msg for w in ("is a folder", "no such file", "permission denied")), msg
