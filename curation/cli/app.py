"""`curate`: the command line. Each command parses, calls one library function, and maps errors.

Exit codes are the same for every command; see ``curation.errors``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from curation.cli.common import FormatOpt, handle_errors, open_cli_store, state
from curation.errors import EXIT_PROBLEMS, EXIT_USAGE, UsageError

HELP = """Curate LLM fine-tuning data: ingest raw files into one DuckDB store, curate them with recorded
decisions, review a statistically chosen sample, certify, and export an approved snapshot.

\b
Data:       init, ingest, batches, quarantine, samples, sql, check
Pipeline:   run, stats, report, export (a run's kept samples), demo (the whole product on the sample)
Snapshots:  snapshot create | list | show | approve | export
Review:     review plan | certify | push | pull | status | apply | serve (labelstudio or argilla),
            review users add | list (reviewer accounts)
Training:   train (a LoRA adapter from an approved snapshot), eval (base and adapters side by side),
            eval-report (a human rating round), models (a local base model: smollm2),
            accelerate-config (training on several GPUs)
Serving:    serve (a model and its adapters with the OpenAI API: cpu or vllm), route (an A/B router),
            ab-report (per variant latency, errors, ratings)
Service:    api (the HTTP API: jobs, roles, SQL, review, training), token create | list | revoke

\b
Example:    curate demo && curate sql "SELECT shape, count(*) FROM samples GROUP BY 1"
Exit codes: 0 done, 1 problems found (an unreadable input among others, or --strict), 2 bad usage or unreadable input, 3 refused by a rule,
            4 external service failed or store busy, 70 internal error (a bug; traceback in a log file)."""

app = typer.Typer(
    name="curate",
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _store():  # noqa: ANN202
    return open_cli_store()


@app.callback()
def main_callback(
    db: Annotated[
        Optional[str],
        typer.Option("--db", envvar="CURATE_DB", help="Store file (default: $CURATE_DATA_DIR/curate.duckdb, ./data/store)."),
    ] = None,
) -> None:
    state.db = db


@app.command()
@handle_errors
def init() -> None:
    """Create the store (or migrate it to the current schema) and print where it is.

    Example: curate --db data/store/curate.duckdb init
    """
    from curation.cli.render import out

    store = _store()
    version = store.init()
    out.print(f"store {store.path} ready (schema version {version})")


@app.command()
@handle_errors
def ingest(
    paths: Annotated[list[str], typer.Argument(help="Files, dataset folders, or (with --format hf) hub dataset ids.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="auto|jsonl|json|csv|tsv|parquet|hf.")] = "auto",
    map_: Annotated[
        Optional[list[str]],
        typer.Option("--map", "-m", help="target=source field mapping, e.g. --map output=answer (repeatable)."),
    ] = None,
    encoding: Annotated[Optional[str], typer.Option(help="Force the text encoding (default: detect utf-8/BOM/gb18030).")] = None,
    source_name: Annotated[Optional[str], typer.Option(help="Name used in sample ids instead of the file name.")] = None,
    split: Annotated[Optional[str], typer.Option(help="Only this split of a Hugging Face dataset.")] = None,
    max_row_bytes: Annotated[int, typer.Option(help="Rows larger than this go to quarantine.")] = 16 << 20,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 if any row was quarantined, an input had a problem, or a batch does not look like instruction data.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the per-batch reports as JSON.")] = False,
) -> None:
    """Load inputs into the store; bad rows go to quarantine with file, line and reason.

    Every input is tried: one that cannot be read at all (missing, truncated, not its format) is
    reported as failed and the next is loaded; the command then exits 1 (2 when no input could be read).
    An input that loads no row (every row quarantined, or an empty file) also exits 1, with the reason.

    Example: curate ingest data/sample/instructions.jsonl --map output=answer
    """
    from rich.markup import escape

    from curation.cli.render import err, out, progress_bar
    from curation.ingest import FieldMapping, IngestOptions, ingest_paths

    opts = IngestOptions(format=fmt, mapping=FieldMapping.parse(map_), encoding=encoding, source_name=source_name,
                         split=split, max_row_bytes=max_row_bytes)
    store = _store()
    with progress_bar() as update:
        reports = ingest_paths(store, paths, opts, progress=update)
    if as_json:
        out.print_json(json.dumps([r.model_dump() for r in reports]))
    else:
        _print_reports(reports)
    failed = [r for r in reports if r.failed]
    nothing = [r for r in reports if not r.failed and not r.skipped and r.rows_loaded == 0]
    problems = sum(r.rows_quarantined for r in reports) + sum(len(r.problems) for r in reports)
    if problems:
        err.print(f"[yellow]{problems} problem(s): see `curate quarantine`[/]")
    for r in reports:
        for w in r.warnings:
            err.print(f"[yellow]batch {r.batch_id} ({escape(Path(r.source).name)}): {escape(w)}[/]")
    for r in nothing:
        why = (f"all {r.rows_read} row(s) quarantined (mostly: {next(iter(r.reasons))})" if r.rows_read and r.reasons
               else "; ".join(r.problems) or "no rows")
        err.print(f"[red]{escape(r.source)}: nothing loaded: {escape(why)}[/]")
    if failed and len(failed) == len(reports):
        err.print(f"[red]no input could be read ({len(failed)} failed, see above)[/]")
        raise typer.Exit(EXIT_USAGE)
    if failed:
        err.print(f"[red]{len(failed)} of {len(reports)} input(s) could not be read at all (see above); "
                  "the others were loaded[/]")
        raise typer.Exit(EXIT_PROBLEMS)
    if nothing:
        raise typer.Exit(EXIT_PROBLEMS)
    if (problems or any(r.warnings for r in reports)) and strict:
        raise typer.Exit(EXIT_PROBLEMS)


def _print_reports(reports) -> None:  # noqa: ANN001
    from rich.markup import escape
    from rich.table import Table

    from curation.cli.render import out

    t = Table(title="ingest summary", header_style="bold")
    for col in ("batch", "source", "format", "encoding", "read", "loaded", "present", "quarantined"):
        t.add_column(col, justify="right" if col in ("read", "loaded", "quarantined", "present") else "left",
                     overflow="fold")
    notes = Table(title="problems", header_style="bold", show_header=True)
    for col in ("batch", "rows", "reason"):
        notes.add_column(col, justify="right" if col != "reason" else "left", overflow="fold")
    for r in reports:
        name = Path(r.source).name if "/" in r.source else r.source
        t.add_row(str(r.batch_id or "-"), name, r.format, r.encoding or "-", str(r.rows_read), str(r.rows_loaded),
                  str(r.rows_already_present), str(r.rows_quarantined))
        if r.skipped:
            notes.add_row(str(r.batch_id or "-"), "-", f"{name}: skipped, {r.skipped}")
        if r.failed:
            why = r.failed if name in r.failed else f"{name}: {r.failed}"
            notes.add_row(str(r.batch_id or "-"), "-", f"[red]FAILED[/] {escape(why)}")
        for p in r.problems:
            notes.add_row(str(r.batch_id), "-", f"{name}: {p}")
        for w in r.warnings:
            notes.add_row(str(r.batch_id), "-", f"[yellow]{escape(name)}: {escape(w)}[/]")
        for reason, n in r.reasons.items():
            notes.add_row(str(r.batch_id), str(n), reason)
    out.print(t)
    if notes.row_count:
        out.print(notes)


@app.command()
@handle_errors
def batches(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table.")] = False,
) -> None:
    """List ingested batches with their row accounting (read = loaded + quarantined).

    Example: curate batches --json
    """
    from curation.cli.render import arrow_table, out
    from curation.inspect import list_batches
    from curation.sql import to_json_lines

    table = list_batches(_store())
    if as_json:
        out.file.write(to_json_lines(table))
    else:
        arrow_table(table, title="batches", max_rows=10_000)


@app.command()
@handle_errors
def quarantine(
    batch: Annotated[Optional[int], typer.Option("--batch", "-b", help="Only this batch.")] = None,
    reason: Annotated[Optional[str], typer.Option(help="Only reasons containing this text.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 100,
    fmt: FormatOpt = "table",
) -> None:
    """Show quarantined rows: file, line, reason and the row verbatim.

    Example: curate quarantine --batch 1 --reason "malformed JSON"
    """
    from curation.inspect import list_quarantine

    table = list_quarantine(_store(), batch=batch, reason=reason, limit=limit)
    _emit(table, fmt, "quarantine")


def _emit(table, fmt: str, title: str) -> None:  # noqa: ANN001
    from curation.cli.render import arrow_table, out
    from curation.sql import csv_text, to_json_lines

    if fmt == "table":
        arrow_table(table, title=title)
    elif fmt == "csv":
        out.file.write(csv_text(table))
    elif fmt == "json":
        out.file.write(to_json_lines(table))
    else:
        raise UsageError(f"unknown --format {fmt!r}: use table, csv or json")


@app.command()
@handle_errors
def samples(
    sample_id: Annotated[Optional[str], typer.Option("--id", help="Show this one sample in full.")] = None,
    batch: Annotated[Optional[int], typer.Option("--batch", "-b", help="Only this batch.")] = None,
    shape: Annotated[Optional[str], typer.Option(help="Only this shape: alpaca, sharegpt or openai.")] = None,
    contains: Annotated[Optional[str], typer.Option(help="Only samples whose text contains this.")] = None,
    with_reasoning: Annotated[bool, typer.Option("--with-reasoning", help="Only samples with a reasoning trace.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many samples.")] = 20,
    fmt: FormatOpt = "table",
) -> None:
    """Show samples, filtered by batch, shape, text or reasoning; --id shows one in full, with its
    decisions, the latest run's signals, its text versions and its reviews.

    Example: curate samples --shape sharegpt --with-reasoning --limit 5
    """
    from curation.inspect import find_samples

    table = find_samples(_store(), sample_id=sample_id, batch=batch, shape=shape, contains=contains,
                         with_reasoning=with_reasoning, limit=limit)
    if sample_id and fmt == "table":
        if table.num_rows == 0:
            raise UsageError(f"no sample with id {sample_id!r}")
        _print_sample(table.to_pylist()[0])
        from curation.cli.render import arrow_table
        from curation.inspect import sample_history

        for title, part in sample_history(_store(), sample_id).items():
            if part.num_rows:
                arrow_table(part, title=title)
        return
    _emit(table, fmt, "samples")


def _print_sample(row: dict) -> None:
    from rich.panel import Panel

    from curation.cli.render import out

    out.print(f"[bold]{row['sample_id']}[/]  {row['shape']}  batch {row['batch_id']}  {row['source']}:{row['row_number']}"
              + (f"  id={row['external_id']}" if row["external_id"] else ""), highlight=False)
    if row["system"]:
        out.print(Panel(row["system"], title="system", title_align="left"))
    if row["messages"]:
        for i, m in enumerate(row["messages"]):
            if m["reasoning"]:
                out.print(Panel(m["reasoning"], title=f"[{i}] {m['role']} · reasoning", title_align="left", style="dim"))
            out.print(Panel(m["content"], title=f"[{i}] {m['role']}", title_align="left"))
    else:
        for key in ("instruction", "input", "reasoning", "output"):
            if row[key] is not None and (row[key] or key in ("instruction", "output")):
                out.print(Panel(row[key] or "[dim](empty)[/]", title=key, title_align="left",
                                style="dim" if key == "reasoning" else ""))
    if row["metadata"]:
        out.print(Panel(row["metadata"], title="metadata", title_align="left"))


@app.command()
@handle_errors
def run(
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="Pipeline TOML (default: the built-in pipeline).")] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Start a new run even if this config already ran on this input.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run result as JSON.")] = False,
    reference_snapshot: Annotated[Optional[int], typer.Option(
        help="An approved snapshot whose samples are every dedup step's reference: never dropped; new copies of them are.")] = None,
) -> None:
    """Run the pipeline over the ingested samples (or resume an interrupted run), then print the funnel.

    Example: curate run --config pipeline.toml
    """
    from curation.cli.render import err, out
    from curation.pipeline import load_config
    from curation.pipeline.executor import run_pipeline

    cfg = load_config(config)
    store = _store()
    if reference_snapshot is not None:
        from curation.snapshots.reference import with_reference_snapshot

        cfg = with_reference_snapshot(store, cfg, reference_snapshot)
    with _step_progress() as update:
        result = run_pipeline(store, cfg, fresh=fresh, progress=update)
    if as_json:
        out.print_json(json.dumps(result.__dict__, default=str))
        return
    if result.skipped:
        err.print(f"run {result.run_id}: nothing to do, {result.skipped} (use --fresh to run again)")
    else:
        err.print(f"run {result.run_id} done in {result.seconds:.1f} s" + (" (resumed)" if result.resumed else ""))
        _print_steps(result.steps)
    from rich.markup import escape

    for w in result.warnings:
        err.print(f"[yellow]{escape(w)}[/]")
    stats(as_json=False, run_id=None)


def _print_steps(steps: list[dict]) -> None:
    from rich.table import Table

    from curation.cli.render import out

    t = Table(title="steps", header_style="bold")
    for col in ("step", "kind", "in", "dropped", "flagged", "changed", "counts"):
        t.add_column(col, justify="right" if col in ("in", "dropped", "flagged", "changed") else "left", overflow="fold")
    for s in steps:
        counters = json.loads(s["counters"] or "{}")
        t.add_row(s["step"], s["kind"], str(s["rows_in"]), str(s["dropped"]), str(s["flagged"]), str(s["changed"]),
                  ", ".join(f"{k} {v}" for k, v in counters.items()))
    out.print(t)


def _step_progress():  # noqa: ANN202
    from contextlib import contextmanager

    from curation.cli.render import progress_bar

    @contextmanager
    def wrap():  # noqa: ANN202
        with progress_bar() as update:
            yield lambda desc, done, total: update(desc, done, total, "samples")

    return wrap()


@app.command()
@handle_errors
def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write (.jsonl or .parquet).")],
    fmt: Annotated[Optional[str], typer.Option("--format", help="jsonl|parquet (default: from the file name).")] = None,
) -> None:
    """Write the kept samples of the latest run, with their current text, to JSONL or Parquet.

    Example: curate export -o kept.parquet
    """
    from curation.cli.render import err
    from curation.run_export import export_kept

    n = export_kept(_store(), output, fmt)
    err.print(f"wrote {n} kept samples to {output}")


@app.command()
@handle_errors
def check(
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Audit the store: every done batch balances (read = loaded + quarantined) and holds the rows it counts,
    every done run balances (input = kept + dropped), no sample, decision or signal is stored twice.
    Exits 1 when a check fails.

    Example: curate check
    """
    from curation.cli.render import out
    from curation.store.audit import audit

    res = audit(_store())
    if as_json:
        out.file.write(json.dumps({"ok": res.ok, "batches": res.batches, "runs": res.runs, "samples": res.samples,
                                   "violations": res.violations}) + "\n")
    else:
        out.print(f"checked {res.batches} done batch(es), {res.samples} sample(s), {res.runs} done run(s): "
                  + ("[green]all invariants hold[/]" if res.ok else f"[red]{len(res.violations)} violation(s)[/]"))
        for v in res.violations:
            out.print(f"  [red]x[/] {v}", highlight=False)
    if not res.ok:
        raise typer.Exit(EXIT_PROBLEMS)


@app.command()
@handle_errors
def stats(
    as_json: Annotated[bool, typer.Option("--json", help="Print the funnel as JSON.")] = False,
    run_id: Annotated[Optional[int], typer.Option("--run", help="Run (default: the latest done run).")] = None,
) -> None:
    """Print the funnel: rows read, quarantined, loaded, and each step's drops and flags in the latest run.

    Example: curate stats --json
    """
    from curation.cli.render import arrow_table, out
    from curation.inspect import funnel

    table = funnel(_store(), run_id)
    if as_json:
        out.file.write(json.dumps({r["stage"]: r["rows"] for r in table.to_pylist()}) + "\n")
    else:
        arrow_table(table, title="funnel")


@app.command()
@handle_errors
def report(
    run_id: Annotated[Optional[int], typer.Option("--run", help="Run to report on (default: the latest done run).")] = None,
    out_path: Annotated[
        Optional[Path],
        typer.Option("--out", "-o", help="HTML file to write (default: <store folder>/reports/run-<id>.html)."),
    ] = None,
) -> None:
    """Write a self-contained HTML report of a run (funnel, drops and flags, languages, lengths, quality, examples).

    Example: curate report --run 1 -o run-1.html
    """
    from curation.cli.render import out
    from curation.report import write_report

    path = write_report(_store(), run_id, out_path)
    out.file.write(f"{path}\n")


from curation.cli.api import api_command, token_app  # noqa: E402
from curation.cli.review import review_app  # noqa: E402  (the sub-apps register on the root app)
from curation.cli.snapshots import snapshot_app  # noqa: E402
from curation.cli.sql import sql_command  # noqa: E402
from curation.cli.train import (  # noqa: E402
    accelerate_config_command,
    eval_command,
    eval_report_command,
    models_command,
    train_command,
)

app.command(name="sql")(sql_command)
app.command(name="train")(train_command)
app.command(name="eval")(eval_command)
app.command(name="eval-report")(eval_report_command)
app.command(name="models")(models_command)
app.command(name="accelerate-config")(accelerate_config_command)

from curation.cli.serve import ab_report_command, route_command, serve_command  # noqa: E402

app.command(name="serve")(serve_command)
app.command(name="route")(route_command)
app.command(name="ab-report")(ab_report_command)
app.add_typer(snapshot_app, name="snapshot")
app.add_typer(review_app, name="review")
app.command(name="api")(api_command)
app.add_typer(token_app, name="token")


@app.command()
@handle_errors
def demo(
    data_dir: Annotated[Optional[Path], typer.Option(help="Folder of input files (default: the bundled sample).")] = None,
    curation_only: Annotated[bool, typer.Option("--curation-only", help="Stop after curation (ingest, pipeline, "
                                                "report): a quick look in under a minute.")] = False,
    steps: Annotated[int, typer.Option("--steps", help="Training steps of the short LoRA run.")] = 20,
    eval_samples: Annotated[int, typer.Option("--eval-samples", help="Eval samples (eval loss and answers).")] = 16,
) -> None:
    """Run the whole product on the bundled sample: curation (ingest, pipeline, funnel, HTML report), then a
    snapshot, a review round in Label Studio answered by a scripted reviewer (a script, not people), the
    certification, the verdicts applied, approval, export, a short LoRA run on SmolLM2-135M-Instruct, the base
    model against the adapter, and one answer served through the OpenAI API. Each stage already done is kept.

    Example: curate --db data/demo/curate.duckdb demo [--curation-only]
    """
    from curation.cli.render import err, progress_bar
    from curation.demo import SAMPLE_DIR, run_demo
    from curation.report import write_report

    truth = None
    if not curation_only:
        from curation.walkthrough import check_extras, quiet_libraries

        check_extras()
        quiet_libraries()
        truth_path = (data_dir or SAMPLE_DIR) / "truth.json"
        if not truth_path.is_file():
            raise UsageError(f"{truth_path} is missing: after curation the demo's review is answered by a scripted "
                             "reviewer that knows the sample's planted problems, which your own data does not say. "
                             "Run with --curation-only, then review with people (curate review push)")
        truth = json.loads(truth_path.read_text(encoding="utf-8"))
    store = _store()
    started = time.monotonic()
    if not curation_only:
        err.rule("[bold]1. curation")
    with progress_bar() as update:
        result = run_demo(store, data_dir, progress=update)
    _print_reports(result.reports)
    if result.run.skipped:
        err.print(f"run {result.run.run_id}: nothing to do, {result.run.skipped}")
    else:
        _print_steps(result.run.steps)
    stats(as_json=False, run_id=None)
    report_path = write_report(store, result.run.run_id, None)
    err.print(f"report: {report_path}")
    if not curation_only:
        from curation.walkthrough import WalkthroughOptions, run_walkthrough

        with progress_bar() as update:
            run_walkthrough(store, truth, WalkthroughOptions(max_steps=steps, eval_samples=eval_samples), err, update)
        err.rule()
        err.print(f"the whole demo took {time.monotonic() - started:.0f} s; stages and figures: "
                  f"{store.path.parent / 'walkthrough.json'}", highlight=False)
    err.print(f"store: {store.path}  (try: curate --db {store.path} sql \"SELECT shape, count(*) FROM samples GROUP BY 1\")")


def main() -> None:
    """Entry point of the `curate` script."""
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
