"""Quick exports of what a run kept (certified exports come with snapshots)."""

from __future__ import annotations

from pathlib import Path

from curation.errors import UsageError
from curation.sql import run_query, store_files, write_result
from curation.store.store import Store

EXPORT_COLUMNS = ("run_id, sample_id, version, source, row_number, external_id, shape, instruction, input, output, "
                  "system, messages, reasoning, metadata")


def export_kept(store: Store, output: Path, fmt: str | None = None) -> int:
    """Write the latest run's kept samples to ``output`` (JSONL or Parquet); returns how many."""
    fmt = fmt or {".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}.get(output.suffix.lower())
    if fmt not in ("jsonl", "parquet"):
        raise UsageError(f"cannot tell the export format of {output}; pass --format jsonl or parquet")
    table = run_query(store, f"SELECT {EXPORT_COLUMNS} FROM kept ORDER BY batch_id, row_number")
    if table.num_rows == 0:
        has_run = run_query(store, "SELECT count(*) AS n FROM latest_run").column("n")[0].as_py()
        if not has_run:
            raise UsageError("no finished run to export: run `curate run` first")
    write_result(table, "json" if fmt == "jsonl" else "parquet", output, protect=store_files(store))
    return table.num_rows
