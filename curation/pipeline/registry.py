"""Step types by name."""

from __future__ import annotations

from curation.errors import UsageError
from curation.pipeline.base import ReferenceParams, Step
from curation.pipeline.steps.clean import CleanStep
from curation.pipeline.steps.decontaminate import DecontaminateStep
from curation.pipeline.steps.exact_dedup import ExactDedupStep
from curation.pipeline.steps.language import LanguageStep
from curation.pipeline.steps.near_dedup import NearDedupStep
from curation.pipeline.steps.quality import QualityStep
from curation.pipeline.steps.redact import RedactStep
from curation.pipeline.steps.semantic_dedup import SemanticDedupStep
from schemas.pipeline import StepConfig

STEP_TYPES: dict[str, type[Step]] = {cls.type_name: cls for cls in (CleanStep, LanguageStep, QualityStep, RedactStep, ExactDedupStep, NearDedupStep, SemanticDedupStep, DecontaminateStep)}

REFERENCE_STEP_TYPES: frozenset[str] = frozenset(
    name for name, cls in STEP_TYPES.items() if issubclass(cls.Params, ReferenceParams))
"""Step types that take ``reference_batches`` (the dedup steps): what `curate run --reference-snapshot` sets."""


def build_step(cfg: StepConfig) -> Step:
    """Instantiate a configured step; unknown types and bad parameters are usage errors."""
    cls = STEP_TYPES.get(cfg.type)
    if cls is None:
        raise UsageError(f"unknown step type {cfg.type!r}; known: {', '.join(sorted(STEP_TYPES))}")
    try:
        return cls(cfg.name, cfg.params)
    except ValueError as e:
        raise UsageError(str(e)) from e
