"""`curate train`: a LoRA adapter from an approved snapshot (the ``train`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from curation.cli.common import handle_errors, open_cli_store
from curation.errors import MissingExtraError, UsageError


@handle_errors
def train_command(
    model: Annotated[Path, typer.Option("--model", help="Base model folder (config.json, tokenizer, weights).")],
    snapshot: Annotated[Optional[int], typer.Option("--snapshot", help="Snapshot id in the store (exported first if needed).")] = None,
    data: Annotated[Optional[Path], typer.Option("--data", help="An export folder (manifest.json) instead of --snapshot.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Adapter folder (default: <store folder>/adapters/snapshot-<id>).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="TOML file of TrainConfig fields ([train] table).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="name=value, repeatable (e.g. --set r=16).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Parameters, tokens, steps and memory; train nothing.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the last checkpoint in --out.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Train on an unapproved or changed export (recorded).")] = False,
    merge: Annotated[bool, typer.Option("--merge", help="Also write the base model with the adapter merged in (<out>/merged).")] = False,
) -> None:
    """Train a LoRA adapter on an approved snapshot: the model's chat template, loss on the assistant's tokens,
    eval loss on the export's eval split, early stopping, the best checkpoint kept.

    Example: curate train --snapshot 2 --model models/SmolLM2-135M-Instruct --set max_steps=200
    """
    from curation.cli.render import err, out as stdout

    try:
        import peft  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
        from training.config import load_config
        from training.trainer import check, dry_run as estimate, snapshot_export_dir, train
    except ImportError as e:  # depends on the install
        raise MissingExtraError("train", "the trainer (transformers, peft, accelerate)") from e
    if (snapshot is None) == (data is None):
        raise UsageError("give one of --snapshot ID or --data DIR")
    cfg = load_config(config, set_)
    if snapshot is not None:
        store = open_cli_store()
        data = snapshot_export_dir(store, snapshot, force)
        out = out or store.path.parent / "adapters" / f"snapshot-{snapshot}"
    out = out or Path(data) / "adapter"
    prep = check(Path(data), model, cfg, force=force)
    if dry_run:
        stdout.print_json(data=estimate(prep, model, cfg))
        return
    err.print(f"training on {len(prep.train)} samples ({len(prep.eval)} eval) of snapshot "
              f"{prep.data.manifest.snapshot_id} into {out}", highlight=False)
    manifest = train(prep, model, out, cfg, resume=resume, progress=True, merge=merge)
    err.print(f"adapter: {out}  (loss curves: {out / 'loss.png'})", highlight=False)
    stdout.print_json(data={k: manifest[k] for k in ("snapshot_id", "content_hash", "metrics", "best_checkpoint",
                                                     "train_eval_gap", "wall_seconds")}, default=str)
