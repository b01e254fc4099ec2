"""An approved snapshot as the dedup reference of an incremental round."""

from __future__ import annotations

from curation.errors import UsageError
from curation.snapshots.core import get_snapshot
from curation.store.store import Store

DEDUP_STEPS = ("exact_dedup", "near_dedup", "semantic_dedup")


def with_reference_snapshot(store: Store, config, snapshot_id: int):  # noqa: ANN001, ANN201
    """``config`` with the batches of an approved snapshot's samples as every dedup step's reference set.

    For an incremental round: new batches are deduplicated against the approved parent (its samples are
    never dropped by any dedup step, new copies of them are), then ``curate snapshot create --parent``
    marks only what is new for review.
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
        if step.type in DEDUP_STEPS:
            step = step.model_copy(update={"params": {**step.params, "reference_batches": batches}})
            touched += 1
        steps.append(step)
    if not touched:
        raise UsageError(f"the pipeline has no dedup step ({', '.join(DEDUP_STEPS)}) to deduplicate against the "
                         "reference snapshot")
    return config.model_copy(update={"steps": steps})
