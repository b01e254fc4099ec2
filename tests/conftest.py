"""Shared fixtures: a fresh store file per test, the CLI runner, the bundled sample."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["COLUMNS"] = "200"  # wide tables in CLI output, so that tests read whole cells

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO / "data" / "sample"


@pytest.fixture
def store(tmp_path: Path):
    """A Store on a new file in a temp dir (not yet created)."""
    from curation.store import Store

    return Store(tmp_path / "store" / "curate.duckdb", lock_timeout=30)


@pytest.fixture
def runner() -> CliRunner:
    """Typer's runner for the `curate` app."""
    return CliRunner()


@pytest.fixture
def cli(runner: CliRunner, store):
    """Invoke `curate --db <store> ...`; returns the click Result."""
    from curation.cli.app import app

    def invoke(*args: str):
        return runner.invoke(app, ["--db", str(store.path), *args], catch_exceptions=False)

    return invoke


@pytest.fixture(scope="session")
def truth() -> dict:
    """The planted problems of the bundled sample."""
    return json.loads((SAMPLE_DIR / "truth.json").read_text(encoding="utf-8"))


def write_lines(path: Path, lines: list[str | bytes], newline: bytes = b"\n") -> Path:
    """Write lines (str as UTF-8, bytes verbatim)."""
    path.write_bytes(newline.join(x if isinstance(x, bytes) else x.encode() for x in lines) + newline)
    return path
