"""The 98% gate's statistics: bounds against known values, verdicts, plans, and the loop's error over all looks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import beta

from curation.review.stats import (
    certify,
    certify_sequential,
    cp_lower,
    hg_lower,
    plan,
    plan_sequential,
    spending,
)


def test_clopper_pearson_matches_the_beta_quantile() -> None:
    assert cp_lower(697, 700, 0.05) == pytest.approx(beta.ppf(0.05, 697, 4))
    assert cp_lower(0, 10, 0.05) == 0.0
    # all correct: the classic (alpha)^(1/n) bound
    assert cp_lower(150, 150, 0.05) == pytest.approx(0.05 ** (1 / 150))


def test_verdicts() -> None:
    assert certify(700, 697).verdict == "certified"
    bad = certify(700, 660)  # 94%: even the upper bound is under 98%
    assert bad.verdict == "not_certified" and bad.upper < 0.98 and bad.more_reviews_needed is None
    mid = certify(200, 198)  # 99% seen, not enough reviews yet
    assert mid.verdict == "undecided" and mid.more_reviews_needed > 0
    # reviewing that many more at the same rate would certify
    extra = mid.more_reviews_needed
    assert certify(200 + extra, round(0.99 * (200 + extra))).verdict == "certified"
    with pytest.raises(ValueError):
        certify(10, 11)


def test_finite_population_bound_is_tighter_when_the_sample_is_large() -> None:
    # 300 of 1,000 reviewed, 2 wrong: the hypergeometric bound knows 700 are left
    with_pop = certify(300, 298, population=1000)
    without = certify(300, 298)
    assert with_pop.method == "hypergeometric" and without.method == "clopper-pearson"
    assert with_pop.lower > without.lower
    # everything reviewed: the bound is the truth
    assert hg_lower(995, 1000, 1000, 0.05) == pytest.approx(0.995)


def test_plan_gives_the_stated_power() -> None:
    n = plan(target=0.98, confidence=0.95, power=0.95, expected=0.995)
    assert 400 < n < 800
    rng = np.random.default_rng(1)
    wins = sum(certify(n, int(rng.binomial(n, 0.995))).verdict == "certified" for _ in range(2000))
    assert wins / 2000 >= 0.93  # 0.95 up to simulation noise


def test_spending_adds_up_to_alpha() -> None:
    s = spending(0.05, 5)
    assert sum(s) == pytest.approx(0.05) and s == sorted(s)


def _loop(p: float, trials: int, rounds: int, rng) -> float:  # noqa: ANN001
    n = plan_sequential(rounds=rounds)
    per = n // rounds
    certified = 0
    for _ in range(trials):
        correct = 0
        for look in range(1, rounds + 1):
            correct += rng.binomial(per, p)
            if certify_sequential(per * look, correct, look, rounds).verdict == "certified":
                certified += 1
                break
    return certified / trials


def test_seeded_simulation_of_the_review_loop() -> None:
    rng = np.random.default_rng(20261128)
    # true accuracy 99.5% certifies in >= 95% of trials within the planned reviews ...
    assert _loop(0.995, 2000, 4, rng) >= 0.95
    # ... and 96% certifies in <= 5%, over all looks of the loop (in fact never)
    assert _loop(0.96, 2000, 4, rng) <= 0.05
    # at exactly the target, the loop's error stays under alpha
    assert _loop(0.98, 2000, 4, rng) <= 0.05
