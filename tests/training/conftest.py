"""A tiny Llama and a tokenizer trained here by `tokenizers`, with SmolLM2-Instruct's chat template (ChatML)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.tiny import build_llama, build_tokenizer


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory) -> Path:
    """A byte-level BPE tokenizer (2,000 tokens) trained on the bundled sample, saved as a transformers folder."""
    return build_tokenizer(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="session")
def tokenizer(tokenizer_dir):  # noqa: ANN001, ANN201
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir)


@pytest.fixture(scope="session")
def tiny_model_dir(tokenizer_dir, tmp_path_factory) -> Path:  # noqa: ANN001
    """A 2-layer Llama (hidden 64) built from a config, random weights (seeded), with the tokenizer beside it."""
    return build_llama(tokenizer_dir, tmp_path_factory.mktemp("tiny-llama"))
