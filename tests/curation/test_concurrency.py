"""Nothing lost, nothing doubled: processes racing on one store, kill -9 at random points, readers and writers.

Every scenario runs real processes on a real store file and ends with the store's audit (per batch read =
loaded + quarantined, per run input = kept + dropped, no sample, decision or signal twice).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from curation.store import Store
from curation.store.audit import audit
from curation.store.lease import LeaseLost, Owner, check_lease, current_owner
from curation.store.store import utcnow
from tests.conftest import REPO

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
WORDS = ("river stone garden window market winter silver engine planet forest letter signal bridge copper "
         "harbor lantern meadow orbit puzzle quarry rocket saddle tunnel valley wagon yellow zebra anchor "
         "basket candle dragon ember falcon glacier hollow island jungle kettle ladder magnet nickel oyster").split()
LIGHT_PIPELINE = textwrap.dedent("""
    batch_rows = 1500
    [[steps]]
    type = "clean"
    [[steps]]
    type = "quality"
    [[steps]]
    type = "exact_dedup"
    [[steps]]
    type = "near_dedup"
""")


def rows(store: Store, sql: str, params: list | None = None) -> list[tuple]:
    with store.reader() as con:
        return con.execute(sql, params or []).fetchall()


def make_jsonl(path: Path, n: int, seed: int = 0, bad_every: int = 0) -> Path:
    """``n`` alpaca rows of random words (distinct, not near copies); every ``bad_every``-th line malformed."""
    rnd = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            if bad_every and i % bad_every == bad_every - 1:
                f.write('{"instruction": "broken\n')
                continue
            ins = " ".join(rnd.choices(WORDS, k=8))
            out = " ".join(rnd.choices(WORDS, k=30))
            f.write(json.dumps({"instruction": f"{i}: {ins}?", "input": "", "output": f"{out}."}) + "\n")
    return path


def assert_audit_ok(store: Store) -> None:
    res = audit(store)
    assert res.ok, res.violations


def spawn(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], env=ENV, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


INGEST = textwrap.dedent("""
    import sys
    from curation.ingest import IngestOptions, ingest_paths
    from curation.store import Store
    # small chunks and writes: many transactions, so that a kill can land between any two
    opts = IngestOptions(chunk_bytes=256 << 10, write_rows=2000)
    for r in ingest_paths(Store(sys.argv[1]), sys.argv[2:], opts):
        print(r.model_dump_json())
""")

RUN = textwrap.dedent("""
    import sys
    from curation.pipeline import load_config
    from curation.pipeline.executor import run_pipeline
    from curation.store import Store
    r = run_pipeline(Store(sys.argv[1]), load_config(sys.argv[2]))
    print(r.run_id, r.status, r.resumed, r.skipped)
""")


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "curation.cli.app", *args], env={**ENV, **(env or {})}, cwd=REPO,
                          capture_output=True, text=True, timeout=300)


# -- 1. the same file by two processes at once -----------------------------------------------------------

def test_the_same_file_ingested_by_two_processes_at_once_is_loaded_once(tmp_path) -> None:
    data = make_jsonl(tmp_path / "same.jsonl", 20_000, bad_every=997)
    db = tmp_path / "s.duckdb"
    Store(db).init()
    procs = [spawn(INGEST, str(db), str(data)) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    reports = [json.loads(o[0].splitlines()[-1]) for o in outs]
    store = Store(db)
    assert rows(store, "SELECT count(*), count(DISTINCT sample_id) FROM samples") == [(19_980, 19_980)]
    assert rows(store, "SELECT status, rows_read, rows_loaded, rows_quarantined FROM batches") == [("done", 20_000, 19_980, 20)]
    # one loaded it; the other waited and then found it loaded
    loaded = [r for r in reports if not r["skipped"]]
    skipped = [r for r in reports if r["skipped"]]
    assert len(loaded) == 1 and len(skipped) == 1 and "identical to batch 1" in skipped[0]["skipped"], reports
    assert_audit_ok(store)


def test_two_files_with_one_source_name_at_once_never_double_a_sample(tmp_path) -> None:
    """Sample ids contain the source name: two different files loaded as one name share the ids of their
    identical rows. Loaded at once, each identical row is stored once (counted as present by the other)."""
    a = make_jsonl(tmp_path / "a.jsonl", 6000, seed=1)
    b = tmp_path / "b.jsonl"
    lines = a.read_text(encoding="utf-8").splitlines(keepends=True)
    b.write_text("".join(lines[:3000]) + "".join(make_jsonl(tmp_path / "x.jsonl", 3000, seed=2)
                                                 .read_text(encoding="utf-8").splitlines(keepends=True)), encoding="utf-8")
    db = tmp_path / "s.duckdb"
    Store(db).init()
    code = INGEST.replace("IngestOptions(", "IngestOptions(source_name='shared', ")
    procs = [spawn(code, str(db), str(f)) for f in (a, b)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    store = Store(db)
    assert rows(store, "SELECT count(*), count(DISTINCT sample_id) FROM samples") == [(9000, 9000)]
    assert rows(store, "SELECT sum(rows_already_present) FROM batches") == [(3000,)]
    assert_audit_ok(store)


# -- 2. two runs at once ----------------------------------------------------------------------------------

def test_a_second_run_while_one_runs_is_refused_and_says_which(tmp_path) -> None:
    data = make_jsonl(tmp_path / "d.jsonl", 9000)
    db = tmp_path / "s.duckdb"
    cfg = tmp_path / "light.toml"
    cfg.write_text(LIGHT_PIPELINE)
    assert cli("--db", str(db), "ingest", str(data)).returncode == 0
    store = Store(db)
    first = spawn(RUN, str(db), str(cfg))
    deadline = time.monotonic() + 120
    while not rows(store, "SELECT run_id FROM runs WHERE status = 'running'"):
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    second = cli("--db", str(db), "run", "--config", str(cfg))
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    assert second.returncode == 4, second.stdout + second.stderr
    said = " ".join(second.stderr.split())
    assert "run 1 is in progress" in said and f"pid {first.pid}" in said, said
    assert rows(store, "SELECT count(*), count(*) FILTER (status = 'done') FROM runs") == [(1, 1)]
    steps = rows(store, "SELECT step, rows_in, rows_done FROM run_steps WHERE kind = 'row' ORDER BY position")
    assert steps and all(r[1] == r[2] == 9000 for r in steps if r[0] == "clean"), steps
    assert_audit_ok(store)


# -- kill -9 at random points, repeated with a seed ---------------------------------------------------

@pytest.mark.parametrize("seed", [7])
def test_kill_9_at_random_points_of_ingest_and_run_loses_and_doubles_nothing(tmp_path, seed) -> None:
    rnd = random.Random(seed)
    files = [make_jsonl(tmp_path / f"f{i}.jsonl", 15_000, seed=i, bad_every=499) for i in range(2)]
    cfg = tmp_path / "light.toml"
    cfg.write_text(LIGHT_PIPELINE)
    db = tmp_path / "s.duckdb"
    Store(db).init()
    store = Store(db)
    # kills at random shares of how long the uninterrupted work takes on this machine (a fixed number of seconds
    # lands after the work on a fast one): three tries of at most 0.3 of it each cannot finish the work
    Store(tmp_path / "timing.duckdb").init()
    started = time.monotonic()
    p = spawn(INGEST, str(tmp_path / "timing.duckdb"), *map(str, files))
    assert p.communicate(timeout=300) and p.returncode == 0
    ingest_s = time.monotonic() - started
    killed = 0
    for _attempt in range(3):
        p = spawn(INGEST, str(db), *map(str, files))
        time.sleep(rnd.uniform(0.1, 0.3) * ingest_s)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            killed += 1
        p.communicate(timeout=120)
        assert_audit_ok(store)  # what is marked done is whole after any kill
    p = spawn(INGEST, str(db), *map(str, files))
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-2000:]
    expected = 2 * (15_000 - 15_000 // 499)
    assert rows(store, "SELECT count(*), count(DISTINCT sample_id) FROM samples s JOIN batches b USING (batch_id) "
                       "WHERE b.status = 'done'") == [(expected, expected)]
    assert rows(store, "SELECT sum(rows_read), sum(rows_quarantined) FROM batches WHERE status = 'done'") == [
        (30_000, 2 * (15_000 // 499))]
    assert_audit_ok(store)

    # the run: the same decisions as an uninterrupted run on a copy of the store
    ref = Store(tmp_path / "ref.duckdb")
    shutil.copy(db, ref.path)
    started = time.monotonic()
    r = subprocess.run([sys.executable, "-c", RUN, str(ref.path), str(cfg)], env=ENV, cwd=REPO, capture_output=True,
                       text=True, timeout=600)
    run_s = time.monotonic() - started
    assert r.returncode == 0, r.stderr[-2000:]
    for _attempt in range(3):
        p = spawn(RUN, str(db), str(cfg))
        time.sleep(rnd.uniform(0.1, 0.3) * run_s)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            killed += 1
        p.communicate(timeout=120)
        assert_audit_ok(store)
    p = spawn(RUN, str(db), str(cfg))
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-2000:]
    assert killed >= 3  # the kills landed mid-work, not after it
    decisions = "SELECT sample_id, step, verdict, reason FROM decisions ORDER BY ALL"
    assert rows(store, decisions) == rows(ref, decisions)
    assert rows(store, "SELECT count(*) FROM kept") == rows(ref, "SELECT count(*) FROM kept")
    assert_audit_ok(store)


# -- readers never starve a writer ------------------------------------------------------------------------

READERS = textwrap.dedent("""
    import sys, time
    from curation.store import Store
    s = Store(sys.argv[1], lock_timeout=600)
    end = time.monotonic() + float(sys.argv[2])
    n = 0
    while time.monotonic() < end:
        with s.reader() as con:
            con.execute("SELECT count(*), sum(length(output)) FROM samples, range(3)").fetchall()
            time.sleep(0.05)
        n += 1
    print(n)
""")


def test_a_writer_gets_its_turn_under_a_stream_of_readers(tmp_path) -> None:
    db = tmp_path / "s.duckdb"
    assert cli("--db", str(db), "ingest", str(make_jsonl(tmp_path / "a.jsonl", 3000))).returncode == 0
    readers = [spawn(READERS, str(db), "40") for _ in range(3)]
    time.sleep(2.0)  # the readers are in their loop, overlapping one another
    t0 = time.monotonic()
    res = cli("--db", str(db), "ingest", str(make_jsonl(tmp_path / "b.jsonl", 3000, seed=3)),
              env={"CURATE_LOCK_TIMEOUT": "20"})
    took = time.monotonic() - t0
    for r in readers:
        r.kill()
        r.communicate()
    assert res.returncode == 0, res.stderr[-2000:]
    assert took < 20, took
    assert rows(Store(db), "SELECT count(*) FROM batches WHERE status = 'done'") == [(2,)]


# -- a run's input never changes after the run ------------------------------------------------------------

def _dead_owner() -> str:
    """The lease token of a process that has exited."""
    code = "from curation.store.lease import current_owner; print(current_owner().token())"
    return subprocess.run([sys.executable, "-c", code], env=ENV, cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_a_run_stops_before_a_batch_still_loading(tmp_path) -> None:
    from curation.ingest import ingest_paths
    from curation.pipeline.executor import run_pipeline
    from schemas.pipeline import PipelineConfig, StepConfig

    store = Store(tmp_path / "s.duckdb")
    a, b, c = (make_jsonl(tmp_path / f"{n}.jsonl", 200, seed=i) for i, n in enumerate("abc"))
    ingest_paths(store, [str(a)])
    # batch 2: b, being loaded right now by a live process (this one)
    with store.writer() as con:
        con.execute("""INSERT INTO batches (source, source_name, format, content_hash, options_hash, status, owner,
                                            heartbeat_at, ingested_at)
                       VALUES ('b', 'b.jsonl', 'jsonl', 'h', 'o', 'loading', ?, ?, ?)""",
                    [current_owner().token(), utcnow(), utcnow()])
    ingest_paths(store, [str(c)])
    cfg = PipelineConfig(steps=[StepConfig(type="clean"), StepConfig(type="exact_dedup")])
    first = run_pipeline(store, cfg)
    assert rows(store, "SELECT max_batch_id, samples_in FROM runs WHERE run_id = ?", [first.run_id]) == [(1, 200)]
    # the loader of batch 2 dies; the next run covers batches 1 to 3, and b loaded later gets a new id
    with store.writer() as con:
        con.execute("UPDATE batches SET owner = ? WHERE batch_id = 2", [_dead_owner()])
    second = run_pipeline(store, cfg)
    assert rows(store, "SELECT max_batch_id, samples_in FROM runs WHERE run_id = ?", [second.run_id]) == [(3, 400)]
    assert_audit_ok(store)


def test_an_interrupted_load_is_reloaded_under_a_new_id_once_a_run_covers_it(tmp_path) -> None:
    from curation.ingest import ingest_paths
    from curation.pipeline.executor import run_pipeline
    from schemas.pipeline import PipelineConfig, StepConfig

    store = Store(tmp_path / "s.duckdb")
    a, b, c = (make_jsonl(tmp_path / f"{n}.jsonl", 200, seed=i) for i, n in enumerate("abc"))
    ingest_paths(store, [str(a), str(b), str(c)])
    # batch 2 (b) as a kill -9 would leave it: 'loading', some rows, its owner gone
    with store.writer() as con:
        con.execute("UPDATE batches SET status = 'loading', owner = ? WHERE batch_id = 2", [_dead_owner()])
    run = run_pipeline(store, PipelineConfig(steps=[StepConfig(type="clean")]))
    assert rows(store, "SELECT max_batch_id, samples_in FROM runs") == [(3, 400)]
    report = ingest_paths(store, [str(b)])[0]
    assert report.batch_id == 4 and report.rows_loaded == 200
    assert rows(store, "SELECT batch_id, status FROM batches ORDER BY 1") == [
        (1, "done"), (2, "failed"), (3, "done"), (4, "done")]
    assert "loaded again as batch 4" in rows(store, "SELECT problems FROM batches WHERE batch_id = 2")[0][0]
    # the run's input did not change; the next run reads b too
    assert rows(store, "SELECT count(*) FROM run_texts(?)", [run.run_id]) == [(400,)]
    assert_audit_ok(store)


# -- leases -----------------------------------------------------------------------------------------------

def test_a_process_taken_for_dead_stops_at_its_next_write(tmp_path) -> None:
    store = Store(tmp_path / "s.duckdb")
    store.init()
    me = current_owner()
    with store.writer() as con:
        con.execute("""INSERT INTO batches (source, source_name, format, content_hash, options_hash, status, owner,
                                            heartbeat_at, ingested_at) VALUES ('x', 'x', 'jsonl', 'h', 'o', 'loading', ?, ?, ?)""",
                    [me.token(), utcnow(), utcnow()])
        check_lease(con, "batches", "batch_id", 1, me, utcnow())
        con.execute("UPDATE batches SET owner = 'elsewhere:1:1' WHERE batch_id = 1")
    with pytest.raises(LeaseLost, match="pid 1 on elsewhere"), store.writer() as con:
        check_lease(con, "batches", "batch_id", 1, me, utcnow())


def test_liveness_of_owners() -> None:
    from datetime import timedelta

    now = utcnow()
    assert current_owner().alive(None, now)
    assert not Owner.parse(_dead_owner()).alive(now, now)  # gone, however fresh its heartbeat
    me = current_owner()
    assert not Owner(me.host, me.pid, "12345").alive(now, now)  # the same pid, another process
    remote = Owner("another-host", 42, "1")
    assert remote.alive(now - timedelta(seconds=30), now)
    assert not remote.alive(now - timedelta(seconds=3600), now)
    assert not remote.alive(None, now)
    assert Owner.parse(remote.token()) == remote and Owner.parse(None) is None


# -- --db naming something that is not a store ------------------------------------------------------------

@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_db_naming_a_data_file_is_refused_and_the_file_kept(tmp_path, kind) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = tmp_path / f"data.{kind}"
    if kind == "csv":
        target.write_text("instruction,output\nq,a\n")
    else:
        pq.write_table(pa.table({"instruction": ["q"], "output": ["a"]}), target)
    before = target.read_bytes()
    res = cli("--db", str(target), "ingest", str(make_jsonl(tmp_path / "a.jsonl", 5)))
    assert res.returncode == 2, res.stdout + res.stderr
    assert "is not a DuckDB store" in " ".join(res.stderr.split())
    assert "Traceback" not in res.stderr
    assert target.read_bytes() == before
    assert cli("--db", str(target), "sql", "SELECT 1").returncode == 2


# -- the audit itself -------------------------------------------------------------------------------------

def test_curate_check_finds_what_the_races_used_to_leave(tmp_path) -> None:
    """`curate check` passes on a sound store and names each broken invariant on one made unsound by hand."""
    db = tmp_path / "s.duckdb"
    cfg = tmp_path / "light.toml"
    cfg.write_text(LIGHT_PIPELINE)
    assert cli("--db", str(db), "ingest", str(make_jsonl(tmp_path / "a.jsonl", 300, bad_every=100))).returncode == 0
    assert cli("--db", str(db), "run", "--config", str(cfg)).returncode == 0
    ok = cli("--db", str(db), "check", "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["ok"], ok.stdout
    with Store(db).writer() as con:  # what two loaders of one file used to leave, and a step written twice
        con.execute("INSERT INTO samples SELECT * FROM samples LIMIT 5")
        con.execute("INSERT INTO signals SELECT * FROM signals LIMIT 2")
        con.execute("UPDATE batches SET rows_read = rows_read + 1")
    bad = cli("--db", str(db), "check")
    assert bad.returncode == 1
    said = " ".join(bad.stdout.split())
    assert "read 301 != loaded 297 + quarantined 3" in said
    assert "5 doubled" in said and "signal(s) written more than once" in said, said


def test_curate_batches_tells_a_live_load_from_an_interrupted_one(tmp_path) -> None:
    db = tmp_path / "s.duckdb"
    assert cli("--db", str(db), "ingest", str(make_jsonl(tmp_path / "a.jsonl", 10))).returncode == 0
    with Store(db).writer() as con:
        for token in (current_owner().token(), _dead_owner()):
            con.execute("""INSERT INTO batches (source, source_name, format, content_hash, options_hash, status, owner,
                                                heartbeat_at, ingested_at) VALUES ('x', 'x', 'jsonl', 'h', 'o', 'loading', ?, ?, ?)""",
                        [token, utcnow(), utcnow()])
    listed = [json.loads(x) for x in cli("--db", str(db), "batches", "--json").stdout.splitlines()]
    assert [b["status"] for b in listed] == ["done", f"loading (pid {os.getpid()} on {current_owner().host})", "interrupted"]
