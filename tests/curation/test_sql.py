"""The read-only SQL surface, and reading while another process writes."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curation.ingest import ingest_paths
from tests.conftest import REPO, SAMPLE_DIR


@pytest.fixture
def loaded(store):
    ingest_paths(store, [str(SAMPLE_DIR / "dialogues_sharegpt.jsonl")])
    return store


@pytest.mark.parametrize("query", [
    "INSERT INTO samples SELECT * FROM samples",
    "DELETE FROM samples",
    "UPDATE batches SET status = 'failed'",
    "DROP TABLE samples",
    "CREATE TABLE x AS SELECT 1",
    "COPY samples TO '{tmp}/out.csv'",
    "COPY (SELECT 1) TO '{tmp}/out.parquet' (FORMAT parquet)",
    "ATTACH '{tmp}/other.duckdb' AS other",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SELECT * FROM read_csv('{tmp}/secret.csv')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT 1; DELETE FROM samples",
    "SET enable_external_access = true",
    "PRAGMA enable_profiling",
])
def test_writes_and_file_access_are_refused(cli, loaded, tmp_path: Path, query: str) -> None:
    (tmp_path / "secret.csv").write_text("a\n1\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    res = cli("sql", query.format(tmp=tmp_path))
    assert res.exit_code == 3, res.output
    assert "refused" in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # created nothing
    assert cli("sql", "SELECT count(*) AS n FROM samples", "--format", "json").output.strip() == '{"n": 400}'


def test_output_formats(cli, loaded, tmp_path: Path) -> None:
    q = "SELECT sample_id, shape, messages FROM samples ORDER BY row_number LIMIT 3"
    csv_out = list(csv.reader(io.StringIO(cli("sql", q, "--format", "csv").output)))
    assert csv_out[0] == ["sample_id", "shape", "messages"] and len(csv_out) == 4
    assert json.loads(csv_out[1][2])[0]["role"] in ("user", "system")  # nested values as JSON text
    js = [json.loads(x) for x in cli("sql", q, "--format", "json").output.splitlines()]
    assert js[0]["shape"] == "sharegpt" and js[0]["messages"][0]["role"] in ("user", "system")
    res = cli("sql", q, "--format", "parquet", "--output", str(tmp_path / "r.parquet"))
    assert res.exit_code == 0
    assert pq.read_table(tmp_path / "r.parquet").num_rows == 3
    assert "sharegpt" in cli("sql", q).output
    assert cli("sql", q, "--format", "parquet").exit_code == 2  # needs --output
    bad = cli("sql", "SELECT nope FROM samples")
    assert bad.exit_code == 2 and "nope" in bad.output


# An ingest in another process that stops at a quarter, half and three quarters of its input (each time
# after the chunk that crosses the mark), says "paused" and waits for "go" on stdin: reads made while it
# waits are made in the middle of the load, whatever the speed of the machine.
PAUSING_INGEST = """
import sys
from curation.ingest import IngestOptions, ingest_paths
from curation.store import Store

marks = [0.25, 0.5, 0.75]

def progress(source, done, total, unit):
    while marks and total and done >= marks[0] * total:
        marks.pop(0)
        print("paused", flush=True)
        if sys.stdin.readline() != "go\\n":
            sys.exit("stopped: no go")

store_path, path = sys.argv[1:]
ingest_paths(Store(store_path), [path], IngestOptions(chunk_bytes=64 * 1024, write_rows=1000), progress=progress)
print("done", flush=True)
"""


def _sql(store_path: Path, query: str) -> list[dict]:
    """`curate sql` in its own process, as a person would run it while the ingest goes on."""
    res = subprocess.run([sys.executable, "-m", "curation.cli.app", "--db", str(store_path), "sql", query, "--format", "json"],
                         cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return [json.loads(line) for line in res.stdout.splitlines()]


def test_sql_answers_while_another_process_writes(store, tmp_path: Path) -> None:
    """`curate sql` gets answers while an ingest in another process is part way through its input, writing
    it in short transactions: the reads are made while that ingest waits at three marks of its input (its
    batch open, its last write possibly still in flight), and one more while it runs on."""
    n = 20_000
    big = tmp_path / "big.jsonl"
    with open(big, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"instruction": f"question {i}", "output": "answer " * 20}) + "\n")
    store.init()
    query = "SELECT (SELECT count(*) FROM samples) AS n, (SELECT list(status ORDER BY batch_id) FROM batches) AS status"
    with open(tmp_path / "writer.err", "w") as err:
        writer = subprocess.Popen([sys.executable, "-c", PAUSING_INGEST, str(store.path), str(big)], cwd=REPO,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True)
    seen = []
    try:
        for _ in range(3):
            line = writer.stdout.readline()
            if line != "paused\n":
                writer.stdin.close()
                writer.wait()
                pytest.fail(f"the ingest did not pause ({line!r}): {(tmp_path / 'writer.err').read_text()}")
            seen.append(_sql(store.path, query)[0])
            writer.stdin.write("go\n")
            writer.stdin.flush()
        _sql(store.path, query)  # and while it runs: answered whether it overlaps a write or not
        assert writer.stdout.readline() == "done\n", (tmp_path / "writer.err").read_text()
    finally:
        writer.stdin.close()  # a writer still waiting for "go" stops
        writer.wait()
    assert writer.returncode == 0, (tmp_path / "writer.err").read_text()
    assert [s["status"] for s in seen] == [["loading"]] * 3, seen  # every read was made in the middle of the load
    counts = [s["n"] for s in seen]
    assert 0 < counts[0] < counts[1] < counts[2] < n, counts  # and saw it progress
    assert _sql(store.path, query) == [{"n": n, "status": ["done"]}]


def test_a_query_asked_again_is_checked_once_and_a_refused_one_stays_refused() -> None:
    from curation.errors import RefusedError
    from curation.sql_check import _checked, check_read_only

    query = "SELECT shape, count(*) FROM samples GROUP BY shape -- asked again and again"
    first = check_read_only(query)
    hits = _checked.cache_info().hits
    assert check_read_only(query) == first and _checked.cache_info().hits == hits + 1
    bad = "SELECT * FROM read_text('/etc/hostname') -- asked again"
    for _ in range(3):  # a refusal is not remembered as a pass
        with pytest.raises(RefusedError, match="read_text"):
            check_read_only(bad)
    long = "SELECT 1 AS x" + " " * 5_000 + "-- long"
    size = _checked.cache_info().currsize
    assert len(check_read_only(long)) == 1
    assert _checked.cache_info().currsize == size  # long texts are not kept
