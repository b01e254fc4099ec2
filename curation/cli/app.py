"""`curate`: the command line. Each command parses, calls one library function, and maps errors.

Exit codes are the same for every command; see ``curation.errors``.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from curation.errors import EXIT_PROBLEMS, CurateError, UsageError

app = typer.Typer(
    name="curate",
    help="Curate LLM fine-tuning data: ingest into a DuckDB store, inspect, query with read-only SQL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class State:
    """Options shared by every command (set by the global callback)."""

    db: Optional[str] = None


state = State()


def handle_errors(fn):  # noqa: ANN001, ANN201
    """Turn a CurateError into a message on stderr and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        from curation.cli.render import err

        try:
            return fn(*args, **kwargs)
        except CurateError as e:
            err.print(f"[bold red]error:[/] {e}", highlight=False, markup=True)
            raise typer.Exit(e.exit_code) from e
        except ValueError as e:  # config validation from pydantic/dataclasses
            err.print(f"[bold red]error:[/] {e}", highlight=False)
            raise typer.Exit(2) from e

    return wrapper


def _store():  # noqa: ANN202
    from curation.store import open_store

    return open_store(state.db)


@app.callback()
def main_callback(
    db: Annotated[
        Optional[str],
        typer.Option("--db", envvar="CURATE_DB", help="Store file (default: $CURATE_DATA_DIR/curate.duckdb, ./data/store)."),
    ] = None,
) -> None:
    """Curate LLM fine-tuning data: ingest, inspect and query one DuckDB store."""
    state.db = db


@app.command()
@handle_errors
def init() -> None:
    """Create the store (or migrate it to the current schema) and print where it is."""
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
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 if any row was quarantined or an input had a problem.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the per-batch reports as JSON.")] = False,
) -> None:
    """Load inputs into the store; bad rows go to quarantine with file, line and reason."""
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
    problems = sum(r.rows_quarantined for r in reports) + sum(len(r.problems) for r in reports)
    if problems:
        err.print(f"[yellow]{problems} problem(s): see `curate quarantine`[/]")
        if strict:
            raise typer.Exit(EXIT_PROBLEMS)


def _print_reports(reports) -> None:  # noqa: ANN001
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
        for p in r.problems:
            notes.add_row(str(r.batch_id), "-", f"{name}: {p}")
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
    """List ingested batches with their row accounting (read = loaded + quarantined)."""
    from curation.cli.render import arrow_table, out
    from curation.sql import run_query, to_json_lines

    table = run_query(
        _store(),
        """SELECT batch_id, source_name AS source, format, encoding, status, rows_read, rows_loaded,
                  rows_already_present, rows_quarantined, blank_lines,
                  rows_read = rows_loaded + rows_quarantined AS balanced, problems,
                  strftime(ingested_at, '%Y-%m-%d %H:%M:%S') AS ingested_at
           FROM batches ORDER BY batch_id""",
    )
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
    fmt: Annotated[str, typer.Option("--format", help="table|csv|json.")] = "table",
) -> None:
    """Show quarantined rows: file, line, reason and the row verbatim."""
    from curation.sql import run_query

    where, params = ["1=1"], []
    if batch is not None:
        where.append("batch_id = ?")
        params.append(batch)
    if reason:
        where.append("contains(reason, ?)")
        params.append(reason)
    table = run_query(
        _store(),
        f"""SELECT batch_id, regexp_extract(source, '[^/]+$') AS file, row_number, line, reason, field, raw
            FROM quarantine WHERE {' AND '.join(where)}
            ORDER BY batch_id, coalesce(line, row_number, 0) LIMIT {int(limit)}""",
        params,
    )
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
    fmt: Annotated[str, typer.Option("--format", help="table|csv|json.")] = "table",
) -> None:
    """Show samples, filtered by batch, shape, text or reasoning; --id shows one in full."""
    from curation.sql import run_query

    where, params = ["1=1"], []
    if sample_id:
        where.append("sample_id = ?")
        params.append(sample_id)
    if batch is not None:
        where.append("batch_id = ?")
        params.append(batch)
    if shape:
        where.append("shape = ?")
        params.append(shape)
    if contains:
        where.append("(contains(coalesce(instruction, '') || coalesce(input, '') || coalesce(output, ''), ?)"
                     " OR contains(coalesce(CAST(messages AS VARCHAR), ''), ?))")
        params += [contains, contains]
    if with_reasoning:
        where.append("(reasoning IS NOT NULL OR list_bool_or(list_transform(messages, lambda m: m.reasoning IS NOT NULL)))")
    cols = ("sample_id, batch_id, source, row_number, external_id, shape, instruction, input, output, system, "
            "messages, reasoning, metadata")
    table = run_query(
        _store(), f"SELECT {cols} FROM samples WHERE {' AND '.join(where)} ORDER BY batch_id, row_number LIMIT {int(limit)}",
        params,
    )
    if sample_id and fmt == "table":
        if table.num_rows == 0:
            raise UsageError(f"no sample with id {sample_id!r}")
        _print_sample(table.to_pylist()[0])
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
def sql(
    query: Annotated[str, typer.Argument(help="SELECT (or EXPLAIN) statement(s); the last one's result is shown.")],
    fmt: Annotated[str, typer.Option("--format", help="table|csv|json|parquet.")] = "table",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the result to this file.")] = None,
    max_rows: Annotated[int, typer.Option(help="Rows shown in table format.")] = 200,
) -> None:
    """Run read-only SQL on the store. Writes, COPY, ATTACH, INSTALL/LOAD and file reads are refused (exit 3)."""
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
    table = run_query(_store(), query)
    if output is not None:
        write_result(table, "json" if fmt == "table" else fmt, output)
        err.print(f"wrote {table.num_rows} rows to {output}")
    elif fmt == "table":
        arrow_table(table, max_rows=max_rows)
    elif fmt == "csv":
        out.file.write(csv_text(table))
    else:
        out.file.write(to_json_lines(table))


@app.command()
@handle_errors
def run(
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="Pipeline TOML (default: the built-in pipeline).")] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Start a new run even if this config already ran on this input.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run result as JSON.")] = False,
    reference_snapshot: Annotated[Optional[int], typer.Option(
        help="An approved snapshot whose samples are the near-dedup reference: never dropped; new copies of them are.")] = None,
) -> None:
    """Run the pipeline over the ingested samples (or resume an interrupted run), then print the funnel."""
    from curation.cli.render import err, out
    from curation.pipeline import load_config
    from curation.pipeline.executor import run_pipeline

    cfg = load_config(config)
    store = _store()
    if reference_snapshot is not None:
        from curation.review.snapshots import with_reference_snapshot

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
    stats(as_json=False)


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
    """Write the kept samples of the latest run, with their current text, to JSONL or Parquet."""
    from curation.cli.render import err
    from curation.export import export_kept

    n = export_kept(_store(), output, fmt)
    err.print(f"wrote {n} kept samples to {output}")


@app.command()
@handle_errors
def stats(
    as_json: Annotated[bool, typer.Option("--json", help="Print the funnel as JSON.")] = False,
) -> None:
    """Print the funnel: rows read, quarantined, loaded, and each step's drops and flags in the latest run."""
    from curation.cli.render import arrow_table, out
    from curation.sql import run_query

    table = run_query(_store(), "SELECT stage, rows FROM funnel ORDER BY position")
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
    """Write a self-contained HTML report of a run (funnel, drops and flags, languages, lengths, quality, examples)."""
    from curation.cli.render import out
    from curation.report import write_report

    path = write_report(_store(), run_id, out_path)
    out.file.write(f"{path}\n")


snapshot_app = typer.Typer(help="Snapshots: freeze a run's kept samples, list, show, approve.", no_args_is_help=True)
review_app = typer.Typer(help="The review gate: plan, push a sample to reviewers, pull verdicts, certify, apply.", no_args_is_help=True)
app.add_typer(snapshot_app, name="snapshot")
app.add_typer(review_app, name="review")


def _snapshot_dict(s) -> dict:  # noqa: ANN001
    return {"snapshot": s.snapshot_id, "parent": s.parent_id, "run": s.run_id, "state": s.state,
            "samples": s.n_samples, "new": s.n_new, "content_hash": s.content_hash[:16], "forced": s.forced,
            "note": s.note}


@snapshot_app.command("create")
@handle_errors
def snapshot_create(
    run_id: Annotated[Optional[int], typer.Option("--run", help="Run whose kept samples to freeze (default: the latest done run).")] = None,
    parent: Annotated[Optional[int], typer.Option(help="An approved snapshot this one extends: its samples need no new review.")] = None,
    note: Annotated[Optional[str], typer.Option(help="Free text kept with the snapshot.")] = None,
) -> None:
    """Freeze the kept samples of a run, with their current text versions, as an immutable draft snapshot."""
    from curation.cli.render import out
    from curation.review.snapshots import create_snapshot

    snap = create_snapshot(_store(), run_id, parent, note)
    out.print_json(data=_snapshot_dict(snap))


@snapshot_app.command("list")
@handle_errors
def snapshot_list() -> None:
    """List snapshots, newest first."""
    from curation.cli.render import out
    from curation.review.snapshots import list_snapshots

    out.print_json(data=[_snapshot_dict(s) for s in list_snapshots(_store())])


@snapshot_app.command("show")
@handle_errors
def snapshot_show(snapshot_id: Annotated[int, typer.Argument(help="Snapshot id.")],
                  target: Annotated[Optional[float], typer.Option(help="Accuracy to certify (default: the review plan's, else 0.98).")] = None,
                  confidence: Annotated[Optional[float], typer.Option(help="Confidence of the bound (default: the plan's, else 0.95).")] = None) -> None:
    """Show a snapshot, its certification from the reviews so far and, for an incremental one, its parent's."""
    from curation.cli.render import out
    from curation.review.snapshots import get_snapshot, snapshot_certification

    store = _store()
    snap = get_snapshot(store, snapshot_id)
    data = _snapshot_dict(snap)
    # an incremental snapshot: the approved parent's certification, and the new part's from its own reviews
    if snap.parent_id is not None:
        data["parent_certification"] = get_snapshot(store, snap.parent_id).certification
    data["certification"] = snapshot_certification(store, snapshot_id, target, confidence)
    data["review_plan"] = snap.review_plan
    out.print_json(data=data)


@snapshot_app.command("approve")
@handle_errors
def snapshot_approve(snapshot_id: Annotated[int, typer.Argument(help="Snapshot id.")],
                     force: Annotated[bool, typer.Option("--force", help="Approve without certification (recorded).")] = False,
                     target: Annotated[Optional[float], typer.Option(help="Accuracy to certify (default: the review plan's, else 0.98).")] = None,
                     confidence: Annotated[Optional[float], typer.Option(help="Confidence of the bound (default: the plan's, else 0.95).")] = None) -> None:
    """Approve a snapshot; refused (exit 3) unless its reviews certify it, or with --force."""
    from curation.cli.render import out
    from curation.review.snapshots import approve, snapshot_certification

    store = _store()
    cert = snapshot_certification(store, snapshot_id, target, confidence)
    out.print_json(data=_snapshot_dict(approve(store, snapshot_id, cert, force)))


@snapshot_app.command("export")
@handle_errors
def snapshot_export(snapshot_id: Annotated[int, typer.Argument(help="Snapshot id.")],
                    to: Annotated[Optional[Path], typer.Option("--to", help="Folder (default: <store folder>/exports/snapshot-<id>).")] = None,
                    eval_share: Annotated[float, typer.Option(help="Share of samples in the eval split.")] = 0.05,
                    seed: Annotated[int, typer.Option(help="Seed of the train / eval split.")] = 0,
                    force: Annotated[bool, typer.Option("--force", help="Export an unapproved snapshot (recorded).")] = False,
                    hf: Annotated[bool, typer.Option("--hf/--no-hf", help="Also write a Hugging Face dataset folder.")] = True) -> None:
    """Export an approved snapshot: Parquet, JSONL, a Hugging Face dataset folder, train / eval split, manifest.json."""
    from curation.cli.render import out
    from curation.review.export import export_snapshot

    path = export_snapshot(_store(), snapshot_id, to, eval_share, seed, force, hf)
    out.file.write(f"{path}\n")


@review_app.command("plan")
@handle_errors
def review_plan(target: Annotated[float, typer.Option(help="Accuracy to certify.")] = 0.98,
                confidence: Annotated[float, typer.Option(help="Confidence of the bound.")] = 0.95,
                power: Annotated[float, typer.Option(help="Chance to certify at the expected accuracy.")] = 0.95,
                expected: Annotated[float, typer.Option(help="Accuracy the data is expected to have.")] = 0.995,
                rounds: Annotated[int, typer.Option(help="Looks at the results (the loop's error is spent over them).")] = 1) -> None:
    """How many reviews a snapshot needs for the target at the confidence, with the stated power."""
    from curation.cli.render import out
    from curation.review.stats import plan, plan_sequential

    n = plan(target, confidence, power, expected) if rounds == 1 else plan_sequential(target, confidence, power, expected, rounds)
    out.print_json(data={"reviews": n, "rounds": rounds, "per_round": -(-n // rounds), "target": target,
                         "confidence": confidence, "power": power, "expected": expected})


@review_app.command("certify")
@handle_errors
def review_certify(reviewed: Annotated[int, typer.Argument(help="Samples reviewed.")],
                   correct: Annotated[int, typer.Argument(help="Of those, judged correct.")],
                   population: Annotated[Optional[int], typer.Option(help="Samples the reviewed ones were drawn from.")] = None,
                   target: Annotated[float, typer.Option(help="Accuracy to certify.")] = 0.98,
                   confidence: Annotated[float, typer.Option(help="Confidence of the bound.")] = 0.95) -> None:
    """One look: estimate, exact bounds, verdict and further reviews needed for given counts."""
    from curation.cli.render import out
    from curation.review.stats import certify

    try:
        result = certify(reviewed, correct, population, target, confidence)
    except ValueError as e:
        raise UsageError(str(e)) from e
    out.print_json(data=result.as_dict())


def _backend(name: str, url: Optional[str]):  # noqa: ANN202
    from curation.review.backends import get_backend

    return get_backend(name, url=url)


BackendOpt = Annotated[str, typer.Option("--backend", help="Review tool: labelstudio.")]
UrlOpt = Annotated[Optional[str], typer.Option("--url", help="The review server (default: env CURATE_LABEL_STUDIO_URL, "
                                                "else http://127.0.0.1:8080). The API token comes from the environment: "
                                                "CURATE_LABEL_STUDIO_TOKEN (or LABEL_STUDIO_API_KEY).")]


@review_app.command("push")
@handle_errors
def review_push(snapshot_id: Annotated[int, typer.Argument(help="Snapshot to review.")],
                backend: BackendOpt = "labelstudio",
                url: UrlOpt = None,
                reviews: Annotated[Optional[int], typer.Option(help="Samples to review (default: planned from target, confidence, power, expected).")] = None,
                rounds: Annotated[int, typer.Option(help="Looks at the results; the error is spent over them.")] = 1,
                overlap: Annotated[int, typer.Option(help="Reviewers per sample.")] = 1,
                target: Annotated[float, typer.Option(help="Accuracy to certify.")] = 0.98,
                confidence: Annotated[float, typer.Option(help="Confidence of the bound.")] = 0.95,
                power: Annotated[float, typer.Option(help="Chance to certify at the expected accuracy.")] = 0.95,
                expected: Annotated[float, typer.Option(help="Accuracy the data is expected to have.")] = 0.995,
                seed: Annotated[int, typer.Option(help="Seed of the stratified draw.")] = 0) -> None:
    """Draw the review sample of a snapshot (first time: stratified by source and language, flagged samples all)
    and push it to the review tool. Repeatable: nothing is pushed twice. Exit 4 when the tool is unreachable or
    refuses the token (the store is left unchanged)."""
    from curation.cli.render import out, progress_bar
    from curation.review.loop import push_review

    with progress_bar() as progress:
        res = push_review(_store(), snapshot_id, _backend(backend, url), progress=progress, reviews=reviews,
                          rounds=rounds, overlap=overlap, target=target, confidence=confidence, power=power,
                          expected=expected, seed=seed)
    out.print_json(data=res)


@review_app.command("pull")
@handle_errors
def review_pull(snapshot_id: Annotated[int, typer.Argument(help="Snapshot under review.")],
                backend: BackendOpt = "labelstudio",
                url: UrlOpt = None) -> None:
    """Pull the verdicts given so far, store the new ones, and print the certification and the agreement."""
    from curation.cli.render import out
    from curation.review.loop import pull_review

    out.print_json(data=pull_review(_store(), snapshot_id, _backend(backend, url)))


@review_app.command("status")
@handle_errors
def review_status(snapshot_id: Annotated[int, typer.Argument(help="Snapshot under review.")]) -> None:
    """Certification, agreement between reviewers (with the items they disagree on) and errors by source,
    language and filter, from the verdicts stored so far."""
    from curation.cli.render import out
    from curation.review.loop import agreement, error_summary
    from curation.review.snapshots import get_snapshot, snapshot_certification

    store = _store()
    snap = get_snapshot(store, snapshot_id)
    out.print_json(data={"snapshot": snapshot_id, "state": snap.state, "plan": snap.review_plan,
                         "certification": snapshot_certification(store, snapshot_id),
                         "agreement": agreement(store, snapshot_id), "errors": error_summary(store, snapshot_id)})


@review_app.command("apply")
@handle_errors
def review_apply(snapshot_id: Annotated[int, typer.Argument(help="Reviewed snapshot.")]) -> None:
    """Make a child snapshot with the reviews applied: rejected samples left out, corrected ones pinned to the
    correction (a new text version; the original stays in history)."""
    from curation.cli.render import out
    from curation.review.loop import apply_reviews
    from curation.review.snapshots import get_snapshot

    store = _store()
    out.print_json(data=_snapshot_dict(get_snapshot(store, apply_reviews(store, snapshot_id))))


@review_app.command("serve")
@handle_errors
def review_serve(tool: Annotated[str, typer.Argument(help="Review tool to start: labelstudio.")],
                 host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
                 port: Annotated[int, typer.Option(help="Port.")] = 8080,
                 data_dir: Annotated[Optional[Path], typer.Option(help="Label Studio's data (SQLite, uploads); default: <store folder>/labelstudio.")] = None,
                 venv: Annotated[Optional[Path], typer.Option(help="Label Studio's own virtual environment (made when missing); default: env CURATE_LABEL_STUDIO_VENV, else .venv-labelstudio.")] = None) -> None:
    """Start a local review server in the foreground and print its URL and login. The admin user and API token
    come from the environment: LABEL_STUDIO_USERNAME, LABEL_STUDIO_PASSWORD, LABEL_STUDIO_USER_TOKEN."""
    from curation.cli.render import err
    from curation.review.labelstudio_server import serve

    if tool != "labelstudio":
        raise UsageError(f"unknown review tool {tool!r}; known: labelstudio")
    store_dir = Path(_store().path).parent
    serve(host=host, port=port, data_dir=data_dir or store_dir / "labelstudio", venv=venv, console=err)


@app.command()
@handle_errors
def demo(
    data_dir: Annotated[Optional[Path], typer.Option(help="Folder of input files (default: the bundled sample).")] = None,
) -> None:
    """Run the main job end to end on the bundled sample data: ingest, run the default pipeline, print the funnel,
    write the HTML report."""
    from curation.cli.render import err, progress_bar
    from curation.demo import run_demo
    from curation.report import write_report

    store = _store()
    with progress_bar() as update:
        result = run_demo(store, data_dir, progress=update)
    _print_reports(result.reports)
    if result.run.skipped:
        err.print(f"run {result.run.run_id}: nothing to do, {result.run.skipped}")
    else:
        _print_steps(result.run.steps)
    stats(as_json=False)
    report_path = write_report(store, result.run.run_id, None)
    err.print(f"report: {report_path}")
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
