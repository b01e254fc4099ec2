"""The review loop with a review tool: push a snapshot's drawn sample, pull the verdicts back.

Plan and draw live in :mod:`curation.review.sampling`, verdicts in :mod:`curation.review.verdicts`,
the certification in :mod:`curation.review.certification`; this module moves items between the store
and a backend (:mod:`curation.review.backends`).
"""

from __future__ import annotations

from curation.review.certification import snapshot_certification
from curation.review.items import sample_items
from curation.review.sampling import start_review
from curation.review.verdicts import agreement, record_verdicts
from curation.snapshots.core import get_snapshot
from curation.store.store import Store


def push_review(store: Store, snapshot_id: int, backend, progress=None, **plan_args) -> dict:  # noqa: ANN001
    """Plan and draw (first time only), then push the snapshot's pending items to ``backend``.

    The backend is checked first, so a server that is down or a bad token changes nothing in the store.
    Repeating it pushes nothing twice.
    """
    from curation.review.backends import snapshot_key

    get_snapshot(store, snapshot_id)
    backend.check()
    plan = start_review(store, snapshot_id, backend=backend.name, **plan_args)
    items = sample_items(store, snapshot_id)
    res = backend.push(snapshot_key(snapshot_id, store_id=store.store_id), "sample", items,
                       overlap=int(plan.get("overlap", 1)), progress=progress)
    return {"snapshot": snapshot_id, "items": len(items), "created": res.created, "already_there": res.existing,
            "project": res.project, "url": res.url, "plan": plan}


def pull_review(store: Store, snapshot_id: int, backend) -> dict:  # noqa: ANN001
    """Pull the verdicts of a snapshot's review from ``backend``, store the new ones, and certify."""
    from curation.review.backends import snapshot_key

    get_snapshot(store, snapshot_id)
    verdicts = backend.pull(snapshot_key(snapshot_id, store_id=store.store_id), "sample")
    new = record_verdicts(store, verdicts, backend.name)
    return {"snapshot": snapshot_id, "pulled": len(verdicts), "new": new,
            "certification": snapshot_certification(store, snapshot_id), "agreement": agreement(store, snapshot_id)}
