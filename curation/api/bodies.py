"""What the HTTP API's routes take: request bodies, cursors, upload names and the binary-file check."""

from __future__ import annotations

import base64
import json
import re
from typing import Literal

from pydantic import BaseModel, Field

from curation.errors import UsageError


def encode_cursor(key: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, default=str).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, n: int) -> list | None:
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise UsageError("cursor is not one this API gave: pass next_cursor from the previous page") from None
    if not isinstance(key, list) or len(key) != n:
        raise UsageError("cursor is not one this API gave: pass next_cursor from the previous page")
    return key


def arrow_rows(table) -> list[dict]:  # noqa: ANN001
    """Rows as JSON-ready dicts; only columns of types JSON lacks (times, bytes, nested) go through Python."""
    import pyarrow.types as t

    from curation.sql import _jsonable

    names, columns = table.column_names, []
    if not names:
        return [{} for _ in range(table.num_rows)]
    for column in table.columns:
        values = column.to_pylist()
        kind = column.type
        if not (t.is_string(kind) or t.is_large_string(kind) or t.is_integer(kind) or t.is_floating(kind)
                or t.is_boolean(kind) or t.is_null(kind)):
            values = [_jsonable(v) for v in values]
        columns.append(values)
    return [dict(zip(names, row)) for row in zip(*columns)]


def safe_upload_name(name: str) -> str:
    """The base name of an uploaded file, made safe: no folders, no leading dots, letters, digits, ``._-``."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[^\w.\-]+", "_", base, flags=re.UNICODE).lstrip("._")[:200]
    if not base or base in (".", ".."):
        raise UsageError(f"upload name {name!r}: give the file's name (filename=data.jsonl)")
    return base


_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 12, 13, 27))


def looks_binary(head: bytes) -> bool:
    """A file no reader takes (a program, an archive, an image): more than 5% control characters in its first
    8 KiB. Parquet (``PAR1``) and UTF-16 with its mark are data; a text file with a stray NUL is not refused:
    its bad line goes to quarantine like any other."""
    if not head or head.startswith(b"PAR1") or head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False
    sample = head[:8192]
    return sum(sample.count(bytes([b])) for b in _CONTROL) > 0.05 * len(sample)


# ------------------------------------------------------------------------------------------- request bodies
class RunRequest(BaseModel):
    config: str | None = Field(None, description="The pipeline's TOML (default: the bundled default.toml)",
                               max_length=200_000)
    fresh: bool = False


class SqlRequest(BaseModel):
    query: str = Field(..., max_length=100_000)
    format: Literal["json", "csv", "parquet"] = "json"


class SnapshotRequest(BaseModel):
    run_id: int | None = None
    note: str | None = Field(None, max_length=2000)


class ReviewPush(BaseModel):
    backend: Literal["labelstudio", "argilla"] = "labelstudio"
    url: str | None = Field(None, max_length=500)
    reviews: int | None = Field(None, ge=1, le=1_000_000)
    overlap: int | None = Field(None, ge=1, le=10)
    seed: int | None = None
    target: float | None = Field(None, gt=0, lt=1)
    confidence: float | None = Field(None, gt=0, lt=1)


class ReviewPull(BaseModel):
    backend: Literal["labelstudio", "argilla"] = "labelstudio"
    url: str | None = Field(None, max_length=500)


class Approve(BaseModel):
    force: bool = False


class TrainRequest(BaseModel):
    snapshot_id: int
    model: str = Field(..., max_length=1000, description="The base model's folder on the service's machine")
    set: list[str] = Field(default_factory=list, max_length=100, description="TrainConfig name=value overrides")
    force: bool = False


class EvalRequest(BaseModel):
    snapshot_id: int
    model: str = Field(..., max_length=1000)
    adapters: list[str] = Field(default_factory=list, max_length=20)
    max_samples: int | None = Field(None, ge=1, le=100_000)
    max_new_tokens: int = Field(256, ge=1, le=8192)


class ServeRequest(BaseModel):
    model: str = Field(..., max_length=1000, description="The base model's folder on the service's machine")
    adapters: dict[str, str] = Field(default_factory=dict, max_length=20,
                                     description="served name -> adapter folder (curate train's output)")
    engine: Literal["cpu", "vllm"] = "cpu"
    quantization: Literal["int8", "int8-dynamic"] | None = None


class TokenRequest(BaseModel):
    role: Literal["viewer", "lead", "admin"]
    name: str = Field(..., min_length=1, max_length=100)
