"""Near-duplicate dedup with MinHash LSH (see :mod:`curation.dedup.minhash`).

``compare = "sample"`` (default): instruction, input, answer and dialogue turns (reasoning only with
``include_reasoning``); every cluster keeps its best sample (highest ``quality_score``, then the
earliest) and the others are dropped, naming the kept sample and their Jaccard similarity to it.
``compare = "instruction"``: the same question asked more than once; members of a cluster whose answers
differ are flagged (conflicting answers), not dropped.
``reference_batches``: samples of these batches (an approved snapshot's, for incremental batches) are
never dropped and are kept in preference; new samples that duplicate them are dropped.
Signals: ``near_dup_cluster`` (text = the cluster's kept sample, value = cluster size).
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from curation.dedup.minhash import MinHashParams, clusters, shingles_query, signature_table
from curation.duck import query_arrow, scratch
from curation.pipeline.base import (
    DECISION_SCHEMA,
    SIGNAL_SCHEMA,
    GlobalStep,
    StepOutput,
)


class NearDedupParams(BaseModel):
    """MinHash near-dedup parameters."""

    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(default=0.6, gt=0, le=1, description="Jaccard similarity from which texts are near duplicates.")
    num_perm: int = Field(default=128, ge=16, le=1024, description="MinHash permutations.")
    word_ngram: int = Field(default=3, ge=1, description="Word n-gram size for space-delimited text.")
    char_ngram: int = Field(default=3, ge=1, description="Character n-gram size for Chinese / Japanese / Korean text.")
    cjk_share: float = Field(default=0.3, ge=0, le=1, description="Share of CJK letters from which a text is shingled by characters.")
    compare: Literal["sample", "instruction", "output"] = Field(
        default="sample", description="What is compared: the whole sample, the instruction alone (conflicting answers) or the answer.")
    include_reasoning: bool = Field(default=False, description="Compare reasoning traces too.")
    reference_batches: list[int] = Field(default_factory=list, description="Batches whose samples are a reference: never dropped.")
    score_signal: str = Field(default="quality_score", description="Signal that ranks copies (higher is kept).")
    seed: int = Field(default=1, description="Seed of the hash functions.")
    fn_weight: float = Field(default=0.8, gt=0, lt=1, description="Weight of missed pairs against extra candidates (1 - fn_weight) when choosing bands.")

    def minhash(self) -> MinHashParams:
        return MinHashParams(threshold=self.threshold, num_perm=self.num_perm, word_ngram=self.word_ngram,
                             char_ngram=self.char_ngram, cjk_share=self.cjk_share, seed=self.seed,
                             fp_weight=1 - self.fn_weight, fn_weight=self.fn_weight)


def _turns(role_filter: str, with_reasoning: bool) -> str:
    content = "coalesce(m.content, '')" + (" || ' ' || coalesce(m.reasoning, '')" if with_reasoning else "")
    return (f"coalesce(array_to_string(list_transform(list_filter(messages, lambda m: {role_filter}), "
            f"lambda m: {content}), chr(10)), '')")


def compared_text_sql(compare: str, include_reasoning: bool) -> str:
    """SQL over a batch: the text a sample is compared by."""
    rsn = ", reasoning" if include_reasoning else ""
    if compare == "instruction":
        return f"CASE WHEN messages IS NULL THEN concat_ws(chr(10), instruction, input) ELSE {_turns(chr(39) + 'user' + chr(39) + ' = m.role', False)} END"
    if compare == "output":
        return f"CASE WHEN messages IS NULL THEN concat_ws(chr(10), output{rsn}) ELSE {_turns('m.role = ' + chr(39) + 'assistant' + chr(39), include_reasoning)} END"
    return (f"CASE WHEN messages IS NULL THEN concat_ws(chr(10), system, instruction, input, output{rsn}) "
            f"ELSE concat_ws(chr(10), system, {_turns('true', include_reasoning)}) END")


class NearDedupStep(GlobalStep):
    """MinHash LSH near-duplicate clusters; keep the best of each (or flag conflicting answers)."""

    type_name = "near_dedup"
    Params = NearDedupParams
    reads_signals = ("quality_score",)

    def __init__(self, name: str | None = None, params: dict | None = None) -> None:
        super().__init__(name, params)
        self.mh = self.params.minhash()
        self.mh.bands()  # computed once, cached below
        self._text = compared_text_sql(self.params.compare, self.params.include_reasoning)
        self._answer = compared_text_sql("output", self.params.include_reasoning)

    def signatures(self, batch: pa.Table) -> pa.Table:
        """Stage 1, per batch: band keys and distinct shingle hashes per sample (plus what ranks it)."""
        con = scratch()
        try:
            con.register("b", batch)
            src = f"(SELECT sample_id, row_number, {self._text} AS compared, " \
                  f"md5(regexp_replace(lower(trim({self._answer})), '\\s+', ' ', 'g')) AS answer_hash FROM b)"
            res = query_arrow(con, f"SELECT shingles, answer_hash FROM ({shingles_query(src, 'compared', self.mh, 'sample_id')}) "
                                   f"ORDER BY row_number")
        finally:
            con.close()
        bands, shingles = signature_table(res.column("shingles").combine_chunks(), self.mh)
        score_col = self.params.score_signal
        score = batch.column(score_col) if score_col in batch.column_names else pa.nulls(batch.num_rows, pa.float64())
        return pa.table({
            "sample_id": batch.column("sample_id"), "batch_id": batch.column("batch_id"),
            "row_number": batch.column("row_number"), "score": score.cast(pa.float64()),
            "answer_hash": res.column("answer_hash"), "bands": bands, "shingles": shingles,
        })

    def decide(self, signatures: pa.Table) -> StepOutput:
        """Stage 2: candidates by band, verified by Jaccard, clustered; decisions per cluster member."""
        n = signatures.num_rows
        table = pa.table({"idx": pa.array(np.arange(n), pa.int64()), "bands": signatures.column("bands"),
                          "shingles": signatures.column("shingles")})
        con = scratch()
        try:
            found, edges = clusters(table, self.mh, con)
            counters: Counter[str] = Counter(candidates_verified=edges.num_rows)
            if found.num_rows == 0:
                return StepOutput(counters=counters)
            ref = pc.is_in(signatures.column("batch_id"),
                           pa.array(self.params.reference_batches, signatures.column("batch_id").type)) \
                if self.params.reference_batches else pa.array(np.zeros(n, dtype=bool))
            meta = signatures.select(["sample_id", "batch_id", "row_number", "score", "answer_hash"]).append_column(
                "idx", pa.array(np.arange(n), pa.int64())).append_column("is_ref", ref)
            con.register("meta", meta)
            con.register("found", found)
            con.register("mh", table)
            members = query_arrow(con, """
                WITH m AS (
                    SELECT f.cluster, meta.* FROM found f JOIN meta USING (idx)
                ), k AS (
                    SELECT cluster, count(*) AS size, count(DISTINCT answer_hash) AS answers,
                           arg_min(idx, (NOT is_ref, -coalesce(score, -1e308), batch_id, row_number)) AS keeper
                    FROM m GROUP BY cluster
                )
                SELECT m.sample_id, m.idx, m.is_ref, k.size, k.answers, k.keeper, kk.sample_id AS keeper_id,
                       kk.is_ref AS keeper_is_ref,
                       CASE WHEN m.idx = k.keeper THEN 1.0 ELSE
                           len(list_intersect(x.shingles, y.shingles)) / (len(x.shingles) + len(y.shingles)
                               - len(list_intersect(x.shingles, y.shingles)))::DOUBLE END AS jaccard
                FROM m JOIN k USING (cluster) JOIN meta kk ON kk.idx = k.keeper
                JOIN mh x ON x.idx = m.idx JOIN mh y ON y.idx = k.keeper
                ORDER BY m.batch_id, m.row_number""")
        finally:
            con.close()
        return self._decisions(members, counters)

    def _decisions(self, members: pa.Table, counters: Counter[str]) -> StepOutput:
        rows = members.to_pylist()
        d_ids, d_verdicts, d_reasons, d_refs, d_scores = [], [], [], [], []
        for r in rows:
            if r["idx"] == r["keeper"]:
                continue
            if self.params.compare == "instruction":
                if r["answers"] < 2:
                    continue
                verdict = "flag"
                reason = (f"conflicting answers: same instruction as {r['keeper_id']} (Jaccard {r['jaccard']:.2f}) "
                          f"with a different answer; {r['size']} samples, {r['answers']} different answers")
            else:
                if r["is_ref"]:
                    continue  # a reference sample is never dropped
                verdict = "drop"
                what = "reference sample" if r["keeper_is_ref"] else "sample"
                reason = (f"near duplicate of {what} {r['keeper_id']} (Jaccard {r['jaccard']:.2f}; "
                          f"cluster of {r['size']}, one kept)")
            d_ids.append(r["sample_id"])
            d_verdicts.append(verdict)
            d_reasons.append(reason)
            d_refs.append(r["keeper_id"])
            d_scores.append(r["jaccard"])
        if self.params.compare == "instruction":
            # the kept sample of a conflicting cluster is flagged too: a reviewer decides which answer is right
            for r in rows:
                if r["idx"] == r["keeper"] and r["answers"] >= 2:
                    d_ids.append(r["sample_id"])
                    d_verdicts.append("flag")
                    d_reasons.append(f"conflicting answers: {r['size']} samples ask this instruction with "
                                     f"{r['answers']} different answers")
                    d_refs.append(None)
                    d_scores.append(1.0)
        counters.update(clusters=len({r["keeper"] for r in rows}), in_clusters=len(rows),
                        **{"dropped" if self.params.compare != "instruction" else "flagged": len(d_ids)})
        decisions = pa.table([pa.array(d_ids, pa.string()), pa.array(d_verdicts, pa.string()),
                              pa.array(d_reasons, pa.string()), pa.array(d_refs, pa.string()),
                              pa.array(d_scores, pa.float64())], schema=DECISION_SCHEMA)
        signals = pa.table([pa.array([r["sample_id"] for r in rows], pa.string()),
                            pa.array(["near_dup_cluster"] * len(rows), pa.string()),
                            pa.array([float(r["size"]) for r in rows], pa.float64()),
                            pa.array([r["keeper_id"] for r in rows], pa.string())], schema=SIGNAL_SCHEMA)
        return StepOutput(decisions=decisions, signals=signals, counters=counters)
