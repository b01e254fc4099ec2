"""The GPU check script (benchmarks/gpu_lora_check.py) in its CPU smoke mode, in a clean subprocess: it must
keep running where only torch, transformers and peft are installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_lora_check.py"


def test_the_gpu_check_script_runs_and_reports() -> None:
    # only torch, transformers and peft: the script imports nothing of the project
    text = SCRIPT.read_text(encoding="utf-8")
    assert "curation" not in text.split('"""', 2)[2] and "training." not in text.split('"""', 2)[2]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, str(SCRIPT), "--cpu", "--sizes", "tiny", "--steps", "3", "--seq", "64",
                          "--batch", "2", "--vocab", "512"], capture_output=True, text=True, env=env, timeout=300,
                         cwd="/")
    assert res.returncode == 0, res.stderr[-3000:]
    (r,) = json.loads(res.stdout.strip().splitlines()[-1])["gpu_lora_check"]
    assert r["ok"] and r["tokens_per_s"] > 0 and 0 < r["trainable_share"] < 0.1 and r["steps"] == 3
    # 2 layers, LoRA r=8 on q (64 -> 64) and v (64 -> 32: 2 kv heads of 16)
    assert r["trainable"] == 2 * ((64 * 8 + 8 * 64) + (64 * 8 + 8 * 32))
    bad = subprocess.run([sys.executable, str(SCRIPT), "--cpu", "--sizes", "huge"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert bad.returncode == 2 and "unknown sizes" in bad.stderr
