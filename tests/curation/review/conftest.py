"""Fixtures of the review tests: the bundled sample ingested and curated once per test session, a copy per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from curation.ingest import ingest_paths
from curation.pipeline import load_config
from curation.pipeline.executor import run_pipeline
from curation.store import Store
from tests.conftest import SAMPLE_DIR

FILES = ["instructions.jsonl", "dialogues_sharegpt.jsonl", "messages_openai.json", "instructions_gb18030.csv"]


@pytest.fixture(scope="session")
def curated(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("loop") / "curate.duckdb"
    store = Store(path)
    ingest_paths(store, [str(SAMPLE_DIR / f) for f in FILES])
    run_pipeline(store, load_config())
    return path


@pytest.fixture
def store(curated, tmp_path) -> Store:
    shutil.copy(curated, tmp_path / "curate.duckdb")
    return Store(tmp_path / "curate.duckdb")




def eval_round(tmp_path: Path, prompts: int) -> tuple[Path, list[dict]]:
    """What `curate eval` writes for a human round: its results file (the automatic scores of "base" and
    "lora-v1") and one generation per model and prompt."""
    import json

    results = tmp_path / "eval_results.json"
    results.write_text(json.dumps({"models": {"base": {"bleu4": 3.0, "rougeL": 20.0, "bertscore_f1": 0.7, "eval_loss": 2.0},
                                              "lora-v1": {"bleu4": 9.0, "rougeL": 31.0, "bertscore_f1": 0.8,
                                                          "eval_loss": 1.2}}}), encoding="utf-8")
    gens = [{"model": m, "sample_id": f"p{i}", "prompt": [{"role": "user", "content": f"第{i}个问题：北京在哪里？"}],
             "reference": "北京在中国北部。", "answer": f"{m} answer {i}"} for m in ("base", "lora-v1") for i in range(prompts)]
    return results, gens
