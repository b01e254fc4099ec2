"""`curate review serve labelstudio` as a user runs it: a real subprocess that starts a real Label Studio.

The admin password and API token reach Label Studio through its environment only: no process of the tree
has them on its command line (which every user of the machine can read in `ps`). SIGTERM or SIGINT (Ctrl-C)
to `curate` stops Label Studio with it: the port is free and no child is left. One server start per signal.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from curation.review.labelstudio_server import server_command
from tests.conftest import REPO, _free_port

CURATE = Path(sys.executable).parent / "curate"
START_TIMEOUT = 600.0  # Label Studio's first start (migrations on a new SQLite) takes 20-60 s on 2 cores
STOP_TIMEOUT = 60.0  # serve's grace period is 20 s, then SIGKILL


def _listeners(port: int) -> list:
    return [c for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port]


def _port_free(port: int) -> bool:
    """Nothing listens on ``port`` and a server could bind it again (as servers do, with SO_REUSEADDR: the
    connections this test made may wait out TIME_WAIT)."""
    if _listeners(port):
        return False
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
        return True


def _until(pred, timeout: float, step: float = 0.2) -> bool:  # noqa: ANN001
    """Poll ``pred`` until it is true (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


def _answers(url: str, token: str | None = None) -> int | None:
    """The HTTP status of ``url`` (None while nothing answers)."""
    req = urllib.request.Request(url, headers={"Authorization": f"Token {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:  # noqa: S310 (our own loopback URL)
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, OSError):
        return None


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_label_studio_command_line_has_no_secrets() -> None:
    cmd = server_command(Path("/x/label-studio"), "127.0.0.1", 8080, Path("/data"))
    assert not {"--password", "--user-token", "--username"} & set(cmd)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_keeps_secrets_off_command_lines_and_stops_label_studio_with_it(sig: int, tmp_path: Path) -> None:
    password, token = "pw-" + secrets.token_urlsafe(16), secrets.token_hex(20)
    env = {**os.environ, "LABEL_STUDIO_USERNAME": "lead@example.com", "LABEL_STUDIO_PASSWORD": password,
           "LABEL_STUDIO_USER_TOKEN": token}
    env.setdefault("CURATE_LABEL_STUDIO_VENV", str(REPO / ".venv-labelstudio"))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    cmd = [str(CURATE), "--db", str(tmp_path / "store" / "curate.duckdb"), "review", "serve", "labelstudio",
           "--port", str(port), "--data-dir", str(tmp_path / "labelstudio")]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                cwd=tmp_path)
    seen: list[psutil.Process] = []
    try:
        up = _until(lambda: proc.poll() is not None or _answers(f"{url}/health") == 200, START_TIMEOUT, step=1.0)
        assert up and proc.poll() is None, f"serve did not come up (exit {proc.returncode}):\n{log.read_text()[-3000:]}"
        # the credentials reached Label Studio (the token is accepted), through its environment only
        assert _answers(f"{url}/api/current-user/whoami", token) == 200
        root = psutil.Process(proc.pid)
        seen = [root, *root.children(recursive=True)]
        cmdlines = {p.pid: Path(f"/proc/{p.pid}/cmdline").read_bytes() for p in seen}
        assert any(b"label-studio" in c for c in cmdlines.values()), cmdlines
        for pid, c in cmdlines.items():
            assert password.encode() not in c and token.encode() not in c, (pid, c.replace(b"\0", b" "))
        # Label Studio has a process group of its own (a Ctrl-C in the terminal reaches only curate)
        assert all(os.getpgid(p.pid) != os.getpgid(proc.pid) for p in seen[1:])

        proc.send_signal(sig)
        assert _until(lambda: proc.poll() is not None, STOP_TIMEOUT), "curate did not exit"
        assert proc.returncode == 0, log.read_text()[-3000:]
        assert "stopping Label Studio" in log.read_text()
        assert _until(lambda: _port_free(port), 10.0), f"port {port} still taken after curate exited: {_listeners(port)}"
        assert _until(lambda: not any(_alive(p) for p in seen[1:]), 10.0), \
            [p.pid for p in seen[1:] if _alive(p)]
    finally:  # never leave a server behind, whatever failed (only the processes this test started)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for p in seen[1:]:
            if _alive(p):
                p.kill()


def test_serve_argilla_keeps_secrets_off_command_lines_and_stops_server_worker_and_redis(tmp_path: Path) -> None:
    """`curate review serve argilla`: server, worker and Redis come up (the API key is accepted), no process of the
    tree shows the password or the key, and SIGTERM to curate stops all three (the port free, no child left)."""
    password, key = "pw-" + secrets.token_urlsafe(16), secrets.token_urlsafe(24)
    env = {**os.environ, "ARGILLA_USERNAME": "lead", "ARGILLA_PASSWORD": password, "ARGILLA_API_KEY": key}
    env.setdefault("CURATE_ARGILLA_VENV", str(REPO / ".venv-argilla"))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    cmd = [str(CURATE), "--db", str(tmp_path / "store" / "curate.duckdb"), "review", "serve", "argilla",
           "--port", str(port), "--data-dir", str(tmp_path / "argilla")]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                cwd=tmp_path)
    seen: list[psutil.Process] = []
    try:
        up = _until(lambda: proc.poll() is not None or _answers(f"{url}/api/v1/status") == 200, START_TIMEOUT, step=1.0)
        assert up and proc.poll() is None, f"serve did not come up (exit {proc.returncode}):\n{log.read_text()[-3000:]}"
        req = urllib.request.Request(f"{url}/api/v1/me", headers={"X-Argilla-Api-Key": key})
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310 (our own loopback URL)
            assert r.status == 200
        root = psutil.Process(proc.pid)
        seen = [root, *root.children(recursive=True)]
        cmdlines = {p.pid: Path(f"/proc/{p.pid}/cmdline").read_bytes() for p in seen}
        joined = b" ".join(cmdlines.values())
        assert b"redis-server" in joined and b" worker" in joined.replace(b"\0", b" ") and b"start" in joined
        for pid, c in cmdlines.items():
            assert password.encode() not in c and key.encode() not in c, (pid, c.replace(b"\0", b" "))
        proc.send_signal(signal.SIGTERM)
        assert _until(lambda: proc.poll() is not None, STOP_TIMEOUT * 2), "curate did not exit"
        assert proc.returncode == 0, log.read_text()[-3000:]
        assert "stopping Argilla" in log.read_text()
        assert _until(lambda: _port_free(port), 10.0), f"port {port} still taken after curate exited: {_listeners(port)}"
        assert _until(lambda: not any(_alive(p) for p in seen[1:]), 10.0), [p.pid for p in seen[1:] if _alive(p)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for p in seen[1:]:
            if _alive(p):
                p.kill()
