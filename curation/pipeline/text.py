"""Text helpers shared by steps: the content hash, vectorised over Arrow in DuckDB."""

from __future__ import annotations

import pyarrow as pa

from curation.duck import query_arrow

# Whitespace runs are collapsed before hashing, so copies that differ only in spacing share a hash;
# the stored text keeps its line structure (code indentation survives cleaning).
CONTENT_HASH_SQL = """md5(concat_ws(chr(31), shape,
    {ws}(coalesce(system, '')), {ws}(coalesce(instruction, '')), {ws}(coalesce(input, '')),
    {ws}(coalesce(output, '')), {ws}(coalesce(reasoning, '')),
    coalesce(array_to_string(list_transform(messages, lambda m: m.role || chr(30) || {ws}(coalesce(m.content, ''))
                                              || chr(30) || {ws}(coalesce(m.reasoning, ''))), chr(29)), '')))"""


def content_hash_sql() -> str:
    """SQL expression over columns shape, system, instruction, input, output, reasoning, messages."""
    return CONTENT_HASH_SQL.format(ws="_ws")


def content_hashes(table: pa.Table) -> pa.Array:
    """One content hash per row of ``table`` (needs the text columns and shape)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute(r"CREATE MACRO _ws(x) AS trim(regexp_replace(x, '\s+', ' ', 'g'))")
        con.register("t", table)
        return query_arrow(con, f"SELECT {content_hash_sql()} AS h FROM t").column("h").combine_chunks()
    finally:
        con.close()
