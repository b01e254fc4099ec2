"""vLLM's command line and environment built from adapters and options (golden), and the server process
management, tested against the CPU engine's server (the same /health). vLLM itself needs a GPU."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest

from curation.errors import UsageError
from serving.vllm import ManagedServer, VllmOptions, max_lora_rank, vllm_command, vllm_python


def _adapter(folder: Path, r: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": r, "lora_alpha": 2 * r, "peft_type": "LORA"}))
    return folder


def test_the_command_line_and_environment(tmp_path) -> None:  # noqa: ANN001
    a = _adapter(tmp_path / "a", 8)
    b = _adapter(tmp_path / "b", 12)
    opts = VllmOptions(model=Path("/models/Qwen2.5-7B-Instruct"), adapters={"v1": a, "v2": b}, port=8100,
                       served_name="qwen", dtype="bfloat16", quantization="awq", tensor_parallel_size=2,
                       max_model_len=8192)
    argv, env = vllm_command(opts, "/opt/vllm/bin/python")
    assert argv == ["/opt/vllm/bin/python", "-m", "vllm.entrypoints.cli.main", "serve", "/models/Qwen2.5-7B-Instruct",
                    "--host", "127.0.0.1", "--port", "8100", "--served-model-name", "qwen", "--dtype", "bfloat16",
                    "--quantization", "awq", "--tensor-parallel-size", "2", "--max-model-len", "8192",
                    "--enable-lora", "--max-lora-rank", "16", "--max-loras", "2",
                    "--lora-modules", f"v1={a}", f"v2={b}"]
    assert env == {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
    # no adapter at start: LoRA still on (adapters can be loaded at run time), at the trainer's default rank
    bare, _ = vllm_command(VllmOptions(model=Path("/m")), "python")
    assert bare[-3:] == ["--enable-lora", "--max-lora-rank", "8"] and "--lora-modules" not in bare


def test_ranks_are_rounded_up_to_what_vllm_accepts(tmp_path) -> None:  # noqa: ANN001
    assert max_lora_rank({"a": _adapter(tmp_path / "a", 4)}) == 8
    assert max_lora_rank({"a": _adapter(tmp_path / "b", 33)}) == 64
    assert max_lora_rank({}, asked=300) == 320
    with pytest.raises(UsageError, match="over the largest"):
        max_lora_rank({"a": _adapter(tmp_path / "c", 600)})
    with pytest.raises(UsageError, match="adapter_config.json"):
        max_lora_rank({"a": tmp_path})


def test_vllm_must_be_in_the_named_environment(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.delenv("CURATE_VLLM_PYTHON", raising=False)
    with pytest.raises(UsageError, match="--vllm-python"):
        vllm_python(None)
    with pytest.raises(UsageError, match="cannot import vllm"):  # this environment has no vLLM (no GPU build here)
        vllm_python(sys.executable)


def test_the_cli_refuses_vllm_without_its_environment(runner, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    from curation.cli.app import app

    monkeypatch.delenv("CURATE_VLLM_PYTHON", raising=False)
    res = runner.invoke(app, ["serve", "--engine", "vllm", "--model", str(tmp_path)])
    assert res.exit_code == 2 and "CURATE_VLLM_PYTHON" in res.output
    res = runner.invoke(app, ["serve", "--engine", "tgi", "--model", str(tmp_path)])
    assert res.exit_code == 2 and "cpu or vllm" in res.output


def test_a_managed_server_starts_healthy_and_stops(served, tmp_path) -> None:  # noqa: ANN001
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [sys.executable, "-m", "curation", "serve", "--model", str(served.model_dir), "--port", str(port)]
    server = ManagedServer(argv, {"OMP_NUM_THREADS": "1"}, f"http://127.0.0.1:{port}", log=tmp_path / "server.log").start(120)
    import httpx

    assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
    server.load_adapter("late", served.adapter_dir)  # at run time, as with vLLM
    assert "late" in httpx.get(f"http://127.0.0.1:{port}/v1/models").text
    assert server.stop() is not None and server.proc.poll() is not None
    # a server that dies before it is healthy is reported with its exit code and log
    dead = ManagedServer([sys.executable, "-c", "raise SystemExit(3)"], url=f"http://127.0.0.1:{port}",
                         log=tmp_path / "dead.log")
    with pytest.raises(UsageError, match="exited with code 3"):
        dead.start(30)
