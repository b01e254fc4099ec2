"""Versioned schema migrations. Never edit an applied migration: add a new one.

The columns are documented in ``schemas/tables.py``; a test checks that the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    """One schema change, applied in a single transaction."""

    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "batches, samples, quarantine; batch_accounting and funnel views",
        (
            "CREATE SEQUENCE batch_id_seq START 1",
            """CREATE TABLE batches (
                batch_id INTEGER PRIMARY KEY DEFAULT nextval('batch_id_seq'),
                source VARCHAR NOT NULL,
                source_name VARCHAR NOT NULL,
                format VARCHAR NOT NULL,
                encoding VARCHAR,
                options JSON,
                content_hash VARCHAR NOT NULL,
                options_hash VARCHAR NOT NULL,
                bytes BIGINT,
                status VARCHAR NOT NULL CHECK (status IN ('loading', 'done', 'failed')),
                rows_read BIGINT NOT NULL DEFAULT 0,
                rows_loaded BIGINT NOT NULL DEFAULT 0,
                rows_quarantined BIGINT NOT NULL DEFAULT 0,
                rows_already_present BIGINT NOT NULL DEFAULT 0,
                blank_lines BIGINT NOT NULL DEFAULT 0,
                problems VARCHAR,
                code_version VARCHAR,
                ingested_at TIMESTAMP NOT NULL,
                finished_at TIMESTAMP
            )""",
            """CREATE TABLE samples (
                sample_id VARCHAR NOT NULL,
                batch_id INTEGER NOT NULL,
                source VARCHAR NOT NULL,
                row_number BIGINT NOT NULL,
                external_id VARCHAR,
                shape VARCHAR NOT NULL,
                instruction VARCHAR,
                input VARCHAR,
                output VARCHAR,
                system VARCHAR,
                messages STRUCT(role VARCHAR, content VARCHAR, reasoning VARCHAR)[],
                reasoning VARCHAR,
                metadata JSON,
                raw_hash VARCHAR NOT NULL
            )""",
            """CREATE TABLE quarantine (
                batch_id INTEGER NOT NULL,
                source VARCHAR NOT NULL,
                row_number BIGINT,
                line BIGINT,
                raw VARCHAR,
                raw_bytes BLOB,
                reason VARCHAR NOT NULL,
                field VARCHAR
            )""",
            """CREATE VIEW batch_accounting AS
                SELECT batch_id, source, status, rows_read, rows_loaded, rows_quarantined,
                       rows_read = rows_loaded + rows_quarantined AS balanced
                FROM batches ORDER BY batch_id""",
            """CREATE VIEW funnel AS
                SELECT 1 AS position, 'read' AS stage,
                       COALESCE((SELECT sum(rows_read) FROM batches WHERE status = 'done'), 0)::BIGINT AS rows
                UNION ALL
                SELECT 2, 'quarantined',
                       COALESCE((SELECT sum(rows_quarantined) FROM batches WHERE status = 'done'), 0)::BIGINT
                UNION ALL
                SELECT 3, 'loaded',
                       (SELECT count(*) FROM samples s JOIN batches b USING (batch_id) WHERE b.status = 'done')::BIGINT
                ORDER BY position""",
        ),
    ),
)

MIGRATIONS += (
    Migration(
        2,
        "runs, run_steps, decisions, signals, sample_texts; kept, dropped and a funnel over the latest run",
        (
            "CREATE SEQUENCE run_id_seq START 1",
            """CREATE TABLE runs (
                run_id INTEGER PRIMARY KEY DEFAULT nextval('run_id_seq'),
                config JSON NOT NULL,
                config_hash VARCHAR NOT NULL,
                code_version VARCHAR,
                max_batch_id INTEGER NOT NULL,
                samples_in BIGINT NOT NULL,
                status VARCHAR NOT NULL CHECK (status IN ('running', 'done', 'failed')),
                started_at TIMESTAMP NOT NULL,
                finished_at TIMESTAMP
            )""",
            """CREATE TABLE run_steps (
                run_id INTEGER NOT NULL,
                position INTEGER NOT NULL,
                step VARCHAR NOT NULL,
                kind VARCHAR NOT NULL,
                status VARCHAR NOT NULL CHECK (status IN ('pending', 'running', 'done')),
                rows_in BIGINT,
                rows_done BIGINT NOT NULL DEFAULT 0,
                dropped BIGINT NOT NULL DEFAULT 0,
                flagged BIGINT NOT NULL DEFAULT 0,
                changed BIGINT NOT NULL DEFAULT 0,
                counters JSON,
                cursor_batch_id INTEGER,
                cursor_row_number BIGINT,
                started_at TIMESTAMP,
                finished_at TIMESTAMP,
                PRIMARY KEY (run_id, position)
            )""",
            """CREATE TABLE decisions (
                run_id INTEGER NOT NULL,
                sample_id VARCHAR NOT NULL,
                step VARCHAR NOT NULL,
                verdict VARCHAR NOT NULL CHECK (verdict IN ('keep', 'drop', 'flag')),
                reason VARCHAR NOT NULL,
                ref_sample_id VARCHAR,
                score DOUBLE
            )""",
            """CREATE TABLE signals (
                run_id INTEGER NOT NULL,
                sample_id VARCHAR NOT NULL,
                step VARCHAR NOT NULL,
                name VARCHAR NOT NULL,
                value DOUBLE,
                text VARCHAR
            )""",
            """CREATE TABLE sample_texts (
                sample_id VARCHAR NOT NULL,
                version INTEGER NOT NULL,
                run_id INTEGER NOT NULL,
                step VARCHAR NOT NULL,
                instruction VARCHAR,
                input VARCHAR,
                output VARCHAR,
                system VARCHAR,
                messages STRUCT(role VARCHAR, content VARCHAR, reasoning VARCHAR)[],
                reasoning VARCHAR,
                content_hash VARCHAR NOT NULL
            )""",
            """CREATE TABLE embeddings (
                content_hash VARCHAR NOT NULL,
                model VARCHAR NOT NULL,
                dim INTEGER NOT NULL,
                vector FLOAT[] NOT NULL,
                created_at TIMESTAMP NOT NULL,
                PRIMARY KEY (content_hash, model)
            )""",
            """CREATE VIEW latest_run AS
                SELECT * FROM runs WHERE status = 'done' ORDER BY run_id DESC LIMIT 1""",
            """CREATE VIEW dropped AS
                SELECT d.run_id, d.sample_id, d.step, d.reason, d.ref_sample_id, d.score
                FROM decisions d JOIN latest_run r USING (run_id) WHERE d.verdict = 'drop'""",
            """CREATE VIEW kept AS
                WITH r AS (SELECT run_id, max_batch_id FROM latest_run),
                cur AS (
                    SELECT t.* FROM sample_texts t JOIN r USING (run_id)
                    QUALIFY row_number() OVER (PARTITION BY t.sample_id ORDER BY t.version DESC) = 1
                )
                SELECT r.run_id, s.sample_id, coalesce(cur.version, 0) AS version, s.batch_id, s.source, s.row_number,
                       s.external_id, s.shape,
                       CASE WHEN cur.sample_id IS NULL THEN s.instruction ELSE cur.instruction END AS instruction,
                       CASE WHEN cur.sample_id IS NULL THEN s.input ELSE cur.input END AS input,
                       CASE WHEN cur.sample_id IS NULL THEN s.output ELSE cur.output END AS output,
                       CASE WHEN cur.sample_id IS NULL THEN s.system ELSE cur.system END AS system,
                       CASE WHEN cur.sample_id IS NULL THEN s.messages ELSE cur.messages END AS messages,
                       CASE WHEN cur.sample_id IS NULL THEN s.reasoning ELSE cur.reasoning END AS reasoning,
                       s.metadata
                FROM samples s
                JOIN batches b ON b.batch_id = s.batch_id AND b.status = 'done'
                JOIN r ON s.batch_id <= r.max_batch_id
                LEFT JOIN cur ON cur.sample_id = s.sample_id
                WHERE NOT EXISTS (SELECT 1 FROM decisions d WHERE d.run_id = r.run_id
                                  AND d.sample_id = s.sample_id AND d.verdict = 'drop')""",
            """CREATE VIEW sample_signals AS
                SELECT g.sample_id,
                       map_from_entries(list({'key': g.name, 'value': g.value}) FILTER (WHERE g.value IS NOT NULL)) AS "values",
                       map_from_entries(list({'key': g.name, 'value': g.text}) FILTER (WHERE g.text IS NOT NULL)) AS texts
                FROM signals g JOIN latest_run r USING (run_id)
                GROUP BY g.sample_id""",
            "DROP VIEW funnel",
            """CREATE VIEW funnel AS
                SELECT 1 AS position, 'read' AS stage,
                       COALESCE((SELECT sum(rows_read) FROM batches WHERE status = 'done'), 0)::BIGINT AS rows
                UNION ALL
                SELECT 2, 'quarantined',
                       COALESCE((SELECT sum(rows_quarantined) FROM batches WHERE status = 'done'), 0)::BIGINT
                UNION ALL
                SELECT 3, 'loaded',
                       (SELECT count(*) FROM samples s JOIN batches b USING (batch_id) WHERE b.status = 'done')::BIGINT
                UNION ALL
                SELECT 4, 'run input', samples_in FROM latest_run
                UNION ALL
                SELECT 10 + 2 * rs.position, rs.step || ': dropped', rs.dropped
                FROM run_steps rs JOIN latest_run r USING (run_id)
                UNION ALL
                SELECT 11 + 2 * rs.position, rs.step || ': flagged', rs.flagged
                FROM run_steps rs JOIN latest_run r USING (run_id)
                UNION ALL
                SELECT 100000, 'kept', (SELECT count(*) FROM kept) WHERE EXISTS (SELECT 1 FROM latest_run)
                ORDER BY position""",
        ),
    ),
)

MIGRATIONS += (
    Migration(
        3,
        "snapshots, snapshot_samples and reviews: immutable sets of kept samples and the verdicts on them",
        (
            "CREATE SEQUENCE snapshot_id_seq START 1",
            """CREATE TABLE snapshots (
                snapshot_id INTEGER PRIMARY KEY DEFAULT nextval('snapshot_id_seq'),
                parent_id INTEGER,
                run_id INTEGER NOT NULL,
                state VARCHAR NOT NULL CHECK (state IN ('draft', 'in_review', 'approved', 'rejected')),
                content_hash VARCHAR NOT NULL,
                n_samples BIGINT NOT NULL,
                n_new BIGINT NOT NULL,
                config JSON NOT NULL,
                note VARCHAR,
                created_at TIMESTAMP NOT NULL,
                state_changed_at TIMESTAMP,
                forced BOOLEAN NOT NULL DEFAULT false,
                certification JSON
            )""",
            """CREATE TABLE snapshot_samples (
                snapshot_id INTEGER NOT NULL,
                sample_id VARCHAR NOT NULL,
                version INTEGER NOT NULL,
                content_hash VARCHAR NOT NULL,
                is_new BOOLEAN NOT NULL,
                PRIMARY KEY (snapshot_id, sample_id)
            )""",
            """CREATE TABLE reviews (
                review_id VARCHAR PRIMARY KEY,
                item_kind VARCHAR NOT NULL CHECK (item_kind IN ('sample', 'answer')),
                item_id VARCHAR NOT NULL,
                snapshot_id INTEGER,
                sample_id VARCHAR,
                version INTEGER,
                stratum VARCHAR,
                reviewer VARCHAR,
                verdict VARCHAR CHECK (verdict IN ('accept', 'reject')),
                corrected_output VARCHAR,
                categories VARCHAR[],
                ratings JSON,
                status VARCHAR NOT NULL CHECK (status IN ('pending', 'submitted', 'skipped')),
                submitted_at TIMESTAMP,
                backend VARCHAR NOT NULL,
                backend_record_id VARCHAR
            )""",
        ),
    ),
)

MIGRATIONS += (
    Migration(
        4,
        "reviews.payload (the content of a rating item: prompt, answer, model, questions) and snapshots.review_plan "
        "(reviews, rounds and looks of the loop that certifies a snapshot)",
        ("ALTER TABLE reviews ADD COLUMN payload JSON", "ALTER TABLE snapshots ADD COLUMN review_plan JSON"),
    ),
)

MIGRATIONS += (
    Migration(
        5,
        "samples.raw_hash as a 128-bit integer (UHUGEINT) instead of 32 hex digits: a fixed-width column costs a "
        "tenth of a text one to write at ingest; printf('%032x', raw_hash) gives the hex digits",
        ("ALTER TABLE samples ALTER raw_hash TYPE UHUGEINT USING ('0x' || raw_hash)::UHUGEINT",),
    ),
)

MIGRATIONS += (
    Migration(
        6,
        "store_info: the store's own id (a uuid made once), so that two stores sharing one review server never "
        "share its projects",
        (
            "CREATE TABLE store_info (store_id VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL)",
            "INSERT INTO store_info SELECT CAST(uuid() AS VARCHAR), CAST(now() AT TIME ZONE 'UTC' AS TIMESTAMP)",
        ),
    ),
)

# "The current text of a sample" is defined once, here: every module reads these macros and views.
# The text columns in the order every reader uses them.
_TEXT = "instruction, input, output, system, messages, reasoning"
# a sample's text at a version: from a joined sample_texts row ``t`` when there is one, else as read in ``s``
_PICK = ", ".join(f"CASE WHEN t.sample_id IS NULL THEN s.{c} ELSE t.{c} END AS {c}" for c in _TEXT.split(", "))


def run_texts_page_sql() -> str:
    """``run_texts($run)`` restricted to one batch's row-number range (``batch_id = $cb``, ``row_number`` in
    ``($cr, $hi]``): the same rows and columns (a test compares them), the same text choice, but only that range's
    text versions are read. The macro's window runs over every version the run wrote before its rows are
    filtered, so each page of a step read all of them (on 300k real rows after cleaning, 65k versions with their
    text, per page: a step's page reads 1.7-2.0 s, now 1.2-1.4 s)."""
    page = "s.batch_id = $cb AND s.row_number > $cr AND s.row_number <= $hi"
    return f"""
        SELECT r.run_id, s.sample_id, coalesce(t.version, 0) AS version, s.batch_id, s.source, s.row_number,
               s.external_id, s.shape, {_PICK}, s.metadata
        FROM samples s
        JOIN batches b ON b.batch_id = s.batch_id AND b.status = 'done'
        JOIN runs r ON r.run_id = $run AND s.batch_id <= r.max_batch_id
        LEFT JOIN (
            SELECT t.* FROM sample_texts t
            WHERE t.run_id = $run AND t.sample_id IN (SELECT s.sample_id FROM samples s WHERE {page})
            QUALIFY row_number() OVER (PARTITION BY t.sample_id ORDER BY t.version DESC) = 1
        ) t ON t.sample_id = s.sample_id
        WHERE {page}"""


MIGRATIONS += (
    Migration(
        7,
        "one definition of a sample's text: sample_texts records what made a version (a run's step, or a snapshot's "
        "review: snapshot_id, run_id NULL), snapshots.applied_from; the view sample_versions and the table macros "
        "run_texts(run), run_kept(run), snapshot_texts(snapshot), funnel_for(run), snapshot_strata(snapshot); "
        "kept and funnel rebuilt on them",
        (
            "ALTER TABLE sample_texts ADD COLUMN snapshot_id INTEGER",
            "ALTER TABLE sample_texts ALTER COLUMN run_id DROP NOT NULL",
            # corrections written before this migration carried the reviewed snapshot's run: give them to the
            # snapshot whose reviews made them (the parent of the child that pins them), and out of the run
            """UPDATE sample_texts t SET snapshot_id = (
                   SELECT min(c.parent_id) FROM snapshot_samples cs JOIN snapshots c USING (snapshot_id)
                   WHERE cs.sample_id = t.sample_id AND cs.version = t.version), run_id = NULL
               WHERE t.step = 'review'""",
            "ALTER TABLE snapshots ADD COLUMN applied_from INTEGER",
            """UPDATE snapshots SET applied_from = parent_id
               WHERE certification IS NOT NULL AND json_extract(certification, '$.from_reviews_of') IS NOT NULL""",
            f"""CREATE VIEW sample_versions AS
                SELECT sample_id, 0 AS version, CAST(NULL AS INTEGER) AS run_id, CAST(NULL AS INTEGER) AS snapshot_id,
                       'ingest' AS step, shape, {_TEXT} FROM samples
                UNION ALL
                SELECT t.sample_id, t.version, t.run_id, t.snapshot_id, t.step, s.shape,
                       t.instruction, t.input, t.output, t.system, t.messages, t.reasoning
                FROM sample_texts t JOIN samples s USING (sample_id)""",
            # a run's input with the text the run made: the run's latest version, else as read (reviews never
            # write a run's versions, so a finished run's texts never change)
            f"""CREATE MACRO run_texts(run) AS TABLE
                WITH r AS (SELECT run_id, max_batch_id FROM runs WHERE run_id = run),
                cur AS (
                    SELECT t.* FROM sample_texts t WHERE t.run_id = run
                    QUALIFY row_number() OVER (PARTITION BY t.sample_id ORDER BY t.version DESC) = 1
                )
                SELECT r.run_id, s.sample_id, coalesce(t.version, 0) AS version, s.batch_id, s.source, s.row_number,
                       s.external_id, s.shape, {_PICK}, s.metadata
                FROM samples s
                JOIN batches b ON b.batch_id = s.batch_id AND b.status = 'done'
                JOIN r ON s.batch_id <= r.max_batch_id
                LEFT JOIN cur t ON t.sample_id = s.sample_id""",
            """CREATE MACRO run_kept(run) AS TABLE
                SELECT k.* FROM run_texts(run) k
                WHERE NOT EXISTS (SELECT 1 FROM decisions d WHERE d.run_id = k.run_id AND d.sample_id = k.sample_id
                                  AND d.verdict = 'drop')""",
            f"""CREATE MACRO snapshot_texts(snapshot) AS TABLE
                SELECT ss.snapshot_id, ss.sample_id, ss.version, ss.content_hash, ss.is_new, s.batch_id, s.source,
                       s.row_number, s.external_id, s.shape, {_PICK}, s.metadata
                FROM snapshot_samples ss JOIN samples s USING (sample_id)
                LEFT JOIN sample_texts t ON t.sample_id = ss.sample_id AND t.version = ss.version
                WHERE ss.snapshot_id = snapshot""",
            # the review strata of a snapshot's new samples: every sample a step of its run flagged is one
            # stratum (reviewed in full); the others by source file and language
            """CREATE MACRO snapshot_strata(snapshot) AS TABLE
                WITH sn AS (SELECT snapshot_id, run_id FROM snapshots WHERE snapshot_id = snapshot),
                lang AS (SELECT g.sample_id, any_value(g.text) AS lang FROM signals g JOIN sn USING (run_id)
                         WHERE g.name = 'lang' GROUP BY g.sample_id),
                fl AS (SELECT DISTINCT d.sample_id FROM decisions d JOIN sn USING (run_id) WHERE d.verdict = 'flag')
                SELECT ss.sample_id, ss.version, s.source, coalesce(lang.lang, 'und') AS lang,
                       fl.sample_id IS NOT NULL AS flagged,
                       CASE WHEN fl.sample_id IS NOT NULL THEN 'flagged'
                            ELSE split_part(s.source, '/', -1) || '|' || coalesce(lang.lang, 'und') END AS stratum
                FROM snapshot_samples ss JOIN sn USING (snapshot_id) JOIN samples s USING (sample_id)
                LEFT JOIN lang ON lang.sample_id = ss.sample_id
                LEFT JOIN fl ON fl.sample_id = ss.sample_id
                WHERE ss.is_new""",
            """CREATE MACRO funnel_for(run) AS TABLE
                WITH r AS (SELECT * FROM runs WHERE run_id = run),
                b AS (SELECT * FROM batches WHERE status = 'done'
                      AND (run IS NULL OR batch_id <= (SELECT max_batch_id FROM r)))
                SELECT 1 AS position, 'read' AS stage, coalesce((SELECT sum(rows_read) FROM b), 0)::BIGINT AS rows
                UNION ALL
                SELECT 2, 'quarantined', coalesce((SELECT sum(rows_quarantined) FROM b), 0)::BIGINT
                UNION ALL
                SELECT 3, 'loaded', (SELECT count(*) FROM samples s JOIN b USING (batch_id))::BIGINT
                UNION ALL
                SELECT 4, 'run input', samples_in FROM r
                UNION ALL
                SELECT 10 + 2 * rs.position, rs.step || ': dropped', rs.dropped FROM run_steps rs JOIN r USING (run_id)
                UNION ALL
                SELECT 11 + 2 * rs.position, rs.step || ': flagged', rs.flagged FROM run_steps rs JOIN r USING (run_id)
                UNION ALL
                SELECT 100000, 'kept', (SELECT count(*) FROM run_kept(run)) WHERE EXISTS (SELECT 1 FROM r)""",
            "DROP VIEW funnel",
            "DROP VIEW kept",
            "CREATE VIEW kept AS SELECT * FROM run_kept((SELECT run_id FROM latest_run))",
            """CREATE VIEW funnel AS SELECT * FROM funnel_for((SELECT run_id FROM latest_run)) ORDER BY position""",
        ),
    ),
    Migration(
        8,
        "leases: the process that loads a batch or runs a run, and its heartbeat",
        (
            "ALTER TABLE batches ADD COLUMN owner VARCHAR",
            "ALTER TABLE batches ADD COLUMN heartbeat_at TIMESTAMP",
            "ALTER TABLE runs ADD COLUMN owner VARCHAR",
            "ALTER TABLE runs ADD COLUMN heartbeat_at TIMESTAMP",
            # a view's columns are fixed when it is made: remade to show the new ones
            """CREATE OR REPLACE VIEW latest_run AS
                SELECT * FROM runs WHERE status = 'done' ORDER BY run_id DESC LIMIT 1""",
        ),
    ),
    Migration(
        9,
        "the service: API tokens (hashed), the audit log of mutating calls, background jobs",
        (
            """CREATE TABLE api_tokens (
                token_id VARCHAR PRIMARY KEY,
                name VARCHAR NOT NULL,
                role VARCHAR NOT NULL,
                token_hash VARCHAR NOT NULL UNIQUE,
                created_at TIMESTAMP NOT NULL,
                revoked_at TIMESTAMP
            )""",
            "CREATE SEQUENCE audit_seq START 1",
            """CREATE TABLE audit_log (
                audit_id BIGINT PRIMARY KEY DEFAULT nextval('audit_seq'),
                logged_at TIMESTAMP NOT NULL,
                token_id VARCHAR,
                token_name VARCHAR,
                role VARCHAR,
                method VARCHAR NOT NULL,
                path VARCHAR NOT NULL,
                status INTEGER NOT NULL,
                job_id BIGINT,
                detail VARCHAR
            )""",
            "CREATE SEQUENCE job_seq START 1",
            """CREATE TABLE jobs (
                job_id BIGINT PRIMARY KEY DEFAULT nextval('job_seq'),
                kind VARCHAR NOT NULL,
                params JSON NOT NULL,
                status VARCHAR NOT NULL,
                created_by VARCHAR,
                created_at TIMESTAMP NOT NULL,
                started_at TIMESTAMP,
                finished_at TIMESTAMP,
                attempts INTEGER NOT NULL DEFAULT 0,
                owner VARCHAR,
                heartbeat_at TIMESTAMP,
                progress JSON,
                result JSON,
                error JSON,
                log VARCHAR
            )""",
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version
