"""The review loop's store side: draw a stratified sample, record verdicts, certify, apply the reviews.

* :func:`draw_sample` — a reproducible stratified random sample of a snapshot's new samples, by source
  and language (proportional allocation, at least one per stratum), plus every sample a step flagged as
  a mandatory stratum reported apart. Items are written to ``reviews`` as pending, one row per item,
  idempotent by item id: drawing again with the same seed adds nothing.
* :func:`record_verdicts` — one row per reviewer per item (idempotent by review id), from any backend.
* :func:`weighted_certification` — the estimate weights each stratum by its share of the population;
  the bound is the exact bound at Kish's effective sample size (equal weights: the plain bound).
* :func:`agreement` — majority verdicts (a tie counts as reject until resolved), percent agreement,
  Cohen's kappa (two reviewers) and Fleiss' kappa (any number), and the items they disagree on.
* :func:`apply_reviews` — a child snapshot: rejected samples left out, corrected ones pinned to the new
  text version that the correction writes (the original stays in ``sample_texts`` history).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa

from curation.errors import UsageError
from curation.pipeline.text import content_hash_sql
from curation.review.items import VERDICTS
from curation.review.snapshots import _finish, _row, get_snapshot
from curation.store.store import Store, utcnow

FLAGGED = "flagged"


def item_id(snapshot_id: int, sample_id: str, version: int) -> str:
    """The stable id of a sample review item."""
    return f"{snapshot_id}:{sample_id}:{version}"


@dataclass
class Drawn:
    """What :func:`draw_sample` drew."""

    items: list[dict]
    strata: dict[str, dict]  # stratum -> {"population": N_h, "sampled": n_h}


def draw_sample(store: Store, snapshot_id: int, n: int, seed: int = 0, backend: str = "sim") -> Drawn:
    """Draw ``n`` new samples of a snapshot (stratified) plus every flagged one; record them as pending."""
    snap = get_snapshot(store, snapshot_id)
    with store.reader() as con:
        rows = con.execute(
            """SELECT ss.sample_id, ss.version, s.source,
                      coalesce((SELECT any_value(g.text) FROM signals g WHERE g.run_id = ? AND g.sample_id = ss.sample_id
                                AND g.name = 'lang'), 'und') AS lang,
                      EXISTS (SELECT 1 FROM decisions d WHERE d.run_id = ? AND d.sample_id = ss.sample_id
                              AND d.verdict = 'flag') AS flagged,
                      hash(ss.sample_id || ':' || ?) AS r
               FROM snapshot_samples ss JOIN samples s USING (sample_id)
               WHERE ss.snapshot_id = ? AND ss.is_new ORDER BY r""",
            [snap.run_id, snap.run_id, str(seed), snapshot_id]).fetchall()
    if not rows:
        raise UsageError(f"snapshot {snapshot_id} has no samples that need review")
    by_stratum: dict[str, list[tuple]] = defaultdict(list)
    for sid, version, source, lang, flagged, _ in rows:
        stratum = FLAGGED if flagged else f"{source.rsplit('/', 1)[-1]}|{lang}"
        by_stratum[stratum].append((sid, version))
    pool = {k: v for k, v in by_stratum.items() if k != FLAGGED}
    total = sum(len(v) for v in pool.values())
    alloc: dict[str, int] = {}
    if total:
        want = min(n, total)
        raw = {k: want * len(v) / total for k, v in pool.items()}
        alloc = {k: min(len(pool[k]), max(1, int(np.floor(x)))) for k, x in raw.items()}
        # hand out the remainder by largest fractional part
        for k in sorted(raw, key=lambda k: raw[k] - np.floor(raw[k]), reverse=True):
            if sum(alloc.values()) >= want:
                break
            if alloc[k] < len(pool[k]):
                alloc[k] += 1
    items = []
    strata = {}
    for k, members in sorted(by_stratum.items()):
        take = members if k == FLAGGED else members[:alloc.get(k, 0)]
        strata[k] = {"population": len(members), "sampled": len(take)}
        for sid, version in take:
            items.append({"item_id": item_id(snapshot_id, sid, version), "sample_id": sid, "version": version, "stratum": k})
    with store.writer() as con:
        _insert_items(con, [{**it, "snapshot_id": snapshot_id} for it in items], "sample", backend)
        if snap.state == "draft":
            con.execute("UPDATE snapshots SET state = 'in_review', state_changed_at = ? WHERE snapshot_id = ?",
                        [utcnow(), snapshot_id])
    return Drawn(items, strata)


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


def weighted_certification(store: Store, snapshot_id: int, target: float = 0.98, confidence: float = 0.95) -> dict:
    """Certification over the sampled strata (flagged samples reported apart, not in the estimate)."""
    from curation.review.stats import certify, spending

    votes = majority(store, snapshot_id)
    snap = get_snapshot(store, snapshot_id)
    flagged = [d for d in votes.values() if d["stratum"] == FLAGGED]
    votes = {k: d for k, d in votes.items() if d["stratum"] != FLAGGED}
    if not votes:
        return {"verdict": "undecided", "reviewed": 0, "target": target, "confidence": confidence, "lower": 0.0,
                "upper": 1.0, "estimate": None, "more_reviews_needed": None, "flagged_reviewed": len(flagged)}
    sizes = draw_strata(store, snapshot_id)
    by: dict[str, list[int]] = defaultdict(list)
    for d in votes.values():
        by[d["stratum"]].append(1 if d["verdict"] == "accept" else 0)
    pop_total = sum(sizes.get(h, len(v)) for h, v in by.items())
    weights, values = [], []
    for h, v in by.items():
        w = sizes.get(h, len(v)) / pop_total / len(v)
        weights += [w] * len(v)
        values += v
    w = np.asarray(weights)
    x = np.asarray(values)
    est = float((w * x).sum() / w.sum())
    n_eff = float(w.sum() ** 2 / (w**2).sum())
    n_int = max(1, int(np.floor(n_eff)))
    k = int(round(est * n_int))
    plan = snap.review_plan or {}
    rounds, per_round = int(plan.get("rounds", 1)), int(plan.get("per_round", 0))
    look = min(rounds, len(x) // per_round) if rounds > 1 and per_round else 1
    population = snap.n_new - len(flagged) if snap.n_new > len(flagged) else None
    if look == 0:  # a loop of several rounds looks first when its first round is complete
        return {"verdict": "undecided", "reviewed": len(x), "target": target, "confidence": confidence, "lower": 0.0,
                "upper": 1.0, "estimate": est, "look": 0, "rounds": rounds,
                "more_reviews_needed": per_round - len(x), "flagged_reviewed": len(flagged)}
    alpha = spending(1 - confidence, rounds)[look - 1] if rounds > 1 else None
    cert = certify(n_int, k, population, target, confidence, alpha=alpha).as_dict()
    cert.update(look=look, rounds=rounds, alpha=alpha if alpha is not None else 1 - confidence)
    cert.update(estimate=est, reviewed=len(x), effective_reviews=n_eff, flagged_reviewed=len(flagged),
                flagged_accuracy=(sum(d["verdict"] == "accept" for d in flagged) / len(flagged)) if flagged else None)
    return cert


def draw_strata(store: Store, snapshot_id: int) -> dict[str, int]:
    """Population of each stratum of a snapshot's new samples (the sizes the draw allocated from)."""
    snap = get_snapshot(store, snapshot_id)
    with store.reader() as con:
        rows = con.execute(
            """SELECT CASE WHEN EXISTS (SELECT 1 FROM decisions d WHERE d.run_id = ? AND d.sample_id = ss.sample_id
                                        AND d.verdict = 'flag') THEN ?
                          ELSE split_part(s.source, '/', -1) || '|' ||
                               coalesce((SELECT any_value(g.text) FROM signals g WHERE g.run_id = ?
                                         AND g.sample_id = ss.sample_id AND g.name = 'lang'), 'und') END AS stratum,
                      count(*)
               FROM snapshot_samples ss JOIN samples s USING (sample_id)
               WHERE ss.snapshot_id = ? AND ss.is_new GROUP BY stratum""",
            [snap.run_id, FLAGGED, snap.run_id, snapshot_id]).fetchall()
    return {k: int(v) for k, v in rows}


def agreement(store: Store, snapshot_id: int) -> dict:
    """Percent agreement, Cohen's kappa (first two reviewers of each item), Fleiss' kappa, disagreements."""
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

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


def apply_reviews(store: Store, snapshot_id: int) -> int:
    """A child snapshot of ``snapshot_id`` with its reviews applied; returns the child's id."""
    votes = majority(store, snapshot_id)
    rejected = {k.split(":")[1] for k, d in votes.items() if d["verdict"] == "reject" and not d["corrected_output"]}
    corrected = {k.split(":")[1]: d["corrected_output"] for k, d in votes.items() if d["corrected_output"]}
    with store.writer() as con:
        parent = _row(con, snapshot_id)
        child = int(con.execute(
            """INSERT INTO snapshots (parent_id, run_id, state, content_hash, n_samples, n_new, config, note, created_at)
               SELECT snapshot_id, run_id, 'draft', '', 0, 0, config, ?, ? FROM snapshots WHERE snapshot_id = ?
               RETURNING snapshot_id""",
            [f"reviews of snapshot {snapshot_id} applied: {len(rejected)} rejected, {len(corrected)} corrected",
             utcnow(), snapshot_id]).fetchall()[0][0])
        for sid, text in corrected.items():
            # the correction is a new text version of the answer; everything else stays as pinned
            con.execute(
                f"""INSERT INTO sample_texts
                    SELECT sample_id, version, run_id, 'review', instruction, input, output, system, messages, reasoning,
                           {content_hash_sql()}
                    FROM (SELECT s.sample_id, s.shape,
                                 coalesce((SELECT max(version) FROM sample_texts WHERE sample_id = s.sample_id), 0) + 1 AS version,
                                 ? AS run_id,
                                 CASE WHEN t.sample_id IS NULL THEN s.instruction ELSE t.instruction END AS instruction,
                                 CASE WHEN t.sample_id IS NULL THEN s.input ELSE t.input END AS input,
                                 ? AS output,
                                 CASE WHEN t.sample_id IS NULL THEN s.system ELSE t.system END AS system,
                                 CASE WHEN t.sample_id IS NULL THEN s.messages ELSE t.messages END AS messages,
                                 CASE WHEN t.sample_id IS NULL THEN s.reasoning ELSE t.reasoning END AS reasoning
                          FROM samples s JOIN snapshot_samples ss ON ss.sample_id = s.sample_id AND ss.snapshot_id = ?
                          LEFT JOIN sample_texts t ON t.sample_id = s.sample_id AND t.version = ss.version
                          WHERE s.sample_id = ?)""",
                [parent.run_id, text, snapshot_id, sid])
        con.execute(
            """INSERT INTO snapshot_samples
               SELECT ?, ss.sample_id,
                      CASE WHEN ss.sample_id IN (SELECT unnest(?::VARCHAR[]))
                           THEN (SELECT max(version) FROM sample_texts t WHERE t.sample_id = ss.sample_id) ELSE ss.version END,
                      CASE WHEN ss.sample_id IN (SELECT unnest(?::VARCHAR[]))
                           THEN (SELECT t.content_hash FROM sample_texts t WHERE t.sample_id = ss.sample_id
                                 ORDER BY t.version DESC LIMIT 1) ELSE ss.content_hash END,
                      false
               FROM snapshot_samples ss
               WHERE ss.snapshot_id = ? AND ss.sample_id NOT IN (SELECT unnest(?::VARCHAR[]))""",
            [child, list(corrected), list(corrected), snapshot_id, sorted(rejected)])
        _finish(con, child)
        con.execute("UPDATE snapshots SET certification = ? WHERE snapshot_id = ?",
                    [json.dumps({"from_reviews_of": snapshot_id}), child])
    return child


def start_review(store: Store, snapshot_id: int, reviews: int | None = None, rounds: int = 1, target: float = 0.98,
                 confidence: float = 0.95, power: float = 0.95, expected: float = 0.995, overlap: int = 1,
                 seed: int = 0, backend: str = "sim") -> dict:
    """Plan a snapshot's review (how many, in how many rounds) and draw the sample; returns the plan.

    Idempotent: a snapshot that has a plan keeps it (and its drawn items); the arguments are then ignored.
    """
    from curation.review.stats import plan, plan_sequential

    snap = get_snapshot(store, snapshot_id)
    if snap.review_plan:
        return snap.review_plan
    if rounds < 1 or overlap < 1:
        raise UsageError("rounds and overlap must be at least 1")
    n = reviews or (plan(target, confidence, power, expected) if rounds == 1
                    else plan_sequential(target, confidence, power, expected, rounds))
    drawn = draw_sample(store, snapshot_id, n, seed, backend)
    sampled = sum(v["sampled"] for k, v in drawn.strata.items() if k != FLAGGED)
    review_plan = {"reviews": n, "sampled": sampled, "rounds": rounds, "per_round": -(-sampled // rounds),
                   "target": target, "confidence": confidence, "power": power, "expected": expected,
                   "overlap": overlap, "seed": seed, "items": len(drawn.items), "strata": drawn.strata}
    with store.writer() as con:
        con.execute("UPDATE snapshots SET review_plan = ? WHERE snapshot_id = ?", [json.dumps(review_plan), snapshot_id])
    return review_plan


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
            """SELECT r.item_id, split_part(s.source, '/', -1),
                      coalesce((SELECT any_value(g.text) FROM signals g WHERE g.run_id = $run AND g.sample_id = r.sample_id
                                AND g.name = 'lang'), 'und'),
                      (SELECT list(DISTINCT d.step) FROM decisions d WHERE d.run_id = $run AND d.sample_id = r.sample_id
                       AND d.verdict = 'flag')
               FROM reviews r JOIN samples s USING (sample_id)
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


def push_review(store: Store, snapshot_id: int, backend, progress=None, **plan_args) -> dict:  # noqa: ANN001
    """Plan and draw (first time only), then push the snapshot's pending items to ``backend``.

    The backend is checked first, so a server that is down or a bad token changes nothing in the store.
    Repeating it pushes nothing twice.
    """
    from curation.review.backends import snapshot_key
    from curation.review.items import sample_items

    backend.check()
    plan = start_review(store, snapshot_id, backend=backend.name, **plan_args)
    items = sample_items(store, snapshot_id)
    res = backend.push(snapshot_key(snapshot_id), "sample", items, overlap=int(plan.get("overlap", 1)), progress=progress)
    return {"snapshot": snapshot_id, "items": len(items), "created": res.created, "already_there": res.existing,
            "project": res.project, "url": res.url, "plan": plan}


def pull_review(store: Store, snapshot_id: int, backend) -> dict:  # noqa: ANN001
    """Pull the verdicts of a snapshot's review from ``backend``, store the new ones, and certify."""
    from curation.review.backends import snapshot_key
    from curation.review.snapshots import snapshot_certification

    get_snapshot(store, snapshot_id)
    verdicts = backend.pull(snapshot_key(snapshot_id), "sample")
    new = record_verdicts(store, verdicts, backend.name)
    return {"snapshot": snapshot_id, "pulled": len(verdicts), "new": new,
            "certification": snapshot_certification(store, snapshot_id), "agreement": agreement(store, snapshot_id)}
