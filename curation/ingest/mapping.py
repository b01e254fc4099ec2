"""Field mapping: which input field feeds which sample field."""

from __future__ import annotations

from dataclasses import dataclass, field

from curation.errors import UsageError

# Sample fields a mapping may target, with the input fields read by default (first match wins).
DEFAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "instruction": ("instruction",),
    "input": ("input",),
    "output": ("output",),
    "system": ("system",),
    "messages": ("messages",),
    "conversations": ("conversations",),
    "id": ("id",),
    "reasoning": ("reasoning_content", "reasoning"),
}


def json_path(source: str) -> str:
    """``a.b`` -> ``$."a"."b"`` (each key quoted, so keys with spaces or dashes work)."""
    parts = source.split(".")
    if not source or any(not p for p in parts):
        raise UsageError(f"bad field name {source!r} in --map: use a name or a dotted path such as meta.question")
    return "$" + "".join('."' + p.replace('"', '\\"') + '"' for p in parts)


@dataclass(frozen=True)
class FieldMapping:
    """Input field names for each sample field; ``overrides`` are what the user gave with ``--map``."""

    overrides: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, items: list[str] | None) -> "FieldMapping":
        """Parse ``["output=answer", "instruction=q.text"]``."""
        overrides: dict[str, str] = {}
        for item in items or []:
            target, sep, source = item.partition("=")
            target, source = target.strip(), source.strip()
            if not sep or not target or not source:
                raise UsageError(f"--map takes target=source, got {item!r}")
            if target not in DEFAULT_FIELDS:
                raise UsageError(
                    f"--map target {target!r} is not a sample field; use one of: {', '.join(DEFAULT_FIELDS)}"
                )
            json_path(source)
            if target in overrides:
                raise UsageError(f"--map gives {target!r} twice")
            overrides[target] = source
        return cls(overrides)

    def sources(self, target: str) -> tuple[str, ...]:
        """Input field names read for ``target``, in order of preference."""
        if target in self.overrides:
            return (self.overrides[target],)
        return DEFAULT_FIELDS[target]

    def consumed_top_level(self) -> list[str]:
        """Top-level input keys that feed sample fields (the rest go to metadata)."""
        keys = {s.split(".")[0] for t in DEFAULT_FIELDS for s in self.sources(t)}
        return sorted(keys)

    def as_dict(self) -> dict[str, str]:
        """The overrides, for the batch's options."""
        return dict(sorted(self.overrides.items()))
