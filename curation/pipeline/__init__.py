"""Pipeline: steps over Arrow record batches, run by an executor that records decisions, signals and text versions.

Steps never touch the store: they take Arrow and return Arrow (``StepOutput``), so the same step runs on
the local DuckDB executor and, later, on a Ray Data executor.
"""

from curation.pipeline.base import GlobalStep, RowStep, Step, StepOutput
from curation.pipeline.config import DEFAULT_PIPELINE, load_config
from curation.pipeline.registry import STEP_TYPES, build_step

__all__ = ["DEFAULT_PIPELINE", "GlobalStep", "RowStep", "STEP_TYPES", "Step", "StepOutput", "build_step", "load_config"]
