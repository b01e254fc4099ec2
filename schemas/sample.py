"""The Sample: one instruction/response pair or one multi-turn dialogue, with reasoning kept apart."""

from __future__ import annotations

import re
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

# A DeepSeek-R1 style answer starts with its reasoning inside <think>...</think>. Leading ASCII whitespace is
# allowed; the block must be closed, otherwise the answer is kept whole (a later filter flags it).
THINK_PATTERN = re.compile(r"^[\t\n\f\r ]*<think>(.*?)</think>[\t\n\f\r ]*(.*)$", re.DOTALL)
# The same pattern as DuckDB's RE2 sees it (used by the vectorised ingest, kept beside the Python one
# so that tests can hold them to the same behaviour).
THINK_PATTERN_SQL = r"^[\t\n\f\r ]*<think>(.*?)</think>[\t\n\f\r ]*(.*)$"
# The same split as DuckDB macros made of plain string functions, for the ingest's hot path: a regular
# expression runs over the whole answer two or three times, where these only test for '</think>'
# unless a row has one. ``think_end(x)`` is the position of the closing tag in the left-trimmed text
# (NULL when the pattern does not match); the tag cannot start inside the leading '<think>'.
THINK_SPLIT_MACROS_SQL = (
    "CREATE OR REPLACE MACRO think_ws() AS chr(9) || chr(10) || chr(12) || chr(13) || ' '",
    # a text can only open with a think block when its first byte is '<' or whitespace (all below
    # '!'): that byte test settles most texts before contains() scans them
    """CREATE OR REPLACE MACRO think_end(x) AS CASE WHEN (starts_with(x, '<') OR x < '!') AND contains(x, '</think>') THEN
        CASE WHEN starts_with(ltrim(x, think_ws()), '<think>') THEN strpos(ltrim(x, think_ws()), '</think>') END END""",
    # the two parts given think_end(x) as ``te`` (so that a query computes it once per row)
    "CREATE OR REPLACE MACRO think_reasoning_at(x, te) AS substr(ltrim(x, think_ws()), 8, te - 8)",
    "CREATE OR REPLACE MACRO think_answer_at(x, te) AS ltrim(substr(ltrim(x, think_ws()), te + 8), think_ws())",
    "CREATE OR REPLACE MACRO think_reasoning(x) AS think_reasoning_at(x, think_end(x))",
    "CREATE OR REPLACE MACRO think_answer(x) AS think_answer_at(x, think_end(x))",
)


def split_reasoning(text: str | None) -> tuple[str | None, str | None]:
    """Split an R1-style answer into ``(reasoning, answer)``.

    ``"<think>r</think> a"`` gives ``("r", "a")``; text without a closed leading think block gives
    ``(None, text)``. The reasoning is returned as written (not stripped), the answer without the
    whitespace that separated it from the block.
    """
    if text is None:
        return None, None
    m = THINK_PATTERN.match(text)
    if m is None:
        return None, text
    return m.group(1), m.group(2)


class Role(str, Enum):
    """Who speaks a turn. ShareGPT's ``human``/``gpt`` are mapped onto these at ingest."""

    system = "system"
    user = "user"
    assistant = "assistant"
    tool = "tool"


class SampleShape(str, Enum):
    """The input shape a sample was read from."""

    alpaca = "alpaca"  # instruction / input / output
    sharegpt = "sharegpt"  # conversations: [{from, value}]
    openai = "openai"  # messages: [{role, content, reasoning_content?}]


class Message(BaseModel):
    """One dialogue turn; ``reasoning`` holds an assistant turn's reasoning trace, apart from its content."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    content: str
    reasoning: str | None = None


class Sample(BaseModel):
    """A training sample as read from its source.

    Either an instruction pair (``instruction`` and ``output``, optional ``input`` and ``system``) or a
    dialogue (``messages``). ``reasoning`` is the reasoning trace of a single-turn answer; dialogue turns
    carry their own. ``source`` and ``row_number`` say where the row came from.
    """

    model_config = ConfigDict(extra="forbid")

    sample_id: str | None = None
    shape: SampleShape = SampleShape.alpaca
    instruction: str | None = None
    input: str | None = None
    output: str | None = None
    system: str | None = None
    messages: list[Message] | None = None
    reasoning: str | None = None
    source: str | None = None
    row_number: int | None = Field(default=None, ge=1)
    external_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_form(self) -> "Sample":
        if self.messages is not None:
            if not self.messages:
                raise ValueError("messages is empty: a dialogue needs at least one turn")
            if self.instruction is not None or self.output is not None:
                raise ValueError("a sample is either a dialogue (messages) or an instruction pair, not both")
        elif self.instruction is None or self.output is None:
            missing = [n for n in ("instruction", "output") if getattr(self, n) is None]
            raise ValueError(f"an instruction pair needs {' and '.join(missing)}")
        return self

    @property
    def is_dialogue(self) -> bool:
        """True for a multi-turn (messages) sample."""
        return self.messages is not None

    @classmethod
    def from_r1_answer(cls, instruction: str, answer: str, **kwargs: Any) -> "Sample":
        """Build an instruction pair from an answer that may start with a ``<think>`` block."""
        reasoning, output = split_reasoning(answer)
        return cls(instruction=instruction, output=output, reasoning=reasoning, **kwargs)
