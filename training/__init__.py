"""Training: dataset building from exported, approved snapshots, the LoRA trainer and evaluation.

Reads only exported snapshot folders (never the live store). Installed with the ``train`` extra.
So far: :mod:`training.config` (``TrainConfig``, TOML and ``--set``) and :mod:`training.data` (the chat
template, loss on the assistant's tokens only, reasoning, truncation). The trainer, ``curate train`` and
the evaluation are not built yet (see the README's roadmap).
"""
