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
    engine_name: Annotated[str, typer.Option("--engine", help="cpu (transformers + peft, here) or vllm (GPU, "
                                             "in its own environment).")] = "cpu",
    adapter: Annotated[Optional[list[str]], typer.Option("--adapter", help="NAME=DIR of a LoRA adapter (curate train's "
                                                         "output), repeatable; served as model NAME.")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="The base model's served name (default: its folder's).")] = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port.")] = 8000,
    dtype: Annotated[Optional[str], typer.Option("--dtype", help="cpu: float32 (default), bfloat16 or float16; "
                                                 "vllm: passed through (auto by default).")] = None,
    max_batch: Annotated[int, typer.Option("--max-batch", help="cpu: requests answered together.")] = 8,
    max_queue: Annotated[int, typer.Option("--max-queue", help="cpu: requests waiting before 503.")] = 64,
    vllm_python_path: Annotated[Optional[str], typer.Option("--vllm-python", help="vllm: the interpreter of vLLM's "
                                                            "environment (default: $CURATE_VLLM_PYTHON).")] = None,
    max_lora_rank: Annotated[Optional[int], typer.Option("--max-lora-rank", help="vllm: at least this rank (default: "
                                                         "the adapters', rounded up to a rank vLLM accepts).")] = None,
    quantization: Annotated[Optional[str], typer.Option("--quantization", help="cpu: int8 (weights stored as int8, torchao) or "
                                                        "int8-dynamic (activations too); vllm: passed through (awq, gptq, "
                                                        "fp8, ...).")] = None,
    tensor_parallel_size: Annotated[Optional[int], typer.Option("--tensor-parallel-size", help="vllm: GPUs per model.")] = None,
    max_model_len: Annotated[Optional[int], typer.Option("--max-model-len", help="vllm: context length.")] = None,
) -> None:
    """Serve a base model and its LoRA adapters with the OpenAI API on the CPU (the endpoints vLLM has):
    /v1/models, /v1/chat/completions (streaming), /v1/completions, /v1/load_lora_adapter,
    /v1/unload_lora_adapter, /health, /metrics. The adapter is chosen per request by model name.

    Example: curate serve --model "$(curate models smollm2)" --adapter v1=data/demo/adapters/snapshot-1
    """
    from curation.cli.render import err

    if engine_name == "vllm":
        _serve_vllm(model, adapter or [], name, host, port, dtype, vllm_python_path, max_lora_rank, quantization,
                    tensor_parallel_size, max_model_len)
        return
    if engine_name != "cpu":
        raise UsageError(f"--engine {engine_name!r}: cpu or vllm")
    dtype = dtype or "float32"

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
                           max_queue=max_queue, quantization=quantization)
    except EngineError as e:
        raise UsageError(str(e)) from e
    served = ", ".join([engine.name, *engine.adapters])
    err.print(f"serving {served} on http://{host}:{port}/v1 (OpenAI API; metrics at /metrics)", highlight=False)
    try:
        uvicorn.run(create_app(engine), host=host, port=port, log_level="warning")
    finally:
        engine.close()


def _serve_vllm(model: Path, adapters: list[str], name: str | None, host: str, port: int, dtype: str | None,
                python: str | None, rank: int | None, quantization: str | None, tp: int | None, max_len: int | None) -> None:
    from curation.cli.render import err
    from serving.engine import parse_adapters
    from serving.vllm import ManagedServer, VllmOptions, vllm_command, vllm_python

    opts = VllmOptions(model=model, adapters=parse_adapters(adapters), host=host, port=port, served_name=name,
                       max_lora_rank=rank, quantization=quantization, dtype=dtype, tensor_parallel_size=tp,
                       max_model_len=max_len)
    argv, env = vllm_command(opts, "python")  # checks the adapters before looking for vLLM
    argv[0] = vllm_python(python)
    err.print("starting: " + " ".join(argv), highlight=False)
    server = ManagedServer(argv, env, f"http://{host}:{port}").start()
    err.print(f"vLLM serving on http://{host}:{port}/v1 (Ctrl-C stops it)", highlight=False)
    try:
        server.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@handle_errors
def route_command(
    config: Annotated[Path, typer.Option("--config", help="Router TOML: [router] host, port, log_dir; [[aliases]] "
                                         "name with [[aliases.variants]] name, url, model, weight.")],
) -> None:
    """Route a public model alias to engine variants by weight, sticky per user, with per-variant metrics,
    feedback (POST /v1/feedback) and a Parquet request log that curate ingest loads.

    Example: curate route --config ab.toml   (then: curate ab-report --log-dir data/requests)
    """
    from curation.cli.render import err

    try:
        import uvicorn

        from serving.router import create_router, load_router_config
    except ImportError as e:  # depends on the install
        raise MissingExtraError("serve", "the router (fastapi, uvicorn, httpx, prometheus-client)") from e
    cfg = load_router_config(config)
    s = cfg.router
    for a in cfg.aliases:
        total = sum(v.weight for v in a.variants)
        err.print(f"{a.name}: " + ", ".join(f"{v.name} {100 * v.weight / total:.0f}% ({v.model} at {v.url})"
                                             for v in a.variants), highlight=False)
    err.print(f"routing on http://{s.host}:{s.port}/v1; request log: {s.log_dir}", highlight=False)
    uvicorn.run(create_router(cfg), host=s.host, port=s.port, log_level="warning")


@handle_errors
def ab_report_command(
    log_dir: Annotated[Path, typer.Option("--log-dir", help="The router's log_dir (requests-*.parquet).")] = Path("data/requests"),
    alias: Annotated[Optional[str], typer.Option("--alias", help="Only this alias.")] = None,
) -> None:
    """Per variant: requests, error rate, latency p50 / p95, ratings and thumbs; the first two variants
    compared with a significance test and the samples per variant still needed for the difference seen.

    Example: curate ab-report --log-dir data/requests --alias assistant
    """
    from curation.cli.render import out

    try:
        import scipy  # noqa: F401

        from serving.abreport import ab_report
    except ImportError as e:  # depends on the install
        raise MissingExtraError("review", "the A/B report (scipy)") from e
    out.print_json(data=ab_report(log_dir, alias))
