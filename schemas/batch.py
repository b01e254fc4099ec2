"""Ingest batches, quarantine records and the per-file ingest report."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from pydantic import BaseModel, Field


class BatchStatus(str, Enum):
    """A batch is ``loading`` while its rows are written, ``done`` once every row is accounted for."""

    loading = "loading"
    done = "done"
    failed = "failed"


class Batch(BaseModel):
    """One ingested input (a file, a JSON array, a dataset split) with its row accounting."""

    batch_id: int
    source: str
    source_name: str
    format: str
    encoding: str | None = None
    content_hash: str
    status: BatchStatus
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_already_present: int = 0
    problems: str | None = None
    ingested_at: datetime | None = None

    @property
    def balanced(self) -> bool:
        """The accounting invariant: rows read = rows loaded + rows quarantined."""
        return self.rows_read == self.rows_loaded + self.rows_quarantined


class QuarantineRecord(BaseModel):
    """A row that could not be loaded, kept verbatim with where it was and why."""

    batch_id: int
    source: str
    row_number: int | None = None
    line: int | None = None
    raw: str | None = None
    reason: str
    field: str | None = None


class IngestFileReport(BaseModel):
    """What ingesting one input did. ``skipped`` is set when an identical input was already loaded, ``failed``
    (the reason) when the input could not be read at all: a missing path, a file that is not what its
    format says; its batch, if one was opened, is marked failed and holds no rows."""

    source: str
    batch_id: int | None = None
    format: str
    encoding: str | None = None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_already_present: int = 0
    blank_lines: int = 0
    skipped: str | None = None
    failed: str | None = None
    problems: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(
        default_factory=list,
        description="Batch-level warnings: the rows load but do not look like instruction data (an e-mail corpus, "
                    "a log or a table mapped with --map).")
    reasons: dict[str, int] = Field(default_factory=dict)
    seconds: float = 0.0

    @property
    def balanced(self) -> bool:
        """rows read = rows loaded + rows quarantined."""
        return self.rows_read == self.rows_loaded + self.rows_quarantined
