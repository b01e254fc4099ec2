"""The README's main command after curation, end to end, checked on what the user gets: the review round in a
real Label Studio answered by the scripted reviewer (named as such in the store and the manifest), the
certified export, the adapter, the evaluation and the answer served over HTTP. A tiny Llama stands in for
SmolLM2 here (the demo itself is timed in the README); the Label Studio server is the test session's."""

from __future__ import annotations

import json

import pytest

from curation.demo import SAMPLE_DIR, run_demo
from curation.review.scripted import SCRIPTED_REVIEWER, is_scripted
from curation.store import Store
from curation.walkthrough import WalkthroughOptions, run_walkthrough
from tests.training.tiny import build_llama, build_tokenizer


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):  # noqa: ANN001, ANN201
    root = tmp_path_factory.mktemp("tiny")
    return build_llama(build_tokenizer(root / "tok"), root / "tiny-llama")


def test_the_whole_product_on_the_bundled_sample(tmp_path, labelstudio, tiny, truth) -> None:  # noqa: ANN001
    store = Store(tmp_path / "demo" / "curate.duckdb")
    run_demo(store)
    opts = WalkthroughOptions(max_steps=4, batch_size=2, max_seq_length=128, eval_samples=3, max_new_tokens=6,
                              model=tiny, label_studio=(labelstudio.url, labelstudio.token))
    w = run_walkthrough(store, truth, opts)
    stages = w.stages
    assert list(stages) == ["snapshot", "review", "export", "train", "eval", "serve"]

    # the review: every drawn item answered by the scripted reviewer through Label Studio, and only by it
    review = stages["review"]
    assert review["scripted_reviewer"]["answered"] == review["plan"]["items"] > 0
    with store.reader() as con:
        who = con.execute("SELECT reviewer, backend, count(*) FROM reviews WHERE status = 'submitted' GROUP BY ALL").fetchall()
    assert who == [(SCRIPTED_REVIEWER, "labelstudio", review["plan"]["items"])]
    # it rejects the planted problems curation let through: the reviewed snapshot is not certified, the child
    # that leaves them out is, through its lineage, and is the one approved without force
    rejected = review["scripted_reviewer"]["rejected"]
    assert rejected > 0 and review["certification"]["verdict"] != "certified"
    approved = review["approved"]["snapshot"]
    assert review["applied"]["snapshot"] == approved and not review["approved"]["forced"]
    assert review["applied"]["samples"] == stages["snapshot"]["samples"] - rejected

    # the export's manifest says who reviewed, and that it was a script
    export = stages["export"]["folder"]
    manifest = json.loads((tmp_path / "demo" / "exports" / f"snapshot-{approved}" / "manifest.json").read_text())
    assert export.endswith(f"snapshot-{approved}") and manifest["certification"]["verdict"] == "certified"
    assert manifest["reviewers"] == [{"reviewer": SCRIPTED_REVIEWER, "reviews": review["plan"]["items"], "scripted": True}]
    assert not manifest["forced_approval"]

    # the adapter trained on that export, the evaluation of base and adapter, the answer served from the adapter
    adapter = tmp_path / "demo" / "adapters" / f"snapshot-{approved}"
    tm = json.loads((adapter / "train_manifest.json").read_text())
    assert tm["content_hash"] == manifest["content_hash"] and tm["config"]["max_steps"] == 4
    assert (tmp_path / "demo" / "adapters" / "latest").resolve() == adapter.resolve()
    assert set(stages["eval"]["models"]) == {"base", adapter.name} and stages["eval"]["samples"] == 3
    served = stages["serve"]
    assert served["model"] == adapter.name and served["snapshot_id"] == approved
    assert served["usage"]["completion_tokens"] > 0 and served["url"].startswith("http://127.0.0.1:")
    saved = json.loads((tmp_path / "demo" / "walkthrough.json").read_text())
    assert "scripted reviewer" in saved["note"] and set(saved["stages"]) == set(stages)

    # a second run keeps what is there: no new review, no new training, no new evaluation
    weights = adapter / "adapter_model.safetensors"
    before = (weights.stat().st_mtime_ns, (adapter.parent.parent / "exports" / f"snapshot-{approved}" / "eval" /
                                            "eval_results.json").stat().st_mtime_ns)
    again = run_walkthrough(store, truth, opts).stages
    assert again["review"]["kept"] and again["train"]["adapter_kept"] and again["snapshot"]["made"] is False
    after = (weights.stat().st_mtime_ns, (adapter.parent.parent / "exports" / f"snapshot-{approved}" / "eval" /
                                           "eval_results.json").stat().st_mtime_ns)
    assert after == before
    with store.reader() as con:
        assert con.execute("SELECT count(*) FROM reviews WHERE status = 'submitted'").fetchall()[0][0] == \
            review["plan"]["items"]


def test_is_scripted_knows_the_reserved_domain_only() -> None:
    assert is_scripted(SCRIPTED_REVIEWER) and is_scripted("bot@qa.invalid")
    assert not is_scripted("reviewer0@example.com") and not is_scripted("invalid@example.org") and not is_scripted(None)


def test_the_demo_refuses_a_review_it_cannot_script(runner, tmp_path) -> None:  # noqa: ANN001
    from curation.cli.app import app

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "rows.jsonl").write_text('{"instruction": "Hi", "output": "Hello"}\n')
    res = runner.invoke(app, ["--db", str(tmp_path / "s.duckdb"), "demo", "--data-dir", str(tmp_path / "in")])
    assert res.exit_code == 2 and "--curation-only" in res.output and "truth.json" in res.output
    assert not (tmp_path / "s.duckdb").exists(), "nothing is curated before the refusal"
    ok = runner.invoke(app, ["--db", str(tmp_path / "s.duckdb"), "demo", "--data-dir", str(tmp_path / "in"),
                             "--curation-only"])
    assert ok.exit_code == 0, ok.output
    assert SAMPLE_DIR.is_dir()
