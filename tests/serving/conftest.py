"""The CPU engine served on 127.0.0.1 once per test session: a tiny Llama (built from a config, tokenizer
trained here) and a LoRA adapter trained on it through `curate train`'s trainer from an approved snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.training.tiny import build_llama, build_tokenizer


@dataclass
class Served:
    url: str
    engine: object  # None against an external server
    base: str
    adapter: str
    adapter_dir: Path
    model_dir: Path | None


def external() -> Served | None:
    """An OpenAI-compatible server named by the environment, for the contract suite (test_contract.py) against
    any engine, a user's vLLM included: CURATE_CONTRACT_URL (http://host:port), CURATE_CONTRACT_BASE (the base
    model's served name), CURATE_CONTRACT_ADAPTER (an adapter it serves) and CURATE_CONTRACT_ADAPTER_PATH (that
    adapter's folder as the server sees it, loaded again at run time under another name)."""
    import os

    url = os.environ.get("CURATE_CONTRACT_URL")
    if not url:
        return None
    need = ("CURATE_CONTRACT_BASE", "CURATE_CONTRACT_ADAPTER", "CURATE_CONTRACT_ADAPTER_PATH")
    missing = [k for k in need if not os.environ.get(k)]
    if missing:
        raise pytest.UsageError(f"CURATE_CONTRACT_URL is set: also set {', '.join(missing)}")
    return Served(url.rstrip("/"), None, os.environ["CURATE_CONTRACT_BASE"], os.environ["CURATE_CONTRACT_ADAPTER"],
                  Path(os.environ["CURATE_CONTRACT_ADAPTER_PATH"]), None)


@pytest.fixture(scope="session")
def served(tmp_path_factory):  # noqa: ANN201
    outside = external()
    if outside is not None:
        yield outside
        return
    from serving.api import ThreadServer, create_app
    from serving.engine import CpuEngine
    from tests.training.test_trainer import TRAIN, _export
    from training.config import TrainConfig
    from training.trainer import check, train

    root = tmp_path_factory.mktemp("serving")
    model_dir = build_llama(build_tokenizer(root / "tok"), root / "tiny-llama")
    export = _export(root / "export")
    cfg = TrainConfig(**{**TRAIN, "max_steps": 40})
    adapter_dir = root / "adapter"
    train(check(export, model_dir, cfg), model_dir, adapter_dir, cfg)
    engine = CpuEngine(model_dir, {"sums-v1": adapter_dir}, name="tiny-llama")
    server = ThreadServer(create_app(engine))
    yield Served(server.url, engine, "tiny-llama", "sums-v1", adapter_dir, model_dir)
    server.stop()
    engine.close()


@pytest.fixture
def client(served):  # noqa: ANN001, ANN201
    from openai import OpenAI

    return OpenAI(base_url=f"{served.url}/v1", api_key="not-needed", max_retries=0, timeout=120)
