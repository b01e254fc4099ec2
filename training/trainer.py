"""The LoRA trainer: an exported, approved snapshot and a base model folder in, a peft adapter out.

:func:`check` does everything that can fail before training (the export and its approval and content
hash, the model folder, the target modules, the data after templating) and raises a clear error; nothing
is written until it passes. :func:`dry_run` reports trainable parameters, tokens, steps and an estimate of
memory without loading weights. :func:`train` runs transformers' ``Trainer`` on a peft model with eval loss
every ``eval_steps``, early stopping, the best checkpoint kept and ``--resume``, then writes the adapter,
``train_manifest.json`` and ``loss.png``.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from curation import __version__
from curation.errors import RefusedError, UsageError
from training.config import TrainConfig
from training.data import IGNORE_INDEX, ExportData, Example, TokenizeReport, load_export, pack, tokenize_rows

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass
class Prepared:
    """What :func:`check` found: the export, the tokenised splits and the model's module names."""

    data: ExportData
    tokenizer: object
    train: list[Example]
    eval: list[Example]
    train_report: TokenizeReport
    eval_report: TokenizeReport
    forced: bool
    linear_modules: list[str] = field(default_factory=list)
    from_adapter: Path | None = None
    replay: dict | None = None  # with from_adapter: the earlier snapshot, how many of its rows were replayed


def content_hash(rows: list[dict]) -> str:
    """The snapshot content hash over exported rows: sha256 of the sorted ``sample_id:content_hash`` list."""
    pairs = sorted(f"{r['sample_id']}:{r['content_hash']}" for r in rows)
    return hashlib.sha256(",".join(pairs).encode()).hexdigest()


def check_model_folder(model: Path) -> None:
    """A usable model folder: config, tokenizer and weights (names what is missing)."""
    if not model.is_dir():
        raise UsageError(f"model {model}: not a folder (a local model folder with config.json, the tokenizer and "
                         "the weights; download it first where the hub is reachable)")
    missing = []
    if not (model / "config.json").is_file():
        missing.append("config.json")
    if not any((model / f).is_file() for f in ("tokenizer.json", "tokenizer.model", "vocab.json")):
        missing.append("a tokenizer (tokenizer.json, tokenizer.model or vocab.json)")
    if not any((model / f).is_file() for f in WEIGHT_FILES) and not list(model.glob("*.safetensors")):
        missing.append("weights (model.safetensors or pytorch_model.bin)")
    if missing:
        raise UsageError(f"model folder {model} is missing {', '.join(missing)}")


def _meta_model(model: Path):  # noqa: ANN202
    """The model built on the meta device from its config: module names and parameter counts, no weights."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.from_pretrained(model)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(cfg), cfg


def linear_module_names(net) -> list[str]:  # noqa: ANN001
    """Last names of the linear layers of a model (what target_modules names), without the output head."""
    import torch

    names = {n.rsplit(".", 1)[-1] for n, m in net.named_modules() if isinstance(m, torch.nn.Linear)}
    return sorted(names - {"lm_head"})


def check(data_dir: Path, model: Path, cfg: TrainConfig, force: bool = False, from_adapter: Path | None = None) -> Prepared:
    """Everything that can fail before training; raises UsageError (exit 2) or RefusedError (exit 3).

    ``from_adapter``: an adapter written by an earlier ``curate train``, continued on this snapshot with
    ``cfg.replay_share`` x (this snapshot's training rows) rows of the snapshot it was trained on (seeded; rows
    whose sample is in this snapshot are not replayed), so that the new round does not forget the old one.
    """
    from transformers import AutoTokenizer

    data = load_export(data_dir)
    m = data.manifest
    forced = False
    if m.state != "approved" or m.exported_unapproved:
        if not force:
            raise RefusedError(f"snapshot {m.snapshot_id} was exported {m.state}, not approved: approve it and export "
                               "again, or train with --force (recorded in the adapter's manifest)")
        forced = True
    found = content_hash(data.train + data.eval)
    if found != m.content_hash:
        if not force:
            raise RefusedError(f"{data_dir}: the exported rows no longer match the manifest's content hash "
                               f"({found[:12]} vs {m.content_hash[:12]}): the files were changed after export")
        forced = True
    if not data.train:
        raise UsageError(f"snapshot {m.snapshot_id} has no training rows ({len(data.eval)} in eval): nothing to train on")
    check_model_folder(Path(model))
    net, _ = _meta_model(Path(model))
    linear = linear_module_names(net)
    if cfg.target_modules != "all-linear":
        absent = [t for t in cfg.target_modules if t not in linear]
        if absent:
            raise UsageError(f"target_modules {absent} are not modules of {model}; its linear modules are: "
                             f"{', '.join(linear)} (or use all-linear)")
    tok = AutoTokenizer.from_pretrained(model)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    train, train_report = tokenize_rows(tok, data.train, cfg.max_seq_length, cfg.too_long, cfg.reasoning)
    evals, eval_report = tokenize_rows(tok, data.eval[:cfg.max_eval_samples], cfg.max_seq_length, cfg.too_long, cfg.reasoning)
    if not train:
        raise UsageError(f"every training sample is longer than max_seq_length={cfg.max_seq_length} or has no answer "
                         f"left after truncation (longest: {train_report.longest} tokens): raise max_seq_length")
    prep = Prepared(data, tok, train, evals, train_report, eval_report, forced, linear)
    if from_adapter is not None:
        _add_replay(prep, Path(from_adapter), cfg)
    return prep


def _add_replay(prep: Prepared, adapter: Path, cfg: TrainConfig) -> None:
    import random

    mf = adapter / "train_manifest.json"
    if not (adapter / "adapter_config.json").is_file() or not mf.is_file():
        raise UsageError(f"--from-adapter {adapter}: not a folder written by curate train (adapter_config.json and "
                         "train_manifest.json)")
    earlier = json.loads(mf.read_text(encoding="utf-8"))
    prep.from_adapter = adapter
    if not cfg.replay_share:
        prep.replay = {"snapshot_id": earlier.get("snapshot_id"), "rows": 0, "share": 0.0}
        return
    try:
        old = load_export(Path(earlier["export"]))
    except UsageError as e:
        raise UsageError(f"--from-adapter {adapter}: the export it was trained on is gone ({e}); its rows are "
                         "needed for replay (set replay_share=0 to continue without)") from e
    current = {r["sample_id"] for r in prep.data.train + prep.data.eval}
    pool = [r for r in old.train if r["sample_id"] not in current]
    k = min(len(pool), round(cfg.replay_share * len(prep.data.train)))
    chosen = random.Random(cfg.seed).sample(pool, k) if k else []
    replayed, report = tokenize_rows(prep.tokenizer, chosen, cfg.max_seq_length, cfg.too_long, cfg.reasoning)
    prep.train += replayed
    prep.replay = {"snapshot_id": old.manifest.snapshot_id, "content_hash": old.manifest.content_hash,
                   "rows": len(replayed), "share": cfg.replay_share, "skipped": report.skipped_too_long + report.skipped_no_answer}


def _steps(cfg: TrainConfig, n_train: int) -> int:
    per_epoch = math.ceil(n_train / cfg.effective_batch)
    return cfg.max_steps if cfg.max_steps > 0 else max(1, math.ceil(per_epoch * cfg.num_train_epochs))


def dry_run(prep: Prepared, model: Path, cfg: TrainConfig, device: str = "cuda") -> dict:
    """Trainable parameters, tokens per epoch, truncation, steps, and a memory estimate (no weights loaded).

    Memory (GiB, an estimate): the base weights in the chosen precision; LoRA parameters with fp32 master
    copies, gradients and AdamW's two moments (16 bytes each); activations of one micro-batch: with gradient
    checkpointing the input of every layer (2 bytes per hidden value) plus one layer's full activations,
    without it every layer's (about 34 bytes per hidden value per layer plus 5 per attention score, the
    usual estimate for transformer training in 16-bit).
    """
    from peft import LoraConfig, get_peft_model

    net, hf_cfg = _meta_model(Path(model))
    total = sum(p.numel() for p in net.parameters())
    peft_net = get_peft_model(net, _lora_config(cfg, LoraConfig))
    trainable = sum(p.numel() for p in peft_net.parameters() if p.requires_grad)
    dtype = _dtype_name(cfg, device)
    hidden = getattr(hf_cfg, "hidden_size", 0)
    layers = getattr(hf_cfg, "num_hidden_layers", 0)
    heads = getattr(hf_cfg, "num_attention_heads", 1)
    seq = min(cfg.max_seq_length, max((len(e.input_ids) for e in prep.train), default=0))
    n_packed = len(pack(prep.train, cfg.max_seq_length)) if cfg.packing else None
    if cfg.packing:
        seq = cfg.max_seq_length
    b = cfg.per_device_train_batch_size
    per_layer_full = b * seq * hidden * 34 + 5 * b * heads * seq * seq
    activations = (b * seq * hidden * 2 * layers + per_layer_full) if cfg.gradient_checkpointing else per_layer_full * layers
    gib = 2 ** 30
    weights = total * BYTES[dtype]
    optimizer = trainable * 16
    return {
        "total_parameters": total, "trainable_parameters": trainable,
        "trainable_share": trainable / (total + trainable) if total else 0.0,
        "train_samples": len(prep.train), "eval_samples": len(prep.eval),
        "tokens_per_epoch": prep.train_report.tokens, "trained_tokens_per_epoch": prep.train_report.trained_tokens,
        "truncated": prep.train_report.truncated + prep.eval_report.truncated,
        "skipped": prep.train_report.skipped_too_long + prep.train_report.skipped_no_answer
        + prep.eval_report.skipped_too_long + prep.eval_report.skipped_no_answer,
        "longest_tokens": max(prep.train_report.longest, prep.eval_report.longest),
        "packed_sequences": n_packed, "effective_batch": cfg.effective_batch,
        "steps": _steps(cfg, n_packed or len(prep.train)), "precision": dtype,
        "memory_gib": {"weights": weights / gib, "lora_and_optimizer": optimizer / gib,
                       "activations": activations / gib, "total": (weights + optimizer + activations) / gib},
    }


def _lora_config(cfg: TrainConfig, lora_cls):  # noqa: ANN001, ANN202
    return lora_cls(r=cfg.r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                    target_modules=cfg.target_modules, task_type="CAUSAL_LM", bias="none")


def _dtype_name(cfg: TrainConfig, device: str) -> str:
    if cfg.fp16:
        return "float16"
    if cfg.bf16 is True:
        return "bfloat16"
    if cfg.bf16 is None and device == "cuda":
        import torch

        return "bfloat16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "float16"
    return "float32"  # CPU: fp32 unless bf16 is asked for


class _Collator:
    """Pads a batch. Packed rows (``position_ids`` given) get no attention mask, so that transformers finds the
    samples from the restarting positions; their padding is a segment of its own that carries no label."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, batch: list[dict]) -> dict:
        import torch

        n = max(len(x["input_ids"]) for x in batch)
        if "position_ids" in batch[0]:
            ids = [x["input_ids"] + [self.pad_id] * (n - len(x["input_ids"])) for x in batch]
            labels = [x["labels"] + [IGNORE_INDEX] * (n - len(x["labels"])) for x in batch]
            pos = [x["position_ids"] + list(range(n - len(x["position_ids"]))) for x in batch]
            return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "position_ids": torch.tensor(pos),
                    "use_cache": False}
        ids = [x["input_ids"] + [self.pad_id] * (n - len(x["input_ids"])) for x in batch]
        labels = [x["labels"] + [IGNORE_INDEX] * (n - len(x["labels"])) for x in batch]
        mask = [[1] * len(x["input_ids"]) + [0] * (n - len(x["input_ids"])) for x in batch]
        return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "attention_mask": torch.tensor(mask)}


def _weights_hash(model: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in model.iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file()):
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def train(prep: Prepared, model: Path, out: Path, cfg: TrainConfig, resume: bool = False, progress: bool = False,
          merge: bool = False) -> dict:
    """Train; write the adapter, ``train_manifest.json`` and ``loss.png`` into ``out`` (and with ``merge`` the
    base model with the adapter merged in, ``out/merged``); the manifest as a dict."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, EarlyStoppingCallback, PrinterCallback, Trainer, TrainingArguments, set_seed

    started = time.time()
    out.mkdir(parents=True, exist_ok=True)
    dtype = _dtype_name(cfg, "cuda" if torch.cuda.is_available() else "cpu")
    base = AutoModelForCausalLM.from_pretrained(model, dtype=getattr(torch, dtype))
    use_cache = getattr(base.config, "use_cache", True)
    base.config.use_cache = False  # no key / value cache in training (and none, so that packed rows are found)
    if cfg.gradient_checkpointing:
        base.enable_input_require_grads()
    set_seed(cfg.seed)  # the LoRA matrices are drawn here, before the Trainer seeds: the same seed, the same adapter
    if prep.from_adapter is not None:  # an earlier round's adapter, trained further (its own LoRA settings)
        from peft import PeftModel

        net = PeftModel.from_pretrained(base, prep.from_adapter, is_trainable=True)
    else:
        net = get_peft_model(base, _lora_config(cfg, LoraConfig))
    has_eval = bool(prep.eval)
    ckpt = out / "checkpoints"
    last = None
    if resume and ckpt.is_dir():
        # a checkpoint is complete once its trainer_state.json is written (the Trainer writes it last): a run
        # killed while saving leaves a partial folder, which is passed over
        found = sorted((p for p in ckpt.glob("checkpoint-*") if (p / "trainer_state.json").is_file()),
                       key=lambda p: int(p.name.split("-")[-1]))
        last = str(found[-1]) if found else None
    args = TrainingArguments(
        output_dir=str(ckpt), learning_rate=cfg.learning_rate, num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps, per_device_train_batch_size=cfg.per_device_train_batch_size,
        per_device_eval_batch_size=cfg.per_device_eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        warmup_steps=float(cfg.warmup_ratio),  # transformers 5: a float in [0, 1) is the share of steps
        lr_scheduler_type=cfg.lr_scheduler_type, weight_decay=cfg.weight_decay, max_grad_norm=cfg.max_grad_norm,
        **_checkpointing(TrainingArguments, cfg.gradient_checkpointing), bf16=dtype == "bfloat16", fp16=dtype == "float16",
        seed=cfg.seed, data_seed=cfg.seed, logging_steps=cfg.logging_steps, report_to=[],
        eval_strategy="steps" if has_eval else "no", eval_steps=cfg.eval_steps, eval_on_start=has_eval and last is None,
        save_strategy="steps",
        save_steps=cfg.eval_steps, save_total_limit=cfg.save_total_limit, load_best_model_at_end=has_eval,
        metric_for_best_model="eval_loss", greater_is_better=False, remove_unused_columns=False,
        disable_tqdm=True, include_num_input_tokens_seen="non_padding", ddp_find_unused_parameters=False, dataloader_num_workers=0, use_cpu=not torch.cuda.is_available())
    callbacks = []
    if has_eval and cfg.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(cfg.early_stopping_patience, cfg.early_stopping_threshold))
    rows = lambda exs: [{"input_ids": e.input_ids, "labels": e.labels} for e in exs]  # noqa: E731
    train_rows = rows(prep.train)
    packed = None
    if cfg.packing:
        packed = pack(prep.train, cfg.max_seq_length)
        train_rows = [{"input_ids": p.input_ids, "labels": p.labels, "position_ids": p.position_ids} for p in packed]
    if progress:
        from training.progress import RichProgressCallback

        callbacks.append(RichProgressCallback())
    trainer = Trainer(model=net, args=args, train_dataset=train_rows, eval_dataset=rows(prep.eval) if has_eval else None,
                      data_collator=_Collator(prep.tokenizer.pad_token_id), callbacks=callbacks,
                      processing_class=prep.tokenizer)  # the pad id: tokens/s counts no padding
    trainer.remove_callback(PrinterCallback)  # the log dicts are in the manifest; the bar shows the latest
    result = trainer.train(resume_from_checkpoint=last)
    history = list(trainer.state.log_history)
    metrics = dict(result.metrics)
    if has_eval:  # the kept (best) adapter's eval loss: from its evaluation during training, not evaluated again
        best = trainer.state.best_metric
        metrics["eval_loss"] = best if best is not None else trainer.evaluate()["eval_loss"]
    if not trainer.is_world_process_zero():  # under accelerate launch, one process writes the results
        return {"metrics": metrics, "rank": trainer.args.process_index}
    net.save_pretrained(out)
    prep.tokenizer.save_pretrained(out)
    base.config.use_cache = use_cache
    if merge:  # a standalone model: the LoRA deltas added into the base weights
        net.merge_and_unload().save_pretrained(out / "merged")
        prep.tokenizer.save_pretrained(out / "merged")
    train_loss = [(h["step"], h["loss"]) for h in history if "loss" in h]
    eval_loss = [(h["step"], h["eval_loss"]) for h in history if "eval_loss" in h]
    _plot(out / "loss.png", train_loss, eval_loss)
    m = prep.data.manifest
    manifest = {
        "snapshot_id": m.snapshot_id, "content_hash": m.content_hash, "export": str(prep.data.path),
        "forced": prep.forced, "base_model": str(model), "base_model_weights_sha256": _weights_hash(Path(model)),
        "config": cfg.model_dump(), "code_version": __version__, "precision": dtype,
        "resumed_from": last, "from_adapter": str(prep.from_adapter) if prep.from_adapter else None,
        "replay": prep.replay, "packed_sequences": len(packed) if packed is not None else None, "merged": str(out / "merged") if merge else None, "metrics": metrics, "best_checkpoint": trainer.state.best_model_checkpoint,
        "train_eval_gap": (eval_loss[-1][1] - train_loss[-1][1]) if eval_loss and train_loss else None,
        "data": {"train": asdict(prep.train_report), "eval": asdict(prep.eval_report)},
        "loss_curve": {"train": train_loss, "eval": eval_loss}, "wall_seconds": round(time.time() - started, 1),
    }
    (out / "train_manifest.json").write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
    (out / "train_config.json").write_text(cfg.model_dump_json(indent=2), encoding="utf-8")
    return manifest


def _checkpointing(args_cls, on: bool) -> dict:  # noqa: ANN001
    """Gradient checkpointing under the name the installed transformers takes (5.x: activation_checkpointing)."""
    import inspect

    names = inspect.signature(args_cls.__init__).parameters
    return {"activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing": on}


def _plot(path: Path, train_loss: list[tuple[int, float]], eval_loss: list[tuple[int, float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    if train_loss:
        ax.plot(*zip(*train_loss), label="train loss")
    if eval_loss:
        ax.plot(*zip(*eval_loss), marker="o", label="eval loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if train_loss or eval_loss:
        ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def snapshot_export_dir(store, snapshot_id: int, force: bool = False) -> Path:  # noqa: ANN001
    """The export folder of a snapshot in the store, exported now when it is missing or stale.

    An export whose manifest names another snapshot or content hash than the store's is written again;
    an unapproved snapshot is refused (exit 3) unless ``force``.
    """
    from curation.snapshots import get_snapshot
    from curation.snapshots.export import export_snapshot
    from schemas.manifest import SnapshotManifest

    snap = get_snapshot(store, snapshot_id)
    folder = store.path.parent / "exports" / f"snapshot-{snapshot_id}"
    mf = folder / "manifest.json"
    if mf.is_file():
        m = SnapshotManifest.model_validate_json(mf.read_text(encoding="utf-8"))
        if m.snapshot_id == snapshot_id and m.content_hash == snap.content_hash and m.state == snap.state:
            return folder
    return export_snapshot(store, snapshot_id, folder, force=force, hf=False).path


def train_snapshot(store, snapshot_id: int, model: Path, out: Path | None = None, config: Path | None = None,  # noqa: ANN001
                   set_: list[str] | None = None, force: bool = False, progress: bool = False) -> dict:
    """Train an adapter on a snapshot of ``store`` (exported first when needed) into ``out`` (default:
    ``<store folder>/adapters/snapshot-<id>``), with the config file and ``name=value`` overrides; the adapter's
    manifest, with ``out``. What the service's training job runs."""
    from training.config import load_config

    cfg = load_config(config, set_)
    data = snapshot_export_dir(store, snapshot_id, force)
    out = out or store.path.parent / "adapters" / f"snapshot-{snapshot_id}"
    check_model_folder(model)
    manifest = train(check(Path(data), model, cfg, force=force), model, out, cfg, progress=progress)
    return {**manifest, "out": str(out)}
