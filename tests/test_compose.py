"""compose.yaml cannot run here (no Docker engine): check its structure, images, ports and env instead."""

from __future__ import annotations

import re
from pathlib import Path

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
            # a secret never sits in the file: it comes from the environment or an env file (a flag is no secret)
            assert not re.search(r"(?i)(password|token|secret|key)", key) or str(value).startswith("${") \
                or str(value).lower() in ("true", "false"), (name, key)
    assert doc["services"]["curate"]["environment"]["CURATE_DATA_DIR"] == "/data"



def _doc() -> dict:
    return yaml.safe_load((REPO / "compose.yaml").read_text())


def test_images_are_pinned_and_servers_have_health_checks() -> None:
    services = _doc()["services"]
    for name, svc in services.items():
        image = svc.get("image", "")
        if "build" not in svc and image != "llm-curate:latest":
            assert re.fullmatch(r"[\w./-]+:v?\d+(\.\d+)+", image), f"{name}: pin the image's version, not {image!r}"
        if svc.get("ports"):
            assert svc.get("healthcheck", {}).get("test"), f"{name} serves a port without a health check"
    # what the project builds is what the serving services run
    for name in ("engine", "router", "router-gpu"):
        assert services[name]["image"] == services["curate"]["image"], name


def test_the_default_profile_serves_the_cpu_engine_and_the_gpu_profile_adds_vllm() -> None:
    services = _doc()["services"]
    default = {n for n, s in services.items() if not s.get("profiles")}
    assert {"curate", "engine", "router"} <= default
    assert services["vllm"]["profiles"] == ["gpu"] and services["router-gpu"]["profiles"] == ["gpu"]
    gpu = services["vllm"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and "gpu" in gpu["capabilities"]
    # each server waits for what it needs: the demo's adapter, then the engine's health
    assert services["engine"]["depends_on"]["curate"]["condition"] == "service_completed_successfully"
    assert services["router"]["depends_on"]["engine"]["condition"] == "service_healthy"
    assert services["router-gpu"]["depends_on"]["vllm"]["condition"] == "service_healthy"
    host_ports = [p.split(":")[1] for s in services.values() for p in s.get("ports", [])]
    assert len(host_ports) == len(set(host_ports)), f"two services publish one host port: {host_ports}"


def _value(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_vllm_gets_the_flags_our_command_builder_gives_and_the_cpu_engine_the_same_adapter(tmp_path) -> None:
    from serving.vllm import VllmOptions, vllm_command

    svc = _doc()["services"]["vllm"]
    assert svc["entrypoint"] == ["vllm", "serve"]
    args = [re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", a) for a in svc["command"]]  # the defaults of ${VAR:-default}
    # an adapter of rank 8, as the demo trains it, at the path the service mounts
    adapter = tmp_path / "latest"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text('{"r": 8, "peft_type": "LORA"}')
    ours, env = vllm_command(VllmOptions(model=Path(args[0]), adapters={"demo": adapter}, host="0.0.0.0", port=8000,
                                         served_name=_value(args, "--served-model-name")), "python")
    ours = ours[ours.index("serve") + 1:]
    for flag in ("--host", "--port", "--max-lora-rank", "--max-loras", "--served-model-name"):
        assert _value(args, flag) == _value(ours, flag), flag
    assert "--enable-lora" in args and args[0] == ours[0]
    assert _value(args, "--lora-modules") == "demo=/data/adapters/latest"
    assert svc["environment"] == {k: v for k, v in env.items()}
    engine = _doc()["services"]["engine"]["command"]
    assert _value(engine, "--adapter") == "demo=/data/adapters/latest" and _value(engine, "--model") == args[0]


def test_the_routers_configs_load_and_point_at_their_engines() -> None:
    from serving.router import load_router_config

    services = _doc()["services"]
    for name, engine in (("router", "engine"), ("router-gpu", "vllm")):
        mount = next(v for v in services[name]["volumes"] if v.endswith(":/etc/llm-curate/router.toml:ro"))
        cfg = load_router_config(REPO / mount.split(":")[0])
        assert cfg.router.port == 9000 and _value(services[name]["command"], "--config") == "/etc/llm-curate/router.toml"
        (alias,) = cfg.aliases
        assert {v.url for v in alias.variants} == {f"http://{engine}:8000/v1"}
        assert {v.model for v in alias.variants} == {"demo", "SmolLM2-135M-Instruct"}
        assert str(cfg.router.log_dir).startswith("/data/")


def test_the_review_tools_run_argilla_on_elasticsearch_and_label_studio_with_secrets_from_an_env_file() -> None:
    services = _doc()["services"]
    review = {n for n, s in services.items() if s.get("profiles") == ["review"]}
    assert review == {"elasticsearch", "redis", "argilla", "argilla-worker", "labelstudio"}
    es = services["elasticsearch"]["image"]
    assert es.startswith("docker.elastic.co/elasticsearch/elasticsearch:8."), es  # Argilla 2.8 runs on Elasticsearch 8
    assert services["argilla"]["image"] == services["argilla-worker"]["image"] == "argilla/argilla-server:v2.8.0"
    for name in ("argilla", "argilla-worker"):
        env = services[name]["environment"]
        assert env["ARGILLA_ELASTICSEARCH"] == "http://elasticsearch:9200" and env["ARGILLA_REDIS_URL"].startswith("redis://redis:")
        assert "argilla:/var/lib/argilla" in services[name]["volumes"]
    assert services["argilla"]["depends_on"] == {"elasticsearch": {"condition": "service_healthy"},
                                                 "redis": {"condition": "service_healthy"}}
    example = (REPO / "deploy" / "review.env.example").read_text()
    keys = {line.split("=", 1)[0] for line in example.splitlines() if line and not line.startswith("#")}
    assert keys == {"USERNAME", "PASSWORD", "API_KEY", "LABEL_STUDIO_USERNAME", "LABEL_STUDIO_PASSWORD", "LABEL_STUDIO_USER_TOKEN"}
    for name in ("argilla", "argilla-worker", "labelstudio"):
        assert services[name]["env_file"] == [{"path": "deploy/review.env", "required": True}], name
    assert "deploy/review.env" in (REPO / ".gitignore").read_text().splitlines()
    for name in ("elasticsearch", "redis", "argilla", "labelstudio"):
        assert services[name]["healthcheck"]["test"], name


def test_the_api_service_runs_curate_api_over_the_store_with_keys_from_the_env_file() -> None:
    import shlex

    from typer.testing import CliRunner

    from curation.cli.app import app

    services = _doc()["services"]
    api = services["api"]
    assert not api.get("profiles") and api["image"] == services["curate"]["image"]
    assert api["depends_on"] == {"curate": {"condition": "service_completed_successfully"}}
    assert "store:/data" in api["volumes"] and api["ports"] == ["127.0.0.1:8700:8700"]
    assert "/ready" in " ".join(api["healthcheck"]["test"])
    assert api["env_file"] == [{"path": "deploy/review.env", "required": False}]
    script = api["command"][0].replace("$$", "$")
    assert script.split("; ")[-1].startswith("exec curate api ")
    args = shlex.split(script.split("; ")[-1])[2:]
    assert args == ["api", "--host", "0.0.0.0", "--port", "8700"]
    help_text = CliRunner().invoke(app, ["api", "--help"]).output
    assert "--host" in help_text and "--port" in help_text  # the flags compose passes exist
    # the keys are exported only where the env file sets them: an empty one would be refused as a placeholder
    assert '[ -n "${API_KEY:-}" ] && export CURATE_ARGILLA_API_KEY="${API_KEY}"' in script
    assert api["environment"]["CURATE_LABEL_STUDIO_URL"] == "http://labelstudio:8080"
    assert api["environment"]["CURATE_ARGILLA_URL"] == "http://argilla:6900"
