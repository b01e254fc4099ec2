"""compose.yaml cannot run here (no Docker engine): check its structure, images, ports and env instead."""

from __future__ import annotations

import re

import yaml

from tests.conftest import REPO


def test_compose_is_well_formed() -> None:
    doc = yaml.safe_load((REPO / "compose.yaml").read_text())
    assert set(doc) <= {"name", "services", "volumes", "networks", "configs", "secrets"}
    assert doc["services"], "no services"
    for name, svc in doc["services"].items():
        assert "image" in svc or "build" in svc, name
        if "build" in svc:
            ctx = svc["build"] if isinstance(svc["build"], str) else svc["build"].get("context", ".")
            assert (REPO / ctx / "Dockerfile").exists(), name
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            assert src.startswith((".", "/")) or src in doc.get("volumes", {}), (name, vol)
        for port in svc.get("ports", []):
            # services bind loopback by default
            assert str(port).startswith("127.0.0.1:"), (name, port)
        env = svc.get("environment", {})
        for key, value in (env.items() if isinstance(env, dict) else []):
            assert not re.search(r"(?i)(password|token|secret|key)", key) or str(value).startswith("${"), (name, key)
    assert doc["services"]["curate"]["environment"]["CURATE_DATA_DIR"] == "/data"

