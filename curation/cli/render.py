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


def _f(x: object, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def review_summary(data: dict) -> None:
    """A review's state for people: the verdict, counts (exact) apart from estimates, strata, agreement, errors."""
    cert = data.get("certification") or {}
    head = f"snapshot {data.get('snapshot')}" + (f" ({data['state']})" if data.get("state") else "")
    verdict = str(cert.get("verdict", "undecided")).replace("_", " ").upper()
    look = f", look {cert.get('look')} of {cert.get('rounds')}" if cert.get("rounds", 1) > 1 else ""
    out.print(f"[bold]{head}: {verdict}[/] at target {cert.get('target')} with confidence {cert.get('confidence')}{look}",
              highlight=False)
    if cert.get("basis") == "lineage":
        lin = cert["lineage"]
        out.print(f"  inherited from the reviews of snapshot {lin['certified_through']}: {lin['rejected_removed']} rejected "
                  f"samples removed, {lin['corrected']} corrected, {lin['edited']} accepted with an edit", highlight=False)
        out.print(f"  estimates: accuracy {_f(cert.get('estimate'))}, bounds {_f(cert.get('lower'))} .. "
                  f"{_f(cert.get('upper'))} over {cert['counts']['population']} samples", highlight=False)
        return
    c = cert.get("counts") or {}
    if c:
        out.print(f"  counts (exact): {c.get('reviewed', 0)} items judged of {c.get('population', 0)} samples needing "
                  f"review; {c.get('accepted', 0)} accepted, {c.get('rejected', 0)} rejected (majority of reviewers)",
                  highlight=False)
        if c.get("full_population"):
            out.print(f"  flagged samples (reviewed in full, counted exactly): {c.get('full_reviewed', 0)} of "
                      f"{c['full_population']} judged, {c.get('full_reviewed', 0) - c.get('full_accepted', 0)} rejected",
                      highlight=False)
    sampled = cert.get("sampled") or {}
    out.print(f"  estimates: accuracy {_f(cert.get('estimate'))}; exact bounds {_f(cert.get('lower'))} .. "
              f"{_f(cert.get('upper'))} (sampled part {_f(sampled.get('estimate'))} from "
              f"{_f(sampled.get('effective_reviews'), 1)} effective reviews, {cert.get('method', '-')})", highlight=False)
    more = cert.get("more_reviews_needed")
    if cert.get("verdict") != "certified":
        out.print("  more reviews needed: " + ("cannot certify at the current error rate" if more is None else
                                               f"about {more} at the current rate"), highlight=False)
    strata = cert.get("strata") or []
    if strata:
        t = Table(title="strata", header_style="bold")
        for col in ("stratum", "kind", "population", "judged", "accepted", "rejected"):
            t.add_column(col, justify="left" if col in ("stratum", "kind") else "right")
        for s in strata:
            t.add_row(s["name"], "full" if s["full"] else "sampled", str(s["population"]), str(s["reviewed"]),
                      str(s["accepted"]), str(s["rejected"]))
        out.print(t)
    ag = data.get("agreement") or {}
    if ag.get("items_with_overlap"):
        dis = ag.get("disagreements") or []
        out.print(f"  agreement over {ag['items_with_overlap']} items with several reviewers: "
                  f"{_f(ag.get('percent_agreement'), 3)} agree; Cohen's kappa {_f(ag.get('cohen_kappa'), 3)}, Fleiss' "
                  f"kappa {_f(ag.get('fleiss_kappa'), 3)}; {len(dis)} disagreements"
                  + (f" (e.g. {', '.join(dis[:5])})" if dis else ""), highlight=False)
    errors = [e for e in data.get("errors") or [] if e["rejected"]]
    if errors:
        t = Table(title="errors", header_style="bold")
        for col in ("by", "key", "judged", "rejected", "error rate", "categories"):
            t.add_column(col, justify="right" if col in ("judged", "rejected", "error rate") else "left", overflow="fold")
        for e in errors:
            t.add_row(e["by"], str(e["key"]), str(e["reviewed"]), str(e["rejected"]), f"{e['error_rate']:.3f}",
                      ", ".join(f"{k} {v}" for k, v in e["categories"].items()))
        out.print(t)
    if data.get("items_pending"):
        out.print(f"  {data['items_pending']} drawn items not judged yet", highlight=False)
    if data.get("applied_in"):
        out.print(f"  reviews applied in snapshot {', '.join(map(str, data['applied_in']))}", highlight=False)
