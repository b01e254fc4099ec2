"""The HTTP API's settings (from the environment), the start-up check of secrets, and its own error kinds."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from curation.errors import UsageError

SECRET_ENV = ("CURATE_LABEL_STUDIO_TOKEN", "LABEL_STUDIO_API_KEY", "CURATE_ARGILLA_API_KEY", "ARGILLA_API_KEY")


class NotFound(UsageError):
    """What the request names does not exist (HTTP 404, exit code 2)."""


class TooLarge(UsageError):
    """A request or upload over its size limit (HTTP 413)."""


class NotData(UsageError):
    """An upload that is not a data file (HTTP 415)."""


@dataclass
class ApiSettings:
    """The service's settings, from the environment (``CURATE_API_*``)."""

    max_upload_bytes: int = 1 << 30
    max_body_bytes: int = 1 << 20
    sql_timeout: float = 10.0
    sql_max_rows: int = 10_000
    cors_origins: list[str] = field(default_factory=list)
    token_cache_s: float = 2.0
    worker: bool = True
    job_gil_share: float = 0.5  # the most of the wall time a job's GIL-holding model calls take (see share_gil)

    @classmethod
    def from_env(cls) -> "ApiSettings":
        env = os.environ

        def num(name: str, default: float, kind: Callable = int) -> Any:
            raw = env.get(name)
            if raw in (None, ""):
                return default
            try:
                value = kind(raw)
            except ValueError:
                raise UsageError(f"{name}={raw!r} is not a number") from None
            if value <= 0:
                raise UsageError(f"{name} must be more than 0, not {raw}")
            return value

        origins = [o.strip() for o in env.get("CURATE_API_CORS_ORIGINS", "").split(",") if o.strip()]
        if "*" in origins:
            raise UsageError("CURATE_API_CORS_ORIGINS=*: name the origins that may call the API; a wildcard would let "
                             "any web page use a token a browser holds")
        return cls(max_upload_bytes=num("CURATE_API_MAX_UPLOAD_BYTES", cls.max_upload_bytes),
                   max_body_bytes=num("CURATE_API_MAX_BODY_BYTES", cls.max_body_bytes),
                   sql_timeout=num("CURATE_API_SQL_TIMEOUT", cls.sql_timeout, float),
                   sql_max_rows=num("CURATE_API_SQL_MAX_ROWS", cls.sql_max_rows), cors_origins=origins,
                   job_gil_share=min(1.0, num("CURATE_API_JOB_GIL_SHARE", cls.job_gil_share, float)))


def check_secrets() -> None:
    """Refuse to start with a placeholder secret in the environment (a review server's token or API key)."""
    from curation.review.argilla_server import PLACEHOLDERS

    for name in SECRET_ENV:
        value = os.environ.get(name)
        if value is not None and (value.lower() in PLACEHOLDERS or len(value) < 16 or len(set(value)) < 4):
            raise UsageError(f"{name} is a placeholder or too weak (at least 16 characters, not a default such as "
                             "'changeme'): set the real token, or unset it")
