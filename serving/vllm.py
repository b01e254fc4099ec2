"""vLLM as the GPU engine: the command line and environment we build from adapters and options, and the
server process (started, waited for on ``/health``, stopped cleanly).

vLLM lives in its own environment (it pins its own torch and transformers): ``--vllm-python`` or
``CURATE_VLLM_PYTHON`` names that environment's interpreter, and the server is
``PYTHON -m vllm.entrypoints.cli.main serve MODEL ...``, the module behind the ``vllm`` command. It needs a GPU
and cannot run on the development machines: the command line is tested here (golden tests), the process
management against the CPU engine's server, which answers the same ``/health``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from curation.errors import UsageError

#: The values vLLM accepts for ``--max-lora-rank`` (its LoRA config refuses others).
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def adapter_rank(path: Path) -> int:
    """The LoRA rank ``r`` of a peft adapter folder."""
    cfg = Path(path) / "adapter_config.json"
    if not cfg.is_file():
        raise UsageError(f"adapter {path}: no adapter_config.json (a folder written by curate train, or a peft adapter)")
    return int(json.loads(cfg.read_text(encoding="utf-8")).get("r") or 0)


def max_lora_rank(adapters: dict[str, Path], asked: int | None = None) -> int:
    """The smallest rank vLLM accepts that covers every adapter (and ``asked``, when given); at least 8, the
    trainer's default rank, so that adapters loaded at run time fit."""
    need = max([adapter_rank(p) for p in adapters.values()] + [asked or 0, 8])
    for r in VLLM_LORA_RANKS:
        if r >= need:
            return r
    raise UsageError(f"LoRA rank {need} is over the largest vLLM accepts ({VLLM_LORA_RANKS[-1]})")


@dataclass
class VllmOptions:
    """What ``curate serve --engine vllm`` passes through to vLLM."""

    model: Path
    adapters: dict[str, Path] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 8000
    served_name: str | None = None
    max_lora_rank: int | None = None
    quantization: str | None = None
    dtype: str | None = None
    tensor_parallel_size: int | None = None
    max_model_len: int | None = None
    max_loras: int | None = None


def vllm_command(opts: VllmOptions, python: str) -> tuple[list[str], dict[str, str]]:
    """``(argv, extra environment)`` of the vLLM server for these options."""
    argv = [python, "-m", "vllm.entrypoints.cli.main", "serve", str(opts.model), "--host", opts.host,
            "--port", str(opts.port)]
    if opts.served_name:
        argv += ["--served-model-name", opts.served_name]
    if opts.dtype:
        argv += ["--dtype", opts.dtype]
    if opts.quantization:
        argv += ["--quantization", opts.quantization]
    if opts.tensor_parallel_size:
        argv += ["--tensor-parallel-size", str(opts.tensor_parallel_size)]
    if opts.max_model_len:
        argv += ["--max-model-len", str(opts.max_model_len)]
    # LoRA is always on, so that adapters can be loaded at run time even when none is given at start
    argv += ["--enable-lora", "--max-lora-rank", str(max_lora_rank(opts.adapters, opts.max_lora_rank))]
    if opts.max_loras or opts.adapters:
        argv += ["--max-loras", str(opts.max_loras or max(1, len(opts.adapters)))]
    if opts.adapters:
        argv += ["--lora-modules", *(f"{name}={path}" for name, path in opts.adapters.items())]
    # /v1/load_lora_adapter and /v1/unload_lora_adapter exist only with this set
    return argv, {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}


def vllm_python(given: str | None) -> str:
    """The interpreter of vLLM's environment: ``--vllm-python``, else ``CURATE_VLLM_PYTHON``; checked to import vllm."""
    python = given or os.environ.get("CURATE_VLLM_PYTHON")
    if not python:
        raise UsageError("vLLM runs in its own environment: give --vllm-python PATH or set CURATE_VLLM_PYTHON "
                         "(for example: python -m venv .venv-vllm && .venv-vllm/bin/pip install vllm)")
    res = subprocess.run([python, "-c", "import vllm; print(vllm.__version__)"], capture_output=True, text=True,
                         timeout=300)
    if res.returncode != 0:
        raise UsageError(f"{python} cannot import vllm: {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else 'failed'}")
    return python


class ManagedServer:
    """A server process: started, waited for until ``/health`` answers 200, stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None, url: str = "http://127.0.0.1:8000",
                 log: Path | None = None) -> None:
        self.argv, self.url = argv, url.rstrip("/")
        self.env = {**os.environ, **(env or {})}
        self.log = log
        self.proc: subprocess.Popen | None = None
        self._log_file = None

    def start(self, timeout: float = 900.0) -> ManagedServer:
        import httpx

        out = subprocess.DEVNULL
        if self.log is not None:
            self.log.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = out = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            code = self.proc.poll()
            if code is not None:
                raise UsageError(f"the server exited with code {code} before it was healthy"
                                 + (f" (its log: {self.log})" if self.log else ""))
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise UsageError(f"the server did not answer {self.url}/health within {timeout:.0f} s")
            time.sleep(0.5)

    def stop(self, grace: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self._log_file is not None:
            self._log_file.close()
        return self.proc.returncode

    def load_adapter(self, name: str, path: Path) -> None:
        """Load an adapter at run time (vLLM: needs VLLM_ALLOW_RUNTIME_LORA_UPDATING, which we set)."""
        import httpx

        res = httpx.post(f"{self.url}/v1/load_lora_adapter", json={"lora_name": name, "lora_path": str(path)}, timeout=600)
        if res.status_code != 200:
            raise UsageError(f"loading adapter {name!r} from {path}: {res.status_code} {res.text[:300]}")
