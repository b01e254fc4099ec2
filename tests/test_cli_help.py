"""The CLI's surface: every command and subcommand has help with an example; the top-level help names every
group; the base install (no extras) runs every command that needs none and names the extra for the others."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from curation.cli.app import HELP, app

REPO = Path(__file__).resolve().parents[1]


def _is_group(cmd) -> bool:  # noqa: ANN001
    return isinstance(getattr(cmd, "commands", None), dict)


def _walk(cmd, path: tuple[str, ...] = ()):
    yield path, cmd
    if _is_group(cmd):
        for name, sub in cmd.commands.items():
            yield from _walk(sub, (*path, name))


COMMANDS = list(_walk(typer.main.get_command(app)))


def test_the_walk_finds_every_group_and_command() -> None:
    paths = {" ".join(p) for p, _ in COMMANDS}
    assert {"snapshot approve", "snapshot export", "review push", "review apply", "review serve", "ingest", "sql",
            "demo"} <= paths
    # the top-level help names every command and every subcommand of a group
    for path, cmd in COMMANDS:
        if path and not _is_group(cmd):
            assert path[-1] in HELP, f"top-level help does not name {' '.join(path)}"


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=lambda p: " ".join(p) or "curate")
def test_every_command_has_help_with_an_example(runner, path) -> None:
    res = runner.invoke(app, [*path, "--help"])
    assert res.exit_code == 0, res.output
    assert "Example:" in res.output, f"`curate {' '.join(path)} --help` shows no example"
    cmd = dict(COMMANDS)[path]
    for param in cmd.params:
        if getattr(param, "param_type_name", "") == "option" and param.name != "help":
            assert param.help, f"`curate {' '.join(path)}`: option {param.opts[0]} has no help text"


# a base install: the optional extras cannot be imported
BLOCKER = """
import importlib.abc, sys
BLOCKED = {"scipy", "sklearn", "statsmodels", "lingua", "langdetect", "plotly", "datasets", "torch",
           "sentence_transformers", "faiss", "label_studio_sdk"}
class _Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"No module named {name!r} (blocked: a base install)")
        return None
sys.meta_path.insert(0, _Blocker())
"""


def test_the_base_install_runs_what_needs_no_extra_and_names_the_extra_otherwise(tmp_path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(site), "CURATE_LOG_DIR": str(tmp_path / "logs")}
    db = tmp_path / "store" / "curate.duckdb"
    data = tmp_path / "in.jsonl"
    data.write_text("\n".join(json.dumps({"instruction": f"Question {i}?", "output": f"Answer number {i}."})
                              for i in range(20)) + "\n{broken\n", encoding="utf-8")
    cfg = tmp_path / "p.toml"
    cfg.write_text('[[steps]]\ntype = "clean"\n\n[[steps]]\ntype = "quality"\n\n[[steps]]\ntype = "exact_dedup"\n',
                   encoding="utf-8")

    def curate(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", "from curation.cli.app import main; main()", "--db", str(db), *args],
                              capture_output=True, text=True, env=env, cwd=REPO, timeout=300)

    assert "blocked" in subprocess.run([sys.executable, "-c", "import scipy"], capture_output=True, text=True,
                                       env=env).stderr
    for args in (("init",), ("ingest", str(data)), ("batches",), ("quarantine",), ("samples", "--limit", "2"),
                 ("sql", "SELECT count(*) FROM samples"), ("run", "--config", str(cfg)), ("stats",),
                 ("export", "-o", str(tmp_path / "kept.jsonl")), ("snapshot", "create"), ("snapshot", "list"),
                 ("snapshot", "export", "1", "--force", "--no-hf", "--to", str(tmp_path / "exp"))):
        res = curate(*args)
        assert res.returncode == 0, (args, res.stdout, res.stderr)
    for args, extra in ((("snapshot", "show", "1"), "review"), (("snapshot", "approve", "1"), "review"),
                        (("review", "plan"), "review"), (("report",), "report"), (("run",), "filters"),
                        (("train", "--model", str(tmp_path), "--data", str(tmp_path / "exp")), "train"),
                        (("eval", "--model", str(tmp_path), "--data", str(tmp_path / "exp")), "train"),
                        (("serve", "--model", str(tmp_path)), "serve"),
                        (("ab-report", "--log-dir", str(tmp_path)), "review")):
        res = curate(*args)
        assert res.returncode == 2 and f"llm-curate[{extra}]" in res.stderr, (args, res.returncode, res.stderr)
    assert not (tmp_path / "logs").exists(), "a missing extra was reported as an internal error"


def test_an_unexpected_error_is_an_internal_error_with_a_log_not_bad_usage(runner, tmp_path, monkeypatch) -> None:
    import curation.inspect

    def boom(*a, **k):  # a bug we cannot cause for real without planting one
        raise ValueError("a bug")

    monkeypatch.setattr(curation.inspect, "list_batches", boom)
    monkeypatch.setenv("CURATE_LOG_DIR", str(tmp_path / "logs"))
    res = runner.invoke(app, ["--db", str(tmp_path / "s.duckdb"), "batches"])
    assert res.exit_code == 70 and "internal error" in res.output
    logs = list((tmp_path / "logs").iterdir())
    assert len(logs) == 1 and "ValueError: a bug" in logs[0].read_text(encoding="utf-8")
