"""`curate sql`: read-only SQL on the store (the library side is ``curation.sql``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from curation.cli.common import handle_errors, open_cli_store
from curation.errors import UsageError


def _from_env(name: str, cast, default):  # noqa: ANN001, ANN202
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = cast(raw.replace("_", ""))
    except ValueError:
        raise UsageError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise UsageError(f"{name}={raw!r}: use 0 (none) or more")
    return value


@handle_errors
def sql_command(
    query: Annotated[str, typer.Argument(help="One SELECT (or PIVOT, SUMMARIZE, DESCRIBE, SHOW, EXPLAIN) statement.")],
    fmt: Annotated[Optional[str], typer.Option(
        "--format", help="table|csv|json|parquet (default: from --output's extension, else table).")] = None,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Write the result to this file (.parquet/.pq, .csv, .json/.jsonl/.ndjson); its folder "
        "must exist; never the store.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --output file.")] = False,
    max_rows: Annotated[int, typer.Option(help="Rows shown in table format (the display's own cap).")] = 200,
    limit_rows: Annotated[Optional[int], typer.Option(
        "--limit-rows", help="Rows fetched at most, for any output (default: env CURATE_SQL_MAX_ROWS, else 1000000; "
        "0 = no cap); a cut result says so on stderr.")] = None,
    timeout: Annotated[Optional[float], typer.Option(
        help="Stop the query after this many seconds (default: env CURATE_SQL_TIMEOUT, else 300; 0 = none); "
        "a stopped query exits with 3.")] = None,
) -> None:
    """Run one read-only SQL statement on the store: SELECT, PIVOT, SUMMARIZE, DESCRIBE, SHOW or EXPLAIN.

    Refused (exit 3): writes and anything that changes state or settings (INSERT, CREATE, COPY, SET, PRAGMA,
    ATTACH, INSTALL/LOAD, CALL, ...); reading or listing any file (read_csv, read_parquet, read_text,
    read_blob, glob, FROM 'file.csv', ...); running SQL from a string (query()); --output naming the store;
    a query that runs past --timeout. Several statements in one call are a usage error (exit 2): run one
    per call. At most --limit-rows rows are fetched (stderr says when the result was cut). Results go to
    files only through --output (format from its extension), never over an existing file without --overwrite.

    Example: curate sql "SELECT step, count(*) FROM dropped GROUP BY 1" --format csv
    """
    from curation.cli.render import arrow_table, err, out
    from curation.sql import (
        DEFAULT_LIMIT_ROWS,
        DEFAULT_TIMEOUT,
        check_output,
        csv_text,
        output_format,
        run_sql,
        store_files,
        to_json_lines,
        write_result,
    )

    store = open_cli_store()
    if output is not None:
        check_output(output, overwrite, store_files(store))  # the store first, and before the query runs
    fmt = output_format(fmt, output)
    if timeout is None:
        timeout = _from_env("CURATE_SQL_TIMEOUT", float, DEFAULT_TIMEOUT)
    if timeout < 0:
        raise UsageError(f"--timeout must be 0 (none) or more seconds, not {timeout:g}")
    if limit_rows is None:
        limit_rows = _from_env("CURATE_SQL_MAX_ROWS", int, DEFAULT_LIMIT_ROWS)
    if limit_rows < 0:
        raise UsageError(f"--limit-rows must be 0 (no cap) or more, not {limit_rows}")
    if max_rows < 1:
        raise UsageError(f"--max-rows must be at least 1, not {max_rows}")
    display = fmt == "table" and output is None
    fetch = min(limit_rows or max_rows, max_rows) if display else limit_rows
    result = run_sql(store, query, timeout=timeout, limit_rows=fetch)
    table = result.table
    cut_note = None
    if result.cut and (not display or limit_rows and limit_rows <= max_rows):
        cut_note = f"result cut at {result.limit_rows} rows; pass --limit-rows N for more (0 = no cap)"
    if output is not None:
        write_result(table, fmt, output, overwrite=overwrite, protect=store_files(store), create_parents=False)
        err.print(f"wrote {table.num_rows} rows to {output}", highlight=False, markup=False)
    elif display:
        arrow_table(table, max_rows=max_rows)
        if result.cut and cut_note is None:
            err.print(f"more rows not shown (the first {max_rows}); use --max-rows, --format csv/json or --output",
                      style="dim", highlight=False, markup=False)
    elif fmt == "csv":
        out.file.write(csv_text(table))
    else:
        out.file.write(to_json_lines(table))
    if cut_note:
        err.print(cut_note, highlight=False, markup=False)
