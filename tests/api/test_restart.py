"""SIGKILL of the service (``curate api`` in its own process) during an ingest job and during a pipeline run, then
a restart: the job is queued again and finishes; nothing lost, nothing doubled (the store's audit), the same
decisions as an uninterrupted run on a copy."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time

import httpx

from curation.api.tokens import create_token
from curation.store import Store
from tests.conftest import REPO, _free_port
from tests.curation.test_concurrency import ENV, LIGHT_PIPELINE, RUN, assert_audit_ok, make_jsonl, rows


class Api:
    """``curate api`` over one store, started and killed as a process."""

    def __init__(self, db, token: str) -> None:  # noqa: ANN001
        self.db, self.token, self.proc = db, token, None

    def start(self) -> "Api":
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "curation", "--db", str(self.db), "api", "--port", str(port)],
                                     env={**ENV, "CURATE_API_MAX_UPLOAD_BYTES": str(200 << 20)}, cwd=REPO,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(self.url + "/ready", timeout=5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None, self.proc.stderr.read().decode()[-3000:]
            time.sleep(0.2)
        raise AssertionError("the API did not start")

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=120)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)

    def job(self, job_id: int) -> dict:
        with self.client() as c:
            return c.get(f"/v1/jobs/{job_id}").json()

    def kill_mid_job(self, job_id: int, at: float = 0.3, timeout: float = 300) -> dict:
        """SIGKILL once the job's progress passes ``at`` of a step (not done yet); the job's row at that moment."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            job = self.job(job_id)
            assert job["status"] in ("queued", "running"), f"the job ended before the kill: {job}"
            p = job.get("progress")
            if job["status"] == "running" and p and p["total"] and at * p["total"] <= p["done"] < p["total"]:
                self.kill()
                return job
            time.sleep(0.05)
        raise AssertionError(f"the job never reached {at:.0%} of a step")

    def wait(self, job_id: int, timeout: float = 600) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            job = self.job(job_id)
            if job["status"] in ("done", "failed", "interrupted"):
                return job
            time.sleep(0.3)
        raise AssertionError(f"job {job_id} did not finish")


def test_sigkill_during_an_ingest_job_then_restart_loads_it_once(tmp_path) -> None:
    db = tmp_path / "s.duckdb"
    store = Store(db)
    token, _ = create_token(store, "admin", "restart-test")
    n, bad_every = 300_000, 997
    src = make_jsonl(tmp_path / "big.jsonl", n, seed=3, bad_every=bad_every)
    api = Api(db, token).start()
    try:
        with api.client() as c:
            r = c.post("/v1/batches", params={"filename": "big.jsonl"}, content=src.read_bytes())
            assert r.status_code == 202, r.text
            job_id = r.json()["job"]["job_id"]
        api.kill_mid_job(job_id, at=0.2)
        assert rows(store, "SELECT status FROM jobs WHERE job_id = ?", [job_id]) == [("running",)]  # left by the dead one
        assert_audit_ok(store)

        api.start()  # the restart queues the job again; the store takes over the dead process's batch
        job = api.wait(job_id)
        assert job["status"] == "done" and job["attempts"] == 2, job
        with api.client() as c:
            log = c.get(f"/v1/jobs/{job_id}/log").text
        assert "interrupted" in log and "queued again" in log, log
        api.stop()  # the service holds the store while it runs
        expected = n - n // bad_every
        assert rows(store, "SELECT count(*), count(DISTINCT sample_id) FROM samples s JOIN batches b USING (batch_id) "
                           "WHERE b.status = 'done'") == [(expected, expected)]
        assert rows(store, "SELECT sum(rows_read), sum(rows_quarantined) FROM batches WHERE status = 'done'") == [
            (n, n // bad_every)]
        assert_audit_ok(store)
    finally:
        api.stop()


def test_sigkill_during_a_pipeline_run_job_then_restart_resumes_it(tmp_path) -> None:
    """Killed a fifth into a step; after the restart the same run resumes (no second run), and its decisions
    equal an uninterrupted run's on a copy of the store."""
    from curation.ingest import ingest_paths

    db = tmp_path / "s.duckdb"
    store = Store(db)
    token, _ = create_token(store, "admin", "restart-test")
    ingest_paths(store, [str(make_jsonl(tmp_path / "f.jsonl", 60_000, seed=5, bad_every=499))])
    ref = Store(tmp_path / "ref.duckdb")
    shutil.copy(db, ref.path)
    cfg = tmp_path / "light.toml"
    cfg.write_text(LIGHT_PIPELINE)
    done = subprocess.run([sys.executable, "-c", RUN, str(ref.path), str(cfg)], env=ENV, cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    api = Api(db, token).start()
    try:
        with api.client() as c:
            r = c.post("/v1/runs", json={"config": LIGHT_PIPELINE})
            assert r.status_code == 202, r.text
            run_job = r.json()["job"]["job_id"]
        api.kill_mid_job(run_job, at=0.2)
        assert rows(store, "SELECT status FROM runs") == [("running",)]
        assert_audit_ok(store)
        api.start()
        job = api.wait(run_job, timeout=900)
        assert job["status"] == "done" and job["attempts"] == 2, job
        api.stop()  # the service holds the store while it runs
        assert rows(store, "SELECT count(*), count(*) FILTER (status = 'done') FROM runs") == [(1, 1)]  # resumed, not redone
        decisions = "SELECT sample_id, step, verdict, reason FROM decisions ORDER BY ALL"
        assert rows(store, decisions) == rows(ref, decisions)
        assert rows(store, "SELECT count(*) FROM kept") == rows(ref, "SELECT count(*) FROM kept")
        assert_audit_ok(store)
    finally:
        api.stop()
