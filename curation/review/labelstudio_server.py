"""Run a real local Label Studio: its own virtual environment (it pins many packages), SQLite, loopback.

``serve()`` is what ``curate review serve labelstudio`` runs; ``start()`` / ``LabelStudioProcess`` are
what the tests use (one server per test session). The admin user and the API token come from the
environment (``LABEL_STUDIO_USERNAME``, ``LABEL_STUDIO_PASSWORD``, ``LABEL_STUDIO_USER_TOKEN``) and reach
Label Studio through its environment only, never its command line (which every user of the machine can
read in ``ps``): Label Studio creates that user with that legacy token at its first start. Legacy tokens
are enabled, and the version check, analytics and error reporting (which would call out to the internet)
are off.

Label Studio runs in a process group of its own (so a Ctrl-C in the terminal reaches only ``serve``, which
then stops it in order). ``serve`` stops the whole group on SIGTERM, SIGINT (Ctrl-C), SIGHUP and on any
exit: SIGTERM, a grace period, then SIGKILL. On Linux the server also gets SIGTERM from the kernel when
the process that started it dies, even by SIGKILL, so it never outlives ``curate`` serving on its own.
"""

from __future__ import annotations

import contextlib
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
    if len(token) < 6:  # Label Studio ignores a token of 5 characters or fewer, and makes a random one
        raise UsageError("LABEL_STUDIO_USER_TOKEN must be at least 6 characters")
    return {k: os.environ[k] for k in CREDENTIAL_ENV}


def server_env(data_dir: Path, creds: dict[str, str]) -> dict[str, str]:
    """The environment Label Studio starts with: the credentials, SQLite under ``data_dir``, legacy tokens on,
    no calls out."""
    # Label Studio reads LABEL_STUDIO_X, then HEARTEX_X, then bare X: a stray one changes its behaviour
    read = {"USERNAME", "PASSWORD", "USER_TOKEN", "HOST", "PORT", "DEBUG"}
    stray = read | {"HEARTEX_" + k for k in read}
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


def server_command(exe: Path, host: str, port: int, data_dir: Path) -> list[str]:
    """Label Studio's command line: no secret on it (``server_env`` carries the credentials)."""
    return [str(exe), "start", "--no-browser", "--internal-host", host, "--port", str(port),
            "--data-dir", str(data_dir), "--enable-legacy-api-token"]


def wait_ready(url: str, timeout: float, proc: subprocess.Popen | None = None, log: Path | None = None,
               path: str = "/health", name: str = "Label Studio") -> None:
    """Poll ``url + path`` until it answers 200, the process dies, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise ExternalServiceError(f"{name} exited with code {proc.returncode} while starting:\n{tail}")
        try:
            with urllib.request.urlopen(f"{url}{path}", timeout=5) as r:  # noqa: S310 (our own loopback URL)
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1.0)
    raise ExternalServiceError(f"{name} at {url} did not answer within {timeout:.0f} s"
                               + (f" (log: {log})" if log else ""))


def _check_port_free(host: str, port: int) -> None:
    """Label Studio silently moves to the next port when its port is taken: refuse instead (Argilla's too)."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        if os.name != "nt":  # as servers bind: a port whose last connections wait out TIME_WAIT is free
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            s.listen()
        except OSError as e:
            raise UsageError(f"{host}:{port} is in use ({e.strerror}): stop what holds it, or choose --port") from e


def stop_group(proc: subprocess.Popen, grace: float = 20.0) -> None:
    """Stop ``proc`` and its process group (``proc`` leads it): SIGTERM, up to ``grace`` seconds, then SIGKILL.

    Returns once the leader is reaped and the group is empty (or after a last SIGKILL to what is left).
    """
    pgid = proc.pid

    def group_alive() -> bool:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # a member we may not signal (cannot happen for our own children)
            return True
        return True

    def signal_group(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)

    if proc.poll() is None or group_alive():
        signal_group(signal.SIGTERM)
    deadline = time.monotonic() + grace
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(max(0.0, deadline - time.monotonic()))
    while group_alive() and time.monotonic() < deadline:  # members other than the leader
        time.sleep(0.1)
    if proc.poll() is None or group_alive():
        signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        end = time.monotonic() + 10
        while group_alive() and time.monotonic() < end:
            time.sleep(0.1)


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

    def stop(self, grace: float = 20.0) -> None:
        """Stop the server (its whole process group): SIGTERM, ``grace`` seconds, then SIGKILL."""
        stop_group(self.proc, grace)


# Run as ``python -c _DIE_WITH_PARENT PARENT_PID CMD...``: asks Linux for SIGTERM when the thread that started it
# ends (PR_SET_PDEATHSIG, kept across exec), stops at once if that parent is already gone, then becomes CMD.
_DIE_WITH_PARENT = """
import os, signal, sys
try:
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)
except (OSError, AttributeError):
    pass
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)
os.execvp(sys.argv[2], sys.argv[2:])
"""


def die_with_parent(cmd: list[str]) -> list[str]:
    """``cmd`` wrapped so that, on Linux, it gets SIGTERM when the thread that starts it exits (so a server never
    outlives a ``curate`` killed by SIGKILL). The child asks for the signal itself, in a small Python before it
    becomes ``cmd``: a ``preexec_fn`` would run Python between fork and exec in this process, which crashes
    (SIGSEGV) when other threads hold locks, as DuckDB's and the API's do."""
    if not sys.platform.startswith("linux"):
        return list(cmd)
    return [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), *cmd]


def start(data_dir: Path, host: str = "127.0.0.1", port: int = 8080, venv: Path | None = None,
          timeout: float = 600.0, console=None) -> LabelStudioProcess:  # noqa: ANN001
    """Start Label Studio in the background, in a process group of its own, and wait until it answers; output
    goes to ``data_dir/server.log``. The credentials go through its environment only.

    On Linux the server gets SIGTERM when the thread that called ``start`` exits: call it from the main thread
    (or from a thread that lives as long as the server should).
    """
    creds = credentials()
    _check_port_free(host, port)
    exe = ensure_venv(venv, console)
    data_dir = Path(data_dir).absolute()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "server.log"
    env = server_env(data_dir, creds)
    cmd = server_command(exe, host, port, data_dir)
    url = f"http://{host}:{port}"
    t0 = time.monotonic()
    proc = None
    try:
        with open(log, "ab") as f:
            proc = subprocess.Popen(die_with_parent(cmd), stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, cwd=data_dir, start_new_session=True)
        server = LabelStudioProcess(url, creds["LABEL_STUDIO_USERNAME"], proc, data_dir, log, env=env)
        wait_ready(url, timeout, proc, log)
    except BaseException:
        if proc is not None:
            stop_group(proc)
        raise
    server.started_in = time.monotonic() - t0
    return server


class _Stop(Exception):  # noqa: N818 (a request, not an error)
    """A signal asked ``serve`` to stop."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def _stop_on_signals(signums: tuple[int, ...]):  # noqa: ANN202
    """While inside, each of ``signums`` raises :class:`_Stop` in the main thread; the old handlers come back after."""
    def handler(signum: int, _frame) -> None:  # noqa: ANN001
        for s in signums:  # once: a second signal must not cut the stopping short and leave the server behind
            signal.signal(s, signal.SIG_IGN)
        raise _Stop(signum)

    old = {}
    try:
        for s in signums:
            old[s] = signal.signal(s, handler)
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def serve(host: str, port: int, data_dir: Path, venv: Path | None = None, console=None) -> None:  # noqa: ANN001
    """Start Label Studio, print where and how to log in, and keep it running until interrupted.

    SIGTERM, SIGINT (Ctrl-C) and SIGHUP stop it, and so does any exit: the server's process group gets
    SIGTERM, then SIGKILL after a grace period; this returns once it is gone.
    """
    say = console.print if console else print
    if host not in ("127.0.0.1", "localhost", "::1"):
        say(f"[yellow]warning:[/] binding {host}: Label Studio will be reachable from other machines")
    signums = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, n))
    server = None
    with _stop_on_signals(signums):
        try:
            server = start(data_dir, host, port, venv, console=console)
            say(f"Label Studio is up at [bold]{server.url}[/] (started in {server.started_in:.0f} s)\n"
                f"  login: {server.username} (password: LABEL_STUDIO_PASSWORD)\n"
                f"  API token for `curate review push`: LABEL_STUDIO_USER_TOKEN, e.g. export "
                f"CURATE_LABEL_STUDIO_TOKEN=\"$LABEL_STUDIO_USER_TOKEN\" CURATE_LABEL_STUDIO_URL={server.url}\n"
                f"  data: {server.data_dir}   log: {server.log}\n"
                "Ctrl-C (or SIGTERM) stops it.")
            while server.proc.poll() is None:
                time.sleep(0.5)
            raise ExternalServiceError(f"Label Studio exited with code {server.proc.returncode}; see {server.log}")
        except (_Stop, KeyboardInterrupt) as e:
            say(f"stopping Label Studio ({e if isinstance(e, _Stop) else 'SIGINT'})")
        finally:
            if server is not None:
                for s in signums:  # nothing may cut the stopping short
                    signal.signal(s, signal.SIG_IGN)
                server.stop()
