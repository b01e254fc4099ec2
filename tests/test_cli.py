"""The CLI: help everywhere, exit codes, and each command on real data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer.main

from curation.cli.app import app
from tests.conftest import write_lines

COMMANDS = sorted(typer.main.get_command(app).commands)


def test_every_command_has_help(runner) -> None:
    assert set(COMMANDS) >= {"init", "ingest", "batches", "quarantine", "samples", "sql", "stats", "demo"}
    for name in COMMANDS:
        cmd = typer.main.get_command(app).commands[name]
        assert cmd.help and len(cmd.help) > 20, name
        res = runner.invoke(app, [name, "--help"])
        assert res.exit_code == 0 and "Usage" in res.output
        for p in cmd.params:
            if p.name != "help" and getattr(p, "help", None) is None and p.param_type_name == "option":
                pytest.fail(f"option {p.name} of {name} has no help")


def test_ingest_then_inspect(cli, tmp_path) -> None:
    f = write_lines(tmp_path / "a.jsonl", ['{"instruction": "q", "output": "<think>r</think>a", "id": "x1"}', "{oops"])
    res = cli("ingest", str(f))
    assert res.exit_code == 0 and "1 problem" in res.output
    assert "a.jsonl: skipped" in cli("ingest", str(f)).output  # the note's start: the path after it may wrap
    assert cli("ingest", "--strict", str(f)).exit_code == 0  # a no-op has no new problems
    g = write_lines(tmp_path / "b.jsonl", ["{oops"])
    assert cli("ingest", "--strict", str(g)).exit_code == 1
    batches = [json.loads(x) for x in cli("batches", "--json").output.splitlines()]
    assert [(b["rows_read"], b["rows_loaded"], b["rows_quarantined"], b["balanced"]) for b in batches] == [(2, 1, 1, True), (1, 0, 1, True)]
    q = [json.loads(x) for x in cli("quarantine", "--batch", "1", "--format", "json").output.splitlines()]
    assert q == [{"batch_id": 1, "file": "a.jsonl", "row_number": 2, "line": 2, "field": None, "raw": "{oops",
                  "reason": q[0]["reason"]}] and q[0]["reason"].startswith("malformed JSON")
    s = [json.loads(x) for x in cli("samples", "--with-reasoning", "--format", "json").output.splitlines()]
    assert s[0]["reasoning"] == "r" and s[0]["output"] == "a" and s[0]["external_id"] == "x1"
    full = cli("samples", "--id", s[0]["sample_id"])
    assert "reasoning" in full.output and "instruction" in full.output
    assert json.loads(cli("stats", "--json").output) == {"read": 3, "quarantined": 2, "loaded": 1}


def test_exit_codes_for_bad_usage(cli, tmp_path) -> None:
    assert cli("ingest", str(tmp_path / "missing.jsonl")).exit_code == 2
    (tmp_path / "x.bin").write_bytes(b"\0")
    res = cli("ingest", str(tmp_path / "x.bin"))
    assert res.exit_code == 2 and "x.bin" in res.output and "--format" in res.output
    assert cli("ingest", "--format", "xml", str(tmp_path / "x.bin")).exit_code == 2
    assert cli("ingest", "--map", "nonsense", str(tmp_path / "x.bin")).exit_code == 2
    assert cli("samples", "--id", "nope").exit_code == 2


def test_demo_runs_end_to_end(cli, store) -> None:
    """The README's demo, twice: the second time nothing is loaded or run. Checked on the store and on short
    facts of the output: the messages that name an input's path wrap with the length of that path."""
    from curation.demo import DEMO_INPUTS

    def state() -> dict[str, list[tuple]]:
        queries = {
            "batches": "SELECT batch_id, source_name, status, rows_read, rows_loaded, finished_at FROM batches ORDER BY ALL",
            "runs": "SELECT run_id, status, finished_at FROM runs ORDER BY ALL",
            "samples": "SELECT count(*) FROM samples",
            "decisions": "SELECT count(*) FROM decisions",
        }
        with store.reader() as con:
            return {name: con.execute(q).fetchall() for name, q in queries.items()}

    # the whole flow (review, training, evaluation, serving) with a short training run: the README's demo trains
    # 20 steps and evaluates 16 samples (4 minutes of this machine's CPU); training and evaluation on their own
    # are tested in tests/training
    res = cli("demo", "--steps", "2", "--eval-samples", "4")
    assert res.exit_code == 0, res.output
    assert "funnel" in res.output and all(name in res.output for name in DEMO_INPUTS)
    funnel = json.loads(cli("stats", "--json").output)
    assert funnel["exact_dedup: dropped"] > 0 and 0 < funnel["kept"] < funnel["loaded"]
    assert (store.path.parent / "reports" / "run-1.html").is_file()
    # the walkthrough's end products: an adapter trained for the steps asked, the evaluation, a served answer
    stages = json.loads((store.path.parent / "walkthrough.json").read_text(encoding="utf-8"))["stages"]
    assert stages["train"]["steps"] == 2 and Path(stages["train"]["adapter"], "adapter_config.json").is_file()
    assert stages["eval"]["samples"] == 4 and set(stages["eval"]["models"]) == {"base", stages["serve"]["model"]}
    assert stages["serve"]["answer"].strip(), stages["serve"]
    before = state()
    assert [b[2] for b in before["batches"]] == ["done"] * len(DEMO_INPUTS)
    assert [r[1] for r in before["runs"]] == ["done"]

    again = cli("demo", "--steps", "2", "--eval-samples", "4")
    assert again.exit_code == 0, again.output
    assert state() == before  # no batch, sample, run or decision added or changed
    # each note starts its table cell and the run's line starts a line, so neither is cut by wrapping
    assert all(f"{name}: skipped" in again.output for name in DEMO_INPUTS), again.output
    assert "run 1: nothing to do" in again.output
