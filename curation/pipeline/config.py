"""Loading and validating pipeline TOML files."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from curation.errors import InputError, UsageError
from schemas.pipeline import PipelineConfig

DEFAULT_PIPELINE = Path(__file__).with_name("default.toml")


def load_config(path: str | Path | None = None) -> PipelineConfig:
    """Read and validate a pipeline file (the default pipeline when ``path`` is None)."""
    from curation.pipeline.registry import build_step

    p = Path(path) if path else DEFAULT_PIPELINE
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise InputError(f"{p}: no such pipeline file") from e
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{p}: not valid TOML: {e}") from e
    try:
        cfg = PipelineConfig.model_validate(raw)
    except ValidationError as e:
        raise UsageError(f"{p}: invalid pipeline: {e}") from e
    for s in cfg.steps:
        step = build_step(s)  # checks the type and its parameters now, not half way through a run
        s.params = step.params.model_dump()
    return cfg


def with_step_inputs(cfg: PipelineConfig, steps: list) -> PipelineConfig:  # list[Step]
    """``cfg`` with each step's ``inputs`` set to what that step declares (:meth:`Step.identity`).

    A run's identity and stored config are this resolved config, so a run records which evaluation files
    (by content hash) it was checked against, and a changed file makes the same config a new run. What a
    pipeline file wrote in ``inputs`` is replaced.
    """
    if len(steps) != len(cfg.steps):
        raise ValueError("with_step_inputs: one built step per configured step")
    resolved = [s.model_copy(update={"inputs": step.identity()}) for s, step in zip(cfg.steps, steps)]
    return cfg.model_copy(update={"steps": resolved})
