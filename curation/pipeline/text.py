"""Text helpers shared by steps: the content hash (its SQL, and a compiled version of it for a page)."""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa

from curation.duck import in_parts, query_arrow


def collapse_ws_sql(x: str) -> str:
    """SQL for ``regexp_replace(x, '\\s+', ' ', 'g')`` (RE2's ``\\s`` is [\\t\\n\\f\\r ]), 5x faster.

    The four other whitespace characters become spaces with plain ``replace`` (a memchr scan), and only
    runs of two or more spaces go through the regex, whose literal prefix RE2 skips to; ``\\s+`` made
    RE2 stop at every character (40 MB/s: 2.3 s for the 88 M characters of the benchmark's dialogues).
    """
    for c in (10, 13, 9, 12):
        x = f"replace({x}, chr({c}), ' ')"
    return f"regexp_replace({x}, '  +', ' ', 'g')"


# Whitespace runs are collapsed before hashing (and dropped next to field separators), so copies that
# differ only in spacing share a hash; the stored text keeps its line structure. One pass over the
# joined fields, not one per field.
_JOINED = collapse_ws_sql(r"""concat_ws(chr(31), shape,
    coalesce(system, ''), coalesce(instruction, ''), coalesce(input, ''), coalesce(output, ''), coalesce(reasoning, ''),
    coalesce(array_to_string(list_transform(messages, lambda m: m.role || chr(30) || coalesce(m.content, '')
                                              || chr(30) || coalesce(m.reasoning, '')), chr(29)), ''))""")
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
    """One content hash per row of ``table`` (needs the text columns and shape): :func:`content_hash_sql`'s values.

    The fields are joined by Arrow, the whitespace is normalised by a compiled pass over the joined bytes and
    each row is hashed by ``hashlib``: 300k real rows took 4.5 s in DuckDB, whose md5 runs after a dozen passes
    of replace() over the text (tests compare the two on every kind of whitespace and on real rows). Rows with
    a turn without a role (which the SQL leaves out of the join) are hashed by the SQL."""
    import hashlib

    import pyarrow.compute as pc

    from curation.threads import thread_map

    n = table.num_rows
    if n == 0:
        return pa.array([], pa.string())

    def text(name: str) -> pa.Array:
        return pc.fill_null(table.column(name).combine_chunks().cast(pa.string()), "")

    msgs = table.column("messages").combine_chunks()
    flat = msgs.flatten()
    turns = pc.binary_join_element_wise(flat.field("role"), pc.fill_null(flat.field("content"), ""),
                                        pc.fill_null(flat.field("reasoning"), ""), "\x1e")
    offsets = pc.subtract(msgs.offsets, msgs.offsets[0])
    dialogue = pc.binary_join(pa.ListArray.from_arrays(offsets, turns, mask=pc.is_null(msgs)), "\x1d")
    no_role = pc.and_(pc.is_valid(msgs), pc.is_null(dialogue)).to_numpy(zero_copy_only=False)
    joined = pc.binary_join_element_wise(
        text("shape"), *(text(f) for f in ("system", "instruction", "input", "output", "reasoning")),
        pc.fill_null(dialogue, ""), "\x1f").cast(pa.large_string())
    bufs = joined.buffers()
    offs = np.frombuffer(bufs[1], np.int64)[joined.offset:joined.offset + n + 1]
    data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(1, np.uint8)
    out = np.empty(len(data), np.uint8)
    ends = np.empty(n, np.int64)
    view = memoryview(out)
    md5 = hashlib.md5

    def run(lo: int, hi: int) -> list[str]:
        _normalise(offs, data, out, ends, lo, hi)  # in threads: both release the GIL (md5 from 2 KiB of text)
        return [md5(view[offs[i]:ends[i]]).hexdigest() for i in range(lo, hi)]

    cuts = np.searchsorted(offs[1:], np.linspace(offs[0], offs[-1], 3)[1:-1]).tolist() if n > 1000 else []
    hashes = [h for part in thread_map(lambda span: run(*span), list(zip([0, *cuts], [*cuts, n])))
              for h in part]
    if no_role.any():
        rows = pa.array(np.flatnonzero(no_role))
        for i, h in zip(rows.to_pylist(), _content_hashes_sql(table.take(rows)).to_pylist()):
            hashes[i] = h
    return pa.array(hashes, pa.string())


@numba.njit(nogil=True, cache=True)
def _normalise(offs: np.ndarray, data: np.ndarray, out: np.ndarray, ends: np.ndarray, lo: int,
               hi: int) -> None:  # pragma: no cover - compiled
    """Rows ``lo .. hi - 1`` of the joined text ``data``, written to ``out`` at the same offsets as
    :data:`CONTENT_HASH_SQL` hashes them: tab, newline, form feed and carriage return are spaces; a run of spaces
    is one; a space next to a field separator (bytes 29 to 31) goes, and so do the spaces at both ends.
    ``ends[r]``: where row ``r``'s new text ends.

    One pass: a run of spaces is held back and written before the next other byte, unless that byte or the
    last one written is a separator, or nothing is written yet."""
    for r in range(lo, hi):
        start = offs[r]
        w = start
        space_ok = False  # a space may follow what is written: something is, and it ends with no separator
        pending = False
        for i in range(start, offs[r + 1]):
            b = data[i]
            if b <= 32 and (b == 32 or b == 10 or b == 13 or b == 9 or b == 12):
                pending = True
                continue
            sep = 29 <= b <= 31
            if pending:
                if space_ok and not sep:
                    out[w] = 32
                    w += 1
                pending = False
            out[w] = b
            w += 1
            space_ok = not sep
        ends[r] = w


def _content_hashes_sql(table: pa.Table) -> pa.Array:
    """:func:`content_hash_sql` over ``table`` in DuckDB."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("t", in_parts(table))
        # in the table's order: DuckDB keeps the insertion order of a projection across threads
        return query_arrow(con, f"SELECT {content_hash_sql()} AS h FROM t").column("h").combine_chunks()
    finally:
        con.close()


def text_versions(batch: pa.Table, cols: dict[str, pa.Array], turn_cols: dict[str, pa.Array], changed) -> pa.Table:  # noqa: ANN001
    """New text versions (TEXT_SCHEMA) for the rows of ``batch`` where ``changed`` (a bool array) is true.

    ``cols``: the new text fields (instruction, input, output, system, reasoning) as whole columns;
    ``turn_cols``: the new ``content`` and ``reasoning`` of the flattened turns of ``batch.messages``.
    """
    import pyarrow.compute as pc

    from curation.pipeline.base import TEXT_SCHEMA

    msgs = batch.column("messages").combine_chunks()
    flat = msgs.flatten()
    offsets = pc.subtract(msgs.offsets, msgs.offsets[0])
    new_flat = pa.StructArray.from_arrays([flat.field("role"), turn_cols["content"], turn_cols["reasoning"]],
                                          names=["role", "content", "reasoning"])
    new_msgs = pa.ListArray.from_arrays(offsets, new_flat, type=TEXT_SCHEMA.field("messages").type, mask=pc.is_null(msgs))
    mask = pa.array(changed)
    texts = pa.table({
        "sample_id": batch.column("sample_id").combine_chunks().filter(mask),
        **{f: cols[f].filter(mask) for f in ("instruction", "input", "output", "system")},
        "messages": new_msgs.filter(mask),
        "reasoning": cols["reasoning"].filter(mask),
        "shape": batch.column("shape").combine_chunks().filter(mask),
    })
    texts = texts.drop_columns(["shape"]).append_column("content_hash", content_hashes(texts))
    return texts.select(TEXT_SCHEMA.names).cast(TEXT_SCHEMA)
