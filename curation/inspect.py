"""Looking at what is in the store: batches with their accounting, quarantined rows, samples.

Each function takes keyword arguments that mirror the CLI's flags and returns an Arrow table, so the CLI
and the HTTP API show the same rows.
"""

from __future__ import annotations

import pyarrow as pa

from curation.errors import UsageError
from curation.sql import run_query
from curation.store.store import Store

SAMPLE_COLUMNS = ("sample_id, batch_id, source, row_number, external_id, shape, instruction, input, output, system, "
                  "messages, reasoning, metadata")
SHAPES = ("alpaca", "sharegpt", "openai")


def list_batches(store: Store) -> pa.Table:
    """Every batch with its row accounting (``balanced``: read = loaded + quarantined).

    A batch still ``loading`` says by whom (``loading (pid N on HOST)``), or ``interrupted`` when that
    process is gone: the next ingest of the same input loads it again.
    """
    from curation.store.lease import Owner
    from curation.store.store import utcnow

    table = run_query(
        store,
        """SELECT batch_id, source_name AS source, format, encoding, status, rows_read, rows_loaded,
                  rows_already_present, rows_quarantined, blank_lines,
                  rows_read = rows_loaded + rows_quarantined AS balanced, problems,
                  strftime(ingested_at, '%Y-%m-%d %H:%M:%S') AS ingested_at, owner, heartbeat_at
           FROM batches ORDER BY batch_id""")
    now = utcnow()
    status = []
    for st, token, beat in zip(table.column("status").to_pylist(), table.column("owner").to_pylist(),
                               table.column("heartbeat_at").to_pylist(), strict=True):
        owner = Owner.parse(token)
        if st == "loading":
            st = f"loading ({owner.describe()})" if owner is not None and owner.alive(beat, now) else "interrupted"
        status.append(st)
    table = table.set_column(table.schema.get_field_index("status"), "status", pa.array(status, pa.string()))
    return table.drop_columns(["owner", "heartbeat_at"])


def list_quarantine(store: Store, batch: int | None = None, reason: str | None = None, limit: int = 100,
                    after: tuple[int, int, int] | None = None) -> pa.Table:
    """Quarantined rows (file, row, line, reason, field, the row verbatim), optionally of one batch or reason;
    ``after``: the page after this row's (batch_id, line or row, row_number) key (the API's cursor)."""
    if limit < 1:
        raise UsageError(f"limit must be at least 1, not {limit}")
    a = list(after) if after else [None, None, None]
    return run_query(
        store,
        """SELECT batch_id, regexp_extract(source, '[^/]+$') AS file, row_number, line, reason, field, raw
           FROM quarantine
           WHERE ($batch IS NULL OR batch_id = $batch) AND ($reason IS NULL OR contains(reason, $reason))
             AND ($a0 IS NULL OR (batch_id, coalesce(line, row_number, 0), coalesce(row_number, 0)) > ($a0, $a1, $a2))
           ORDER BY batch_id, coalesce(line, row_number, 0), coalesce(row_number, 0) LIMIT $limit""",
        {"batch": batch, "reason": reason, "limit": limit, "a0": a[0], "a1": a[1], "a2": a[2]})


def find_samples(store: Store, sample_id: str | None = None, batch: int | None = None, shape: str | None = None,
                 contains: str | None = None, with_reasoning: bool = False, limit: int = 20,
                 after: tuple[int, int] | None = None) -> pa.Table:
    """Samples as read, filtered by id, batch, shape, text or the presence of a reasoning trace; ``after``: the
    page after this (batch_id, row_number) (the API's cursor)."""
    if shape is not None and shape not in SHAPES:
        raise UsageError(f"unknown shape {shape!r}: one of {', '.join(SHAPES)}")
    if limit < 1:
        raise UsageError(f"limit must be at least 1, not {limit}")
    return run_query(
        store,
        f"""SELECT {SAMPLE_COLUMNS} FROM samples
            WHERE ($id IS NULL OR sample_id = $id) AND ($batch IS NULL OR batch_id = $batch)
              AND ($shape IS NULL OR shape = $shape)
              AND ($contains IS NULL
                   OR contains(coalesce(instruction, '') || coalesce(input, '') || coalesce(output, ''), $contains)
                   OR contains(coalesce(CAST(messages AS VARCHAR), ''), $contains))
              AND (NOT $reasoning OR reasoning IS NOT NULL
                   OR list_bool_or(list_transform(messages, lambda m: m.reasoning IS NOT NULL)))
              AND ($a0 IS NULL OR (batch_id, row_number) > ($a0, $a1))
            ORDER BY batch_id, row_number LIMIT $limit""",
        {"id": sample_id, "batch": batch, "shape": shape, "contains": contains, "reasoning": with_reasoning,
         "limit": limit, "a0": after[0] if after else None, "a1": after[1] if after else None})


def sample_history(store: Store, sample_id: str) -> dict[str, pa.Table]:
    """What happened to one sample: every run's decisions on it, the latest run's signals, its text versions
    (0 = as read, then each step's or review's) and its reviews."""
    params = {"id": sample_id}
    return {
        "decisions": run_query(
            store,
            """SELECT run_id, step, verdict, reason, ref_sample_id, round(score, 4) AS score FROM decisions
               WHERE sample_id = $id ORDER BY run_id, step""", params),
        "signals": run_query(
            store,
            """SELECT run_id, step, name, round(value, 4) AS value, text FROM signals
               WHERE sample_id = $id AND run_id = (SELECT max(run_id) FROM signals WHERE sample_id = $id)
               ORDER BY step, name""", params),
        "versions": run_query(
            store,
            """SELECT version, run_id, snapshot_id, step,
                      coalesce(output, CAST(messages[-1].content AS VARCHAR)) AS answer
               FROM sample_versions WHERE sample_id = $id ORDER BY version""", params),
        "reviews": run_query(
            store,
            """SELECT snapshot_id, version, reviewer, verdict, corrected_output, categories, status
               FROM reviews WHERE sample_id = $id AND item_kind = 'sample' ORDER BY snapshot_id, reviewer""", params),
    }


def funnel(store: Store, run_id: int | None = None) -> pa.Table:
    """Rows at each stage: read, quarantined, loaded, then the run's input, each step's drops and flags, kept."""
    if run_id is None:
        return run_query(store, "SELECT stage, rows FROM funnel ORDER BY position")
    return run_query(store, "SELECT stage, rows FROM funnel_for($run) ORDER BY position", {"run": run_id})


def list_runs(store: Store) -> pa.Table:
    """Every pipeline run: its status, when, its config's hash, and how many samples it kept."""
    return run_query(
        store,
        """SELECT r.run_id, r.status, strftime(r.started_at, '%Y-%m-%d %H:%M:%S') AS started_at,
                  strftime(r.finished_at, '%Y-%m-%d %H:%M:%S') AS finished_at, r.config_hash, r.samples_in, r.max_batch_id
           FROM runs r ORDER BY r.run_id""")


def run_decisions(store: Store, run_id: int, verdict: str | None = None, step: str | None = None, limit: int = 100,
                  after: tuple[str, str, str] | None = None) -> pa.Table:
    """A run's decisions (drop or flag, the step, a reason a person can read, the sample kept instead, the
    score), optionally of one verdict or step; ``after``: the page after this (sample_id, step, reason)."""
    if verdict is not None and verdict not in ("drop", "flag"):
        raise UsageError(f"unknown verdict {verdict!r}: drop or flag")
    if limit < 1:
        raise UsageError(f"limit must be at least 1, not {limit}")
    a = list(after) if after else [None, None, None]
    return run_query(
        store,
        """SELECT sample_id, step, verdict, reason, ref_sample_id, round(score, 4) AS score FROM decisions
           WHERE run_id = $run AND ($verdict IS NULL OR verdict = $verdict) AND ($step IS NULL OR step = $step)
             AND ($a0 IS NULL OR (sample_id, step, reason) > ($a0, $a1, $a2))
           ORDER BY sample_id, step, reason LIMIT $limit""",
        {"run": run_id, "verdict": verdict, "step": step, "limit": limit, "a0": a[0], "a1": a[1], "a2": a[2]})
