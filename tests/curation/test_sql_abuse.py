"""`curate sql` against a hostile user: --output never destroys the store or an existing file and writes
atomically; a runaway query is stopped by a timeout and a huge result is cut; no file next to the store (or
anywhere) can be read through SQL; multi-statement input and PIVOT get a clear answer."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.ingest import ingest_paths
from curation.store import Store
from tests.conftest import SAMPLE_DIR

SECRET = "TOKEN-5f3a9c-label-studio"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def loaded(store):
    ingest_paths(store, [str(SAMPLE_DIR / "dialogues_sharegpt.jsonl")])
    return store


@pytest.fixture(scope="module")
def secret_store(tmp_path_factory) -> Store:
    """A loaded store in its own folder, next to files that must stay unreadable: a Label Studio database
    holding a token, and the same secret as CSV, JSON, text and Parquet."""
    folder = tmp_path_factory.mktemp("abuse") / "data"
    store = Store(folder / "curate.duckdb", lock_timeout=30)
    ingest_paths(store, [str(SAMPLE_DIR / "dialogues_sharegpt.jsonl")])
    (folder / "label_studio.sqlite3").write_text(f"SQLite format 3\x00 api_token={SECRET}\n")
    (folder / "secret.txt").write_text(f"{SECRET}\n")
    (folder / "secret.csv").write_text(f"token\n{SECRET}\n")
    (folder / "secret.json").write_text(json.dumps({"token": SECRET}) + "\n")
    pq.write_table(pa.table({"token": [SECRET]}), folder / "secret.parquet")
    return store


@pytest.fixture
def scli(runner, secret_store, monkeypatch):
    """`curate --db <secret store> ...`, run from the store's folder (so relative paths point at the secrets)."""
    from curation.cli.app import app

    monkeypatch.chdir(secret_store.path.parent)

    def invoke(*args: str):
        return runner.invoke(app, ["--db", str(secret_store.path), *args], catch_exceptions=False)

    return invoke


# ---------------------------------------------------------------- 1. --output


def _store_targets(store: Path) -> dict[str, Path]:
    """The store reached by other names: itself, through `..`, a symbolic link, a hard link; and its WAL."""
    folder = store.parent
    (folder / "link.duckdb").symlink_to(store)
    os.link(store, folder / "hard.duckdb")
    return {"itself": store, "dotdot": folder / ".." / folder.name / store.name, "symlink": folder / "link.duckdb",
            "hardlink": folder / "hard.duckdb", "wal": store.with_name(store.name + ".wal"), "gate": store.with_name(store.name + ".gate")}


def test_output_never_writes_to_the_store(cli, loaded, tmp_path: Path) -> None:
    before = _digest(loaded.path)
    for name, target in _store_targets(loaded.path).items():
        for extra in ([], ["--overwrite"], ["--format", "parquet", "--overwrite"]):
            res = cli("sql", "SELECT 1 AS x", "--output", str(target), *extra)
            assert res.exit_code == 3, (name, extra, res.output)
            assert "refused" in res.output and "store" in res.output, res.output
        assert _digest(loaded.path) == before, name
    assert not loaded.path.with_name(loaded.path.name + ".wal").exists()
    assert cli("sql", "SELECT count(*) AS n FROM samples", "--format", "json").stdout.strip() == '{"n": 400}'


def test_output_refuses_an_existing_file_unless_overwrite(cli, loaded, tmp_path: Path) -> None:
    out = tmp_path / "result.csv"
    out.write_text("precious\n")
    res = cli("sql", "SELECT 1 AS x", "--output", str(out))
    assert res.exit_code == 2, res.output
    assert "exists" in res.output and "--overwrite" in res.output
    assert out.read_text() == "precious\n"
    res = cli("sql", "SELECT 1 AS x", "--output", str(out), "--overwrite")
    assert res.exit_code == 0, res.output
    assert out.read_text().splitlines() == ["\"x\"", "1"]


def test_output_is_written_atomically(cli, loaded, tmp_path: Path, monkeypatch) -> None:
    """A write that fails half way leaves no partial file, no temporary file, and an overwritten file as it was."""
    import pyarrow.parquet as pq_module

    monkeypatch.setenv("CURATE_LOG_DIR", str(tmp_path / "logs"))
    folder = tmp_path / "out"
    folder.mkdir()

    def broken_write(table, where, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pq_module, "write_table", broken_write)
    res = cli("sql", "SELECT * FROM samples", "--output", str(folder / "r.parquet"))
    assert res.exit_code != 0
    assert list(folder.iterdir()) == []
    (folder / "r.parquet").write_bytes(b"old")
    res = cli("sql", "SELECT * FROM samples", "--output", str(folder / "r.parquet"), "--overwrite")
    assert res.exit_code != 0
    assert [p.name for p in folder.iterdir()] == ["r.parquet"] and (folder / "r.parquet").read_bytes() == b"old"


@pytest.mark.parametrize("name,kind", [("r.parquet", "parquet"), ("r.PQ", "parquet"), ("r.csv", "csv"),
                                       ("r.json", "json"), ("r.jsonl", "json"), ("r.ndjson", "json")])
def test_output_format_follows_the_extension(cli, loaded, tmp_path: Path, name: str, kind: str) -> None:
    out = tmp_path / name
    res = cli("sql", "SELECT sample_id, shape FROM samples ORDER BY row_number LIMIT 3", "--output", str(out))
    assert res.exit_code == 0, res.output
    if kind == "parquet":
        assert pq.read_table(out).column("shape").to_pylist() == ["sharegpt"] * 3
    elif kind == "csv":
        assert out.read_text().splitlines()[0] == '"sample_id","shape"'
    else:
        assert [json.loads(x)["shape"] for x in out.read_text().splitlines()] == ["sharegpt"] * 3


def test_output_format_mistakes_are_usage_errors(cli, loaded, tmp_path: Path) -> None:
    res = cli("sql", "SELECT 1 AS x", "--output", str(tmp_path / "r.txt"))
    assert res.exit_code == 2 and ".parquet" in res.output and ".csv" in res.output and "--format" in res.output
    res = cli("sql", "SELECT 1 AS x", "--output", str(tmp_path / "r.parquet"), "--format", "csv")
    assert res.exit_code == 2 and "parquet" in res.output and "csv" in res.output
    res = cli("sql", "SELECT 1 AS x", "--output", str(tmp_path / "r.csv"), "--format", "table")
    assert res.exit_code == 2
    assert list(tmp_path.glob("r.*")) == []
    res = cli("sql", "SELECT 1 AS x", "--output", str(tmp_path / "r.txt"), "--format", "csv")  # said explicitly
    assert res.exit_code == 0 and (tmp_path / "r.txt").read_text().splitlines() == ['"x"', "1"]


def test_output_to_a_folder_or_a_missing_folder(cli, loaded, tmp_path: Path) -> None:
    (tmp_path / "dir.csv").mkdir()
    res = cli("sql", "SELECT 1 AS x", "--output", str(tmp_path / "dir.csv"), "--overwrite")
    assert res.exit_code == 2 and "folder" in res.output and "Traceback" not in res.output, res.output
    res = cli("sql", "SELECT 1 AS x", "--output", str(tmp_path / "nope" / "deeper" / "r.csv"))
    assert res.exit_code == 2 and "does not exist" in res.output and "Traceback" not in res.output, res.output
    assert not (tmp_path / "nope").exists()
    if Path("/dev/null").exists():  # a device is never replaced by a file, even with --overwrite
        res = cli("sql", "SELECT 1 AS x", "--output", "/dev/null", "--format", "csv", "--overwrite")
        assert res.exit_code == 2 and "not a regular file" in res.output, res.output
        assert Path("/dev/null").is_char_device()


# ---------------------------------------------------------------- 2. timeout and row cap

RUNAWAY = "SELECT count(*) FROM range(100000000) a, range(100000000) b WHERE a.range + b.range = 7"


def test_timeout_stops_a_runaway_query(cli, loaded, monkeypatch) -> None:
    before = _digest(loaded.path)
    t0 = time.monotonic()
    res = cli("sql", RUNAWAY, "--timeout", "1")
    assert time.monotonic() - t0 < 30
    assert res.exit_code == 3, res.output
    assert "1 s" in res.output and "--timeout" in res.output and "CURATE_SQL_TIMEOUT" in res.output
    # the process and the store are fine afterwards
    assert cli("sql", "SELECT count(*) AS n FROM samples", "--format", "json").stdout.strip() == '{"n": 400}'
    assert _digest(loaded.path) == before
    monkeypatch.setenv("CURATE_SQL_TIMEOUT", "1")
    t0 = time.monotonic()
    res = cli("sql", RUNAWAY)
    assert res.exit_code == 3 and time.monotonic() - t0 < 30 and "1 s" in res.output, res.output


def test_timeout_in_the_library_leaves_the_process_usable(loaded) -> None:
    from curation.errors import RefusedError
    from curation.sql import run_query

    with pytest.raises(RefusedError, match="timeout"):
        run_query(loaded, RUNAWAY, timeout=0.5)
    assert run_query(loaded, "SELECT count(*) AS n FROM samples", timeout=0.5).column("n").to_pylist() == [400]


def test_timeout_option_checks(cli, loaded, monkeypatch) -> None:
    assert cli("sql", "SELECT 1", "--timeout", "-1").exit_code == 2
    assert cli("sql", "SELECT 1 AS x", "--timeout", "0", "--format", "json").stdout.strip() == '{"x": 1}'
    monkeypatch.setenv("CURATE_SQL_TIMEOUT", "soon")
    res = cli("sql", "SELECT 1")
    assert res.exit_code == 2 and "CURATE_SQL_TIMEOUT" in res.output


def test_limit_rows_cuts_any_output_without_running_the_whole_query(cli, loaded, tmp_path: Path, monkeypatch) -> None:
    huge = "SELECT range AS i FROM range(10000000000000) ORDER BY i DESC"  # a sort that could never finish
    t0 = time.monotonic()
    res = cli("sql", "SELECT range AS i FROM range(10000000000000)", "--limit-rows", "5", "--format", "json",
              "--timeout", "60")
    assert time.monotonic() - t0 < 30
    assert res.exit_code == 0, res.output
    assert [json.loads(x)["i"] for x in res.stdout.splitlines()] == [0, 1, 2, 3, 4]
    assert "result cut at 5 rows; pass --limit-rows" in res.stderr
    res = cli("sql", "SELECT range AS i FROM range(1000) ORDER BY i DESC", "--limit-rows", "3", "--format", "csv")
    assert res.stdout.splitlines() == ['"i"', "999", "998", "997"] and "cut at 3 rows" in res.stderr
    res = cli("sql", "SELECT range AS i FROM range(3)", "--limit-rows", "3", "--format", "csv")
    assert res.stdout.splitlines() == ['"i"', "0", "1", "2"] and "cut" not in res.stderr  # exactly the cap: whole
    out = tmp_path / "r.parquet"
    res = cli("sql", "SELECT * FROM samples", "--limit-rows", "7", "--output", str(out))
    assert res.exit_code == 0 and pq.read_table(out).num_rows == 7 and "cut at 7 rows" in res.stderr
    monkeypatch.setenv("CURATE_SQL_MAX_ROWS", "2")
    res = cli("sql", "SELECT * FROM samples", "--format", "json")
    assert len(res.stdout.splitlines()) == 2 and "cut at 2 rows" in res.stderr
    assert cli("sql", huge, "--limit-rows", "-1").exit_code == 2


def test_table_display_keeps_its_own_cap(cli, loaded) -> None:
    res = cli("sql", "SELECT range AS i FROM range(10000000000000)", "--max-rows", "4", "--timeout", "60")
    assert res.exit_code == 0, res.output
    assert "more rows not shown" in res.stderr
    assert " 3 " in res.stdout and " 4 " not in res.stdout


# ---------------------------------------------------------------- 3. no file reads


def _paths(store: Store, name: str) -> dict[str, str]:
    folder = store.path.parent
    return {"relative": name, "dot": f"./{name}", "absolute": str(folder / name),
            "dotdot": f"../{folder.name}/{name}", "file_url": f"file://{folder / name}",
            "glob": str(folder / ("*" + Path(name).suffix)), "glob_relative": "*" + Path(name).suffix}


READS = [
    ("read_text", "SELECT * FROM read_text('{p}')", "secret.txt"),
    ("read_blob", "SELECT * FROM read_blob('{p}')", "label_studio.sqlite3"),
    ("read_blob", "SELECT * FROM read_blob('{p}')", "curate.duckdb"),
    ("read_csv", "SELECT * FROM read_csv('{p}')", "secret.csv"),
    ("read_csv_auto", "SELECT * FROM read_csv_auto('{p}')", "secret.csv"),
    ("read_json", "SELECT * FROM read_json('{p}')", "secret.json"),
    ("read_json_auto", "SELECT * FROM read_json_auto('{p}')", "secret.json"),
    ("read_ndjson", "SELECT * FROM read_ndjson('{p}')", "secret.json"),
    ("read_json_objects", "SELECT * FROM read_json_objects('{p}')", "secret.json"),
    ("read_parquet", "SELECT * FROM read_parquet('{p}')", "secret.parquet"),
    ("parquet_scan", "SELECT * FROM parquet_scan('{p}')", "secret.parquet"),
    ("parquet_metadata", "SELECT * FROM parquet_metadata('{p}')", "secret.parquet"),
    ("parquet_schema", "SELECT * FROM parquet_schema('{p}')", "secret.parquet"),
    ("parquet_kv_metadata", "SELECT * FROM parquet_kv_metadata('{p}')", "secret.parquet"),
    ("parquet_file_metadata", "SELECT * FROM parquet_file_metadata('{p}')", "secret.parquet"),
    ("sniff_csv", "SELECT * FROM sniff_csv('{p}')", "secret.csv"),
    ("glob", "SELECT * FROM glob('{p}')", "secret.txt"),
    ("read_duckdb", "SELECT * FROM read_duckdb('{p}', table_name => 'samples')", "curate.duckdb"),
    ("read_text", "SELECT length(content) FROM main.\"read_text\" ( '{p}' )", "secret.txt"),
    ("read_text", "EXPLAIN ANALYZE SELECT * FROM read_text('{p}')", "secret.txt"),
    ("read_text", "SELECT (SELECT content FROM read_text('{p}')) AS c", "secret.txt"),
    ("read_csv", "WITH s AS (SELECT * FROM read_csv('{p}')) SELECT * FROM samples, s LIMIT 1", "secret.csv"),
    ("read_csv", "PIVOT read_csv('{p}') ON token USING count(*)", "secret.csv"),
    ("query", "SELECT * FROM query('SELECT * FROM read_text(''{p}'')')", "secret.txt"),
    ("file", "SELECT * FROM '{p}'", "secret.csv"),
    ("file", "SELECT * FROM \"{p}\"", "secret.csv"),
    ("file", "SELECT * FROM samples JOIN '{p}' ON true", "secret.csv"),
    ("file", "SUMMARIZE '{p}'", "secret.csv"),
    ("file", "DESCRIBE '{p}'", "secret.parquet"),
    ("file", "PIVOT '{p}' ON token USING count(*)", "secret.csv"),
]


@pytest.mark.parametrize("how", ["relative", "dot", "absolute", "dotdot", "file_url", "glob", "glob_relative"])
@pytest.mark.parametrize("fn,template,name", READS, ids=[f"{r[0]}-{i}" for i, r in enumerate(READS)])
def test_no_file_can_be_read(scli, secret_store, fn: str, template: str, name: str, how: str) -> None:
    query = template.format(p=_paths(secret_store, name)[how])
    res = scli("sql", query, "--format", "csv")
    assert res.exit_code == 3, res.output
    assert "refused" in res.output
    assert SECRET not in res.output and "SQLite" not in res.output and "DUCK" not in res.output
    if fn != "file":
        assert f"{fn}(" in res.output  # the check on the parse names the function


@pytest.mark.parametrize("fn,template,name", READS, ids=[f"{r[0]}-{i}" for i, r in enumerate(READS)])
def test_the_connection_itself_reads_no_file(secret_store, fn: str, template: str, name: str) -> None:
    """The second layer: past the check on the parse, the connection cannot touch the file system at all,
    not even the store's own file or its folder."""
    import duckdb

    from curation.sql import locked_reader

    for how, path in _paths(secret_store, name).items():
        with locked_reader(secret_store) as con:
            with pytest.raises(duckdb.Error) as e:
                con.sql(template.format(p=path)).fetchall()
            assert SECRET not in str(e.value), (how, e.value)
            assert isinstance(e.value, duckdb.PermissionException) or "Permission" in str(e.value) \
                or "does not exist" in str(e.value), (how, e.value)


def test_the_store_still_answers_through_the_locked_connection(scli, secret_store) -> None:
    from curation.sql import run_query

    assert run_query(secret_store, "SELECT count(*) AS n FROM samples").column("n").to_pylist() == [400]
    for q in ["SELECT * FROM run_texts(1)", "SELECT * FROM kept", "SELECT * FROM funnel", "SELECT * FROM batch_accounting",
              "SELECT * FROM funnel_for(1)", "SUMMARIZE samples", "DESCRIBE samples", "SHOW TABLES",
              "SELECT * FROM duckdb_tables()", "SELECT * FROM range(3)", "EXPLAIN SELECT * FROM samples"]:
        res = scli("sql", q, "--format", "json")
        assert res.exit_code == 0, (q, res.output)
    res = scli("sql", "SELECT source FROM samples WHERE source LIKE '%.jsonl' LIMIT 1", "--format", "json")
    assert res.exit_code == 0 and "dialogues_sharegpt.jsonl" in res.stdout  # a path in a string is only a string


# ---------------------------------------------------------------- 4. several statements, PIVOT, refusals


def test_several_statements_get_a_clear_answer(cli, loaded) -> None:
    res = cli("sql", "SELECT 1; SELECT 2")
    assert res.exit_code == 2, res.output
    assert "one statement" in res.output and "unfinished" not in res.output
    assert cli("sql", "SELECT 1 AS x;", "--format", "json").stdout.strip() == '{"x": 1}'  # a trailing ; is fine
    res = cli("sql", "SELECT 1; DELETE FROM samples")
    assert res.exit_code == 3 and "refused" in res.output


def test_pivot_works(cli, loaded) -> None:
    res = cli("sql", "PIVOT samples ON shape USING count(*) GROUP BY batch_id", "--format", "json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {"batch_id": 1, "sharegpt": 400}
    res = cli("sql", "PIVOT samples ON shape IN ('sharegpt', 'alpaca') USING count(*) GROUP BY batch_id", "--format", "json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {"batch_id": 1, "sharegpt": 400, "alpaca": 0}
    res = cli("sql", "WITH s AS (SELECT shape FROM samples) PIVOT s ON shape USING count(*)", "--format", "json")
    assert res.exit_code == 0 and json.loads(res.stdout) == {"sharegpt": 400}, res.output
    assert cli("sql", "PIVOT samples ON shape USING count(*)").exit_code == 0


@pytest.mark.parametrize("query", [
    "SET threads = 1",
    "RESET threads",
    "PRAGMA version",
    "ATTACH ':memory:' AS m",
    "DETACH m",
    "COPY samples TO 'x.csv'",
    "EXPORT DATABASE 'x'",
    "INSTALL json",
    "LOAD json",
    "CREATE TEMP TABLE t AS SELECT 1",
    "CREATE TEMP MACRO m() AS 1",
    "INSERT INTO samples SELECT * FROM samples",
    "CALL checkpoint()",
    "CALL pragma_version()",
    "CHECKPOINT",
    "USE system",
    "VACUUM",
    "BEGIN TRANSACTION",
    "PREPARE p AS SELECT 1",
    "SELECT * FROM checkpoint()",
    "SELECT * FROM enable_logging()",
    "SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT 1'))",
    "SELECT * FROM query_table('samples')",
    "PIVOT samples ON shape USING count(*); DELETE FROM samples",
])
def test_everything_but_reading_stays_refused(cli, loaded, tmp_path: Path, monkeypatch, query: str) -> None:
    monkeypatch.chdir(tmp_path)
    before = _digest(loaded.path)
    res = cli("sql", query)
    assert res.exit_code == 3, res.output
    assert "refused" in res.output
    assert list(tmp_path.iterdir()) == [loaded.path.parent]
    assert _digest(loaded.path) == before


def test_help_names_the_limits(runner) -> None:
    from curation.cli.app import app

    res = runner.invoke(app, ["sql", "--help"])
    text = " ".join(res.output.split())
    for word in ["--timeout", "CURATE_SQL_TIMEOUT", "--limit-rows", "CURATE_SQL_MAX_ROWS", "--overwrite", "PIVOT",
                 "file", "exit 3", "Example:"]:
        assert word in text, word
