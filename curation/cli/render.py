"""Rendering results for people: rich tables on stdout, messages and progress on stderr."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

out = Console(soft_wrap=False)
err = Console(stderr=True)


def _cell(v: object, width: int) -> str:
    if v is None:
        return "∅"
    if isinstance(v, (list, dict)):
        v = json.dumps(v, ensure_ascii=False, default=str)
    if isinstance(v, (bytes, bytearray)):
        v = v.decode("utf-8", errors="backslashreplace")
    s = str(v).replace("\n", "⏎")
    return s if len(s) <= width else s[: width - 1] + "…"


def arrow_table(table: pa.Table, title: str | None = None, max_rows: int = 200, width: int = 60) -> None:
    """Print an Arrow table as a rich table (long cells cut, at most ``max_rows`` rows)."""
    t = Table(title=title, show_lines=False, header_style="bold")
    for name in table.column_names:
        t.add_column(name, overflow="fold")
    for row in table.slice(0, max_rows).to_pylist():
        t.add_row(*(_cell(row[c], width) for c in table.column_names))
    out.print(t)
    if table.num_rows > max_rows:
        err.print(f"[dim]{table.num_rows - max_rows} more rows not shown; use --format csv/json or --output[/]")
    elif table.num_rows == 0:
        err.print("[dim](no rows)[/]")


@contextmanager
def progress_bar() -> Iterator:
    """A progress callback ``(description, done, total, unit)`` drawing rich bars on stderr."""
    prog = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )
    tasks: dict[str, int] = {}

    def update(desc: str, done: int, total: int, unit: str) -> None:
        name = desc if len(desc) < 50 else "…" + desc[-49:]
        if desc not in tasks:
            tasks[desc] = prog.add_task(name, total=total or None)
        prog.update(tasks[desc], completed=done, total=total or None)

    with prog:
        yield update
