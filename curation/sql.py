"""The read-only SQL surface for data engineers.

Two layers: only reading statements are accepted (checked on DuckDB's own parse, before anything
runs), and they run on a read-only connection that cannot reach other files or load extensions.
Results are written to files by our code, never by SQL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from curation.duck import query_arrow
from curation.errors import RefusedError, UsageError
from curation.store.store import Store

OUTPUT_FORMATS = ("table", "csv", "json", "parquet")


def check_read_only(query: str) -> list[str]:
    """Split ``query`` into statements and refuse any that is not a read; returns the statements."""
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
        if st.type not in allowed:
            kind = st.type.name.replace("_", " ")
            raise RefusedError(
                f"refused: `curate sql` is read-only and runs only SELECT (and EXPLAIN); got a {kind} statement: "
                f"{st.query.strip()[:120]}"
            )
        out.append(st.query)
    return out


def run_query(store: Store, query: str, params: list | None = None) -> pa.Table:
    """Run a read-only query on the store; the last statement's result as an Arrow table."""
    import duckdb

    statements = check_read_only(query)
    with store.reader(safe=True) as con:
        try:
            for st in statements[:-1]:
                con.execute(st)
            return query_arrow(con, statements[-1], params)
        except duckdb.PermissionException as e:
            raise RefusedError(f"refused: {str(e).splitlines()[0]} (`curate sql` reads only the store)") from e
        except (duckdb.InvalidInputException, duckdb.NotImplementedException) as e:
            if "read-only" in str(e):
                raise RefusedError(f"refused: {str(e).splitlines()[0]}") from e
            raise UsageError(f"SQL failed: {str(e).splitlines()[0]}") from e
        except duckdb.Error as e:
            raise UsageError(f"SQL failed: {str(e).splitlines()[0]}") from e


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


def write_result(table: pa.Table, fmt: str, output: Path) -> None:
    """Write a result to ``output`` as CSV, JSON lines or Parquet."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    output.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        pacsv.write_csv(_csv_safe(table), output)
    elif fmt == "json":
        output.write_text(to_json_lines(table), encoding="utf-8")
    elif fmt == "parquet":
        pq.write_table(table, output)
    else:
        raise UsageError(f"cannot write format {fmt!r} to a file; use csv, json or parquet")


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
