"""The SQL surface's statement check: only reading statements, one per call, no function that reads or lists
files, runs SQL given as a string or changes state, no table named like a file, no private table; refusals
name what they refuse. Checked on DuckDB's own parse (as JSON) and on the tokens, before anything runs; the
running and the results are :mod:`curation.sql`'s."""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from curation.errors import RefusedError, UsageError

_PARSER = threading.local()
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
