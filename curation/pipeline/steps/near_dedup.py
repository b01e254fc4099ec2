"""Near-duplicate dedup with MinHash LSH (see :mod:`curation.dedup.minhash`).

``compare = "sample"`` (default): instruction, input, answer and dialogue turns (reasoning only with
``include_reasoning``, the system prompt only with ``include_system``: it is usually a template). A pair
is a near duplicate only when, beyond the whole sample, its instructions and its answers are each
similar (``both_parts``; the answers need not be when the instructions are the same): different questions
with one templated answer (an identity set) or one prompt template filled with different material are not
copies. An instruction sample's parts are compared by their true Jaccard, from slices of its own shingles
(``_slices``); a dialogue's (and a pair's whose system prompts differ) by MinHash sketches of the parts. Every cluster keeps its best sample (highest ``quality_score``, then the
earliest) and the others are dropped, naming the kept sample and their Jaccard similarity to it.
``compare = "instruction"``: the same question asked more than once; members of a cluster whose answers
differ are flagged (conflicting answers), not dropped.
``reference_batches`` (see :class:`curation.pipeline.base.ReferenceParams`, the same in every dedup step):
samples of these batches (an approved snapshot's, for incremental batches) are never dropped and are kept
in preference; new samples that duplicate them are dropped, naming the reference sample.
Signals: ``near_dup_cluster`` (text = the cluster's kept sample, value = cluster size).
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import ConfigDict, Field

from curation.dedup.minhash import (
    MinHashParams,
    clusters,
    components,
    estimate,
    fixed_list,
    jaccard,
    signature_table,
    signatures,
)
from curation.dedup.shingles import shingle_lists, token_counts
from curation.duck import in_parts, query_arrow, scratch
from curation.pipeline.base import (
    DECISION_SCHEMA,
    SIGNAL_SCHEMA,
    GlobalStep,
    ReferenceParams,
    StepOutput,
    reference_mask,
)

PARTS = ("instruction", "output")  # what the parts check compares (both_parts)
# the columns each part's text is made of (see _part_text), all that is read back for it
PART_COLUMNS = {"instruction": ("system", "instruction", "input", "messages"),
                "output": ("output", "reasoning", "messages")}
SAME_INSTRUCTION = 0.9  # estimated Jaccard from which two instructions are the same question


class NearDedupParams(ReferenceParams):
    """MinHash near-dedup parameters."""

    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(
        default=0.6,
        gt=0,
        le=1,
        description="Jaccard similarity from which texts are near duplicates.",
    )
    num_perm: int = Field(
        default=128, ge=16, le=1024, description="MinHash permutations."
    )
    word_ngram: int = Field(
        default=3, ge=1, description="Word n-gram size for space-delimited text."
    )
    char_ngram: int = Field(
        default=3,
        ge=1,
        description="Character n-gram size for Chinese / Japanese / Korean text. 3 makes a Chinese near copy as "
        "easy to find as an English one with the same share of words changed, short texts included; 2 finds far "
        "more Chinese copies than English ones at the same threshold (20 to 30 points more recall, on short "
        "and long texts alike, in the near-dedup benchmark).",
    )
    cjk_share: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="Share of CJK letters from which a text is shingled by characters.",
    )
    compare: Literal["sample", "instruction", "output"] = Field(
        default="sample",
        description="What is compared: the whole sample, the instruction alone (conflicting answers) or the answer.",
    )
    include_reasoning: bool = Field(
        default=False, description="Compare reasoning traces too."
    )
    include_system: bool = Field(
        default=False,
        description="Compare system prompts too (a system prompt is usually a template shared by many samples).",
    )
    both_parts: float | None = Field(
        default=0.5,
        ge=0,
        le=1,
        description="With compare = \"sample\": a pair is a near duplicate only when its instructions are at least this "
        "similar (Jaccard; estimated by MinHash for dialogues) and so are its answers, unless the instructions are the same (the same "
        "question answered twice in other words is a copy). Different questions with one templated answer (an "
        "identity set), or one prompt template filled with different material, are not copies. None: the whole "
        "sample alone decides.",
    )
    score_signal: str = Field(
        default="quality_score",
        description="Signal that ranks copies (higher is kept).",
    )
    seed: int = Field(default=1, description="Seed of the hash functions.")
    fn_weight: float = Field(
        default=0.8,
        gt=0,
        lt=1,
        description="Weight of missed pairs against extra candidates (1 - fn_weight) when choosing bands.",
    )

    def minhash(self) -> MinHashParams:
        return MinHashParams(
            threshold=self.threshold,
            num_perm=self.num_perm,
            word_ngram=self.word_ngram,
            char_ngram=self.char_ngram,
            cjk_share=self.cjk_share,
            seed=self.seed,
            fp_weight=1 - self.fn_weight,
            fn_weight=self.fn_weight,
        )


def _turns(role_filter: str, with_reasoning: bool) -> str:
    content = "coalesce(m.content, '')" + (
        " || ' ' || coalesce(m.reasoning, '')" if with_reasoning else ""
    )
    return (
        f"coalesce(array_to_string(list_transform(list_filter(messages, lambda m: {role_filter}), "
        f"lambda m: {content}), chr(10)), '')"
    )


def compared_text_sql(compare: str, include_reasoning: bool, include_system: bool = True) -> str:
    """SQL over a batch: the text a sample is compared by."""
    rsn = ", reasoning" if include_reasoning else ""
    if compare == "instruction":
        return f"CASE WHEN messages IS NULL THEN concat_ws(chr(10), instruction, input) ELSE {_turns(chr(39) + 'user' + chr(39) + ' = m.role', False)} END"
    if compare == "output":
        return f"CASE WHEN messages IS NULL THEN concat_ws(chr(10), output{rsn}) ELSE {_turns('m.role = ' + chr(39) + 'assistant' + chr(39), include_reasoning)} END"
    system = "system, " if include_system else ""
    return (
        f"CASE WHEN messages IS NULL THEN concat_ws(chr(10), {system}instruction, input, output{rsn}) "
        f"ELSE concat_ws(chr(10), {system}{_turns('m.role <> ' + chr(39) + 'system' + chr(39) if not include_system else 'true', include_reasoning)}) END"
    )


# samples whose text decide() reads back at a time: a set of repeats puts nearly every sample in a pair, and
# 285k samples' texts and shingles at once raised the benchmark's peak by 1.8 GiB
READ_BACK_ROWS = 20_000


class NearDedupStep(GlobalStep):
    """MinHash LSH near-duplicate clusters; keep the best of each (or flag conflicting answers)."""

    type_name = "near_dedup"
    Params = NearDedupParams
    reads_signals = ("quality_score",)

    def __init__(self, name: str | None = None, params: dict | None = None) -> None:
        super().__init__(name, params)
        self.mh = self.params.minhash()
        self.mh.bands()  # computed once, cached below
        self._text = compared_text_sql(
            self.params.compare, self.params.include_reasoning, self.params.include_system
        )
        self._answer = compared_text_sql("output", self.params.include_reasoning)
        self._parts = self.params.compare == "sample" and self.params.both_parts is not None

    def signatures(self, batch: pa.Table) -> pa.Table:
        """Stage 1, per batch: band keys, signature sketch and shingle hashes per sample (plus what ranks it)."""
        # the answer only matters to "instruction" (conflicting answers): not normalised and hashed otherwise
        answer = (
            f"hash(regexp_replace(lower(trim({self._answer})), '\\s+', ' ', 'g'))"
            if self.params.compare == "instruction"
            else "NULL::UBIGINT"
        )
        # with the parts check, a hash of each part: a pair whose instructions (or answers) are the same text
        # needs no sketch of that part (most near-copy pairs share one part)
        hashes = (
            "".join(f", hash({self._part_text(part)}) AS {part}_hash" for part in PARTS) if self._parts else ""
        )
        if self._parts and not self.params.include_system:  # the instruction part has the system prompt
            hashes += ", hash(coalesce(system, '')) AS system_hash"
        con = scratch()
        try:
            con.register("b", in_parts(batch, ordinal="__ord"))
            res = query_arrow(
                con, f"SELECT lower({self._text}) AS compared, {answer} AS answer_hash{hashes} FROM b ORDER BY __ord"
            )
        finally:
            con.close()
        by_char = np.zeros(batch.num_rows, np.bool_)
        sig = signature_table(
            self._shingles(res.column("compared"), batch.column("sample_id"), by_char), self.mh, copy=False
        )
        res = res.drop_columns(["compared"])
        # the parts' sketches matter only to the few pairs that are near copies as a whole: under an executor,
        # decide() reads those samples' text again (texts_for) instead of every sample's parts being shingled
        parts = self._part_sketches(batch) if self._parts and self.texts_for is None else {}
        score_col = self.params.score_signal
        score = (
            batch.column(score_col)
            if score_col in batch.column_names
            else pa.nulls(batch.num_rows, pa.float64())
        )
        # copies: a column of an imported Arrow result keeps the whole result alive (the page with its texts,
        # the query result with its shingle lists), and these tables stay until the last page is read
        keep = pa.table(
            {
                "sample_id": batch.column("sample_id"),
                "batch_id": batch.column("batch_id"),
                "row_number": batch.column("row_number"),
                "score": score.cast(pa.float64()),
                "answer_hash": res.column("answer_hash"),
            }
        )
        keep = keep.take(pa.array(np.arange(batch.num_rows)))
        keep = (
            keep.append_column("bands", sig.column("bands"))
            .append_column("sketch", sig.column("sketch"))
            .append_column("shingles", sig.column("shingles"))
        )
        for name, col in parts.items():
            keep = keep.append_column(name, col)
        if self._parts:
            for part in PARTS:
                keep = keep.append_column(f"{part}_hash", res.column(f"{part}_hash").combine_chunks())
            keep = keep.append_column("split", pa.array(self._split(batch, by_char), pa.int32()))
            keep = keep.append_column("by_char", pa.array(by_char))
            if "system_hash" in res.column_names:
                keep = keep.append_column("system_hash", res.column("system_hash").combine_chunks())
        return keep

    def _shingles(self, lowered: pa.ChunkedArray, keys: pa.ChunkedArray,
                  by_char: np.ndarray | None = None) -> pa.ListArray:
        """The shingle hashes of lower-cased texts (``shingles_query``'s lists, by the compiled loop); ``by_char``
        is filled with whether each was shingled by characters."""
        return shingle_lists(lowered, keys, self.mh.word_ngram, self.mh.char_ngram, self.mh.cjk_share,
                             by_char=by_char)

    def _split(self, batch: pa.Table, by_char: np.ndarray) -> np.ndarray:
        """Per sample, how many tokens of its compared text come before the answer (-1 for a dialogue, whose
        turns alternate): the instruction part's shingles are then the first ones of the sample's, the answer's
        the last ones (see _slices)."""
        cols = (["system"] if self.params.include_system else []) + ["instruction", "input"]
        split = token_counts([batch.column(c) for c in cols], by_char)
        split[pc.is_valid(batch.column("messages")).to_numpy(zero_copy_only=False)] = -1
        return split

    def _slices(self, signatures: pa.Table, part: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(first, count, ok) per sample: where one part's own shingles lie in the sample's list.

        The compared text of an instruction sample is its instruction part, a line break and its answer part
        (``compared_text_sql``), so with ``split`` tokens before the answer and n-grams of n tokens, the first
        ``split - n + 1`` shingles are the instruction's and those from ``split`` on are the answer's; the
        n-grams across the break are neither's. ``ok``: the part has n tokens or more (a shorter one is one
        shingle of all its tokens, not in the list) and the sample is not a dialogue."""
        split = signatures.column("split").to_numpy().astype(np.int64)
        n = np.where(signatures.column("by_char").to_numpy(zero_copy_only=False),
                     self.mh.char_ngram, self.mh.word_ngram).astype(np.int64)
        size = pc.list_value_length(signatures.column("shingles")).to_numpy().astype(np.int64)
        if part == "instruction":
            return np.zeros_like(split), split - n + 1, split >= n
        # a list of one shingle may be a text of fewer than n tokens: its tokens are not known from its size
        return split, size - split, (split >= 0) & (size >= 2) & (size - split >= 1)

    def _slice_similarity(self, signatures: pa.Table, part: str, a: np.ndarray,
                          b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(which pairs, their Jaccard): the pairs ``(a, b)`` whose part is compared from slices of the samples'
        own shingles (see _slices), with the part's true Jaccard, no text read back. A pair qualifies when both
        samples' slices are known, both were shingled the same way (by words or by characters) and, for the
        instruction without ``include_system``, their system prompts are the same."""
        first, count, ok = self._slices(signatures, part)
        by_char = signatures.column("by_char").to_numpy(zero_copy_only=False)
        pick = ok[a] & ok[b] & (by_char[a] == by_char[b])
        if part == "instruction" and "system_hash" in signatures.column_names:
            h = signatures.column("system_hash").to_numpy()
            pick &= h[a] == h[b]
        if not pick.any():
            return pick, np.zeros(0)
        return pick, jaccard(signatures.column("shingles"), a[pick], b[pick], spans=(first, count))

    def _part_text(self, part: str) -> str:
        """SQL over a batch: the text of one part (instruction or output) that the parts check compares."""
        text = compared_text_sql(part, self.params.include_reasoning)
        # the system prompt says which task: one text under two tasks is two samples
        return f"concat_ws(chr(10), system, {text})" if part == "instruction" else text

    def _part_sketches(self, batch: pa.Table, parts: tuple[str, ...] = PARTS) -> dict[str, pa.Array]:
        """1-byte MinHash sketches of the instruction and of the answer (``parts``), and whether each is empty."""
        out: dict[str, pa.Array] = {}
        con = scratch()
        try:
            # rows in the batch's order (a batch read back by texts_for spans batches: row numbers repeat)
            con.register("b", in_parts(batch, ordinal="__ord"))
            for part in parts:
                res = query_arrow(
                    con,
                    f"SELECT lower(c) AS compared, length(trim(c)) = 0 AS empty "
                    f"FROM (SELECT __ord, {self._part_text(part)} AS c FROM b) ORDER BY __ord",
                )
                # the lowest byte of each signature value, as signature_table's sketch (no band keys: parts are
                # only compared, never bucketed)
                sketch = signatures(self._shingles(res.column("compared"), batch.column("sample_id")), self.mh)
                out[f"{part}_sketch"] = pa.FixedSizeListArray.from_arrays(
                    pa.array(sketch.astype(np.uint8).reshape(-1), pa.uint8()), self.params.num_perm)
                out[f"{part}_empty"] = pc.fill_null(res.column("empty"), True).combine_chunks()
        finally:
            con.close()
        return out

    def _split_templates(self, signatures: pa.Table, edges: pa.Table) -> tuple[pa.Table, int]:
        """The verified edges whose instructions and answers are each similar enough (see ``both_parts``)."""
        a = edges.column("a").to_numpy()
        b = edges.column("b").to_numpy()
        close: dict[str, np.ndarray] = {}
        same_instruction = np.zeros(len(a), dtype=bool)
        for part in PARTS:
            # a part is compared only where it decides: the answers of pairs with close, different instructions
            asked = np.ones(len(a), dtype=bool) if part == "instruction" else close["instruction"] & ~same_instruction
            sim, both_empty = self._part_similarity(signatures, part, a, b, asked)
            close[part] = (sim >= self.params.both_parts) | both_empty
            if part == "instruction":
                same_instruction = (sim >= SAME_INSTRUCTION) | both_empty
        ok = close["instruction"] & (close["output"] | same_instruction)
        return edges.filter(pa.array(ok)), int((~ok).sum())

    def _part_similarity(self, signatures: pa.Table, part: str, a: np.ndarray, b: np.ndarray,
                         asked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Estimated Jaccard of one part of the pairs ``(a, b)`` where ``asked`` (0 elsewhere), and whether both are
        empty. The same text is similarity 1 without a sketch; the others' sketches come from signatures() or,
        under an executor, from their text read back, READ_BACK_ROWS samples at a time."""
        sim = np.zeros(len(a), dtype=np.float64)
        both_empty = np.zeros(len(a), dtype=bool)
        h = signatures.column(f"{part}_hash").to_numpy()
        same = asked & (h[a] == h[b])
        sim[same] = 1.0
        todo = np.flatnonzero(asked & ~same)
        if len(todo) and "split" in signatures.column_names:
            pick, j = self._slice_similarity(signatures, part, a[todo], b[todo])
            sim[todo[pick]] = j
            todo = todo[~pick]
        if not len(todo):
            return sim, both_empty
        ta, tb = a[todo], b[todo]
        if f"{part}_sketch" in signatures.column_names:  # made by signatures() for every sample
            sketch = fixed_list(signatures.column(f"{part}_sketch"), self.params.num_perm, np.uint8)
            empty = signatures.column(f"{part}_empty").to_numpy(zero_copy_only=False)
            la, lb = ta, tb
        else:
            rows = np.unique(np.concatenate([ta, tb]))
            sketch, empty = self._read_back_sketches(signatures.column("sample_id").take(pa.array(rows)), part)
            la, lb = np.searchsorted(rows, ta), np.searchsorted(rows, tb)
        sim[todo] = estimate(sketch, la, lb)
        both_empty[todo] = empty[la] & empty[lb]
        return sim, both_empty

    def _read_back_sketches(self, ids: pa.ChunkedArray | pa.Array, part: str) -> tuple[np.ndarray, np.ndarray]:
        """One part's sketches and empty flags of the samples ``ids``, in that order, from their text read through
        the executor's ``texts_for`` (READ_BACK_ROWS samples at a time)."""
        if self.texts_for is None:
            raise RuntimeError("near_dedup: the parts' sketches were not made and there is no text to make them from")
        ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
        sketch = np.zeros((len(ids), self.params.num_perm), dtype=np.uint8)
        empty = np.zeros(len(ids), dtype=bool)
        seen = np.zeros(len(ids), dtype=bool)
        for texts in self.texts_for(ids, READ_BACK_ROWS, PART_COLUMNS[part]):
            at = pc.index_in(texts.column("sample_id"), value_set=ids)
            if at.null_count:
                raise RuntimeError(f"near_dedup: {at.null_count} samples read back that were not asked for")
            at = at.to_numpy(zero_copy_only=False)
            got = self._part_sketches(texts, (part,))
            sketch[at] = fixed_list(got[f"{part}_sketch"], self.params.num_perm, np.uint8)
            empty[at] = got[f"{part}_empty"].to_numpy(zero_copy_only=False)
            seen[at] = True
        if not seen.all():
            raise RuntimeError(f"near_dedup: no text for {int((~seen).sum())} of {len(ids)} samples of the run")
        return sketch, empty

    def decide(self, signatures: pa.Table) -> StepOutput:
        """Stage 2: candidates by band, verified by Jaccard, clustered; decisions per cluster member."""
        n = signatures.num_rows
        found, edges = clusters(
            signatures.select(["bands", "sketch", "shingles"]), self.mh
        )
        counters: Counter[str] = Counter(candidates_verified=edges.num_rows)
        if self._parts and edges.num_rows:
            edges, split = self._split_templates(signatures, edges)
            if split:
                counters["pairs_one_part_differs"] = split
                idx, cluster = components(n, edges.column("a").to_numpy(), edges.column("b").to_numpy())
                found = pa.table({"idx": pa.array(idx, pa.int64()), "cluster": pa.array(cluster, pa.int64())})
        if found.num_rows == 0:
            return StepOutput(counters=counters)
        ref = reference_mask(signatures.column("batch_id"), self.params.reference_batches)
        meta = (
            signatures.select(
                ["sample_id", "batch_id", "row_number", "score", "answer_hash"]
            )
            .append_column("idx", pa.array(np.arange(n), pa.int64()))
            .append_column("is_ref", ref)
        )
        con = scratch()
        try:
            con.register("meta", meta)
            con.register("found", found)
            members = query_arrow(
                con,
                """
                WITH m AS (
                    SELECT f.cluster, meta.* FROM found f JOIN meta USING (idx)
                ), k AS (
                    SELECT cluster, count(*) AS size, count(DISTINCT answer_hash) AS answers,
                           arg_min(idx, (NOT is_ref, -coalesce(score, -1e308), batch_id, row_number)) AS keeper
                    FROM m GROUP BY cluster
                )
                SELECT m.sample_id, m.idx, m.is_ref, k.size, k.answers, k.keeper, kk.sample_id AS keeper_id,
                       kk.is_ref AS keeper_is_ref
                FROM m JOIN k USING (cluster) JOIN meta kk ON kk.idx = k.keeper
                ORDER BY m.batch_id, m.row_number""",
            )
            sim = _similarity(
                signatures.column("shingles"),
                edges,
                members.column("idx").to_numpy(),
                members.column("keeper").to_numpy(),
                n,
            )
            members = members.append_column(
                "jaccard", pa.array(sim, pa.float64())
            ).append_column("ord", pa.array(np.arange(members.num_rows), pa.int64()))
            return self._decisions(con, members, counters)
        finally:
            con.close()

    def _decisions(self, con, members: pa.Table, counters: Counter[str]) -> StepOutput:
        """Decisions and signals of the cluster members, in one query (reasons formatted by DuckDB)."""
        con.register("members", members)
        sim = "printf('%.2f', jaccard)"
        if self.params.compare == "instruction":
            # the kept sample of a conflicting cluster is flagged too: a reviewer decides which answer is right
            sql = f"""
                SELECT sample_id, 'flag' AS verdict,
                       'conflicting answers: same instruction as ' || keeper_id || ' (Jaccard ' || {sim}
                       || ') with a different answer; ' || size || ' samples, ' || answers || ' different answers' AS reason,
                       keeper_id AS ref_sample_id, jaccard AS score, 0 AS part, ord
                FROM members WHERE idx <> keeper AND answers >= 2
                UNION ALL
                SELECT sample_id, 'flag', 'conflicting answers: ' || size || ' samples ask this instruction with '
                       || answers || ' different answers', NULL, 1.0, 1, ord
                FROM members WHERE idx = keeper AND answers >= 2"""
        else:
            # a reference sample is never dropped
            sql = f"""
                SELECT sample_id, 'drop' AS verdict,
                       'near duplicate of ' || CASE WHEN keeper_is_ref THEN 'reference sample' ELSE 'sample' END || ' '
                       || keeper_id || ' (Jaccard ' || {sim} || '; cluster of ' || size || ', one kept)' AS reason,
                       keeper_id AS ref_sample_id, jaccard AS score, 0 AS part, ord
                FROM members WHERE idx <> keeper AND NOT is_ref"""
        decisions = query_arrow(
            con,
            f"SELECT sample_id, verdict, reason, ref_sample_id, score FROM ({sql}) ORDER BY part, ord",
        )
        decisions = decisions.cast(DECISION_SCHEMA)
        signals = query_arrow(
            con,
            "SELECT sample_id, 'near_dup_cluster' AS name, size::DOUBLE AS value, keeper_id AS text "
            "FROM members ORDER BY ord",
        ).cast(SIGNAL_SCHEMA)
        con.unregister("members")
        counters.update(
            clusters=len(pc.unique(members.column("keeper"))),
            in_clusters=members.num_rows,
            **{
                "dropped"
                if self.params.compare != "instruction"
                else "flagged": decisions.num_rows
            },
        )
        return StepOutput(decisions=decisions, signals=signals, counters=counters)


def _similarity(
    shingles: pa.ChunkedArray, edges: pa.Table, a: np.ndarray, b: np.ndarray, n: int
) -> np.ndarray:
    """Jaccard of each member ``a[k]`` to the sample kept in its place ``b[k]`` (1.0 for the kept sample).

    Most of these pairs are verified edges already (their Jaccard is taken from there); the others (members
    linked to the kept sample through another member) are computed.
    """
    sim = np.ones(len(a), dtype=np.float64)
    code = np.minimum(a, b) * np.int64(n) + np.maximum(a, b)
    known = edges.column("a").to_numpy() * np.int64(n) + edges.column("b").to_numpy()
    order = np.argsort(known)
    known = known[order]
    at = np.minimum(np.searchsorted(known, code), max(len(known) - 1, 0))
    found = (known[at] == code) if len(known) else np.zeros(len(a), dtype=bool)
    sim[found] = edges.column("jaccard").to_numpy()[order[at[found]]]
    todo = np.flatnonzero(~found & (a != b))
    sim[todo] = jaccard(shingles, a[todo], b[todo])
    return sim
