"""Reading a TOML settings file and saying what is wrong with it (file, field, reason)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from curation.errors import UsageError


def read_toml(path: Path, what: str = "config file") -> dict:
    """The parsed file; :class:`UsageError` naming the file when it is missing or not valid TOML."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise UsageError(f"{what} {path} does not exist") from e
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path}: not valid TOML: {e}") from e


def problems(e: ValidationError) -> str:
    """A pydantic error as ``field.path: reason; ...``."""
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}" for err in e.errors())
