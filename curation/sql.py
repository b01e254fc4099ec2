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

Results are written to files by our code (``write_result``: through a temporary file renamed into place,
never over the store), never by SQL.
"""

from __future__ import annotations

import functools
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from curation.duck import relation_arrow
from curation.errors import RefusedError, UsageError
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
_PARSER = threading.local()
LOCK_STATEMENTS = (
    "SET enable_progress_bar = false",
    "SET disabled_filesystems = 'LocalFileSystem'",
    "SET lock_configuration = true",
)

# Functions refused by name (table or scalar), lowercase; with what they do, for the message.
_FILE_FUNCTION = re.compile(r"(read_\w*|parquet_\w*|sniff_\w*|glob|\w*_scan|iceberg_\w*|delta_\w*|st_read\w*"
                            r"|st_drivers|\w*_metadata)")
_SQL_STRING_FUNCTIONS = {"query", "query_table", "json_execute_serialized_sql"}
_STATE_FUNCTIONS = {"checkpoint", "force_checkpoint", "enable_logging", "disable_logging", "truncate_duckdb_logs",
                    "enable_profiling", "disable_profiling", "add_grammar_extension", "remove_grammar_extension",
                    "register_external_resource", "register_external_resource_type", "create_external_resource",
                    "destroy_external_resource", "deregister_external_resource", "python_map_function",
                    "set_variable", "load_extension", "install_extension"}
# characters that make a table name a file name or pattern (``FROM 'data/x.csv'``, ``FROM "*.parquet"``)
_PATHLIKE = re.compile(r"[./\\:*?~\[\]{}]")
# a MULTI statement is accepted only when it is a PIVOT (DuckDB parses a PIVOT without IN as several)
_QUERY_START = {"select", "from", "with", "pivot", "pivot_wider", "values", "explain", "summarize", "describe", "("}
_FROM_KEYWORDS = {"from", "join", "pivot", "pivot_wider", "unpivot", "pivot_longer", "summarize", "describe", "table"}
_JOIN_WORDS = {"join", "as", "lateral", "inner", "left", "right", "full", "outer", "cross", "natural", "positional",
               "asof", "anti", "semi"}


def refused_function(name: str) -> str | None:
    """Why a call to function ``name`` is refused, or None when it may run."""
    name = name.lower()
    if name in _SQL_STRING_FUNCTIONS:
        return (f"refused: {name}() runs SQL given as a string, which `curate sql` cannot check; "
                "write the query itself")
    if name in _STATE_FUNCTIONS:
        return f"refused: {name}() changes the database's state; `curate sql` only reads"
    if _FILE_FUNCTION.fullmatch(name):
        return (f"refused: {name}() reads or lists files; `curate sql` reads only the store's tables and views "
                "(no file reading or listing functions)")
    return None


#: tables the SQL surface never reads: the API tokens' hashes
PRIVATE_TABLES = {"api_tokens"}


def _refused_private(name: str) -> str:
    return f"refused: {name} holds the API tokens' hashes and is not readable through SQL (`curate token list`)"


def _refused_table(name: str) -> str:
    return (f"refused: FROM {name!r} reads a file; `curate sql` reads only the store's tables and views "
            "(see SHOW TABLES)")


# ------------------------------------------------------------------------------------------- the parse


@dataclass
class _Token:
    kind: str  # identifier, keyword, string_const, numeric_const, operator
    text: str
    pos: int

    @property
    def word(self) -> str:
        """An identifier or keyword as DuckDB reads it: unquoted, lowercase for unquoted ones."""
        if self.text.startswith('"') and self.text.endswith('"') and len(self.text) >= 2:
            return self.text[1:-1].replace('""', '"')
        return self.text.lower()

    @property
    def name_in_quotes(self) -> str | None:
        """The text of a string constant or quoted identifier (what a replacement scan would open)."""
        if self.kind == "string_const" and len(self.text) >= 2 and self.text[-1] == "'":
            start = self.text.index("'")
            return self.text[start + 1:-1].replace("''", "'")
        if self.kind == "identifier" and self.text.startswith('"'):
            return self.word
        return None


def _tokens(text: str) -> list[_Token]:
    import duckdb

    found = duckdb.tokenize(text)
    out = []
    for i, (pos, kind) in enumerate(found):
        end = found[i + 1][0] if i + 1 < len(found) else len(text)
        name = getattr(kind, "name", str(kind)).lower()
        if name != "comment":
            out.append(_Token(name, text[pos:end].strip(), pos))
    return out


def _check_tokens(tokens: list[_Token]) -> None:
    """Refuse calls to refused functions (any name followed by an opening parenthesis) and string or quoted
    names where a table goes: works on any statement, whatever DuckDB can serialise."""
    from_stack = [False]
    prev: _Token | None = None
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if tok.kind in ("identifier", "keyword") and nxt is not None and nxt.text == "(":
            why = refused_function(tok.word)
            if why:
                raise RefusedError(why)
        if tok.kind in ("identifier", "keyword") and tok.word.lower() in PRIVATE_TABLES:
            raise RefusedError(_refused_private(tok.word.lower()))
        quoted = tok.name_in_quotes
        if quoted is not None and prev is not None and _PATHLIKE.search(quoted):
            after_table_word = prev.kind == "keyword" and prev.word in _FROM_KEYWORDS
            if after_table_word or (prev.text == "," and from_stack[-1]):
                raise RefusedError(_refused_table(quoted))
        if tok.text == "(":
            from_stack.append(False)
        elif tok.text == ")":
            if len(from_stack) > 1:
                from_stack.pop()
        elif tok.kind == "keyword":
            if tok.word in ("from", "join"):
                from_stack[-1] = True
            elif tok.word not in _JOIN_WORDS:
                from_stack[-1] = False
        prev = tok


def _walk(node: object) -> Iterator[dict]:
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def _serialized(text: str) -> dict | None:
    """DuckDB's parse of a SELECT as JSON (None for what it cannot serialise: EXPLAIN, a PIVOT without IN)."""
    import duckdb

    con = getattr(_PARSER, "con", None)
    if con is None:  # one empty in-memory database per thread, kept: opening one per query cost ~30 ms
        con = _PARSER.con = duckdb.connect(":memory:", config={
            "enable_external_access": False, "autoload_known_extensions": False, "autoinstall_known_extensions": False,
            "lock_configuration": True})
    try:
        tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [text]).fetchall()[0][0])
    except duckdb.Error:
        return None
    return None if tree.get("error") else tree


def _check_tree(tree: dict) -> None:
    """Refuse calls to refused functions and tables named like files, anywhere in the parse tree."""
    for node in _walk(tree):
        name = node.get("function_name")
        if isinstance(name, str):
            why = refused_function(name)
            if why:
                raise RefusedError(why)
        if node.get("type") in ("BASE_TABLE", "SHOW_REF"):
            if str(node.get("table_name") or "").lower() in PRIVATE_TABLES:
                raise RefusedError(_refused_private(str(node.get("table_name")).lower()))
            for key in ("table_name", "schema_name", "catalog_name"):
                value = node.get(key)
                if isinstance(value, str) and _PATHLIKE.search(value.strip('"')):
                    raise RefusedError(_refused_table(value))


def _inner_of_explain(text: str, tokens: list[_Token]) -> str | None:
    """The query that ``EXPLAIN [ANALYZE] [(options)]`` explains (None if not an EXPLAIN)."""
    if not tokens or tokens[0].word != "explain":
        return None
    depth = 0
    for i, t in enumerate(tokens[1:], start=1):
        if t.text == "(" and (depth or tokens[i - 1].word in ("explain", "analyze")):
            depth += 1
        elif t.text == ")" and depth:
            depth -= 1
        elif not depth and t.word != "analyze":
            return text[t.pos:]
    return None


def check_no_file_access(text: str) -> None:
    """Refuse a statement that calls a function reading or listing files (or running SQL from a string, or
    changing state), or names a file where a table goes; the message names it."""
    tokens = _tokens(text)
    _check_tokens(tokens)
    inner = _inner_of_explain(text, tokens)
    tree = _serialized(inner if inner is not None else text)
    if tree is not None:
        _check_tree(tree)


def _is_pivot(tokens: list[_Token]) -> bool:
    words = [t.word for t in tokens if t.kind in ("keyword", "identifier", "operator")]
    return bool(words) and words[0] in _QUERY_START and any(w in ("pivot", "pivot_wider") for w in words)


def check_read_only(query: str) -> list[str]:
    """Split ``query`` into statements and refuse any that is not a read, or that reaches files; returns the
    statements."""
    # The verdict depends on the text alone; a query asked again (a dashboard's, a service's clients') is
    # checked once: the check (tokens, DuckDB's parse as JSON, the walk of it) took most of a small query's time.
    if len(query) <= _CHECKED_MAX_CHARS:
        return list(_checked(query))
    return _check_read_only(query)


_CHECKED_MAX_CHARS = 4_000


@functools.lru_cache(maxsize=512)
def _checked(query: str) -> tuple[str, ...]:
    return tuple(_check_read_only(query))  # a refusal raises, and lru_cache keeps no exception


def _check_read_only(query: str) -> list[str]:
    import duckdb

    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as e:
        raise UsageError(f"SQL does not parse: {str(e).splitlines()[0]}") from e
    if not statements:
        raise UsageError("no SQL statement given")
    allowed = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
    out = []
    for st in statements:
        if st.type not in allowed and not (st.type == duckdb.StatementType.MULTI and _is_pivot(_tokens(st.query))):
            kind = st.type.name.replace("_", " ")
            hint = ("; a function that reads the store is called with SELECT * FROM fn(...)"
                    if st.type == duckdb.StatementType.CALL else "")
            raise RefusedError(
                f"refused: `curate sql` is read-only and runs only SELECT (with PIVOT, SUMMARIZE, DESCRIBE, SHOW) "
                f"and EXPLAIN; got a {kind} statement: {st.query.strip()[:120]}{hint}"
            )
        out.append(st.query)
    for text in out:
        check_no_file_access(text)
    return out


def check_one_statement(query: str) -> str:
    """The one statement of ``query``, checked by ``check_read_only``; several are a usage error."""
    statements = check_read_only(query)
    if len(statements) > 1:
        first = " ".join(statements[0].split())[:60]
        raise UsageError(
            f"`curate sql` runs one statement per call; got {len(statements)} (the first: {first!r}). "
            "Run `curate sql` once per statement (one `;` at the end is fine)"
        )
    return statements[0]


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
