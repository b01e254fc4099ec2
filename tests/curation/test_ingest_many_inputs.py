"""One ingest, many inputs: an input that cannot be read fails alone, the others load, the command exits 1.

Real files, the real CLI: the summary names each failed input with its reason, no traceback, and the store's
audit holds afterwards.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from curation.cli.app import app
from curation.store import Store
from curation.store.audit import audit

GOOD = {"instruction": "Say hi", "input": "", "output": "hi"}


def jsonl(path: Path, n: int, bad: int = 0) -> Path:
    lines = [json.dumps({**GOOD, "output": f"hi {path.stem} {i}"}) for i in range(n)]
    for _ in range(bad):
        lines.insert(len(lines) // 2, '{"instruction": "cut')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def run_cli(tmp_path):
    db = tmp_path / "s.duckdb"

    def run(*args: str):
        res = CliRunner().invoke(app, ["--db", str(db), *args], env={"COLUMNS": "200"})
        return res

    run.store = Store(db)
    return run


def rows(store: Store, sql: str) -> list[tuple]:
    with store.reader() as con:
        return con.execute(sql).fetchall()


def test_a_folder_of_files_loads_each_file_and_quarantines_its_bad_line(run_cli, tmp_path) -> None:
    folder = tmp_path / "dump"
    (folder / "part").mkdir(parents=True)
    jsonl(folder / "a.jsonl", 5, bad=1)
    jsonl(folder / "part" / "b.jsonl", 3)
    (folder / "README.md").write_text("not data")
    (folder / ".hidden.jsonl").write_text("{}\n")
    res = run_cli("ingest", str(folder), "--json")
    assert res.exit_code == 0, res.output
    reports = json.loads(res.stdout)
    assert [(Path(r["source"]).name, r["rows_read"], r["rows_loaded"], r["rows_quarantined"]) for r in reports] == [
        ("a.jsonl", 6, 5, 1), ("b.jsonl", 3, 3, 0)]
    assert rows(run_cli.store, "SELECT source_name FROM batches ORDER BY 1") == [("dump/a.jsonl",), ("dump/part/b.jsonl",)]
    assert audit(run_cli.store).ok


def test_bad_inputs_fail_alone_and_the_command_goes_on(run_cli, tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    notgz = tmp_path / "plain.jsonl.gz"
    notgz.write_text(json.dumps(GOOD) + "\n")
    cut_parquet = tmp_path / "cut.parquet"
    pq.write_table(pa.table({"instruction": ["q"] * 1000, "output": [f"a{i}" for i in range(1000)]}), cut_parquet)
    cut_parquet.write_bytes(cut_parquet.read_bytes()[: cut_parquet.stat().st_size // 2])
    good = jsonl(tmp_path / "good.jsonl", 4)
    gz = tmp_path / "good2.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        f.write(json.dumps({**GOOD, "output": "zipped"}) + "\n")
    inputs = [cut_parquet, tmp_path / "missing.jsonl", empty, notgz, good, gz]
    res = run_cli("ingest", *map(str, inputs), "--json")
    assert res.exit_code == 1, res.output
    reports = json.loads(res.stdout)
    failed = {Path(r["source"]).name: r["failed"] for r in reports if r["failed"]}
    assert set(failed) == {"cut.parquet", "missing.jsonl", "empty", "plain.jsonl.gz"}, reports
    assert "no such file" in failed["missing.jsonl"] and "no data files" in failed["empty"]
    assert all("Traceback" not in v for v in failed.values())
    assert [r["rows_loaded"] for r in reports if not r["failed"]] == [4, 1]
    assert rows(run_cli.store, "SELECT count(*) FROM samples") == [(5,)]
    # a failed batch holds no rows and says why
    for status, problems, n in rows(run_cli.store, """SELECT b.status, b.problems, (SELECT count(*) FROM samples s
                                                       WHERE s.batch_id = b.batch_id) FROM batches b WHERE status <> 'done'"""):
        assert status == "failed" and problems and n == 0
    assert audit(run_cli.store).ok
    # the table summary says it too, and names each failed input
    res = run_cli("ingest", str(tmp_path / "missing.jsonl"), str(good))
    assert res.exit_code == 1
    said = " ".join(res.output.split())
    assert "FAILED" in said and "missing.jsonl: no such file" in said and "1 of 2 input(s) could not be read" in said


def test_when_no_input_can_be_read_the_exit_code_is_2(run_cli, tmp_path) -> None:
    res = run_cli("ingest", str(tmp_path / "nope.jsonl"))
    assert res.exit_code == 2 and "no input could be read" in " ".join(res.output.split())


def test_an_input_that_loads_nothing_exits_1_with_the_reason(run_cli, tmp_path) -> None:
    """An e-mail dump mapped to nothing the reader knows: every row quarantined is not a success."""
    mails = tmp_path / "mails.jsonl"
    mails.write_text("".join(json.dumps({"subject": f"Re: offer {i}", "body": "Dear friend, ..."}) + "\n"
                             for i in range(5)), encoding="utf-8")
    res = run_cli("ingest", str(mails))
    assert res.exit_code == 1
    said = " ".join(res.output.split())
    assert "mails.jsonl: nothing loaded: all 5 row(s) quarantined (mostly:" in said, said
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    res = run_cli("ingest", str(empty))
    assert res.exit_code == 1 and "nothing loaded: file is empty" in " ".join(res.output.split())
    # the same input again is not an error: it is already loaded
    assert run_cli("ingest", str(jsonl(tmp_path / "ok.jsonl", 2))).exit_code == 0
    assert run_cli("ingest", str(tmp_path / "ok.jsonl")).exit_code == 0
