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

import gzip
import mmap
import os
import tempfile
from collections.abc import Iterator
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


def _opener(path: Path):  # noqa: ANN202
    return gzip.open if path.suffix == ".gz" else open


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


def _read_blocks(f, chunk_bytes: int, state: ReadState) -> Iterator[tuple[memoryview, np.ndarray | None, int]]:  # noqa: ANN001
    """Blocks of whole lines read from a file object (gzip, or an encoding to decode); as :func:`_mapped_blocks`."""
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
            inner = ReadState()
            yield from read_jsonl(tmp_path, "utf-8", chunk_bytes, max_row_bytes, inner)
            state.problems.extend(inner.problems)
        return
    codec = "utf-8" if enc.is_utf8 else enc.name
    next_line = 1
    any_rows = False
    with ExitStack() as stack:
        if path.suffix != ".gz" and codec == "utf-8":
            blocks = _mapped_blocks(path, enc.bom_length, chunk_bytes)
        else:
            f = stack.enter_context(opener(path, "rb"))
            if enc.bom_length:
                f.read(enc.bom_length)
            blocks = _read_blocks(f, chunk_bytes, state)
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
    # a line with anything but whitespace is a row: no rows means nothing but whitespace
    if not any_rows:
        state.problems.append(FileProblem("file is empty (no rows)", ""))


def _duckdb_scratch():  # noqa: ANN202
    import duckdb

    con = duckdb.connect(config={"threads": max(1, os.cpu_count() or 1)})
    return con


def _utf8_path(path: Path, enc: Encoding, tmpdir: str) -> Path:
    """The path DuckDB should read: the file itself when UTF-8, else a UTF-8 copy made line for line."""
    if enc.is_utf8 and path.suffix != ".gz":
        return path
    out = Path(tmpdir) / (path.stem + ".utf8")
    with _opener(path)(path, "rb") as src, open(out, "wb") as dst:
        transcode_to_utf8(src, dst, enc if not path.suffix == ".gz" or not enc.is_utf8 else Encoding("utf-8", enc.bom_length))
    return out


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
    """A JSON array of rows; ``row_number`` = 1-based element index. Each element is kept as its JSON text."""
    state = state if state is not None else ReadState()
    enc = detect_file(path, forced_encoding, _opener(path))
    state.encoding, state.unit = enc.name, "rows"
    with tempfile.TemporaryDirectory(prefix="curate-") as tmp:
        src = _utf8_path(path, enc, tmp)
        head = src.read_bytes()[: 1 << 16] if src.stat().st_size < (1 << 16) else open(src, "rb").read(1 << 16)
        if not head.strip(b" \t\r\n\xef\xbb\xbf"):
            state.problems.append(FileProblem("file is empty (no rows)", ""))
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
                if done:
                    raise InputError(f"{path}: JSON array stops parsing after element {done}: {e}") from e
                text = src.read_bytes()[:max_row_bytes].decode("utf-8", errors="backslashreplace")
                first = str(e).splitlines()[0]
                state.problems.append(FileProblem(f"not a readable JSON array: {first}", text))
        finally:
            con.close()


def read_csv(path: Path, delimiter: str = ",", forced_encoding: str | None = None,
             chunk_rows: int = DEFAULT_CHUNK_ROWS, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES,
             state: ReadState | None = None) -> Iterator[RawChunk]:
    """CSV/TSV with a header row. Cells are read as text; an empty cell is an empty string.

    Malformed records (wrong number of columns, bad quoting, invalid bytes, over-long lines) are
    collected by DuckDB's rejects tables with their line and yielded last, as rows with a problem.
    ``row_number`` counts the well-formed records; the quarantine gives the file line of bad ones.
    """
    import duckdb

    state = state if state is not None else ReadState()
    enc = detect_file(path, forced_encoding, _opener(path))
    state.encoding, state.unit = enc.name, "rows"
    with tempfile.TemporaryDirectory(prefix="curate-") as tmp:
        src = _utf8_path(path, enc, tmp)
        with open(src, "rb") as fh:
            head = fh.read(1 << 16)
        if not head.strip(b" \t\r\n\xef\xbb\xbf"):
            state.problems.append(FileProblem("file is empty (no header, no rows)", ""))
            return
        con = _duckdb_scratch()
        try:
            opts = (f"delim={sql_literal(delimiter)}, header=true, all_varchar=true, quote='\"', escape='\"', "
                    f"store_rejects=true, strict_mode=true, null_padding=false, sample_size=-1, "
                    f"max_line_size={int(max_row_bytes)}")
            try:
                cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_csv(?, {opts})", [str(src)]).fetchall()]
            except duckdb.Error as e:
                raise InputError(f"{path}: cannot read as CSV: {str(e).splitlines()[0]}") from e
            fields = ", ".join(f"{sql_literal(c)}: coalesce(t.{sql_ident(c)}, '')" for c in cols)
            sql = f"SELECT to_json({{{fields}}}) FROM read_csv(?, {opts}) t"
            done = 0
            for table in _stream_rows(con, sql, [str(src)], chunk_rows):
                done += table.num_rows
                yield RawChunk(_mark_large(table, max_row_bytes), done)
            rejects = con.execute(
                """SELECT line, min(line_byte_position), string_agg(DISTINCT error_type, ', '),
                          first(csv_line), string_agg(DISTINCT error_message, '; ')
                   FROM reject_errors GROUP BY line ORDER BY line"""
            ).fetchall()
        finally:
            con.close()
        if rejects:
            yield RawChunk(_rejects_table(src, rejects), done)


def _rejects_table(src: Path, rejects: list[tuple]) -> pa.Table:
    """Quarantine rows for DuckDB's CSV rejects, with the exact bytes and the physical line of each.

    DuckDB's ``line`` counts records, not lines (a quoted newline shifts it) and its
    ``line_byte_position`` is one past the record start, so both are recomputed from the file.
    """
    import mmap

    lines, raws, raw_bytes, problems = [], [], [], []
    with open(src, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        counted_to, newlines = 0, 0
        for _record, pos, _types, csv_line, message in sorted(rejects, key=lambda r: r[1] or 0):
            start = max(0, (pos or 1) - 1)
            probe = (csv_line or "").encode("utf-8")[:16]
            for cand in (start, start + 1, start - 1):
                if 0 <= cand and probe and mm[cand : cand + len(probe)] == probe:
                    start = cand
                    break
            end = mm.find(b"\n", start)
            exact = bytes(mm[start : end if end >= 0 else len(mm)]).rstrip(b"\r")
            newlines += mm[counted_to:start].count(b"\n") if hasattr(mm, "count") else bytes(mm[counted_to:start]).count(b"\n")
            counted_to = start
            try:
                text, blob = exact.decode("utf-8"), None
            except UnicodeDecodeError:
                text, blob = exact.decode("utf-8", errors="backslashreplace"), exact
            lines.append(newlines + 1)
            raws.append(text or csv_line)
            raw_bytes.append(blob)
            problems.append(f"malformed CSV record: {message}")
    n = len(lines)
    return pa.table(
        [pa.nulls(n, pa.int64()), pa.array(lines, pa.int64()), pa.array(raws, pa.string()),
         pa.array(raw_bytes, pa.binary()), pa.array(problems, pa.string()), pa.nulls(n, pa.string())],
        schema=RAW_SCHEMA,
    )


def read_arrow_batches(batches: Iterator[pa.RecordBatch], chunk_rows: int = DEFAULT_CHUNK_ROWS,
                       max_row_bytes: int = DEFAULT_MAX_ROW_BYTES) -> Iterator[RawChunk]:
    """Rows of Arrow record batches (Parquet, HF datasets) as JSON text; ``row_number`` = 1-based row."""
    con = _duckdb_scratch()
    try:
        next_row = 1
        for rb in batches:
            if rb.num_rows == 0:
                continue
            con.register("arrow_in", pa.Table.from_batches([rb]))
            for table in _stream_rows(con, "SELECT to_json(t) FROM arrow_in t", [], chunk_rows, next_row):
                next_row += table.num_rows
                yield RawChunk(_mark_large(table, max_row_bytes), next_row - 1)
            con.unregister("arrow_in")
    finally:
        con.close()


def read_parquet(path: Path, chunk_rows: int = DEFAULT_CHUNK_ROWS, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES,
                 state: ReadState | None = None) -> Iterator[RawChunk]:
    """A Parquet file, streamed by row group."""
    import pyarrow.parquet as pq

    state = state if state is not None else ReadState()
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as e:
        if path.stat().st_size == 0:
            state.problems.append(FileProblem("file is empty (no rows)", ""))
            return
        raise InputError(f"{path}: not a readable Parquet file: {e}") from e
    state.unit, state.total = "rows", pf.metadata.num_rows
    if pf.metadata.num_rows == 0:
        state.problems.append(FileProblem("file is empty (no rows)", ""))
        return
    yield from read_arrow_batches(pf.iter_batches(batch_size=chunk_rows), chunk_rows, max_row_bytes)

