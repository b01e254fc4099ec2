"""The read-only SQL surface, and reading while another process writes."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
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


def test_sql_answers_while_another_process_writes(store, tmp_path: Path) -> None:
    """`curate sql` gets answers while a long ingest in another process holds short write transactions."""
    big = tmp_path / "big.jsonl"
    with open(big, "w", encoding="utf-8") as f:
        for i in range(60_000):
            f.write(json.dumps({"instruction": f"question {i}", "output": "answer " * 20}) + "\n")
    store.init()
    writer = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from curation.store import Store; from curation.ingest import ingest_paths, IngestOptions;"
         f"ingest_paths(Store({str(store.path)!r}), [{str(big)!r}], IngestOptions(chunk_bytes=64 * 1024, write_rows=1000))"],
        cwd=REPO, stderr=subprocess.PIPE, text=True,
    )
    counts, during = [], 0
    try:
        deadline = time.monotonic() + 120
        while writer.poll() is None and time.monotonic() < deadline:
            res = subprocess.run(
                [sys.executable, "-m", "curation.cli.app", "--db", str(store.path), "sql",
                 "SELECT count(*) AS n FROM samples", "--format", "json"],
                cwd=REPO, capture_output=True, text=True, timeout=60,
            )
            assert res.returncode == 0, res.stderr
            counts.append(json.loads(res.stdout)["n"])
            if writer.poll() is None:
                during += 1
    finally:
        writer.wait(timeout=120)
    assert writer.returncode == 0, writer.stderr.read()
    assert during >= 2, "the writer finished before any read could overlap it"
    assert counts == sorted(counts) and counts[0] < 60_000  # reads saw the load progress
    res = subprocess.run([sys.executable, "-m", "curation.cli.app", "--db", str(store.path), "sql",
                          "SELECT count(*) AS n FROM samples", "--format", "json"], cwd=REPO, capture_output=True, text=True)
    assert json.loads(res.stdout)["n"] == 60_000
