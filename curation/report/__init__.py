"""`curate report`: one self-contained HTML page about a pipeline run.

:mod:`curation.report.data` gathers the figures with SQL on one read-only connection;
:mod:`curation.report.page` draws them (plotly inlined once, nothing from the network, all text escaped).
"""

from __future__ import annotations

from pathlib import Path

from curation.errors import UsageError
from curation.report.data import Histogram, ReportData, gather, resolve_run
from curation.report.page import render_html
from curation.store.store import Store

__all__ = ["Histogram", "ReportData", "default_report_path", "gather", "render_html", "resolve_run", "write_report"]


def default_report_path(store: Store, run_id: int) -> Path:
    """``<data dir>/reports/run-<id>.html``, the data dir being the store's folder."""
    return store.path.parent / "reports" / f"run-{run_id}.html"


def write_report(store: Store, run_id: int | None = None, out: Path | None = None) -> Path:
    """Gather, render and write the report of ``run_id`` (default: the latest done run); returns the path."""
    data = gather(store, run_id)
    page = render_html(data)
    path = Path(out) if out is not None else default_report_path(store, data.run["run_id"])
    if path.exists() and path.is_dir():
        raise UsageError(f"--out {path} is a directory; give a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path
