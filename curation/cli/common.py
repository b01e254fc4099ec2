"""What every command shares: the global options, the store, shared option definitions, and the one mapping
from errors to exit codes (``curation.errors``)."""

from __future__ import annotations

import functools
import os
import tempfile
import time
import traceback
from pathlib import Path
from typing import Annotated, Optional

import typer

from curation.errors import EXIT_INTERNAL, CurateError


class State:
    """Options shared by every command (set by the global callback)."""

    db: Optional[str] = None


state = State()


def internal_error_log(exc: BaseException) -> Path:
    """Write the traceback of an unexpected error to a log file and return its path."""
    folder = Path(os.environ.get("CURATE_LOG_DIR") or Path(tempfile.gettempdir()) / "curate-logs")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"internal-error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    path.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
    return path


def handle_errors(fn):  # noqa: ANN001, ANN201
    """A CurateError becomes its message on stderr and its exit code; anything else is an internal error
    (exit 70) with the traceback in a log file, never reported as bad usage."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        from rich.markup import escape

        from curation.cli.render import err

        try:
            return fn(*args, **kwargs)
        except CurateError as e:
            err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, markup=True)
            raise typer.Exit(e.exit_code) from e
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as e:  # noqa: BLE001 - a bug: say so, keep the traceback, exit with its own code
            log = internal_error_log(e)
            err.print(f"[bold red]internal error:[/] {type(e).__name__}: {escape(str(e))}\n(a bug, not a problem with your input; "
                      f"the traceback is in {log}; please report it)", highlight=False, markup=True)
            raise typer.Exit(EXIT_INTERNAL) from e

    return wrapper


def open_cli_store():  # noqa: ANN201
    """The store named by --db, CURATE_DB or the default data dir."""
    from curation.store import open_store

    return open_store(state.db)


# option definitions shared by several commands
SnapshotArg = Annotated[int, typer.Argument(help="Snapshot id (see `curate snapshot list`).")]
TargetOpt = Annotated[float, typer.Option(help="Accuracy to certify.")]
ConfidenceOpt = Annotated[float, typer.Option(help="Confidence of the bound.")]
PowerOpt = Annotated[float, typer.Option(help="Chance to certify at the expected accuracy.")]
ExpectedOpt = Annotated[float, typer.Option(help="Accuracy the data is expected to have.")]
RoundsOpt = Annotated[int, typer.Option(help="Looks at the results (the loop's error is spent over them).")]
MaybeTargetOpt = Annotated[Optional[float], typer.Option("--target", help="Accuracy to certify (default: the review plan's, else 0.98).")]
MaybeConfidenceOpt = Annotated[Optional[float], typer.Option("--confidence", help="Confidence of the bound (default: the plan's, else 0.95).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the whole record as JSON.")]
FormatOpt = Annotated[str, typer.Option("--format", help="table|csv|json.")]
BackendOpt = Annotated[str, typer.Option("--backend", help="Review tool: labelstudio or argilla.")]
UrlOpt = Annotated[Optional[str], typer.Option("--url", help="The review server (default: env CURATE_LABEL_STUDIO_URL, "
                                                "else http://127.0.0.1:8080; Argilla: CURATE_ARGILLA_URL, else "
                                                "http://127.0.0.1:6900). The API token comes from the environment: "
                                                "CURATE_LABEL_STUDIO_TOKEN (or LABEL_STUDIO_API_KEY); Argilla's "
                                                "CURATE_ARGILLA_API_KEY (or ARGILLA_API_KEY).")]
