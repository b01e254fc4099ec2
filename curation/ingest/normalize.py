"""Turn raw rows (JSON text) into samples and quarantine records, in one vectorised DuckDB query.

Every format's reader yields rows as JSON text, so this is the one place where shapes are recognised
(alpaca, ShareGPT, OpenAI messages), types are checked and reasoning is split from answers. It runs
in a scratch in-memory DuckDB, away from the store, so the store is locked only for the inserts.
"""

from __future__ import annotations

import json

import pyarrow as pa

from curation.duck import query_arrow
from curation.ingest.mapping import DEFAULT_FIELDS, FieldMapping, json_path
from schemas.sample import THINK_PATTERN_SQL

OPENAI_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant",
                "tool": "tool", "function": "tool"}
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant",
                  "assistant": "assistant", "chatgpt": "assistant", "bard": "assistant", "bing": "assistant",
                  "model": "assistant", "function_call": "assistant", "observation": "tool", "tool": "tool",
                  "function": "tool"}

MACROS = (
    """CREATE OR REPLACE MACRO jt(t) AS CASE t WHEN 'VARCHAR' THEN 'a string' WHEN 'ARRAY' THEN 'an array'
        WHEN 'OBJECT' THEN 'an object' WHEN 'NULL' THEN 'null' WHEN 'BOOLEAN' THEN 'a boolean'
        ELSE 'a number' END""",
)


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _role_case(expr: str, roles: dict[str, str]) -> str:
    whens = " ".join(f"WHEN {_q(k)} THEN {_q(v)}" for k, v in roles.items())
    return f"(CASE lower({expr}) {whens} END)"


def _turn_sql(role_key: str, content_key: str, roles: dict[str, str], label: str) -> tuple[str, str, str]:
    """SQL for a list of turns in ``v_turns``: (fast all-good test, first error of one turn ``m``, structs).

    The fast test reads each path once for the whole list (wildcard paths); the per-turn error, which
    parses every turn several times, runs only for rows that fail it.
    """
    rk, ck = json_path(role_key), json_path(content_key)
    wr, wc = "$[*]" + rk[1:], "$[*]" + ck[1:]
    allowed = ", ".join(_q(k) for k in roles)
    fast = f"""(list_distinct(json_type(v_turns, '$[*]')) = ['OBJECT']
        AND len(json_type(v_turns, {_q(wr)})) = json_array_length(v_turns)
        AND list_distinct(json_type(v_turns, {_q(wr)})) = ['VARCHAR']
        AND coalesce(list_bool_and(list_transform(json_extract_string(v_turns, {_q(wr)}), lambda r: lower(r) IN ({allowed}))), false)
        AND len(json_type(v_turns, {_q(wc)})) = json_array_length(v_turns)
        AND list_distinct(json_type(v_turns, {_q(wc)})) = ['VARCHAR']
        AND coalesce(list_bool_and(list_transform(json_type(v_turns, '$[*].reasoning_content'), lambda t: t IN ('VARCHAR', 'NULL'))), true))"""
    role = _role_case(f"(m ->> {_q(rk)})", roles)
    err = f"""CASE
        WHEN json_type(m) <> 'OBJECT' THEN 'is ' || jt(json_type(m)) || ', expected an object'
        WHEN json_extract(m, {_q(rk)}) IS NULL THEN 'has no ''{role_key}'''
        WHEN json_type(m, {_q(rk)}) <> 'VARCHAR' THEN '''{role_key}'' is ' || jt(json_type(m, {_q(rk)})) || ', expected a string'
        WHEN {role} IS NULL THEN 'has unknown {label} role ''' || (m ->> {_q(rk)}) || ''''
        WHEN json_extract(m, {_q(ck)}) IS NULL THEN 'has no ''{content_key}'''
        WHEN json_type(m, {_q(ck)}) <> 'VARCHAR' THEN '''{content_key}'' is ' || jt(json_type(m, {_q(ck)})) || ', expected a string'
        WHEN json_type(m, '$.reasoning_content') NOT IN ('VARCHAR', 'NULL') THEN '''reasoning_content'' is ' || jt(json_type(m, '$.reasoning_content')) || ', expected a string'
        END"""
    spec = json.dumps([{role_key: "VARCHAR", content_key: "VARCHAR", "reasoning_content": "VARCHAR"}])
    srole = _role_case(f"s.{_ident(role_key)}", roles)
    content = f"s.{_ident(content_key)}"
    think = _q(THINK_PATTERN_SQL)
    split = (f"({srole} = 'assistant' AND s.reasoning_content IS NULL "
             f"AND regexp_matches({content}, {think}, 's'))")
    structs = f"""list_transform(json_transform(v_turns, {_q(spec)}), lambda s: {{'role': {srole},
        'content': CASE WHEN {split} THEN regexp_extract({content}, {think}, 2, 's') ELSE {content} END,
        'reasoning': CASE WHEN {split} THEN regexp_extract({content}, {think}, 1, 's') ELSE s.reasoning_content END}})"""
    return fast, err, structs


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def build_sql(mapping: FieldMapping) -> str:
    """The normalising query over ``raw_in(row_number, line, raw, raw_bytes, problem)``."""
    paths: list[str] = []
    index: dict[str, list[tuple[int, str]]] = {}
    for target in DEFAULT_FIELDS:
        for src in mapping.sources(target):
            paths.append(json_path(src))
            index.setdefault(target, []).append((len(paths), src))

    def val(target: str) -> str:
        items = index[target]
        return items[0] and (f"v[{items[0][0]}]" if len(items) == 1 else "coalesce(" + ", ".join(f"v[{i}]" for i, _ in items) + ")")

    def name(target: str) -> str:
        items = index[target]
        if len(items) == 1:
            return _q(items[0][1])
        return "CASE " + " ".join(f"WHEN v[{i}] IS NOT NULL THEN {_q(s)}" for i, s in items) + f" ELSE {_q(items[0][1])} END"

    think = _q(THINK_PATTERN_SQL)
    msg_fast, msg_err, msg_structs = _turn_sql("role", "content", OPENAI_ROLES, "OpenAI")
    conv_fast, conv_err, conv_structs = _turn_sql("from", "value", SHAREGPT_ROLES, "ShareGPT")
    top = lambda t: sorted({s.split(".")[0] for s in mapping.sources(t)})  # noqa: E731
    consumed = {
        "alpaca": sorted({k for t in ("instruction", "input", "output", "system", "id", "reasoning") for k in top(t)}),
        "openai": sorted({k for t in ("messages", "system", "id") for k in top(t)}),
        "sharegpt": sorted({k for t in ("conversations", "system", "id") for k in top(t)}),
    }
    consumed_case = "CASE shape " + " ".join(
        f"WHEN {_q(s)} THEN [{', '.join(_q(k) for k in keys)}]" for s, keys in consumed.items()
    ) + " END"

    def type_check(target: str, required: bool) -> str:
        v, n = val(target), name(target)
        parts = []
        if required:
            parts.append(f"WHEN {v} IS NULL THEN {{'reason': 'missing required field ''' || {n} || '''', 'field': {n}}}")
            parts.append(
                f"WHEN json_type({v}) <> 'VARCHAR' THEN {{'reason': 'field ''' || {n} || ''' is ' || jt(json_type({v})) || ', expected a string', 'field': {n}}}"
            )
        else:
            parts.append(
                f"WHEN {v} IS NOT NULL AND json_type({v}) NOT IN ('VARCHAR', 'NULL') THEN {{'reason': 'field ''' || {n} || ''' is ' || jt(json_type({v})) || ', expected a string', 'field': {n}}}"
            )
        return "\n".join(parts)

    def dialogue_check(shape: str, target: str, fast: str, err: str) -> str:
        v, n = val(target), name(target)
        fast = fast.replace("v_turns", v)
        turns = f"CAST({v} AS JSON[])"
        first_bad = f"list_position(list_transform({turns}, lambda m: ({err}) IS NOT NULL), true)"
        return f"""WHEN shape = {_q(shape)} AND json_type({v}) <> 'ARRAY' THEN {{'reason': 'field ''' || {n} || ''' is ' || jt(json_type({v})) || ', expected a list of turns', 'field': {n}}}
            WHEN shape = {_q(shape)} AND json_array_length({v}) = 0 THEN {{'reason': 'field ''' || {n} || ''' has no turns', 'field': {n}}}
            WHEN shape = {_q(shape)} AND NOT {fast}
                THEN {{'reason': coalesce({n} || '[' || ({first_bad} - 1) || '] '
                    || list_filter(list_transform({turns}, lambda m: {err}), lambda e: e IS NOT NULL)[1],
                    {n} || ': a turn lacks a string role or content'), 'field': {n}}}"""

    alpaca_required = "\n".join(
        f"WHEN shape = 'alpaca' AND ({c.split(' THEN ')[0][5:]}) THEN {c.split(' THEN ', 1)[1]}"
        for c in (type_check("instruction", True) + "\n" + type_check("output", True)).split("\n")
    )
    optional = "\n".join(
        f"WHEN ({c.split(' THEN ')[0][5:]}) THEN {c.split(' THEN ', 1)[1]}"
        for t in ("input", "system", "reasoning")
        for c in type_check(t, False).split("\n")
    )
    path_list = "[" + ", ".join(_q(p) for p in paths) + "]"
    return f"""
WITH a AS (
    SELECT row_number, line, raw, raw_bytes, problem,
           CASE WHEN problem IS NULL THEN json_valid(raw) END AS ok_json
    FROM raw_in
), b AS (
    SELECT *, json_type(CASE WHEN ok_json THEN raw END) AS top_type FROM a
), c AS (
    SELECT *, CASE WHEN top_type = 'OBJECT' THEN raw END AS obj FROM b
), c2 AS (
    SELECT *, json_extract(obj, {path_list}) AS v FROM c
), d AS (
    SELECT *, CASE
        WHEN {val('messages')} IS NOT NULL THEN 'openai'
        WHEN {val('conversations')} IS NOT NULL THEN 'sharegpt'
        WHEN {val('instruction')} IS NOT NULL OR {val('output')} IS NOT NULL THEN 'alpaca'
        END AS shape
    FROM c2
), e AS (
    SELECT *, CASE
        WHEN problem IS NOT NULL THEN {{'reason': problem, 'field': NULL}}
        WHEN NOT ok_json THEN {{'reason': 'malformed JSON', 'field': NULL}}
        WHEN top_type <> 'OBJECT' THEN {{'reason': 'row is ' || jt(top_type) || ', expected a JSON object', 'field': NULL}}
        WHEN shape IS NULL THEN {{'reason': 'no ' || {name('instruction')} || '/' || {name('output')} || ', ' || {name('messages')}
            || ' or ' || {name('conversations')} || ' field (fields present: ' || coalesce(array_to_string(json_keys(obj), ', '), 'none')
            || '); use --map to name them', 'field': NULL}}
        {alpaca_required}
        {dialogue_check('openai', 'messages', msg_fast, msg_err)}
        {dialogue_check('sharegpt', 'conversations', conv_fast, conv_err)}
        {optional}
        END AS fault
    FROM d
)
SELECT row_number, line, raw, raw_bytes, shape, v, fault.reason AS reason, fault.field AS field,
    CASE WHEN fault IS NULL THEN md5(raw) END AS raw_hash,
    CASE WHEN fault IS NULL THEN
        CASE WHEN {val('id')} IS NULL OR json_type({val('id')}) = 'NULL' THEN NULL
             WHEN json_type({val('id')}) = 'VARCHAR' THEN {val('id')} ->> '$'
             ELSE CAST({val('id')} AS VARCHAR) END
    END AS external_id,
    CASE WHEN fault IS NULL AND shape = 'alpaca' THEN {val('instruction')} ->> '$' END AS instruction,
    CASE WHEN fault IS NULL AND shape = 'alpaca' THEN {val('input')} ->> '$' END AS input,
    CASE WHEN fault IS NULL AND shape = 'alpaca' THEN
        CASE WHEN ({val('reasoning')} ->> '$') IS NULL AND regexp_matches({val('output')} ->> '$', {think}, 's')
             THEN regexp_extract({val('output')} ->> '$', {think}, 2, 's') ELSE {val('output')} ->> '$' END
    END AS output,
    CASE WHEN fault IS NULL THEN {val('system')} ->> '$' END AS system,
    CASE WHEN fault IS NULL AND shape = 'openai' THEN {msg_structs.replace('v_turns', val('messages'))}
         WHEN fault IS NULL AND shape = 'sharegpt' THEN {conv_structs.replace('v_turns', val('conversations'))}
    END AS messages,
    CASE WHEN fault IS NULL AND shape = 'alpaca' THEN
        coalesce({val('reasoning')} ->> '$',
                 CASE WHEN regexp_matches({val('output')} ->> '$', {think}, 's')
                      THEN regexp_extract({val('output')} ->> '$', {think}, 1, 's') END)
    END AS reasoning,
    CASE WHEN fault IS NULL THEN (
        SELECT CASE WHEN len(extra) = 0 THEN NULL ELSE
            to_json(map_from_entries(list_transform(extra, lambda k: {{'key': k, 'value': json_extract(obj, '$."' || replace(k, '"', '\\"') || '"')}})))
        END
        FROM (SELECT list_filter(json_keys(CASE WHEN fault IS NULL THEN obj END), lambda k: NOT list_contains({consumed_case}, k)) AS extra)
    ) END AS metadata
FROM e
"""


SAMPLE_COLUMNS = ("sample_id", "batch_id", "source", "row_number", "external_id", "shape", "instruction", "input",
                  "output", "system", "messages", "reasoning", "metadata", "raw_hash")


def _json_error(raw: str | None) -> str:
    try:
        json.loads(raw or "")
    except json.JSONDecodeError as e:
        return f"malformed JSON: {e.msg} at column {e.colno} (char {e.pos})"
    except RecursionError:
        return "malformed JSON: nested too deeply"
    return "malformed JSON"


class Normalizer:
    """Runs the normalising query on raw chunks in its own in-memory DuckDB."""

    def __init__(self, mapping: FieldMapping) -> None:
        import duckdb

        self.mapping = mapping
        self.con = duckdb.connect()
        for m in MACROS:
            self.con.execute(m)
        self.sql = build_sql(mapping)

    def close(self) -> None:
        """Release the scratch database."""
        self.con.close()

    def __enter__(self) -> "Normalizer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, chunk: pa.Table, batch_id: int, source: str, source_name: str) -> tuple[pa.Table, pa.Table]:
        """Normalise one chunk: (sample rows, quarantine rows) as Arrow tables in the store's column order."""
        self.con.register("raw_in", chunk)
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE norm AS {self.sql}")
        finally:
            self.con.unregister("raw_in")
        samples = query_arrow(
            self.con,
            f"""SELECT substr(md5(? || chr(10) || row_number::VARCHAR || chr(10) || raw_hash), 1, 16) AS sample_id,
                   ?::INTEGER AS batch_id, ? AS source, row_number, external_id, shape, instruction, input, output,
                   system, messages::STRUCT(role VARCHAR, content VARCHAR, reasoning VARCHAR)[] AS messages,
                   reasoning, metadata::JSON AS metadata, raw_hash
               FROM norm WHERE reason IS NULL ORDER BY row_number""",
            [source_name, batch_id, source],
        )
        bad = query_arrow(
            self.con,
            """SELECT ?::INTEGER AS batch_id, ? AS source, row_number, line, raw, raw_bytes, reason, field
               FROM norm WHERE reason IS NOT NULL ORDER BY coalesce(line, row_number)""",
            [batch_id, source],
        )
        if bad.num_rows:
            reasons = bad.column("reason").to_pylist()
            if "malformed JSON" in reasons:
                raws = bad.column("raw").to_pylist()
                reasons = [_json_error(r) if why == "malformed JSON" else why for r, why in zip(raws, reasons)]
                bad = bad.set_column(bad.schema.get_field_index("reason"), "reason", pa.array(reasons, pa.string()))
        return samples, bad
