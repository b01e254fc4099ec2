"""Reviewer accounts that can log in to the review tool: ``curate review users add|list``.

* Argilla: a user made through the SDK with a role (annotator, or ``lead`` = Argilla's admin) and a member of
  the workspace; the password is Argilla's own, so the account logs in to the web UI.
* Label Studio Community ignores a password given through its API (accounts made that way cannot log in), so
  the account is made by Label Studio's own ``label-studio init --username`` command in its environment, on the server's
  data folder, the password handed over through the environment (never a command line). Community edition has
  no roles: every account of the organisation may review and manage projects (``--role`` is recorded in
  Argilla only).

A password comes from the caller (the CLI reads it from ``CURATE_REVIEWER_PASSWORD`` or a hidden prompt) and is
refused when it is short or a placeholder.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from curation.errors import ExternalServiceError, UsageError

ROLES = ("annotator", "lead")
ARGILLA_ROLE = {"annotator": "annotator", "lead": "admin"}
MIN_PASSWORD = 8
PLACEHOLDERS = {"password", "12345678", "changeme", "change-me", "replace-me", "argilla", "reviewer"}


def check_password(password: str | None) -> str:
    if not password or len(password) < MIN_PASSWORD or password.lower() in PLACEHOLDERS or len(set(password)) < 4:
        raise UsageError(f"the reviewer's password must be at least {MIN_PASSWORD} characters and not a placeholder")
    return password


def add_reviewer(backend: str, email: str, role: str, password: str, url: str | None = None,
                 data_dir: Path | None = None, venv: Path | None = None) -> dict:
    """Make the account ``email`` (its login) in ``backend``; returns what was done."""
    if role not in ROLES:
        raise UsageError(f"role {role!r}: one of {', '.join(ROLES)}")
    if "@" not in email or email.startswith("@") or email.endswith("@"):
        raise UsageError(f"{email!r} is not an e-mail address: a reviewer logs in with it")
    check_password(password)
    if backend == "argilla":
        from curation.review.backends.argilla import ArgillaBackend

        be = ArgillaBackend(url=url)
        be.check()
        existed = be._call("find a user", lambda: be.client.users(username=email)) is not None
        if existed:
            raise UsageError(f"Argilla at {be.url} already has a user {email!r}")
        be.user_id(email, email.split("@")[0], role=ARGILLA_ROLE[role], password=password)
        return {"backend": "argilla", "user": email, "role": ARGILLA_ROLE[role], "workspace": be.workspace, "url": be.url}
    if backend == "labelstudio":
        return _add_labelstudio(email, password, data_dir, venv)
    raise UsageError(f"unknown review backend {backend!r}; known: argilla, labelstudio")


def _add_labelstudio(email: str, password: str, data_dir: Path | None, venv: Path | None) -> dict:
    from curation.review.labelstudio_server import _exe, venv_path

    if data_dir is None or not (Path(data_dir) / "label_studio.sqlite3").is_file():
        raise UsageError(f"Label Studio's data folder {data_dir} holds no database: give the folder `curate review "
                         "serve labelstudio` uses (--data-dir; default <store folder>/labelstudio)")
    exe = _exe(venv_path(venv))
    if not exe.exists():
        raise UsageError(f"Label Studio is not installed in {exe.parent.parent}: `curate review serve labelstudio` installs it")
    stray = ("LABEL_STUDIO_", "HEARTEX_", "USERNAME", "PASSWORD", "USER_TOKEN")
    env = {k: v for k, v in os.environ.items() if not k.startswith(stray) and not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env.update({"LABEL_STUDIO_PASSWORD": password, "LABEL_STUDIO_BASE_DATA_DIR": str(Path(data_dir).absolute()),
                "DJANGO_DB": "sqlite", "LATEST_VERSION_CHECK": "false", "COLLECT_ANALYTICS": "false"})
    # `label-studio init --username` is Label Studio's own way to make an account with a password that logs in
    # (it reads the password from LABEL_STUDIO_PASSWORD); `label-studio user` only shows one
    res = subprocess.run([str(exe), "init", "--username", email, "--data-dir", str(Path(data_dir).absolute()), "--quiet"],
                         env=env, capture_output=True, text=True, timeout=600, check=False, stdin=subprocess.DEVNULL)
    out = res.stdout + res.stderr
    if res.returncode != 0:
        raise ExternalServiceError(f"Label Studio's user command failed (code {res.returncode}): {out[-1500:]}")
    if "already exists" in out:
        raise UsageError(f"Label Studio already has a user {email!r}")
    return {"backend": "labelstudio", "user": email, "role": "member (Label Studio Community has no roles)",
            "data_dir": str(data_dir)}


def list_reviewers(backend: str, url: str | None = None) -> list[dict]:
    """The review tool's accounts: login, role (Argilla) and name."""
    if backend == "argilla":
        from curation.review.backends.argilla import ArgillaBackend

        be = ArgillaBackend(url=url)
        users = be._call("list users", lambda: list(be.client.users))
        return [{"user": u.username, "role": str(getattr(u.role, "value", u.role)), "name": u.first_name} for u in users]
    if backend == "labelstudio":
        from curation.review.backends.labelstudio import LabelStudioBackend

        be = LabelStudioBackend(url=url)
        users = be._call("list users", be.client.users.list)
        return [{"user": u.email or u.username, "role": "member", "name": u.first_name or ""} for u in users]
    raise UsageError(f"unknown review backend {backend!r}; known: argilla, labelstudio")
