"""The read-only SQL surface for data engineers.

Layers, each enough alone for what it guards:

* only reading statements are accepted (SELECT and its forms: PIVOT, SUMMARIZE, DESCRIBE, SHOW; EXPLAIN),
  checked on DuckDB's own parse before anything runs, one statement per call;
* the parse is searched for calls to functions that read or list files, run SQL given as a string, or change
  the database's state, and for tables named like files (``FROM 'x.csv'``): refused, naming them;
* the query runs on a read-only connection with external access off, no extensions, no Python objects as
  tables, the local file system disabled (not even the store's own file, its WAL or its folder can be read
  through SQL: the store is already open), and the configuration locked;
* a timer interrupts the query after ``timeout`` seconds, and at most ``limit_rows`` rows are fetched.

The first two layers are :mod:`curation.sql_check`'s; the rest, and the results, are here.

Results are written to files by our code (``write_result``: through a temporary file renamed into place,
never over the store), never by SQL.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from curation.duck import relation_arrow
from curation.errors import RefusedError, UsageError
from curation.sql_check import (  # noqa: F401  (the check's names, imported from here too)
    PRIVATE_TABLES,
    check_no_file_access,
    check_one_statement,
    check_read_only,
    refused_function,
)
from curation.store.store import Store

OUTPUT_FORMATS = ("table", "csv", "json", "parquet")
# the format of an --output file, from its extension
FILE_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".json": "json", ".jsonl": "json",
                ".ndjson": "json"}
FILE_EXTENSIONS_TEXT = ".parquet/.pq, .csv or .json/.jsonl/.ndjson"

DEFAULT_TIMEOUT = 300.0  # seconds; env CURATE_SQL_TIMEOUT
DEFAULT_LIMIT_ROWS = 1_000_000  # env CURATE_SQL_MAX_ROWS

# Added to the store's safe reader settings (``SAFE_READ_CONFIG``). The configuration is unlocked at connect
# only so that the settings DuckDB refuses before the database is started can be set; ``locked_reader``
# sets them and locks it before any query of the user's runs.
CONNECT_CONFIG: dict[str, object] = {
    "lock_configuration": False,
    "temp_directory": "",  # nothing spills next to the store (the local file system is off anyway)
    "python_enable_replacements": False,  # no Python variable is read as a table
}
_LOCKING = threading.Lock()
LOCK_STATEMENTS = (
    "SET enable_progress_bar = false",
    "SET disabled_filesystems = 'LocalFileSystem'",
    "SET lock_configuration = true",
)

# Functions refused by name (table or scalar), lowercase; with what they do, for the message.
# ------------------------------------------------------------------------------------------- running


@contextmanager
def locked_reader(store: Store) -> Iterator["duckdb.DuckDBPyConnection"]:  # noqa: F821
    """A read-only connection on the store that can reach no file (not the store's own file, its WAL, its
    folder or anything else: the store is already open), load nothing, and change no setting."""
    if getattr(store, "held", False):  # the service's held store: a READ ONLY transaction, external access off
        with store.sql_reader() as con:
            yield con
        return
    with store.reader(safe=True, config=CONNECT_CONFIG) as con:
        # Connections of one process to one file share one database (DuckDB's instance cache), and these settings
        # are the database's: the first connection sets and locks them, the others find them locked (the
        # service's threads read at once; a SET on a locked configuration would fail).
        with _LOCKING:
            if con.execute("SELECT current_setting('lock_configuration')").fetchall()[0][0] is not True:
                for statement in LOCK_STATEMENTS:
                    con.execute(statement)
        if con.execute("SELECT current_setting('lock_configuration')").fetchall()[0][0] is not True:
            raise RuntimeError("the SQL connection's configuration did not lock")
        yield con


@dataclass
class SqlResult:
    """A query's result, and whether it was cut at ``limit_rows``."""

    table: pa.Table
    cut: bool = False
    limit_rows: int | None = None


def timeout_message(timeout: float) -> str:
    return (f"stopped: the query ran past the {timeout:g} s timeout and was interrupted (the store is unchanged); "
            "pass --timeout SECONDS (0 = no timeout) or set CURATE_SQL_TIMEOUT to allow longer")


def run_sql(store: Store, query: str, params: list | dict | None = None, *, timeout: float | None = None,
            limit_rows: int | None = None) -> SqlResult:
    """Run one read-only statement on the store, stopped after ``timeout`` seconds (None or 0: never) and
    fetching at most ``limit_rows`` rows (None or 0: all); the query itself is limited, so no more rows are
    made than one past the cap."""
    import duckdb

    statement = check_one_statement(query)
    if timeout is not None and timeout < 0:
        raise UsageError(f"timeout must be 0 (none) or more seconds, not {timeout}")
    if limit_rows is not None and limit_rows < 0:
        raise UsageError(f"the row limit must be 0 (none) or more, not {limit_rows}")
    with locked_reader(store) as con:
        fired = threading.Event()

        def interrupt() -> None:
            fired.set()
            con.interrupt()

        timer = threading.Timer(timeout, interrupt) if timeout else None
        try:
            if timer is not None:
                timer.daemon = True
                timer.start()
            rel = con.sql(statement, params=params or None)
            if rel is None:  # a statement without a result
                return SqlResult(pa.table({}))
            if limit_rows:
                rel = rel.limit(limit_rows + 1)
            table = relation_arrow(rel)
        except duckdb.Error as e:
            if fired.is_set():
                raise RefusedError(timeout_message(timeout)) from e
            raise _sql_error(e) from e
        finally:
            if timer is not None:
                timer.cancel()
    if limit_rows and table.num_rows > limit_rows:
        return SqlResult(table.slice(0, limit_rows), cut=True, limit_rows=limit_rows)
    return SqlResult(table, limit_rows=limit_rows or None)


def _sql_error(e: Exception) -> Exception:
    import duckdb

    first = str(e).splitlines()[0]
    if isinstance(e, duckdb.PermissionException):
        return RefusedError(f"refused: {first} (`curate sql` reads only the store)")
    if isinstance(e, duckdb.OutOfMemoryException):
        return UsageError(f"SQL failed: {first} (nothing spills to disk in `curate sql`: aggregate or filter more, "
                          "or fetch fewer rows with --limit-rows)")
    if isinstance(e, (duckdb.InvalidInputException, duckdb.NotImplementedException)) and "read-only" in str(e):
        return RefusedError(f"refused: {first}")
    return UsageError(f"SQL failed: {first}")


def run_query(store: Store, query: str, params: list | dict | None = None, *, timeout: float | None = None,
              limit_rows: int | None = None) -> pa.Table:
    """Run one read-only statement on the store; its result as an Arrow table (see ``run_sql``; a result cut
    at ``limit_rows`` is returned cut, without saying so: use ``run_sql`` to know)."""
    return run_sql(store, query, params, timeout=timeout, limit_rows=limit_rows).table


# ------------------------------------------------------------------------------------------- results


def _jsonable(v: object) -> object:
    if isinstance(v, (bytes, bytearray)):
        return v.decode("utf-8", errors="backslashreplace")
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    return v


def to_json_lines(table: pa.Table) -> str:
    """One JSON object per row (JSON columns stay strings)."""
    return "".join(json.dumps(_jsonable(r), ensure_ascii=False, default=str) + "\n" for r in table.to_pylist())


def output_format(fmt: str | None, output: Path | None) -> str:
    """The format to use: ``--format`` if given, else the extension of ``--output``, else ``table``; a
    contradiction, or an output whose format cannot be told, is a usage error."""
    if fmt is not None and fmt not in OUTPUT_FORMATS:
        raise UsageError(f"unknown --format {fmt!r}: use one of {', '.join(OUTPUT_FORMATS)}")
    if output is None:
        fmt = fmt or "table"
        if fmt == "parquet":
            raise UsageError("--format parquet needs --output PATH")
        return fmt
    ext = output.suffix.lower()
    by_ext = FILE_FORMATS.get(ext)
    if fmt is None:
        if by_ext is None:
            raise UsageError(f"cannot tell the format of {output} from its extension ({ext or 'none'}): name it "
                             f"{FILE_EXTENSIONS_TEXT}, or pass --format csv|json|parquet")
        return by_ext
    if fmt == "table":
        raise UsageError("--format table is for the terminal; with --output use csv, json or parquet "
                         "(or leave --format out: the file's extension decides)")
    if by_ext is not None and by_ext != fmt:
        raise UsageError(f"--format {fmt} contradicts the extension of {output} ({ext} is {by_ext}); "
                         "leave --format out or change the file name")
    return fmt


def store_files(store: Store) -> list[Path]:
    """The store's file and the files beside it that go with it (DuckDB's WAL, the store's gate lock), which
    no result may replace."""
    p = store.path
    return [p, *(p.with_name(p.name + suffix) for suffix in (".wal", ".wal.recovery", ".wal.checkpoint", ".gate"))]


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)  # a hard link, another name on a case-insensitive disk
    except OSError:  # one of them does not exist
        return False


def check_output(output: Path, overwrite: bool = False, protect: Iterable[Path] = ()) -> None:
    """Refuse an output that is the store (or another protected file) by any name; a folder, a missing folder,
    or an existing file without ``overwrite`` is a usage error. Nothing is created."""
    for p in protect:
        if _same_file(output, Path(p)):
            raise RefusedError(f"refused: --output {output} is the store's file {p}; results never replace the "
                               "store (choose another file name)")
    if output.is_dir():
        raise UsageError(f"--output {output} is a folder; give a file name in it, e.g. {output / 'result.parquet'}")
    if output.exists() and not output.is_file():
        raise UsageError(f"--output {output} is not a regular file (a device, a pipe, ...); give a file name")
    parent = output.absolute().parent
    if not parent.exists():
        raise UsageError(f"--output {output}: the folder {parent} does not exist; create it first")
    if not parent.is_dir():
        raise UsageError(f"--output {output}: {parent} is not a folder")
    if (output.exists() or output.is_symlink()) and not overwrite:
        raise UsageError(f"--output {output} exists; pass --overwrite to replace it")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_result(table: pa.Table, fmt: str, output: Path, *, overwrite: bool = True, protect: Iterable[Path] = (),
                 create_parents: bool = True) -> None:
    """Write a result to ``output`` as CSV, JSON lines or Parquet: into a temporary file in the same folder,
    renamed into place once whole, so a failed write leaves nothing behind (and an older file as it was).

    ``protect``: files never replaced (the store); without ``overwrite`` an existing file is not replaced
    either; with ``create_parents`` missing folders are made."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if fmt not in ("csv", "json", "parquet"):
        raise UsageError(f"cannot write format {fmt!r} to a file; use csv, json or parquet")
    output = Path(output)
    protect = list(protect)
    if create_parents and not output.parent.exists():
        output.parent.mkdir(parents=True, exist_ok=True)
    check_output(output, overwrite, protect)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.absolute().parent)
    except OSError as e:
        raise UsageError(f"cannot write {output}: {e}") from e
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if fmt == "csv":
            pacsv.write_csv(_csv_safe(table), str(tmp))
        elif fmt == "json":
            tmp.write_text(to_json_lines(table), encoding="utf-8")
        else:
            pq.write_table(table, str(tmp))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        check_output(output, overwrite, protect)  # again, just before: nothing replaced the answer meanwhile
        if overwrite:
            os.replace(tmp, output)
        else:
            try:
                os.link(tmp, output)  # fails if the name was taken meanwhile: never replaces a file
            except FileExistsError as e:
                raise UsageError(f"--output {output} exists; pass --overwrite to replace it") from e
            except OSError:  # no hard links on this file system
                os.replace(tmp, output)
    except OSError as e:
        raise UsageError(f"cannot write {output}: {e}") from e
    finally:
        tmp.unlink(missing_ok=True)


def _csv_safe(table: pa.Table) -> pa.Table:
    """CSV cannot hold nested values: lists and structs become JSON text."""
    cols = []
    for name, col in zip(table.column_names, table.columns):
        if pa.types.is_nested(col.type):
            col = pa.array([None if v is None else json.dumps(_jsonable(v), ensure_ascii=False) for v in col.to_pylist()],
                           pa.string())
        cols.append(col)
    return pa.table(cols, names=table.column_names)


def csv_text(table: pa.Table) -> str:
    """The table as CSV text (for stdout)."""
    import pyarrow.csv as pacsv

    sink = pa.BufferOutputStream()
    pacsv.write_csv(_csv_safe(table), sink)
    return sink.getvalue().to_pybytes().decode("utf-8")
