"""Export of an approved snapshot: Parquet, JSONL, a Hugging Face dataset folder, a seeded train / eval
split and ``manifest.json`` (ids, hashes, counts, the run's config, the review statistics, code version).

Unapproved snapshots are refused unless forced (the manifest then says so).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curation import __version__
from curation.duck import query_arrow
from curation.errors import RefusedError, UsageError
from curation.review.snapshots import get_snapshot
from curation.store.store import Store, utcnow

_SAMPLES_SQL = """
    SELECT ss.sample_id, ss.version, ss.content_hash, s.source, s.row_number, s.external_id, s.shape,
           CASE WHEN t.sample_id IS NULL THEN s.instruction ELSE t.instruction END AS instruction,
           CASE WHEN t.sample_id IS NULL THEN s.input ELSE t.input END AS input,
           CASE WHEN t.sample_id IS NULL THEN s.output ELSE t.output END AS output,
           CASE WHEN t.sample_id IS NULL THEN s.system ELSE t.system END AS system,
           CASE WHEN t.sample_id IS NULL THEN s.messages ELSE t.messages END AS messages,
           CASE WHEN t.sample_id IS NULL THEN s.reasoning ELSE t.reasoning END AS reasoning,
           CAST(s.metadata AS VARCHAR) AS metadata
    FROM snapshot_samples ss JOIN samples s USING (sample_id)
    LEFT JOIN sample_texts t ON t.sample_id = ss.sample_id AND t.version = ss.version
    WHERE ss.snapshot_id = ? ORDER BY ss.sample_id
"""


def export_snapshot(store: Store, snapshot_id: int, out_dir: Path | None = None, eval_share: float = 0.05,
                    seed: int = 0, force: bool = False, hf: bool = True) -> Path:
    """Write the snapshot's files under ``out_dir`` (default ``<store folder>/exports/snapshot-<id>``)."""
    snap = get_snapshot(store, snapshot_id)
    if snap.state != "approved" and not force:
        raise RefusedError(f"snapshot {snapshot_id} is {snap.state}, not approved: approve it first, or export with --force "
                           "(recorded in the manifest)")
    if not 0 <= eval_share < 1:
        raise UsageError(f"eval share must be in [0, 1), not {eval_share}")
    out = Path(out_dir) if out_dir else store.path.parent / "exports" / f"snapshot-{snapshot_id}"
    out.mkdir(parents=True, exist_ok=True)
    with store.reader() as con:
        table = query_arrow(con, _SAMPLES_SQL, [snapshot_id])
        config = con.execute("SELECT config FROM snapshots WHERE snapshot_id = ?", [snapshot_id]).fetchall()[0][0]
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
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        files[name] = {"rows": part.num_rows, "parquet": f"{name}.parquet", "jsonl": f"{name}.jsonl"}
    if hf:
        try:
            import datasets
        except ImportError as e:
            raise UsageError("the Hugging Face export needs datasets: pip install 'llm-curate[hf]' (or pass --no-hf)") from e
        dd = datasets.DatasetDict({"train": datasets.Dataset(train), "eval": datasets.Dataset(evals)})
        dd.save_to_disk(str(out / "hf"))
        files["hf"] = "hf"
    manifest = {
        "snapshot_id": snapshot_id, "parent_id": snap.parent_id, "run_id": snap.run_id,
        "content_hash": snap.content_hash, "state": snap.state, "samples": snap.n_samples,
        "forced_approval": snap.forced, "exported_unapproved": snap.state != "approved",
        "split": {"seed": seed, "eval_share": eval_share, "train": train.num_rows, "eval": evals.num_rows},
        "review": snap.certification, "run_config": json.loads(config) if config else None,
        "files": files, "code_version": __version__, "exported_at": utcnow().isoformat() + "Z",
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    return out
