"""Approval: the gate between a reviewed snapshot and training.

The certification is computed here from the stored reviews (never passed in): a snapshot is approved
when it is certified, or with ``force``, which is recorded and shows in every export's manifest.
"""

from __future__ import annotations

import json

from curation.errors import RefusedError
from curation.snapshots.core import Snapshot, _read
from curation.store.store import Store, utcnow


def approve(store: Store, snapshot_id: int, force: bool = False, target: float | None = None,
            confidence: float | None = None) -> Snapshot:
    """Approve a snapshot when its stored reviews certify it (or its lineage does), or with ``force`` (recorded).

    ``target`` / ``confidence`` default to the review plan's, else 0.98 / 0.95.
    """
    # the review stage computes the figure; it reads only the store (reviews, strata), never this module
    from curation.review.certification import snapshot_certification

    certification = snapshot_certification(store, snapshot_id, target, confidence)
    certified = certification.get("verdict") == "certified"
    with store.writer() as con:
        snap = _read(con, snapshot_id)
        if snap.state in ("approved", "rejected"):
            raise RefusedError(f"snapshot {snapshot_id} is already {snap.state}")
        if not certified and not force:
            if certification.get("counts", {}).get("reviewed") or certification.get("basis") == "lineage":
                why = (f"its certification is {certification.get('verdict')} (lower bound "
                       f"{certification.get('lower', 0):.4f} against target {certification.get('target')})")
            else:
                why = "it has no reviews yet (`curate review push`)"
            raise RefusedError(f"snapshot {snapshot_id} is not certified: {why}; review more, or approve with --force "
                               "(recorded in the manifest)")
        con.execute("""UPDATE snapshots SET state = 'approved', state_changed_at = ?, forced = ?, certification = ?
                       WHERE snapshot_id = ?""",
                    [utcnow(), not certified, json.dumps(certification), snapshot_id])
        return _read(con, snapshot_id)
