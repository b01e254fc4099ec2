"""Training data: chat template, loss on the assistant's tokens only, reasoning, truncation; the config."""

from __future__ import annotations

import pytest

from curation.errors import UsageError
from training.config import TrainConfig, load_config
from training.data import IGNORE_INDEX, to_messages, tokenize_messages, tokenize_rows

DIALOGUE = {
    "sample_id": "d1",
    "messages": [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris.", "reasoning": "The user asks a geography question."},
        {"role": "user", "content": "And of Italy? 请用中文回答。"},
        {"role": "assistant", "content": "罗马。", "reasoning": "Rome, in Chinese."},
    ],
}


def _spans(labels: list[int]) -> list[tuple[int, int]]:
    spans, start = [], None
    for k, x in enumerate(labels + [IGNORE_INDEX]):
        if x != IGNORE_INDEX and start is None:
            start = k
        elif x == IGNORE_INDEX and start is not None:
            spans.append((start, k))
            start = None
    return spans


def test_exactly_the_assistant_tokens_carry_loss(tokenizer) -> None:  # noqa: ANN001
    messages = to_messages(DIALOGUE, reasoning="drop")
    ids, labels = tokenize_messages(tokenizer, messages)
    assert len(ids) == len(labels)
    spans = _spans(labels)
    # one span per assistant turn, each exactly its content and the end-of-turn marker, token by token
    assert [tokenizer.decode(ids[a:b]) for a, b in spans] == ["Paris.<|im_end|>\n", "罗马。<|im_end|>\n"]
    for a, b in spans:
        assert labels[a:b] == ids[a:b]
        assert tokenizer.decode(ids[:a]).endswith("<|im_start|>assistant\n")  # the prompt before it carries none
    assert sum(x != IGNORE_INDEX for x in labels) == sum(b - a for a, b in spans)
    # everything else (system, user turns, role headers) carries none
    outside = [ids[k] for k in range(len(ids)) if labels[k] == IGNORE_INDEX]
    assert "What is the capital" in tokenizer.decode(outside) and "Paris" not in tokenizer.decode(outside)


def test_reasoning_keep_only_in_the_last_answer(tokenizer) -> None:  # noqa: ANN001
    kept = to_messages(DIALOGUE, reasoning="keep")
    assert kept[1]["content"] == "Paris."  # earlier turns' reasoning is always removed
    assert kept[3]["content"].startswith("<think>\nRome, in Chinese.\n</think>\n\n") and kept[3]["content"].endswith("罗马。")
    assert to_messages(DIALOGUE, reasoning="drop")[3]["content"] == "罗马。"
    ids, labels = tokenize_messages(tokenizer, kept)
    trained = tokenizer.decode([i for i, x in zip(ids, labels) if x != IGNORE_INDEX])
    assert "<think>" in trained and "Rome, in Chinese." in trained


def test_alpaca_rows_become_system_user_assistant() -> None:
    row = {"system": "Be brief.", "instruction": "Summarise:", "input": "A long text.", "output": "Short.",
           "reasoning": "Cut it down."}
    assert to_messages(row, "drop") == [{"role": "system", "content": "Be brief."},
                                        {"role": "user", "content": "Summarise:\n\nA long text."},
                                        {"role": "assistant", "content": "Short."}]
    assert to_messages(row, "keep")[-1]["content"] == "<think>\nCut it down.\n</think>\n\nShort."


def test_too_long_samples_are_truncated_or_skipped_and_counted(tokenizer) -> None:  # noqa: ANN001
    rows = [{"sample_id": "short", "instruction": "Hi", "output": "Hello."},
            {"sample_id": "long", "instruction": "Tell me a story.", "output": "Once upon a time " * 200}]
    examples, report = tokenize_rows(tokenizer, rows, max_seq_length=128)
    assert [e.sample_id for e in examples] == ["short", "long"] and report.truncated == 1
    assert len(examples[1].input_ids) == 128 and examples[1].trained_tokens > 0
    examples, report = tokenize_rows(tokenizer, rows, max_seq_length=128, too_long="skip")
    assert [e.sample_id for e in examples] == ["short"] and report.skipped_too_long == 1
    assert report.skipped_ids == ["long"] and report.longest > 128
    # a limit that cuts before any answer token: nothing to train on, skipped and counted
    examples, report = tokenize_rows(tokenizer, rows[:1], max_seq_length=16)
    assert examples == [] and report.skipped_no_answer == 1


def test_config_defaults_toml_and_sets(tmp_path) -> None:  # noqa: ANN001
    c = TrainConfig()
    assert (c.learning_rate, c.effective_batch, c.r, c.lora_alpha, c.lora_dropout, c.target_modules, c.max_seq_length,
            c.warmup_ratio, c.num_train_epochs) == (2e-4, 16, 8, 16, 0.05, ["q_proj", "v_proj"], 2048, 0.1, 3.0)
    f = tmp_path / "train.toml"
    f.write_text('[train]\nlearning_rate = 1e-4\nr = 16\ntarget_modules = "all-linear"\n', encoding="utf-8")
    c = load_config(f, ["lora_alpha=32", 'target_modules=["q_proj","k_proj"]', "bf16=true", "reasoning=drop"])
    assert (c.learning_rate, c.r, c.lora_alpha, c.target_modules, c.bf16, c.reasoning) == (
        1e-4, 16, 32, ["q_proj", "k_proj"], True, "drop")
    with pytest.raises(UsageError, match="learning_rate"):
        load_config(None, ["learning_rate=5"])
    with pytest.raises(UsageError, match="lora_dropout"):
        load_config(None, ["lora_dropout=1.5"])
    with pytest.raises(UsageError, match="expected name=value"):
        load_config(None, ["r"])
    with pytest.raises(UsageError, match="not valid TOML"):
        (tmp_path / "bad.toml").write_text("r = [", encoding="utf-8")
        load_config(tmp_path / "bad.toml")
    with pytest.raises(UsageError, match="no_such_field"):
        load_config(None, ["no_such_field=1"])


def test_readme_config_reference_is_current() -> None:
    from pathlib import Path

    from training.config import markdown_reference

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert markdown_reference() in readme, "README's TrainConfig reference is stale: paste training.config.markdown_reference()"
