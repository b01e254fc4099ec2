"""Background jobs: rows of the store's ``jobs`` table, run one at a time by a worker thread of the service.

A job is ``queued`` when submitted, ``running`` while the worker has it (its ``owner`` is the service process,
``heartbeat_at`` refreshed every few seconds, ``progress`` the latest ``(what, done, total, unit)``), then
``done`` (``result``), ``failed`` (``error``: the message and exit code of the same failure on the CLI) or
``interrupted``. Each kind runs the library function its CLI command runs.

Restarts: when the service starts, a ``running`` job whose owner is gone (the service was killed) is queued
again when its kind is safe to re-run, as every kind here is: an ingest re-reads its file and the store skips
the rows it already holds (the dead process's batch is taken over), a pipeline run resumes from the steps it
finished, pushes and pulls are idempotent by item id, an export writes the same files, and training starts
again (from its last checkpoint where it kept one). After :data:`MAX_ATTEMPTS` starts it is ``interrupted``
instead, with the reason. A job is never lost: the row stays.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from curation.errors import EXIT_INTERNAL, CurateError, UsageError
from curation.sql import locked_reader
from curation.store import Store
from curation.store.lease import Owner, current_owner
from curation.store.store import utcnow

MAX_ATTEMPTS = 3
HEARTBEAT_S = 5.0
LOG_LINES = 200
STATUSES = ("queued", "running", "done", "failed", "interrupted")

Progress = Callable[[str, int, int, str], None]


@dataclass(frozen=True)
class JobKind:
    run: Callable[[Store, dict, Progress], dict]
    role: str  # the role that may submit it


KINDS: dict[str, JobKind] = {}


def kind(name: str, role: str) -> Callable:
    def register(fn: Callable[[Store, dict, Progress], dict]) -> Callable:
        KINDS[name] = JobKind(fn, role)
        return fn
    return register


def _row(r: tuple) -> dict:
    return {"job_id": r[0], "kind": r[1], "params": json.loads(r[2]), "status": r[3], "created_by": r[4],
            "created_at": r[5].isoformat() if r[5] else None, "started_at": r[6].isoformat() if r[6] else None,
            "finished_at": r[7].isoformat() if r[7] else None, "attempts": r[8],
            "progress": json.loads(r[9]) if r[9] else None, "result": json.loads(r[10]) if r[10] else None,
            "error": json.loads(r[11]) if r[11] else None}


_COLUMNS = ("job_id, kind, CAST(params AS VARCHAR), status, created_by, created_at, started_at, finished_at, attempts, "
            "CAST(progress AS VARCHAR), CAST(result AS VARCHAR), CAST(error AS VARCHAR)")


def submit(store: Store, kind_name: str, params: dict, created_by: str | None = None) -> dict:
    """Queue a job; its row."""
    if kind_name not in KINDS:
        raise UsageError(f"unknown job kind {kind_name!r}: one of {', '.join(sorted(KINDS))}")
    with store.writer() as con:
        row = con.execute(f"INSERT INTO jobs (kind, params, status, created_by, created_at) VALUES (?, ?, 'queued', ?, ?) "
                          f"RETURNING {_COLUMNS}",
                          [kind_name, json.dumps(params, default=str), created_by, utcnow()]).fetchone()
    return _row(row)


def get_job(store: Store, job_id: int) -> dict | None:
    with locked_reader(store) as con:
        row = con.execute(f"SELECT {_COLUMNS} FROM jobs WHERE job_id = ?", [job_id]).fetchone()
    return _row(row) if row else None


def job_log(store: Store, job_id: int) -> str | None:
    with locked_reader(store) as con:
        row = con.execute("SELECT coalesce(log, '') FROM jobs WHERE job_id = ?", [job_id]).fetchone()
    return row[0] if row else None


def list_jobs(store: Store, status: str | None = None, kind_name: str | None = None, after: int | None = None,
              limit: int = 50) -> list[dict]:
    if status is not None and status not in STATUSES:
        raise UsageError(f"unknown status {status!r}: one of {', '.join(STATUSES)}")
    with locked_reader(store) as con:
        rows = con.execute(f"""SELECT {_COLUMNS} FROM jobs WHERE (? IS NULL OR status = ?) AND (? IS NULL OR kind = ?)
                               AND (? IS NULL OR job_id > ?) ORDER BY job_id LIMIT ?""",
                           [status, status, kind_name, kind_name, after, after, limit]).fetchall()
    return [_row(r) for r in rows]


def recover(store: Store) -> dict[str, list[int]]:
    """Jobs left ``running`` by a service that is gone: queued again, or ``interrupted`` after
    :data:`MAX_ATTEMPTS` starts. Returns the ids of each."""
    now = utcnow()
    requeued, interrupted = [], []
    with store.writer() as con:
        for job_id, owner, beat, attempts in con.execute(
                "SELECT job_id, owner, heartbeat_at, attempts FROM jobs WHERE status = 'running'").fetchall():
            o = Owner.parse(owner)
            if o is not None and o.alive(beat, now):
                continue  # another live service has it
            who = o.describe() if o else "an unknown process"
            if attempts >= MAX_ATTEMPTS:
                con.execute("""UPDATE jobs SET status = 'interrupted', finished_at = ?, owner = NULL, error = ?,
                               log = coalesce(log, '') || ? WHERE job_id = ?""",
                            [now, json.dumps({"exit_code": EXIT_INTERNAL, "message":
                                              f"interrupted {attempts} times (last: {who} stopped); not started again"}),
                             f"{now.isoformat()} interrupted: {who} stopped; {attempts} attempts, not started again\n",
                             job_id])
                interrupted.append(job_id)
            else:
                con.execute("""UPDATE jobs SET status = 'queued', owner = NULL, log = coalesce(log, '') || ?
                               WHERE job_id = ?""",
                            [f"{now.isoformat()} interrupted: {who} stopped while running it; queued again\n", job_id])
                requeued.append(job_id)
    return {"requeued": requeued, "interrupted": interrupted}


class Worker:
    """Runs the store's queued jobs one at a time, oldest first, in a thread of this process."""

    def __init__(self, store: Store, poll_s: float = 0.2) -> None:
        self.store = store
        self.poll_s = poll_s
        self.owner = current_owner().token()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.current: int | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="curate-jobs", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _claim(self) -> dict | None:
        with self.store.writer() as con:
            row = con.execute("SELECT job_id FROM jobs WHERE status = 'queued' ORDER BY job_id LIMIT 1").fetchone()
            if row is None:
                return None
            now = utcnow()
            got = con.execute(f"""UPDATE jobs SET status = 'running', owner = ?, heartbeat_at = ?, attempts = attempts + 1,
                                  started_at = coalesce(started_at, ?), log = coalesce(log, '') || ?
                                  WHERE job_id = ? AND status = 'queued' RETURNING {_COLUMNS}""",
                              [self.owner, now, now, f"{now.isoformat()} started by {Owner.parse(self.owner).describe()}\n",
                               row[0]]).fetchone()
        return _row(got) if got else None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self._claim()
            except Exception:  # noqa: BLE001  (the store busy for a while: try again, never die)
                job = None
            if job is None:
                self._wake.wait(self.poll_s)
                self._wake.clear()
                continue
            try:
                self._run(job)
            except Exception:  # noqa: BLE001  (its end could not be stored: a restart re-queues it; the worker goes on)
                _internal_log(self.store, job["job_id"], traceback.format_exc())
                self.current = None

    def _run(self, job: dict) -> None:
        self.current = job["job_id"]
        last = {"t": 0.0, "what": None}
        beat_stop = threading.Event()

        def beat() -> None:
            while not beat_stop.wait(HEARTBEAT_S):
                try:
                    with self.store.writer() as con:
                        con.execute("UPDATE jobs SET heartbeat_at = ? WHERE job_id = ?", [utcnow(), job["job_id"]])
                except Exception:  # noqa: BLE001, S112  (a missed heartbeat is retried at the next beat)
                    continue

        def progress(what: str, done: int, total: int, unit: str = "") -> None:
            now = time.monotonic()
            if what == last["what"] and now - last["t"] < 1.0 and done < total:
                return
            line = f"{utcnow().isoformat()} {what}\n" if what != last["what"] else ""
            last.update(t=now, what=what)
            try:
                with self.store.writer() as con:
                    con.execute("UPDATE jobs SET progress = ?, heartbeat_at = ?, log = coalesce(log, '') || ? "
                                "WHERE job_id = ?",
                                [json.dumps({"what": what, "done": done, "total": total, "unit": unit}), utcnow(), line,
                                 job["job_id"]])
            except Exception:  # noqa: BLE001  (progress is best effort; the job goes on)
                pass

        beater = threading.Thread(target=beat, daemon=True)
        beater.start()
        status, result, error = "done", None, None
        try:
            result = KINDS[job["kind"]].run(self.store, job["params"], progress)
        except CurateError as e:
            status, error = "failed", {"exit_code": e.exit_code, "kind": type(e).__name__, "message": str(e)}
        except Exception as e:  # noqa: BLE001  (a bug: the job fails with where to look, the worker goes on)
            log = _internal_log(self.store, job["job_id"], traceback.format_exc())
            status, error = "failed", {"exit_code": EXIT_INTERNAL, "kind": "InternalError",
                                       "message": f"internal error: {type(e).__name__}: {e} (traceback in {log})"}
        finally:
            beat_stop.set()
            beater.join()
        now = utcnow()
        line = f"{now.isoformat()} {status}" + (f": {error['message']}" if error else "") + "\n"
        for attempt in range(30):  # the store busy past its lock timeout: keep trying, the result is not dropped
            try:
                with self.store.writer() as con:
                    con.execute("""UPDATE jobs SET status = ?, finished_at = ?, result = ?, error = ?, owner = NULL,
                                   log = right(coalesce(log, '') || ?, 100000) WHERE job_id = ?""",
                                [status, now, json.dumps(result, default=str) if result is not None else None,
                                 json.dumps(error) if error else None, line, job["job_id"]])
                break
            except CurateError:
                if attempt == 29:
                    raise
                time.sleep(min(30.0, 2.0 ** attempt))
        self.current = None


def _internal_log(store: Store, job_id: int, text: str) -> Path:
    folder = store.path.parent / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"job-{job_id}-{int(time.time())}.log"
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------- the kinds
@kind("ingest", "lead")
def _ingest(store: Store, p: dict, progress: Progress) -> dict:
    from curation.ingest import FieldMapping, IngestOptions, ingest_paths

    opts = IngestOptions(format=p.get("format") or "auto", mapping=FieldMapping.parse(p.get("map") or None),
                         encoding=p.get("encoding"), source_name=p.get("source_name"))
    reports = ingest_paths(store, list(p["paths"]), opts, progress=progress)
    return {"batches": [r.model_dump() for r in reports]}


@kind("run", "lead")
def _run(store: Store, p: dict, progress: Progress) -> dict:
    from curation.pipeline import load_config
    from curation.pipeline.executor import run_pipeline
    from curation.report import write_report

    res = run_pipeline(store, load_config(p.get("config_path")), fresh=bool(p.get("fresh")), progress=progress)
    report = write_report(store, res.run_id)
    return {"run_id": res.run_id, "report": str(report)}


@kind("review_push", "lead")
def _review_push(store: Store, p: dict, progress: Progress) -> dict:
    from curation.review.backends import get_backend
    from curation.review.loop import push_review

    plan = {k: p[k] for k in ("reviews", "overlap", "seed", "target", "confidence", "rounds") if p.get(k) is not None}
    return push_review(store, int(p["snapshot_id"]), get_backend(p.get("backend") or "labelstudio", url=p.get("url")),
                       progress=progress, **plan)


@kind("review_pull", "lead")
def _review_pull(store: Store, p: dict, progress: Progress) -> dict:
    from curation.review.backends import get_backend
    from curation.review.loop import pull_review

    return pull_review(store, int(p["snapshot_id"]), get_backend(p.get("backend") or "labelstudio", url=p.get("url")))


@kind("export", "admin")
def _export(store: Store, p: dict, progress: Progress) -> dict:
    from curation.snapshots import export_snapshot

    res = export_snapshot(store, int(p["snapshot_id"]), hf=bool(p.get("hf", True)))
    return {"path": str(res.path), "manifest": res.manifest.model_dump(mode="json"), "warnings": res.warnings}


@kind("train", "admin")
def _train(store: Store, p: dict, progress: Progress) -> dict:
    from training.trainer import train_snapshot

    manifest = train_snapshot(store, int(p["snapshot_id"]), Path(p["model"]), set_=p.get("set") or [],
                              force=bool(p.get("force")))
    return {k: manifest.get(k) for k in ("snapshot_id", "content_hash", "metrics", "best_checkpoint", "train_eval_gap",
                                         "wall_seconds", "out")}


@kind("eval", "admin")
def _eval(store: Store, p: dict, progress: Progress) -> dict:
    from training.data import load_export
    from training.evaluate import GenerationSettings, evaluate_models
    from training.trainer import check_model_folder, snapshot_export_dir

    data = snapshot_export_dir(store, int(p["snapshot_id"]))
    check_model_folder(Path(p["model"]))
    out = Path(data) / "eval"
    res = evaluate_models(load_export(Path(data)), Path(p["model"]), [Path(a) for a in p.get("adapters") or []], out,
                          p.get("max_samples"), GenerationSettings(max_new_tokens=int(p.get("max_new_tokens") or 256)),
                          progress=progress)
    return {"results": str(out / "eval_results.json"),
            "models": {k: {m: v.get(m) for m in ("bleu4", "rougeL", "bertscore_f1", "eval_loss")}
                       for k, v in res["models"].items()}}
