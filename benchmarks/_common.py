"""Helpers shared by the benchmarks: measuring in child processes, and target checks."""

from __future__ import annotations

import json
import resource
import subprocess
import sys


def peak_rss_bytes() -> int:
    """This process's peak resident memory."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_child(script: str, *args: str) -> dict:
    """Run ``script --child args...`` in a fresh process (so its peak memory is its own); its last line is JSON."""
    res = subprocess.run([sys.executable, script, "--child", *args], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def run_one_step(db: str, step_type: str, counters: bool = False) -> dict:
    """Run a pipeline of the one step ``step_type`` on the store ``db``; seconds, peak memory and its run_steps rows."""
    import time

    from curation.pipeline.executor import run_pipeline
    from curation.store import Store
    from schemas.pipeline import PipelineConfig, StepConfig

    t0 = time.perf_counter()
    store = Store(db)
    res = run_pipeline(store, PipelineConfig(steps=[StepConfig(type=step_type)]), fresh=True)
    seconds = time.perf_counter() - t0
    cols = "step, epoch(finished_at) - epoch(started_at), dropped" + (", counters" if counters else "")
    with store.reader() as con:
        steps = con.execute(f"SELECT {cols} FROM run_steps WHERE run_id = ? ORDER BY position",
                            [res.run_id]).fetchall()
    return {"seconds": seconds, "peak_bytes": peak_rss_bytes(), "samples": res.samples_in, "steps": steps,
            "store": store}


class Targets:
    """Collects missed targets, prints them, and gives the exit code."""

    def __init__(self) -> None:
        self.missed = 0

    def check(self, ok: bool, message: str) -> None:
        """Print ``MISSED: message`` unless ``ok``."""
        if not ok:
            print(f"MISSED: {message}")
            self.missed += 1

    def finish(self) -> int:
        """Print the verdict; 1 when any target was missed."""
        print("all targets met" if not self.missed else "some targets missed")
        return 1 if self.missed else 0
