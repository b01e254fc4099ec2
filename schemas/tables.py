"""The store's tables and views, documented column by column.

The DDL lives in versioned migrations (``curation/store/migrations.py``); this module is the
documentation that the README's table reference is generated from, and a test holds the two together:
every column a migration creates is documented here and every documented column exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    """One documented column."""

    name: str
    type: str
    doc: str


@dataclass(frozen=True)
class Table:
    """One documented table or view."""

    name: str
    doc: str
    columns: tuple[Column, ...] = field(default_factory=tuple)

    def column_names(self) -> list[str]:
        """Column names in order."""
        return [c.name for c in self.columns]


C = Column

TABLES: tuple[Table, ...] = (
    Table(
        "batches",
        "One row per ingested input (a file, or one split of a Hugging Face dataset) with its row accounting. "
        "For a batch with status 'done': rows_read = rows_loaded + rows_quarantined.",
        (
            C("batch_id", "INTEGER", "Sequential id of the batch."),
            C("source", "VARCHAR", "Absolute path of the input (with '#split' for a dataset split)."),
            C("source_name", "VARCHAR", "Name used in sample ids: the file name, or --source-name."),
            C("format", "VARCHAR", "jsonl, json, csv, tsv, parquet or hf."),
            C("encoding", "VARCHAR", "Text encoding the input was decoded with (utf-8, utf-8-sig, gb18030, ...)."),
            C("options", "JSON", "Ingest options that change what is loaded (field mapping, delimiter, limits)."),
            C("content_hash", "VARCHAR", "XXH3-128 of the input's bytes (`xxh3-128:` + hex); an identical input is not loaded twice."),
            C("options_hash", "VARCHAR", "sha256 of options; re-ingesting with other options makes a new batch."),
            C("bytes", "BIGINT", "Size of the input in bytes."),
            C("status", "VARCHAR", "loading, done or failed."),
            C("rows_read", "BIGINT", "Rows found in the input (blank lines of JSONL are not rows)."),
            C("rows_loaded", "BIGINT", "Rows that became samples, including rows_already_present."),
            C("rows_quarantined", "BIGINT", "Rows put in quarantine."),
            C("rows_already_present", "BIGINT", "Loaded rows whose sample id an earlier batch already holds."),
            C("blank_lines", "BIGINT", "Blank lines skipped in a line-based input."),
            C("problems", "VARCHAR", "File-level problems (empty file, unreadable JSON array), or NULL."),
            C("code_version", "VARCHAR", "Version of the code that loaded the batch."),
            C("ingested_at", "TIMESTAMP", "When loading started (UTC)."),
            C("finished_at", "TIMESTAMP", "When the batch reached its final status (UTC)."),
            C("owner", "VARCHAR", "The process loading (or that last loaded) the batch: host:pid:start time. A 'loading' "
              "batch whose owner is gone was interrupted; the next ingest of the same input loads it again."),
            C("heartbeat_at", "TIMESTAMP", "The owner's last write (UTC); from another host the owner counts as gone "
              "once this is older than CURATE_LEASE_SECONDS."),
        ),
    ),
    Table(
        "samples",
        "Samples with their text exactly as read (after the input shape is recognised). Later text "
        "versions (cleaning, corrections) never overwrite these columns.",
        (
            C("sample_id", "VARCHAR", "Stable id: 16 hex digits of md5(source_name, row_number, raw_hash)."),
            C("batch_id", "INTEGER", "Batch that first loaded the sample."),
            C("source", "VARCHAR", "Input the row came from."),
            C("row_number", "BIGINT", "1-based line (JSONL), element (JSON array), record (CSV) or row (Parquet, HF)."),
            C("external_id", "VARCHAR", "The row's own 'id' field, when it has one."),
            C("shape", "VARCHAR", "alpaca, sharegpt or openai: the shape the row was read in."),
            C("instruction", "VARCHAR", "Instruction of an instruction pair (NULL for a dialogue)."),
            C("input", "VARCHAR", "Optional input/context of an instruction pair."),
            C("output", "VARCHAR", "Final answer of an instruction pair, without its <think> block."),
            C("system", "VARCHAR", "System prompt given as a top-level field."),
            C(
                "messages",
                "STRUCT(role VARCHAR, content VARCHAR, reasoning VARCHAR)[]",
                "Dialogue turns (roles system/user/assistant/tool); an assistant turn's reasoning apart from its content.",
            ),
            C("reasoning", "VARCHAR", "Reasoning trace of an instruction pair's answer (<think> block or reasoning_content)."),
            C("metadata", "JSON", "The row's other fields, as read."),
            C("raw_hash", "UHUGEINT", "XXH3-128 of the raw row text as a 128-bit integer (`printf('%032x', raw_hash)` gives its 32 hex digits, from which the sample id is built)."),
        ),
    ),
    Table(
        "quarantine",
        "Rows that could not be loaded, verbatim, with where they were and why. File-level problems "
        "(an empty file) have row_number NULL and do not count as rows.",
        (
            C("batch_id", "INTEGER", "Batch being loaded."),
            C("source", "VARCHAR", "Input the row came from."),
            C("row_number", "BIGINT", "1-based row position as in samples.row_number, when known."),
            C("line", "BIGINT", "1-based line in the file where the row starts, when known."),
            C("raw", "VARCHAR", "The row as read (invalid bytes shown as \\x escapes; exact bytes in raw_bytes)."),
            C("raw_bytes", "BLOB", "The exact bytes, for rows that are not valid text in the file's encoding."),
            C("reason", "VARCHAR", "Why the row was not loaded, in words."),
            C("field", "VARCHAR", "The field at fault, when one is."),
        ),
    ),
    Table(
        "schema_migrations",
        "Applied schema migrations.",
        (
            C("version", "INTEGER", "Migration number."),
            C("description", "VARCHAR", "What it changed."),
            C("applied_at", "TIMESTAMP", "When it was applied (UTC)."),
        ),
    ),
    Table(
        "runs",
        "One row per pipeline run: its resolved config, the input it covers and its status.",
        (
            C("run_id", "INTEGER", "Sequential id of the run."),
            C("config", "JSON", "The resolved pipeline config (steps and parameters) the run used."),
            C("config_hash", "VARCHAR", "sha256 of the config; the same config on the same input is not run twice."),
            C("code_version", "VARCHAR", "Version of the code that ran it."),
            C("max_batch_id", "INTEGER", "The run's input: samples of done batches up to this batch id."),
            C("samples_in", "BIGINT", "Samples in the run's input."),
            C("status", "VARCHAR", "running, done or failed (a running or failed run is resumed by the next `curate run`)."),
            C("started_at", "TIMESTAMP", "When the run started (UTC)."),
            C("finished_at", "TIMESTAMP", "When it finished (UTC)."),
            C("owner", "VARCHAR", "The process running (or that last ran) the run: host:pid:start time. One run at a time "
              "per store: a second `curate run` is refused while this process lives."),
            C("heartbeat_at", "TIMESTAMP", "The owner's last write (UTC)."),
        ),
    ),
    Table(
        "run_steps",
        "Each step of each run, with its progress (what resume starts from) and its counts.",
        (
            C("run_id", "INTEGER", "Run."),
            C("position", "INTEGER", "1-based position of the step in the pipeline."),
            C("step", "VARCHAR", "Step name (unique within the pipeline)."),
            C("kind", "VARCHAR", "row (per record batch) or global (stages over the whole input)."),
            C("status", "VARCHAR", "pending, running or done."),
            C("rows_in", "BIGINT", "Samples the step saw (those not dropped by earlier steps)."),
            C("rows_done", "BIGINT", "Samples processed and committed so far (a resumed step starts after them)."),
            C("dropped", "BIGINT", "Samples the step dropped."),
            C("flagged", "BIGINT", "Samples the step flagged for review."),
            C("changed", "BIGINT", "Samples whose text the step changed (new text versions)."),
            C("counters", "JSON", "Step-specific counts, e.g. how many texts each cleaning rule changed."),
            C("cursor_batch_id", "INTEGER", "Row steps: batch of the last committed sample (resume point)."),
            C("cursor_row_number", "BIGINT", "Row steps: row number of the last committed sample."),
            C("started_at", "TIMESTAMP", "When the step started (UTC); the steps of a chain (one read of each page for "
              "consecutive steps) start together."),
            C("finished_at", "TIMESTAMP", "When it finished (UTC); a chain's row steps finish together."),
        ),
    ),
    Table(
        "decisions",
        "What steps decided, never deletes: drop (with a readable reason) or flag (a person must look).",
        (
            C("run_id", "INTEGER", "Run."),
            C("sample_id", "VARCHAR", "Sample decided on."),
            C("step", "VARCHAR", "Step that decided."),
            C("verdict", "VARCHAR", "keep, drop or flag."),
            C("reason", "VARCHAR", "Why, in words a reviewer can read and count."),
            C("ref_sample_id", "VARCHAR", "For a duplicate: the kept sample it duplicates."),
            C("score", "DOUBLE", "The score behind the verdict, when there is one (similarity, quality)."),
        ),
    ),
    Table(
        "signals",
        "Measurements steps record for later steps and for review: scores, languages, hashes, cluster ids.",
        (
            C("run_id", "INTEGER", "Run."),
            C("sample_id", "VARCHAR", "Sample measured."),
            C("step", "VARCHAR", "Step that measured it."),
            C("name", "VARCHAR", "Signal name, e.g. content_hash, duplicate_count, quality_score."),
            C("value", "DOUBLE", "Numeric value, when the signal is a number."),
            C("text", "VARCHAR", "Text value, when the signal is text."),
        ),
    ),
    Table(
        "sample_texts",
        "Text versions written by steps that change text (cleaning, later redaction and corrections). "
        "Version 0 is the text as read, in samples; a run uses the highest version it wrote.",
        (
            C("sample_id", "VARCHAR", "Sample."),
            C("version", "INTEGER", "1, 2, ... per sample, in the order written."),
            C("run_id", "INTEGER", "Run whose step wrote it; NULL for a version a snapshot's review made (a correction)."),
            C("step", "VARCHAR", "Step that wrote it ('review' for a reviewer's correction)."),
            C("instruction", "VARCHAR", "Instruction."),
            C("input", "VARCHAR", "Input."),
            C("output", "VARCHAR", "Output."),
            C("system", "VARCHAR", "System prompt."),
            C("messages", "STRUCT(role VARCHAR, content VARCHAR, reasoning VARCHAR)[]", "Dialogue turns."),
            C("reasoning", "VARCHAR", "Reasoning trace."),
            C("content_hash", "VARCHAR", "md5 of the text with whitespace runs collapsed: exact duplicates share it."),
            C("snapshot_id", "INTEGER", "The reviewed snapshot whose review made it (a correction), else NULL."),
        ),
    ),
    Table(
        "embeddings",
        "Embedding vectors, keyed by content hash and model, so that a re-run does not embed again.",
        (
            C("content_hash", "VARCHAR", "Content hash of the embedded text."),
            C("model", "VARCHAR", "Model id or path, and what was embedded ('<model>#sample', '#instruction', ...)."),
            C("dim", "INTEGER", "Vector length."),
            C("vector", "FLOAT[]", "The embedding."),
            C("created_at", "TIMESTAMP", "When it was computed (UTC)."),
        ),
    ),
    Table(
        "store_info",
        "One row: the store's own identity. Review projects carry it, so two stores sharing one review server "
        "never share a project.",
        (
            C("store_id", "VARCHAR", "A uuid made when the store was created (or migrated to schema 6)."),
            C("created_at", "TIMESTAMP", "When it was made (UTC)."),
        ),
    ),
    Table(
        "snapshots",
        "Immutable sets of kept samples (pinned text versions) that people review, approve and export. "
        "State: draft -> in_review -> approved | rejected.",
        (
            C("snapshot_id", "INTEGER", "Sequential id."),
            C("parent_id", "INTEGER", "The snapshot this one was made from (reviews applied, or new batches added), or NULL."),
            C("run_id", "INTEGER", "The pipeline run whose kept samples it froze."),
            C("state", "VARCHAR", "draft, in_review, approved or rejected."),
            C("content_hash", "VARCHAR", "sha256 over the sorted (sample_id, content hash) list."),
            C("n_samples", "BIGINT", "Samples pinned."),
            C("n_new", "BIGINT", "Samples not in an approved parent: the ones that need review."),
            C("config", "JSON", "The run's pipeline config."),
            C("note", "VARCHAR", "Free text given at creation."),
            C("created_at", "TIMESTAMP", "When it was made (UTC)."),
            C("state_changed_at", "TIMESTAMP", "When the state last changed (UTC)."),
            C("forced", "BOOLEAN", "Approved without certification (--force); the manifest says so."),
            C("certification", "JSON", "The certification the approval rests on (estimate, bounds, reviews)."),
            C("review_plan", "JSON", "The review loop's plan: reviews, rounds (looks), per round, target, confidence, overlap, seed, strata."),
            C("applied_from", "INTEGER", "The snapshot whose reviews this one applies (`curate review apply`), else NULL."),
        ),
    ),
    Table(
        "snapshot_samples",
        "The pinned (sample, text version) list of each snapshot; never changed after creation.",
        (
            C("snapshot_id", "INTEGER", "The snapshot."),
            C("sample_id", "VARCHAR", "A kept sample."),
            C("version", "INTEGER", "Its text version (0: as ingested; else sample_texts.version)."),
            C("content_hash", "VARCHAR", "Content hash of that text (as exact dedup computes it)."),
            C("is_new", "BOOLEAN", "Not in the approved parent with the same text: it needs review."),
        ),
    ),
    Table(
        "reviews",
        "Review items and their verdicts, the same for every backend (Label Studio, Argilla).",
        (
            C("review_id", "VARCHAR", "Item id and reviewer: one row per reviewer per item."),
            C("item_kind", "VARCHAR", "sample (judge a training sample) or answer (rate a model answer)."),
            C("item_id", "VARCHAR", "Stable id of the item (snapshot, sample, version): pushes are idempotent by it."),
            C("snapshot_id", "INTEGER", "The snapshot under review."),
            C("sample_id", "VARCHAR", "The sample judged."),
            C("version", "INTEGER", "Its text version."),
            C("stratum", "VARCHAR", "Sampling stratum (source / language, or a flag as a mandatory stratum); the round name for answers."),
            C("reviewer", "VARCHAR", "Who reviewed (backend user)."),
            C("verdict", "VARCHAR", "accept or reject (NULL while pending)."),
            C("corrected_output", "VARCHAR", "A corrected answer, when the reviewer gave one."),
            C("categories", "VARCHAR[]", "Error categories (factual error, wrong language, incomplete, unsafe, formatting, duplicate, other)."),
            C("ratings", "JSON", "Rating answers for item_kind = answer."),
            C("status", "VARCHAR", "pending, submitted or skipped."),
            C("submitted_at", "TIMESTAMP", "When the verdict was given (UTC)."),
            C("backend", "VARCHAR", "labelstudio, argilla, or sim (simulated reviewers)."),
            C("backend_record_id", "VARCHAR", "The task / record id in the backend."),
            C("payload", "JSON", "Content of an answer item (prompt, answer, model, questions); NULL for samples."),
        ),
    ),
    Table(
        "api_tokens",
        "The HTTP API's tokens (curate token create): only a hash of each; not readable through SQL.",
        (
            C("token_id", "VARCHAR", "The token's id (a uuid; curate token revoke takes it)."),
            C("name", "VARCHAR", "Who or what uses it (shown in the audit log)."),
            C("role", "VARCHAR", "viewer, lead or admin."),
            C("token_hash", "VARCHAR", "SHA-256 of the token (the token itself is shown once, never stored)."),
            C("created_at", "TIMESTAMP", "When it was made (UTC)."),
            C("revoked_at", "TIMESTAMP", "When it was revoked (UTC); NULL while it works."),
        ),
    ),
    Table(
        "audit_log",
        "Every mutating call to the HTTP API, refused ones included: who, what, when, the answer's status.",
        (
            C("audit_id", "BIGINT", "Sequential id."),
            C("logged_at", "TIMESTAMP", "When (UTC)."),
            C("token_id", "VARCHAR", "The caller's token (NULL without a valid one)."),
            C("token_name", "VARCHAR", "Its name."),
            C("role", "VARCHAR", "Its role."),
            C("method", "VARCHAR", "POST, PUT, PATCH or DELETE."),
            C("path", "VARCHAR", "The route called."),
            C("status", "INTEGER", "The HTTP status answered."),
            C("job_id", "BIGINT", "The job the call started, if any."),
            C("detail", "VARCHAR", "More, where there is more to say."),
        ),
    ),
    Table(
        "jobs",
        "The HTTP API's background jobs (ingest, run, review push / pull, export, train, eval), run one at a time "
        "by the service's worker; a restart queues again what a killed service left running.",
        (
            C("job_id", "BIGINT", "Sequential id."),
            C("kind", "VARCHAR", "ingest, run, review_push, review_pull, export, train or eval."),
            C("params", "JSON", "What the job was asked to do."),
            C("status", "VARCHAR", "queued, running, done, failed or interrupted."),
            C("created_by", "VARCHAR", "The token's name and role that submitted it."),
            C("created_at", "TIMESTAMP", "When it was submitted (UTC)."),
            C("started_at", "TIMESTAMP", "When it first started (UTC)."),
            C("finished_at", "TIMESTAMP", "When it ended (UTC)."),
            C("attempts", "INTEGER", "How many times it was started (more than 1 after a restart)."),
            C("owner", "VARCHAR", "The service process running it (host:pid:start), NULL when not running."),
            C("heartbeat_at", "TIMESTAMP", "The owner's latest heartbeat (UTC)."),
            C("progress", "JSON", "The latest progress: what, done, total, unit."),
            C("result", "JSON", "What it produced (the same as the CLI command's output)."),
            C("error", "JSON", "Why it failed: exit_code, kind, message."),
            C("log", "VARCHAR", "Its log: starts, steps, interruptions, the end."),
        ),
    ),
)

def _columns(table: str, names: tuple[str, ...] | None = None) -> tuple[Column, ...]:
    """Documented columns of ``table`` (all, or ``names`` in that order), for views that pass them through."""
    cols = {c.name: c for t in TABLES if t.name == table for c in t.columns}
    return tuple(cols.values()) if names is None else tuple(cols[n] for n in names)


VIEWS: tuple[Table, ...] = (
    Table(
        "batch_accounting",
        "Each batch's accounting and whether it balances.",
        (
            C("batch_id", "INTEGER", "Batch."),
            C("source", "VARCHAR", "Input."),
            C("status", "VARCHAR", "Batch status."),
            C("rows_read", "BIGINT", "Rows read."),
            C("rows_loaded", "BIGINT", "Rows loaded."),
            C("rows_quarantined", "BIGINT", "Rows quarantined."),
            C("balanced", "BOOLEAN", "rows_read = rows_loaded + rows_quarantined."),
        ),
    ),
    Table("latest_run", "The most recent run with status done (one row, or none).", _columns("runs")),
    Table(
        "sample_versions",
        "Every text version of every sample: version 0 as read (from samples), then each version in sample_texts "
        "with what made it (a run's step, or a snapshot's review).",
        (
            C("sample_id", "VARCHAR", "Sample."),
            C("version", "INTEGER", "0 = as read."),
            C("run_id", "INTEGER", "Run whose step made it, or NULL."),
            C("snapshot_id", "INTEGER", "Reviewed snapshot whose correction made it, or NULL."),
            C("step", "VARCHAR", "ingest, a step name, or review."),
            C("shape", "VARCHAR", "alpaca, sharegpt or openai."),
            *_columns("samples", ("instruction", "input", "output", "system", "messages", "reasoning")),
        ),
    ),
    Table(
        "dropped",
        "Samples the latest run dropped, with step and reason.",
        (
            C("run_id", "INTEGER", "Run."),
            C("sample_id", "VARCHAR", "Sample."),
            C("step", "VARCHAR", "Step that dropped it."),
            C("reason", "VARCHAR", "Why."),
            C("ref_sample_id", "VARCHAR", "The kept sample it duplicates, for a duplicate."),
            C("score", "DOUBLE", "Score behind the verdict."),
        ),
    ),
    Table(
        "kept",
        "Samples the latest run kept, with their current text (the run's latest version, else as read): "
        "`run_kept(<latest run>)`.",
        (
            C("run_id", "INTEGER", "Run."),
            C("sample_id", "VARCHAR", "Sample."),
            C("version", "INTEGER", "Text version used (0 = as read)."),
            *_columns("samples", ("batch_id", "source", "row_number", "external_id", "shape", "instruction", "input",
                                  "output", "system", "messages", "reasoning", "metadata")),
        ),
    ),
    Table(
        "sample_signals",
        "All signals of the latest run, one row per sample: values['duplicate_count'], texts['content_hash'].",
        (
            C("sample_id", "VARCHAR", "Sample."),
            C("values", "MAP(VARCHAR, DOUBLE)", "Numeric signals by name."),
            C("texts", "MAP(VARCHAR, VARCHAR)", "Text signals by name."),
        ),
    ),
    Table(
        "funnel",
        "Rows at each stage, in order: read, quarantined, loaded (the batches the latest run read, or all when "
        "there is no run); then the run's input, each step's drops and flags, and what it kept: "
        "`funnel_for(<latest run>)`.",
        (
            C("position", "INTEGER", "Order of the stage."),
            C("stage", "VARCHAR", "Stage name."),
            C("rows", "BIGINT", "Rows at or removed by the stage."),
        ),
    ),
)


_TEXT_OF = ("batch_id", "source", "row_number", "external_id", "shape", "instruction", "input", "output", "system",
            "messages", "reasoning", "metadata")

# Table macros: the store's one definition of a sample's text, for any run or snapshot. Call them in SQL:
# ``SELECT * FROM run_kept(3)``.
MACROS: tuple[Table, ...] = (
    Table(
        "run_texts",
        "`run_texts(run)`: the run's input samples with the text the run made (the run's latest version, else as "
        "read). Reviews never write a run's versions, so a finished run's texts never change.",
        (C("run_id", "INTEGER", "Run."), C("sample_id", "VARCHAR", "Sample."),
         C("version", "INTEGER", "Text version (0 = as read)."), *_columns("samples", _TEXT_OF)),
    ),
    Table(
        "run_kept",
        "`run_kept(run)`: run_texts(run) without the samples the run dropped (the `kept` view, for any run).",
        (C("run_id", "INTEGER", "Run."), C("sample_id", "VARCHAR", "Sample."),
         C("version", "INTEGER", "Text version (0 = as read)."), *_columns("samples", _TEXT_OF)),
    ),
    Table(
        "snapshot_texts",
        "`snapshot_texts(snapshot)`: a snapshot's samples with the text of their pinned versions.",
        (C("snapshot_id", "INTEGER", "Snapshot."), C("sample_id", "VARCHAR", "Sample."),
         C("version", "INTEGER", "Pinned text version."), C("content_hash", "VARCHAR", "Its content hash."),
         C("is_new", "BOOLEAN", "Needs review (not in an approved parent)."), *_columns("samples", _TEXT_OF)),
    ),
    Table(
        "snapshot_strata",
        "`snapshot_strata(snapshot)`: the review strata of a snapshot's new samples: 'flagged' (a step of its run "
        "flagged the sample; reviewed in full), else source file | language.",
        (C("sample_id", "VARCHAR", "Sample."), C("version", "INTEGER", "Pinned version."),
         C("source", "VARCHAR", "Input path."), C("lang", "VARCHAR", "Language code ('und' when none)."),
         C("flagged", "BOOLEAN", "A step flagged it."), C("stratum", "VARCHAR", "Review stratum.")),
    ),
    Table(
        "funnel_for",
        "`funnel_for(run)`: the funnel of any run (the `funnel` view is the latest run's).",
        (C("position", "INTEGER", "Order of the stage."), C("stage", "VARCHAR", "Stage name."),
         C("rows", "BIGINT", "Rows at or removed by the stage.")),
    ),
)


def markdown_reference() -> str:
    """The table reference as Markdown, as it appears in the README."""
    out: list[str] = []
    for kind, items in (("Table", TABLES), ("View", VIEWS), ("Macro", MACROS)):
        for t in items:
            out.append(f"#### {kind} `{t.name}`\n\n{t.doc}\n\n| column | type | meaning |\n|---|---|---|")
            for c in t.columns:
                out.append(f"| `{c.name}` | `{c.type}` | {c.doc} |")
            out.append("")
    return "\n".join(out).rstrip() + "\n"
