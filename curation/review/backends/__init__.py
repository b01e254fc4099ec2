"""Review backends: one interface to push review items and pull verdicts, whatever tool the reviewers use.

A backend implements :class:`ReviewBackend`. Pushes are batched and idempotent by item id (a re-push
creates nothing that is already there); pulls return verdict dicts that
:func:`curation.review.loop.record_verdicts` stores the same way for every backend.

* ``labelstudio``: Label Studio through ``label-studio-sdk`` (a project per snapshot or rating round).
* ``argilla``: Argilla through its SDK v2 (a dataset per snapshot or rating round; a local server with the
  embedded search engine: :mod:`curation.review.argilla_server`).

A project is named by a :class:`ProjectKey`: the review ("snapshot 3", "ratings eval-a") and the id of the
store it belongs to (``Store.store_id``, a uuid made at ``init``). Snapshot ids restart at 1 in every store,
so without the store id two stores sharing one review server would share (and mix) their projects: a
backend refuses a key without one.
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


@dataclass(frozen=True)
class ProjectKey:
    """Which review project: ``name`` ("snapshot 3", "ratings eval-a") in the store ``store_id``."""

    name: str
    store_id: str | None = None

    def __str__(self) -> str:
        return self.name if not self.store_id else f"{self.name} of store {self.store_id}"


def require_store(key: object) -> ProjectKey:
    """``key`` as a :class:`ProjectKey` that names its store; a :class:`UsageError` otherwise."""
    if not isinstance(key, ProjectKey):
        raise UsageError(f"review project key {key!r} is not a ProjectKey: make it with snapshot_key() / round_key() "
                         "and the store's id (store_id=store.store_id)")
    if not key.store_id:
        raise UsageError(f"review project key {key.name!r} names no store: pass store_id=store.store_id to "
                         "snapshot_key() / round_key() (two stores sharing one review server would share its projects)")
    return key


class ReviewBackend(ABC):
    """Push items to people and pull their verdicts back."""

    name: str

    @abstractmethod
    def push(self, key: ProjectKey, kind: str, items: list[ReviewItem], overlap: int = 1, progress=None) -> PushResult:  # noqa: ANN001
        """Push ``items`` of ``kind`` ("sample" | "answer") to the project for ``key`` (made when missing).

        ``key`` must name its store (see :func:`require_store`). ``progress``: an optional callback
        ``(description, done, total, unit)``.
        """

    @abstractmethod
    def pull(self, key: ProjectKey, kind: str) -> list[dict]:
        """All submitted verdicts of the project for ``key``: ``{item_id, reviewer, verdict | ratings, ...}``."""

    @abstractmethod
    def check(self) -> None:
        """Raise :class:`curation.errors.ExternalServiceError` unless the backend answers and accepts our token."""


def snapshot_key(snapshot_id: int, *, store_id: str | None = None) -> ProjectKey:
    """The project key of a snapshot's sample review in the store ``store_id`` (``Store.store_id``).

    ``store_id`` is a keyword for the callers' sake, but a backend refuses a key without it.
    """
    return ProjectKey(f"snapshot {snapshot_id}", store_id)


def round_key(round_name: str, *, store_id: str | None = None) -> ProjectKey:
    """The project key of a rating round in the store ``store_id`` (``Store.store_id``); required as for
    :func:`snapshot_key`."""
    return ProjectKey(f"ratings {round_name}", store_id)


def get_backend(name: str, **options: object) -> ReviewBackend:
    """A backend by name; options as the backend takes them (url, token, ...)."""
    if name == "labelstudio":
        from curation.review.backends.labelstudio import LabelStudioBackend

        return LabelStudioBackend(**options)  # type: ignore[arg-type]
    if name == "argilla":
        from curation.review.backends.argilla import ArgillaBackend

        if "token" in options:  # the CLI's --token is Argilla's API key
            options["api_key"] = options.pop("token")
        return ArgillaBackend(**options)  # type: ignore[arg-type]
    raise UsageError(f"unknown review backend {name!r}; known: labelstudio, argilla")
