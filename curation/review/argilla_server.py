"""Run a real local Argilla (argilla-server 2.8) on one machine: its own virtual environment, SQLite for its
database, the embedded search engine (``argilla_search/``: SQLite FTS5 and numpy, no Elasticsearch), and Redis
(Debian's ``redis-server``) beside it, all on 127.0.0.1.

``serve()`` is what ``curate review serve argilla`` runs; ``start()`` / ``ArgillaProcess`` are what the tests
use. Each start: Redis on a free loopback port (no persistence: Argilla keeps only its job queue there), the
database migrated, the owner account made or brought up to date from the environment (``ARGILLA_USERNAME``,
``ARGILLA_PASSWORD``, ``ARGILLA_API_KEY``; placeholder secrets such as Argilla's own defaults are refused),
then the server and one background worker. Secrets travel through the environment only, never a command
line. Every process runs in a process group of its own and gets SIGTERM when the thread that started it
exits (Linux), so nothing outlives ``curate``. Argilla copies its web UI into a fresh temporary folder at every
start: ``TMPDIR`` is a folder of the data directory, emptied at each start.

Limits: one server process and one worker; the search engine reads a whole dataset per search (see the
README for the size it was measured at). Production runs Elasticsearch (compose.yaml).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from curation.errors import ExternalServiceError, UsageError
from curation.review.labelstudio_server import _check_port_free, _stop_on_signals, die_with_parent, _Stop, stop_group, \
    wait_ready

ARGILLA_SERVER_VERSION = "2.8.0"
VENV_ENV = "CURATE_ARGILLA_VENV"
DEFAULT_VENV = ".venv-argilla"
CREDENTIAL_ENV = ("ARGILLA_USERNAME", "ARGILLA_PASSWORD", "ARGILLA_API_KEY")
ENGINE_NAME = "curate-sqlite"
PLUGIN_DIR = Path(__file__).resolve().parent / "argilla_search"
# Argilla's documented defaults and the usual stand-ins: a server started with one of them is open to anyone
PLACEHOLDERS = {"argilla", "1234", "12345678", "argilla.apikey", "owner.apikey", "admin.apikey", "password",
                "changeme", "change-me", "secret", "admin", "owner", "apikey", "api_key", "test"}
MIN_PASSWORD, MIN_API_KEY = 8, 16


def venv_path(venv: Path | None = None) -> Path:
    """Argilla's virtual environment: ``venv``, env ``CURATE_ARGILLA_VENV``, else ``.venv-argilla``."""
    return Path(venv or os.environ.get(VENV_ENV) or DEFAULT_VENV).absolute()


def ensure_venv(venv: Path | None = None, console=None) -> Path:  # noqa: ANN001
    """Create the virtual environment and install argilla-server into it when missing; returns its python."""
    venv = venv_path(venv)
    py = venv / "bin" / "python"
    if py.exists() and subprocess.run([str(py), "-c", "import argilla_server"], capture_output=True).returncode == 0:
        return py
    say = console.print if console else (lambda *a, **k: None)
    say(f"installing argilla-server {ARGILLA_SERVER_VERSION} into {venv} (once; about a minute)")
    # argilla-server pins old dependencies; its typer needs click < 8.2
    steps = ([sys.executable, "-m", "venv", "--clear", str(venv)],
             [str(py), "-m", "pip", "install", "-q", "--upgrade", "pip"],
             [str(py), "-m", "pip", "install", "-q", f"argilla-server=={ARGILLA_SERVER_VERSION}", "click<8.2"])
    for cmd in steps:
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise ExternalServiceError(f"installing argilla-server failed ({' '.join(cmd[-2:])}):\n{res.stderr[-2000:]}")
    return py


def credentials() -> dict[str, str]:
    """The owner's username, password and API key from the environment; missing or placeholder ones refused."""
    missing = [k for k in CREDENTIAL_ENV if not os.environ.get(k)]
    if missing:
        raise UsageError(f"set {', '.join(missing)} in the environment: the Argilla owner account is made from them "
                         "(the API key is what `curate review push --backend argilla` uses)")
    creds = {k: os.environ[k] for k in CREDENTIAL_ENV}
    for key, least in (("ARGILLA_PASSWORD", MIN_PASSWORD), ("ARGILLA_API_KEY", MIN_API_KEY)):
        value = creds[key]
        if value.lower() in PLACEHOLDERS or len(value) < least or len(set(value)) < 4:
            raise UsageError(f"{key} is a placeholder or too weak (at least {least} characters, not a default such as "
                             f"'argilla.apikey' or '1234'): generate one, e.g. python -c 'import secrets; "
                             "print(secrets.token_urlsafe(24))'")
    return creds


def redis_server() -> str:
    """The ``redis-server`` executable; a clear error naming the package when it is missing."""
    exe = shutil.which("redis-server") or next((p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server")
                                                 if os.path.exists(p)), None)
    if exe is None:
        raise UsageError("Argilla needs Redis, and redis-server is not installed: apt-get install redis-server "
                         "(Debian, Ubuntu), or your system's redis package")
    return exe


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def server_env(data_dir: Path, creds: dict[str, str], redis_url: str) -> dict[str, str]:
    """The environment of Argilla's processes: SQLite under ``data_dir``, the embedded search engine, Redis,
    no telemetry and no hub, the owner's credentials (read by ``curate_argilla.py owner`` only)."""
    stray = ("ARGILLA_ELASTICSEARCH", "ARGILLA_SEARCH_ENGINE", "ARGILLA_DATABASE_URL", "ARGILLA_HOME_PATH",
             "ARGILLA_REDIS_URL", "VIRTUAL_ENV", "PYTHONHOME")
    env = {k: v for k, v in os.environ.items() if not k.startswith(stray)}
    env.update(creds)
    tmp = data_dir / "tmp"
    env.update({
        "ARGILLA_HOME_PATH": str(data_dir),
        "ARGILLA_DATABASE_URL": f"sqlite+aiosqlite:///{data_dir / 'argilla.db'}?check_same_thread=False",
        "ARGILLA_SEARCH_ENGINE": ENGINE_NAME,
        "CURATE_ARGILLA_SEARCH_DB": str(data_dir / "search.sqlite3"),
        "ARGILLA_REDIS_URL": redis_url,
        "ARGILLA_ENABLE_TELEMETRY": "false",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(PLUGIN_DIR),
        "TMPDIR": str(tmp),
        "ARGILLA_WORKSPACE": env.get("ARGILLA_WORKSPACE", "curate"),
    })
    return env


@dataclass
class ArgillaProcess:
    """A running Argilla: server, worker and Redis, each in a process group of its own."""

    url: str
    username: str
    data_dir: Path
    log: Path
    procs: list[subprocess.Popen] = field(default_factory=list)
    started_in: float = 0.0

    @property
    def proc(self) -> subprocess.Popen:
        """The server process."""
        return self.procs[-1]

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def stop(self, grace: float = 20.0) -> None:
        """Stop the server, the worker, then Redis (each group: SIGTERM, ``grace`` seconds, then SIGKILL)."""
        for p in reversed(self.procs):
            stop_group(p, grace)


def _spawn(cmd: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen:
    with open(log, "ab") as f:
        return subprocess.Popen(die_with_parent(cmd), stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=cwd, start_new_session=True)


def _wait_redis(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ExternalServiceError(f"redis-server exited with code {proc.returncode} while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise ExternalServiceError(f"redis-server did not answer on 127.0.0.1:{port} within {timeout:.0f} s")


def start(data_dir: Path, host: str = "127.0.0.1", port: int = 6900, venv: Path | None = None,
          timeout: float = 300.0, console=None) -> ArgillaProcess:  # noqa: ANN001
    """Start Redis, migrate, make the owner, start Argilla's server and worker; wait until it answers.

    On Linux every process gets SIGTERM when the thread that called ``start`` exits: call it from the main
    thread (or one that lives as long as the server should). Logs go to ``data_dir/server.log``.
    """
    creds = credentials()
    _check_port_free(host, port)
    redis_exe = redis_server()
    py = ensure_venv(venv, console)
    data_dir = Path(data_dir).absolute()
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(data_dir / "tmp", ignore_errors=True)  # Argilla's copies of its web UI, one per start
    (data_dir / "tmp").mkdir()
    log = data_dir / "server.log"
    launcher = str(PLUGIN_DIR / "curate_argilla.py")
    t0 = time.monotonic()
    procs: list[subprocess.Popen] = []
    try:
        redis_port = _free_port("127.0.0.1")
        redis = _spawn([redis_exe, "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "", "--appendonly", "no",
                        "--dir", str(data_dir)], dict(os.environ), data_dir / "redis.log", data_dir)
        procs.append(redis)
        _wait_redis(redis_port, redis)
        env = server_env(data_dir, creds, f"redis://127.0.0.1:{redis_port}/0")
        for step in (["database", "migrate"], ["owner"]):
            res = subprocess.run([str(py), launcher, *step], env=env, cwd=data_dir, capture_output=True, text=True,
                                 check=False, timeout=600)
            with open(log, "a", encoding="utf-8") as f:
                f.write(res.stdout + res.stderr)
            if res.returncode != 0:
                raise ExternalServiceError(f"Argilla's {' '.join(step)} failed (code {res.returncode}):\n"
                                           f"{(res.stdout + res.stderr)[-2000:]}")
        procs.append(_spawn([str(py), launcher, "worker", "--num-workers", "1"], env, data_dir / "worker.log", data_dir))
        procs.append(_spawn([str(py), launcher, "start", "--host", host, "--port", str(port)], env, log, data_dir))
        url = f"http://{host}:{port}"
        server = ArgillaProcess(url, creds["ARGILLA_USERNAME"], data_dir, log, procs)
        wait_ready(url, timeout, server.proc, log, path="/api/v1/status", name="Argilla")
    except BaseException:
        for p in reversed(procs):
            stop_group(p)
        raise
    server.started_in = time.monotonic() - t0
    return server


def serve(host: str, port: int, data_dir: Path, venv: Path | None = None, console=None) -> None:  # noqa: ANN001
    """Start Argilla, print where and how to log in, and keep it running until interrupted (SIGTERM, SIGINT,
    SIGHUP); then stop the server, the worker and Redis."""
    import signal

    say = console.print if console else print
    if host not in ("127.0.0.1", "localhost", "::1"):
        say(f"[yellow]warning:[/] binding {host}: Argilla will be reachable from other machines")
    signums = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, n))
    server = None
    with _stop_on_signals(signums):
        try:
            server = start(data_dir, host, port, venv, console=console)
            say(f"Argilla is up at [bold]{server.url}[/] (started in {server.started_in:.0f} s; search: the embedded "
                f"engine, no Elasticsearch)\n"
                f"  login: {server.username} (password: ARGILLA_PASSWORD)\n"
                f"  API key for `curate review push --backend argilla`: ARGILLA_API_KEY, e.g. export "
                f"CURATE_ARGILLA_URL={server.url} CURATE_ARGILLA_API_KEY=\"$ARGILLA_API_KEY\"\n"
                f"  data: {server.data_dir}   log: {server.log}\n"
                "Ctrl-C (or SIGTERM) stops it.")
            while server.alive():
                time.sleep(0.5)
            dead = next(p for p in server.procs if p.poll() is not None)
            raise ExternalServiceError(f"an Argilla process ({' '.join(map(str, dead.args[1:3]))}) exited with code "
                                       f"{dead.returncode}; see {server.log}")
        except (_Stop, KeyboardInterrupt) as e:
            say(f"stopping Argilla ({e if isinstance(e, _Stop) else 'SIGINT'})")
        finally:
            if server is not None:
                for s in signums:
                    signal.signal(s, signal.SIG_IGN)
                server.stop()
