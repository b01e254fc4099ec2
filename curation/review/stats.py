"""Acceptance statistics for the review gate: is a snapshot at least ``target`` accurate?

* :func:`certify` — one look at a fixed sample: the estimate, the one-sided exact lower bound
  (Clopper-Pearson; the hypergeometric bound when the sample is a large part of the population), the
  upper bound, a verdict, and how many more reviews would settle it at the current rate.
* :func:`plan` — how many reviews to draw so that a snapshot whose true accuracy is ``expected``
  certifies with probability ``power``.
* :func:`spending` / :func:`certify_sequential` — a review loop that looks at the results after every
  round must keep its error rate over all looks: the error ``alpha = 1 - confidence`` is spent over the
  planned rounds (Lan-DeMets power family, ``alpha * t**rho``; rho = 3 spends little early, like
  O'Brien-Fleming) and each look uses the exact bound at the alpha spent at that look. Because the sum of
  the per-look alphas is alpha, the chance of ever certifying a snapshot below target is at most alpha
  (a union bound: conservative, never anti-conservative).

All distributions come from scipy.stats.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

try:
    from scipy.stats import beta, binom, hypergeom
except ImportError as e:  # the base install has no scipy
    from curation.errors import MissingExtraError

    raise MissingExtraError("review", "certifying a snapshot (exact binomial and hypergeometric bounds)") from e

Verdict = Literal["certified", "not_certified", "undecided"]
HYPERGEOMETRIC_FRACTION = 0.05  # sample / population above which the finite-population bound is used


@dataclass(frozen=True)
class Certification:
    """The outcome of one look."""

    reviewed: int
    correct: int
    population: int
    target: float
    confidence: float
    estimate: float
    lower: float
    upper: float
    method: str
    verdict: Verdict
    more_reviews_needed: int | None
    """Further reviews that would certify if the current accuracy held (None: it cannot at this rate)."""

    def as_dict(self) -> dict:
        return asdict(self)


def cp_lower(correct: int, reviewed: int, alpha: float) -> float:
    """One-sided Clopper-Pearson lower bound at level 1 - alpha."""
    if reviewed == 0 or correct == 0:
        return 0.0
    return float(beta.ppf(alpha, correct, reviewed - correct + 1))


def cp_upper(correct: int, reviewed: int, alpha: float) -> float:
    """One-sided Clopper-Pearson upper bound at level 1 - alpha."""
    if reviewed == 0 or correct == reviewed:
        return 1.0
    return float(beta.ppf(1 - alpha, correct + 1, reviewed - correct))


def hg_lower(correct: int, reviewed: int, population: int, alpha: float) -> float:
    """Exact lower bound on the population's share of correct items (sampling without replacement).

    The smallest K (correct items in the population) for which seeing ``correct`` or more is not too
    unlikely: P(X >= correct | N, K, n) > alpha; K / N.
    """
    lo, hi = correct, population - (reviewed - correct)
    while lo < hi:
        mid = (lo + hi) // 2
        if hypergeom.sf(correct - 1, population, mid, reviewed) > alpha:
            hi = mid
        else:
            lo = mid + 1
    return lo / population


def hg_upper(correct: int, reviewed: int, population: int, alpha: float) -> float:
    """Exact upper bound, the mirror of :func:`hg_lower`."""
    wrong_lower = hg_lower(reviewed - correct, reviewed, population, alpha)
    return 1.0 - wrong_lower


def bounds(correct: int, reviewed: int, population: int | None, alpha: float) -> tuple[float, float, str]:
    """(lower, upper, method) at one-sided level 1 - alpha each."""
    if population and reviewed > HYPERGEOMETRIC_FRACTION * population:
        return hg_lower(correct, reviewed, population, alpha), hg_upper(correct, reviewed, population, alpha), "hypergeometric"
    return cp_lower(correct, reviewed, alpha), cp_upper(correct, reviewed, alpha), "clopper-pearson"


def _more_needed(correct: int, reviewed: int, population: int | None, target: float, alpha: float) -> int | None:
    if reviewed == 0:
        return None
    rate = correct / reviewed
    if rate <= target:
        return None
    limit = (population - reviewed) if population else 1_000_000
    lo, hi = 0, limit
    good = lambda m: bounds(int(round(rate * (reviewed + m))), reviewed + m, population, alpha)[0] >= target  # noqa: E731
    if not good(hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if good(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def certify(reviewed: int, correct: int, population: int | None = None, target: float = 0.98,
            confidence: float = 0.95, alpha: float | None = None) -> Certification:
    """One look: is the accuracy at least ``target`` with ``confidence``?

    ``population``: the number of samples the reviewed ones were drawn from (enables the finite-population
    bound when the sample is more than 5% of it). ``alpha`` overrides ``1 - confidence`` (the sequential
    loop passes the alpha spent at a look).
    """
    if not 0 <= correct <= reviewed:
        raise ValueError(f"correct ({correct}) must be between 0 and reviewed ({reviewed})")
    if population is not None and population < reviewed:
        raise ValueError(f"population ({population}) is smaller than the sample ({reviewed})")
    a = (1 - confidence) if alpha is None else alpha
    lower, upper, method = bounds(correct, reviewed, population, a)
    verdict: Verdict = "certified" if lower >= target else "not_certified" if upper < target else "undecided"
    more = 0 if verdict == "certified" else (None if verdict == "not_certified" else _more_needed(correct, reviewed, population, target, a))
    return Certification(reviewed, correct, population or 0, target, confidence,
                         correct / reviewed if reviewed else 0.0, lower, upper, method, verdict, more)


def plan(target: float = 0.98, confidence: float = 0.95, power: float = 0.95, expected: float = 0.995,
         max_n: int = 100_000) -> int:
    """Reviews needed so that a snapshot with true accuracy ``expected`` certifies with probability ``power``.

    The smallest n for which P(Binomial(n, expected) >= k_n) >= power, k_n being the fewest correct
    answers whose Clopper-Pearson lower bound reaches ``target`` (one look, alpha = 1 - confidence).
    """
    if expected <= target:
        raise ValueError(f"expected accuracy {expected} must be above the target {target}")
    alpha = 1 - confidence
    for n in range(1, max_n + 1):
        k = _critical(n, target, alpha)
        if k is not None and binom.sf(k - 1, n, expected) >= power:
            return n
    raise ValueError(f"more than {max_n} reviews would be needed")


def _critical(n: int, target: float, alpha: float) -> int | None:
    """The fewest correct of n whose lower bound reaches target (None if even n of n does not)."""
    if cp_lower(n, n, alpha) < target:
        return None
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if cp_lower(mid, n, alpha) >= target:
            hi = mid
        else:
            lo = mid + 1
    return lo


def spending(alpha: float, rounds: int, rho: float = 3.0) -> list[float]:
    """Alpha spent at each of ``rounds`` equally spaced looks: alpha * (t_i^rho - t_{i-1}^rho)."""
    t = [(i / rounds) ** rho for i in range(rounds + 1)]
    return [alpha * (t[i + 1] - t[i]) for i in range(rounds)]


def certify_sequential(reviewed: int, correct: int, look: int, rounds: int, population: int | None = None,
                       target: float = 0.98, confidence: float = 0.95, rho: float = 3.0) -> Certification:
    """Look number ``look`` (1-based) of a loop planned with ``rounds`` looks, at the alpha spent there."""
    if not 1 <= look <= rounds:
        raise ValueError(f"look {look} is outside the planned {rounds} rounds")
    a = spending(1 - confidence, rounds, rho)[look - 1]
    return certify(reviewed, correct, population, target, confidence, alpha=a)


def plan_sequential(target: float = 0.98, confidence: float = 0.95, power: float = 0.95, expected: float = 0.995,
                    rounds: int = 4, rho: float = 3.0) -> int:
    """Total reviews for a loop of ``rounds`` equal rounds: the one-look plan at the last look's alpha.

    Certifying at the last look alone at that alpha has the requested power; earlier looks only add
    chances to stop early, so the loop's power is at least that.
    """
    last_alpha = spending(1 - confidence, rounds, rho)[-1]
    n = plan(target, 1 - last_alpha, power, expected)
    return int(math.ceil(n / rounds) * rounds)


def plan_for_strata(sampled_population: int, full_population: int, target: float = 0.98, confidence: float = 0.95,
                    power: float = 0.95, expected: float = 0.995, rounds: int = 1, rho: float = 3.0,
                    max_splits: int = 400) -> int:
    """Sampled reviews for a snapshot whose flagged samples (``full_population``) are all reviewed.

    The flagged stratum's errors count one for one in the certified figure, so the sampled part must reach a
    bound that depends on how the expected errors split between the two. The plan is the smallest n (a
    multiple of ``rounds``) for which a snapshot of true accuracy ``expected`` certifies with probability
    ``power`` at the last look's alpha, for every split of its errors (flagged e, sampled E - e; at most
    ``max_splits`` splits checked, evenly spaced, ends included). Without a flagged stratum it is
    :func:`plan` / :func:`plan_sequential`.
    """
    base = plan(target, confidence, power, expected) if rounds == 1 else plan_sequential(
        target, confidence, power, expected, rounds, rho)
    if not full_population or not sampled_population:
        return base
    alpha = (1 - confidence) if rounds == 1 else spending(1 - confidence, rounds, rho)[-1]
    total = sampled_population + full_population
    errors = int(round((1 - expected) * total))
    top = min(full_population, errors)
    splits = sorted({int(round(i * top / max(1, max_splits - 1))) for i in range(max_splits)} | {0, top})
    worst = splits[0]

    def certifies_often(n: int, e_full: int) -> bool:
        need = (target * total - (full_population - e_full)) / sampled_population
        if need <= 0:
            return True
        k = _critical(n, need, alpha)
        if k is None:
            return False
        return binom.sf(k - 1, n, 1 - (errors - e_full) / sampled_population) >= power

    for n in range(base, sampled_population + 1):
        if not certifies_often(n, worst):
            continue
        bad = next((e for e in splits if not certifies_often(n, e)), None)
        if bad is None:
            return int(math.ceil(n / rounds) * rounds)
        worst = bad
    return sampled_population
