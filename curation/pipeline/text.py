"""Text helpers shared by steps: the content hash, vectorised over Arrow in DuckDB."""

from __future__ import annotations

import pyarrow as pa

from curation.duck import query_arrow

# Whitespace runs are collapsed before hashing (and dropped next to field separators), so copies that
# differ only in spacing share a hash; the stored text keeps its line structure. One regex pass over the
# joined fields, not one per field.
_JOINED = r"""regexp_replace(concat_ws(chr(31), shape,
    coalesce(system, ''), coalesce(instruction, ''), coalesce(input, ''), coalesce(output, ''), coalesce(reasoning, ''),
    coalesce(array_to_string(list_transform(messages, lambda m: m.role || chr(30) || coalesce(m.content, '')
                                              || chr(30) || coalesce(m.reasoning, '')), chr(29)), '')),
    '\s+', ' ', 'g')"""
# then a space next to a field separator (chr 29-31) goes, so "a " and "a" hash alike; plain replace()
# is much cheaper than a second regex
_HASHED = _JOINED
for _c in (29, 30, 31):
    _HASHED = f"replace(replace({_HASHED}, ' ' || chr({_c}), chr({_c})), chr({_c}) || ' ', chr({_c}))"
CONTENT_HASH_SQL = f"md5(trim({_HASHED}))"


def content_hash_sql() -> str:
    """SQL expression over columns shape, system, instruction, input, output, reasoning, messages."""
    return CONTENT_HASH_SQL


def content_hashes(table: pa.Table) -> pa.Array:
    """One content hash per row of ``table`` (needs the text columns and shape)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("t", table)
        return query_arrow(con, f"SELECT {content_hash_sql()} AS h FROM t").column("h").combine_chunks()
    finally:
        con.close()
