"""The local executor: runs steps over the store in short transactions, resumable from recorded state.

A run's input is fixed when it starts (samples of done batches up to ``max_batch_id``). Row steps read
a page of samples (those not dropped by an earlier step, with the run's current text), process it,
and write its outputs together with the step's cursor in one transaction, so a crash loses at most
one page (two in a chain, below; a step that fails loses none) and the next ``curate run`` continues after the
cursor. A global step computes its signatures page by page and writes all its decisions in one transaction.

Consecutive steps run as one chain, each page read once and taken by the steps in turn: the scheduling of
chains is in ``curation.pipeline.chain`` (``ChainRunner``, mixed in here); this module keeps the run's
bookkeeping.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from curation import __version__
from curation.duck import query_arrow, query_reader
from curation.duck import sql_ident as _ident
from curation.duck import sql_literal as _lit
from curation.errors import StoreBusyError, UsageError
from curation.pipeline.base import (
    PAGE_TEXT_COLUMNS,
    GlobalStep,
    RowStep,
    Step,
    StepOutput,
)
from curation.pipeline.chain import ChainRunner
from curation.pipeline.config import with_step_inputs
from curation.pipeline.registry import build_step
from curation.pipeline.text import content_hash_sql
from curation.store.lease import LeaseLost, Owner, check_lease, current_owner
from curation.store.migrations import run_texts_page_sql
from curation.store.store import Store, utcnow
from schemas.pipeline import PipelineConfig

ProgressFn = Callable[[str, int, int], None]
T = TypeVar("T")

TEXT_COLUMNS = PAGE_TEXT_COLUMNS


@dataclass
class RunResult:
    """What ``run_pipeline`` did."""

    run_id: int
    status: str
    resumed: bool = False
    skipped: str | None = None
    samples_in: int = 0
    steps: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)  # input batches that do not look like instruction data


def config_hash(cfg: PipelineConfig, steps: list[Step] | None = None) -> str:
    """sha256 of the resolved config (what decides whether two runs are the same).

    With ``steps`` (the built steps of ``cfg``), each step's ``inputs`` are set from the step first (see
    :func:`curation.pipeline.config.with_step_inputs`): e.g. the content hash of each evaluation file of a
    decontaminate step, so that a changed file is a new run. Steps without inputs hash as they always did.
    """
    if steps is not None:
        cfg = with_step_inputs(cfg, steps)
    return hashlib.sha256(json.dumps(cfg.model_dump(), sort_keys=True).encode()).hexdigest()


def _input_sql(step: Step) -> str:
    """Samples a step sees, in (batch_id, row_number) order, after a cursor, with the run's current text."""
    names = list(step.reads_signals)
    signal_cols = "".join(f", sig.{_ident(n)}" for n in names)
    signal_cte = ""
    if names:
        aggs = ", ".join(f"max(value) FILTER (WHERE name = {_lit(n)}) AS {_ident(n)}" for n in names)
        signal_cte = f""", sig AS (
            SELECT sample_id, {aggs} FROM signals
            WHERE run_id = $run AND name IN ({', '.join(_lit(n) for n in names)})
              AND sample_id IN (SELECT sample_id FROM page)
            GROUP BY sample_id
        )"""
    # the run's current text comes from the store's one definition (run_texts, here restricted to the page: one
    # batch's row-number range, read through the column zonemaps)
    sql = f"""
        WITH page AS (
            SELECT k.sample_id, k.batch_id, k.row_number, k.shape, k.source, {TEXT_COLUMNS}
            FROM ({run_texts_page_sql()}) k
            WHERE NOT EXISTS (
                  SELECT 1 FROM decisions d JOIN run_steps rs ON rs.run_id = d.run_id AND rs.step = d.step
                  WHERE d.run_id = $run AND d.sample_id = k.sample_id AND d.verdict = 'drop' AND rs.position < $pos)
        ){signal_cte}
        SELECT s.sample_id, s.batch_id, s.row_number, s.shape, s.source,
               {', '.join('s.' + c for c in TEXT_COLUMNS.split(', '))}
               {signal_cols}
        FROM page s
        {"LEFT JOIN sig ON sig.sample_id = s.sample_id" if names else ""}
        ORDER BY s.batch_id, s.row_number"""
    model = getattr(step, "embedding_model", None)
    if model:
        # steps that embed text get the cached vector of the current text, keyed by content hash and model
        sql = f"""
        SELECT q.*, e.vector AS cached_vector FROM (
            SELECT q0.*, {content_hash_sql()} AS content_hash FROM ({sql}) q0
        ) q
        LEFT JOIN embeddings e ON e.content_hash = q.content_hash AND e.model = {_lit(model)}
        ORDER BY q.batch_id, q.row_number"""
    return sql


class RunInProgressError(StoreBusyError):
    """Another live process is running a pipeline on this store."""


def _check_step_unique(con, run_id: int, step: str) -> None:  # noqa: ANN001
    """A step's decisions and signals, checked before it is marked done: none written twice.

    Keys: (sample, reason) for decisions and (sample, name) for signals, within the run and step. Only
    one process runs a run (the lease), and each page is written with its cursor in one transaction, so
    a row twice can only come from a bug; this makes one loud instead of doubling counts downstream.
    """
    dup_d = con.execute(
        """SELECT count(*) FROM (SELECT 1 FROM decisions WHERE run_id = ? AND step = ?
           GROUP BY sample_id, reason HAVING count(*) > 1)""", [run_id, step]).fetchall()[0][0]
    dup_s = con.execute(
        """SELECT count(*) FROM (SELECT 1 FROM signals WHERE run_id = ? AND step = ?
           GROUP BY sample_id, name HAVING count(*) > 1)""", [run_id, step]).fetchall()[0][0]
    if dup_d or dup_s:
        raise RuntimeError(f"run {run_id}, step {step}: {dup_d} decision key(s) and {dup_s} signal key(s) written "
                           "more than once; the step is not marked done (a bug: please report it)")


class LocalExecutor(ChainRunner):
    """Runs a pipeline on one store file."""

    def __init__(self, store: Store, progress: ProgressFn | None = None, chain: bool = True) -> None:
        self.store = store
        self.progress = progress
        self.owner = current_owner()
        self.chain = chain  # consecutive steps share their page reads (see _chain_from); False: each reads its own
        self.seconds: Counter[int] = Counter()  # position -> seconds of the step's own work in this process
        self._seconds_lock = threading.Lock()  # a chain's threads add to it

    def _fence(self, con, run_id: int) -> None:  # noqa: ANN001
        """In a write transaction: stop unless this process still holds the run (and refresh its heartbeat)."""
        check_lease(con, "runs", "run_id", run_id, self.owner, utcnow())

    # -- run bookkeeping -------------------------------------------------------------------------------
    def _start(self, cfg: PipelineConfig, steps: list[Step], fresh: bool) -> tuple[int, bool, str | None, int]:
        # the run's identity: the config with what each step read besides its parameters (stored below with it)
        cfg = with_step_inputs(cfg, steps)
        chash = config_hash(cfg)
        owner, now = self.owner, utcnow()
        with self.store.writer() as con:
            # The run's input: the done batches up to max_batch. A batch still loading in a live process below
            # that id would become done later and change the input of a run already made, so the input stops
            # before the first such batch (the next run picks it up).
            loading = [bid for bid, token, beat in con.execute(
                "SELECT batch_id, owner, heartbeat_at FROM batches WHERE status = 'loading' ORDER BY batch_id").fetchall()
                if (o := Owner.parse(token)) is not None and o.alive(beat, now)]
            max_batch = con.execute(
                "SELECT coalesce(max(batch_id), 0) FROM batches WHERE status = 'done' AND batch_id < ?",
                [loading[0] if loading else 2**31 - 1]).fetchall()[0][0]
            if max_batch == 0:
                raise UsageError("nothing to run on: ingest some data first (`curate ingest`)"
                                 + (f" (batch {loading[0]} is still loading)" if loading else ""))
            # one run at a time per store: two processes running the same steps would write every
            # decision twice; a run left 'running' by a process that is gone was interrupted
            for rid, token, beat, at in con.execute(
                    "SELECT run_id, owner, heartbeat_at, started_at FROM runs WHERE status = 'running' ORDER BY run_id"
            ).fetchall():
                other = Owner.parse(token)
                if other is not None and other != owner and other.alive(beat, now):
                    raise RunInProgressError(
                        f"run {rid} is in progress in another process ({other.describe()}, started "
                        f"{at:%Y-%m-%d %H:%M:%S} UTC): one run at a time per store; wait for it to finish, "
                        f"then run again (its progress: curate sql \"SELECT step, rows_done, rows_in FROM run_steps "
                        f"WHERE run_id = {rid} ORDER BY position\")")
                con.execute("UPDATE runs SET status = 'failed', finished_at = ? WHERE run_id = ?", [now, rid])
            same = con.execute(
                "SELECT run_id, status, started_at FROM runs WHERE config_hash = ? AND max_batch_id = ? ORDER BY run_id DESC",
                [chash, max_batch],
            ).fetchall()
            if same and not fresh:
                run_id, status, at = same[0]
                if status == "done":
                    return run_id, False, f"identical to run {run_id} ({at:%Y-%m-%d %H:%M:%S} UTC): same config, same input", max_batch
                con.execute("UPDATE runs SET status = 'running', finished_at = NULL, owner = ?, heartbeat_at = ? "
                            "WHERE run_id = ?", [owner.token(), now, run_id])
                return run_id, True, None, max_batch
            samples_in = con.execute(
                "SELECT count(*) FROM samples s JOIN batches b USING (batch_id) WHERE b.status = 'done' AND b.batch_id <= ?",
                [max_batch],
            ).fetchall()[0][0]
            run_id = con.execute(
                """INSERT INTO runs (config, config_hash, code_version, max_batch_id, samples_in, status, started_at,
                                    owner, heartbeat_at)
                   VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?) RETURNING run_id""",
                [json.dumps(cfg.model_dump()), chash, __version__, max_batch, samples_in, now, owner.token(), now],
            ).fetchall()[0][0]
            for pos, step in enumerate(steps, start=1):
                con.execute(
                    "INSERT INTO run_steps (run_id, position, step, kind, status, counters) VALUES (?, ?, ?, ?, 'pending', '{}')",
                    [run_id, pos, step.name, step.kind],
                )
            return int(run_id), False, None, max_batch

    def _page(self, step: Step, run_id: int, position: int, max_batch: int, cursor: tuple[int, int],
              limit: int) -> tuple[pa.Table, tuple[int, int]] | None:
        """The next page after ``cursor``: samples of one batch with row numbers in (cr, cr + limit].

        Samples are stored in (batch_id, row_number) order, so a row-number range is read through the
        column zonemaps, not by sorting what is left of the input. None when the input is exhausted.
        """
        sql = _input_sql(step)
        cb, cr = cursor
        with self.store.reader(safe=True) as con:
            while True:
                params = {"run": run_id, "pos": position, "cb": cb, "cr": cr, "hi": cr + limit}
                page = query_arrow(con, sql, params)  # type: ignore[arg-type]
                if page.num_rows:
                    last = (int(page.column("batch_id")[-1].as_py()), int(page.column("row_number")[-1].as_py()))
                    return page, last
                nxt = con.execute("SELECT min(row_number) FROM samples WHERE batch_id = ? AND row_number > ?",
                                  [cb, cr + limit]).fetchall()[0][0]
                if nxt is not None:
                    cr = int(nxt) - 1
                    continue
                nb = con.execute("SELECT min(batch_id) FROM batches WHERE status = 'done' AND batch_id > ? AND batch_id <= ?",
                                 [cb, max_batch]).fetchall()[0][0]
                if nb is None:
                    return None
                cb, cr = int(nb), 0

    def _write(self, con, run_id: int, step: Step, out: StepOutput) -> tuple[int, int, int]:  # noqa: ANN001
        dropped = flagged = changed = 0
        if out.decisions is not None and out.decisions.num_rows:
            con.register("out_decisions", out.decisions)
            con.execute(
                "INSERT INTO decisions SELECT ?, sample_id, ?, verdict, reason, ref_sample_id, score FROM out_decisions",
                [run_id, step.name],
            )
            con.unregister("out_decisions")
            # samples, not decisions: a sample may get several (one per rule that fired); flagged counts
            # samples flagged and not dropped
            by_verdict: dict[str, set[str]] = {"drop": set(), "flag": set()}
            for sid, verdict in zip(out.decisions.column("sample_id").to_pylist(), out.decisions.column("verdict").to_pylist()):
                by_verdict.setdefault(verdict, set()).add(sid)
            dropped, flagged = len(by_verdict["drop"]), len(by_verdict["flag"] - by_verdict["drop"])
        if out.signals is not None and out.signals.num_rows:
            con.register("out_signals", out.signals)
            con.execute("INSERT INTO signals SELECT ?, sample_id, ?, name, value, text FROM out_signals", [run_id, step.name])
            con.unregister("out_signals")
        if out.texts is not None and out.texts.num_rows:
            con.register("out_texts", out.texts)
            con.execute(
                """INSERT INTO sample_texts (sample_id, version, run_id, step, instruction, input, output, system,
                                            messages, reasoning, content_hash)
                    SELECT t.sample_id, coalesce(v.last, 0) + 1, ?, ?, t.instruction, t.input, t.output, t.system,
                           t.messages, t.reasoning, t.content_hash
                    FROM out_texts t
                    LEFT JOIN (SELECT sample_id, max(version) AS last FROM sample_texts
                               WHERE sample_id IN (SELECT sample_id FROM out_texts) GROUP BY sample_id) v USING (sample_id)""",
                [run_id, step.name],
            )
            con.unregister("out_texts")
            changed = out.texts.num_rows
        return dropped, flagged, changed

    # -- steps -------------------------------------------------------------------------------------------
    def _overlapped(self, work: Callable[[], T], step: Step, run_id: int, pos: int, max_batch: int,
                    cursor: tuple[int, int], batch_rows: int) -> tuple[T, tuple[pa.Table, tuple[int, int]] | None]:
        """``work()``, while the page after ``cursor`` is read in a thread (DuckDB releases the GIL while it reads:
        on 300k real rows the reads took 4-6 s of each row step); both are done when this returns, as the store is
        written next and one process cannot hold a read-only and a read-write connection to one file at once.

        A step's input is what earlier steps left, so a page read before this step's decisions on the one
        before it are written is the page it would read after them.
        """
        with ThreadPoolExecutor(1) as pool:  # on an error in work(), leaving the block waits for the read
            ahead = pool.submit(self._page, step, run_id, pos, max_batch, cursor, batch_rows)
            result = work()
            return result, ahead.result()

    def _run_row_step(self, step: RowStep, run_id: int, pos: int, max_batch: int, batch_rows: int, state: dict) -> None:
        cursor = (state["cursor_batch_id"] or 0, state["cursor_row_number"] or 0)
        done, total = state["rows_done"], state["rows_in"]
        got = self._page(step, run_id, pos, max_batch, cursor, batch_rows)
        while got is not None:
            page, last = got
            out, got = self._overlapped(lambda: self._timed(pos, step.process, page), step, run_id, pos, max_batch,
                                        last, batch_rows)
            with self.store.writer() as con:
                self._fence(con, run_id)
                self._record_page(con, run_id, pos, step, out, page.num_rows, last)
            cursor = last
            done += page.num_rows
            if self.progress:
                self.progress(step.name, done, total)

    def _timed(self, pos: int, fn: Callable[..., T], *args) -> T:  # noqa: ANN002
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self._add_seconds(pos, start)

    def _add_seconds(self, pos: int, start: float) -> None:
        with self._seconds_lock:
            self.seconds[pos] += time.perf_counter() - start

    def _record_page(self, con, run_id: int, pos: int, step: Step, out: StepOutput, rows: int,  # noqa: ANN001
                     last: tuple[int, int]) -> None:
        """In a write transaction: a row step's output for one page, its counters and its cursor."""
        start = time.perf_counter()
        dropped, flagged, changed = self._write(con, run_id, step, out)
        old = json.loads(con.execute("SELECT counters FROM run_steps WHERE run_id = ? AND position = ?",
                                     [run_id, pos]).fetchall()[0][0] or "{}")
        merged = Counter(old) + Counter(out.counters)
        con.execute(
            """UPDATE run_steps SET rows_done = rows_done + ?, dropped = dropped + ?, flagged = flagged + ?,
                      changed = changed + ?, counters = ?, cursor_batch_id = ?, cursor_row_number = ?
               WHERE run_id = ? AND position = ?""",
            [rows, dropped, flagged, changed, json.dumps(dict(merged), sort_keys=True), last[0], last[1], run_id, pos],
        )
        self._add_seconds(pos, start)

    def _run_global_step(self, step: GlobalStep, run_id: int, pos: int, max_batch: int, batch_rows: int) -> None:
        step.texts_for = lambda ids, rows, columns=None: self._texts_for(run_id, ids, rows, columns)
        try:
            self._global_stages(step, run_id, pos, max_batch, batch_rows)
        finally:
            step.texts_for = None

    def _texts_for(self, run_id: int, ids: pa.Array, rows: int, columns: tuple[str, ...] | None = None) -> Iterator[pa.Table]:
        """The run's current text of the samples ``ids`` (what its steps read), in no particular order, streamed
        as tables of about ``rows`` rows from one query (a query per part scanned the run's texts each time:
        250k samples read back in parts of 20,000 took 12.6 s, in one query 1.5 s). ``columns``: only
        ``sample_id`` and these text columns (the answers are most of the text: a step that reads the
        instructions need not read them)."""
        if columns is None:
            cols = f"k.sample_id, k.batch_id, k.row_number, k.shape, k.source, {TEXT_COLUMNS}"
        else:
            unknown = set(columns) - set(TEXT_COLUMNS.split(", "))
            if unknown:
                raise ValueError(f"texts_for: {sorted(unknown)} are not text columns ({TEXT_COLUMNS})")
            cols = ", ".join(["k.sample_id", *(f"k.{c}" for c in columns)])
        with self.store.reader(safe=True) as con:
            con.register("wanted_ids", pa.table({"sample_id": pa.array(ids, pa.string())}))
            reader = query_reader(
                con, f"SELECT {cols} FROM run_texts($run) k "
                     "SEMI JOIN wanted_ids w ON w.sample_id = k.sample_id", {"run": run_id}, rows)  # type: ignore[arg-type]
            for batch in reader:
                yield pa.Table.from_batches([batch])

    def _global_stages(self, step: GlobalStep, run_id: int, pos: int, max_batch: int, batch_rows: int,
                       total: int | None = None) -> None:
        """A global step's signatures page by page, then its decision; ``total``: its input, when the caller knows it."""
        sigs: list[pa.Table] = []
        done = 0
        total = self._rows_in(run_id, pos, max_batch, step) if total is None else total
        got = self._page(step, run_id, pos, max_batch, (0, 0), batch_rows)
        while got is not None:
            page, cursor = got
            sig, got = self._overlapped(lambda: self._timed(pos, step.signatures, page), step, run_id, pos, max_batch,
                                        cursor, batch_rows)
            if getattr(step, "embedding_model", None) and "new_vector" in sig.column_names:
                self._cache_embeddings(step, sig)
                sig = sig.drop_columns(["new_vector"])
            sigs.append(sig)
            done += page.num_rows
            if self.progress:
                self.progress(f"{step.name} (signatures)", done, total)
        self._decide(step, run_id, pos, sigs)

    def _decide(self, step: GlobalStep, run_id: int, pos: int, sigs: list[pa.Table]) -> StepOutput | None:
        """A global step's decision over its signatures (``sigs``, one table per page), written whole."""
        out, rows = self._decision(step, pos, sigs)
        self._write_decision(step, run_id, pos, out, rows)
        return out

    def _decision(self, step: GlobalStep, pos: int, sigs: list[pa.Table]) -> tuple[StepOutput | None, int]:
        """A global step's decision over its signatures (None without any), and how many samples it saw."""
        rows = sum(t.num_rows for t in sigs)
        return (self._timed(pos, step.decide, pa.concat_tables(sigs)) if rows else None), rows

    def _write_decision(self, step: GlobalStep, run_id: int, pos: int, out: StepOutput | None, rows: int,
                        rows_in: bool = False) -> None:
        """Write a global step's decision; ``rows_in``: its input is ``rows`` too (a chain learns it only now)."""
        start = time.perf_counter()
        with self.store.writer() as con:
            if rows_in:
                con.execute("UPDATE run_steps SET rows_in = ? WHERE run_id = ? AND position = ?", [rows, run_id, pos])
            if out is None:
                con.execute("UPDATE run_steps SET rows_done = 0 WHERE run_id = ? AND position = ?", [run_id, pos])
                return
            self._fence(con, run_id)
            # a global step is written whole: clear anything a crashed attempt left, then write
            con.execute("DELETE FROM decisions WHERE run_id = ? AND step = ?", [run_id, step.name])
            con.execute("DELETE FROM signals WHERE run_id = ? AND step = ?", [run_id, step.name])
            dropped, flagged, changed = self._write(con, run_id, step, out)
            con.execute(
                """UPDATE run_steps SET rows_done = ?, dropped = ?, flagged = ?, changed = ?, counters = ?
                   WHERE run_id = ? AND position = ?""",
                [rows, dropped, flagged, changed, json.dumps(dict(out.counters), sort_keys=True), run_id, pos],
            )
        self._add_seconds(pos, start)

    def _row_steps_done(self, run_id: int, rows: list[tuple[int, Step]]) -> None:
        """Mark a chain's row steps done (by position) in one transaction, each step's input being what it saw."""
        with self.store.writer() as con:
            self._fence(con, run_id)
            for p, step in rows:
                _check_step_unique(con, run_id, step.name)
                con.execute("UPDATE run_steps SET status = 'done', rows_in = rows_done, finished_at = ? "
                            "WHERE run_id = ? AND position = ?", [utcnow(), run_id, p])

    def _step_done(self, run_id: int, pos: int, step: Step) -> None:
        with self.store.writer() as con:
            self._fence(con, run_id)
            _check_step_unique(con, run_id, step.name)
            con.execute("UPDATE run_steps SET status = 'done', finished_at = ? WHERE run_id = ? AND position = ?",
                        [utcnow(), run_id, pos])

    def _cache_embeddings(self, step: Step, sig: pa.Table) -> None:
        """Store the vectors a step computed (``new_vector`` set) in ``embeddings``, once per hash and model."""
        new = sig.filter(pc.is_valid(sig.column("new_vector")))
        if not new.num_rows:
            return
        table = pa.table({"content_hash": new.column("content_hash"), "vector": new.column("new_vector")})
        with self.store.writer() as con:
            con.register("new_emb", table)
            con.execute(
                """INSERT INTO embeddings
                   SELECT DISTINCT ON (content_hash) content_hash, ?, len(vector), vector::FLOAT[], ?
                   FROM new_emb n
                   WHERE NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.content_hash = n.content_hash AND e.model = ?)""",
                [step.embedding_model, utcnow(), step.embedding_model])
            con.unregister("new_emb")

    def _rows_in(self, run_id: int, pos: int, max_batch: int, step: Step) -> int:
        """Samples a step sees: the run's input less what earlier steps dropped."""
        with self.store.reader(safe=True) as con:
            return int(con.execute(
                """SELECT r.samples_in - (SELECT count(DISTINCT d.sample_id) FROM decisions d
                                          JOIN run_steps rs ON rs.run_id = d.run_id AND rs.step = d.step
                                          WHERE d.run_id = r.run_id AND d.verdict = 'drop' AND rs.position < ?)
                   FROM runs r WHERE r.run_id = ?""", [pos, run_id]).fetchall()[0][0])

    def run(self, cfg: PipelineConfig, fresh: bool = False) -> RunResult:
        """Run (or resume) ``cfg`` over the store's current input."""
        started = time.perf_counter()
        steps = [build_step(s) for s in cfg.steps]
        run_id, resumed, skipped, max_batch = self._start(cfg, steps, fresh)
        result = RunResult(run_id=run_id, status="done", resumed=resumed, skipped=skipped)
        if skipped:
            return result
        try:
            pos = 0
            while pos < len(steps):
                pos += 1
                step = steps[pos - 1]
                with self.store.reader(safe=True) as con:
                    states = {r[0]: r[1:] for r in con.execute(
                        "SELECT position, status, rows_in, rows_done, cursor_batch_id, cursor_row_number FROM run_steps "
                        "WHERE run_id = ? ORDER BY position", [run_id]).fetchall()}
                status, rows_in, rows_done, cb, cr = states[pos]
                if status == "done":
                    continue
                chain = self._chain_from(steps, states, pos) if self.chain else []
                if len(chain) > 1:
                    self._run_chain(chain, run_id, max_batch, cfg.batch_rows, states)
                    pos = chain[-1][0]
                    continue
                if status == "pending" or rows_in is None:
                    rows_in = self._rows_in(run_id, pos, max_batch, step)
                    with self.store.writer() as con:
                        con.execute("UPDATE run_steps SET status = 'running', rows_in = ?, started_at = ? "
                                    "WHERE run_id = ? AND position = ?", [rows_in, utcnow(), run_id, pos])
                state = {"rows_in": rows_in, "rows_done": rows_done, "cursor_batch_id": cb, "cursor_row_number": cr}
                if isinstance(step, RowStep):
                    self._run_row_step(step, run_id, pos, max_batch, cfg.batch_rows, state)
                else:
                    self._run_global_step(step, run_id, pos, max_batch, cfg.batch_rows)
                self._step_done(run_id, pos, step)
        except BaseException as e:
            if not isinstance(e, LeaseLost):
                with self.store.writer() as con:
                    con.execute("UPDATE runs SET status = 'failed', finished_at = ? WHERE run_id = ? AND owner = ?",
                                [utcnow(), run_id, self.owner.token()])
            raise
        with self.store.writer() as con:
            self._fence(con, run_id)
            con.execute("UPDATE runs SET status = 'done', finished_at = ? WHERE run_id = ?", [utcnow(), run_id])
            result.samples_in = con.execute("SELECT samples_in FROM runs WHERE run_id = ?", [run_id]).fetchall()[0][0]
            cols = ["position", "step", "kind", "rows_in", "dropped", "flagged", "changed", "counters"]
            result.steps = [dict(zip(cols, r)) for r in con.execute(
                f"SELECT {', '.join(cols)} FROM run_steps WHERE run_id = ? ORDER BY position", [run_id]).fetchall()]
            for st in result.steps:
                st["seconds"] = round(self.seconds[st["position"]], 3)
        result.seconds = time.perf_counter() - started
        from curation.ingest.likeness import batch_warnings

        with self.store.reader() as con:
            max_batch = con.execute("SELECT max_batch_id FROM runs WHERE run_id = ?", [run_id]).fetchall()[0][0]
        result.warnings = [f"batch {b} ({name}): {w}" for b, name, w in batch_warnings(self.store, max_batch or 0)]
        return result


def run_pipeline(store: Store, cfg: PipelineConfig, fresh: bool = False, progress: ProgressFn | None = None) -> RunResult:
    """Run or resume a pipeline on the store; a no-op when the same config already ran on the same input."""
    store.init()
    return LocalExecutor(store, progress).run(cfg, fresh=fresh)
