#!/usr/bin/env python3
"""Fault-injection benchmark: kill -9 during ingest and a pipeline run, and two writers at once.

Real processes on real store files, as a user's would be: the benchmark spawns ``ingest_paths`` and
``run_pipeline`` in child processes, kills them with SIGKILL at seeded random points, runs them again
until the work completes, and checks the store after every kill with ``curation.store.audit.audit``.

What it does (defaults in brackets):

1. Generates ``--rows`` [200,000] alpaca rows of random words in ``--files`` [3] JSONL files, with a
   malformed line every ``--bad-every`` [1000] lines (quarantined), ~1.5% exact copies and ~1.5% near
   copies of earlier rows (dropped by exact and near dedup), a few empty / echoed answers (dropped by
   quality) and some rows with control characters or doubled spaces (rewritten by clean), so that every
   step of the pipeline writes decisions, signals or texts that can be compared.
2. Ingest, uninterrupted, into a fresh store: the reference time ``T`` and the reference sample ids.
3. Ingest into another fresh store, killed at ``ceil(--kills / 2)`` points, then once more to completion.
   Small ``--chunk-bytes`` / ``--write-rows`` give the load many transactions for a kill to fall between.
4. Two runs at once of a light pipeline (clean, quality, exact_dedup, near_dedup with ``--batch-rows``
   [5000] rows a page) on a copy of the recovered store: one must complete, the other must be refused
   (``RunInProgressError``, exit 4 -- one racer is ``curate run``, the other ``run_pipeline``). The run
   that completes is the uninterrupted reference run: its time and its decisions.
5. The same pipeline on the recovered store, killed at ``floor(--kills / 2)`` points, then to completion.
6. Two ingests at once into fresh stores: (a) the same file twice, (b) two different files.
7. The decisions, signals and text versions of the killed-and-resumed run against the reference run.

Kill points: each phase draws its points (``--seed`` [0]) within its uninterrupted duration, one uniformly
in each of ``k`` equal parts of the first 95% of the work (stratified, so that with 3 kills one falls early,
one in the middle and one late: for the run, in its global steps too); a point is a share of the work. Before each attempt the benchmark reads how much of the work
is committed (ingest: rows of done batches; run: steps done and row-step cursors, weighted by each step's
share of the reference run's time) and sleeps the process start-up time plus the uninterrupted time of the
work between the committed share and the point (at least 2% of it). "landed" says that the process was
still running when the signal came.

Figures:

- lost: expected rows (generated less malformed) not in a done batch of the final store (ingest), or not in
  the run's input (run); for races, the same per store.
- doubled: samples rows less distinct sample ids, plus decision and signal keys written more than once.
- audit: the violations ``audit()`` reports (after every kill, and at the end).
- recovery: the wall time of the invocation that completes the work after the last kill (restart to
  completion, process start-up included), next to the uninterrupted time of the share of the work that
  was not committed at the restart (``T * (1 - committed)``, start-up included). Their difference is what
  a crash costs beyond the work itself: start-up, finding the dead owner, clearing the partial batch or
  step, redoing what was not committed (a partial batch is loaded again from its start; a global step
  computes all its signatures again). "all attempts" is the wall time of every attempt of the phase
  together, next to ``T``.
- differing: decisions (sample, step, verdict, reason, ref sample), signals and text versions of the
  killed run that the reference run does not have, and the other way round.

Targets: 0 lost, 0 doubled, 0 audit violations, 0 differing decisions / signals / texts, race (c) refused
with exit 4 naming the running run while the other completes, every process that was not killed exits 0,
at least one kill landed per phase, and the whole benchmark within ``--time-limit`` [600 s]. Recovery has
a loose target: the restart-to-completion time is at most ``T * 1.25 + 10 s`` -- recovering must never cost
more than starting the work over, with room for the noise of a shared machine (the whole work done again
after each kill would miss it; the cost of one redone page, batch or global step does not).

Measured on the development machine (2 cores, shared with other test runs, load average 2-3): the default
configuration takes 345 s (two runs: 343 s and 345 s), well inside the default ``--time-limit``; the
pipeline's quality step is over half of each run. ``--rows 20000`` takes about a minute.

Usage: python benchmarks/bench_faults.py [--rows 200000] [--files 3] [--kills 6] [--seed 0]
                                         [--batch-rows 5000] [--time-limit 600] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from _common import Targets

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the working tree's package, as the children get it

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
RECOVERY_FACTOR, RECOVERY_SLACK_S = 1.25, 10.0

INGEST = textwrap.dedent("""
    import json, sys
    from curation.ingest import IngestOptions, ingest_paths
    from curation.store import Store
    opts = IngestOptions(chunk_bytes=int(sys.argv[2]), write_rows=int(sys.argv[3]))
    for r in ingest_paths(Store(sys.argv[1], lock_timeout=600), sys.argv[4:], opts):
        print(r.model_dump_json(), flush=True)
""")

RUN = textwrap.dedent("""
    import json, sys
    from curation.pipeline import load_config
    from curation.pipeline.executor import RunInProgressError, run_pipeline
    from curation.store import Store
    try:
        r = run_pipeline(Store(sys.argv[1], lock_timeout=600), load_config(sys.argv[2]))
    except RunInProgressError as e:
        print(e, file=sys.stderr)
        sys.exit(4)  # as `curate run` does
    print(json.dumps({"run_id": r.run_id, "status": r.status, "resumed": r.resumed, "skipped": r.skipped,
                      "samples_in": r.samples_in}))
""")

PIPELINE = """batch_rows = {batch_rows}
[[steps]]
type = "clean"
[[steps]]
type = "quality"
[[steps]]
type = "exact_dedup"
[[steps]]
type = "near_dedup"
"""


class TimeLimit(Exception):
    """The benchmark ran past --time-limit."""


class Clock:
    """The benchmark's deadline."""

    def __init__(self, limit_s: float) -> None:
        self.t0 = time.monotonic()
        self.limit = limit_s

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def left(self) -> float:
        left = self.limit - self.elapsed()
        if left <= 0:
            raise TimeLimit(f"--time-limit {self.limit:.0f} s reached")
        return left


@dataclass
class Proc:
    """A child process and where its output goes."""

    popen: subprocess.Popen
    out: Path
    err: Path
    started: float
    ended: float | None = None

    @property
    def wall(self) -> float:
        return (self.ended or time.perf_counter()) - self.started

    def stdout(self) -> str:
        return self.out.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.err.read_text(encoding="utf-8", errors="replace")


class Children:
    """Spawns the children; every one of them is waited for within the deadline, or killed."""

    def __init__(self, logs: Path, clock: Clock) -> None:
        self.logs, self.clock, self.n, self.live = logs, clock, 0, []
        logs.mkdir(parents=True, exist_ok=True)

    def spawn(self, argv: list[str]) -> Proc:
        self.n += 1
        out, err = self.logs / f"{self.n:03d}.out", self.logs / f"{self.n:03d}.err"
        with open(out, "wb") as fo, open(err, "wb") as fe:
            popen = subprocess.Popen(argv, env=ENV, cwd=REPO, stdout=fo, stderr=fe)
        p = Proc(popen, out, err, time.perf_counter())
        self.live.append(p)
        return p

    def code(self, code: str, *args: str) -> Proc:
        return self.spawn([sys.executable, "-c", code, *args])

    def wait(self, p: Proc) -> int:
        try:
            rc = p.popen.wait(timeout=self.clock.left())
        except subprocess.TimeoutExpired:
            self.kill_all()
            raise TimeLimit(f"--time-limit {self.clock.limit:.0f} s reached while a child ran") from None
        p.ended = p.ended or time.perf_counter()
        if p in self.live:
            self.live.remove(p)
        return rc

    def kill(self, p: Proc) -> bool:
        """SIGKILL ``p``; whether it was still running (the kill landed)."""
        landed = p.popen.poll() is None
        if landed:
            p.popen.send_signal(signal.SIGKILL)
            p.ended = time.perf_counter()
        p.popen.wait()
        p.ended = p.ended or time.perf_counter()
        if p in self.live:
            self.live.remove(p)
        return landed

    def kill_all(self) -> None:
        for p in list(self.live):
            self.kill(p)


# -- data ------------------------------------------------------------------------------------------------

def generate(folder: Path, n: int, n_files: int, bad_every: int, seed: int) -> tuple[list[Path], list[int]]:
    """``n`` lines in ``n_files`` JSONL files; returns the files and the good (loadable) rows of each."""
    rnd = random.Random(seed)
    syllables = ["ka", "ri", "to", "mo", "ne", "la", "su", "vi", "de", "po", "ga", "chi", "ren", "tal", "mor", "bex",
                 "quin", "sal", "dor", "fen", "lum", "tra", "vok", "pel"]
    vocab = sorted({"".join(rnd.choices(syllables, k=rnd.randint(2, 3))) for _ in range(5000)})
    earlier: list[dict] = []
    files, good = [], []
    bounds = [round(i * n / n_files) for i in range(n_files + 1)]
    for fi in range(n_files):
        path = folder / f"part{fi + 1}.jsonl"
        ok = 0
        with open(path, "w", encoding="utf-8") as f:
            for i in range(bounds[fi], bounds[fi + 1]):
                if bad_every and i % bad_every == bad_every - 1:
                    f.write('{"instruction": "broken line, never closed\n')
                    continue
                r = rnd.random()
                if earlier and r < 0.015:  # an exact copy
                    row = dict(rnd.choice(earlier))
                elif earlier and r < 0.03:  # a near copy: one word of the answer changed
                    row = dict(rnd.choice(earlier))
                    words = row["output"].split(" ")
                    words[rnd.randrange(len(words))] = rnd.choice(vocab)
                    row["output"] = " ".join(words)
                else:
                    ins = " ".join(rnd.choices(vocab, k=rnd.randint(6, 14)))
                    out = " ".join(rnd.choices(vocab, k=rnd.randint(20, 60)))
                    row = {"instruction": f"{i} {ins}?", "input": "", "output": f"{out}."}
                    if r < 0.035:
                        row["output"] = ""  # empty answer: quality drops it
                    elif r < 0.04:
                        row["output"] = row["instruction"]  # the question echoed
                    elif r < 0.05:
                        row["output"] = "  " + row["output"].replace(" ", "  ", 3) + "\u0007"  # clean rewrites it
                    elif len(earlier) < 20_000:
                        earlier.append(row)
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                ok += 1
        files.append(path)
        good.append(ok)
    return files, good


def copy_store(src: Path, dst: Path) -> None:
    for suffix in ("", ".wal"):
        s, d = Path(str(src) + suffix), Path(str(dst) + suffix)
        d.unlink(missing_ok=True)
        if s.exists():
            shutil.copyfile(s, d)


# -- reading the stores (only while no child writes) -------------------------------------------------------

def q(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    from curation.store import Store

    with Store(db, lock_timeout=600).reader() as con:
        return con.execute(sql, params or []).fetchall()


def sample_counts(db: Path) -> dict:
    """Rows in done batches (and distinct ids), all samples rows (and distinct ids), rows of batches not done."""
    done, done_distinct, n, distinct, stray = q(db, """
        SELECT count(*) FILTER (b.status = 'done'), count(DISTINCT s.sample_id) FILTER (b.status = 'done'),
               count(*), count(DISTINCT s.sample_id), count(*) FILTER (b.status IS DISTINCT FROM 'done')
        FROM samples s LEFT JOIN batches b USING (batch_id)""")[0]
    return {"done": done, "done_distinct": done_distinct, "rows": n, "distinct": distinct, "stray": stray}


def doubled_keys(db: Path) -> int:
    """Decision and signal keys written more than once (the extra rows)."""
    return q(db, """SELECT coalesce((SELECT sum(n - 1) FROM (SELECT count(*) AS n FROM decisions
                                     GROUP BY run_id, step, sample_id, reason HAVING n > 1)), 0)
                         + coalesce((SELECT sum(n - 1) FROM (SELECT count(*) AS n FROM signals
                                     GROUP BY run_id, step, sample_id, name HAVING n > 1)), 0)""")[0][0]


def audit_violations(db: Path) -> list[str]:
    from curation.store import Store
    from curation.store.audit import audit

    return audit(Store(db, lock_timeout=600)).violations


def ingest_progress(db: Path, total_lines: int) -> float:
    if not db.exists():
        return 0.0
    return (q(db, "SELECT coalesce(sum(rows_read), 0) FROM batches WHERE status = 'done'")[0][0] or 0) / total_lines


def run_progress(db: Path, shares: dict[str, float]) -> float:
    rows = q(db, """SELECT step, status, rows_in, rows_done, kind FROM run_steps
                    WHERE run_id = (SELECT max(run_id) FROM runs)""")
    done = 0.0
    # a chain's later row steps learn their input when the chain ends: until then the first one's is the measure
    known = max((r[2] or 0 for r in rows if r[4] == "row"), default=0)
    for step, status, rows_in, rows_done, kind in rows:
        if status == "done":
            done += shares.get(step, 0.0)
        elif kind == "row" and (rows_in or known):
            done += shares.get(step, 0.0) * min(1.0, (rows_done or 0) / (rows_in or known))
    return done


def diff_runs(a: Path, b: Path) -> dict[str, int]:
    """Rows of each run table in one store and not the other (both ways; the stores hold one run each)."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
    cols = {"decisions": "sample_id, step, verdict, reason, ref_sample_id",
            "signals": "sample_id, step, name, value, text",
            "texts": "sample_id, version, step, content_hash"}
    out = {}
    for what, c in cols.items():
        table = "sample_texts" if what == "texts" else what
        out[what] = con.execute(
            f"""SELECT (SELECT count(*) FROM (SELECT {c} FROM a.{table} EXCEPT ALL SELECT {c} FROM b.{table}))
                     + (SELECT count(*) FROM (SELECT {c} FROM b.{table} EXCEPT ALL SELECT {c} FROM a.{table}))"""
        ).fetchall()[0][0]
    out["kept"] = abs(con.execute("SELECT count(*) FROM a.kept").fetchall()[0][0]
                      - con.execute("SELECT count(*) FROM b.kept").fetchall()[0][0])
    out["decision_rows"] = con.execute("SELECT count(*) FROM b.decisions").fetchall()[0][0]
    con.close()
    return out


def ids_diff(a: Path, b: Path) -> tuple[int, int]:
    """Sample ids of done batches in ``b`` and not in ``a`` (missing from a), and in ``a`` not in ``b``."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
    ids = "SELECT sample_id FROM {0}.samples JOIN {0}.batches USING (batch_id) WHERE status = 'done'"
    missing = con.execute(f"SELECT count(*) FROM ({ids.format('b')} EXCEPT {ids.format('a')})").fetchall()[0][0]
    extra = con.execute(f"SELECT count(*) FROM ({ids.format('a')} EXCEPT {ids.format('b')})").fetchall()[0][0]
    con.close()
    return missing, extra


# -- the phases ---------------------------------------------------------------------------------------

@dataclass
class Attempt:
    phase: str
    point: float | None  # planned kill point (share of the work); None for the final attempt
    before: float
    slept: float = 0.0
    landed: bool = False
    rc: int | None = None
    wall: float = 0.0
    after: float = 0.0
    violations: int = 0
    doubled: int = 0


@dataclass
class Row:
    """One line of the summary table."""

    what: str
    wall: float | None
    ref: float | None
    lost: int | None
    doubled: int | None
    audit: int | None
    note: str = ""
    problems: list[str] = field(default_factory=list)


def killed_phase(kids: Children, rnd: random.Random, phase: str, n_kills: int, t_ref: float, startup: float,
                 argv: list[str], progress: Callable[[], float], db: Path, attempts: list[Attempt]) -> tuple[Attempt, Proc]:
    """Kill the work at ``n_kills`` points, audit after each kill, then run it to completion (the last attempt)."""
    # stratified: one point in each of n equal parts of the first 95% of the work, so that the kills
    # spread over early, middle and late work (for the run: row steps and global steps alike)
    points = [(i + rnd.random()) / n_kills * 0.95 for i in range(n_kills)]
    work = max(t_ref - startup, 0.1)
    for point in points:
        before = progress()
        a = Attempt(phase, point, before)
        a.slept = startup + max(point - before, 0.02) * work
        p = kids.spawn(argv)
        deadline = p.started + a.slept
        while p.popen.poll() is None and time.perf_counter() < deadline:
            time.sleep(min(0.01, max(0.0, deadline - time.perf_counter())))
        kids.clock.left()
        a.landed = kids.kill(p)
        a.rc, a.wall = p.popen.returncode, p.wall
        a.after = progress()
        a.violations = len(audit_violations(db))
        c = sample_counts(db)
        a.doubled = c["rows"] - c["distinct"] + doubled_keys(db)
        attempts.append(a)
        print(f"  {phase} kill at {point:5.1%} of the work: slept {a.slept:6.2f} s, "
              f"{'landed' if a.landed else 'came after the end'}; committed {before:5.1%} -> {a.after:5.1%}, "
              f"audit violations {a.violations}, doubled {a.doubled}", flush=True)
        if not a.landed:
            break
    final = Attempt(phase, None, progress())
    p = kids.spawn(argv)
    final.rc = kids.wait(p)
    final.wall, final.after = p.wall, progress()
    final.violations = len(audit_violations(db))
    attempts.append(final)
    if final.rc != 0:
        print(f"  {phase}: the final attempt exited {final.rc}:\n{p.stderr()[-3000:]}")
    print(f"  {phase} final attempt: {final.wall:.1f} s from {final.before:.1%} committed, exit {final.rc}", flush=True)
    return final, p


def race(kids: Children, argvs: list[list[str]]) -> tuple[list[Proc], float]:
    t0 = time.perf_counter()
    procs = [kids.spawn(a) for a in argvs]
    for p in procs:
        kids.wait(p)
    return procs, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000, help="generated lines, malformed ones included")
    ap.add_argument("--files", type=int, default=3, choices=(2, 3, 4), help="the lines split into this many files")
    ap.add_argument("--bad-every", type=int, default=1000, help="every N-th line is malformed JSON (0: none)")
    ap.add_argument("--kills", type=int, default=6, help="kill -9 points: half in ingest (rounded up), half in the run")
    ap.add_argument("--seed", type=int, default=0, help="seeds the data and the kill points")
    ap.add_argument("--batch-rows", type=int, default=5000, help="the pipeline's page size (rows per write)")
    ap.add_argument("--chunk-bytes", type=int, default=256 << 10, help="ingest read chunk size")
    ap.add_argument("--write-rows", type=int, default=5000, help="ingest rows per store transaction")
    ap.add_argument("--time-limit", type=float, default=600.0, help="seconds; past it the benchmark stops and fails")
    ap.add_argument("--workdir", type=Path, help="keep the stores, files and child logs here")
    args = ap.parse_args()
    clock = Clock(args.time_limit)
    targets = Targets()
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        kids = Children(work / "logs", clock)
        try:
            return _bench(args, work, kids, clock, targets)
        except TimeLimit as e:
            kids.kill_all()
            targets.check(False, f"{e} after {clock.elapsed():.0f} s: the benchmark did not finish")
            return targets.finish()
        finally:
            kids.kill_all()


def _bench(args: argparse.Namespace, work: Path, kids: Children, clock: Clock, targets: Targets) -> int:
    rnd = random.Random(args.seed)
    t0 = time.perf_counter()
    files, good = generate(work, args.rows, args.files, args.bad_every, args.seed)
    expected, total_lines = sum(good), args.rows
    cfg = work / "light.toml"
    cfg.write_text(PIPELINE.format(batch_rows=args.batch_rows), encoding="utf-8")
    print(f"generated {args.rows:,} lines in {len(files)} files ({expected:,} good) in {time.perf_counter() - t0:.1f} s")
    p = kids.code("import curation.ingest, curation.pipeline.executor, curation.store")
    kids.wait(p)
    startup = p.wall
    print(f"child start-up (imports): {startup:.2f} s", flush=True)
    rows: list[Row] = []
    attempts: list[Attempt] = []

    def ingest_into(db: Path, *paths: Path) -> list[str]:
        return [sys.executable, "-c", INGEST, str(db), str(args.chunk_bytes), str(args.write_rows), *map(str, paths)]

    # 1. ingest, uninterrupted: the reference
    ref_ingest = work / "ref_ingest.duckdb"
    p = kids.spawn(ingest_into(ref_ingest, *files))
    rc = kids.wait(p)
    t_ingest = p.wall
    targets.check(rc == 0, f"the uninterrupted ingest exited {rc}: {p.stderr()[-2000:]}")
    c = sample_counts(ref_ingest)
    print(f"ingest, uninterrupted: {t_ingest:.1f} s, {c['done_distinct']:,} samples", flush=True)
    rows.append(Row("ingest, uninterrupted", t_ingest, None, expected - c["done_distinct"],
                    c["rows"] - c["distinct"], len(audit_violations(ref_ingest))))

    # 2. ingest, killed
    main_db = work / "main.duckdb"
    ingest_argv = ingest_into(main_db, *files)
    n_ing, n_run = (args.kills + 1) // 2, args.kills // 2
    final, _ = killed_phase(kids, rnd, "ingest", n_ing, t_ingest, startup, ingest_argv,
                         lambda: ingest_progress(main_db, total_lines), main_db, attempts)
    c = sample_counts(main_db)
    missing, extra = ids_diff(main_db, ref_ingest)
    ing_att = [a for a in attempts if a.phase == "ingest"]
    landed = sum(a.landed for a in ing_att)
    share = startup + (1 - final.before) * (t_ingest - startup)
    lost = expected - c["done_distinct"]
    rows.append(Row(f"ingest, killed x{landed}: all attempts", sum(a.wall for a in ing_att), t_ingest, lost,
                    c["rows"] - c["distinct"], final.violations,
                    f"ids vs uninterrupted: {missing} missing, {extra} extra; stray rows {c['stray']}"))
    rows.append(Row("ingest recovery: restart to done", final.wall, share, None, None, None,
                    f"from {final.before:.1%} committed; overhead {final.wall - share:+.1f} s"))
    targets.check(final.rc == 0, f"the ingest after the kills exited {final.rc}")
    targets.check(landed >= 1 or n_ing == 0, "no kill landed during ingest")
    targets.check(final.wall <= t_ingest * RECOVERY_FACTOR + RECOVERY_SLACK_S,
                  f"ingest recovery took {final.wall:.1f} s, more than starting over ({t_ingest:.1f} s x "
                  f"{RECOVERY_FACTOR} + {RECOVERY_SLACK_S:.0f} s)")
    targets.check(missing == 0 and extra == 0, f"killed ingest vs uninterrupted: {missing} ids missing, {extra} extra")

    # 3. race (c), two runs at once on a copy: the one that completes is the reference run
    ref_run = work / "ref_run.duckdb"
    copy_store(main_db, ref_run)
    procs, wall = race(kids, [[sys.executable, "-c", RUN, str(ref_run), str(cfg)],
                              [sys.executable, "-m", "curation.cli.app", "--db", str(ref_run), "run", "--config", str(cfg)]])
    rcs = [pp.popen.returncode for pp in procs]
    winner = [pp for pp in procs if pp.popen.returncode == 0]
    loser = [pp for pp in procs if pp.popen.returncode != 0]
    said = " ".join(loser[0].stderr().split()) if loser else ""
    t_run = winner[0].wall if winner else wall
    names_it = bool(winner) and "is in progress" in said and f"pid {winner[0].popen.pid}" in said
    samples_in = q(ref_run, "SELECT coalesce(max(samples_in), 0) FROM runs WHERE status = 'done'")[0][0]
    n_runs = q(ref_run, "SELECT count(*), count(*) FILTER (status = 'done') FROM runs")[0]
    rows.append(Row("race (c): two runs at once", wall, None, expected - samples_in, doubled_keys(ref_run),
                    len(audit_violations(ref_run)), f"exit codes {rcs} (run_pipeline, curate run); "
                    f"runs {n_runs[0]}, done {n_runs[1]}"))
    targets.check(sorted(rcs) == [0, 4], f"race (c): exit codes {rcs}, want one 0 and one 4\n"
                                         f"{[pp.stderr()[-1500:] for pp in procs]}")
    targets.check(names_it, f"race (c): the refused run does not name the running one and its pid: {said[:500]!r}")
    targets.check(n_runs == (1, 1), f"race (c): runs in the store {n_runs}, want (1, 1)")
    print(f"run, uninterrupted (race (c) winner): {t_run:.1f} s; exit codes {rcs}", flush=True)
    steps = q(ref_run, "SELECT step, epoch(finished_at) - epoch(started_at) FROM run_steps ORDER BY position")
    total_steps = sum(s for _, s in steps) or 1.0
    shares = {name: s / total_steps for name, s in steps}
    print("  step shares of the reference run: " + ", ".join(f"{k} {v:.0%}" for k, v in shares.items()), flush=True)

    # 4. the run, killed
    run_argv = [sys.executable, "-c", RUN, str(main_db), str(cfg)]
    final, last = killed_phase(kids, rnd, "run", n_run, t_run, startup, run_argv,
                         lambda: run_progress(main_db, shares), main_db, attempts)
    run_att = [a for a in attempts if a.phase == "run"]
    landed = sum(a.landed for a in run_att)
    share = startup + (1 - final.before) * (t_run - startup)
    samples_in = q(main_db, "SELECT coalesce(max(samples_in), 0) FROM runs WHERE status = 'done'")[0][0]
    dk = doubled_keys(main_db)
    resumed = json.loads(last.stdout().strip().splitlines()[-1]) if final.rc == 0 and last.stdout().strip() else {}
    rows.append(Row(f"run, killed x{landed}: all attempts", sum(a.wall for a in run_att), t_run,
                    expected - samples_in, dk, final.violations,
                    f"final attempt resumed run {resumed.get('run_id')}: {resumed.get('resumed')}"))
    rows.append(Row("run recovery: restart to done", final.wall, share, None, None, None,
                    f"from {final.before:.1%} committed; overhead {final.wall - share:+.1f} s"))
    targets.check(final.rc == 0, f"the run after the kills exited {final.rc}")
    targets.check(landed >= 1 or n_run == 0, "no kill landed during the run")
    targets.check(final.wall <= t_run * RECOVERY_FACTOR + RECOVERY_SLACK_S,
                  f"run recovery took {final.wall:.1f} s, more than starting over ({t_run:.1f} s x "
                  f"{RECOVERY_FACTOR} + {RECOVERY_SLACK_S:.0f} s)")

    # 5. races (a) and (b): two ingests at once into fresh stores
    db_a = work / "race_a.duckdb"
    procs, wall = race(kids, [ingest_into(db_a, files[0]), ingest_into(db_a, files[0])])
    rcs = [pp.popen.returncode for pp in procs]
    reports = [json.loads(pp.stdout().strip().splitlines()[-1]) if pp.stdout().strip() else {} for pp in procs]
    skipped = sum(bool(r.get("skipped")) for r in reports)
    c = sample_counts(db_a)
    rows.append(Row("race (a): one file, two ingests", wall, None, good[0] - c["done_distinct"],
                    c["rows"] - c["distinct"], len(audit_violations(db_a)),
                    f"exit codes {rcs}; loaded by one, skipped by {skipped}"))
    targets.check(rcs == [0, 0], f"race (a): exit codes {rcs}: {[pp.stderr()[-1500:] for pp in procs]}")
    targets.check(skipped == 1, f"race (a): {skipped} of the two ingests skipped the file, want 1: {reports}")
    db_b = work / "race_b.duckdb"
    pair = files[1:3] if len(files) > 2 else files[:2]
    want = sum(good[files.index(f)] for f in pair)
    procs, wall = race(kids, [ingest_into(db_b, pair[0]), ingest_into(db_b, pair[1])])
    rcs = [pp.popen.returncode for pp in procs]
    c = sample_counts(db_b)
    n_done = q(db_b, "SELECT count(*) FROM batches WHERE status = 'done'")[0][0]
    rows.append(Row("race (b): two files at once", wall, None, want - c["done_distinct"], c["rows"] - c["distinct"],
                    len(audit_violations(db_b)), f"exit codes {rcs}; done batches {n_done}"))
    targets.check(rcs == [0, 0], f"race (b): exit codes {rcs}: {[pp.stderr()[-1500:] for pp in procs]}")
    targets.check(n_done == 2, f"race (b): {n_done} done batches, want 2")

    # 6. the killed-and-resumed run against the reference run
    d = diff_runs(main_db, ref_run)
    rows.append(Row("killed run vs reference run", None, None, None, None, None,
                    f"differing: decisions {d['decisions']} (of {d['decision_rows']:,}), signals {d['signals']}, "
                    f"texts {d['texts']}, kept count {d['kept']}"))

    # -- the table -----------------------------------------------------------------------------------
    print()
    print("kills:")
    print(f"{'phase':7} {'point':>6} {'slept s':>8} {'landed':>6} {'committed before -> after':>26} "
          f"{'audit':>5} {'doubled':>7}")
    for a in attempts:
        if a.point is None:
            continue
        print(f"{a.phase:7} {a.point:>6.1%} {a.slept:>8.2f} {'yes' if a.landed else 'no':>6} "
              f"{f'{a.before:.1%} -> {a.after:.1%}':>26} {a.violations:>5} {a.doubled:>7}")
    print()
    print(f"{'scenario':36} {'wall s':>7} {'ref s':>7} {'lost':>5} {'doubled':>7} {'audit':>5}  notes")

    def f(v: float | None, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    for r in rows:
        print(f"{r.what:36} {f(r.wall, '7.1f'):>7} {f(r.ref, '7.1f'):>7} {f(r.lost, 'd'):>5} "
              f"{f(r.doubled, 'd'):>7} {f(r.audit, 'd'):>5}  {r.note}")
    print(f"\n'ref s' of 'all attempts' is the uninterrupted time of the whole work; of 'recovery' the "
          f"uninterrupted time of the share left at the restart (start-up {startup:.1f} s included).")
    print(f"total wall time {clock.elapsed():.0f} s (limit {args.time_limit:.0f} s)")
    for r in rows:
        targets.check(not r.lost, f"{r.what}: {r.lost} rows lost")
        targets.check(not r.doubled, f"{r.what}: {r.doubled} rows or keys doubled")
        targets.check(not r.audit, f"{r.what}: {r.audit} audit violations")
    for a in attempts:
        targets.check(not a.violations, f"{a.phase} kill at {a.point}: {a.violations} audit violations after the kill")
        targets.check(not a.doubled, f"{a.phase} kill at {a.point}: {a.doubled} rows or keys doubled after the kill")
    for what in ("decisions", "signals", "texts", "kept"):
        targets.check(d[what] == 0, f"the killed run and the reference differ in {d[what]} {what}")
    for db in (ref_ingest, main_db, ref_run, db_a, db_b):
        for v in audit_violations(db)[:5]:
            print(f"  audit {db.name}: {v}")
    return targets.finish()


if __name__ == "__main__":
    sys.exit(main())
