"""The step interface: a row step maps record batches; a global step is split into stages.

A step answers with a :class:`StepOutput`: decisions (drop / flag, with a readable reason), signals
(numbers or text measured per sample), new text versions for samples whose text it changed, and
counters. The executor writes them; the step never sees the store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, ValidationError

TEXT_FIELDS = ("instruction", "input", "output", "system", "reasoning")
# the text columns of a page as a step reads it (the run's current version of each sample's text)
PAGE_TEXT_COLUMNS = "instruction, input, output, system, messages, reasoning"
MESSAGE_TYPE = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string()), ("reasoning", pa.string())]))

DECISION_SCHEMA = pa.schema([
    ("sample_id", pa.string()), ("verdict", pa.string()), ("reason", pa.string()),
    ("ref_sample_id", pa.string()), ("score", pa.float64()),
])
SIGNAL_SCHEMA = pa.schema([("sample_id", pa.string()), ("name", pa.string()), ("value", pa.float64()), ("text", pa.string())])
TEXT_SCHEMA = pa.schema(
    [("sample_id", pa.string())] + [(f, pa.string()) for f in ("instruction", "input", "output", "system")]
    + [("messages", MESSAGE_TYPE), ("reasoning", pa.string()), ("content_hash", pa.string())]
)


class NoParams(BaseModel):
    """A step without parameters."""

    model_config = ConfigDict(extra="forbid")


class ReferenceParams(BaseModel):
    """The reference set of a dedup step (the same parameter, with the same meaning, in every dedup step).

    Samples of ``reference_batches`` (an approved snapshot's batches, for an incremental round; `curate run
    --reference-snapshot` fills it in) are never dropped by the step and are kept in preference to any
    copy of them, whatever its score; a new sample that duplicates one is dropped, naming the reference
    sample.
    """

    model_config = ConfigDict(extra="forbid")

    reference_batches: list[int] = Field(
        default_factory=list,
        description="Batches whose samples are a reference: never dropped, kept in preference; new copies of them are dropped.",
    )


def reference_mask(batch_ids: pa.Array | pa.ChunkedArray, reference_batches: list[int]) -> pa.BooleanArray:
    """True where a sample (by its ``batch_id``) belongs to the reference set."""
    if not reference_batches:
        return pa.array(np.zeros(len(batch_ids), dtype=bool))
    if isinstance(batch_ids, pa.ChunkedArray):
        batch_ids = batch_ids.combine_chunks()
    return pc.fill_null(pc.is_in(batch_ids, pa.array(reference_batches, batch_ids.type)), False)


@dataclass
class StepOutput:
    """What a step produced for some samples. Any part may be empty."""

    decisions: pa.Table | None = None
    signals: pa.Table | None = None
    texts: pa.Table | None = None
    counters: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        for name, schema in (("decisions", DECISION_SCHEMA), ("signals", SIGNAL_SCHEMA), ("texts", TEXT_SCHEMA)):
            t = getattr(self, name)
            if t is not None and t.schema != schema:
                raise ValueError(f"StepOutput.{name} has schema {t.schema}, expected {schema}")


class Step(ABC):
    """Base of all steps. ``type_name`` registers it; ``Params`` validates its parameters."""

    type_name: ClassVar[str]
    kind: ClassVar[str]
    Params: ClassVar[type[BaseModel]] = NoParams
    reads_signals: ClassVar[tuple[str, ...]] = ()
    """Signals of earlier steps in the run that the executor adds as columns of the input batches."""

    def __init__(self, name: str | None = None, params: dict[str, Any] | None = None) -> None:
        self.name = name or self.type_name
        try:
            self.params = self.Params(**(params or {}))
        except ValidationError as e:
            raise ValueError(f"step {self.name!r} ({self.type_name}): bad parameters: {e}") from e

    def identity(self) -> dict[str, Any]:
        """What the step's decisions depend on besides its parameters (e.g. the content of files it reads).

        Empty for most steps. The executor stores it with the run's config (``inputs`` of the step) and it
        is part of the run's identity: when it changes, the same config is a new run, not "nothing to do".
        """
        return {}

    def describe(self) -> dict[str, Any]:
        """The resolved config of this step (with ``inputs``, its identity, when it has one)."""
        d = {"type": self.type_name, "name": self.name, "params": self.params.model_dump()}
        ident = self.identity()
        if ident:
            d["inputs"] = ident
        return d


class RowStep(Step):
    """A step that looks at one record batch at a time (vectorised inside)."""

    kind = "row"

    @abstractmethod
    def process(self, batch: pa.Table) -> StepOutput:
        """Process one batch of samples (columns: sample_id, batch_id, row_number, shape, text fields, messages)."""


class GlobalStep(Step):
    """A step that needs the whole input, split into stages that can be run and tested alone.

    ``signatures`` runs per record batch and returns a small table; ``decide`` sees all signatures.
    """

    kind = "global"
    # Set by the executor while it runs the step: ``texts_for(ids, rows, columns)`` streams the current text of
    # the given samples (a ``sample_id`` array) as tables of at most about ``rows`` rows (columns as in a record
    # batch, or ``sample_id`` and the text ``columns`` named, any order; one query), so that ``decide`` can look
    # at the text of the few samples it needs instead of ``signatures`` preparing it for every sample. None
    # outside an executor.
    texts_for: Callable[[pa.Array, int, tuple[str, ...] | None], Iterator[pa.Table]] | None = None

    @abstractmethod
    def signatures(self, batch: pa.Table) -> pa.Table:
        """Stage 1, per batch: what the decision needs of each sample, one row per sample with its ``sample_id``,
        each row made from its sample alone (in a chain of steps, a step's signatures are made from pages that
        still hold what an earlier global step will drop, and those rows are taken out before ``decide``)."""

    @abstractmethod
    def decide(self, signatures: pa.Table) -> StepOutput:
        """Stage 2, over all signatures: decisions and signals."""
