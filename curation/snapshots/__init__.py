"""The snapshot stage: freeze a run's kept samples, move them through their states, approve, export.

* :mod:`curation.snapshots.core` — create, list, states, children made by applying reviews.
* :mod:`curation.snapshots.approve` — approval, gated by the certification computed from stored reviews.
* :mod:`curation.snapshots.export` — the certified export: Parquet, JSONL, HF dataset folder, manifest.
* :mod:`curation.snapshots.reference` — an approved snapshot as the dedup reference of the next round.
"""

from curation.snapshots.approve import approve
from curation.snapshots.core import STATES, Snapshot, create_snapshot, get_snapshot, list_snapshots, set_state
from curation.snapshots.export import ExportResult, export_snapshot
from curation.snapshots.reference import with_reference_snapshot

__all__ = ["STATES", "ExportResult", "Snapshot", "approve", "create_snapshot", "export_snapshot", "get_snapshot",
           "list_snapshots", "set_state", "with_reference_snapshot"]
