"""`curate serve`: the CPU engine's OpenAI-compatible server (the ``serve`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from curation.cli.common import handle_errors
from curation.errors import MissingExtraError, UsageError


@handle_errors
def serve_command(
    model: Annotated[Path, typer.Option("--model", help="Base model folder (config.json, tokenizer, weights).")],
    adapter: Annotated[Optional[list[str]], typer.Option("--adapter", help="NAME=DIR of a LoRA adapter (curate train's "
                                                         "output), repeatable; served as model NAME.")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="The base model's served name (default: its folder's).")] = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port.")] = 8000,
    dtype: Annotated[str, typer.Option("--dtype", help="float32, bfloat16 or float16.")] = "float32",
    max_batch: Annotated[int, typer.Option("--max-batch", help="Requests answered together.")] = 8,
    max_queue: Annotated[int, typer.Option("--max-queue", help="Requests waiting before 503.")] = 64,
) -> None:
    """Serve a base model and its LoRA adapters with the OpenAI API on the CPU (the endpoints vLLM has):
    /v1/models, /v1/chat/completions (streaming), /v1/completions, /v1/load_lora_adapter,
    /v1/unload_lora_adapter, /health, /metrics. The adapter is chosen per request by model name.

    Example: curate serve --model "$(curate models smollm2)" --adapter v1=data/demo/adapters/snapshot-1
    """
    from curation.cli.render import err

    try:
        import peft  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
        import uvicorn

        from serving.api import create_app
        from serving.engine import CpuEngine, EngineError, parse_adapters
    except ImportError as e:  # depends on the install
        raise MissingExtraError("serve", "the CPU engine (fastapi, uvicorn, prometheus-client, transformers, peft)") from e
    if dtype not in ("float32", "bfloat16", "float16"):
        raise UsageError(f"--dtype {dtype!r}: one of float32, bfloat16, float16")
    try:
        engine = CpuEngine(model, parse_adapters(adapter or []), name=name, dtype=dtype, max_batch=max_batch,
                           max_queue=max_queue)
    except EngineError as e:
        raise UsageError(str(e)) from e
    served = ", ".join([engine.name, *engine.adapters])
    err.print(f"serving {served} on http://{host}:{port}/v1 (OpenAI API; metrics at /metrics)", highlight=False)
    try:
        uvicorn.run(create_app(engine), host=host, port=port, log_level="warning")
    finally:
        engine.close()
