"""Certification of a snapshot from its stored reviews: is it at least ``target`` accurate?

Every stratum counts. A sampled stratum (source file x language) enters through the weighted estimate
of the sampled part: each stratum weighted by its share of that part, the exact bound at Kish's
effective sample size, and for a loop planned over several rounds the alpha spent at the last completed
look. A stratum reviewed in full (every sample a filter flagged) enters with its exact counts: its
errors are known, not estimated, so they lower the bound one for one; an item not yet judged counts as
wrong for the lower bound and right for the upper. The bound on the whole is then

    lower = (N_sampled * lower_sampled + correct_in_full_strata) / N

A snapshot made by applying reviews inherits the reviewed snapshot's certification: the samples left
out were wrong, the corrected ones are now right, so with N' = N - removed,
``lower' = (lower * N + corrected) / N'`` at the same confidence (and never below the parent's).

:func:`certify_strata` is the arithmetic on counts alone (what the seeded simulation runs);
:func:`snapshot_certification` reads the counts from the store and calls it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from curation.review.stats import bounds, certify, spending
from curation.review.verdicts import majority
from curation.snapshots.core import Snapshot, get_snapshot
from curation.store.store import Store

FLAGGED = "flagged"


@dataclass
class StratumCounts:
    """Counts of one stratum: its population, the items judged, and of those the accepted (majority)."""

    name: str
    population: int
    reviewed: int
    accepted: int
    full: bool = False
    """Reviewed in full (a mandatory stratum): exact counts, no estimate."""

    @property
    def rejected(self) -> int:
        return self.reviewed - self.accepted


def certify_strata(strata: list[StratumCounts], target: float = 0.98, confidence: float = 0.95, rounds: int = 1,
                   per_round: int = 0, sampled: int | None = None) -> dict:
    """Certification from per-stratum counts (see the module docstring for the method).

    With a plan (``per_round``: sampled reviews per round; ``sampled``: all the sampled reviews drawn), the
    loop looks only when a round is complete (a one-round plan: when its whole sample is judged), at the
    alpha spent at that look; the last look comes once every drawn review is in. Without a plan, every call
    is one look at ``1 - confidence``.
    """
    drawn = sampled
    sampled = [s for s in strata if not s.full and s.population > 0]
    full = [s for s in strata if s.full and s.population > 0]
    n_total = sum(s.population for s in sampled) + sum(s.population for s in full)
    counts = {
        "population": n_total,
        "reviewed": sum(s.reviewed for s in strata),
        "accepted": sum(s.accepted for s in strata),
        "rejected": sum(s.rejected for s in strata),
        "sampled_reviewed": sum(s.reviewed for s in sampled),
        "full_population": sum(s.population for s in full),
        "full_reviewed": sum(s.reviewed for s in full),
        "full_accepted": sum(s.accepted for s in full),
    }
    out: dict = {"target": target, "confidence": confidence, "counts": counts,
                 "strata": [asdict(s) | {"rejected": s.rejected} for s in strata]}
    if n_total == 0:
        return out | {"verdict": "undecided", "estimate": None, "lower": 0.0, "upper": 1.0, "more_reviews_needed": None,
                      "look": 0, "rounds": rounds, "alpha": 1 - confidence}
    # the sampled part: weighted estimate over the strata with reviews, Kish's effective size
    judged = [s for s in sampled if s.reviewed > 0]
    n_cov = sum(s.population for s in judged)            # population of the sampled strata with reviews
    n_blank = sum(s.population for s in sampled) - n_cov  # sampled strata nobody has judged yet
    n_sampled_reviewed = counts["sampled_reviewed"]
    look = 1
    if per_round:
        look = rounds if drawn and n_sampled_reviewed >= drawn else min(rounds, n_sampled_reviewed // per_round)
    alpha = spending(1 - confidence, rounds)[look - 1] if rounds > 1 and look >= 1 else 1 - confidence
    if judged:
        est_s = sum(s.population / n_cov * s.accepted / s.reviewed for s in judged)
        n_eff = 1.0 / sum((s.population / n_cov) ** 2 / s.reviewed for s in judged)
        n_int = max(1, round(n_eff))  # n_eff never exceeds the reviews; truncating 522.997 would cost an error
        k = int(round(est_s * n_int))
        lo_s, up_s, method = bounds(k, n_int, n_cov, alpha)
    else:
        est_s, n_eff, n_int, k, lo_s, up_s, method = None, 0.0, 0, 0, 0.0, 1.0, "none"
    # the strata reviewed in full: exact counts
    full_correct_lo = sum(s.accepted for s in full)
    full_correct_up = sum(s.accepted + s.population - s.reviewed for s in full)
    full_est = sum(s.population * s.accepted / s.reviewed for s in full if s.reviewed)
    full_unknown = sum(s.population for s in full if not s.reviewed)
    lower = (n_cov * lo_s + full_correct_lo) / n_total
    upper = (n_cov * up_s + full_correct_up + n_blank) / n_total
    estimate = None
    if est_s is not None or full_est:
        base = est_s if est_s is not None else counts["full_accepted"] / counts["full_reviewed"]
        estimate = (n_cov * (est_s or 0.0) + full_est + (n_blank + full_unknown) * base) / n_total
    if per_round and look == 0:  # a planned loop looks first when its first round is complete
        verdict, lower, upper = "undecided", 0.0, 1.0
    else:
        verdict = "certified" if lower >= target else "not_certified" if upper < target else "undecided"
    full_pending = sum(s.population - s.reviewed for s in full)
    if per_round and look == 0:
        more = max(0, per_round - n_sampled_reviewed) + full_pending
    else:
        more = _more_needed(verdict, target, n_total, n_cov, full_correct_lo, n_int, k, alpha, est_s, full_pending,
                            n_blank)
    return out | {
        "verdict": verdict, "estimate": estimate, "lower": lower, "upper": upper, "more_reviews_needed": more,
        "look": look, "rounds": rounds, "alpha": alpha, "method": method,
        "sampled": {"population": n_cov + n_blank, "estimate": est_s, "lower": lo_s, "upper": up_s,
                    "effective_reviews": n_eff},
    }


def _more_needed(verdict: str, target: float, n_total: int, n_cov: int, full_correct: int, n_int: int, k: int,
                 alpha: float, est_s: float | None, full_pending: int, n_blank: int) -> int | None:
    """Further reviews that would certify if the sampled accuracy held: the sampled part's (at the bound the
    whole needs from it) plus the flagged items still to judge. None when it cannot at this rate."""
    if verdict == "certified":
        return 0
    if verdict == "not_certified" or est_s is None or n_cov == 0 or n_blank:
        return None
    need = (target * n_total - full_correct - full_pending) / n_cov  # what the sampled bound must reach
    if need > 1:
        return None
    cert = certify(n_int, k, n_cov, need, 1 - alpha, alpha=alpha)
    if cert.more_reviews_needed is None:
        return None
    return cert.more_reviews_needed + full_pending


def strata_counts(store: Store, snapshot_id: int) -> list[StratumCounts]:
    """Per stratum of a snapshot's new samples: population, items judged, accepted by majority."""
    votes = majority(store, snapshot_id)
    with store.reader() as con:
        sizes = dict(con.execute("SELECT stratum, count(*) FROM snapshot_strata(?) GROUP BY ALL", [snapshot_id]).fetchall())
    judged: dict[str, list[int]] = {}
    for d in votes.values():
        judged.setdefault(d["stratum"], []).append(d["verdict"] == "accept")
    names = sorted(set(sizes) | set(judged))
    return [StratumCounts(h, int(sizes.get(h, len(judged.get(h, [])))), len(judged.get(h, [])), sum(judged.get(h, [])),
                          full=h == FLAGGED) for h in names]


def _own_certification(store: Store, snap: Snapshot, target: float, confidence: float) -> dict:
    plan = snap.review_plan or {}
    cert = certify_strata(strata_counts(store, snap.snapshot_id), target, confidence, int(plan.get("rounds", 1)),
                          int(plan.get("per_round", 0)), plan.get("sampled"))
    return cert | {"snapshot": snap.snapshot_id, "basis": "reviews"}


def lineage_counts(store: Store, snapshot_id: int) -> dict:
    """What applying the reviews of ``snapshot_id`` does: rejected samples removed, corrected, accepted and edited."""
    votes = majority(store, snapshot_id)
    removed = sum(1 for d in votes.values() if d["verdict"] == "reject" and not d["corrected_output"])
    corrected = sum(1 for d in votes.values() if d["verdict"] == "reject" and d["corrected_output"])
    edited = sum(1 for d in votes.values() if d["verdict"] == "accept" and d["corrected_output"])
    return {"certified_through": snapshot_id, "rejected_removed": removed, "corrected": corrected, "edited": edited}


def inherit(parent: dict, lineage: dict) -> dict:
    """The certification of a child made by applying the reviews behind ``parent`` (see the module docstring)."""
    n = parent["counts"]["population"]
    k, m = lineage["rejected_removed"], lineage["corrected"]
    n_child = n - k
    out = {key: parent[key] for key in ("target", "confidence", "look", "rounds", "alpha") if key in parent}
    out.update(basis="lineage", lineage=lineage, parent=parent, counts={"population": n_child})
    if n_child <= 0 or parent.get("estimate") is None:
        return out | {"verdict": "undecided", "estimate": None, "lower": 0.0, "upper": 1.0, "more_reviews_needed": None}
    lower = min(1.0, (parent["lower"] * n + m) / n_child)
    upper = min(1.0, (parent["upper"] * n + m) / n_child)
    estimate = min(1.0, (parent["estimate"] * n + m) / n_child)
    target = parent["target"]
    if parent["verdict"] == "undecided" and parent.get("look") == 0:
        verdict = "undecided"
    else:
        verdict = "certified" if lower >= target else "not_certified" if upper < target else "undecided"
    return out | {"verdict": verdict, "estimate": estimate, "lower": lower, "upper": upper,
                  "more_reviews_needed": 0 if verdict == "certified" else parent.get("more_reviews_needed")}


def snapshot_certification(store: Store, snapshot_id: int, target: float | None = None,
                           confidence: float | None = None) -> dict:
    """Certification of a snapshot, always computed from the stored reviews.

    A snapshot made by ``review apply`` (and not reviewed itself) inherits the reviewed snapshot's
    certification with the lineage. ``target`` / ``confidence`` default to the review plan's, else
    0.98 / 0.95.
    """
    snap = get_snapshot(store, snapshot_id)
    source = snap
    while source.applied_from is not None and not _has_reviews(store, source.snapshot_id):
        source = get_snapshot(store, source.applied_from)
    plan = source.review_plan or {}
    target = target if target is not None else plan.get("target", 0.98)
    confidence = confidence if confidence is not None else plan.get("confidence", 0.95)
    cert = _own_certification(store, source, target, confidence)
    # walk back down: each application of reviews removes and fixes what they found
    chain = []
    s = snap
    while s.snapshot_id != source.snapshot_id:
        chain.append(s)
        s = get_snapshot(store, s.applied_from)
    for child in reversed(chain):
        cert = inherit(cert, lineage_counts(store, child.applied_from)) | {"snapshot": child.snapshot_id}
    return cert


def _has_reviews(store: Store, snapshot_id: int) -> bool:
    with store.reader() as con:
        return bool(con.execute("SELECT count(*) FROM reviews WHERE snapshot_id = ? AND item_kind = 'sample'",
                                [snapshot_id]).fetchall()[0][0])
