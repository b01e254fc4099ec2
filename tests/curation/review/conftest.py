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


