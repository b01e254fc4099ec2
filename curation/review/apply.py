"""Applying a snapshot's reviews: a child snapshot with the rejected samples out and the corrections in.

A majority reject without a correction leaves the sample out; a correction (the corrected answer) becomes
a new text version of the sample, made by this snapshot's review: for a single-turn sample it replaces
``output``, for a dialogue the content of its last assistant turn. An accepted sample that a reviewer
edited gets the edit too. The child inherits the reviewed snapshot's certification with the lineage
(:mod:`curation.review.certification`).
"""

from __future__ import annotations

import pyarrow as pa

from curation.errors import UsageError
from curation.pipeline.base import TEXT_SCHEMA
from curation.review.certification import lineage_counts, snapshot_certification
from curation.review.verdicts import majority
from curation.snapshots.core import Snapshot, children, create_child, get_snapshot
from curation.store.store import Store


def _corrected_texts(store: Store, snapshot_id: int, corrections: dict[str, str]) -> pa.Table:
    """The whole text of each corrected sample, at its pinned version, with the correction put in."""
    with store.reader() as con:
        rows = con.execute(
            """SELECT sample_id, instruction, input, output, system, messages, reasoning
               FROM snapshot_texts(?) WHERE sample_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY sample_id""",
            [snapshot_id, sorted(corrections)]).fetchall()
    cols: dict[str, list] = {name: [] for name in ("sample_id", "instruction", "input", "output", "system", "messages",
                                                    "reasoning")}
    for sid, instruction, inp, output, system, messages, reasoning in rows:
        text = corrections[sid]
        if messages:
            last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
            if last is None:
                raise UsageError(f"sample {sid}: a correction for a dialogue without an assistant turn")
            messages = [dict(m) for m in messages]
            messages[last]["content"] = text
        else:
            output = text
        for name, value in zip(cols, (sid, instruction, inp, output, system, messages, reasoning)):
            cols[name].append(value)
    schema = pa.schema([f for f in TEXT_SCHEMA if f.name in cols])
    return pa.table({name: pa.array(values, schema.field(name).type) for name, values in cols.items()})


def apply_reviews(store: Store, snapshot_id: int) -> Snapshot:
    """The child snapshot of ``snapshot_id`` with its reviews applied (made once: applying again returns it)."""
    done = children(store, snapshot_id)
    if done:
        return done[-1]
    snap = get_snapshot(store, snapshot_id)
    votes = majority(store, snapshot_id)
    if not votes:
        raise UsageError(f"snapshot {snapshot_id} has no verdicts to apply: pull them first (`curate review pull {snapshot_id}`)")
    sample_of = {k: k.split(":")[1] for k in votes}
    removed = sorted(sample_of[k] for k, d in votes.items() if d["verdict"] == "reject" and not d["corrected_output"])
    corrections = {sample_of[k]: d["corrected_output"] for k, d in votes.items() if d["corrected_output"]}
    lineage = lineage_counts(store, snapshot_id)
    note = (f"reviews of snapshot {snapshot_id} applied: {lineage['rejected_removed']} rejected removed, "
            f"{lineage['corrected']} corrected, {lineage['edited']} accepted with an edit")
    parent_cert = snapshot_certification(store, snapshot_id)
    return create_child(store, snap.snapshot_id, removed=removed,
                        new_texts=_corrected_texts(store, snapshot_id, corrections) if corrections else None,
                        note=note, record={"basis": "lineage", "lineage": lineage,
                                           "parent_verdict_when_applied": parent_cert.get("verdict")})
