"""``TrainConfig``: the LoRA trainer's settings, named as transformers' ``TrainingArguments`` and peft's
``LoraConfig`` name them, with the defaults of practice for LoRA fine-tuning.

Every field can be set from a TOML file (``[train]`` table or top level) and from ``--set name=value``
(values parsed as TOML literals, so ``--set target_modules=["q_proj","k_proj"]`` and ``--set bf16=true``
work); the resolved config is saved with the adapter.

Learning rate: 2e-4 is the usual LoRA rate; full fine-tuning uses 1e-5 to 5e-5. The effective batch
(``per_device_train_batch_size * gradient_accumulation_steps * devices``) is 16 by default; 8 to 32 is the
usual range for instruction data.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from curation.errors import UsageError
from curation.tomlfile import problems, read_toml


class TrainConfig(BaseModel):
    """LoRA fine-tuning settings (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # optimisation (TrainingArguments names)
    learning_rate: float = Field(default=2e-4, gt=0, le=1e-2,
                                 description="2e-4 for LoRA; 1e-5 to 5e-5 is the range of full fine-tuning.")
    num_train_epochs: float = Field(default=3.0, gt=0, le=100, description="Passes over the training split.")
    max_steps: int = Field(default=-1, ge=-1, description="Stop after this many optimizer steps (-1: by epochs).")
    per_device_train_batch_size: int = Field(default=4, ge=1, le=1024, description="Samples per forward pass on each device.")
    per_device_eval_batch_size: int = Field(default=4, ge=1, le=1024, description="Samples per forward pass in evaluation.")
    gradient_accumulation_steps: int = Field(default=4, ge=1, le=1024,
                                             description="4 x 4 = an effective batch of 16; 8 to 32 is usual.")
    warmup_ratio: float = Field(default=0.1, ge=0, le=0.5, description="Share of steps spent warming up.")
    lr_scheduler_type: str = Field(default="cosine", description="transformers' scheduler name (linear, cosine, constant, ...).")
    weight_decay: float = Field(default=0.0, ge=0, le=1, description="AdamW weight decay.")
    max_grad_norm: float = Field(default=1.0, gt=0, description="Gradient clipping norm.")
    gradient_checkpointing: bool = Field(default=True, description="Recompute activations in the backward pass: less memory, about 30% slower.")
    bf16: bool | None = Field(default=None, description="None: bf16 on GPUs that have it, else fp16; fp32 on CPU. true: bf16 (CPU too).")
    fp16: bool = Field(default=False, description="fp16 mixed precision (GPUs without bf16).")
    seed: int = Field(default=42, description="Seeds the LoRA matrices, the data order and dropout.")
    logging_steps: int = Field(default=10, ge=1, description="Train loss logged every N steps.")
    # evaluation and early stopping
    eval_steps: int = Field(default=50, ge=1, description="Eval loss on the export's eval split every N steps.")
    max_eval_samples: int | None = Field(default=None, ge=1, description="Evaluate on the first N samples of the eval split (None: all of it): each evaluation of a large split on a CPU takes minutes.")
    early_stopping_patience: int = Field(default=3, ge=0, description="Evaluations without improvement before "
                                                                       "stopping (0: never stop early).")
    early_stopping_threshold: float = Field(default=0.0, ge=0, description="Minimum eval-loss improvement.")
    save_total_limit: int = Field(default=2, ge=1, description="Checkpoints kept (the best one always).")
    # LoRA (LoraConfig names)
    r: int = Field(default=8, ge=1, le=1024, description="LoRA rank.")
    lora_alpha: int = Field(default=16, ge=1, le=4096, description="LoRA scaling: the update is scaled by lora_alpha / r.")
    lora_dropout: float = Field(default=0.05, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: list[str] | Literal["all-linear"] = Field(default_factory=lambda: ["q_proj", "v_proj"], description="Linear modules that get LoRA matrices, or all-linear.")
    # data
    max_seq_length: int = Field(default=2048, ge=16, le=1_048_576, description="Tokens per sample after the chat template (and per packed sequence).")
    too_long: Literal["truncate", "skip"] = Field(default="truncate",
                                                  description="What to do with a sample over max_seq_length.")
    reasoning: Literal["keep", "drop"] = Field(
        default="keep", description="keep: <think>reasoning</think> before the trained answer (distillation); "
                                    "drop: the answer alone. Earlier turns' reasoning is always removed.")
    packing: bool = Field(default=False, description="Pack several samples into one sequence of up to max_seq_length, "
                                                     "kept apart by their positions (fewer, fuller steps).")
    replay_share: float = Field(default=0.1, ge=0, le=1,
                                description="With --from-adapter: share of the earlier snapshot replayed.")

    @field_validator("target_modules")
    @classmethod
    def _modules(cls, v: list[str] | str) -> list[str] | str:
        if isinstance(v, list) and not v:
            raise ValueError("target_modules is empty: name modules (q_proj, v_proj, ...) or 'all-linear'")
        return v

    @property
    def effective_batch(self) -> int:
        """Samples per optimizer step on one device."""
        return self.per_device_train_batch_size * self.gradient_accumulation_steps


def _parse_value(text: str) -> object:
    """A --set value as a TOML literal (numbers, booleans, lists, quoted strings); bare words are strings."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def load_config(path: Path | None = None, sets: list[str] | None = None) -> TrainConfig:
    """The config from a TOML file (its ``[train]`` table, or the top level) and ``name=value`` overrides.

    Raises :class:`UsageError` naming the file, the field and the reason on any bad value.
    """
    values: dict[str, object] = {}
    where = "defaults"
    if path is not None:
        where = str(path)
        data = read_toml(Path(path))
        values.update(data.get("train", data))
    for item in sets or []:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--set {item!r}: expected name=value")
        values[name.strip()] = _parse_value(raw.strip())
    try:
        return TrainConfig(**values)
    except ValidationError as e:
        raise UsageError(f"train config ({where}{' and --set' if sets else ''}): {problems(e)}") from e


def accelerate_config(num_processes: int, mixed_precision: str = "bf16", gpu_ids: str = "all") -> str:
    """An accelerate config file (YAML) for data-parallel LoRA training on ``num_processes`` GPUs of one machine.

    Used as ``accelerate launch --config_file FILE -m curation train --data EXPORT --model MODEL``; each GPU
    takes ``per_device_train_batch_size`` samples, so the effective batch is that x
    ``gradient_accumulation_steps`` x ``num_processes``.
    """
    if num_processes < 1:
        raise UsageError(f"--num-processes {num_processes}: at least 1")
    if mixed_precision not in ("no", "bf16", "fp16"):
        raise UsageError(f"--mixed-precision {mixed_precision!r}: one of no, bf16, fp16")
    kind = "MULTI_GPU" if num_processes > 1 else "NO"
    return "\n".join([
        "# written by curate accelerate-config; see accelerate's docs for the other fields",
        "compute_environment: LOCAL_MACHINE",
        f"distributed_type: {kind}",
        "downcast_bf16: 'no'",
        f"gpu_ids: {gpu_ids}",
        "machine_rank: 0",
        "main_training_function: main",
        f"mixed_precision: {mixed_precision}",
        "num_machines: 1",
        f"num_processes: {num_processes}",
        "rdzv_backend: static",
        "same_network: true",
        "use_cpu: false",
        "",
    ])


def markdown_reference() -> str:
    """The README's reference of every ``TrainConfig`` field: name, type, default, meaning (generated, tested)."""
    lines = ["| field | type | default | meaning |", "|---|---|---|---|"]
    for name, f in TrainConfig.model_fields.items():
        default = f.default_factory() if f.default_factory is not None else f.default
        kind = str(f.annotation).replace("typing.", "").replace("<class '", "").replace("'>", "").replace(" | ", " or ")
        kind = kind.replace("Union[list[str], Literal['all-linear']]", "list[str] or 'all-linear'")
        bounds = [f"{k} {getattr(m, a)}" for m in f.metadata for k, a in
                  ((">", "gt"), (">=", "ge"), ("<", "lt"), ("<=", "le")) if getattr(m, a, None) is not None]
        meaning = (f.description or "") + (f" ({', '.join(bounds)})" if bounds else "")
        lines.append(f"| `{name}` | `{kind}` | `{default!r}` | {meaning.replace('|', '/')} |")
    return "\n".join(lines)
