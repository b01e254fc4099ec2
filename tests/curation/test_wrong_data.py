"""A batch that loads cleanly but is not instruction data gets a warning at ingest, in the run and in the report."""

from __future__ import annotations

import csv
import io
import json
import logging
from email.message import EmailMessage
from email.policy import default

from typer.testing import CliRunner

from curation.cli.app import app
from curation.ingest import FieldMapping, IngestOptions, ingest_paths
from curation.ingest.likeness import WARNING_HEAD
from curation.pipeline.executor import run_pipeline
from curation.report.data import gather
from curation.store import Store
from schemas.pipeline import PipelineConfig, StepConfig

SUBJECTS = ["Re: Q3 budget figures", "Lunch on Friday", "FW: updated floor plan", "Minutes of the board meeting",
            "Invoice 2231 attached", "Team offsite logistics", "Re: Re: server migration window", "Holiday rota",
            "New parking rules from Monday", "Welcome our new colleague", "Re: contract draft v4", "Printer on 3rd floor"]


def _emails(path) -> None:  # noqa: ANN001
    """E-mails written with the standard library, mapped as instruction (subject) and output (body)."""
    with open(path, "w", encoding="utf-8") as f:
        for i in range(24):
            msg = EmailMessage(policy=default)
            msg["Subject"] = SUBJECTS[i % len(SUBJECTS)]
            msg["From"] = f"staff{i}@northwind.test"
            msg.set_content(f"Hi all,\n\nPlease find the details for item {i} below. Thanks,\nStaff {i}")
            f.write(json.dumps({"subject": msg["Subject"], "body": msg.get_content()}) + "\n")


def _log(path) -> None:  # noqa: ANN001
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log = logging.getLogger("wrong-data-test")
    log.propagate = False
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    for i in range(50):
        log.info("worker %d finished job %d in %d ms", i % 4, i, 20 + i)
    log.removeHandler(handler)
    lines = buf.getvalue().splitlines()
    with open(path, "w", encoding="utf-8") as f:
        for a, b in zip(lines[::2], lines[1::2]):
            f.write(json.dumps({"line": a, "next": b}) + "\n")


def _table(path) -> None:  # noqa: ANN001
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["sku", "price"])
        for i in range(30):
            w.writerow([f"SKU-{1000 + i}", f"{9.5 + i:.2f}"])


def test_wrong_data_is_warned_about_at_ingest_in_the_run_and_in_the_report(tmp_path) -> None:
    _emails(tmp_path / "mail.jsonl")
    _log(tmp_path / "app.jsonl")
    _table(tmp_path / "prices.csv")
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps({"instruction": q, "output": "An answer."}) + "\n" for q in
                            [f"What is {i} times 7?" for i in range(20)] + [f"请解释数字{i}的含义。" for i in range(10)]),
                    encoding="utf-8")
    db = tmp_path / "curate.duckdb"
    runner = CliRunner()
    res = runner.invoke(app, ["--db", str(db), "ingest", str(tmp_path / "mail.jsonl"),
                              "--map", "instruction=subject", "--map", "output=body"])
    assert res.exit_code == 0, res.output
    assert WARNING_HEAD in " ".join(res.output.split()) and "mail.jsonl" in res.output
    res = runner.invoke(app, ["--db", str(db), "ingest", "--strict", str(tmp_path / "app.jsonl"),
                              "--map", "instruction=line", "--map", "output=next"])
    assert res.exit_code == 1 and WARNING_HEAD in " ".join(res.output.split())
    store = Store(db)
    table = ingest_paths(store, [str(tmp_path / "prices.csv")],
                         IngestOptions(mapping=FieldMapping.parse(["instruction=sku", "output=price"])))
    assert table[0].rows_loaded == 30 and WARNING_HEAD in table[0].warnings[0]
    assert ingest_paths(store, [str(good)])[0].warnings == []
    with store.reader() as con:
        warned = dict(con.execute("SELECT source_name, problems FROM batches").fetchall())
    assert all(WARNING_HEAD in warned[n] for n in ("mail.jsonl", "app.jsonl", "prices.csv"))
    assert not (warned["good.jsonl"] or "")
    result = run_pipeline(store, PipelineConfig(steps=[StepConfig(type="quality")]))
    assert [w.split(":")[0] for w in result.warnings] == ["batch 1 (mail.jsonl)", "batch 2 (app.jsonl)",
                                                          "batch 3 (prices.csv)"]
    data = gather(store)
    assert [name for _, name, _ in data.warnings] == ["mail.jsonl", "app.jsonl", "prices.csv"]
