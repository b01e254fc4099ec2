"""Fixtures of the API tests: a curated store (the bundled sample's instructions, the default pipeline, one
snapshot), and the service over a copy of it under uvicorn on 127.0.0.1 with a token of each role."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from curation.api.app import ApiSettings, create_app
from curation.api.held import HeldStore
from curation.api.tokens import ROLES, create_token
from curation.ingest import ingest_paths
from curation.pipeline import load_config
from curation.pipeline.executor import run_pipeline
from curation.snapshots import create_snapshot
from curation.store import Store
from tests.conftest import SAMPLE_DIR


@pytest.fixture(scope="session")
def api_curated(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("api-curated") / "curate.duckdb"
    store = Store(path)
    ingest_paths(store, [str(SAMPLE_DIR / "instructions.jsonl")])
    run_pipeline(store, load_config())
    create_snapshot(store)
    return path


@dataclass
class Service:
    url: str
    store: Store
    tokens: dict[str, str]
    server: object

    def client(self, role: str | None = "admin", **kw) -> httpx.Client:  # noqa: ANN003
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=kw.pop("timeout", 60), **kw)

    def wait(self, job_id: int, timeout: float = 300) -> dict:
        """The job once it is done or failed."""
        with self.client("viewer") as c:
            deadline = time.time() + timeout
            while time.time() < deadline:
                job = c.get(f"/v1/jobs/{job_id}").json()
                if job["status"] in ("done", "failed", "interrupted"):
                    return job
                time.sleep(0.2)
        raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s")


def start_service(path: Path, settings: ApiSettings | None = None) -> Service:
    from serving.api import ThreadServer

    store = HeldStore(path, lock_timeout=60)  # the service holds it open; the tests read it through the same handle
    app = create_app(store, settings or ApiSettings(sql_timeout=3, sql_max_rows=1000, max_upload_bytes=4 << 20))
    tokens = {role: create_token(store, role, f"test-{role}")[0] for role in ROLES}
    server = ThreadServer(app)
    return Service(server.url, store, tokens, server)


@pytest.fixture(scope="module")
def service(api_curated, tmp_path_factory):
    folder = tmp_path_factory.mktemp("api")
    shutil.copy(api_curated, folder / "curate.duckdb")
    svc = start_service(folder / "curate.duckdb")
    yield svc
    svc.server.stop()
