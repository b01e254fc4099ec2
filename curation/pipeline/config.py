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
