"""Which samples of a snapshot people review: a plan, then a reproducible stratified draw.

* :func:`review_plan` — how many reviews certify a snapshot whose true accuracy is ``expected`` with the
  stated power (one look, or a loop of several rounds).
* :func:`draw_sample` — a reproducible stratified random sample of a snapshot's new samples, by source
  and language (the store's ``snapshot_strata`` macro; proportional allocation, at least one per stratum),
  plus every sample a step flagged as a mandatory stratum reviewed in full. Items are written to
  ``reviews`` as pending, one row per item, idempotent by item id.
* :func:`start_review` — plan and draw once per snapshot; the plan is stored with the snapshot.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from curation.errors import UsageError
from curation.review.certification import FLAGGED
from curation.review.verdicts import _insert_items
from curation.snapshots.core import get_snapshot, mark_in_review, record_review_plan
from curation.store.store import Store


def item_id(snapshot_id: int, sample_id: str, version: int) -> str:
    """The stable id of a sample review item."""
    return f"{snapshot_id}:{sample_id}:{version}"


@dataclass
class Drawn:
    """What :func:`draw_sample` drew."""

    items: list[dict]
    strata: dict[str, dict]  # stratum -> {"population": N_h, "sampled": n_h}


def review_plan(target: float = 0.98, confidence: float = 0.95, power: float = 0.95, expected: float = 0.995,
                rounds: int = 1) -> dict:
    """Reviews needed for the target at the confidence, with the stated power, over ``rounds`` looks."""
    from curation.review.stats import plan, plan_sequential

    if rounds < 1:
        raise UsageError(f"rounds must be at least 1, not {rounds}")
    for name, value in (("target", target), ("confidence", confidence), ("power", power), ("expected", expected)):
        if not 0 < value < 1:
            raise UsageError(f"{name} must be between 0 and 1, not {value}")
    if expected <= target:
        raise UsageError(f"expected accuracy {expected} must be above the target {target}")
    n = plan(target, confidence, power, expected) if rounds == 1 else plan_sequential(target, confidence, power, expected, rounds)
    return {"reviews": n, "rounds": rounds, "per_round": -(-n // rounds), "target": target, "confidence": confidence,
            "power": power, "expected": expected}


def draw_sample(store: Store, snapshot_id: int, n: int, seed: int = 0, backend: str = "sim") -> Drawn:
    """Draw ``n`` new samples of a snapshot (stratified) plus every flagged one; record them as pending."""
    get_snapshot(store, snapshot_id)
    with store.reader() as con:
        rows = con.execute(
            """SELECT sample_id, version, stratum, hash(sample_id || ':' || ?) AS r
               FROM snapshot_strata(?) ORDER BY r, sample_id""", [str(seed), snapshot_id]).fetchall()
    if not rows:
        raise UsageError(f"snapshot {snapshot_id} has no samples that need review")
    by_stratum: dict[str, list[tuple]] = defaultdict(list)
    for sid, version, stratum, _ in rows:
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
        mark_in_review(con, snapshot_id)
    return Drawn(items, strata)


def start_review(store: Store, snapshot_id: int, reviews: int | None = None, rounds: int = 1, target: float = 0.98,
                 confidence: float = 0.95, power: float = 0.95, expected: float = 0.995, overlap: int = 1,
                 seed: int = 0, backend: str = "sim") -> dict:
    """Plan a snapshot's review (how many, in how many rounds) and draw the sample; returns the plan.

    Idempotent: a snapshot that has a plan keeps it (and its drawn items); the arguments are then ignored.
    """
    snap = get_snapshot(store, snapshot_id)
    if snap.review_plan:
        return snap.review_plan
    if overlap < 1:
        raise UsageError(f"overlap must be at least 1, not {overlap}")
    if reviews is not None and reviews < 1:
        raise UsageError(f"reviews must be at least 1, not {reviews}")
    planned = review_plan(target, confidence, power, expected, rounds)
    with store.reader() as con:
        sizes = dict(con.execute("SELECT flagged, count(*) FROM snapshot_strata(?) GROUP BY ALL", [snapshot_id]).fetchall())
    if not reviews:
        from curation.review.stats import plan_for_strata

        # the flagged samples are all reviewed and their errors count exactly: the sampled part is sized for it
        planned["reviews"] = plan_for_strata(sizes.get(False, 0), sizes.get(True, 0), target, confidence, power,
                                             expected, rounds)
        planned["flagged_in_plan"] = sizes.get(True, 0)
    n = reviews or planned["reviews"]
    drawn = draw_sample(store, snapshot_id, n, seed, backend)
    sampled = sum(v["sampled"] for k, v in drawn.strata.items() if k != FLAGGED)
    plan = {**planned, "reviews": n, "sampled": sampled, "per_round": -(-sampled // rounds), "overlap": overlap,
            "seed": seed, "items": len(drawn.items), "strata": drawn.strata}
    record_review_plan(store, snapshot_id, plan)
    return plan
