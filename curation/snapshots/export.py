"""The certified export of a snapshot: Parquet, JSONL, a Hugging Face dataset folder, a seeded train / eval
split and ``manifest.json`` (a :class:`schemas.manifest.SnapshotManifest`).

Unapproved snapshots are refused unless forced (the manifest then says so). Exporting a snapshot whose
reviews found errors that were not applied warns and names the child that applies them. The files are
portable: ``source`` is the source name (the absolute path stays in the store) and ``metadata`` is an
object in JSONL (JSON text in Parquet and the dataset folder, whose columns are typed).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curation import __version__
from curation.duck import query_arrow
from curation.errors import MissingExtraError, RefusedError, UsageError
from curation.review.scripted import reviewer_counts
from curation.snapshots.core import children, get_snapshot
from curation.store.store import Store, utcnow
from schemas.manifest import ExportFiles, Lineage, ReviewerCount, SnapshotManifest, SplitFiles, SplitInfo

_SAMPLES_SQL = """
    SELECT t.sample_id, t.version, t.content_hash, b.source_name AS source, t.row_number, t.external_id, t.shape,
           t.instruction, t.input, t.output, t.system, t.messages, t.reasoning, CAST(t.metadata AS VARCHAR) AS metadata
    FROM snapshot_texts(?) t JOIN batches b USING (batch_id) ORDER BY t.sample_id
"""


@dataclass
class ExportResult:
    """Where the export went, its manifest, and what the person exporting should know."""

    path: Path
    manifest: SnapshotManifest
    warnings: list[str] = field(default_factory=list)


def unapplied_review_warning(store: Store, snapshot_id: int) -> str | None:
    """A warning when the snapshot's reviews rejected or corrected samples that this snapshot still holds as they were."""
    try:
        from curation.review.certification import lineage_counts
    except MissingExtraError:  # a base install has no reviews to have found anything
        return None
    found = lineage_counts(store, snapshot_id)
    n = found["rejected_removed"] + found["corrected"] + found["edited"]
    if not n:
        return None
    what = (f"the reviews of snapshot {snapshot_id} rejected {found['rejected_removed']} samples and corrected "
            f"{found['corrected'] + found['edited']} that this export still holds as they were")
    made = children(store, snapshot_id)
    if made:
        return f"{what}: snapshot {made[-1].snapshot_id} applies them (`curate snapshot export {made[-1].snapshot_id}`)"
    return f"{what}: apply them with `curate review apply {snapshot_id}` and export the child"


def export_snapshot(store: Store, snapshot_id: int, out_dir: Path | None = None, eval_share: float = 0.05,
                    seed: int = 0, force: bool = False, hf: bool = True) -> ExportResult:
    """Write the snapshot's files under ``out_dir`` (default ``<store folder>/exports/snapshot-<id>``)."""
    snap = get_snapshot(store, snapshot_id)
    if snap.state != "approved" and not force:
        raise RefusedError(f"snapshot {snapshot_id} is {snap.state}, not approved: approve it first, or export with --force "
                           "(recorded in the manifest)")
    if not 0 <= eval_share < 1:
        raise UsageError(f"eval share must be in [0, 1), not {eval_share}")
    if hf:
        try:
            import datasets
        except ImportError as e:
            raise MissingExtraError("hf", "the Hugging Face dataset folder (or pass --no-hf)") from e
    warnings = [w for w in (unapplied_review_warning(store, snapshot_id),) if w]
    out = Path(out_dir) if out_dir else store.path.parent / "exports" / f"snapshot-{snapshot_id}"
    out.mkdir(parents=True, exist_ok=True)
    with store.reader() as con:
        table = query_arrow(con, _SAMPLES_SQL, [snapshot_id])
        config = con.execute("SELECT config FROM snapshots WHERE snapshot_id = ?", [snapshot_id]).fetchall()[0][0]
        store_id = con.execute("SELECT store_id FROM store_info").fetchall()[0][0]
    # a seeded split that does not depend on row order: a sample's side comes from hashing its id with the seed
    key = [int(hashlib.sha256(f"{seed}:{sid}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
           for sid in table.column("sample_id").to_pylist()]
    is_eval = pa.array([k < eval_share for k in key])
    train, evals = table.filter(pc.invert(is_eval)), table.filter(is_eval)
    files = {}
    for name, part in (("train", train), ("eval", evals)):
        pq.write_table(part, out / f"{name}.parquet")
        with open(out / f"{name}.jsonl", "w", encoding="utf-8") as f:
            for row in part.to_pylist():
                row["metadata"] = json.loads(row["metadata"]) if row["metadata"] is not None else None
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        files[name] = SplitFiles(rows=part.num_rows, parquet=f"{name}.parquet", jsonl=f"{name}.jsonl")
    if hf:
        dd = datasets.DatasetDict({"train": datasets.Dataset(train), "eval": datasets.Dataset(evals)})
        dd.save_to_disk(str(out / "hf"))
    cert = snap.certification
    lineage = cert.get("lineage") if cert else None
    reviewed = [snapshot_id]
    s = snap
    while s.applied_from is not None:
        reviewed.append(s.applied_from)
        s = get_snapshot(store, s.applied_from)
    manifest = SnapshotManifest(
        snapshot_id=snapshot_id, parent_id=snap.parent_id, run_id=snap.run_id, store_id=store_id,
        content_hash=snap.content_hash, state=snap.state, samples=snap.n_samples, forced_approval=snap.forced,
        exported_unapproved=snap.state != "approved", certification=cert,
        lineage=Lineage(**lineage) if lineage else None,
        reviewers=[ReviewerCount(**r) for r in reviewer_counts(store, reviewed)],
        split=SplitInfo(seed=seed, eval_share=eval_share, train=train.num_rows, eval=evals.num_rows),
        files=ExportFiles(train=files["train"], eval=files["eval"], hf="hf" if hf else None),
        run_config=json.loads(config) if config else None, warnings=warnings, code_version=__version__,
        exported_at=utcnow().isoformat() + "Z")
    (out / "manifest.json").write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
    return ExportResult(out, manifest, warnings)
