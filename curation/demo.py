"""The README's end-to-end job on the bundled sample data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from curation.errors import InputError
from curation.ingest import IngestOptions, ingest_paths
from curation.pipeline import load_config
from curation.pipeline.executor import RunResult, run_pipeline
from curation.store.store import Store
from schemas.batch import IngestFileReport

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "sample"
DEMO_INPUTS = ("instructions.jsonl", "dialogues_sharegpt.jsonl", "messages_openai.json", "instructions_gb18030.csv")


@dataclass
class DemoResult:
    """What the demo did."""

    reports: list[IngestFileReport]
    run: RunResult


def run_demo(store: Store, data_dir: Path | None = None, progress=None) -> DemoResult:  # noqa: ANN001
    """Ingest the bundled sample files into ``store`` and run the default pipeline (no-ops when already done)."""
    folder = data_dir or SAMPLE_DIR
    files = [folder / name for name in DEMO_INPUTS if (folder / name).exists()] if data_dir is None else sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith(("truth", "README"))
    )
    if not files:
        raise InputError(f"no sample data in {folder}: run `python scripts/make_sample_data.py`")
    reports = ingest_paths(store, [str(f) for f in files], IngestOptions(), progress=progress)
    step_progress = (lambda desc, done, total: progress(desc, done, total, "samples")) if progress else None
    run = run_pipeline(store, load_config(), progress=step_progress)
    return DemoResult(reports, run)
