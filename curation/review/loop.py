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

import numpy as np

from curation.errors import UsageError
from curation.pipeline.text import content_hash_sql
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
        for it in items:
            con.execute("""INSERT INTO reviews (review_id, item_kind, item_id, snapshot_id, sample_id, version, stratum,
                                                status, backend)
                           SELECT ?, 'sample', ?, ?, ?, ?, ?, 'pending', ?
                           WHERE NOT EXISTS (SELECT 1 FROM reviews WHERE review_id = ?)""",
                        [it["item_id"], it["item_id"], snapshot_id, it["sample_id"], it["version"], it["stratum"],
                         backend, it["item_id"]])
        if snap.state == "draft":
            con.execute("UPDATE snapshots SET state = 'in_review', state_changed_at = ? WHERE snapshot_id = ?",
                        [utcnow(), snapshot_id])
    return Drawn(items, strata)


def record_verdicts(store: Store, verdicts: list[dict], backend: str) -> int:
    """Store verdicts ``{item_id, reviewer, verdict, corrected_output?, categories?, backend_record_id?}``.

    Idempotent by (item, reviewer); returns how many were new.
    """
    new = 0
    with store.writer() as con:
        for v in verdicts:
            if v.get("verdict") not in ("accept", "reject"):
                raise UsageError(f"item {v.get('item_id')}: verdict must be accept or reject, not {v.get('verdict')!r}")
            base = con.execute("SELECT snapshot_id, sample_id, version, stratum FROM reviews WHERE review_id = ?",
                               [v["item_id"]]).fetchall()
            if not base:
                raise UsageError(f"unknown review item {v['item_id']!r}: draw the sample first")
            rid = f"{v['item_id']}:{v['reviewer']}"
            if con.execute("SELECT 1 FROM reviews WHERE review_id = ?", [rid]).fetchall():
                continue
            snap, sid, version, stratum = base[0]
            con.execute("""INSERT INTO reviews VALUES (?, 'sample', ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 'submitted', ?, ?, ?)""",
                        [rid, v["item_id"], snap, sid, version, stratum, v["reviewer"], v["verdict"],
                         v.get("corrected_output"), v.get("categories") or [], v.get("submitted_at") or utcnow(),
                         backend, v.get("backend_record_id")])
            new += 1
    return new


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
    from curation.review.stats import certify

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
    cert = certify(n_int, k, snap.n_new - len(flagged) if snap.n_new > len(flagged) else None, target, confidence).as_dict()
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
