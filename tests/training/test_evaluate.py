"""curate eval: metrics on real text in English and Chinese, and base vs adapter on a real export."""

from __future__ import annotations

import json

import pytest

from training.evaluate import bleu4, bertscore_f1, cjk_tokens, prompt_and_reference, rouge_l


def test_metrics_read_chinese_and_english() -> None:
    zh_ref, zh_hyp = "北京是中国的首都，也是政治和文化中心。", "北京是中国的首都和文化中心。"
    en_ref, en_hyp = "Paris is the capital of France.", "The capital of France is Paris."
    assert cjk_tokens(zh_ref)[:3] == ["北", "京", "是"]
    # rouge-score's own tokenizer drops every non-ASCII character: Chinese would score 0
    from rouge_score import rouge_scorer

    assert rouge_scorer.RougeScorer(["rougeL"]).score(zh_ref, zh_hyp)["rougeL"].fmeasure == 0.0
    assert 60 < rouge_l([zh_hyp], [zh_ref]) < 100 and rouge_l([zh_ref], [zh_ref]) == pytest.approx(100.0)
    assert bleu4([zh_hyp], [zh_ref]) > 20 and bleu4([zh_ref], [zh_ref]) == pytest.approx(100.0)
    assert 0 < bleu4([en_hyp], [en_ref]) < 100
    close, far = bertscore_f1([en_hyp, "Bananas are yellow fruit."], [en_ref, en_ref])
    assert close > far and close > 0.8


def test_prompt_is_the_conversation_before_the_last_answer() -> None:
    row = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                        {"role": "user", "content": "2+2?"},
                        {"role": "assistant", "content": "4", "reasoning": "simple sum"}]}
    prompt, ref = prompt_and_reference(row)
    assert [m["content"] for m in prompt] == ["Hi", "Hello!", "2+2?"] and ref == "4"


def test_base_and_adapter_side_by_side(tiny_model_dir, tmp_path, runner) -> None:  # noqa: ANN001
    from curation.cli.app import app
    from tests.training.test_trainer import ROWS

    db = tmp_path / "store" / "curate.duckdb"
    src = tmp_path / "sums.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    for args in (["ingest", str(src)], ["run"], ["snapshot", "create"], ["snapshot", "approve", "1", "--force"],
                 ["snapshot", "export", "1", "--eval-share", "0.2", "--no-hf"],
                 ["train", "--snapshot", "1", "--model", str(tiny_model_dir), "--set", "max_steps=40",
                  "--set", "eval_steps=10", "--set", "learning_rate=0.01", "--set", "target_modules=all-linear",
                  "--set", "gradient_checkpointing=false"]):
        res = runner.invoke(app, ["--db", str(db), *args])
        assert res.exit_code == 0, (args, res.output)
    adapter = db.parent / "adapters" / "snapshot-1"
    res = runner.invoke(app, ["--db", str(db), "eval", "--snapshot", "1", "--model", str(tiny_model_dir),
                              "--adapter", str(adapter), "--max-new-tokens", "12", "--max-samples", "6"])
    assert res.exit_code == 0, res.output
    out = db.parent / "exports" / "snapshot-1" / "eval"
    results = json.loads((out / "eval_results.json").read_text())
    base, tuned = results["models"]["base"], results["models"]["snapshot-1"]
    assert results["samples"] == 6 and tuned["eval_loss"] < base["eval_loss"]
    for m in (base, tuned):
        assert m["n"] == 6 and 0 <= m["bleu4"] <= 100 and 0 <= m["rougeL"] <= 100 and -1 <= m["bertscore_f1"] <= 1
        assert m["by_language"] and m["by_source"] == {"sums.jsonl": m["by_source"]["sums.jsonl"]}
    gens = [json.loads(x) for x in (out / "generations.jsonl").read_text().splitlines()]
    assert len(gens) == 12 and {g["model"] for g in gens} == {"base", "snapshot-1"}
    assert all(g["reference"].endswith(".") and g["prompt"][-1]["role"] == "user" for g in gens)
    # an adapter folder that is not one is bad usage
    res = runner.invoke(app, ["--db", str(db), "eval", "--snapshot", "1", "--model", str(tiny_model_dir),
                              "--adapter", str(tmp_path)])
    assert res.exit_code == 2 and "adapter_config.json" in res.output
    # progress: each model's answers per batch, then its eval loss per sample
    from training.data import load_export
    from training.evaluate import GenerationSettings, evaluate_models

    calls = []
    evaluate_models(load_export(out.parent), tiny_model_dir, [adapter], tmp_path / "again", 4,
                    GenerationSettings(max_new_tokens=4, batch_size=2), progress=lambda *a: calls.append(a))
    assert ("base: generating", 2, 4, "prompts") in calls and ("snapshot-1: generating", 4, 4, "prompts") in calls
    assert ("snapshot-1: eval loss", 4, 4, "samples") in calls


def test_preference_items_hide_the_models_in_a_drawn_order() -> None:
    from training.evaluate import preference_items

    gens = [{"model": m, "sample_id": f"s{i}", "prompt": [{"role": "user", "content": f"question {i}"}],
             "answer": f"{m} says {i}"} for m in ("base", "lora-a", "lora-b") for i in range(200)]
    items = preference_items("r1", gens)
    assert len(items) == 200 * 3  # every pair of the three models, per prompt
    again = {it["item_id"]: it for it in preference_items("r1", list(reversed(gens)))}
    assert {it["item_id"]: it for it in items} == again  # the same items, in the same order, on every push
    for it in items[:30]:
        a_text, b_text = it["answer"].split("----------")
        assert f"{it['order'][0]} says" in a_text and f"{it['order'][1]} says" in b_text
        assert not any(m in it["model"] for m in ("base", "lora"))
    first = sum(it["order"][0] == it["pair"][0] for it in items) / len(items)
    assert 0.45 < first < 0.55, first
