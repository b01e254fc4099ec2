"""Models served by the service: ``curate serve`` processes the API starts, lists and stops (``/v1/servers``).

Each is the CLI's own command (the CPU engine, or vLLM with ``engine = "vllm"``) on 127.0.0.1 and a free port,
its output in ``<store folder>/servers/<id>.log``. They are children of the service: started from one long-lived
thread, with Linux's parent-death signal, so that none outlives a killed service; stopping the service stops them.
They are not restarted with the service (a served model holds no state of the store's): start them again.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from curation.errors import UsageError


@dataclass
class Served:
    server_id: int
    model: str
    adapters: dict[str, str]
    engine: str
    url: str
    log: Path
    proc: subprocess.Popen
    started_at: float = field(default_factory=time.time)

    def status(self) -> dict:
        code = self.proc.poll()
        state = "exited" if code is not None else "starting"
        if code is None:
            import httpx

            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    state = "running"
            except httpx.HTTPError:
                pass
        return {"server_id": self.server_id, "state": state, "exit_code": code, "url": self.url, "model": self.model,
                "adapters": self.adapters, "engine": self.engine, "pid": self.proc.pid,
                "uptime_s": round(time.time() - self.started_at, 1)}


class Servers:
    """The served models of one service."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._ids = itertools.count(1)
        self._served: dict[int, Served] = {}
        self._lock = threading.Lock()
        self._spawns: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._spawner, name="curate-servers", daemon=True)
        self._thread.start()

    def _spawner(self) -> None:
        """Starts every server from this one thread: the parent-death signal follows the thread that forked.

        The signal is asked for by the child itself (``die_with_parent``): no Python runs between fork and exec in
        this process, whose other threads (DuckDB's, the worker's) may hold locks."""
        from curation.review.labelstudio_server import die_with_parent

        while True:
            cmd, log, fut = self._spawns.get()
            if cmd is None:
                return
            try:
                with open(log, "ab") as f:
                    fut.set_result(subprocess.Popen(
                        die_with_parent(cmd), stdout=f, stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL, start_new_session=True,
                        env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}))
            except Exception as e:  # noqa: BLE001  (handed to the caller)
                fut.set_exception(e)

    def start(self, model: str, adapters: dict[str, str], engine: str = "cpu", quantization: str | None = None) -> dict:
        if not Path(model).is_dir():
            raise UsageError(f"model {model}: not a folder on the service's machine")
        for name, path in adapters.items():
            if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
                raise UsageError(f"adapter name {name!r}: letters, digits, '-', '_' and '.' only")
            if not (Path(path) / "adapter_config.json").is_file():
                raise UsageError(f"adapter {path}: no adapter_config.json (a folder written by curate train)")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server_id = next(self._ids)
        self.folder.mkdir(parents=True, exist_ok=True)
        log = self.folder / f"server-{server_id}.log"
        cmd = [sys.executable, "-m", "curation", "serve", "--model", model, "--engine", engine, "--host", "127.0.0.1",
               "--port", str(port)]
        for name, path in adapters.items():
            cmd += ["--adapter", f"{name}={path}"]
        if quantization:
            cmd += ["--quantization", quantization]
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._spawns.put((cmd, log, fut))
        served = Served(server_id, model, dict(adapters), engine, f"http://127.0.0.1:{port}", log, fut.result(60))
        with self._lock:
            self._served[server_id] = served
        return served.status()

    def get(self, server_id: int) -> Served | None:
        with self._lock:
            return self._served.get(server_id)

    def list(self) -> list[dict]:
        with self._lock:
            served = list(self._served.values())
        return [s.status() for s in served]

    def stop(self, server_id: int, grace: float = 20.0) -> dict | None:
        with self._lock:
            served = self._served.pop(server_id, None)
        if served is None:
            return None
        from curation.review.labelstudio_server import stop_group

        stop_group(served.proc, grace) if served.proc.poll() is None else None
        return served.status()

    def stop_all(self) -> None:
        for server_id in [s["server_id"] for s in self.list()]:
            self.stop(server_id, grace=10.0)
        self._spawns.put((None, None, None))
