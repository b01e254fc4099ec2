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

LATEST_VERSION = MIGRATIONS[-1].version
