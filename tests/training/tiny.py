"""A tiny Llama built from a config and a byte-level BPE tokenizer trained here by `tokenizers` on the bundled
sample, with SmolLM2-Instruct's chat template: the tests' and the trainer benchmark's model (no downloads)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLE_DIR = REPO / "data" / "sample"
# SmolLM2-135M-Instruct's chat template (tokenizer_config.json of the model)
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def corpus() -> list[str]:
    """Instructions and answers of the bundled sample (the tokenizer's training text)."""
    texts = []
    for line in (SAMPLE_DIR / "instructions.jsonl").read_text(encoding="utf-8").splitlines()[:2000]:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            texts += [v for v in (row.get("instruction"), row.get("output")) if isinstance(v, str)]
    return texts


def build_tokenizer(out: Path, vocab_size: int = 2000) -> Path:
    """A byte-level BPE tokenizer trained on :func:`corpus`, saved as a transformers folder at ``out``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus(), trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL,
                                                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", unk_token="<|endoftext|>")
    fast.chat_template = SMOLLM2_TEMPLATE
    fast.save_pretrained(out)
    return out


def build_llama(tokenizer_dir: Path, out: Path, hidden: int = 64, layers: int = 2) -> Path:
    """A Llama of ``layers`` layers (random weights, seeded) with the tokenizer beside it, saved at ``out``."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    LlamaForCausalLM(cfg).save_pretrained(out)
    for f in Path(tokenizer_dir).iterdir():
        shutil.copy(f, Path(out) / f.name)
    return out
