"""Small compatibility layer over the DuckDB Python API (names changed between 1.x and 2.x)."""

from __future__ import annotations

import pyarrow as pa


def arrow_table(result) -> pa.Table:  # noqa: ANN001
    """The whole result of an executed query as an Arrow table."""
    fn = getattr(result, "to_arrow_table", None) or result.fetch_arrow_table
    return fn()


def arrow_reader(result, batch_rows: int) -> pa.RecordBatchReader:  # noqa: ANN001
    """Stream the result of an executed query as Arrow record batches."""
    fn = getattr(result, "to_arrow_reader", None)
    if fn is not None:
        return fn(batch_rows)
    return result.fetch_record_batch(batch_rows)
