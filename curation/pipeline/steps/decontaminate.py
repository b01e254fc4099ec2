"""Decontamination: drop training samples that share a long n-gram with an evaluation set.

The evaluation set is one or more files (JSONL, JSON, CSV/TSV or Parquet, e.g. a snapshot's exported
test split), read by DuckDB. Its text is the named fields (default: every string field, dialogue turns
included) lower-cased and tokenised as in near dedup: 13-grams of words by default (GPT-3's choice), or
of characters for Chinese / Japanese / Korean text (20 by default, about 13 words). A training sample
(instruction, input, answer, turns; reasoning too unless ``include_reasoning = false``) sharing any of
them is dropped, naming the evaluation sample (``file:row``, or its ``id`` field) and the shared text.

The step's identity (:meth:`DecontaminateStep.identity`) is the XXH3-128 content hash of each evaluation
file, taken when the step is built, before the files are read: it is stored with the run's config
(``inputs.eval_files``) and is part of the run's identity, so a changed evaluation file makes the next
``curate run`` a new run instead of "nothing to do".
"""

from __future__ import annotations

import mmap
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import xxhash
from pydantic import BaseModel, ConfigDict, Field, field_validator

from curation.dedup.minhash import ngrams_query
from curation.duck import query_arrow, scratch
from curation.duck import sql_literal as _q
from curation.pipeline.base import DECISION_SCHEMA, RowStep, StepOutput

_READERS = {".jsonl": "read_json_auto", ".json": "read_json_auto", ".ndjson": "read_json_auto",
            ".csv": "read_csv_auto", ".tsv": "read_csv_auto", ".parquet": "read_parquet"}


class DecontaminateParams(BaseModel):
    """Decontamination parameters."""

    model_config = ConfigDict(extra="forbid")

    eval_paths: list[str] = Field(description="Evaluation set files (JSONL, JSON, CSV/TSV, Parquet).")
    eval_fields: list[str] | None = Field(default=None, description="Fields holding the evaluation text (default: all text fields).")
    word_ngram: int = Field(default=13, ge=3, description="Shared word n-gram length that counts as contamination.")
    char_ngram: int = Field(default=20, ge=5, description="Shared character n-gram length for CJK text.")
    cjk_share: float = Field(default=0.3, ge=0, le=1, description="Share of CJK letters from which text is read by characters.")
    include_reasoning: bool = Field(default=True, description="Look in reasoning traces too.")

    @field_validator("eval_paths")
    @classmethod
    def _paths(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("eval_paths: name at least one evaluation file")
        for p in v:
            if not Path(p).is_file():
                raise ValueError(f"eval_paths: {p} is not a file")
            if Path(p).suffix.lower() not in _READERS:
                raise ValueError(f"eval_paths: {p}: unknown format (use {', '.join(sorted(_READERS))})")
        return v


def file_hash(path: str | Path) -> tuple[str, int]:
    """``xxh3-128:<hex>`` of a file's bytes (as ingest hashes its input files) and its size in bytes."""
    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size:
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                h.update(m)
    return "xxh3-128:" + h.hexdigest(), size


def _text_of(columns: list[tuple[str, str]], fields: list[str] | None) -> str:
    """SQL joining the text of an evaluation row: string columns, and contents of lists of turns."""
    parts = []
    for name, typ in columns:
        if fields is not None and name not in fields:
            continue
        ident = '"' + name.replace('"', '""') + '"'
        if typ == "VARCHAR":
            parts.append(ident)
        elif typ.endswith("[]") and typ.startswith("STRUCT"):
            keys = [k for k in ("content", "value", "text") if f"{k} VARCHAR" in typ]
            if keys:
                parts.append(f"array_to_string(list_transform({ident}, lambda m: m.{keys[0]}), chr(10))")
        elif typ == "VARCHAR[]":
            parts.append(f"array_to_string({ident}, chr(10))")
    return f"concat_ws(chr(10), {', '.join(parts)})" if parts else "''"


class DecontaminateStep(RowStep):
    """Drop samples that share a long n-gram with an evaluation set."""

    type_name = "decontaminate"
    Params = DecontaminateParams

    def __init__(self, name: str | None = None, params: dict | None = None) -> None:
        super().__init__(name, params)
        # hashed before they are read: a file changed in between gives a hash no later run matches
        self._eval_files = []
        for p in self.params.eval_paths:
            digest, size = file_hash(p)
            self._eval_files.append({"path": p, "hash": digest, "bytes": size})
        self._eval = self._load_eval()

    def identity(self) -> dict[str, Any]:
        """The content hash of each evaluation file: a changed file is a new run."""
        return {"eval_files": [dict(f) for f in self._eval_files]}

    def _grams(self, source: str, text: str, hashed: bool) -> str:
        p = self.params
        return ngrams_query(source, text, p.word_ngram, p.char_ngram, p.cjk_share, short_whole=False, hashed=hashed)

    def _load_eval(self) -> pa.Table:
        """(h, gram, eval_id) for every n-gram of the evaluation set, first occurrence only."""
        con = scratch()
        try:
            parts = []
            for path in self.params.eval_paths:
                reader = _READERS[Path(path).suffix.lower()]
                src = f"{reader}({_q(path)})"
                cols = [(r[0], r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()]
                if self.params.eval_fields and not any(c in self.params.eval_fields for c, _ in cols):
                    raise ValueError(f"{path}: none of the fields {self.params.eval_fields} (has {[c for c, _ in cols]})")
                has_id = any(c == "id" for c, _ in cols)
                label = f"coalesce(CAST(id AS VARCHAR), {_q(Path(path).name)} || ':' || rn)" if has_id \
                    else f"{_q(Path(path).name)} || ':' || rn"
                text = _text_of(cols, self.params.eval_fields)
                parts.append(f"SELECT {label} AS eval_id, {len(parts)} AS f, rn, {text} AS text "
                             f"FROM (SELECT *, row_number() OVER () AS rn FROM {src})")
            return query_arrow(con, f"""
                WITH e AS ({' UNION ALL '.join(parts)}),
                g AS (SELECT eval_id, f, rn, unnest(grams) AS gram FROM ({self._grams('e', 'text', False)}))
                SELECT hash(gram) AS h, arg_min(gram, (f, rn)) AS gram, arg_min(eval_id, (f, rn)) AS eval_id
                FROM g GROUP BY h""")
        finally:
            con.close()

    def process(self, batch: pa.Table) -> StepOutput:
        rsn = ", reasoning" if self.params.include_reasoning else ""
        turn = "coalesce(m.content, '')" + (" || chr(10) || coalesce(m.reasoning, '')" if self.params.include_reasoning else "")
        text = (f"concat_ws(chr(10), system, instruction, input, output{rsn}, "
                f"array_to_string(list_transform(messages, lambda m: {turn}), chr(10)))")
        con = scratch()
        try:
            con.register("b", batch.select(["sample_id", "system", "instruction", "input", "output", "reasoning", "messages"]))
            con.register("ev", self._eval)
            hits = query_arrow(con, f"""
                WITH g AS (SELECT sample_id, unnest(grams) AS h FROM ({self._grams('b', text, True)}))
                SELECT g.sample_id, count(*) AS shared, arg_min(ev.eval_id, ev.h) AS eval_id, arg_min(ev.gram, ev.h) AS gram
                FROM g JOIN ev USING (h) GROUP BY g.sample_id""")
        finally:
            con.close()
        counters: Counter[str] = Counter(contaminated=hits.num_rows)
        if not hits.num_rows:
            return StepOutput(counters=counters)
        p = self.params
        rows = hits.to_pylist()
        reasons = [f"overlaps the evaluation set: {r['shared']} shared n-gram{'s' if r['shared'] > 1 else ''} "
                   f"({p.word_ngram} words / {p.char_ngram} CJK characters) with evaluation sample {r['eval_id']}, "
                   f"e.g. \"{r['gram'][:120]}\"" for r in rows]
        decisions = pa.table([pa.array([r["sample_id"] for r in rows], pa.string()), pa.array(["drop"] * len(rows), pa.string()),
                              pa.array(reasons, pa.string()), pa.nulls(len(rows), pa.string()),
                              pa.array([float(r["shared"]) for r in rows], pa.float64())], schema=DECISION_SCHEMA)
        return StepOutput(decisions=decisions, counters=counters)
