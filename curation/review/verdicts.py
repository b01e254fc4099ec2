"""Verdicts, from any backend, into the ``reviews`` table; majority verdicts and agreement between reviewers.

* :func:`record_verdicts` — one row per reviewer per item (idempotent by review id), from any backend.
* :func:`add_answer_items` — model answers to rate (the evaluation's human round) as pending items.
* :func:`majority` — majority verdicts per item (a tie counts as reject until a further reviewer breaks it).
* :func:`agreement` — percent agreement, Cohen's kappa (two reviewers) and Fleiss' kappa (any number), and
  the items the reviewers disagree on.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa

from curation.errors import UsageError
from curation.review.items import VERDICTS
from curation.store.store import Store, utcnow


def _insert_items(con, items: list[dict], kind: str, backend: str) -> int:
    """Insert pending item rows in one statement; items already there are left alone. Returns how many were new."""
    if not items:
        return 0
    tbl = pa.table({
        "item_id": pa.array([it["item_id"] for it in items], pa.string()),
        "snapshot_id": pa.array([it.get("snapshot_id") for it in items], pa.int32()),
        "sample_id": pa.array([it.get("sample_id") for it in items], pa.string()),
        "version": pa.array([it.get("version") for it in items], pa.int32()),
        "stratum": pa.array([it.get("stratum") for it in items], pa.string()),
        "payload": pa.array([json.dumps(it["payload"], ensure_ascii=False) if it.get("payload") is not None else None
                             for it in items], pa.string()),
    })
    con.register("_incoming_items", tbl)
    try:
        return int(con.execute(
            """INSERT INTO reviews (review_id, item_kind, item_id, snapshot_id, sample_id, version, stratum, status,
                                    backend, payload)
               SELECT i.item_id, ?, i.item_id, i.snapshot_id, i.sample_id, i.version, i.stratum, 'pending', ?, i.payload
               FROM (SELECT * FROM _incoming_items QUALIFY row_number() OVER (PARTITION BY item_id) = 1) i
               WHERE NOT EXISTS (SELECT 1 FROM reviews r WHERE r.review_id = i.item_id)""",
            [kind, backend]).fetchall()[0][0])
    finally:
        con.unregister("_incoming_items")


def add_answer_items(store: Store, round_name: str, answers: list[dict], backend: str = "sim") -> int:
    """Add model answers to rate as items of the rating round ``round_name``; idempotent by ``item_id``.

    Each answer: ``{item_id, prompt, answer, model?, reference?, questions?}`` (questions default to
    :data:`curation.review.items.RATING_QUESTIONS`). Returns how many were new.
    """
    for a in answers:
        missing = [k for k in ("item_id", "prompt", "answer") if not a.get(k)]
        if missing:
            raise UsageError(f"answer item {a.get('item_id', '?')!r}: missing {', '.join(missing)}")
    with store.writer() as con:
        return _insert_items(con, [{"item_id": a["item_id"], "stratum": round_name,
                                    "payload": {k: v for k, v in a.items() if k != "item_id"}} for a in answers],
                             "answer", backend)


def _utc(when: object) -> datetime:
    """A naive UTC timestamp from a datetime or an ISO 8601 string (as backends send); now when missing."""
    if not when:
        return utcnow()
    if isinstance(when, str):
        when = datetime.fromisoformat(when)
    if isinstance(when, datetime) and when.tzinfo is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    return when  # type: ignore[return-value]


def record_verdicts(store: Store, verdicts: list[dict], backend: str) -> int:
    """Store verdicts ``{item_id, reviewer, verdict?, corrected_output?, categories?, ratings?, submitted_at?,
    backend_record_id?}`` from any backend, in one statement.

    A sample item needs a verdict (accept / reject); an answer item needs ratings. Idempotent by
    (item, reviewer): a verdict already stored is left as it is. Returns how many were new.
    """
    for v in verdicts:
        if v.get("verdict") is not None and v["verdict"] not in VERDICTS:
            raise UsageError(f"item {v.get('item_id')}: verdict must be accept or reject, not {v.get('verdict')!r}")
        if not v.get("reviewer"):
            raise UsageError(f"item {v.get('item_id')}: a verdict needs its reviewer")
    if not verdicts:
        return 0
    tbl = pa.table({
        "item_id": pa.array([v["item_id"] for v in verdicts], pa.string()),
        "reviewer": pa.array([str(v["reviewer"]) for v in verdicts], pa.string()),
        "verdict": pa.array([v.get("verdict") for v in verdicts], pa.string()),
        "corrected_output": pa.array([v.get("corrected_output") or None for v in verdicts], pa.string()),
        "categories": pa.array([list(v.get("categories") or []) for v in verdicts], pa.list_(pa.string())),
        "ratings": pa.array([json.dumps(v["ratings"], ensure_ascii=False) if v.get("ratings") else None
                             for v in verdicts], pa.string()),
        "submitted_at": pa.array([_utc(v.get("submitted_at")) for v in verdicts], pa.timestamp("us")),
        "backend_record_id": pa.array([None if v.get("backend_record_id") is None else str(v["backend_record_id"])
                                       for v in verdicts], pa.string()),
    })
    with store.writer() as con:
        con.register("_incoming_verdicts", tbl)
        try:
            problems = con.execute(
                """SELECT v.item_id, r.item_kind FROM _incoming_verdicts v
                   LEFT JOIN reviews r ON r.review_id = v.item_id
                   WHERE r.review_id IS NULL OR (r.item_kind = 'sample' AND v.verdict IS NULL)
                      OR (r.item_kind = 'answer' AND v.ratings IS NULL) LIMIT 1""").fetchall()
            if problems:
                item, kind = problems[0]
                if kind is None:
                    raise UsageError(f"unknown review item {item!r}: draw the sample (or add the answers) first")
                raise UsageError(f"item {item!r}: a {kind} item needs " + ("a verdict" if kind == "sample" else "ratings"))
            return int(con.execute(
                """INSERT INTO reviews
                   SELECT v.item_id || ':' || v.reviewer, r.item_kind, v.item_id, r.snapshot_id, r.sample_id, r.version,
                          r.stratum, v.reviewer, v.verdict, v.corrected_output, v.categories, v.ratings, 'submitted',
                          v.submitted_at, ?, v.backend_record_id, NULL
                   FROM (SELECT * FROM _incoming_verdicts
                         QUALIFY row_number() OVER (PARTITION BY item_id, reviewer) = 1) v
                   JOIN reviews r ON r.review_id = v.item_id
                   WHERE NOT EXISTS (SELECT 1 FROM reviews x WHERE x.review_id = v.item_id || ':' || v.reviewer)""",
                [backend]).fetchall()[0][0])
        finally:
            con.unregister("_incoming_verdicts")


def majority(store: Store, snapshot_id: int) -> dict[str, dict]:
    """item_id -> {verdict, accept, reject, stratum, corrected_output, categories}; ties count as reject."""
    with store.reader() as con:
        rows = con.execute("""SELECT item_id, stratum, verdict, corrected_output, categories FROM reviews
                              WHERE snapshot_id = ? AND status = 'submitted' AND item_kind = 'sample'
                              ORDER BY review_id""", [snapshot_id]).fetchall()
    out: dict[str, dict] = {}
    for item, stratum, verdict, corrected, cats in rows:
        d = out.setdefault(item, {"accept": 0, "reject": 0, "stratum": stratum, "corrected_output": None, "categories": Counter()})
        d[verdict] += 1
        if corrected:
            d["corrected_output"] = corrected
        d["categories"].update(cats or [])
    for d in out.values():
        d["verdict"] = "accept" if d["accept"] > d["reject"] else "reject"
        d["tie"] = d["accept"] == d["reject"]
    return out


def agreement(store: Store, snapshot_id: int) -> dict:
    """Percent agreement, Cohen's kappa (first two reviewers of each item), Fleiss' kappa, disagreements."""
    try:
        from sklearn.metrics import cohen_kappa_score
        from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa
    except ImportError as e:
        from curation.errors import MissingExtraError

        raise MissingExtraError("review", "agreement between reviewers") from e

    with store.reader() as con:
        rows = con.execute("""SELECT item_id, reviewer, verdict FROM reviews WHERE snapshot_id = ? AND status = 'submitted'
                              AND item_kind = 'sample' ORDER BY item_id, review_id""", [snapshot_id]).fetchall()
    per: dict[str, list[str]] = defaultdict(list)
    for item, _, verdict in rows:
        per[item].append(verdict)
    multi = {k: v for k, v in per.items() if len(v) >= 2}
    if not multi:
        return {"items_with_overlap": 0, "percent_agreement": None, "cohen_kappa": None, "fleiss_kappa": None,
                "disagreements": []}
    agree = sum(len(set(v)) == 1 for v in multi.values()) / len(multi)
    a = [v[0] for v in multi.values()]
    b = [v[1] for v in multi.values()]
    cohen = float(cohen_kappa_score(a, b)) if len(set(a) | set(b)) > 1 else 1.0
    m = min(len(v) for v in multi.values())
    table, _ = aggregate_raters(np.array([[1 if x == "accept" else 0 for x in v[:m]] for v in multi.values()]))
    fleiss = float(fleiss_kappa(table)) if table.shape[1] > 1 else 1.0
    return {"items_with_overlap": len(multi), "percent_agreement": agree, "cohen_kappa": cohen, "fleiss_kappa": fleiss,
            "disagreements": sorted(k for k, v in multi.items() if len(set(v)) > 1)}
