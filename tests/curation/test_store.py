"""The store: migrations, documented schema, readers and writers taking turns."""

from __future__ import annotations

import re

import pytest

from curation.errors import StoreError
from curation.store.migrations import LATEST_VERSION
from schemas.tables import MACROS, TABLES, VIEWS, markdown_reference
from tests.conftest import REPO


def test_init_is_idempotent_and_versioned(store) -> None:
    assert store.init() == LATEST_VERSION
    assert store.init() == LATEST_VERSION
    with store.reader() as con:
        assert con.execute("SELECT count(*) FROM schema_migrations").fetchall()[0][0] == LATEST_VERSION


def test_every_column_is_documented_and_exists(store) -> None:
    store.init()
    with store.reader() as con:
        for t in TABLES + VIEWS:
            cols = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
                [t.name],
            ).fetchall()
            assert [c[0] for c in cols] == t.column_names(), t.name
            for (name, dtype), doc in zip(cols, t.columns):
                norm = lambda s: re.sub(r'[\s"]', "", s).upper()  # noqa: E731
                assert norm(dtype) == norm(doc.type), (t.name, name, dtype, doc.type)


def test_every_macro_is_documented_and_gives_its_columns(store) -> None:
    store.init()
    with store.reader() as con:
        for m in MACROS:
            cols = con.execute(f"DESCRIBE SELECT * FROM {m.name}(NULL)").fetchall()
            assert [c[0] for c in cols] == m.column_names(), m.name
            norm = lambda s: re.sub(r'[\s"]', "", s).upper()  # noqa: E731
            assert [norm(c[1]) for c in cols] == [norm(c.type) for c in m.columns], m.name


def test_a_store_at_schema_6_migrates_its_corrections_out_of_the_run_and_keeps_its_id(store) -> None:
    import duckdb

    from curation.store.migrations import MIGRATIONS

    store.path.parent.mkdir(parents=True)
    con = duckdb.connect(str(store.path))
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, description VARCHAR, applied_at TIMESTAMP)")
    for m in MIGRATIONS[:6]:
        for stmt in m.statements:
            con.execute(stmt)
        con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [m.version, m.description])
    old_id = con.execute("SELECT store_id FROM store_info").fetchall()[0][0]
    # snapshot 1 reviewed; its child 2 pins a correction that the old code wrote under run 1
    con.execute("INSERT INTO sample_texts VALUES ('s1', 1, 1, 'clean', 'q', NULL, 'a', NULL, NULL, NULL, 'h1')")
    con.execute("INSERT INTO sample_texts VALUES ('s1', 2, 1, 'review', 'q', NULL, 'fixed', NULL, NULL, NULL, 'h2')")
    for sid, parent, cert in ((1, None, None), (2, 1, '{"from_reviews_of": 1}')):
        con.execute("INSERT INTO snapshots (snapshot_id, parent_id, run_id, state, content_hash, n_samples, n_new, config, "
                    "created_at, certification) VALUES (?, ?, 1, 'draft', '', 1, 1, '{}', now(), ?)", [sid, parent, cert])
    con.execute("INSERT INTO snapshot_samples VALUES (1, 's1', 1, 'h1', true), (2, 's1', 2, 'h2', false)")
    con.close()
    assert store.init() == LATEST_VERSION
    with store.reader() as con:
        rows = con.execute("SELECT version, run_id, snapshot_id, step FROM sample_texts ORDER BY version").fetchall()
        assert rows == [(1, 1, None, "clean"), (2, None, 1, "review")]
        assert con.execute("SELECT snapshot_id, applied_from FROM snapshots ORDER BY 1").fetchall() == [(1, None), (2, 1)]
    assert store.store_id == old_id and len(old_id) == 36


def test_readme_table_reference_is_current() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert markdown_reference() in readme, "README's table reference is stale: paste schemas.tables.markdown_reference()"


def test_reader_on_missing_store_says_what_to_do(store) -> None:
    with pytest.raises(StoreError, match="curate init"):
        with store.reader():
            pass


def test_newer_store_is_refused(store) -> None:
    store.init()
    with store.writer() as con:
        con.execute("INSERT INTO schema_migrations VALUES (999, 'from the future', now())")
    with pytest.raises(StoreError, match="newer than this code"):
        with store.reader():
            pass


def test_a_store_held_too_long_is_exit_code_4(store, tmp_path) -> None:
    """Another process holding the store past the lock timeout gives a clear message and exit code 4."""
    import subprocess
    import sys

    from typer.testing import CliRunner

    from curation.cli.app import app

    store.init()
    # the holder keeps the store open until its stdin is closed, however long the CLI takes to give up
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import duckdb, sys; c = duckdb.connect({str(store.path)!r}); print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        res = CliRunner().invoke(app, ["--db", str(store.path), "sql", "SELECT 1"], env={"CURATE_LOCK_TIMEOUT": "1"})
        assert res.exit_code == 4, res.output
        said = " ".join(res.output.split())  # the message names the store's path, so where it wraps varies
        assert "locked by another process" in said and "CURATE_LOCK_TIMEOUT" in said, res.output
    finally:
        holder.stdin.close()
        holder.wait()


def test_migration_5_keeps_row_hashes_as_integers(store) -> None:
    """A store at schema 4 (raw_hash as hex text) migrates to the integer column without losing a bit."""
    import duckdb

    from curation.store.migrations import MIGRATIONS

    store.path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(store.path))
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, description VARCHAR, applied_at TIMESTAMP)")
    for m in MIGRATIONS[:4]:
        for stmt in m.statements:
            con.execute(stmt)
        con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [m.version, m.description])
    hashes = ["ffffffffffffffffffffffffffffffff", "00000000000000000000000000000001", "0123456789abcdef0fedcba987654321"]
    for i, h in enumerate(hashes):
        con.execute("INSERT INTO samples (sample_id, batch_id, source, row_number, shape, output, raw_hash) "
                    "VALUES (?, 1, 'f.jsonl', ?, 'alpaca', 'x', ?)", [f"s{i}", i, h])
    con.close()
    assert store.init() == LATEST_VERSION
    with store.reader() as con:
        assert con.execute("SELECT typeof(raw_hash) FROM samples LIMIT 1").fetchall()[0][0] == "UHUGEINT"
        got = [r[0] for r in con.execute("SELECT printf('%032x', raw_hash) FROM samples ORDER BY row_number").fetchall()]
        assert got == hashes
        # the views over samples still bind
        for v in VIEWS:
            con.execute(f"SELECT count(*) FROM {v.name}").fetchall()
