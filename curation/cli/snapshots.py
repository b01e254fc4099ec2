"""`curate snapshot ...`: freeze a run's kept samples, list, show, approve, export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from curation.cli.common import MaybeConfidenceOpt, MaybeTargetOpt, SnapshotArg, handle_errors, open_cli_store

snapshot_app = typer.Typer(
    help="Snapshots: freeze a run's kept samples, list, show, approve (certified), export.\n\n"
         "Example: curate snapshot create && curate snapshot show 1",
    no_args_is_help=True, rich_markup_mode=None)


@snapshot_app.command("create")
@handle_errors
def snapshot_create(
    run_id: Annotated[Optional[int], typer.Option("--run", help="Run whose kept samples to freeze (default: the latest done run).")] = None,
    parent: Annotated[Optional[int], typer.Option(help="An approved snapshot this one extends: its samples need no new review.")] = None,
    note: Annotated[Optional[str], typer.Option(help="Free text kept with the snapshot.")] = None,
) -> None:
    """Freeze the kept samples of a run, with their current text versions, as an immutable draft snapshot.

    Example: curate snapshot create --note "first round"
    """
    from curation.cli.render import out
    from curation.snapshots.core import create_snapshot

    out.print_json(data=create_snapshot(open_cli_store(), run_id, parent, note).summary())


@snapshot_app.command("list")
@handle_errors
def snapshot_list() -> None:
    """List snapshots, newest first.

    Example: curate snapshot list
    """
    from curation.cli.render import out
    from curation.snapshots.core import list_snapshots

    out.print_json(data=[s.summary() for s in list_snapshots(open_cli_store())])


@snapshot_app.command("show")
@handle_errors
def snapshot_show(snapshot_id: SnapshotArg, target: MaybeTargetOpt = None, confidence: MaybeConfidenceOpt = None) -> None:
    """Show a snapshot, its certification from the stored reviews (or its lineage) and, for an incremental one,
    its parent's.

    Example: curate snapshot show 2
    """
    from curation.cli.render import out
    from curation.review.certification import snapshot_certification
    from curation.snapshots.core import get_snapshot

    store = open_cli_store()
    snap = get_snapshot(store, snapshot_id)
    data = snap.summary()
    if snap.parent_id is not None and snap.applied_from is None:
        data["parent_certification"] = get_snapshot(store, snap.parent_id).certification
    data["certification"] = snapshot_certification(store, snapshot_id, target, confidence)
    data["review_plan"] = snap.review_plan
    out.print_json(data=data)


@snapshot_app.command("approve")
@handle_errors
def snapshot_approve(snapshot_id: SnapshotArg,
                     force: Annotated[bool, typer.Option("--force", help="Approve without certification (recorded).")] = False,
                     target: MaybeTargetOpt = None, confidence: MaybeConfidenceOpt = None) -> None:
    """Approve a snapshot; refused (exit 3) unless its stored reviews (or, for a child made by `review apply`,
    the reviewed parent's) certify it, or with --force.

    Example: curate snapshot approve 2
    """
    from curation.cli.render import err, out
    from curation.snapshots.approve import approve

    snap = approve(open_cli_store(), snapshot_id, force, target, confidence)
    cert = snap.certification or {}
    err.print(f"snapshot {snapshot_id} approved" + (" with --force (not certified)" if snap.forced else
              f": certified, lower bound {cert.get('lower', 0):.4f} >= {cert.get('target')}"), highlight=False)
    out.print_json(data=snap.summary())


@snapshot_app.command("export")
@handle_errors
def snapshot_export(snapshot_id: SnapshotArg,
                    to: Annotated[Optional[Path], typer.Option("--to", help="Folder (default: <store folder>/exports/snapshot-<id>).")] = None,
                    eval_share: Annotated[float, typer.Option(help="Share of samples in the eval split.")] = 0.05,
                    seed: Annotated[int, typer.Option(help="Seed of the train / eval split.")] = 0,
                    force: Annotated[bool, typer.Option("--force", help="Export an unapproved snapshot (recorded).")] = False,
                    hf: Annotated[bool, typer.Option("--hf/--no-hf", help="Also write a Hugging Face dataset folder.")] = True) -> None:
    """Export an approved snapshot: Parquet, JSONL, a Hugging Face dataset folder, train / eval split, manifest.json.

    Example: curate snapshot export 2 --to out/
    """
    from curation.cli.render import err, out
    from curation.snapshots.export import export_snapshot

    res = export_snapshot(open_cli_store(), snapshot_id, to, eval_share, seed, force, hf)
    for w in res.warnings:
        err.print(f"[bold yellow]warning:[/] {w}", highlight=False)
    out.file.write(f"{res.path}\n")
