"""Ingest orchestration: one batch per input, every row accounted for.

For each input: hash it (an identical input with the same options is not loaded again), open a batch,
stream raw chunks from the format's reader, normalise each chunk in a scratch DuckDB, and write the
samples and quarantine rows in one short store transaction per chunk. The batch is marked ``done``
with its counts once every row is written; a batch left ``loading`` by a crash is cleared and loaded
again under the same id by the next ingest of that input.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import mmap
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import xxhash

from curation import __version__
from curation.errors import CurateError, InputError, UsageError
from curation.ingest.likeness import unlike_instruction_share
from curation.ingest.mapping import FieldMapping
from curation.ingest.normalize import Normalizer
from curation.ingest.readers import (
    DEFAULT_CHUNK_BYTES,
    DEFAULT_CHUNK_ROWS,
    DEFAULT_MAX_ROW_BYTES,
    RawChunk,
    ReadState,
    check_readable,
    read_arrow_batches,
    read_csv,
    read_json_array,
    read_jsonl,
    read_parquet,
)
from curation.store.lease import LeaseLost, Owner, check_lease, current_owner
from curation.store.store import Store, utcnow
from schemas.batch import IngestFileReport

# DuckDB's row group size: appends are written in whole row groups (see ingest_source).
ROW_GROUP_ROWS = 122_880
FORMATS = ("auto", "jsonl", "json", "csv", "tsv", "parquet", "hf")
EXTENSIONS = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv",
    ".parquet": "parquet", ".pq": "parquet", ".arrow": "hf",
}

ProgressFn = Callable[[str, int, int, str], None]
"""progress(description, done, total, unit); total 0 when unknown."""


@dataclass(frozen=True)
class IngestOptions:
    """Options for one ingest call; every field mirrors a ``curate ingest`` flag."""

    format: str = "auto"
    mapping: FieldMapping = field(default_factory=FieldMapping)
    encoding: str | None = None
    source_name: str | None = None
    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    write_rows: int = 2 * 122_880
    split: str | None = None

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise UsageError(f"unknown format {self.format!r}; use one of: {', '.join(FORMATS)}")
        if self.max_row_bytes < 1024:
            raise UsageError(f"--max-row-bytes must be at least 1024, got {self.max_row_bytes}")
        if self.chunk_rows < 1 or self.chunk_bytes < 1024 or self.write_rows < 1:
            raise UsageError("chunk sizes must be positive (rows >= 1, bytes >= 1024)")

    def loading_options(self, fmt: str) -> dict[str, object]:
        """The options that change what is loaded (stored with the batch and hashed)."""
        return {"format": fmt, "map": self.mapping.as_dict(), "encoding": self.encoding,
                "source_name": self.source_name, "max_row_bytes": self.max_row_bytes, "split": self.split}


def detect_format(path: Path, given: str = "auto") -> str:
    """The format of ``path``: the one given, else from its extension (``.jsonl.gz`` too) or folder layout."""
    if given != "auto":
        return given
    if path.is_dir():
        return "hf"
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    fmt = EXTENSIONS.get(ext)
    if fmt is None:
        raise InputError(f"{path}: cannot tell the format from the extension {ext or '(none)'!r}; pass --format")
    if fmt == "json":
        with open(path, "rb") as f:
            head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
        if head.startswith(b"{"):
            return "jsonl"  # a .json file of one object per line
    return fmt


def _hash_path(path: Path) -> tuple[str, int]:
    """A content hash of a file (or a folder's files and names) and its size in bytes.

    XXH3-128, not sha256: the hash only recognises an input loaded before (no adversary), and it is
    read before any row is loaded, so its cost is paid in full on every ingest: 0.04 s for 477 MiB
    where sha256 takes 0.3 s. The name is part of the value, so hashes of other kinds never match.
    """
    h = xxhash.xxh3_128()
    size = 0
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in files:
        if path.is_dir():
            h.update(str(p.relative_to(path)).encode() + b"\0")
        n = p.stat().st_size
        if not n:
            continue
        with open(p, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            h.update(m)  # read in place from the page cache, no copy
            size += n
    return "xxh3-128:" + h.hexdigest(), size


def _options_hash(opts: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(opts, sort_keys=True).encode()).hexdigest()


@dataclass
class _Source:
    """One thing to load as a batch: a file, or one split of a dataset.

    ``identity`` gives (content hash, size); it reads the whole input, so it is called when the
    batch is opened, while the reader already runs (see :func:`ingest_source`), and only once.
    """

    source: str
    source_name: str
    fmt: str
    identity: Callable[[], tuple[str, int]]
    chunks: Callable[[ReadState], Iterator[RawChunk]]
    _identity: tuple[str, int] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _ident(self) -> tuple[str, int]:
        with self._lock:
            if self._identity is None:
                self._identity = self.identity()
            return self._identity

    @property
    def content_hash(self) -> str:
        """The input's content hash (computed on first use)."""
        return self._ident()[0]

    @property
    def size(self) -> int:
        """The input's size in bytes (0 for a hub dataset)."""
        return self._ident()[1]


def _hf_sources(path_or_id: str, opts: IngestOptions) -> list[_Source]:
    try:
        import datasets
    except ImportError as e:
        raise InputError("reading Hugging Face datasets needs the 'hf' extra: pip install 'llm-curate[hf]'") from e
    path = Path(path_or_id)
    if path.exists():
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists() or (path / "state.json").exists():
            loaded = datasets.load_from_disk(str(path))
        else:
            loaded = datasets.load_dataset(str(path))
        identity = functools.partial(_hash_path, path)
        source = str(path.resolve())
        base_name = opts.source_name or path.name
    else:
        # a hub id, for users with hub access
        loaded = datasets.load_dataset(path_or_id)
        parts = sorted(loaded.items()) if isinstance(loaded, datasets.DatasetDict) else [("", loaded)]
        hub_hash = "hf:" + "|".join(f"{k}:{v._fingerprint}" for k, v in parts)

        def identity() -> tuple[str, int]:
            return hub_hash, 0

        source = path_or_id
        base_name = opts.source_name or path_or_id
    splits = dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {"": loaded}
    if opts.split is not None:
        if opts.split not in splits:
            raise InputError(f"{path_or_id}: no split {opts.split!r}; it has: {', '.join(splits) or '(none)'}")
        splits = {opts.split: splits[opts.split]}
    out = []
    for split, ds in splits.items():
        suffix = f"#{split}" if split else ""

        def chunks(state: ReadState, ds=ds) -> Iterator[RawChunk]:
            state.unit, state.total = "rows", ds.num_rows
            if getattr(ds, "_indices", None) is not None:  # a selected/shuffled view: materialise its order
                ds = ds.flatten_indices()
            table = ds.data.table
            yield from read_arrow_batches(iter(table.to_batches(max_chunksize=opts.chunk_rows)),
                                          opts.chunk_rows, opts.max_row_bytes)

        def split_identity(suffix: str = suffix) -> tuple[str, int]:
            content_hash, size = identity()
            return f"{content_hash}{suffix}", size

        out.append(_Source(source + suffix, base_name + suffix, "hf", split_identity, chunks))
    return out


def _is_saved_dataset(path: Path) -> bool:
    return any((path / n).exists() for n in ("dataset_info.json", "dataset_dict.json", "state.json"))


def _folder_files(path: Path) -> list[Path]:
    """The data files of a folder, in name order: what a folder of raw files holds."""
    found = []
    for p in sorted(path.rglob("*")):
        rel = p.relative_to(path)
        if any(part.startswith(".") for part in rel.parts) or not p.is_file():
            continue
        suffixes = [x.lower() for x in p.suffixes]
        if suffixes and suffixes[-1] == ".gz":
            suffixes = suffixes[:-1]
        if suffixes and suffixes[-1] in EXTENSIONS and suffixes[-1] != ".arrow":
            found.append(p)
    return found


def _sources(raw_path: str, opts: IngestOptions) -> list[_Source]:
    """What to load for one path: a file; each data file of a folder; the splits of a saved or hub dataset.

    A folder saved by ``datasets`` (``save_to_disk``), or any folder or hub id with ``--format hf``, is
    read by the ``datasets`` library. Any other folder is a folder of files: each data file in it is its
    own batch, read by our readers, so that a bad row in one file is quarantined instead of stopping the
    whole folder.
    """
    path = Path(raw_path)
    if opts.format == "hf" or (path.is_dir() and _is_saved_dataset(path)):
        return _hf_sources(raw_path, opts)
    if not path.exists():
        raise InputError(f"{raw_path}: no such file or folder")
    if path.is_dir():
        files = _folder_files(path)
        if not files:
            raise InputError(f"{raw_path}: the folder holds no data files "
                             f"({', '.join(sorted(e for e in EXTENSIONS if e != '.arrow'))}, or .gz of these)")
        base = opts.source_name or path.name
        out: list[_Source] = []
        for f in files:
            out.extend(_file_source(f, opts, f"{base}/{f.relative_to(path).as_posix()}"))
        return out
    return _file_source(path, opts, opts.source_name or path.name)


def _file_source(path: Path, opts: IngestOptions, name: str) -> list[_Source]:
    check_readable(path)
    fmt = detect_format(path, opts.format)

    def chunks(state: ReadState) -> Iterator[RawChunk]:
        if fmt == "jsonl":
            return read_jsonl(path, opts.encoding, opts.chunk_bytes, opts.max_row_bytes, state)
        if fmt == "json":
            return read_json_array(path, opts.encoding, opts.chunk_rows, opts.max_row_bytes, state)
        if fmt in ("csv", "tsv"):
            return read_csv(path, "\t" if fmt == "tsv" else ",", opts.encoding, opts.chunk_rows,
                            opts.max_row_bytes, state, fields=opts.mapping.consumed_top_level())
        if fmt == "parquet":
            return read_parquet(path, opts.chunk_rows, opts.max_row_bytes, state)
        raise InputError(f"{path}: format {fmt!r} is not a file format")

    return [_Source(str(path.resolve()), name, fmt, functools.partial(_hash_path, path), chunks)]


def _claim_batch(store: Store, src: _Source, loading_opts: dict[str, object],
                 owner: Owner) -> tuple[int | None, str | None, tuple[int, Owner] | None]:
    """Open, or take over after a crash, the batch of ``src``, in one transaction.

    Returns ``(batch_id, None, None)`` when this process now owns the batch, ``(None, why, None)``
    when an identical input is already loaded, and ``(None, None, (batch_id, owner))`` when a live
    process is loading the same input right now (the caller waits for it).
    """
    opts_hash = _options_hash(loading_opts)
    now = utcnow()
    with store.writer() as con:
        rows = con.execute(
            """SELECT batch_id, status, ingested_at, source, owner, heartbeat_at FROM batches
               WHERE content_hash = ? AND options_hash = ? ORDER BY batch_id DESC""",
            [src.content_hash, opts_hash],
        ).fetchall()
        done = [r for r in rows if r[1] == "done"]
        if done:
            bid, _, at, where, _, _ = done[0]
            return None, f"identical to batch {bid} ({where}, ingested {at:%Y-%m-%d %H:%M:%S} UTC): nothing to do", None
        for bid, status, _, _, token, beat in rows:
            other = Owner.parse(token)
            if status == "loading" and other is not None and other != owner and other.alive(beat, now):
                return None, None, (bid, other)
        if rows:
            # A batch left 'loading' by a process that is gone, or 'failed', never completed: its partial rows
            # are cleared and it is loaded again under the same id, so that its accounting covers the whole input.
            # Unless a run already covers that id (a run reads the done batches up to its max_batch_id): the
            # batch becoming done would change that run's input after the fact, so it gets a new id instead.
            bid = rows[0][0]
            con.execute("DELETE FROM samples WHERE batch_id = ?", [bid])
            con.execute("DELETE FROM quarantine WHERE batch_id = ?", [bid])
            covered = con.execute("SELECT count(*) FROM runs WHERE max_batch_id >= ?", [bid]).fetchall()[0][0]
            if covered:
                new_bid = _insert_batch(con, src, loading_opts, opts_hash, owner, now)
                con.execute(
                    "UPDATE batches SET status = 'failed', finished_at = coalesce(finished_at, ?), "
                    "problems = concat_ws('; ', problems, ?), rows_loaded = 0, rows_quarantined = 0, "
                    "rows_already_present = 0 WHERE batch_id = ?",
                    [now, f"never completed; loaded again as batch {new_bid}", bid])
                return int(new_bid), None, None
            con.execute(
                "UPDATE batches SET status = 'loading', ingested_at = ?, finished_at = NULL, problems = NULL, "
                "source = ?, code_version = ?, owner = ?, heartbeat_at = ?, rows_read = 0, rows_loaded = 0, "
                "rows_quarantined = 0, rows_already_present = 0, blank_lines = 0 WHERE batch_id = ?",
                [now, src.source, __version__, owner.token(), now, bid],
            )
            return bid, None, None
        return _insert_batch(con, src, loading_opts, opts_hash, owner, now), None, None


def _insert_batch(con, src: _Source, loading_opts: dict[str, object], opts_hash: str, owner: Owner,  # noqa: ANN001
                  now: datetime) -> int:
    return int(con.execute(
        """INSERT INTO batches (source, source_name, format, options, content_hash, options_hash, bytes, status,
                                code_version, ingested_at, owner, heartbeat_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, 'loading', ?, ?, ?, ?) RETURNING batch_id""",
        [src.source, src.source_name, src.fmt, json.dumps(loading_opts), src.content_hash, opts_hash,
         src.size, __version__, now, owner.token(), now],
    ).fetchall()[0][0])


def _begin_batch(store: Store, src: _Source, loading_opts: dict[str, object], owner: Owner,
                 progress: ProgressFn | None = None, poll: float = 0.5) -> tuple[int | None, str | None]:
    """Claim the batch of ``src``; while another live process loads the same input, wait for it to end."""
    waited_for: tuple[int, Owner] | None = None
    while True:
        bid, skipped, busy = _claim_batch(store, src, loading_opts, owner)
        if busy is None:
            if skipped and waited_for is not None:
                skipped += f" (loaded by {waited_for[1].describe()} while this process waited)"
            return bid, skipped
        if busy != waited_for and progress:
            progress(f"{src.source_name}: waiting for {busy[1].describe()}, which is loading it as batch {busy[0]}",
                     0, 0, "")
        waited_for = busy
        time.sleep(poll)


def _may_exist(con, batch_id: int) -> bool:  # noqa: ANN001
    """Whether another batch of this batch's source name exists: sample ids contain the source name, so
    without one none of the batch's rows can be present already (and the anti-join is skipped). Asked in
    each write's own transaction, so a batch of the same name opened meanwhile by another process counts."""
    return con.execute(
        """SELECT count(*) FROM batches o JOIN batches b ON o.source_name = b.source_name
           WHERE b.batch_id = ? AND o.batch_id <> b.batch_id""", [batch_id]).fetchall()[0][0] > 0


def _write_chunk(store: Store, samples: pa.Table | None, bad: pa.Table | None, batch_id: int, owner: Owner,
                 alone: bool = True) -> tuple[int, int]:
    """Insert normalised rows in one transaction; returns (new samples, samples already present).

    The transaction first checks that this process still holds the batch (see ``curation.store.lease``).
    ``alone`` says that nothing runs beside this write (the last one of a batch).
    """
    with store.writer() as con:
        check_lease(con, "batches", "batch_id", batch_id, owner, utcnow())
        may_exist = _may_exist(con, batch_id)
        inserted = 0
        n = samples.num_rows if samples is not None else 0
        if n:
            # DuckDB must append whole row groups in order: Arrow chunks scanned in parallel go into
            # partial row groups per thread that the commit then merges (much slower). Beside the
            # normaliser, one thread appends the chunks as they are (the other core normalises);
            # alone, both threads share one contiguous chunk, which costs a copy of every string
            # (0.7 CPU-s per million rows) but finishes sooner.
            if alone:
                samples = samples.combine_chunks()
            else:
                con.execute("SET threads = 1")  # reset below: settings belong to the database instance
            con.register("chunk_samples", samples)
            # DuckDB tries each compression method on each segment of a column and keeps the best;
            # for every text column of samples that is DICT_FSST (checked on 1M generated rows with
            # pragma_storage_info). Naming it skips the trials: the same file, 0.45 CPU-s less per
            # million rows. Other types are not affected; a DuckDB without the method ignores it.
            forced = _force_compression(con, "dict_fsst")
            # raw_hash comes as 32 hex digits and is stored as the integer they spell (Arrow has no
            # unsigned 128-bit type to carry it as a number)
            rows = "SELECT c.* REPLACE (('0x' || c.raw_hash)::UHUGEINT AS raw_hash) FROM chunk_samples c"
            try:
                if may_exist:
                    inserted = con.execute(
                        f"INSERT INTO samples {rows} "
                        "WHERE NOT EXISTS (SELECT 1 FROM samples s WHERE s.sample_id = c.sample_id)"
                    ).fetchall()[0][0]
                else:
                    inserted = con.execute(f"INSERT INTO samples {rows}").fetchall()[0][0]
            finally:
                con.unregister("chunk_samples")
                if forced:
                    con.execute("RESET force_compression")
                if not alone:
                    con.execute("RESET threads")
        if bad is not None and bad.num_rows:
            con.register("chunk_bad", bad)
            try:
                con.execute("INSERT INTO quarantine SELECT * FROM chunk_bad")
            finally:
                con.unregister("chunk_bad")
    return int(inserted), n - int(inserted)


def _force_compression(con, method: str) -> bool:  # noqa: ANN001
    """``SET force_compression`` on the store connection; False when this DuckDB does not know ``method``."""
    import duckdb

    try:
        con.execute(f"SET force_compression = '{method}'")
        return True
    except duckdb.Error:
        return False


@dataclass
class _Started:
    """A source whose reader (and hash) already run, ahead of the batch being opened."""

    state: ReadState
    reader: "ReadAhead"
    hashing: threading.Thread

    @classmethod
    def begin(cls, src: _Source) -> "_Started":
        state = ReadState()
        reader = ReadAhead(src.chunks(state))

        def hash_quietly() -> None:
            with contextlib.suppress(Exception):  # an error surfaces when the batch asks for the hash
                src._ident()

        hashing = threading.Thread(target=hash_quietly, name="curate-hash", daemon=True)
        hashing.start()
        return cls(state, reader, hashing)


def ingest_source(store: Store, src: _Source, opts: IngestOptions, progress: ProgressFn | None = None,
                  started: _Started | None = None) -> IngestFileReport:
    """Load one source as a batch and return its report (``started``: its reader already runs)."""
    t0 = time.perf_counter()
    loading_opts = opts.loading_options(src.fmt)
    report = IngestFileReport(source=src.source, format=src.fmt)
    # the reader starts first: its first chunk is read while the input is hashed and the batch opened
    started = started or _Started.begin(src)
    state, reader = started.state, started.reader
    started.hashing.join()
    owner = current_owner()
    try:
        batch_id, skipped = _begin_batch(store, src, loading_opts, owner, progress)
    except BaseException:
        reader.close()
        raise
    if batch_id is None:
        reader.close()
        report.skipped = skipped
        return report
    report.batch_id = batch_id
    reasons: Counter[str] = Counter()
    try:
        pending_samples: list[pa.Table] = []
        pending_bad: list[pa.Table] = []
        pending_rows = 0
        aligned = opts.write_rows >= ROW_GROUP_ROWS

        writes: list[Future] = []

        def _wait_write(quiet: bool = False) -> None:
            """Wait for the write in flight and count what it loaded (re-raising its error unless quiet)."""
            while writes:
                fut = writes.pop()
                try:
                    new, present = fut.result()
                except BaseException:
                    if quiet:
                        continue
                    raise
                report.rows_loaded += new + present
                report.rows_already_present += present

        def flush(final: bool) -> None:
            nonlocal pending_rows
            samples = pa.concat_tables(pending_samples) if pending_samples else None
            bad = pa.concat_tables(pending_bad) if pending_bad else None
            keep = None
            if samples is not None and aligned and not final:
                # Append whole row groups: DuckDB then writes them once, where a partial row group
                # would be rewritten by the next transaction's checkpoint.
                n_write = samples.num_rows // ROW_GROUP_ROWS * ROW_GROUP_ROWS
                samples, keep = samples.slice(0, n_write), samples.slice(n_write)
            if (samples is None or samples.num_rows == 0) and bad is None:
                return
            # One write in flight at a time, on the writer thread: normalising the next chunks (DuckDB
            # in this thread) overlaps with inserting this one, and writes stay in file order.
            _wait_write()
            writes.append(writer.submit(_write_chunk, store, samples, bad, batch_id, owner, final))
            pending_samples.clear()
            pending_bad.clear()
            if keep is not None and keep.num_rows:
                pending_samples.append(keep)
            pending_rows = keep.num_rows if keep is not None else 0

        with Normalizer(opts.mapping) as norm, ThreadPoolExecutor(1, thread_name_prefix="curate-write") as writer:
            try:
                for chunk in reader:
                    # Writes are grouped: each one is a short transaction that opens and closes the store
                    # (readers get the file in between), and fewer, larger ones cost less. A group is
                    # written once the next chunk has come, so that the last chunk joins the final write
                    # instead of making a second write at the end that nothing overlaps.
                    if pending_rows >= opts.write_rows:
                        flush(final=False)
                    report.blank_lines += chunk.blank_lines
                    report.rows_read += chunk.table.num_rows
                    samples, bad = norm.run(chunk.table, batch_id, src.source, src.source_name)
                    if samples.num_rows:
                        pending_samples.append(samples)
                    if bad.num_rows:
                        pending_bad.append(bad)
                        reasons.update(_reason_kind(r) for r in bad.column("reason").to_pylist())
                    report.rows_quarantined += bad.num_rows
                    pending_rows += chunk.table.num_rows
                    if progress:
                        progress(src.source, chunk.done, state.total, state.unit)
                flush(final=True)
                _wait_write()
            except BaseException:
                _wait_write(quiet=True)  # the write in flight ends before the batch is marked failed
                raise
    except BaseException as e:
        reader.close()
        if not isinstance(e, LeaseLost):
            _fail_batch(store, batch_id, owner, e)
        raise
    report.encoding = state.encoding
    report.reasons = dict(reasons.most_common())
    report.problems = [p.reason for p in state.problems]
    if not report.balanced:  # a bug, never an input problem: refuse to mark the batch done
        err = RuntimeError(f"accounting does not balance for {src.source}: {report}")
        _fail_batch(store, batch_id, owner, err)
        raise err
    try:
        with store.writer() as con:
            check_lease(con, "batches", "batch_id", batch_id, owner, utcnow())
            _check_unique(con, batch_id, report)
            warning = unlike_instruction_share(con, batch_id).warning()
            if warning:
                report.warnings.append(warning)
            for p in state.problems:
                con.execute(
                    "INSERT INTO quarantine (batch_id, source, row_number, line, raw, reason) VALUES (?, ?, NULL, NULL, ?, ?)",
                    [batch_id, src.source, p.raw, p.reason],
                )
            con.execute(
                """UPDATE batches SET status = 'done', finished_at = ?, encoding = ?, rows_read = ?, rows_loaded = ?,
                          rows_quarantined = ?, rows_already_present = ?, blank_lines = ?, problems = ?
                   WHERE batch_id = ?""",
                [utcnow(), state.encoding, report.rows_read, report.rows_loaded, report.rows_quarantined,
                 report.rows_already_present, report.blank_lines, "; ".join(report.problems + report.warnings) or None,
                 batch_id],
            )
    except BaseException as e:
        if not isinstance(e, LeaseLost):
            _fail_batch(store, batch_id, owner, e)
        raise
    report.seconds = time.perf_counter() - t0
    return report


def _check_unique(con, batch_id: int, report: IngestFileReport) -> None:  # noqa: ANN001
    """The batch's rows, checked in the transaction that marks it done: each sample id once in ``samples``.

    A UNIQUE index on ``samples.sample_id`` would say the same on every insert, but DuckDB's index
    costs 2.5 s per million rows and four times the file size (measured on the development machine),
    which would put ingest far past its benchmark target. Every insert already skips ids that are present
    (in the same serialised transaction), and only the batch's owner writes it (see the lease); this
    check makes a bug in either loud: the batch fails instead of being marked done with doubled rows.
    """
    n, distinct = con.execute(
        "SELECT count(*), count(DISTINCT sample_id) FROM samples WHERE batch_id = ?", [batch_id]).fetchall()[0]
    new = report.rows_loaded - report.rows_already_present
    twice = 0
    if _may_exist(con, batch_id):
        twice = con.execute(
            """SELECT count(*) FROM samples s WHERE s.batch_id = ? AND s.sample_id IN (
                   SELECT o.sample_id FROM samples o JOIN batches ob ON ob.batch_id = o.batch_id
                   JOIN batches b ON b.batch_id = ? AND ob.source_name = b.source_name
                   WHERE o.batch_id <> b.batch_id)""", [batch_id, batch_id]).fetchall()[0][0]
    if n != distinct or n != new or twice:
        raise RuntimeError(
            f"batch {batch_id} would hold sample ids twice: {n} rows, {distinct} distinct ids, {new} new rows counted, "
            f"{twice} ids also in another batch; it is marked failed (a bug: please report it)")


def _fail_batch(store: Store, batch_id: int, owner: Owner, exc: BaseException) -> None:
    """Mark this process's batch failed with the reason, and clear its partial rows (a failed batch holds none)."""
    reason = str(exc) if isinstance(exc, CurateError) else f"{type(exc).__name__}: {exc}"
    if isinstance(exc, KeyboardInterrupt):
        reason = "interrupted (Ctrl-C)"
    with contextlib.suppress(Exception), store.writer() as con:
        if con.execute("SELECT owner FROM batches WHERE batch_id = ?", [batch_id]).fetchall() != [(owner.token(),)]:
            return
        con.execute("DELETE FROM samples WHERE batch_id = ?", [batch_id])
        con.execute("DELETE FROM quarantine WHERE batch_id = ?", [batch_id])
        con.execute(
            "UPDATE batches SET status = 'failed', finished_at = ?, problems = ?, rows_loaded = 0, "
            "rows_quarantined = 0, rows_already_present = 0 WHERE batch_id = ?",
            [utcnow(), f"load stopped: {reason}"[:2000], batch_id],
        )


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class ReadAhead:
    """Read ahead in a thread, so that splitting and decoding the next chunk overlaps with DuckDB
    normalising and writing this one (both release the GIL). The thread starts at once, so the first
    chunk is read while the batch is opened. Iterate once; exceptions are re-raised there; ``close``
    stops the thread (also when the chunks are never iterated)."""

    _done = object()

    def __init__(self, chunks: Iterator[RawChunk], depth: int = 2) -> None:
        self._chunks = chunks
        self._q: queue.Queue = queue.Queue(depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="curate-read-ahead", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        try:
            for chunk in self._chunks:
                if not self._put(chunk):
                    return
            self._put(self._done)
        except BaseException as e:  # handed to the consumer
            self._put(_Failed(e))
        finally:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator[RawChunk]:
        try:
            while True:
                item = self._q.get()
                if item is self._done:
                    return
                if isinstance(item, _Failed):
                    raise item.exc
                yield item
        finally:
            self.close()

    def close(self) -> None:
        """Stop reading and wait for the thread."""
        self._stop.set()
        self._thread.join(timeout=30)


def _reason_kind(reason: str) -> str:
    """Group reasons for the summary: 'malformed JSON: Expecting ...' -> 'malformed JSON'."""
    for prefix in ("malformed JSON", "malformed CSV record", "invalid "):
        if reason.startswith(prefix):
            return prefix.strip() if prefix != "invalid " else reason.split(" at byte")[0]
    if reason.startswith("row is ") and "limit" in reason:
        return "row over --max-row-bytes"
    return reason


def ingest_paths(store: Store, paths: list[str], opts: IngestOptions | None = None,
                 progress: ProgressFn | None = None) -> list[IngestFileReport]:
    """Ingest each path (a file, a folder of files, a dataset folder or, for ``hf``, a hub id); one report per batch.

    An input that cannot be read at all (a missing path, a file that is not what its format says, a
    dataset the ``datasets`` library cannot build) gets a report with ``failed`` set, its batch (if one was
    opened) is marked failed, and the next input is loaded. Problems with the store itself (busy,
    damaged, another process taking over a batch) stop the whole call.
    """
    opts = opts or IngestOptions()
    if not paths:
        raise UsageError("no input given")
    planned: list[_Source | IngestFileReport] = []
    for p in paths:
        try:
            planned.extend(_sources(p, opts))
        except InputError as e:
            planned.append(IngestFileReport(source=p, format=opts.format, failed=str(e)))
        except Exception as e:  # noqa: BLE001  (a library's own error on a bad input: named, and the next input goes on)
            planned.append(IngestFileReport(source=p, format=opts.format, failed=_unreadable(p, e)))
    sources = [s for s in planned if isinstance(s, _Source)]
    # The first input starts reading, and hashing, while the store is opened and migrated.
    first = _Started.begin(sources[0]) if sources else None
    try:
        store.init()
    except BaseException:
        if first is not None:
            first.reader.close()
        raise
    reports = []
    for item in planned:
        if isinstance(item, IngestFileReport):
            reports.append(item)
            continue
        started = first if item is sources[0] else None
        try:
            reports.append(ingest_source(store, item, opts, progress, started))
        except InputError as e:
            reports.append(_failed_report(store, item, str(e)))
        except CurateError:
            raise
        except Exception as e:  # noqa: BLE001  (see above; a bug in our code still fails only this input)
            reports.append(_failed_report(store, item, _unreadable(item.source, e)))
    return reports


def _unreadable(source: str, e: BaseException) -> str:
    first = str(e).splitlines()[0] if str(e) else ""
    return f"{source}: cannot be read ({type(e).__name__}: {first})"


def _failed_report(store: Store, src: _Source, reason: str) -> IngestFileReport:
    """The report of an input that failed, with the batch that was opened for it, if any."""
    report = IngestFileReport(source=src.source, format=src.fmt, failed=reason)
    with contextlib.suppress(Exception), store.reader() as con:
        rows = con.execute("SELECT batch_id FROM batches WHERE source = ? AND status = 'failed' "
                           "ORDER BY batch_id DESC LIMIT 1", [src.source]).fetchall()
        if rows:
            report.batch_id = int(rows[0][0])
    return report
