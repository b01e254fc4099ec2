"""Readers: turn an input into a stream of raw row chunks, every row accounted for.

Each reader yields :class:`RawChunk` objects: an Arrow table with one row per input row
(``row_number``, ``line``, ``raw`` JSON text, ``raw_bytes`` for undecodable rows, and ``problem``
when the reader already knows the row is bad) plus how far through the input it is. Normalising the
rows into samples is the same SQL for every format (``normalize.py``).

Line-based inputs are split a block at a time (numpy finds the newlines); Python touches single
lines only when a block in another encoding does not decode. UTF-8 lines are not checked here: the
normaliser's JSON parser checks them (see :func:`_fast_lines`), so ``raw`` may hold bytes that are
not UTF-8 until the chunk is normalised. CSV, JSON arrays and Parquet are read by DuckDB and
pyarrow, which stream.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import mmap
import os
import re
import shutil
import tempfile
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from curation.duck import query_reader, sql_ident, sql_literal
from curation.errors import InputError
from curation.ingest.encoding import Encoding, detect_file, transcode_to_utf8
from curation.ingest.mapping import FieldMapping

_RAW_FIELDS = pa.schema(
    [
        ("row_number", pa.int64()),
        ("line", pa.int64()),
        ("raw", pa.string()),
        ("raw_bytes", pa.binary()),
        ("problem", pa.string()),
    ]
)
# what every reader yields: the fields above and ``row_hash`` (see add_row_hashes)
RAW_SCHEMA = _RAW_FIELDS.append(pa.field("row_hash", pa.string()))

DEFAULT_CHUNK_BYTES = 48 << 20
DEFAULT_CHUNK_ROWS = 100_000
DEFAULT_MAX_ROW_BYTES = 16 << 20


@dataclass
class RawChunk:
    """A chunk of raw rows and progress through the input (``done`` in the reader's ``total`` units)."""

    table: pa.Table
    done: int
    blank_lines: int = 0


@dataclass
class FileProblem:
    """A problem with the input as a whole (an empty file, a JSON array that does not parse)."""

    reason: str
    raw: str | None = None


@dataclass
class ReadState:
    """What a reader learned that is not in the chunks: the encoding, file-level problems."""

    encoding: str | None = None
    total: int = 0
    unit: str = "bytes"
    problems: list[FileProblem] = field(default_factory=list)
    invalid_lines: int = 0  # lines of a transcoded copy left as their original bytes (not valid in the encoding)


def _int64_array(values: np.ndarray) -> pa.Array:
    """An Arrow int64 array over a numpy array's memory (``pa.array`` on numpy imports pandas, 0.2 s)."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def _bool_array(values: np.ndarray) -> pa.Array:
    """An Arrow boolean array from a numpy bool array, without importing pandas."""
    return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(np.packbits(values, bitorder="little"))])


def add_row_hashes(table: pa.Table) -> pa.Table:
    """``table`` with a ``row_hash`` column: XXH3-128 of each row's ``raw`` text, as 32 hex digits.

    The stable sample id is built from it. No hashing library works on a whole Arrow array, so this is
    one C call a row over slices of the Arrow buffer; readers run in the read-ahead thread, beside the
    normalising query: 0.2 s for a million rows, where md5 in that query took 1 CPU-second. Rows
    without text (undecodable bytes) hash as empty; they are quarantined and never get an id.
    """
    col = table.column("raw")
    raw = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()  # combining one chunk copies it
    if not pa.types.is_string(raw.type):
        raw = raw.cast(pa.string())
    n = len(raw)
    _validity, offsets_buf, data_buf = raw.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32, count=n + 1, offset=raw.offset * 4).tolist() if n else [0]
    data = memoryview(data_buf) if data_buf is not None else memoryview(b"")
    digest = xxhash.xxh3_128_digest
    hexed = b"".join([digest(data[a:b]) for a, b in zip(offsets[:-1], offsets[1:], strict=True)]).hex().encode()
    hashes = pa.StringArray.from_buffers(n, pa.py_buffer(np.arange(0, 32 * n + 1, 32, dtype=np.int32)), pa.py_buffer(hexed))
    return table.append_column("row_hash", hashes)


def human_bytes(n: int) -> str:
    """1536 -> '1.5 KiB'."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{n} B"


# --- opening files -----------------------------------------------------------------------------------


def open_error(path: Path, e: OSError) -> InputError:
    """An InputError for a file that cannot be opened, saying why in words."""
    if isinstance(e, IsADirectoryError) or (isinstance(e, PermissionError) and path.is_dir()):
        why = "is a folder, not a file"
    elif isinstance(e, FileNotFoundError):
        why = "no such file"
        if path.is_symlink():
            why += f" (it is a link to {os.readlink(path)}, which does not exist)"
    elif isinstance(e, PermissionError):
        why = "permission denied: this user may not read the file"
    else:
        why = f"cannot be read: {(e.strerror or str(e)).lower()}"
    return InputError(f"{path}: {why}")


def check_readable(path: Path) -> None:
    """Raise InputError (in words) when ``path`` cannot be opened for reading."""
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as e:
        raise open_error(path, e) from e


def _zlib_reason(e: zlib.error) -> str:
    """'Error -3 while decompressing data: invalid block type' -> 'invalid block type'."""
    return str(e).split(": ", 1)[-1]


class GzipStream(io.RawIOBase):
    """A gzip file read as a stream that never loses what it decoded.

    ``gzip.open`` raises when the data ends early or is damaged, and a large read then returns
    nothing of what it had decoded. This stream returns every byte that decodes and then ends,
    setting ``problem`` (in words) and ``ended_early`` (the data stops mid-stream: truncated or
    corrupt) or ``corrupt``. A file that does not start with the gzip signature raises InputError
    when opened. Concatenated gzip members are read one after the other, like ``gzip``.
    """

    IN_BYTES = 1 << 18
    OUT_BYTES = 1 << 22

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        try:
            self.fileobj = open(path, "rb")  # noqa: SIM115 (closed by close())
        except OSError as e:
            raise open_error(path, e) from e
        self.size = os.fstat(self.fileobj.fileno()).st_size
        head = self.fileobj.read(2)
        self.fileobj.seek(0)
        if head and head != b"\x1f\x8b":
            sample = self.fileobj.read(512)
            self.fileobj.close()
            text = sample.isascii() or _decodes(sample)
            hint = "; it looks like plain text: rename it without .gz" if text else ""
            raise InputError(f"{path}: not a gzip file (it does not start with the gzip signature 1f 8b{hint})")
        self.text_bytes = 0  # decompressed bytes returned so far
        self.problem: str | None = None
        self.ended_early = False
        self.corrupt = False
        self.checksum_failed = False
        self.unread_bytes = 0  # compressed bytes after a corruption, never decoded
        self._d = zlib.decompressobj(31)
        self._member = False  # a member has started (header bytes seen)
        self._pending = b""
        self._pending_at = 0  # file offset of _pending[0]
        self._out = memoryview(b"")
        self._eof = not head

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # noqa: ANN001
        view = memoryview(b).cast("B")
        n = 0
        while n < len(view):
            if self._out:
                take = min(len(self._out), len(view) - n)
                view[n : n + take] = self._out[:take]
                self._out = self._out[take:]
                n += take
                self.text_bytes += take
                continue
            if self._eof:
                break
            self._fill()
        return n

    def close(self) -> None:
        if not self.closed:
            self.fileobj.close()
        super().close()

    def _fill(self) -> None:
        if not self._pending:
            self._pending_at = self.fileobj.tell()
            self._pending = self.fileobj.read(self.IN_BYTES)
            if not self._pending:
                if self._member and not self._d.eof:
                    self.ended_early = True
                    self.problem = "gzip stream ends early (the file is truncated)"
                self._eof = True
                return
        if self._d.eof:  # a member ended: another may follow
            rest = self._pending
            if len(rest) < 2:
                rest += self.fileobj.read(self.IN_BYTES)
            if rest[:2] == b"\x1f\x8b":
                self._d, self._pending, self._member = zlib.decompressobj(31), rest, False
            else:
                self._trailing(rest)
                return
        self._member = True
        before = self._d.copy()
        try:
            out = self._d.decompress(self._pending, self.OUT_BYTES)
        except zlib.error as e:
            self._corrupt(before, e)
            return
        if self._d.eof:
            used = len(self._pending) - len(self._d.unused_data)
            self._pending, self._pending_at = self._d.unused_data, self._pending_at + used
        else:
            used = len(self._pending) - len(self._d.unconsumed_tail)
            self._pending, self._pending_at = self._d.unconsumed_tail, self._pending_at + used
        self._out = memoryview(out)

    def _trailing(self, rest: bytes) -> None:
        """Bytes after the last gzip member: zeros (padding) are ignored, anything else is noted."""
        at = self._pending_at
        tail = rest + self.fileobj.read()
        if tail.strip(b"\0"):
            self.problem = (f"{len(tail)} bytes after the end of the gzip data (from byte {at + 1}) are not gzip "
                            "data; they are not read")
        self._pending = b""
        self._eof = True

    def _corrupt(self, before, e: zlib.error) -> None:  # noqa: ANN001
        """Find the exact byte where decoding fails (one byte at a time, from the state before the
        failing call) and keep the text decoded up to there."""
        out = []
        at = self._pending_at + len(self._pending)
        for i in range(len(self._pending)):
            try:
                out.append(before.decompress(self._pending[i : i + 1]))
            except zlib.error as err:
                at, e = self._pending_at + i, err
                break
        self._out = memoryview(b"".join(out))
        reason = _zlib_reason(e)
        self.corrupt = True
        self.checksum_failed = reason in ("incorrect data check", "incorrect length check")
        self.ended_early = not self.checksum_failed
        self.unread_bytes = max(0, self.size - at - 1)
        if self.checksum_failed:
            self.problem = (f"corrupt gzip data: the checksum at byte {at + 1} does not match the decompressed text "
                            "(the file is damaged somewhere before it)")
        else:
            self.problem = f"corrupt gzip data at byte {at + 1} ({reason})"
        self._pending = b""
        self._eof = True

    def tell(self) -> int:
        """The position in the compressed file (for progress)."""
        return self.fileobj.tell()


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError as e:
        return e.start > len(data) - 4  # a character cut by the sample's end


def _opener(path: Path):  # noqa: ANN202
    """How to open ``path`` for reading bytes: as a :class:`GzipStream` for ``.gz``, else plainly."""
    if path.suffix == ".gz":
        return lambda p, mode="rb": GzipStream(Path(p))
    return open


def gzip_end_note(stream: GzipStream) -> str:
    """What a stream that ended early says about the text after its last complete line."""
    return f"{stream.problem} after {stream.text_bytes} bytes of text"


def _too_large(n: int, limit: int) -> str:
    return f"row is {human_bytes(n)}, over the {human_bytes(limit)} limit (--max-row-bytes)"


def _lines_table(raw: pa.Array, first_line: int, max_row_bytes: int, blank: pa.Array,
                 problems: list[str | None] | None = None,
                 raw_bytes: list[bytes | None] | None = None) -> tuple[pa.Table, int]:
    """A raw chunk from one block's lines (numbered from ``first_line``); blank lines are dropped and counted."""
    n = len(raw)
    line_no = _int64_array(np.arange(first_line, first_line + n, dtype=np.int64))
    problem_arr = pa.array(problems, pa.string()) if problems is not None else pa.nulls(n, pa.string())
    bytes_arr = pa.array(raw_bytes, pa.binary()) if raw_bytes is not None else pa.nulls(n, pa.binary())
    table = _mark_large(pa.table([line_no, line_no, raw, bytes_arr, problem_arr], schema=_RAW_FIELDS), max_row_bytes)
    n_blank = pc.sum(blank).as_py() or 0
    if n_blank:
        table = table.filter(pc.invert(blank))
    return add_row_hashes(table), n_blank


def _tell(f, state: ReadState) -> int:  # noqa: ANN001
    try:
        return f.tell()
    except (OSError, ValueError):
        return state.total


def _recode(data: bytes, codec: str) -> bytes | None:
    """A block in another encoding as UTF-8, or None when it does not decode (the slow path then finds the lines)."""
    try:
        return data.decode(codec).encode("utf-8")
    except UnicodeDecodeError:
        return None


def _fast_lines(data, first_line: int, max_row_bytes: int, ends=None) -> tuple[pa.Table, int, int] | None:  # noqa: ANN001
    """Split a UTF-8 block into lines without making a Python string per line.

    ``data`` is any buffer (bytes, or a view of the reader's block); ``ends`` the positions of its
    newlines when the caller already has them. Line offsets come from numpy and the Arrow string
    array is built over the block's own buffer. Returns None when the block is too large for 32-bit
    offsets (the caller then splits it in Python).

    The lines are **not checked to be UTF-8 here**: the JSON parser of the normalising query checks
    every byte of every row it parses and rejects a row that is not UTF-8, and the normaliser then
    names the bad bytes (see ``normalize._name_invalid_text``). Checking here too cost 0.45 CPU-s per
    million rows (Arrow validates at about 1 GB/s), a tenth of the whole ingest.
    """
    if data is None or len(data) >= (1 << 31) - 1:
        return None
    buf = np.frombuffer(data, dtype=np.uint8)
    if ends is None:
        ends = np.flatnonzero(buf == 10)
    offsets = np.empty(len(ends) + 2, dtype=np.int32)
    offsets[0] = 0
    offsets[1:-1] = ends + 1
    offsets[-1] = len(data)
    n = len(offsets) - 1
    arr = pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
    # '\r' and '\n' are ASCII, and no byte of a multi-byte UTF-8 character is: the ASCII kernel is exact
    # here, and several times faster than the UTF-8 one
    raw = pc.ascii_rtrim(arr, characters="\r\n")
    # blank lines: only empty lines and lines that start with whitespace can be blank; look at those alone
    lengths = np.diff(offsets)
    first = buf[np.minimum(offsets[:-1], max(len(buf) - 1, 0))] if len(buf) else np.zeros(n, dtype=np.uint8)
    cand = np.flatnonzero((lengths == 0) | np.isin(first, (9, 10, 11, 12, 13, 32)))
    blank = np.zeros(n, dtype=bool)
    blank[[int(i) for i in cand if not bytes(data[offsets[i] : offsets[i + 1]]).strip()]] = True
    table, n_blank = _lines_table(raw, first_line, max_row_bytes, _bool_array(blank))
    return table, n, n_blank


class _NewlineFinder:
    """Positions of the newlines in a block, through one reused mask.

    ``np.flatnonzero(block == 10)`` allocates a fresh mask the size of every block, and the kernel
    zeroes each of its pages on first touch: 6% of an ingest's CPU went to that. The mask here is
    allocated once per reader and overwritten.
    """

    def __init__(self) -> None:
        self._mask = np.empty(0, dtype=bool)

    def find(self, block) -> np.ndarray:  # noqa: ANN001
        data = np.frombuffer(block, dtype=np.uint8)
        if len(self._mask) < len(data):
            self._mask = np.empty(len(data), dtype=bool)
        mask = self._mask[: len(data)]
        np.equal(data, 10, out=mask)
        return np.flatnonzero(mask)


def _mapped_blocks(path: Path, skip: int, chunk_bytes: int) -> Iterator[tuple[memoryview, np.ndarray, int]]:
    """Blocks of whole lines of a plain file, as views of the file mapped into memory.

    Yields ``(data, ends, done)``: ``data`` holds whole lines without the newline that ends the
    block (the last block runs to the end of the file), ``ends`` the positions of the newlines inside
    ``data``, ``done`` the file position reached. Each block is its own mapping, released when the
    Arrow arrays over it are: nothing is copied (the page cache is read in place), and the pages are
    mapped many at a time where reading into fresh buffers faults them in one by one.
    """
    size = path.stat().st_size
    if size <= skip:
        return
    newline = _NewlineFinder()
    with open(path, "rb") as f:
        fd = f.fileno()
        pos = skip
        while pos < size:
            span = chunk_bytes
            while True:
                base = pos - pos % mmap.ALLOCATIONGRANULARITY
                end = min(pos + span, size)
                m = mmap.mmap(fd, end - base, access=mmap.ACCESS_READ, offset=base)
                view = memoryview(m)[pos - base :]
                ends = newline.find(view)
                if end == size or len(ends):
                    break
                span *= 2  # a line longer than a block: map more
            if end == size:
                if view[-1] == 10:  # the file's final newline ends its last line
                    view, ends = view[:-1], ends[:-1]
                yield view, ends, end
                return
            cut = int(ends[-1])
            yield view[:cut], ends[:-1], pos + cut + 1
            pos += cut + 1


def _read_blocks(f, chunk_bytes: int, state: ReadState,  # noqa: ANN001
                 tail: list[bytes] | None = None) -> Iterator[tuple[memoryview, np.ndarray | None, int]]:
    """Blocks of whole lines read from a file object (gzip, or an encoding to decode); as :func:`_mapped_blocks`.

    When the stream ended early (a :class:`GzipStream` cut short), the text after its last newline is
    an incomplete line: it goes to ``tail`` instead of being yielded as a line.
    """
    raw_file = getattr(f, "fileobj", None) or f  # compressed position for progress
    newline = _NewlineFinder()
    carry = b""
    while True:
        # Each block is read into a fresh buffer (the Arrow arrays of the last one still point into
        # theirs), after the carried partial line: one copy of the input, none per line.
        block = np.empty(len(carry) + chunk_bytes, dtype=np.uint8)
        view = memoryview(block)
        block[: len(carry)] = np.frombuffer(carry, dtype=np.uint8)
        got = f.readinto(view[len(carry) :]) or 0
        if not got:
            if carry:
                if tail is not None and getattr(f, "ended_early", False):
                    tail.append(carry)
                else:
                    yield memoryview(carry), None, _tell(raw_file, state)
            return
        total = len(carry) + got
        ends = newline.find(block[:total])
        if not len(ends):
            carry = bytes(view[:total])
            continue
        cut = int(ends[-1])
        carry = bytes(view[cut + 1 : total])
        yield view[:cut], ends[:-1], _tell(raw_file, state)


def read_jsonl(path: Path, forced_encoding: str | None = None, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
               max_row_bytes: int = DEFAULT_MAX_ROW_BYTES, state: ReadState | None = None) -> Iterator[RawChunk]:
    """JSON Lines (optionally gzip-compressed): one row per non-blank line; ``row_number`` = line number."""
    state = state if state is not None else ReadState()
    check_readable(path)
    opener = _opener(path)
    enc = detect_file(path, forced_encoding, opener)
    state.encoding = enc.name
    state.total = path.stat().st_size
    if not enc.line_based:
        # UTF-16/32 JSONL: transcode to a temporary UTF-8 file first, then read that.
        with tempfile.TemporaryDirectory(prefix="curate-") as tmp:
            tmp_path = Path(tmp) / (path.stem + ".utf8.jsonl")
            with opener(path, "rb") as src, open(tmp_path, "wb") as dst:
                transcode_to_utf8(src, dst, enc)
                _gzip_refuse_partial(path, src, f"a {enc.name} file cannot be read in part")
            inner = ReadState()
            yield from read_jsonl(tmp_path, "utf-8", chunk_bytes, max_row_bytes, inner)
            state.problems.extend(inner.problems)
        return
    codec = "utf-8" if enc.is_utf8 else enc.name
    next_line = 1
    any_rows = False
    stream: GzipStream | None = None
    tail: list[bytes] = []
    with ExitStack() as stack:
        if path.suffix != ".gz" and codec == "utf-8":
            blocks = _mapped_blocks(path, enc.bom_length, chunk_bytes)
        else:
            f = stack.enter_context(opener(path, "rb"))
            stream = f if isinstance(f, GzipStream) else None
            if enc.bom_length:
                f.read(enc.bom_length)
            blocks = _read_blocks(f, chunk_bytes, state, tail)
        for data, ends, done in blocks:
            if codec == "utf-8":
                fast = _fast_lines(data, next_line, max_row_bytes, ends)
            else:
                fast = _fast_lines(_recode(bytes(data), codec), next_line, max_row_bytes)
            if fast is not None:
                table, n_lines, n_blank = fast
                next_line += n_lines
                any_rows = any_rows or table.num_rows > 0
                yield RawChunk(table, done, n_blank)
                continue
            data = bytes(data)
            try:
                lines: list = data.decode(codec).split("\n")
                problems = raw_bytes = None
            except UnicodeDecodeError:
                lines, problems, raw_bytes = [], [], []
                for ln in data.split(b"\n"):
                    try:
                        lines.append(ln.decode(codec))
                        problems.append(None)
                        raw_bytes.append(None)
                    except UnicodeDecodeError as e:
                        lines.append(None)
                        problems.append(f"invalid {codec} bytes at byte {e.start + 1} of the line ({e.reason})")
                        raw_bytes.append(ln.rstrip(b"\r"))
            raw = pc.utf8_rtrim(pa.array(lines, pa.string()), characters="\r")
            # undecodable lines have raw None: they are rows (with a problem), not blank lines
            blank = pc.fill_null(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(raw)), 0), False)
            table, n_blank = _lines_table(raw, next_line, max_row_bytes, blank, problems, raw_bytes)
            next_line += len(lines)
            any_rows = any_rows or table.num_rows > 0
            yield RawChunk(table, done, n_blank)
    if stream is not None and stream.problem:
        incomplete = tail[0] if tail and tail[0].strip() else None
        if stream.checksum_failed or (stream.ended_early and not any_rows):
            _gzip_refuse_partial(path, stream, "not one complete line could be read" if not stream.checksum_failed
                                 else "its rows cannot be trusted")
        if incomplete is not None:
            any_rows = True
            yield RawChunk(_tail_row(incomplete, next_line, codec, f"{gzip_end_note(stream)}; this line is incomplete",
                                     next_line), state.total)
        _gzip_notes(stream, state, incomplete is not None)
    # a line with anything but whitespace is a row: no rows means nothing but whitespace
    if not any_rows:
        state.problems.append(FileProblem("file is empty (no rows)", ""))


def _gzip_refuse_partial(path: Path, stream, why: str) -> None:  # noqa: ANN001
    """Raise InputError when a gzip stream that ended early or is damaged cannot be read in part."""
    if isinstance(stream, GzipStream) and (stream.ended_early or stream.checksum_failed):
        raise InputError(f"{path}: {gzip_end_note(stream)}: {why}")


def _gzip_notes(stream: GzipStream, state: ReadState, tail_row: bool) -> None:
    """File-level notes of a gzip stream that ended early, beside the incomplete line quarantined as a row."""
    if stream.corrupt and stream.unread_bytes:
        state.problems.append(FileProblem(f"{stream.problem}: the {stream.unread_bytes} compressed bytes after it "
                                          "cannot be decoded and are not read"))
    elif stream.ended_early and not tail_row:
        state.problems.append(FileProblem(f"{gzip_end_note(stream)}; the last line read is complete, but more "
                                          "lines may have followed"))
    elif not stream.ended_early:
        state.problems.append(FileProblem(stream.problem or ""))


def _tail_row(data: bytes, line: int, codec: str, problem: str, row_number: int | None = None) -> pa.Table:
    """A raw chunk of one row that is known bad: its text (or its exact bytes when they do not decode)."""
    try:
        text, blob = data.decode(codec), None
    except UnicodeDecodeError:
        text, blob = None, data
    return add_row_hashes(pa.table(
        [pa.array([row_number], pa.int64()), pa.array([line], pa.int64()), pa.array([text], pa.string()),
         pa.array([blob], pa.binary()), pa.array([problem], pa.string())], schema=_RAW_FIELDS))


def _duckdb_scratch():  # noqa: ANN202
    import duckdb

    con = duckdb.connect(config={"threads": max(1, os.cpu_count() or 1)})
    con.execute("SET enable_progress_bar = false")  # a long CSV read drew one on the user's terminal
    return con


def _utf8_path(path: Path, enc: Encoding, tmpdir: str, state: ReadState) -> tuple[Path, bytes | None, str]:
    """The path DuckDB should read, and the incomplete last line of a gzip stream that ended early.

    The file itself when it is plain UTF-8; else a UTF-8 copy made line for line (a gzip file is
    decompressed first). When a gzip stream ends early or is damaged partway, the copy stops after its
    last complete line: the text after it is returned (None when there is none) with the reason, for
    the caller to quarantine as a row; other notes on the stream go to ``state.problems``.
    """
    if enc.is_utf8 and path.suffix != ".gz":
        return path, None, ""
    src, tail, note = path, None, ""
    if path.suffix == ".gz":
        src = Path(tmpdir) / (path.stem + ".plain")
        with GzipStream(path) as gz, open(src, "wb") as dst:
            shutil.copyfileobj(gz, dst, 8 << 20)
        if gz.checksum_failed:
            _gzip_refuse_partial(path, gz, "its rows cannot be trusted")
        if gz.ended_early:
            tail = _cut_last_line(src)
            if src.stat().st_size == 0:
                _gzip_refuse_partial(path, gz, "not one complete line could be read")
            if not enc.line_based:
                _gzip_refuse_partial(path, gz, f"a {enc.name} file cannot be read in part")
            note = f"{gzip_end_note(gz)}; this line is incomplete"
            tail = tail if tail and tail.strip() else None
        if gz.problem:
            _gzip_notes(gz, state, tail is not None)
        if enc.is_utf8:
            return src, tail, note
    out = Path(tmpdir) / (path.stem + ".utf8")
    with open(src, "rb") as fin, open(out, "wb") as dst:
        state.invalid_lines = transcode_to_utf8(fin, dst, enc)
    return out, tail, note


def _cut_last_line(path: Path) -> bytes:
    """Cut the text after the last newline off a file, and return it."""
    size = path.stat().st_size
    if not size:
        return b""
    with open(path, "r+b") as f:
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            cut = mm.rfind(b"\n") + 1
            tail = bytes(mm[cut:])
        f.truncate(cut)
    return tail


def _stream_rows(con, sql: str, params: list, chunk_rows: int, first_row: int = 1) -> Iterator[pa.Table]:  # noqa: ANN001
    """Stream a query's rows as Arrow tables with a running 1-based ``row_number``."""
    reader = query_reader(con, sql, params, chunk_rows)
    next_row = first_row
    for rb in reader:
        n = rb.num_rows
        if n == 0:
            continue
        rn = _int64_array(np.arange(next_row, next_row + n, dtype=np.int64))
        next_row += n
        raw = rb.column(0)
        yield add_row_hashes(pa.table(
            [rn, pa.nulls(n, pa.int64()), raw, pa.nulls(n, pa.binary()), pa.nulls(n, pa.string())],
            schema=_RAW_FIELDS,
        ))


def _mark_large(table: pa.Table, max_row_bytes: int) -> pa.Table:
    sizes = pc.binary_length(table.column("raw"))
    largest = pc.max(sizes).as_py()
    if largest is None or largest <= max_row_bytes:  # the common case, without a Python scalar (pandas import)
        return table
    big = pc.fill_null(pc.greater(sizes, max_row_bytes), False)
    msgs = [None if not b else _too_large(s, max_row_bytes) for b, s in zip(big.to_pylist(), sizes.to_pylist())]
    problem = pc.coalesce(table.column("problem"), pa.array(msgs, pa.string()))
    return table.set_column(table.schema.get_field_index("problem"), "problem", problem)


def read_json_array(path: Path, forced_encoding: str | None = None, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES, state: ReadState | None = None) -> Iterator[RawChunk]:
    """A JSON array of rows; ``row_number`` = 1-based element index. Each element is kept as its JSON text.

    DuckDB reads the array. When the file holds bytes that are not valid in its encoding, DuckDB
    cannot read any of it: then (for files up to :data:`_ARRAY_FALLBACK_BYTES`) Python splits the
    array into its elements, and an element with such bytes is a row with a problem and its bytes.
    """
    state = state if state is not None else ReadState()
    check_readable(path)
    enc = detect_file(path, forced_encoding, _opener(path))
    state.encoding, state.unit = enc.name, "rows"
    codec = "utf-8" if enc.is_utf8 else enc.name
    with tempfile.TemporaryDirectory(prefix="curate-") as tmp:
        src, _tail, note = _utf8_path(path, enc, tmp, state)
        if note:
            raise InputError(f"{path}: {note.split(';')[0]}: a JSON array cannot be read from part of a file")
        head = src.read_bytes()[: 1 << 16] if src.stat().st_size < (1 << 16) else open(src, "rb").read(1 << 16)
        if not head.strip(b" \t\r\n\xef\xbb\xbf"):
            state.problems.append(FileProblem("file is empty (no rows)", ""))
            return
        # the file's own bytes (decompressed): what a line left untranscoded is quarantined as
        original = path if path.suffix != ".gz" else Path(tmp) / (path.stem + ".plain")
        if state.invalid_lines and original.stat().st_size <= _ARRAY_FALLBACK_BYTES:
            yield from _json_array_elements(path, original, codec, enc.bom_length, chunk_rows, max_row_bytes)
            return
        con = _duckdb_scratch()
        try:
            sql = ("SELECT json FROM read_json_objects(?, format='array', "
                   "maximum_object_size=2147483647)")
            done = 0
            try:
                for table in _stream_rows(con, sql, [str(src)], chunk_rows):
                    done += table.num_rows
                    yield RawChunk(_mark_large(table, max_row_bytes), done)
            except Exception as e:  # duckdb.InvalidInputException and friends: the array does not parse
                first = str(e).splitlines()[0].replace(str(src), str(path))
                if done:
                    raise InputError(f"{path}: JSON array stops parsing after element {done}: {first}") from e
                if "UTF-8" in first and original.stat().st_size <= _ARRAY_FALLBACK_BYTES:
                    yield from _json_array_elements(path, original, codec, enc.bom_length, chunk_rows, max_row_bytes)
                    return
                text = src.read_bytes()[:max_row_bytes].decode("utf-8", errors="backslashreplace")
                state.problems.append(FileProblem(f"not a readable JSON array: {first}", text))
        finally:
            con.close()


_ARRAY_FALLBACK_BYTES = 256 << 20
_ESCAPED = re.compile("[\udc80-\udcff]")  # bytes that did not decode, under errors="surrogateescape"


def _json_array_elements(path: Path, original: Path, codec: str, bom: int, chunk_rows: int,
                         max_row_bytes: int) -> Iterator[RawChunk]:
    """The elements of a JSON array, split by Python: each as its exact text, or as its bytes with a
    problem when it holds bytes that are not valid ``codec``."""
    text = original.read_bytes()[bom:].decode(codec, errors="surrogateescape")
    decoder = json.JSONDecoder()
    ws = re.compile(r"[ \t\r\n]*")
    i = ws.match(text, 0).end()
    if text[i : i + 1] != "[":
        raise InputError(f"{path}: not a JSON array (it does not start with '[')")
    i = ws.match(text, i + 1).end()
    spans: list[tuple[int, int]] = []
    while text[i : i + 1] != "]":
        try:
            _value, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError as e:
            line = text.count("\n", 0, e.pos) + 1
            raise InputError(f"{path}: JSON array stops parsing at line {line} (element {len(spans) + 1}): {e.msg}") from e
        spans.append((i, end))
        i = ws.match(text, end).end()
        if text[i : i + 1] == ",":
            i = ws.match(text, i + 1).end()
        elif text[i : i + 1] != "]":
            line = text.count("\n", 0, i) + 1
            raise InputError(f"{path}: JSON array stops parsing at line {line} (after element {len(spans)}): "
                             "expected ',' or ']'")
    line, counted = 1, 0
    for a in range(0, len(spans), chunk_rows):
        part = spans[a : a + chunk_rows]
        raws, blobs, problems = [], [], []
        for start, end in part:
            element = text[start:end]
            bad = _ESCAPED.search(element)
            if bad is None:
                raws.append(element)
                blobs.append(None)
                problems.append(None)
                continue
            at = start + bad.start()
            line += text.count("\n", counted, at)
            counted = at
            line_start = text.rfind("\n", 0, at) + 1
            col = len(text[line_start:at].encode(codec, errors="surrogateescape")) + 1
            raws.append(None)
            blobs.append(element.encode(codec, errors="surrogateescape"))
            problems.append(f"invalid {codec} bytes at byte {col} of line {line} (element {a + len(raws)})")
        n = len(part)
        table = pa.table([_int64_array(np.arange(a + 1, a + n + 1, dtype=np.int64)), pa.nulls(n, pa.int64()),
                          pa.array(raws, pa.string()), pa.array(blobs, pa.binary()), pa.array(problems, pa.string())],
                         schema=_RAW_FIELDS)
        yield RawChunk(add_row_hashes(_mark_large(table, max_row_bytes)), a + n)


# --- CSV ---------------------------------------------------------------------------------------------

_HEADER_BYTES = 1 << 20
_CSV_LINE_LIMIT = 10_000  # DuckDB keeps this many characters of a rejected record in reject_errors.csv_line
_NAME_LIKE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}")
_QUOTE_ERROR = "UNQUOTED VALUE"  # DuckDB: "Value with unterminated quote found."


@dataclass
class _CsvReject:
    """A malformed record: where its quarantined bytes lie in the UTF-8 file, and what DuckDB said of it."""

    start: int
    end: int
    types: set[str]
    message: str


def _csv_header(path: Path, src: Path, delimiter: str, enc: Encoding) -> tuple[list[str], int] | None:
    """The names of the header record and the number of blank lines before it; None for a file of whitespace.

    Python's ``csv`` reads the first record, so that DuckDB can be given the columns and never sniffs
    the file: its sniffer fails the whole file on one bad quote or one bad byte near the start.
    """
    with open(src, "rb") as fh:
        head = fh.read(_HEADER_BYTES)
        more = bool(fh.read(1))
    head = head.removeprefix(codecs.BOM_UTF8)
    text = head.decode("utf-8", errors="surrogateescape")
    sio = io.StringIO(text, newline="")
    reader = csv.reader(sio, delimiter=delimiter, quotechar='"', doublequote=True, strict=False)
    skipped = 0
    try:
        for rec in reader:
            if any(x.strip() for x in rec):
                break
            skipped = reader.line_num
        else:
            if more:
                raise InputError(f"{path}: the first {human_bytes(_HEADER_BYTES)} hold no header row, only blank lines")
            return None
    except csv.Error as e:
        raise InputError(f"{path}: the header row cannot be read as CSV: {e}") from e
    lines = reader.line_num - skipped
    if (more and sio.tell() >= len(text)) or any("\n" in x or "\r" in x for x in rec):
        raise InputError(f"{path}: the header row (line {skipped + 1}) has a quote that does not close where it "
                         f"should: it runs over {lines} lines{' and past the first ' + human_bytes(_HEADER_BYTES) if more else ''}")
    for name in rec:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InputError(f"{path}: the header row (line {skipped + 1}) is not valid {enc.name} text "
                             f"(column {rec.index(name) + 1}, {name!r})") from e
    return rec, skipped


def _check_header(path: Path, names: list[str], fields: Iterable[str] | None, delimiter: str) -> None:
    """Refuse a file whose first record names no field the mapping reads: it is data, not a header.

    Without ``fields`` (the caller did not say which fields its mapping reads) the default names are
    known, and a first record whose cells all look like column names is taken as a header anyway (its
    names may be mapped with --map; rows that lack the fields are quarantined as such).
    """
    known = set(fields) if fields is not None else set(FieldMapping().consumed_top_level())
    cells = [n.strip() for n in names]
    if any(c in known for c in cells):
        return
    if fields is None and all(_NAME_LIKE.fullmatch(c) for c in cells):
        return
    shown = delimiter.join(names)
    shown = shown if len(shown) <= 200 else shown[:200] + "..."
    raise InputError(
        f"{path}: the first record ({shown!r}) does not name any field curate reads "
        f"({', '.join(sorted(known))}): a CSV file needs a header row that names its columns. Add a header row "
        f"(for example: instruction{delimiter}output), or, if this is the header and its names are other ones, "
        f"map them with --map, for example --map instruction=<column> --map output=<column>")


def _csv_columns(names: list[str]) -> tuple[list[str], str | None]:
    """Column names for DuckDB (trimmed, empty ones named ``column<i>``, repeats renamed ``<name>_<k>``)
    and a note naming the repeats and their new names (DuckDB names ignore case, so repeats do too)."""
    cleaned = [n.strip() or f"column{i}" for i, n in enumerate(names)]
    originals = {c.lower() for c in cleaned}
    taken: set[str] = set()
    out: list[str] = []
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(cleaned):
        groups.setdefault(name.lower(), []).append(i)
        if name.lower() not in taken:
            out.append(name)
            taken.add(name.lower())
            continue
        k = 1
        while f"{name}_{k}".lower() in taken or f"{name}_{k}".lower() in originals:
            k += 1
        out.append(f"{name}_{k}")
        taken.add(out[-1].lower())
    notes = []
    for cols in groups.values():
        if len(cols) < 2:
            continue
        spelled = sorted({cleaned[i] for i in cols}, key=lambda n: cleaned.index(n))
        what = " and ".join(repr(n) for n in spelled) + (" (names that differ only in case)" if len(spelled) > 1 else "")
        renamed = cols[1:]
        notes.append(
            f"the header repeats the column name {what} in columns {_and([i + 1 for i in cols])}; "
            f"column{'s' if len(renamed) > 1 else ''} {_and([i + 1 for i in renamed])} "
            f"{'are' if len(renamed) > 1 else 'is'} read as {_and([repr(out[i]) for i in renamed])}")
    return out, "; ".join(notes) or None


def _and(items: list) -> str:
    items = [str(x) for x in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _csv_options(delimiter: str, columns: list[str], header: bool, skip: int, max_row_bytes: int) -> str:
    cols = ", ".join(f"{sql_literal(c)}: 'VARCHAR'" for c in columns)
    return (f"delim={sql_literal(delimiter)}, header={str(header).lower()}, skip={int(skip)}, auto_detect=false, "
            f"columns={{{cols}}}, quote='\"', escape='\"', store_rejects=true, strict_mode=true, "
            f"null_padding=false, max_line_size={int(max_row_bytes)}")


def _record_end(buf, start: int, stop: int, delim: bytes) -> int:  # noqa: ANN001
    """Where the CSV record that starts at ``start`` ends as DuckDB reads it: the offset of its closing
    newline, or ``stop``.

    A quoted value runs to the next quote that is not doubled, newlines and all; text after a closing
    quote breaks the record, and DuckDB goes on after the end of that line. A quote inside an
    unquoted value is text. Used for rejected records only (DuckDB does not say where they end).
    """
    pos = start
    while pos < stop:
        if buf[pos] == 0x22:
            j = pos + 1
            while True:
                k = buf.find(b'"', j, stop)
                if k < 0:
                    return stop
                if k + 1 < stop and buf[k + 1] == 0x22:
                    j = k + 2
                    continue
                break
            pos = k + 1
            nxt = buf[pos : pos + 1]
            if nxt == delim:
                pos += 1
                continue
            if not nxt or nxt == b"\n":
                return min(pos, stop)
            if nxt == b"\r" and buf[pos + 1 : pos + 2] == b"\n":
                return pos + 1
            k = buf.find(b"\n", pos, stop)
            return k if k >= 0 else stop
        d = buf.find(delim, pos, stop)
        nl = buf.find(b"\n", pos, stop)
        nl = stop if nl < 0 else nl
        if d < 0 or d > nl:
            return nl
        pos = d + 1
    return stop


def _csv_line_end(buf, start: int, stop: int, csv_line: str | None) -> int | None:  # noqa: ANN001
    """The end of a rejected record from the text DuckDB kept of it, when that is the whole record as in the file."""
    if not csv_line or len(csv_line) >= _CSV_LINE_LIMIT:
        return None
    text = csv_line.lstrip("\r\n").encode("utf-8")
    end = start + len(text)
    if not text or end > stop or buf[start:end] != text:
        return None
    if end == stop or buf[end : end + 1] == b"\n":
        return end
    if buf[end : end + 2] == b"\r\n":
        return end + 1
    return None


def _count_newlines(buf, a: int, b: int) -> int:  # noqa: ANN001
    step = 16 << 20
    return sum(buf[i : min(b, i + step)].count(b"\n") for i in range(a, b, step))


def _invalid_bytes_reason(data: bytes, line: int, codec: str, how: str) -> str | None:
    """'invalid gb18030 bytes at byte 12 of line 8 (illegal multibyte sequence)', or None when ``data`` decodes."""
    for name in dict.fromkeys((codec, "utf-8")):
        try:
            data.decode(name)
        except UnicodeDecodeError as e:
            at = e.start
            line_at = line + data.count(b"\n", 0, at)
            col = at - (data.rfind(b"\n", 0, at) + 1) + 1
            note = f"; the file is read as {name} ({how})" if name != "utf-8" or how != "detected" else ""
            return f"invalid {name} bytes at byte {col} of line {line_at} ({e.reason}){note}"
    return None


def read_csv(path: Path, delimiter: str = ",", forced_encoding: str | None = None,
             chunk_rows: int = DEFAULT_CHUNK_ROWS, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES,
             state: ReadState | None = None, fields: Iterable[str] | None = None) -> Iterator[RawChunk]:
    """CSV/TSV with a header row. Cells are read as text; an empty cell is an empty string.

    ``fields``: the top-level input fields the mapping reads (``FieldMapping.consumed_top_level``);
    a file whose first record names none of them has no header and is refused (see
    :func:`_check_header`). Python's ``csv`` reads the header and DuckDB reads the rows with those
    columns, never sniffing. Malformed records (wrong number of columns, invalid bytes, over-long
    records) are collected by DuckDB's rejects tables and yielded last, as rows with a problem and the
    physical line where they start. A quote that never closes makes DuckDB read the lines after it as
    one broken record, to the end of the file or to the next quote: only the line with the quote is
    quarantined, and those lines are read again, as records of their own. ``row_number`` counts the
    well-formed records in the order they are read (lines read again come after the rest).
    """
    state = state if state is not None else ReadState()
    check_readable(path)
    enc = detect_file(path, forced_encoding, _opener(path))
    state.encoding, state.unit = enc.name, "rows"
    codec = "utf-8" if enc.is_utf8 else enc.name
    how = "given with --encoding" if forced_encoding else "detected"
    delim = delimiter.encode("utf-8")
    with tempfile.TemporaryDirectory(prefix="curate-") as tmp:
        src, tail, tail_note = _utf8_path(path, enc, tmp, state)
        header = _csv_header(path, src, delimiter, enc)
        if header is None:
            state.problems.append(FileProblem("file is empty (no header, no rows)", ""))
            return
        names, blank_before = header
        _check_header(path, names, fields, delimiter)
        columns, note = _csv_columns(names)
        if note:
            state.problems.append(FileProblem(note))
        project = ", ".join(f"{sql_literal(c)}: coalesce(t.{sql_ident(c)}, '')" for c in columns)
        rejects: list[_CsvReject] = []
        todo: deque[tuple[int, int]] = deque()
        next_row, done, n_parts = 1, 0, 0
        with open(src, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            size = len(mm)
            todo.append((0, size))
            while todo:
                base, stop = todo.popleft()
                if base == 0 and stop == size:  # the whole file, after its header
                    part, opts = src, _csv_options(delimiter, columns, True, blank_before, max_row_bytes)
                else:  # lines read again: a copy of just those
                    if not mm[base:stop].strip():
                        continue
                    n_parts += 1
                    part = Path(tmp) / f"part{n_parts}.csv"
                    with open(part, "wb") as out:
                        for i in range(base, stop, 8 << 20):
                            out.write(mm[i : min(stop, i + (8 << 20))])
                    opts = _csv_options(delimiter, columns, False, 0, max_row_bytes)
                con = _duckdb_scratch()
                try:
                    sql = f"SELECT to_json({{{project}}}) FROM read_csv(?, {opts}) t"
                    for table in _stream_rows(con, sql, [str(part)], chunk_rows, next_row):
                        next_row += table.num_rows
                        done += table.num_rows
                        yield RawChunk(_mark_large(table, max_row_bytes), done)
                    found = con.execute(
                        """SELECT min(line_byte_position), list(DISTINCT error_type), first(csv_line),
                                  string_agg(DISTINCT error_message, '; ')
                           FROM reject_errors GROUP BY line ORDER BY line"""
                    ).fetchall()
                finally:
                    con.close()
                for pos, types, csv_line, message in found:
                    reject, again = _csv_reject(mm, base, stop, pos, set(types), csv_line, message, delim)
                    rejects.append(reject)
                    if again is not None:
                        todo.append(again)
            bad = _csv_rejects_table(mm, rejects, codec, how)
            tail_line = _count_newlines(mm, 0, size) + 1 if tail is not None else 0
        if bad.num_rows:
            yield RawChunk(bad, done)
        if tail is not None:
            yield RawChunk(_tail_row(tail, tail_line, codec, tail_note), done)


def _csv_reject(mm, base: int, stop: int, pos: int | None, types: set[str], csv_line: str | None,  # noqa: ANN001
                message: str, delim: bytes) -> tuple[_CsvReject, tuple[int, int] | None]:
    """A rejected record of the part ``[base, stop)`` of the file, and the span to read again, if any.

    DuckDB's ``line_byte_position`` is at or one past the record's start (it counts records, not
    lines, so its ``line`` is not used): the record starts after the last newline before it.
    """
    at = min(stop, base + max(0, pos or 0))
    nl = mm.rfind(b"\n", base, at)
    start = nl + 1 if nl >= 0 else base
    while start < stop and mm[start] in (10, 13):
        start += 1
    first_end = mm.find(b"\n", start, stop)
    first_end = stop if first_end < 0 else first_end
    end = _csv_line_end(mm, start, stop, csv_line)
    if end is None:
        end = _record_end(mm, start, stop, delim)
    if _QUOTE_ERROR in types:
        again = (first_end + 1, min(stop, end + 1)) if end > first_end + 1 else None
        return _CsvReject(start, first_end, types, message), again
    return _CsvReject(start, end if end > start else first_end, types, message), None


def _csv_rejects_table(mm, rejects: list[_CsvReject], codec: str, how: str) -> pa.Table:  # noqa: ANN001
    """Quarantine rows for the rejected records, in file order, with their physical line and exact bytes."""
    lines, raws, raw_bytes, problems = [], [], [], []
    counted_to, newlines = 0, 0
    for r in sorted(rejects, key=lambda r: r.start):
        newlines += _count_newlines(mm, counted_to, r.start)
        counted_to = r.start
        line = newlines + 1
        exact = bytes(mm[r.start : r.end]).rstrip(b"\r")
        try:
            text, blob = exact.decode("utf-8"), None
        except UnicodeDecodeError:
            text, blob = exact.decode("utf-8", errors="backslashreplace"), exact
        if _QUOTE_ERROR in r.types:
            why = ("unterminated quote: a quoted value that starts on this line does not close where it should, "
                   "so only this line is quarantined and the lines after it are read as records of their own")
        elif blob is not None:
            why = _invalid_bytes_reason(exact, line, codec, how) or r.message
        else:
            why = r.message
        lines.append(line)
        raws.append(text)
        raw_bytes.append(blob)
        problems.append(f"malformed CSV record: {why}")
    n = len(lines)
    return pa.table(
        [pa.nulls(n, pa.int64()), pa.array(lines, pa.int64()), pa.array(raws, pa.string()),
         pa.array(raw_bytes, pa.binary()), pa.array(problems, pa.string()), pa.nulls(n, pa.string())],
        schema=RAW_SCHEMA,
    )


class _ArrowToJson:
    """Rows of Arrow record batches as JSON text, through one scratch DuckDB."""

    def __init__(self, chunk_rows: int, max_row_bytes: int) -> None:
        self.chunk_rows, self.max_row_bytes = chunk_rows, max_row_bytes
        self.con = _duckdb_scratch()

    def chunks(self, rb: pa.RecordBatch, first_row: int) -> Iterator[pa.Table]:
        self.con.register("arrow_in", pa.Table.from_batches([rb]))
        try:
            for table in _stream_rows(self.con, "SELECT to_json(t) FROM arrow_in t", [], self.chunk_rows, first_row):
                yield _mark_large(table, self.max_row_bytes)
        finally:
            self.con.unregister("arrow_in")

    def close(self) -> None:
        self.con.close()


def read_arrow_batches(batches: Iterator[pa.RecordBatch], chunk_rows: int = DEFAULT_CHUNK_ROWS,
                       max_row_bytes: int = DEFAULT_MAX_ROW_BYTES) -> Iterator[RawChunk]:
    """Rows of Arrow record batches (Parquet, HF datasets) as JSON text; ``row_number`` = 1-based row."""
    conv = _ArrowToJson(chunk_rows, max_row_bytes)
    try:
        next_row = 1
        for rb in batches:
            if rb.num_rows == 0:
                continue
            for table in conv.chunks(rb, next_row):
                next_row += table.num_rows
                yield RawChunk(table, next_row - 1)
    finally:
        conv.close()


def _problem_rows(first: int, last: int, problem: str, chunk_rows: int) -> Iterator[pa.Table]:
    """Rows ``first``..``last`` (1-based) that cannot be read, each a row with ``problem`` and no text."""
    for a in range(first, last + 1, chunk_rows):
        b = min(last, a + chunk_rows - 1)
        n = b - a + 1
        rn = _int64_array(np.arange(a, b + 1, dtype=np.int64))
        yield add_row_hashes(pa.table(
            [rn, pa.nulls(n, pa.int64()), pa.nulls(n, pa.string()), pa.nulls(n, pa.binary()),
             pa.array([problem] * n, pa.string())], schema=_RAW_FIELDS))


def _first_line(e: BaseException) -> str:
    """The first line of a library's error message, without the names of exception classes in it."""
    text = str(e).strip()
    first = text.splitlines()[0] if text else "unknown error"
    return re.sub(r"\b[A-Za-z]*(?:Exception|Error)\b:?\s*", "", first).strip() or first


def read_parquet(path: Path, chunk_rows: int = DEFAULT_CHUNK_ROWS, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES,
                 state: ReadState | None = None) -> Iterator[RawChunk]:
    """A Parquet file, streamed by row group.

    A file that is not Parquet, or whose footer (its table of contents) is missing or damaged, cannot
    be read at all (InputError). A row group that cannot be read (damaged pages: checksums are
    verified where the writer stored them) does not stop the others: each of its rows that was not
    read is a row with a problem naming the row group and its rows.
    """
    import pyarrow.parquet as pq

    state = state if state is not None else ReadState()
    check_readable(path)
    size = path.stat().st_size
    if size == 0:
        state.problems.append(FileProblem("file is empty (no rows)", ""))
        return
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(max(0, size - 4))
        end = f.read(4)
    if head != b"PAR1":
        raise InputError(f"{path}: not a Parquet file (it does not start with the Parquet signature PAR1)")
    if end != b"PAR1" or size < 12:
        raise InputError(f"{path}: the Parquet file is truncated or damaged: it does not end with the Parquet "
                         "footer (PAR1), which holds its table of contents; was it copied whole?")
    try:
        pf = pq.ParquetFile(path, page_checksum_verification=True)
        meta = pf.metadata
    except Exception as e:  # pyarrow raises ArrowInvalid, OSError and others for a damaged footer
        raise InputError(f"{path}: the Parquet file's footer (its table of contents) is damaged: {_first_line(e)}") from e
    state.unit, state.total = "rows", meta.num_rows
    if meta.num_rows == 0:
        state.problems.append(FileProblem("file is empty (no rows)", ""))
        return
    conv = _ArrowToJson(chunk_rows, max_row_bytes)
    try:
        first = 1
        groups = meta.num_row_groups
        for g in range(groups):
            n = meta.row_group(g).num_rows
            next_row = first
            try:
                batches = pf.iter_batches(batch_size=chunk_rows, row_groups=[g])
            except Exception as e:  # noqa: BLE001 (reported as rows below)
                batches, failure = iter(()), e
            else:
                failure = None
            while failure is None:
                try:
                    rb = next(batches)
                except StopIteration:
                    break
                except Exception as e:  # noqa: BLE001 (a damaged page: the group's other rows become problem rows)
                    failure = e
                    break
                for table in conv.chunks(rb, next_row):
                    next_row += table.num_rows
                    yield RawChunk(table, next_row - 1)
            if failure is not None and next_row < first + n:
                why = (f"row group {g + 1} of {groups} (rows {first}-{first + n - 1}) is damaged and cannot be read "
                       f"({_first_line(failure)}); rows {next_row}-{first + n - 1} are not loaded")
                for table in _problem_rows(next_row, first + n - 1, why, chunk_rows):
                    yield RawChunk(table, int(table.column("row_number")[-1].as_py()))
            first += n
    finally:
        conv.close()
