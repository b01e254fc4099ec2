"""Running the pipeline: decisions against the planted truth, idempotence, resume after SIGKILL, export."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curation.errors import UsageError
from curation.ingest import ingest_paths
from curation.pipeline import load_config
from curation.pipeline.executor import run_pipeline
from curation.store import Store
from schemas.pipeline import PipelineConfig, StepConfig
from tests.conftest import REPO, SAMPLE_DIR

FILES = ["instructions.jsonl", "dialogues_sharegpt.jsonl", "messages_openai.json", "instructions_gb18030.csv"]


def rows(store, sql: str, params: list | None = None) -> list[tuple]:
    with store.reader() as con:
        return con.execute(sql, params or []).fetchall()


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> Path:
    """A store with the bundled sample ingested (copied per test)."""
    path = tmp_path_factory.mktemp("ingested") / "curate.duckdb"
    ingest_paths(Store(path), [str(SAMPLE_DIR / f) for f in FILES])
    return path


@pytest.fixture
def store(ingested, tmp_path) -> Store:
    dst = tmp_path / "curate.duckdb"
    shutil.copy(ingested, dst)
    return Store(dst)


CLEAN_AND_DEDUP = PipelineConfig(steps=[StepConfig(type="clean"), StepConfig(type="exact_dedup")])


def test_exact_dedup_drops_the_planted_copies_and_nothing_else(store, truth) -> None:
    result = run_pipeline(store, CLEAN_AND_DEDUP)
    assert result.status == "done"
    ids = {(Path(src).name, n): sid for sid, src, n in rows(store, "SELECT sample_id, source, row_number FROM samples")}
    pairs = [(ids[("instructions.jsonl", t["row_number"])], ids[("instructions.jsonl", t["duplicate_of"])], t["variant"])
             for t in truth["planted"] if t["problem"] == "exact_duplicate"]
    dropped = dict(rows(store, "SELECT sample_id, ref_sample_id FROM dropped WHERE step = 'exact_dedup'"))
    assert len(dropped) == len(pairs) == 120
    for dup, orig, variant in pairs:
        # the earlier row of each pair is kept, and the dropped one names it
        assert (dropped.get(dup) == orig) != (dropped.get(orig) == dup), variant
    # nothing else: every other sample is kept, including near duplicates
    n_samples = rows(store, "SELECT count(*) FROM samples")[0][0]
    assert rows(store, "SELECT count(*) FROM kept")[0][0] == n_samples - 120
    reason = rows(store, "SELECT reason FROM dropped LIMIT 1")[0][0]
    assert reason.startswith("exact duplicate of ") and "copies, one kept" in reason
    funnel = dict(rows(store, "SELECT stage, rows FROM funnel"))
    assert funnel["exact_dedup: dropped"] == 120 and funnel["kept"] == n_samples - 120
    assert funnel["run input"] == funnel["kept"] + funnel["exact_dedup: dropped"] + funnel["clean: dropped"]


def test_cleaning_writes_versions_and_never_touches_what_was_read(store) -> None:
    before = rows(store, "SELECT sample_id, output FROM samples ORDER BY sample_id")
    run_pipeline(store, load_config())
    assert rows(store, "SELECT sample_id, output FROM samples ORDER BY sample_id") == before
    n_versions, n_changed = rows(store, "SELECT count(*), count(DISTINCT sample_id) FROM sample_texts")[0]
    assert n_versions == n_changed > 0
    counters = json.loads(rows(store, "SELECT counters FROM run_steps WHERE step = 'clean'")[0][0])
    assert counters["changed"] == n_changed and counters["control_chars"] >= 45
    # the kept view serves the cleaned text
    ctrl = rows(store, "SELECT count(*) FROM kept WHERE regexp_matches(output, '[\\x00-\\x08]')")[0][0]
    assert ctrl == 0


def test_same_config_same_input_is_a_no_op_and_fresh_repeats_it(store) -> None:
    first = run_pipeline(store, load_config())
    again = run_pipeline(store, load_config())
    assert again.skipped and again.run_id == first.run_id
    fresh = run_pipeline(store, load_config(), fresh=True)
    assert fresh.run_id != first.run_id
    d1 = rows(store, "SELECT sample_id, step, verdict, reason, ref_sample_id FROM decisions WHERE run_id = ? ORDER BY ALL", [first.run_id])
    d2 = rows(store, "SELECT sample_id, step, verdict, reason, ref_sample_id FROM decisions WHERE run_id = ? ORDER BY ALL", [fresh.run_id])
    assert d1 == d2



def test_a_page_of_the_run_texts_is_the_macro_restricted_to_it(store) -> None:
    """The executor's page query (run_texts_page_sql) gives what run_texts(run) gives for that batch's row range:
    two runs have written versions (each page must take its own run's latest), and the ranges cover every batch,
    a range that ends mid-batch, one past a batch's end and an empty one."""
    from curation.store.migrations import run_texts_page_sql

    first = run_pipeline(store, load_config())
    second = run_pipeline(store, load_config(), fresh=True)
    assert rows(store, "SELECT count(DISTINCT run_id) FROM sample_texts")[0][0] == 2
    batches = rows(store, "SELECT batch_id, max(row_number) FROM samples GROUP BY batch_id ORDER BY batch_id")
    assert len(batches) == len(FILES)
    with store.reader() as con:
        for run in (first.run_id, second.run_id):
            for batch, last in batches:
                for lo, hi in ((0, last), (0, last // 3), (last // 3, last + 50), (last + 1, last + 9)):
                    params = {"run": run, "cb": batch, "cr": lo, "hi": hi}
                    want = con.execute(
                        "SELECT * FROM run_texts($run) WHERE batch_id = $cb AND row_number > $cr AND row_number <= $hi "
                        "ORDER BY sample_id", params).fetchall()
                    got = con.execute(f"SELECT * FROM ({run_texts_page_sql()}) ORDER BY sample_id", params).fetchall()
                    assert got == want, (run, batch, lo, hi)
                    assert (len(got) > 0) == (lo < last)
            # versions the run wrote are among what the pages read
            changed = con.execute("SELECT count(*) FROM run_texts(?) WHERE version > 0", [run]).fetchall()[0][0]
            assert changed > 0



RUN_TABLES = {
    "decisions": "SELECT sample_id, step, verdict, reason, ref_sample_id, score FROM decisions ORDER BY ALL",
    "signals": "SELECT sample_id, step, name, value, text FROM signals ORDER BY ALL",
    "texts": "SELECT sample_id, version, step, instruction, input, output, system, messages, reasoning, content_hash "
             "FROM sample_texts ORDER BY ALL",
    "steps": "SELECT position, step, status, rows_in, rows_done, dropped, flagged, changed, counters, cursor_batch_id, "
             "cursor_row_number FROM run_steps ORDER BY ALL",
}


def _run_both_ways(ingested, tmp_path, cfg: PipelineConfig) -> tuple[dict, dict, Store]:
    """``cfg`` run with chained steps and with each step reading its own pages, on two copies of the store."""
    from curation.pipeline.executor import LocalExecutor

    out = {}
    for chain in (True, False):
        st = Store(tmp_path / f"chain_{chain}.duckdb")
        shutil.copy(ingested, st.path)
        st.init()
        assert LocalExecutor(st, chain=chain).run(cfg).status == "done"
        out[chain] = {k: rows(st, q) for k, q in RUN_TABLES.items()}
        if chain:
            chained = st
    return out[True], out[False], chained


def test_chained_steps_decide_what_steps_run_one_at_a_time_decide(ingested, tmp_path) -> None:
    """The default pipeline in pages of 700 rows: its steps run as one chain over each page read (the later ones
    see the earlier ones' text and drops from memory, and the dedup steps their quality scores), with the same
    decisions, signals, text versions, counts and cursors as each step reading its own pages from the store."""
    cfg = load_config().model_copy(update={"batch_rows": 700})
    chained, alone, st = _run_both_ways(ingested, tmp_path, cfg)
    for k in RUN_TABLES:
        assert chained[k] == alone[k], k
    assert len(chained["texts"]) > 100 and any(r[2] == "drop" for r in chained["decisions"])
    # one chain: every step started together
    assert rows(st, "SELECT count(DISTINCT started_at), count(*) FROM run_steps") == [(1, 5)]


def test_a_chained_step_reads_a_signal_a_global_step_before_it_wrote(ingested, tmp_path, monkeypatch) -> None:
    """A global step in a chain whose input signal an earlier global step of the chain writes (its signatures were
    made before that decision) reads its pages again: exact_dedup ranks copies by quality_score (the same for
    copies: the same text), and a step before it that scores later rows higher makes the latest copy win, chained
    or not."""
    from curation.pipeline.base import SIGNAL_SCHEMA, GlobalStep, StepOutput
    from curation.pipeline.registry import STEP_TYPES

    class ScoreEverything(GlobalStep):
        type_name = "score_everything"

        def signatures(self, batch):  # noqa: ANN001, ANN202
            return batch.select(["sample_id", "batch_id", "row_number"])

        def decide(self, signatures):  # noqa: ANN001, ANN202
            import pyarrow as pa

            n = signatures.num_rows
            score = [2.0 + b + r * 1e-6 for b, r in zip(signatures.column("batch_id").to_pylist(),
                                                        signatures.column("row_number").to_pylist())]
            return StepOutput(signals=pa.table([signatures.column("sample_id"), pa.array(["quality_score"] * n),
                                                pa.array(score), pa.nulls(n, pa.string())], schema=SIGNAL_SCHEMA))

    monkeypatch.setitem(STEP_TYPES, "score_everything", ScoreEverything)
    cfg = PipelineConfig(steps=[StepConfig(type="clean"), StepConfig(type="quality"),
                                StepConfig(type="score_everything"), StepConfig(type="exact_dedup")])
    chained, alone, st = _run_both_ways(ingested, tmp_path, cfg)
    for k in RUN_TABLES:
        assert chained[k] == alone[k], k
    # the latest copy of each group is kept (the quality scores alone keep the earliest)
    kept_earlier, n = rows(st, """SELECT count(*) FILTER (WHERE (r.batch_id, r.row_number) < (s.batch_id, s.row_number)),
                                         count(*)
                                  FROM decisions d JOIN samples s USING (sample_id)
                                  JOIN samples r ON r.sample_id = d.ref_sample_id WHERE d.step = 'exact_dedup'""")[0]
    assert kept_earlier == 0 and n >= 100


# A run in another process that stops once a step has done 1000 rows, says "paused" and waits to be killed:
# "between" stops it after the transaction that got there committed (in the progress callback), "inside"
# stops it inside that transaction, before its COMMIT (Store.writer wrapped), so the kill loses that write.
KILLABLE_RUN = """
import signal, sys
from contextlib import contextmanager
from curation.pipeline import load_config
from curation.pipeline.executor import run_pipeline
from curation.store import Store

store_path, config_path, where = sys.argv[1:]
STOP_AT = 1000

def wait_to_be_killed():
    print("paused", flush=True)
    while True:
        signal.pause()

def progress(step, done, total):
    if where == "between" and done >= STOP_AT:
        wait_to_be_killed()

if where == "inside":
    plain_writer = Store.writer

    @contextmanager
    def writer(self):
        with plain_writer(self) as con:
            yield con
            if con.execute("SELECT coalesce(max(rows_done), 0) FROM run_steps").fetchall()[0][0] >= STOP_AT:
                wait_to_be_killed()

    Store.writer = writer

run_pipeline(Store(store_path), load_config(config_path), progress=progress)
print("finished", flush=True)
"""


@pytest.fixture(scope="module")
def small_batches(ingested, tmp_path_factory) -> tuple[Path, Store]:
    """The default pipeline in pages of 500 rows, and a store where it ran to the end undisturbed."""
    folder = tmp_path_factory.mktemp("small_batches")
    cfg_path = folder / "small.toml"
    default = (REPO / "curation/pipeline/default.toml").read_text()
    assert "batch_rows = 50000" in default
    cfg_path.write_text(default.replace("batch_rows = 50000", "batch_rows = 500"))
    reference = Store(folder / "reference.duckdb")
    shutil.copy(ingested, reference.path)
    assert run_pipeline(reference, load_config(cfg_path)).status == "done"
    return cfg_path, reference


@pytest.mark.parametrize("where", ["between", "inside"])
def test_sigkill_mid_run_resumes_to_the_same_decisions(store, small_batches, where) -> None:
    """A run killed part way through its first step (after a committed write, or inside a write's
    transaction) resumes to the decisions, texts and counts of a run that was never interrupted."""
    cfg_path, reference = small_batches
    proc = subprocess.Popen([sys.executable, "-c", KILLABLE_RUN, str(store.path), str(cfg_path), where],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line == "paused\n", f"the run did not stop part way ({line!r})"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert rows(store, "SELECT status FROM runs") == [("running",)]
    # the row steps run as one chain over each page (clean, language, quality): their pages are written together
    (done, total, cursors), = rows(store, "SELECT max(rows_done), (SELECT samples_in FROM runs), "
                                          "count(DISTINCT (cursor_batch_id, cursor_row_number)) FROM run_steps "
                                          "WHERE kind = 'row'")
    assert cursors == 1
    # "between": the write that reached 1000 rows was committed; "inside": it was lost with the process
    assert (1000 <= done < total) if where == "between" else (0 < done < 1000), (done, total)
    cfg = load_config(cfg_path)
    resumed = run_pipeline(store, cfg)
    assert resumed.resumed and resumed.status == "done"
    q = "SELECT sample_id, step, verdict, reason, ref_sample_id FROM decisions ORDER BY ALL"
    assert rows(store, q) == rows(reference, q)
    t = "SELECT sample_id, version, step, output, messages, content_hash FROM sample_texts ORDER BY ALL"
    assert rows(store, t) == rows(reference, t)
    assert rows(store, "SELECT step, rows_in, rows_done, dropped, changed FROM run_steps ORDER BY position") == \
        rows(reference, "SELECT step, rows_in, rows_done, dropped, changed FROM run_steps ORDER BY position")


def test_export_kept(store, tmp_path, cli) -> None:
    run_pipeline(store, load_config())
    from typer.testing import CliRunner

    from curation.cli.app import app

    res = CliRunner().invoke(app, ["--db", str(store.path), "export", "-o", str(tmp_path / "kept.parquet")])
    assert res.exit_code == 0, res.output
    table = pq.read_table(tmp_path / "kept.parquet")
    assert table.num_rows == rows(store, "SELECT count(*) FROM kept")[0][0]
    assert {"sample_id", "version", "instruction", "messages"} <= set(table.column_names)
    res = CliRunner().invoke(app, ["--db", str(store.path), "export", "-o", str(tmp_path / "kept.jsonl")])
    first = json.loads((tmp_path / "kept.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert first["run_id"] == 1
    # one sample in full: its decisions, the run's signals and its text versions
    sid, reason = rows(store, "SELECT sample_id, reason FROM dropped WHERE step = 'near_dedup' LIMIT 1")[0]
    res = CliRunner().invoke(app, ["--db", str(store.path), "samples", "--id", sid], env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    assert all(t in res.output for t in ("decisions", "signals", "versions", "near_dedup", "quality_score", reason[:40]))
    # never over the store itself
    before = store.path.stat().st_size
    res = CliRunner().invoke(app, ["--db", str(store.path), "export", "-o", str(store.path), "--format", "jsonl"])
    assert res.exit_code == 3 and "never replace the store" in " ".join(res.output.split())
    assert store.path.stat().st_size == before and rows(store, "SELECT count(*) FROM runs") == [(1,)]


@pytest.mark.parametrize("text, message", [
    ('[[steps]]\ntype = "nope"\n', "unknown step type 'nope'"),
    ('[[steps]]\ntype = "clean"\nparams = { nfkc = "maybe" }\n', "bad parameters"),
    ('[[steps]]\ntype = "clean"\n[[steps]]\ntype = "clean"\n', "repeated: clean"),
    ('steps = []\n', "at least one step"),
    ('[[steps]\n', "not valid TOML"),
])
def test_bad_pipeline_files_are_refused_before_running(tmp_path, text: str, message: str) -> None:
    p = tmp_path / "p.toml"
    p.write_text(text)
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        load_config(p)


def test_run_needs_data(tmp_path) -> None:
    with pytest.raises(UsageError, match="ingest some data first"):
        run_pipeline(Store(tmp_path / "empty.duckdb"), load_config())


def test_a_step_failing_mid_run_while_the_next_page_is_read(store, small_batches, monkeypatch) -> None:
    """The next page is read while a step works on the current one: when the step fails, that read is finished
    and its connection closed before the run is marked failed (a read-only handle left open would make the
    store's writer fail instead), the pages before stay written (in the chain, the page the later steps had
    finished too), and a resume ends where an undisturbed run does."""
    from curation.pipeline.steps.clean import CleanStep

    cfg_path, reference = small_batches
    real = CleanStep.process
    seen: list[int] = []

    def failing(self, batch):  # noqa: ANN001, ANN202 - a fault that real input cannot cause on a given page
        seen.append(batch.num_rows)
        if len(seen) == 3:
            raise RuntimeError("step failed on its third page")
        return real(self, batch)

    monkeypatch.setattr(CleanStep, "process", failing)
    with pytest.raises(RuntimeError, match="third page"):
        run_pipeline(store, load_config(cfg_path))
    assert rows(store, "SELECT status FROM runs") == [("failed",)]
    assert rows(store, "SELECT rows_done FROM run_steps WHERE step = 'clean'") == [(seen[0] + seen[1],)]
    monkeypatch.setattr(CleanStep, "process", real)
    resumed = run_pipeline(store, load_config(cfg_path))
    assert resumed.resumed and resumed.status == "done"
    q = "SELECT sample_id, step, verdict, reason, ref_sample_id FROM decisions ORDER BY ALL"
    assert rows(store, q) == rows(reference, q)
