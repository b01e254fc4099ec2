"""Snapshots: an immutable list of (sample, text version) pairs frozen from a run's kept samples.

A snapshot is reviewed, certified and approved as a whole; applying reviews makes a child snapshot
(rejected samples left out, corrected ones pinned to the text version the correction wrote). A snapshot
built on an approved parent marks the samples the parent already holds (same id and version) as not new:
only the new ones need review.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from curation.errors import RefusedError, UsageError
from curation.pipeline.text import content_hash_sql
from curation.store.store import Store, utcnow

STATES = ("draft", "in_review", "approved", "rejected")
_NEXT = {"draft": {"in_review", "rejected"}, "in_review": {"approved", "rejected", "draft"},
         "approved": set(), "rejected": set()}

# kept samples of one run with their current text version (the `kept` view, for any run)
_KEPT_SQL = """
    WITH r AS (SELECT run_id, max_batch_id FROM runs WHERE run_id = $run),
    cur AS (
        SELECT t.* FROM sample_texts t JOIN r USING (run_id)
        QUALIFY row_number() OVER (PARTITION BY t.sample_id ORDER BY t.version DESC) = 1
    ), k AS (
        SELECT s.sample_id, coalesce(cur.version, 0) AS version, s.shape,
               CASE WHEN cur.sample_id IS NULL THEN s.instruction ELSE cur.instruction END AS instruction,
               CASE WHEN cur.sample_id IS NULL THEN s.input ELSE cur.input END AS input,
               CASE WHEN cur.sample_id IS NULL THEN s.output ELSE cur.output END AS output,
               CASE WHEN cur.sample_id IS NULL THEN s.system ELSE cur.system END AS system,
               CASE WHEN cur.sample_id IS NULL THEN s.messages ELSE cur.messages END AS messages,
               CASE WHEN cur.sample_id IS NULL THEN s.reasoning ELSE cur.reasoning END AS reasoning
        FROM samples s
        JOIN batches b ON b.batch_id = s.batch_id AND b.status = 'done'
        JOIN r ON s.batch_id <= r.max_batch_id
        LEFT JOIN cur ON cur.sample_id = s.sample_id
        WHERE NOT EXISTS (SELECT 1 FROM decisions d WHERE d.run_id = r.run_id AND d.sample_id = s.sample_id
                          AND d.verdict = 'drop')
    )
    SELECT sample_id, version, $hash AS content_hash FROM k
"""


@dataclass
class Snapshot:
    """One row of ``snapshots``."""

    snapshot_id: int
    parent_id: int | None
    run_id: int
    state: str
    content_hash: str
    n_samples: int
    n_new: int
    note: str | None
    forced: bool
    certification: dict | None
    review_plan: dict | None = None


def _row(con, snapshot_id: int) -> Snapshot:  # noqa: ANN001
    rows = con.execute("""SELECT snapshot_id, parent_id, run_id, state, content_hash, n_samples, n_new, note, forced,
                                 certification, review_plan FROM snapshots WHERE snapshot_id = ?""",
                       [snapshot_id]).fetchall()
    if not rows:
        raise UsageError(f"no snapshot {snapshot_id} (see `curate snapshot list`)")
    r = rows[0]
    return Snapshot(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], json.loads(r[9]) if r[9] else None,
                    json.loads(r[10]) if r[10] else None)


def get_snapshot(store: Store, snapshot_id: int) -> Snapshot:
    """A snapshot by id (UsageError when there is none)."""
    with store.reader() as con:
        return _row(con, snapshot_id)


def list_snapshots(store: Store) -> list[Snapshot]:
    """All snapshots, newest first."""
    with store.reader() as con:
        ids = [r[0] for r in con.execute("SELECT snapshot_id FROM snapshots ORDER BY snapshot_id DESC").fetchall()]
        return [_row(con, i) for i in ids]


def create_snapshot(store: Store, run_id: int | None = None, parent_id: int | None = None,
                    note: str | None = None) -> Snapshot:
    """Freeze the kept samples of a run (default: the latest done run) as a draft snapshot.

    With ``parent_id`` (an approved snapshot) the samples it already holds with the same text version
    are marked not new; only the others need review.
    """
    with store.writer() as con:
        if run_id is None:
            got = con.execute("SELECT run_id FROM runs WHERE status = 'done' ORDER BY run_id DESC LIMIT 1").fetchall()
            if not got:
                raise UsageError("no finished run to snapshot: run the pipeline first (`curate run`)")
            run_id = int(got[0][0])
        run = con.execute("SELECT status, config FROM runs WHERE run_id = ?", [run_id]).fetchall()
        if not run:
            raise UsageError(f"no run {run_id}")
        if run[0][0] != "done":
            raise UsageError(f"run {run_id} is {run[0][0]}, not done: finish it first (`curate run`)")
        if parent_id is not None:
            parent = _row(con, parent_id)
            if parent.state != "approved":
                raise UsageError(f"snapshot {parent_id} is {parent.state}: only an approved snapshot can be a parent")
        sid = int(con.execute(
            """INSERT INTO snapshots (parent_id, run_id, state, content_hash, n_samples, n_new, config, note, created_at)
               VALUES (?, ?, 'draft', '', 0, 0, ?, ?, ?) RETURNING snapshot_id""",
            [parent_id, run_id, run[0][1], note, utcnow()]).fetchall()[0][0])
        kept = _KEPT_SQL.replace("$run", str(int(run_id))).replace("$hash", content_hash_sql())
        # the same sample with the same text as in the approved parent needs no new review
        in_parent = ("EXISTS (SELECT 1 FROM snapshot_samples p WHERE p.snapshot_id = ? "
                     "AND p.sample_id = k.sample_id AND p.content_hash = k.content_hash)")
        con.execute(f"""INSERT INTO snapshot_samples
                        SELECT ?, k.sample_id, k.version, k.content_hash, NOT {in_parent if parent_id is not None else 'false'}
                        FROM ({kept}) k ORDER BY k.sample_id""",
                    [sid, parent_id] if parent_id is not None else [sid])
        _finish(con, sid, kept)
        return _row(con, sid)


def _finish(con, sid: int, kept_sql: str | None = None) -> None:  # noqa: ANN001
    """Counts and content hash of a snapshot whose samples are in place."""
    n, n_new, digest = con.execute(
        """SELECT count(*), count(*) FILTER (WHERE is_new),
                  sha256(coalesce(string_agg(sample_id || ':' || content_hash, ',' ORDER BY sample_id), ''))
           FROM snapshot_samples WHERE snapshot_id = ?""", [sid]).fetchall()[0]
    con.execute("UPDATE snapshots SET n_samples = ?, n_new = ?, content_hash = ? WHERE snapshot_id = ?",
                [n, n_new, digest, sid])


def set_state(store: Store, snapshot_id: int, state: str) -> Snapshot:
    """Move a snapshot along draft -> in_review -> approved | rejected (approve with :func:`approve`)."""
    if state not in STATES:
        raise UsageError(f"unknown state {state!r}: one of {', '.join(STATES)}")
    with store.writer() as con:
        snap = _row(con, snapshot_id)
        if state == "approved":
            raise UsageError("use `curate snapshot approve`, which checks the certification")
        if state not in _NEXT[snap.state]:
            raise RefusedError(f"snapshot {snapshot_id} is {snap.state}; it cannot become {state}")
        con.execute("UPDATE snapshots SET state = ?, state_changed_at = ? WHERE snapshot_id = ?",
                    [state, utcnow(), snapshot_id])
        return _row(con, snapshot_id)


def approve(store: Store, snapshot_id: int, certification: dict | None, force: bool = False) -> Snapshot:
    """Approve a snapshot: only when ``certification`` says certified, or with ``force`` (recorded)."""
    with store.writer() as con:
        snap = _row(con, snapshot_id)
        if snap.state in ("approved", "rejected"):
            raise RefusedError(f"snapshot {snapshot_id} is already {snap.state}")
        certified = bool(certification and certification.get("verdict") == "certified")
        if not certified and not force:
            why = (f"its certification is {certification.get('verdict')} (lower bound {certification.get('lower', 0):.4f} "
                   f"against target {certification.get('target')})" if certification else "it has no reviews yet")
            raise RefusedError(f"snapshot {snapshot_id} is not certified: {why}; review more, or approve with --force "
                               "(recorded in the manifest)")
        con.execute("""UPDATE snapshots SET state = 'approved', state_changed_at = ?, forced = ?, certification = ?
                       WHERE snapshot_id = ?""",
                    [utcnow(), not certified, json.dumps(certification) if certification else None, snapshot_id])
        return _row(con, snapshot_id)


def review_counts(store: Store, snapshot_id: int) -> tuple[int, int]:
    """(items judged, items accepted) for a snapshot's sample reviews, by majority of their reviewers.

    A tie counts as a reject until a further reviewer breaks it.
    """
    with store.reader() as con:
        rows = con.execute(
            """WITH v AS (
                   SELECT item_id, count(*) FILTER (WHERE verdict = 'accept') AS acc,
                          count(*) FILTER (WHERE verdict = 'reject') AS rej
                   FROM reviews WHERE snapshot_id = ? AND item_kind = 'sample' AND status = 'submitted'
                   GROUP BY item_id)
               SELECT count(*), count(*) FILTER (WHERE acc > rej) FROM v""", [snapshot_id]).fetchall()
    return int(rows[0][0]), int(rows[0][1])


def snapshot_certification(store: Store, snapshot_id: int, target: float | None = None,
                           confidence: float | None = None) -> dict:
    """Certification of a snapshot from its reviews so far.

    With a review plan (``curate review push`` draws one), the estimate and bound are weighted by stratum
    and, for a loop planned over several rounds, taken at the alpha spent at the last completed look, so
    the error over all looks stays within ``1 - confidence``. Without one: the one-look bound over the
    majority verdicts (population: the samples that need review). ``target`` / ``confidence`` default
    to the plan's, else 0.98 / 0.95.
    """
    from curation.review.stats import certify

    snap = get_snapshot(store, snapshot_id)
    plan = snap.review_plan or {}
    target = target if target is not None else plan.get("target", 0.98)
    confidence = confidence if confidence is not None else plan.get("confidence", 0.95)
    if plan:
        from curation.review.loop import weighted_certification

        return weighted_certification(store, snapshot_id, target, confidence)
    reviewed, correct = review_counts(store, snapshot_id)
    population = snap.n_new or snap.n_samples
    if reviewed == 0:
        return {"verdict": "undecided", "reviewed": 0, "target": target, "confidence": confidence,
                "population": population, "lower": 0.0, "upper": 1.0, "estimate": None, "more_reviews_needed": None}
    return certify(reviewed, correct, population, target, confidence).as_dict()


def with_reference_snapshot(store: Store, config, snapshot_id: int):  # noqa: ANN001, ANN201
    """``config`` with the batches of an approved snapshot's samples as the dedup steps' reference set.

    For an incremental round: new batches are deduplicated against the approved parent (its samples are
    never dropped, new copies of them are), then ``curate snapshot create --parent`` marks only what is new
    for review.
    """
    snap = get_snapshot(store, snapshot_id)
    if snap.state != "approved":
        raise UsageError(f"snapshot {snapshot_id} is {snap.state}: only an approved snapshot can be a reference")
    with store.reader() as con:
        batches = sorted(int(r[0]) for r in con.execute(
            """SELECT DISTINCT s.batch_id FROM snapshot_samples ss JOIN samples s USING (sample_id)
               WHERE ss.snapshot_id = ?""", [snapshot_id]).fetchall())
    steps = []
    touched = 0
    for step in config.steps:
        if step.type == "near_dedup":
            step = step.model_copy(update={"params": {**step.params, "reference_batches": batches}})
            touched += 1
        steps.append(step)
    if not touched:
        raise UsageError("the pipeline has no near_dedup step to deduplicate against the reference snapshot")
    return config.model_copy(update={"steps": steps})
