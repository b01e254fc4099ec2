"""Exact dedup on the content hash of the cleaned text: GROUP BY in DuckDB, keep the best copy.

``reference_batches`` (see :class:`curation.pipeline.base.ReferenceParams`): samples of these batches are
never dropped and are kept in preference to any copy, whatever its score; new copies of them are dropped,
naming the reference sample.
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
from pydantic import ConfigDict, Field

from curation.duck import query_arrow
from curation.pipeline.base import (
    DECISION_SCHEMA,
    SIGNAL_SCHEMA,
    GlobalStep,
    ReferenceParams,
    StepOutput,
    reference_mask,
)
from curation.pipeline.text import content_hashes


class ExactDedupParams(ReferenceParams):
    """Exact dedup parameters."""

    model_config = ConfigDict(extra="forbid")

    score_signal: str = Field(default="quality_score", description="Signal that ranks copies (higher is kept).")


class ExactDedupStep(GlobalStep):
    """Drop every copy of a content hash but the best one: a reference sample, else the highest quality score,
    else the earliest. Reference samples are never dropped."""

    type_name = "exact_dedup"
    Params = ExactDedupParams
    reads_signals = ("quality_score",)

    def signatures(self, batch: pa.Table) -> pa.Table:
        """Stage 1: (sample_id, content_hash, score, batch_id, row_number) per sample."""
        score_col = self.params.score_signal
        score = batch.column(score_col) if score_col in batch.column_names else pa.nulls(batch.num_rows, pa.float64())
        return pa.table({
            "sample_id": batch.column("sample_id"),
            "content_hash": content_hashes(batch),
            "score": score,
            "batch_id": batch.column("batch_id"),
            "row_number": batch.column("row_number"),
        })

    def decide(self, signatures: pa.Table) -> StepOutput:
        """Stage 2: group by content hash; every copy but the keeper (and reference samples) is dropped, naming it."""
        import duckdb

        sig = signatures.append_column(
            "is_ref", reference_mask(signatures.column("batch_id"), self.params.reference_batches))
        con = duckdb.connect()
        try:
            con.register("sig", sig)
            con.execute("""
                CREATE TEMP TABLE groups AS
                SELECT content_hash, count(*) AS copies, count(*) FILTER (WHERE is_ref) AS refs,
                       arg_min(sample_id, (NOT is_ref, -coalesce(score, -1e308), batch_id, row_number)) AS keeper
                FROM sig GROUP BY content_hash""")
            decisions = query_arrow(con, """
                SELECT s.sample_id, 'drop' AS verdict,
                       'exact duplicate of ' || CASE WHEN g.refs > 0 THEN 'reference sample ' ELSE '' END || g.keeper
                       || ' (same text after cleaning; ' || g.copies || ' copies, '
                       || CASE WHEN g.refs > 1 THEN g.refs || ' reference copies kept)' ELSE 'one kept)' END AS reason,
                       g.keeper AS ref_sample_id, CAST(NULL AS DOUBLE) AS score
                FROM sig s JOIN groups g USING (content_hash)
                WHERE g.copies > 1 AND s.sample_id <> g.keeper AND NOT s.is_ref
                ORDER BY s.batch_id, s.row_number""")
            signals = query_arrow(con, """
                SELECT sample_id, 'content_hash' AS name, CAST(NULL AS DOUBLE) AS value, content_hash AS text FROM sig
                UNION ALL
                SELECT s.sample_id, 'duplicate_count', g.copies::DOUBLE, NULL
                FROM sig s JOIN groups g USING (content_hash) WHERE g.copies > 1""")
            counters = Counter({"groups": int(con.execute("SELECT count(*) FROM groups WHERE copies > 1").fetchall()[0][0])})
        finally:
            con.close()
        return StepOutput(decisions=decisions.cast(DECISION_SCHEMA), signals=signals.cast(SIGNAL_SCHEMA), counters=counters)
