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


def sample_texts(fields: tuple[str, ...] = ("instruction", "output"), joined: bool = False) -> list[str]:
    """The bundled sample's alpaca rows (its planted bad lines skipped): each of ``fields`` as a text, or with
    ``joined`` one text per row (the fields joined by newlines)."""
    texts = []
    for line in (SAMPLE_DIR / "instructions.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            values = [str(row.get(k) or "") for k in fields]
            texts += ["\n".join(values)] if joined else values
    return texts


def write_lines(path: Path, lines: list[str | bytes], newline: bytes = b"\n") -> Path:
    """Write lines (str as UTF-8, bytes verbatim)."""
    path.write_bytes(newline.join(x if isinstance(x, bytes) else x.encode() for x in lines) + newline)
    return path


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def labelstudio(tmp_path_factory):
    """A real Label Studio on 127.0.0.1, started once per test session the way `curate review serve` starts it
    (its own virtual environment, SQLite, admin user and legacy token from the environment)."""
    import secrets

    from curation.review.labelstudio_server import start

    creds = {"LABEL_STUDIO_USERNAME": "lead@example.com", "LABEL_STUDIO_PASSWORD": secrets.token_urlsafe(16),
             "LABEL_STUDIO_USER_TOKEN": secrets.token_hex(20)}
    with pytest.MonkeyPatch.context() as env:  # the credentials in the environment for the session, then restored
        for k, v in creds.items():
            env.setenv(k, v)
        server = start(tmp_path_factory.mktemp("labelstudio"), port=_free_port(), timeout=600)
        server.token = creds["LABEL_STUDIO_USER_TOKEN"]
        yield server
        server.stop()


@pytest.fixture(scope="session")
def argilla(tmp_path_factory):
    """A real Argilla on 127.0.0.1, started once per test session as `curate review serve argilla` starts it:
    argilla-server in its own virtual environment, SQLite, the embedded search engine (no Elasticsearch), Redis
    beside it, the owner and API key from the environment."""
    import secrets

    from curation.review.argilla_server import start

    creds = {"ARGILLA_USERNAME": "lead", "ARGILLA_PASSWORD": secrets.token_urlsafe(16),
             "ARGILLA_API_KEY": secrets.token_urlsafe(24)}
    with pytest.MonkeyPatch.context() as env:
        for k, v in creds.items():
            env.setenv(k, v)
        server = start(tmp_path_factory.mktemp("argilla"), port=_free_port(), timeout=600)
        server.api_key = creds["ARGILLA_API_KEY"]
        server.password = creds["ARGILLA_PASSWORD"]
        yield server
        server.stop()
