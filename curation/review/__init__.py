"""The review gate: acceptance statistics (and, next, snapshots and review backends)."""

from __future__ import annotations

from curation.review.stats import Certification, certify, plan, plan_sequential

__all__ = ["Certification", "certify", "plan", "plan_sequential"]
