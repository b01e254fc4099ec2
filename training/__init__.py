"""Training: the LoRA trainer on exported, approved snapshots, and the evaluation.

Reads only exported snapshot folders (never the live store). Installed with the ``train`` extra.
:mod:`training.config` (``TrainConfig``, TOML and ``--set``), :mod:`training.data` (the chat template,
loss on the assistant's tokens only, reasoning, truncation) and :mod:`training.trainer` (checks before
training, the dry run, training with eval loss, early stopping and the best checkpoint, the adapter's
manifest) and :mod:`training.evaluate` (generation, BLEU-4, ROUGE-L, BERTScore, eval loss). ``curate train``
and ``curate eval`` call them. and the human rating round. Not built yet: packing (see the README).
"""
