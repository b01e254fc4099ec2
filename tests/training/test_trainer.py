"""The LoRA trainer on a real export of an approved snapshot, with a tiny Llama: checks before training,
dry run, training lowers eval loss, the adapter reloads to identical logits, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curation.errors import RefusedError, UsageError
from curation.ingest import ingest_paths
from curation.pipeline.executor import run_pipeline
from curation.snapshots import approve, create_snapshot
from curation.snapshots.export import export_snapshot
from curation.store import Store
from schemas.pipeline import PipelineConfig, StepConfig
from training.config import TrainConfig
from training.trainer import check, dry_run, train

ROWS = [
    {"instruction": f"What is {a} plus {b}?", "output": f"{a} plus {b} is {a + b}."}
    for a in range(1, 13) for b in range(1, 6)
]


def _export(tmp: Path, approved: bool = True) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    store = Store(tmp / "store" / "curate.duckdb", lock_timeout=30)
    src = tmp / "sums.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    ingest_paths(store, [str(src)])
    run_pipeline(store, PipelineConfig(steps=[StepConfig(type="clean"), StepConfig(type="exact_dedup")]))
    snap = create_snapshot(store)
    if approved:
        approve(store, snap.snapshot_id, force=True)
    return export_snapshot(store, snap.snapshot_id, tmp / "export", eval_share=0.2, force=not approved, hf=False).path


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory) -> Path:
    return _export(tmp_path_factory.mktemp("train-export"))


SMALL = dict(max_steps=24, per_device_train_batch_size=4, gradient_accumulation_steps=1, eval_steps=8,
             learning_rate=5e-3, r=8, lora_alpha=16, lora_dropout=0.0, gradient_checkpointing=False,
             logging_steps=4, early_stopping_patience=0, max_seq_length=256)
TRAIN = {**SMALL, "max_steps": 60, "eval_steps": 15, "learning_rate": 1e-2, "target_modules": "all-linear"}


def test_checks_before_training(export_dir, tiny_model_dir, tmp_path) -> None:  # noqa: ANN001
    prep = check(export_dir, tiny_model_dir, TrainConfig(**SMALL))
    assert len(prep.train) + len(prep.eval) == len(ROWS) and prep.eval and not prep.forced
    assert {"q_proj", "v_proj", "o_proj", "gate_proj"} <= set(prep.linear_modules)
    with pytest.raises(UsageError, match=r"\['wq'\] are not modules.*q_proj"):
        check(export_dir, tiny_model_dir, TrainConfig(**{**SMALL, "target_modules": ["wq", "v_proj"]}))
    with pytest.raises(UsageError, match="every training sample is longer"):
        check(export_dir, tiny_model_dir, TrainConfig(**{**SMALL, "max_seq_length": 16}))
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text((tiny_model_dir / "config.json").read_text())
    with pytest.raises(UsageError, match="missing a tokenizer.*weights"):
        check(export_dir, broken, TrainConfig(**SMALL))
    # an unapproved export is refused unless forced; a changed file breaks the content hash
    unapproved = _export(tmp_path / "u", approved=False)
    with pytest.raises(RefusedError, match="not approved"):
        check(unapproved, tiny_model_dir, TrainConfig(**SMALL))
    assert check(unapproved, tiny_model_dir, TrainConfig(**SMALL), force=True).forced
    import pyarrow.parquet as pq

    t = pq.read_table(export_dir / "train.parquet")
    changed = tmp_path / "changed"
    changed.mkdir()
    for f in export_dir.iterdir():
        if f.is_file():
            (changed / f.name).write_bytes(f.read_bytes())
    pq.write_table(t.slice(1), changed / "train.parquet")
    with pytest.raises(RefusedError, match="content hash"):
        check(changed, tiny_model_dir, TrainConfig(**SMALL))


def test_dry_run_counts_without_weights(export_dir, tiny_model_dir) -> None:  # noqa: ANN001
    cfg = TrainConfig(**SMALL)
    prep = check(export_dir, tiny_model_dir, cfg)
    d = dry_run(prep, tiny_model_dir, cfg, device="cpu")
    # LoRA r=8 on q and v of 2 layers of hidden 64: (64*8 + 8*64) for q, (64*8 + 8*32) for v (2 kv heads of 16)
    assert d["trainable_parameters"] == 2 * ((64 * 8 + 8 * 64) + (64 * 8 + 8 * 32))
    assert 0 < d["trainable_share"] < 0.1 and d["steps"] == 24 and d["precision"] == "float32"
    assert d["tokens_per_epoch"] > d["trained_tokens_per_epoch"] > 0 and d["memory_gib"]["total"] > 0


def test_training_lowers_eval_loss_and_the_adapter_reloads(export_dir, tiny_model_dir, tmp_path) -> None:  # noqa: ANN001
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    cfg = TrainConfig(**TRAIN)
    prep = check(export_dir, tiny_model_dir, cfg)
    out = tmp_path / "adapter"
    manifest = train(prep, tiny_model_dir, out, cfg)
    evals = manifest["loss_curve"]["eval"]
    # the first point is the base model's (evaluated before the first step); the adapter lowers it
    assert evals[0][0] == 0 and len(evals) >= 4 and evals[-1][1] < evals[0][1] * 0.95, evals
    assert all(b[1] < a[1] for a, b in zip(evals, evals[1:])), evals
    assert (out / "adapter_config.json").is_file() and (out / "loss.png").stat().st_size > 1000
    saved = json.loads((out / "train_manifest.json").read_text())
    assert saved["snapshot_id"] == prep.data.manifest.snapshot_id and saved["content_hash"] == prep.data.manifest.content_hash
    assert saved["metrics"]["eval_loss"] == pytest.approx(min(v for _, v in evals))  # the best checkpoint is kept
    assert saved["config"]["r"] == 8 and len(saved["base_model_weights_sha256"]) == 64
    # reloading the adapter gives identical logits
    ids = torch.tensor([prep.train[0].input_ids])
    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        reloaded = PeftModel.from_pretrained(base, out).eval()
        a = reloaded(ids).logits
        base2 = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        b = PeftModel.from_pretrained(base2, out).eval()(ids).logits
        plain = AutoModelForCausalLM.from_pretrained(tiny_model_dir)(ids).logits
    assert torch.equal(a, b) and not torch.allclose(a, plain)


def test_curate_train_cli(tiny_model_dir, tmp_path, runner) -> None:  # noqa: ANN001
    from curation.cli.app import app

    db = tmp_path / "store" / "curate.duckdb"
    src = tmp_path / "sums.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    for args in (["ingest", str(src)], ["run"], ["snapshot", "create"]):
        res = runner.invoke(app, ["--db", str(db), *args])
        assert res.exit_code == 0, res.output
    base = ["--db", str(db), "train", "--snapshot", "1", "--model", str(tiny_model_dir)]
    # a draft snapshot is refused (exit 3), a config value out of range is bad usage (exit 2), nothing written
    res = runner.invoke(app, base + ["--dry-run"])
    assert res.exit_code == 3 and "not approved" in res.output, res.output
    assert runner.invoke(app, ["--db", str(db), "snapshot", "approve", "1", "--force"]).exit_code == 0
    res = runner.invoke(app, base + ["--set", "lora_dropout=2"])
    assert res.exit_code == 2 and "lora_dropout" in res.output and not (db.parent / "adapters").exists()
    res = runner.invoke(app, base + ["--dry-run", "--set", "r=4"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["trainable_parameters"] == 2 * ((64 * 4 + 4 * 64) + (64 * 4 + 4 * 32)) and d["steps"] > 0
    res = runner.invoke(app, base + ["--set", "max_steps=6", "--set", "eval_steps=3", "--set", "gradient_checkpointing=false",
                                     "--set", "logging_steps=2"])
    assert res.exit_code == 0, res.output
    out = db.parent / "adapters" / "snapshot-1"
    assert (out / "adapter_model.safetensors").is_file() and json.loads((out / "train_manifest.json").read_text())["snapshot_id"] == 1
    # the progress bar: steps, the latest train and eval loss, tokens/s; no log dict printed per step
    import re

    assert re.search(r"6/6 steps loss \d+\.\d{4} .* [\d,]+ tokens/s", res.stderr), res.stderr
    assert "{'loss'" not in res.output and "'eval_loss'" not in res.output


def test_a_killed_run_resumes_to_the_uninterrupted_result(export_dir, tiny_model_dir, tmp_path) -> None:  # noqa: ANN001
    """SIGKILL after the first checkpoints, then --resume: the same losses as a run that was never stopped."""
    import os
    import signal
    import subprocess
    import sys
    import time

    sets = ["--set", "max_steps=40", "--set", "eval_steps=5", "--set", "gradient_checkpointing=false",
            "--set", "early_stopping_patience=0", "--set", "save_total_limit=50", "--set", "learning_rate=0.005"]

    def cmd(out: Path, *extra: str) -> list[str]:
        return [sys.executable, "-c", "from curation.cli.app import main; main()", "train", "--data", str(export_dir),
                "--model", str(tiny_model_dir), "--out", str(out), *sets, *extra]

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole = tmp_path / "whole"
    subprocess.run(cmd(whole, "--merge"), check=True, capture_output=True, env=env, timeout=600)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(cmd(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 300
    while not (killed / "checkpoints" / "checkpoint-15" / "trainer_state.json").is_file() and time.time() < deadline \
            and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "train_manifest.json").exists(), "the run finished before it could be killed"
    res = subprocess.run(cmd(killed, "--resume"), capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    a = json.loads((whole / "train_manifest.json").read_text())
    b = json.loads((killed / "train_manifest.json").read_text())
    assert b["resumed_from"] and b["resumed_from"].rsplit("-", 1)[-1] in ("15", "20", "25", "30", "35")
    assert b["metrics"]["eval_loss"] == pytest.approx(a["metrics"]["eval_loss"], rel=1e-3), (a["loss_curve"], b["loss_curve"])
    assert [s for s, _ in b["loss_curve"]["eval"]][-1] == 40
    # --merge wrote a standalone model with the adapter's effect
    import torch
    from transformers import AutoModelForCausalLM

    assert (whole / "merged" / "config.json").is_file() and a["merged"]
    ids = torch.tensor([[1, 5, 9, 12, 40]])
    with torch.no_grad():
        merged = AutoModelForCausalLM.from_pretrained(whole / "merged")(ids).logits
        base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)(ids).logits
    assert not torch.allclose(merged, base)


def test_a_new_round_continues_an_adapter_with_replay(export_dir, tiny_model_dir, tmp_path) -> None:  # noqa: ANN001
    """--from-adapter: the earlier adapter trained further on a newer snapshot, 10% of the old one replayed."""
    cfg = TrainConfig(**{**SMALL, "max_steps": 6})
    first = tmp_path / "round1"
    train(check(export_dir, tiny_model_dir, cfg), tiny_model_dir, first, cfg)
    newer_rows = [{"instruction": f"What is {a} times {b}?", "output": f"{a} times {b} is {a * b}."}
                  for a in range(2, 10) for b in range(2, 7)]
    store_dir = tmp_path / "newer"
    store_dir.mkdir()
    store = Store(store_dir / "curate.duckdb", lock_timeout=30)
    src = store_dir / "times.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in newer_rows), encoding="utf-8")
    ingest_paths(store, [str(src)])
    run_pipeline(store, PipelineConfig(steps=[StepConfig(type="clean")]))
    snap = approve(store, create_snapshot(store).snapshot_id, force=True)
    newer = export_snapshot(store, snap.snapshot_id, store_dir / "export", eval_share=0.2, hf=False).path
    prep = check(newer, tiny_model_dir, cfg, from_adapter=first)
    n_new = len(prep.data.train)
    assert prep.replay["rows"] == round(0.1 * n_new) and len(prep.train) == n_new + prep.replay["rows"]
    second = tmp_path / "round2"
    manifest = train(prep, tiny_model_dir, second, cfg)
    assert manifest["from_adapter"] == str(first) and manifest["replay"]["snapshot_id"] == 1
    # the second round started from the first adapter's weights, not from a fresh LoRA
    from safetensors.torch import load_file

    a, b = load_file(first / "adapter_model.safetensors"), load_file(second / "adapter_model.safetensors")
    assert a.keys() == b.keys() and any(not (a[k] == b[k]).all() for k in a)
    import torch

    fresh = tmp_path / "fresh"
    plain = check(newer, tiny_model_dir, cfg)
    train(plain, tiny_model_dir, fresh, cfg)
    c = load_file(fresh / "adapter_model.safetensors")
    lora_b = [k for k in a if "lora_B" in k]

    def cos(x: dict, y: dict) -> float:
        u = torch.cat([x[k].flatten() for k in lora_b])
        v = torch.cat([y[k].flatten() for k in lora_b])
        return float(torch.nn.functional.cosine_similarity(u, v, dim=0))

    assert cos(a, b) > cos(a, c) + 0.2
    with pytest.raises(UsageError, match="not a folder written by curate train"):
        check(newer, tiny_model_dir, cfg, from_adapter=tmp_path)


def test_packed_samples_see_only_themselves(export_dir, tiny_model_dir) -> None:  # noqa: ANN001
    """Packing: each sample in a packed row gets the same logits and loss as alone, and every token is kept."""
    import torch
    from transformers import AutoModelForCausalLM

    from training.data import IGNORE_INDEX, pack
    from training.trainer import _Collator

    cfg = TrainConfig(**{**SMALL, "packing": True, "max_seq_length": 256})
    prep = check(export_dir, tiny_model_dir, cfg)
    packed = pack(prep.train, cfg.max_seq_length)
    assert len(packed) < len(prep.train) / 2 and all(len(p.input_ids) <= 256 for p in packed)
    assert sorted(s for p in packed for s in p.sample_ids) == sorted(e.sample_id for e in prep.train)
    assert sum(len(p.input_ids) for p in packed) == sum(len(e.input_ids) for e in prep.train)
    by_id = {e.sample_id: e for e in prep.train}
    net = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    rows = [{"input_ids": p.input_ids, "labels": p.labels, "position_ids": p.position_ids} for p in packed[:3]]
    batch = _Collator(prep.tokenizer.pad_token_id)(rows)  # padded: the shorter rows get a padding segment
    assert "attention_mask" not in batch and batch["use_cache"] is False
    with torch.no_grad():
        logits = net(**{k: v for k, v in batch.items() if k != "labels"}).logits
        for row, p in enumerate(packed[:3]):
            at = 0
            for sid in p.sample_ids:
                e = by_id[sid]
                alone = net(torch.tensor([e.input_ids])).logits[0]
                n = len(e.input_ids)
                torch.testing.assert_close(logits[row, at:at + n], alone, atol=1e-5, rtol=1e-4)
                # no sample is trained on the start of the next: its first token has no label
                assert p.labels[at] == IGNORE_INDEX and p.labels[at + 1:at + n] == e.labels[1:]
                at += n
    # without the restarting positions the samples would see each other
    with torch.no_grad():
        mixed = net(torch.tensor([packed[0].input_ids])).logits[0]
    n0 = len(by_id[packed[0].sample_ids[0]].input_ids)
    assert not torch.allclose(mixed[n0:], logits[0, n0:len(packed[0].input_ids)], atol=1e-4)


def test_training_with_packing(export_dir, tiny_model_dir, tmp_path) -> None:  # noqa: ANN001
    cfg = TrainConfig(**{**TRAIN, "packing": True, "max_seq_length": 256, "max_steps": 30, "eval_steps": 10})
    prep = check(export_dir, tiny_model_dir, cfg)
    d = dry_run(prep, tiny_model_dir, cfg, device="cpu")
    assert d["packed_sequences"] < len(prep.train) / 2 and d["steps"] == 30
    manifest = train(prep, tiny_model_dir, tmp_path / "packed", cfg)
    evals = manifest["loss_curve"]["eval"]
    assert manifest["packed_sequences"] == d["packed_sequences"]
    assert evals[-1][1] < evals[0][1] * 0.95, evals


def test_data_parallel_training_under_a_launcher(export_dir, tiny_model_dir, tmp_path) -> None:  # noqa: ANN001
    """Two processes (torch's launcher, which accelerate launch uses for several GPUs; gloo on CPU here): each
    trains on half the data, one writes the adapter and the manifest."""
    import math
    import os
    import subprocess
    import sys

    sets = ["--set", "max_steps=4", "--set", "eval_steps=2", "--set", "gradient_checkpointing=false",
            "--set", "max_seq_length=256", "--set", "per_device_train_batch_size=4", "--set", "gradient_accumulation_steps=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "adapter"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "curation", "train",
           "--data", str(export_dir), "--model", str(tiny_model_dir), "--out", str(out), *sets]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stderr.count("training on ") == 1 and res.stdout.count('"snapshot_id"') == 1, res.stderr[-2000:]
    manifest = json.loads((out / "train_manifest.json").read_text())
    assert (out / "adapter_model.safetensors").is_file() and manifest["snapshot_id"] == 1
    # each process reads half the training rows in batches of 4: an epoch is ceil(ceil(n / 2) / 4) steps (one
    # process alone would need ceil(n / 4))
    n = len(check(export_dir, tiny_model_dir, TrainConfig(**SMALL)).train)
    assert manifest["metrics"]["epoch"] == pytest.approx(4 / math.ceil(math.ceil(n / 2) / 4)), (n, manifest["metrics"])


def test_accelerate_config_is_read_by_accelerate(tmp_path, runner) -> None:  # noqa: ANN001
    from accelerate.commands.config.config_args import load_config_from_file

    from curation.cli.app import app

    out = tmp_path / "accelerate.yaml"
    res = runner.invoke(app, ["accelerate-config", "--num-processes", "4", "--out", str(out)])
    assert res.exit_code == 0 and "accelerate launch --config_file" in res.stderr, res.output
    cfg = load_config_from_file(str(out))
    assert cfg.num_processes == 4 and str(cfg.distributed_type).endswith("MULTI_GPU") and cfg.mixed_precision == "bf16"
    bad = runner.invoke(app, ["accelerate-config", "--num-processes", "0", "--out", str(tmp_path / "x.yaml")])
    assert bad.exit_code == 2 and not (tmp_path / "x.yaml").exists()
