"""Settings from the environment, in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from curation.errors import UsageError

DEFAULT_DATA_DIR = Path("data") / "store"
DEFAULT_DB_NAME = "curate.duckdb"


@dataclass(frozen=True)
class Settings:
    """Process-wide settings.

    ``CURATE_DB``: path of the store file (default ``$CURATE_DATA_DIR/curate.duckdb``).
    ``CURATE_DATA_DIR``: where the store lives by default (``./data/store``).
    ``CURATE_LOCK_TIMEOUT``: seconds to wait for another process to release the store (default 120).
    """

    db_path: Path
    lock_timeout: float

    @classmethod
    def from_env(cls, db: str | os.PathLike[str] | None = None) -> "Settings":
        """Read settings, with an explicit ``db`` path taking precedence over the environment."""
        data_dir = Path(os.environ.get("CURATE_DATA_DIR", DEFAULT_DATA_DIR))
        path = db or os.environ.get("CURATE_DB") or data_dir / DEFAULT_DB_NAME
        raw_timeout = os.environ.get("CURATE_LOCK_TIMEOUT", "120")
        try:
            timeout = float(raw_timeout)
        except ValueError as e:
            raise UsageError(f"CURATE_LOCK_TIMEOUT must be a number of seconds, got {raw_timeout!r}") from e
        if timeout < 0:
            raise UsageError(f"CURATE_LOCK_TIMEOUT must be >= 0, got {timeout}")
        return cls(db_path=Path(path), lock_timeout=timeout)
