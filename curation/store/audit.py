"""The store's invariants, checked on the stored rows: nothing lost, nothing doubled.

- every batch marked done balances: rows read = rows loaded + rows quarantined, and the rows it
  claims are there (its new samples in ``samples``, its quarantined rows in ``quarantine``);
- a batch that is not done holds no rows that a run could see (runs read done batches only);
- each sample id is in ``samples`` once;
- every run marked done balances: its input = kept + dropped, every dropped sample in its input;
- no decision twice per (run, step, sample, reason), no signal twice per (run, step, sample, name).

Used by the tests after every fault scenario, by the fault-injection benchmark, and by ``curate check``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from curation.store.store import Store


@dataclass
class AuditResult:
    """What was checked and what failed (one line per violation)."""

    batches: int = 0
    runs: int = 0
    samples: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


def audit(store: Store) -> AuditResult:
    """Check the store's invariants; never writes."""
    res = AuditResult()
    with store.reader() as con:
        def q(sql: str, params: list | None = None) -> list[tuple]:
            return con.execute(sql, params or []).fetchall()

        res.batches = q("SELECT count(*) FROM batches WHERE status = 'done'")[0][0]
        res.samples = q("SELECT count(*) FROM samples")[0][0]
        for bid, read, loaded, quarantined, present, in_samples, in_quarantine in q(
            """SELECT b.batch_id, b.rows_read, b.rows_loaded, b.rows_quarantined, b.rows_already_present,
                      (SELECT count(*) FROM samples s WHERE s.batch_id = b.batch_id),
                      (SELECT count(*) FROM quarantine x
                       WHERE x.batch_id = b.batch_id AND (x.row_number IS NOT NULL OR x.line IS NOT NULL))
               FROM batches b WHERE b.status = 'done' ORDER BY 1"""
        ):
            if read != loaded + quarantined:
                res.violations.append(f"batch {bid}: read {read} != loaded {loaded} + quarantined {quarantined}")
            if in_samples != loaded - present:
                res.violations.append(f"batch {bid}: {in_samples} rows in samples, but {loaded - present} new rows counted")
            if in_quarantine != quarantined:
                res.violations.append(f"batch {bid}: {in_quarantine} rows in quarantine, but {quarantined} counted")
        n, distinct = q("SELECT count(*), count(DISTINCT sample_id) FROM samples")[0]
        if n != distinct:
            res.violations.append(f"samples: {n} rows but {distinct} distinct sample ids ({n - distinct} doubled)")
        res.runs = q("SELECT count(*) FROM runs WHERE status = 'done'")[0][0]
        for rid, samples_in, kept, dropped, visible in q(
            """SELECT r.run_id, r.samples_in, (SELECT count(*) FROM run_kept(r.run_id)),
                      (SELECT count(DISTINCT d.sample_id) FROM decisions d WHERE d.run_id = r.run_id AND d.verdict = 'drop'),
                      (SELECT count(*) FROM run_texts(r.run_id))
               FROM runs r WHERE r.status = 'done' ORDER BY 1"""
        ):
            if samples_in != kept + dropped:
                res.violations.append(f"run {rid}: input {samples_in} != kept {kept} + dropped {dropped}")
            if visible != samples_in:
                res.violations.append(f"run {rid}: {visible} samples visible now, {samples_in} when it ran")
        for rid, step, n_keys in q(
            """SELECT run_id, step, count(*) FROM (SELECT run_id, step FROM decisions
               GROUP BY run_id, step, sample_id, reason HAVING count(*) > 1) GROUP BY 1, 2 ORDER BY 1, 2"""
        ):
            res.violations.append(f"run {rid}, step {step}: {n_keys} decision(s) written more than once")
        for rid, step, n_keys in q(
            """SELECT run_id, step, count(*) FROM (SELECT run_id, step FROM signals
               GROUP BY run_id, step, sample_id, name HAVING count(*) > 1) GROUP BY 1, 2 ORDER BY 1, 2"""
        ):
            res.violations.append(f"run {rid}, step {step}: {n_keys} signal(s) written more than once")
    return res
