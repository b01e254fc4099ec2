"""What a lead reads about a review: one summary of the certification, the agreement and the errors.

* :func:`error_summary` — reviewed items and errors by source, by language and by the filter that flagged
  them, with the error categories the reviewers named.
* :func:`review_status` — the whole record of a snapshot's review in one call (what ``review status`` prints).
"""

from __future__ import annotations

from collections import Counter

from curation.review.certification import snapshot_certification
from curation.review.verdicts import agreement, majority
from curation.snapshots.core import children, get_snapshot
from curation.store.store import Store


def error_summary(store: Store, snapshot_id: int) -> list[dict]:
    """Reviewed items and errors by source, by language and by the filter that flagged them.

    One row per (dimension, key): ``reviewed``, ``rejected`` (majority), ``error_rate`` and the error
    categories the reviewers named, so a lead sees which source, language or rule causes errors.
    """
    votes = majority(store, snapshot_id)
    if not votes:
        return []
    snap = get_snapshot(store, snapshot_id)
    with store.reader() as con:
        rows = con.execute(
            """SELECT r.item_id, split_part(st.source, '/', -1), st.lang,
                      (SELECT list(DISTINCT d.step ORDER BY d.step) FROM decisions d WHERE d.run_id = $run
                       AND d.sample_id = r.sample_id AND d.verdict = 'flag')
               FROM reviews r JOIN snapshot_strata($snap) st USING (sample_id)
               WHERE r.snapshot_id = $snap AND r.review_id = r.item_id AND r.item_kind = 'sample'""",
            {"run": snap.run_id, "snap": snapshot_id}).fetchall()
    table: dict[tuple[str, str], dict] = {}
    for item, source, lang, flags in rows:
        v = votes.get(item)
        if v is None:
            continue
        keys = [("source", source), ("language", lang)] + [("filter", f) for f in (flags or ["(not flagged)"])]
        for key in keys:
            d = table.setdefault(key, {"by": key[0], "key": key[1], "reviewed": 0, "rejected": 0, "categories": Counter()})
            d["reviewed"] += 1
            d["rejected"] += v["verdict"] == "reject"
            if v["verdict"] == "reject":
                d["categories"].update(v["categories"])
    out = []
    for d in sorted(table.values(), key=lambda d: (d["by"], -d["rejected"], d["key"])):
        out.append({**d, "error_rate": d["rejected"] / d["reviewed"], "categories": dict(d["categories"].most_common())})
    return out


def review_status(store: Store, snapshot_id: int) -> dict:
    """Plan, certification (counts and estimates apart), agreement, errors, and the child that applies the reviews."""
    snap = get_snapshot(store, snapshot_id)
    with store.reader() as con:
        pending = con.execute("""SELECT count(*) FROM reviews r WHERE snapshot_id = ? AND item_kind = 'sample'
                                 AND review_id = item_id AND NOT EXISTS (SELECT 1 FROM reviews x WHERE x.item_id = r.item_id
                                 AND x.status = 'submitted')""", [snapshot_id]).fetchall()[0][0]
    return {"snapshot": snapshot_id, "state": snap.state, "plan": snap.review_plan, "items_pending": int(pending),
            "certification": snapshot_certification(store, snapshot_id), "agreement": agreement(store, snapshot_id),
            "errors": error_summary(store, snapshot_id),
            "applied_in": [c.snapshot_id for c in children(store, snapshot_id)]}
