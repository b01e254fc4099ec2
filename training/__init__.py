"""Training: dataset building from exported, approved snapshots, the LoRA trainer and evaluation.

Reads only exported snapshot folders (never the live store). Installed with the ``train`` extra.
Nothing is implemented here yet: the trainer arrives with its own issue (see the README's roadmap).
"""
