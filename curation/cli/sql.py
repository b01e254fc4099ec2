"""`curate sql`: read-only SQL on the store (the library side is ``curation.sql``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from curation.cli.common import handle_errors, open_cli_store
from curation.errors import UsageError


@handle_errors
def sql_command(
    query: Annotated[str, typer.Argument(help="SELECT (or EXPLAIN) statement(s); the last one's result is shown.")],
    fmt: Annotated[str, typer.Option("--format", help="table|csv|json|parquet.")] = "table",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the result to this file.")] = None,
    max_rows: Annotated[int, typer.Option(help="Rows shown in table format.")] = 200,
) -> None:
    """Run read-only SQL on the store. Writes, COPY, ATTACH, INSTALL/LOAD and file reads are refused (exit 3).

    Example: curate sql "SELECT step, count(*) FROM dropped GROUP BY 1" --format csv
    """
    from curation.cli.render import arrow_table, err, out
    from curation.sql import (
        OUTPUT_FORMATS,
        csv_text,
        run_query,
        to_json_lines,
        write_result,
    )

    if fmt not in OUTPUT_FORMATS:
        raise UsageError(f"unknown --format {fmt!r}: use one of {', '.join(OUTPUT_FORMATS)}")
    if fmt == "parquet" and output is None:
        raise UsageError("--format parquet needs --output PATH")
    table = run_query(open_cli_store(), query)
    if output is not None:
        write_result(table, "json" if fmt == "table" else fmt, output)
        err.print(f"wrote {table.num_rows} rows to {output}")
    elif fmt == "table":
        arrow_table(table, max_rows=max_rows)
    elif fmt == "csv":
        out.file.write(csv_text(table))
    else:
        out.file.write(to_json_lines(table))
