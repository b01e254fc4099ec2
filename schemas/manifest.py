"""The manifest of an exported snapshot: what the trainer reads to know what it trains on.

``manifest.json`` sits beside the exported files. It names the snapshot and its content hash, the
certification the approval rests on (with the lineage of a snapshot made by applying reviews), the
files and their row counts, the run's pipeline config and the code version.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MANIFEST_VERSION = 1


class SplitInfo(BaseModel):
    """The seeded, order-independent train / eval split."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(description="Seed of the split: a sample's side comes from hashing its id with it.")
    eval_share: float = Field(ge=0, lt=1, description="Share of samples drawn into the eval split.")
    train: int = Field(ge=0, description="Rows in the train split.")
    eval: int = Field(ge=0, description="Rows in the eval split.")


class SplitFiles(BaseModel):
    """The files of one split, relative to the manifest."""

    model_config = ConfigDict(extra="forbid")

    rows: int = Field(ge=0)
    parquet: str
    jsonl: str


class ExportFiles(BaseModel):
    """Every file of the export, relative to the manifest."""

    model_config = ConfigDict(extra="forbid")

    train: SplitFiles
    eval: SplitFiles
    hf: str | None = Field(default=None, description="The Hugging Face save_to_disk folder, when written.")


class Lineage(BaseModel):
    """How a snapshot made by applying reviews came from the snapshot that was reviewed."""

    model_config = ConfigDict(extra="forbid")

    certified_through: int = Field(description="The reviewed snapshot whose reviews this certification comes from.")
    rejected_removed: int = Field(ge=0, description="Samples reviewers rejected without a correction: left out.")
    corrected: int = Field(ge=0, description="Samples reviewers rejected with a correction: the correction is in.")
    edited: int = Field(ge=0, description="Samples accepted with a reviewer's edit applied.")


class ReviewerCount(BaseModel):
    """One reviewer whose verdicts the certification rests on."""

    model_config = ConfigDict(extra="forbid")

    reviewer: str = Field(description="The reviewer's account (e-mail) in the review tool.")
    reviews: int = Field(ge=0, description="Submitted sample verdicts.")
    scripted: bool = Field(description="A script, not a person (the demo's scripted reviewer): never counted as people.")


class SnapshotManifest(BaseModel):
    """``manifest.json`` of an exported snapshot."""

    model_config = ConfigDict(extra="forbid")

    manifest_version: int = MANIFEST_VERSION
    snapshot_id: int
    parent_id: int | None = Field(description="The snapshot this one was made from (reviews applied, or extended).")
    run_id: int = Field(description="The pipeline run whose kept samples the snapshot froze.")
    store_id: str = Field(description="The store the snapshot lives in.")
    content_hash: str = Field(description="sha256 over the sorted (sample id, content hash) list.")
    state: str = Field(description="approved, unless exported with --force.")
    samples: int = Field(ge=0)
    forced_approval: bool = Field(description="Approved with --force, without certification.")
    exported_unapproved: bool = Field(description="Exported with --force before approval.")
    certification: dict[str, Any] | None = Field(
        description="The certification the approval rests on: verdict, bounds, counts and estimates, lineage.")
    lineage: Lineage | None = Field(default=None, description="For a snapshot made by applying reviews.")
    reviewers: list[ReviewerCount] = Field(
        default_factory=list, description="Who gave the sample verdicts of this snapshot and the ones it was applied "
        "from; a scripted reviewer is marked as such.")
    split: SplitInfo
    files: ExportFiles
    run_config: dict[str, Any] | None = Field(description="The pipeline config of the run.")
    warnings: list[str] = Field(default_factory=list, description="What the person exporting was warned of.")
    code_version: str
    exported_at: str = Field(description="When (UTC, ISO 8601).")
