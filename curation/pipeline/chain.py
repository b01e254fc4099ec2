"""Chains: consecutive steps of a run over one read of each page (the scheduling half of the executor).

``ChainRunner`` is mixed into ``LocalExecutor``, which keeps the run's bookkeeping (the run and its steps' rows,
pages read and written in short transactions, cursors, fencing); this module decides which steps run together
and how a page goes through them. Each page is read once and goes through the steps in turn, the later ones
seeing the earlier ones' drops and text from memory; the chain's first steps work on a page while the rest work
on the page before it, and the page before that is written while the next one is read. On 300k real rows (the
default pipeline) this took the run from 86 s to 74 s.

The methods it calls on ``self`` are the executor's: ``_page``, ``_overlapped``, ``_rows_in``, ``_texts_for``,
``_timed``, ``_record_page``, ``_fence``, ``_decision``, ``_write_decision``, ``_global_stages``,
``_step_done`` and ``_row_steps_done``.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from curation.pipeline.base import (
    PAGE_TEXT_COLUMNS,
    GlobalStep,
    RowStep,
    Step,
    StepOutput,
)
from curation.store.store import utcnow

# the columns of a page as a step reads it, less the signal columns (``_input_sql`` in the executor)
PAGE_COLUMNS = {"sample_id", "batch_id", "row_number", "shape", "source", *PAGE_TEXT_COLUMNS.split(", ")}


@dataclass
class _Stage:
    """What some steps of a chain made of one page (see ``ChainRunner._stage``)."""

    page: pa.Table
    emitted: list[pa.Table]
    outs: list[StepOutput] = field(default_factory=list)
    seen: dict[int, int] = field(default_factory=dict)


class ChainRunner:
    """The chain half of ``LocalExecutor`` (see the module's docstring)."""

    store: object
    progress: object

    def _chain_from(self, steps: list[Step], states: dict[int, tuple], pos: int) -> list[tuple[int, Step]]:
        """The steps from ``pos`` on that run as one chain: each page is read once, and the steps take it in turn,
        each seeing what the ones before it left (their drops taken out, their new text in). Reading a page again
        for every step cost each step 1-2 s on 300k real rows, and the reads took CPU from the step's work.

        A chain starts with a row step that is not done, followed by row steps at the same cursor (a chain that
        was interrupted resumes as a chain: all its row steps' cursors are written together), then, when the
        chain starts from the first row of the input, global steps not started: their signatures come from the
        same pages, and their decisions are made in order once every page is read (a later one's signatures less
        the samples an earlier one dropped). A step that reads signals joins only when no step before the chain
        wrote any (the chain gives it its members' signals); a step that embeds text does not join."""
        first = steps[pos - 1]
        status, _, rows_done, cb, cr = states[pos]
        if not isinstance(first, RowStep) or getattr(first, "embedding_model", None) or status == "done":
            return []
        cursor = (cb or 0, cr or 0)
        fresh = cursor == (0, 0) and not rows_done
        chain: list[tuple[int, Step]] = [(pos, first)]
        for p in range(pos + 1, len(steps) + 1):
            step = steps[p - 1]
            st_status, _, st_done, st_cb, st_cr = states[p]
            if getattr(step, "embedding_model", None) or (step.reads_signals and pos != 1):
                break
            if isinstance(step, RowStep):
                if isinstance(chain[-1][1], GlobalStep) or st_status == "done" or (st_cb or 0, st_cr or 0) != cursor \
                        or (fresh and st_done):
                    break
            elif not (fresh and st_status == "pending"):
                break
            chain.append((p, step))
        return chain

    def _run_chain(self, chain: list[tuple[int, Step]], run_id: int, max_batch: int, batch_rows: int,
                   states: dict[int, tuple]) -> None:
        """Run the steps of :meth:`_chain_from` over one read of each page. Each page's row-step outputs and cursors
        are written in one transaction, so the chain resumes where all its row steps stopped; the global steps
        decide, in order, once every page is read."""
        first_pos, first = chain[0]
        rows = [(p, s) for p, s in chain if isinstance(s, RowStep)]
        globs = [(p, s) for p, s in chain if isinstance(s, GlobalStep)]
        _, rows_in, _, cb, cr = states[first_pos]
        if rows_in is None or states[first_pos][0] == "pending":
            rows_in = self._rows_in(run_id, first_pos, max_batch, first)
        now = utcnow()
        with self.store.writer() as con:
            for p, _ in chain:
                if states[p][0] == "pending":
                    # the others' input is known once the earlier steps have decided: set when they are done
                    con.execute("UPDATE run_steps SET status = 'running', rows_in = ?, started_at = ? "
                                "WHERE run_id = ? AND position = ?", [rows_in if p == first_pos else None, now, run_id, p])
        done = {p: states[p][2] for p, _ in rows}
        sigs: dict[int, list[pa.Table]] = {p: [] for p, _ in globs}
        for _, g in globs:
            g.texts_for = lambda ids, n, columns=None: self._texts_for(run_id, ids, n, columns)
        try:
            # two stages on two pages at once: the chain's first steps on a page while the rest work on the page
            # before it; meanwhile the page done before that is written and the page after is read (one after the
            # other: a process cannot hold a read-only and a read-write connection to one file at once)
            split = max(1, len(rows) - 1)
            head, tail = chain[:split], chain[split:]
            # the first page is a fifth of one: the later steps wait for it to go through the first ones
            got = self._page(first, run_id, first_pos, max_batch, (cb or 0, cr or 0), max(1, batch_rows // 5))
            ahead: _Stage | None = None
            if got is not None:
                page, last = got
                ahead, got = self._overlapped(lambda: self._stage(head, page, sigs, [], True), first, run_id,
                                              first_pos, max_batch, last, batch_rows)
            written: tuple[list[StepOutput], dict[int, int], tuple[int, int]] | None = None  # a page to write

            def write_then_read(page_out, cursor):  # noqa: ANN001, ANN202
                if page_out is not None:
                    self._write_chain_page(run_id, rows, *page_out)
                return self._page(first, run_id, first_pos, max_batch, cursor, batch_rows) if cursor else None

            while ahead is not None:
                this = ahead
                with ThreadPoolExecutor(2) as pool:
                    behind = pool.submit(self._stage, tail, this.page, sigs, this.emitted)
                    next_last = got[1] if got is not None else None
                    io = pool.submit(write_then_read, written, next_last)
                    failed: BaseException | None = None
                    try:
                        ahead = self._stage(head, got[0], sigs, [], True) if got is not None else None
                    except BaseException as e:  # the page both stages are done with is written first
                        failed = e
                    got = io.result()
                    rest = behind.result()
                if failed is not None:
                    self._write_chain_page(run_id, rows, this.outs + rest.outs, {**this.seen, **rest.seen}, last)
                    raise failed
                if written is not None:
                    self._chain_progress(chain, written[1], done, rows_in)
                written = (this.outs + rest.outs, {**this.seen, **rest.seen}, last)
                if next_last is not None:
                    last = next_last
            # from here the store is written by one thread, in order, while the global steps decide: each write
            # is done before the next step reads the store (texts_for) and before the chain ends
            io = ThreadPoolExecutor(1)
            pending: list = []

            def later(fn: Callable[[], object]) -> None:
                pending.append(io.submit(fn))

            def settle() -> None:
                while pending:
                    pending.pop(0).result()

            def texts_for(ids, n, columns=None):  # noqa: ANN001, ANN202
                settle()
                yield from self._texts_for(run_id, ids, n, columns)

            for _, g in globs:
                g.texts_for = texts_for
            try:
                if written is not None:
                    last_page = written

                    def write_last() -> None:
                        self._write_chain_page(run_id, rows, *last_page)
                        self._chain_progress(chain, last_page[1], done, rows_in)
                    later(write_last)

                later(lambda: self._row_steps_done(run_id, rows))
                dropped: list[pa.Array] = []  # samples the chain's global steps dropped so far
                stale: set[int] = set()  # global steps that read a signal an earlier one wrote: read their pages again
                for p, step in globs:
                    if p in stale:
                        settle()
                        sigs.pop(p)
                        n = self._rows_in(run_id, p, max_batch, step)
                        with self.store.writer() as con:
                            con.execute("UPDATE run_steps SET rows_in = ? WHERE run_id = ? AND position = ?",
                                        [n, run_id, p])
                        self._global_stages(step, run_id, p, max_batch, batch_rows, total=n)
                        self._step_done(run_id, p, step)
                        continue
                    table = [t for t in sigs.pop(p) if t.num_rows]
                    if dropped and table:
                        gone = pa.concat_arrays(dropped)
                        table = [t.filter(pc.invert(pc.is_in(t.column("sample_id"), value_set=gone))) for t in table]
                    out, n = self._decision(step, p, table)

                    def write(step: GlobalStep = step, p: int = p, out: StepOutput | None = out, n: int = n) -> None:
                        self._write_decision(step, run_id, p, out, n, rows_in=True)
                        self._step_done(run_id, p, step)
                    later(write)
                    if out is not None and out.signals is not None:
                        stale |= later_readers(globs, p, out.signals)
                    if out is not None and out.decisions is not None:
                        d = out.decisions
                        dropped.append(d.filter(pc.equal(d.column("verdict"), "drop")).column("sample_id").combine_chunks())
                settle()
            finally:
                io.shutdown(wait=True)
        finally:
            for _, g in globs:
                g.texts_for = None

    def _write_chain_page(self, run_id: int, rows: list[tuple[int, Step]], outs: list[StepOutput],
                          seen: dict[int, int], last: tuple[int, int]) -> None:
        """One page's outputs of a chain's row steps, with their cursors, in one transaction."""
        with self.store.writer() as con:
            self._fence(con, run_id)
            for (p, step), out in zip(rows, outs):
                self._record_page(con, run_id, p, step, out, seen[p], last)

    def _chain_progress(self, chain: list[tuple[int, Step]], seen: dict[int, int], done: dict[int, int],
                        total: int) -> None:
        """Each step's progress once a page is written (``seen``: the samples each step saw in it)."""
        for p, step in chain:
            done[p] = done.get(p, 0) + seen[p]
            if self.progress:
                self.progress(step.name if isinstance(step, RowStep) else f"{step.name} (signatures)", done[p], total)

    def _stage(self, members: list[tuple[int, Step]], page: pa.Table, sigs: dict[int, list[pa.Table]],
               emitted: list[pa.Table], from_store: bool = False) -> _Stage:
        """A page through some consecutive members of a chain (``from_store``: the first of them is the chain's
        first step, and ``page`` is as read): their outputs, the page as the next member reads it, and the
        signals the chain's row steps wrote on it (``emitted``: those of the members before)."""
        stage = _Stage(page=page, emitted=list(emitted))
        for k, (p, step) in enumerate(members):
            # the chain's first step reads its page, with its signals from the store; the others', the chain's
            view = page if k == 0 and from_store else with_signals(page, step.reads_signals, stage.emitted)
            stage.seen[p] = view.num_rows
            if isinstance(step, RowStep):
                out = self._timed(p, step.process, view)
                stage.outs.append(out)
                if out.signals is not None and out.signals.num_rows:
                    stage.emitted.append(out.signals)
                page = after(page, out)
            else:
                sigs[p].append(self._timed(p, step.signatures, view))
        stage.page = page
        return stage


def after(page: pa.Table, out: StepOutput) -> pa.Table:
    """The page as the next step reads it after ``out`` is written: the samples it dropped left out, the text it
    changed in (what ``_input_sql`` reads back: the run's latest version)."""
    texts = out.texts
    if texts is not None and texts.num_rows:
        n = page.num_rows
        at = pc.index_in(page.column("sample_id"), value_set=texts.column("sample_id").combine_chunks())
        take = pc.if_else(pc.is_valid(at), pc.add(at.cast(pa.int64()), n), pa.array(range(n), pa.int64()))
        for c in PAGE_TEXT_COLUMNS.split(", "):
            i = page.schema.get_field_index(c)
            old = page.column(i).combine_chunks()
            new = texts.column(c).combine_chunks().cast(old.type)
            page = page.set_column(i, page.schema.field(i), pa.concat_arrays([old, new]).take(take))
    if out.decisions is not None and out.decisions.num_rows:
        d = out.decisions
        gone = d.filter(pc.equal(d.column("verdict"), "drop")).column("sample_id").combine_chunks()
        if len(gone):
            page = page.filter(pc.invert(pc.is_in(page.column("sample_id"), value_set=gone)))
    return page


def with_signals(page: pa.Table, names: tuple[str, ...], emitted: list[pa.Table]) -> pa.Table:
    """``page`` with one column per signal of ``names`` (as ``_input_sql`` adds them: the largest value a step
    wrote for the sample, NULL when none did) from the signals ``emitted`` by the chain's steps on this page, and
    without other signal columns."""
    base = page.select([c for c in page.column_names if c in PAGE_COLUMNS])
    if not names:
        return base
    sig = pa.concat_tables(emitted) if emitted else pa.table({"sample_id": pa.array([], pa.string()),
                                                             "name": pa.array([], pa.string()),
                                                             "value": pa.array([], pa.float64())})
    for name in names:
        one = sig.filter(pc.equal(sig.column("name"), name)).group_by("sample_id").aggregate([("value", "max")])
        at = pc.index_in(base.column("sample_id"), value_set=one.column("sample_id").combine_chunks())
        values = one.column("value_max").combine_chunks().cast(pa.float64()).take(at)
        base = base.append_column(name, values)
    return base


def later_readers(globs: list[tuple[int, Step]], pos: int, signals: pa.Table) -> set[int]:
    """The global steps after ``pos`` in a chain that read a signal in ``signals`` (their signatures were made
    without it)."""
    names = set(pc.unique(signals.column("name")).to_pylist()) if signals.num_rows else set()
    return {p for p, s in globs if p > pos and names & set(s.reads_signals)}
