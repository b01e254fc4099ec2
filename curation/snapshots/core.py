"""Snapshots: immutable lists of (sample, text version) pairs frozen from a run's kept samples.

A snapshot moves draft -> in_review -> approved | rejected. It is never changed after creation:
applying reviews makes a child (:func:`create_child`: some samples left out, some pinned to a new text
version). A snapshot built on an approved parent (``parent_id``) marks the samples the parent holds with
the same text as not new: only the new ones need review.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pyarrow as pa

from curation.errors import RefusedError, UsageError
from curation.pipeline.text import content_hash_sql
from curation.store.store import Store, utcnow

STATES = ("draft", "in_review", "approved", "rejected")
_NEXT = {"draft": {"in_review", "rejected"}, "in_review": {"approved", "rejected", "draft"},
         "approved": set(), "rejected": set()}
_COLUMNS = ("snapshot_id, parent_id, run_id, state, content_hash, n_samples, n_new, note, forced, certification, "
            "review_plan, applied_from")


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
    applied_from: int | None = None
    """The snapshot whose reviews this one applies (made by ``curate review apply``), else None."""

    def summary(self) -> dict:
        """The fields a person looks at first."""
        return {"snapshot": self.snapshot_id, "parent": self.parent_id, "applied_from": self.applied_from,
                "run": self.run_id, "state": self.state, "samples": self.n_samples, "new": self.n_new,
                "content_hash": self.content_hash[:16], "forced": self.forced, "note": self.note}


def _read(con, snapshot_id: int) -> Snapshot:  # noqa: ANN001
    rows = con.execute(f"SELECT {_COLUMNS} FROM snapshots WHERE snapshot_id = ?", [snapshot_id]).fetchall()
    if not rows:
        raise UsageError(f"no snapshot {snapshot_id} (see `curate snapshot list`)")
    r = rows[0]
    return Snapshot(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], json.loads(r[9]) if r[9] else None,
                    json.loads(r[10]) if r[10] else None, r[11])


def get_snapshot(store: Store, snapshot_id: int) -> Snapshot:
    """A snapshot by id (UsageError when there is none)."""
    with store.reader() as con:
        return _read(con, snapshot_id)


def list_snapshots(store: Store) -> list[Snapshot]:
    """All snapshots, newest first."""
    with store.reader() as con:
        ids = [r[0] for r in con.execute("SELECT snapshot_id FROM snapshots ORDER BY snapshot_id DESC").fetchall()]
        return [_read(con, i) for i in ids]


def children(store: Store, snapshot_id: int) -> list[Snapshot]:
    """Snapshots made by applying the reviews of ``snapshot_id``, oldest first."""
    with store.reader() as con:
        ids = [r[0] for r in con.execute("SELECT snapshot_id FROM snapshots WHERE applied_from = ? ORDER BY 1",
                                         [snapshot_id]).fetchall()]
        return [_read(con, i) for i in ids]


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
            parent = _read(con, parent_id)
            if parent.state != "approved":
                raise UsageError(f"snapshot {parent_id} is {parent.state}: only an approved snapshot can be a parent")
        sid = _new_row(con, parent_id, run_id, run[0][1], note)
        # the same sample with the same text as in the approved parent needs no new review
        in_parent = ("EXISTS (SELECT 1 FROM snapshot_samples p WHERE p.snapshot_id = $parent "
                     "AND p.sample_id = k.sample_id AND p.content_hash = k.content_hash)")
        con.execute(f"""INSERT INTO snapshot_samples
                        SELECT $sid, k.sample_id, k.version, k.content_hash, NOT coalesce({in_parent}, false)
                        FROM (SELECT sample_id, version, {content_hash_sql()} AS content_hash FROM run_kept($run)) k
                        ORDER BY k.sample_id""",
                    {"sid": sid, "parent": parent_id, "run": run_id})
        _finish(con, sid)
        return _read(con, sid)


def _new_row(con, parent_id: int | None, run_id: int, config: str, note: str | None,  # noqa: ANN001
             applied_from: int | None = None) -> int:
    return int(con.execute(
        """INSERT INTO snapshots (parent_id, run_id, state, content_hash, n_samples, n_new, config, note, created_at,
                                  applied_from)
           VALUES (?, ?, 'draft', '', 0, 0, ?, ?, ?, ?) RETURNING snapshot_id""",
        [parent_id, run_id, config, note, utcnow(), applied_from]).fetchall()[0][0])


def _finish(con, sid: int) -> None:  # noqa: ANN001
    """Counts and content hash of a snapshot whose samples are in place."""
    n, n_new, digest = con.execute(
        """SELECT count(*), count(*) FILTER (WHERE is_new),
                  sha256(coalesce(string_agg(sample_id || ':' || content_hash, ',' ORDER BY sample_id), ''))
           FROM snapshot_samples WHERE snapshot_id = ?""", [sid]).fetchall()[0]
    con.execute("UPDATE snapshots SET n_samples = ?, n_new = ?, content_hash = ? WHERE snapshot_id = ?",
                [n, n_new, digest, sid])


def create_child(store: Store, snapshot_id: int, *, removed: list[str], new_texts: pa.Table | None = None,
                 note: str | None = None, record: dict | None = None) -> Snapshot:
    """A child of ``snapshot_id`` without the ``removed`` samples, with ``new_texts`` pinned as new versions.

    ``new_texts``: rows of (sample_id, instruction, input, output, system, messages, reasoning), the whole
    text of each changed sample; each becomes a new version in ``sample_texts`` made by this snapshot's
    review (``snapshot_id`` set, no run), so no run's texts change. ``record``: what the child's
    ``certification`` column starts with (the lineage; approval recomputes it from the stored reviews).
    """
    with store.writer() as con:
        parent = _read(con, snapshot_id)
        config = con.execute("SELECT config FROM snapshots WHERE snapshot_id = ?", [snapshot_id]).fetchall()[0][0]
        child = _new_row(con, snapshot_id, parent.run_id, config, note, applied_from=snapshot_id)
        changed: list[str] = []
        if new_texts is not None and new_texts.num_rows:
            con.register("_new_texts", new_texts)
            try:
                con.execute(
                    f"""INSERT INTO sample_texts (sample_id, version, run_id, step, instruction, input, output, system,
                                                 messages, reasoning, content_hash, snapshot_id)
                        SELECT n.sample_id, coalesce(v.last, 0) + 1, NULL, 'review', n.instruction, n.input, n.output,
                               n.system, n.messages, n.reasoning, {content_hash_sql()}, ?
                        FROM (SELECT n.*, s.shape FROM _new_texts n JOIN samples s USING (sample_id)) n
                        LEFT JOIN (SELECT sample_id, max(version) AS last FROM sample_texts GROUP BY sample_id) v
                               USING (sample_id)""", [snapshot_id])
                changed = [r[0] for r in con.execute("SELECT sample_id FROM _new_texts").fetchall()]
            finally:
                con.unregister("_new_texts")
        con.execute(
            """INSERT INTO snapshot_samples
               SELECT $child, ss.sample_id, coalesce(t.version, ss.version), coalesce(t.content_hash, ss.content_hash),
                      false
               FROM snapshot_samples ss
               LEFT JOIN (SELECT * FROM sample_texts WHERE snapshot_id = $parent AND sample_id IN (SELECT unnest($changed))
                          QUALIFY row_number() OVER (PARTITION BY sample_id ORDER BY version DESC) = 1) t
                      USING (sample_id)
               WHERE ss.snapshot_id = $parent AND ss.sample_id NOT IN (SELECT unnest($removed))""",
            {"child": child, "parent": snapshot_id, "changed": changed, "removed": sorted(removed)})
        _finish(con, child)
        if record is not None:
            con.execute("UPDATE snapshots SET certification = ? WHERE snapshot_id = ?", [json.dumps(record), child])
        return _read(con, child)


def set_state(store: Store, snapshot_id: int, state: str) -> Snapshot:
    """Move a snapshot along draft -> in_review -> rejected (approve with :func:`curation.snapshots.approve`)."""
    if state not in STATES:
        raise UsageError(f"unknown state {state!r}: one of {', '.join(STATES)}")
    if state == "approved":
        raise UsageError("use `curate snapshot approve`, which checks the certification")
    with store.writer() as con:
        snap = _read(con, snapshot_id)
        if state not in _NEXT[snap.state]:
            raise RefusedError(f"snapshot {snapshot_id} is {snap.state}; it cannot become {state}")
        con.execute("UPDATE snapshots SET state = ?, state_changed_at = ? WHERE snapshot_id = ?",
                    [state, utcnow(), snapshot_id])
        return _read(con, snapshot_id)


def mark_in_review(con, snapshot_id: int) -> None:  # noqa: ANN001
    """draft -> in_review, inside a writer's transaction (a review sample was drawn)."""
    con.execute("UPDATE snapshots SET state = 'in_review', state_changed_at = ? WHERE snapshot_id = ? AND state = 'draft'",
                [utcnow(), snapshot_id])


def record_review_plan(store: Store, snapshot_id: int, plan: dict) -> None:
    """Store the review plan with the snapshot (once: a snapshot keeps its first plan)."""
    with store.writer() as con:
        con.execute("UPDATE snapshots SET review_plan = ? WHERE snapshot_id = ? AND review_plan IS NULL",
                    [json.dumps(plan), snapshot_id])
