"""Text encodings of input files.

DuckDB reads only UTF-8, and Chinese data often comes as GB18030 / GBK, so encodings are detected and
decoded here. GB18030 is a superset of GBK and GB2312, so one codec reads all three.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from curation.errors import InputError

SAMPLE_BYTES = 1 << 20
BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
ALIASES = {"gbk": "gb18030", "gb2312": "gb18030", "cp936": "gb18030", "utf8": "utf-8", "utf-8-bom": "utf-8-sig"}


@dataclass(frozen=True)
class Encoding:
    """An encoding decision: the codec name and how many BOM bytes to skip."""

    name: str
    bom_length: int = 0

    @property
    def is_utf8(self) -> bool:
        """Whether DuckDB can read the bytes after the BOM as they are."""
        return self.name in ("utf-8", "utf-8-sig")

    @property
    def line_based(self) -> bool:
        """Whether b'\\n' splits lines in this encoding (false for UTF-16/32)."""
        return not self.name.startswith("utf-16") and not self.name.startswith("utf-32")


def normalise_name(name: str) -> str:
    """Canonical codec name, with GBK and GB2312 read as GB18030."""
    key = name.strip().lower().replace("_", "-")
    key = ALIASES.get(key, key)
    try:
        codecs.lookup(key)
    except LookupError as e:
        raise InputError(f"unknown encoding {name!r}") from e
    return key


def _share_valid(lines: list[bytes], codec: str) -> float:
    non_ascii = [ln for ln in lines if not ln.isascii()]
    if not non_ascii:
        return 1.0
    ok = 0
    for ln in non_ascii:
        try:
            ln.decode(codec)
            ok += 1
        except UnicodeDecodeError:
            pass
    return ok / len(non_ascii)


def detect(head: bytes, forced: str | None = None) -> Encoding:
    """Pick the encoding of a file from its first bytes.

    A BOM decides; otherwise UTF-8 when (nearly) every non-ASCII line of the sample decodes as UTF-8
    (a few bad lines are row problems for quarantine, not a reason to misread the whole file), else
    GB18030 when that decodes it, else UTF-8 (bad lines then go to quarantine).
    """
    wanted = normalise_name(forced) if forced else None
    for bom, name in BOMS:
        if head.startswith(bom):
            # utf-8 for a utf-8-sig file, or utf-16-le for a utf-16 one, agree with the mark
            if wanted and wanted != "utf-8" and not wanted.startswith(name):
                raise InputError(f"file starts with a {name} byte order mark but --encoding {forced} was given")
            return Encoding(name, len(bom) if name == "utf-8-sig" else 0)
    if wanted:
        return Encoding(wanted)
    cut = head.rfind(b"\n")
    sample = head if cut < 0 or len(head) < SAMPLE_BYTES else head[:cut]
    lines = sample.split(b"\n")
    utf8 = _share_valid(lines, "utf-8")
    if utf8 >= 0.9:
        return Encoding("utf-8")
    if _share_valid(lines, "gb18030") > utf8:
        return Encoding("gb18030")
    return Encoding("utf-8")


def detect_file(path: Path, forced: str | None = None, opener=open) -> Encoding:  # noqa: ANN001
    """Detect the encoding of a file (``opener`` may be ``gzip.open``)."""
    with opener(path, "rb") as f:
        head = f.read(SAMPLE_BYTES)
    return detect(head, forced)


def transcode_to_utf8(src: BinaryIO, dst: BinaryIO, encoding: Encoding, chunk_bytes: int = 8 << 20) -> int:
    """Copy a line-based text stream to UTF-8, line for line; returns how many lines were copied as bytes.

    A line that is not valid in the source encoding is copied as its original bytes, so that the
    reader downstream reports it at the same line number (and quarantine keeps the exact bytes).
    """
    verbatim = 0
    if encoding.bom_length:
        src.read(encoding.bom_length)
    if not encoding.line_based:
        # UTF-16/32 cannot be split on b"\n"; decode as a stream (errors become U+FFFD, counted by caller).
        reader = codecs.getreader(encoding.name)(src, errors="replace")
        while True:
            text = reader.read(chunk_bytes)
            if not text:
                return verbatim
            dst.write(text.encode("utf-8"))
    carry = b""
    while True:
        block = src.read(chunk_bytes)
        data = carry + block
        if not block:
            carry = b""
        else:
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                continue
            carry = data[cut + 1 :]
            data = data[: cut + 1]
        if data:
            try:
                dst.write(data.decode(encoding.name).encode("utf-8"))
            except UnicodeDecodeError:
                for line in data.splitlines(keepends=True):
                    try:
                        dst.write(line.decode(encoding.name).encode("utf-8"))
                    except UnicodeDecodeError:
                        dst.write(line)
                        verbatim += 1
        if not block:
            return verbatim
