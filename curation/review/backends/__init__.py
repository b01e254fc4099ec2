"""Review backends: one interface to push review items and pull verdicts, whatever tool the reviewers use.

A backend implements :class:`ReviewBackend`. Pushes are batched and idempotent by item id (a re-push
creates nothing that is already there); pulls return verdict dicts that
:func:`curation.review.loop.record_verdicts` stores the same way for every backend.

* ``labelstudio``: Label Studio through ``label-studio-sdk`` (a project per snapshot or rating round).
* Argilla (SDK v2) is next on the roadmap, behind the same interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from curation.errors import UsageError
from curation.review.items import ReviewItem


@dataclass
class PushResult:
    """What a push did: items created in the backend, items found already there, and where."""

    created: int
    existing: int
    project: str
    url: str | None = None


class ReviewBackend(ABC):
    """Push items to people and pull their verdicts back."""

    name: str

    @abstractmethod
    def push(self, key: str, kind: str, items: list[ReviewItem], overlap: int = 1, progress=None) -> PushResult:  # noqa: ANN001
        """Push ``items`` of ``kind`` ("sample" | "answer") to the project for ``key`` (made when missing).

        ``progress``: an optional callback ``(description, done, total, unit)``.
        """

    @abstractmethod
    def pull(self, key: str, kind: str) -> list[dict]:
        """All submitted verdicts of the project for ``key``: ``{item_id, reviewer, verdict | ratings, ...}``."""

    @abstractmethod
    def check(self) -> None:
        """Raise :class:`curation.errors.ExternalServiceError` unless the backend answers and accepts our token."""


def snapshot_key(snapshot_id: int) -> str:
    """The project key of a snapshot's sample review."""
    return f"snapshot {snapshot_id}"


def round_key(round_name: str) -> str:
    """The project key of a rating round."""
    return f"ratings {round_name}"


def get_backend(name: str, **options: object) -> ReviewBackend:
    """A backend by name; options as the backend takes them (url, token, ...)."""
    if name == "labelstudio":
        from curation.review.backends.labelstudio import LabelStudioBackend

        return LabelStudioBackend(**options)  # type: ignore[arg-type]
    raise UsageError(f"unknown review backend {name!r}; known: labelstudio")
