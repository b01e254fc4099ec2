"""Pipeline configuration: the steps of a run and their parameters, validated, stored with every run."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer, model_validator


class StepConfig(BaseModel):
    """One step: its registered ``type``, a ``name`` unique in the pipeline (default: the type), parameters."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="Registered step type, e.g. clean or exact_dedup.")
    name: str | None = Field(default=None, description="Name in decisions and the funnel; defaults to the type.")
    params: dict[str, Any] = Field(default_factory=dict, description="Parameters, checked by the step type.")
    inputs: dict[str, Any] = Field(
        default_factory=dict,
        description="What the step read besides its parameters, e.g. the content hash of each evaluation file of "
        "decontaminate. Filled in by the step when a run starts (not from the pipeline file); stored with the "
        "run and part of its identity.",
    )

    @model_serializer(mode="wrap")
    def _omit_empty_inputs(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # a step without inputs serialises as before the field existed: the same config keeps its hash
        d = handler(self)
        if isinstance(d, dict) and not d.get("inputs"):
            d.pop("inputs", None)
        return d

    @model_validator(mode="after")
    def _default_name(self) -> "StepConfig":
        if self.name is None:
            self.name = self.type
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"step name {self.name!r} must be letters, digits, '-' or '_'")
        return self


class PipelineConfig(BaseModel):
    """A pipeline: steps in order, and how many samples a row step reads per batch."""

    model_config = ConfigDict(extra="forbid")

    steps: list[StepConfig] = Field(description="Steps, run in order.")
    batch_rows: int = Field(default=50_000, ge=1, le=5_000_000, description="Samples per record batch for row steps.")

    @model_validator(mode="after")
    def _check(self) -> "PipelineConfig":
        if not self.steps:
            raise ValueError("a pipeline needs at least one step")
        names = [s.name for s in self.steps]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"step names must be unique; repeated: {', '.join(dup)} (give each a name)")
        return self
