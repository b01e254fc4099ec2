"""Run a real local Label Studio: its own virtual environment (it pins many packages), SQLite, loopback.

``serve()`` is what ``curate review serve labelstudio`` runs; ``start()`` / ``LabelStudioProcess`` are
what the tests use (one server per test session). The admin user and the API token come from the
environment (``LABEL_STUDIO_USERNAME``, ``LABEL_STUDIO_PASSWORD``, ``LABEL_STUDIO_USER_TOKEN``): Label
Studio creates that user with that legacy token at its first start. Legacy tokens are enabled, and the
version check, analytics and error reporting (which would call out to the internet) are off.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from curation.errors import ExternalServiceError, UsageError

LABEL_STUDIO_VERSION = "1.23.2"
VENV_ENV = "CURATE_LABEL_STUDIO_VENV"
DEFAULT_VENV = ".venv-labelstudio"
CREDENTIAL_ENV = ("LABEL_STUDIO_USERNAME", "LABEL_STUDIO_PASSWORD", "LABEL_STUDIO_USER_TOKEN")


def venv_path(venv: Path | None = None) -> Path:
    """The Label Studio virtual environment: ``venv``, env ``CURATE_LABEL_STUDIO_VENV``, else ``.venv-labelstudio``."""
    return Path(venv or os.environ.get(VENV_ENV) or DEFAULT_VENV).absolute()


def _exe(venv: Path) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin") / "label-studio"


def ensure_venv(venv: Path | None = None, console=None) -> Path:  # noqa: ANN001
    """Create the virtual environment and install Label Studio into it when missing; returns its executable."""
    venv = venv_path(venv)
    exe = _exe(venv)
    if exe.exists():
        return exe
    say = console.print if console else (lambda *a, **k: None)
    say(f"installing Label Studio {LABEL_STUDIO_VERSION} into {venv} (once; a few minutes)")
    py = venv / "bin" / "python"
    steps = ([sys.executable, "-m", "venv", str(venv)],
             [str(py), "-m", "pip", "install", "-q", "--upgrade", "pip"],
             [str(py), "-m", "pip", "install", "-q", f"label-studio=={LABEL_STUDIO_VERSION}"])
    for cmd in steps:
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise ExternalServiceError(f"installing Label Studio failed ({' '.join(cmd[-2:])}):\n{res.stderr[-2000:]}")
    if not exe.exists():
        raise ExternalServiceError(f"Label Studio installed, but {exe} is missing")
    return exe


def credentials() -> dict[str, str]:
    """Admin user, password and token from the environment; a clear error naming what is missing."""
    missing = [k for k in CREDENTIAL_ENV if not os.environ.get(k)]
    if missing:
        raise UsageError(f"set {', '.join(missing)} in the environment: Label Studio creates its admin user with "
                         "them at its first start (the token is the API key `curate review push` uses)")
    token = os.environ["LABEL_STUDIO_USER_TOKEN"]
    if len(token) < 5:
        raise UsageError("LABEL_STUDIO_USER_TOKEN must be at least 5 characters")
    return {k: os.environ[k] for k in CREDENTIAL_ENV}


def server_env(data_dir: Path, creds: dict[str, str]) -> dict[str, str]:
    """The environment Label Studio starts with: SQLite under ``data_dir``, legacy tokens on, no calls out."""
    # Label Studio also reads bare USERNAME / PASSWORD / HOST / PORT / DEBUG: a stray one changes its behaviour
    stray = {"USERNAME", "PASSWORD", "HOST", "PORT", "DEBUG", "USER_TOKEN"}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON")) and k not in stray}
    env.update(creds)
    env.update({
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "DJANGO_DB": "sqlite",
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        "LATEST_VERSION_CHECK": "false",
        "LABEL_STUDIO_LATEST_VERSION_CHECK": "false",
        "COLLECT_ANALYTICS": "false",
        "LABEL_STUDIO_COLLECT_ANALYTICS": "false",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
        "SENTRY_RATE": "0",
    })
    return env


def wait_ready(url: str, timeout: float, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    """Poll ``/health`` until it answers 200, the process dies, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise ExternalServiceError(f"Label Studio exited with code {proc.returncode} while starting:\n{tail}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as r:  # noqa: S310 (our own loopback URL)
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1.0)
    raise ExternalServiceError(f"Label Studio at {url} did not answer within {timeout:.0f} s"
                               + (f" (log: {log})" if log else ""))


def _check_port_free(host: str, port: int) -> None:
    """Label Studio silently moves to the next port when its port is taken: refuse instead."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError as e:
            raise UsageError(f"{host}:{port} is in use ({e.strerror}): stop what holds it, or choose --port") from e


@dataclass
class LabelStudioProcess:
    """A running Label Studio."""

    url: str
    username: str
    proc: subprocess.Popen
    data_dir: Path
    log: Path
    started_in: float = 0.0
    env: dict = field(default_factory=dict, repr=False)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server (its whole process group)."""
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)


def start(data_dir: Path, host: str = "127.0.0.1", port: int = 8080, venv: Path | None = None,
          timeout: float = 600.0, console=None) -> LabelStudioProcess:  # noqa: ANN001
    """Start Label Studio in the background and wait until it answers; output goes to ``data_dir/server.log``."""
    creds = credentials()
    _check_port_free(host, port)
    exe = ensure_venv(venv, console)
    data_dir = Path(data_dir).absolute()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "server.log"
    env = server_env(data_dir, creds)
    cmd = [str(exe), "start", "--no-browser", "--internal-host", host, "--port", str(port),
           "--data-dir", str(data_dir), "--username", creds["LABEL_STUDIO_USERNAME"],
           "--password", creds["LABEL_STUDIO_PASSWORD"], "--user-token", creds["LABEL_STUDIO_USER_TOKEN"],
           "--enable-legacy-api-token"]
    t0 = time.monotonic()
    with open(log, "ab") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=data_dir,
                                start_new_session=True)
    url = f"http://{host}:{port}"
    server = LabelStudioProcess(url, creds["LABEL_STUDIO_USERNAME"], proc, data_dir, log, env=env)
    try:
        wait_ready(url, timeout, proc, log)
    except BaseException:
        server.stop()
        raise
    server.started_in = time.monotonic() - t0
    return server


def serve(host: str, port: int, data_dir: Path, venv: Path | None = None, console=None) -> None:  # noqa: ANN001
    """Start Label Studio, print where and how to log in, and keep it running until interrupted."""
    say = console.print if console else print
    if host not in ("127.0.0.1", "localhost", "::1"):
        say(f"[yellow]warning:[/] binding {host}: Label Studio will be reachable from other machines")
    server = start(data_dir, host, port, venv, console=console)
    say(f"Label Studio is up at [bold]{server.url}[/] (started in {server.started_in:.0f} s)\n"
        f"  login: {server.username} (password: LABEL_STUDIO_PASSWORD)\n"
        f"  API token for `curate review push`: LABEL_STUDIO_USER_TOKEN, e.g. export "
        f"CURATE_LABEL_STUDIO_TOKEN=\"$LABEL_STUDIO_USER_TOKEN\" CURATE_LABEL_STUDIO_URL={server.url}\n"
        f"  data: {server.data_dir}   log: {server.log}\n"
        "Ctrl-C stops it.")
    try:
        while server.proc.poll() is None:
            time.sleep(1.0)
        raise ExternalServiceError(f"Label Studio exited with code {server.proc.returncode}; see {server.log}")
    except KeyboardInterrupt:
        say("stopping Label Studio")
    finally:
        server.stop()
