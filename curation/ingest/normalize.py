"""Turn raw rows (JSON text) into samples and quarantine records, in one vectorised DuckDB query.

Every format's reader yields rows as JSON text, so this is the one place where shapes are recognised
(alpaca, ShareGPT, OpenAI messages), types are checked and reasoning is split from answers. It runs
in a scratch in-memory DuckDB, away from the store, so the store is locked only for the inserts.
"""

from __future__ import annotations

import json
import re

import pyarrow as pa
import pyarrow.compute as pc

from curation.duck import relation_arrow
from curation.duck import sql_ident as _ident
from curation.duck import sql_literal as _q
from curation.errors import UsageError
from curation.ingest.mapping import DEFAULT_FIELDS, FieldMapping, json_path
from schemas.sample import THINK_SPLIT_MACROS_SQL

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
    *THINK_SPLIT_MACROS_SQL,
)



def _role_case(expr: str, roles: dict[str, str], as_written_first: bool = True) -> str:
    """The canonical role of a turn's role text, NULL when unknown (case-insensitive).

    With ``as_written_first``, names as written are matched first, so that lower() (a new string per
    turn) runs only for roles in other cases (``Human``, ``USER``); paths that run only for bad rows
    leave it out (the query is bound again for every chunk, and its size is part of that cost).
    """
    whens = " ".join(f"WHEN {_q(k)} THEN {_q(v)}" for k, v in roles.items())
    if not as_written_first:
        return f"(CASE lower({expr}) {whens} END)"
    return f"(CASE {expr} {whens} ELSE CASE lower({expr}) {whens} END END)"


def _turn_sql(role_key: str, content_key: str, roles: dict[str, str], label: str) -> dict[str, str]:
    """SQL pieces for a list of turns ``turns`` of one shape.

    ``spec_json`` / ``spec_text``: json_transform specs that read every turn's fields as JSON text (for
    their types: a string starts with a quote) and as text (for their values), one parse each for the
    whole list. ``fast`` tests all turns at once over those two (``tj``, ``tv``); ``err`` gives the
    first error of one turn ``m`` and runs only for rows that fail ``fast``; ``structs`` builds the
    stored turns from ``tv``.
    """
    rk, ck = json_path(role_key), json_path(content_key)
    allowed = ", ".join(_q(k) for k in roles)
    r, c = _ident(role_key), _ident(content_key)
    fast = f"""(list_bool_and(list_transform(tj, lambda x: coalesce(starts_with(x.{r}, '"'), false)
                AND coalesce(starts_with(x.{c}, '"'), false)
                AND (x.reasoning_content IS NULL OR starts_with(x.reasoning_content, '"'))))
        AND list_bool_and(list_transform(tv, lambda x: lower(x.{r}) IN ({allowed}))))"""
    role = _role_case(f"(m ->> {_q(rk)})", roles, as_written_first=False)
    err = f"""CASE
        WHEN json_type(m) <> 'OBJECT' THEN 'is ' || jt(json_type(m)) || ', expected an object'
        WHEN json_extract(m, {_q(rk)}) IS NULL THEN 'has no ''{role_key}'''
        WHEN json_type(m, {_q(rk)}) <> 'VARCHAR' THEN '''{role_key}'' is ' || jt(json_type(m, {_q(rk)})) || ', expected a string'
        WHEN {role} IS NULL THEN 'has unknown {label} role ''' || (m ->> {_q(rk)}) || ''''
        WHEN json_extract(m, {_q(ck)}) IS NULL THEN 'has no ''{content_key}'''
        WHEN json_type(m, {_q(ck)}) <> 'VARCHAR' THEN '''{content_key}'' is ' || jt(json_type(m, {_q(ck)})) || ', expected a string'
        WHEN json_type(m, '$.reasoning_content') NOT IN ('VARCHAR', 'NULL') THEN '''reasoning_content'' is ' || jt(json_type(m, '$.reasoning_content')) || ', expected a string'
        END"""
    # the same test from the values alone (see _maybe_not_string); rows it does not pass take ``fast``
    fast_v = f"""coalesce(list_bool_and(list_transform(tv, lambda x: coalesce(x.{r} IN ({allowed}) OR lower(x.{r}) IN ({allowed}), false)
                AND x.{c} IS NOT NULL AND NOT {_maybe_not_string('x.' + c)}
                AND (x.reasoning_content IS NULL OR NOT {_maybe_not_string('x.reasoning_content')}))), false)"""
    spec_json = json.dumps([{role_key: "JSON", content_key: "JSON", "reasoning_content": "JSON"}])
    spec_text = json.dumps([{role_key: "VARCHAR", content_key: "VARCHAR", "reasoning_content": "VARCHAR"}])
    srole = _role_case(f"tr.{r}", roles)
    content = f"tr.{c}"
    turn = f"{{'role': {srole}, 'content': {content}, 'reasoning': tr.reasoning_content}}"
    # Turns are split only in rows whose turns hold '</think>' at all (one scan of the JSON text): an
    # assistant turn without reasoning_content whose content opens with a think block; the position
    # of its end (``te``) is found once per turn.
    structs = f"""CASE WHEN contains(turns, '</think>') THEN list_transform(list_transform(tv, lambda tr: {{'t': {turn},
            'te': CASE WHEN {srole} = 'assistant' AND tr.reasoning_content IS NULL THEN think_end({content}) END}}),
        lambda x: CASE WHEN x.te IS NULL THEN x.t ELSE {{'role': x.t.role, 'content': think_answer_at(x.t.content, x.te),
            'reasoning': think_reasoning_at(x.t.content, x.te)}} END)
        ELSE list_transform(tv, lambda tr: {turn}) END"""
    return {"spec_json": spec_json, "spec_text": spec_text, "fast": fast, "fast_v": fast_v, "err": err,
            "structs": structs}



def build_sql(mapping: FieldMapping, fast_types: bool = True) -> str:
    """The normalising query over ``raw_in(row_number, line, raw, raw_bytes, problem, row_hash)``.

    A well-formed row's JSON is parsed twice: once for its keys (json_keys: presence, and what goes to
    metadata) and once for the values of all mapped fields (json_transform into a struct); a dialogue's
    turns are parsed once more. The types of the mapped fields follow from those two
    (:func:`_fast_types`); only rows where they cannot (a value that reads like a number, a boolean or
    JSON text; a nested --map path) pay a third parse, json_type over every path. Per-turn error
    messages, which need more parsing, are built only for rows that fail the fast checks.
    ``fast_types=False`` takes the types of every row from json_type (tests hold the two together).
    """
    paths: list[str] = ["$"]  # t[1] is the row's own type
    index: dict[str, list[tuple[int, str]]] = {}
    for target in DEFAULT_FIELDS:
        for src in mapping.sources(target):
            paths.append(json_path(src))
            index.setdefault(target, []).append((len(paths), src))

    def pick(target: str, arr: str) -> str:
        items = index[target]
        if len(items) == 1:
            return f"{arr}[{items[0][0]}]"
        whens = " ".join(f"WHEN t[{i}] IS NOT NULL THEN {arr}[{i}]" for i, _ in items)
        return f"(CASE {whens} END)"

    def typ(target: str) -> str:
        return pick(target, "t")

    # Values come from one json_transform into a struct (one parse; struct fields are read without
    # copying, where list elements would be copied out one by one).
    spec: dict = {}
    access: dict[int, str] = {}
    leaves: dict[int, tuple[str, str, str]] = {}
    for target, items in index.items():
        leaf = "JSON" if target in ("messages", "conversations") else "VARCHAR"
        for i, src in items:
            parts = src.split(".")
            node = spec
            for part in parts[:-1]:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise UsageError(f"--map uses {part!r} both as a field and as an object")
                node = child
            if isinstance(node.get(parts[-1]), dict):
                raise UsageError(f"--map uses {parts[-1]!r} both as a field and as an object")
            node[parts[-1]] = leaf if node.get(parts[-1]) in (None, leaf) else "JSON"
            access[i] = "st." + ".".join(_ident(p) for p in parts)
            leaves[i] = (target, src, leaf)

    def val(target: str) -> str:
        items = index[target]
        if len(items) == 1:
            return access[items[0][0]]
        whens = " ".join(f"WHEN t[{i}] IS NOT NULL THEN {access[i]}" for i, _ in items)
        return f"(CASE {whens} END)"

    def name(target: str) -> str:
        items = index[target]
        if len(items) == 1:
            return _q(items[0][1])
        return "(CASE " + " ".join(f"WHEN t[{i}] IS NOT NULL THEN {_q(s)}" for i, s in items) + f" ELSE {_q(items[0][1])} END)"

    dialogue = {
        "openai": ("messages", "msg", _turn_sql("role", "content", OPENAI_ROLES, "OpenAI")),
        "sharegpt": ("conversations", "conv", _turn_sql("from", "value", SHAREGPT_ROLES, "ShareGPT")),
    }

    def top(t: str) -> list[str]:
        return sorted({s.split(".")[0] for s in mapping.sources(t)})

    consumed = {
        "alpaca": sorted({k for t in ("instruction", "input", "output", "system", "id", "reasoning") for k in top(t)}),
        "openai": sorted({k for t in ("messages", "system", "id") for k in top(t)}),
        "sharegpt": sorted({k for t in ("conversations", "system", "id") for k in top(t)}),
    }
    consumed_case = "(CASE shape " + " ".join(
        f"WHEN {_q(s)} THEN [{', '.join(_q(k) for k in keys)}]" for s, keys in consumed.items()
    ) + " END)"

    def fault(reason: str, field: str = "NULL") -> str:
        return f"{{'reason': {reason}, 'field': {field}}}"

    def wrong_type(target: str, expected: str) -> str:
        n = name(target)
        return fault(f"'field ''' || {n} || ''' is ' || jt({typ(target)}) || ', expected {expected}'", n)

    optional_ok = " AND ".join(f"({typ(t)} IS NULL OR {typ(t)} IN ('VARCHAR', 'NULL'))" for t in ("input", "system", "reasoning"))
    checks: list[str] = [
        # the common case first: a well-formed alpaca row leaves the CASE after one test
        f"WHEN problem IS NULL AND shape = 'alpaca' AND {typ('instruction')} = 'VARCHAR' AND {typ('output')} = 'VARCHAR' "
        f"AND {optional_ok} AND NOT dup THEN NULL",
        f"WHEN problem IS NOT NULL THEN {fault('problem')}",
        f"WHEN top_type IS NULL THEN {fault(_q('malformed JSON'))}",
        f"WHEN top_type <> 'OBJECT' THEN {fault(chr(39) + 'row is ' + chr(39) + ' || jt(top_type) || ' + _q(', expected a JSON object'))}",
        # a key given twice: the JSON parser keeps the first value, Python's json the last; neither is chosen
        f"WHEN dup THEN {fault(_q('duplicate key ' + chr(39)) + ' || list_filter(keys, lambda k, i: list_position(keys, k) < i)[1] || ' + _q(chr(39)))}",
        f"""WHEN shape IS NULL THEN {fault(
            f"'no ' || {name('instruction')} || '/' || {name('output')} || ', ' || {name('messages')} || ' or ' || "
            f"{name('conversations')} || ' field (fields present: ' || coalesce(array_to_string(json_keys(obj), ', '), 'none') || '); use --map to name them'")}""",
    ]
    for target in ("instruction", "output"):
        n = name(target)
        checks.append(f"WHEN shape = 'alpaca' AND {typ(target)} IS NULL THEN {fault(f'{chr(39)}missing required field {chr(39)*3} || {n} || {chr(39)*4}', n)}")
        checks.append(f"WHEN shape = 'alpaca' AND {typ(target)} <> 'VARCHAR' THEN {wrong_type(target, 'a string')}")
    for shape, (target, col, parts) in dialogue.items():
        n = name(target)
        turns = "CAST(turns AS JSON[])"
        err = parts["err"]
        # the first turn's error with its index ("[i] has no 'content'"); the error expression is
        # written once, since every copy is parsed and bound again for each chunk
        first_bad = (f"list_filter(list_transform(list_transform({turns}, lambda m: {err}), "
                     f"lambda e, i: CASE WHEN e IS NOT NULL THEN '[' || (i - 1) || '] ' || e END), "
                     f"lambda e: e IS NOT NULL)[1]")
        fast = parts["fast"].replace("tj", f"{col}_j").replace("tv", f"{col}_v")
        if fast_types:
            fast = f"(coalesce({col}_fv, false) OR {fast})"
        checks.append(f"WHEN shape = {_q(shape)} AND {typ(target)} <> 'ARRAY' THEN {wrong_type(target, 'a list of turns')}")
        checks.append(f"WHEN shape = {_q(shape)} AND len({col}_v) = 0 THEN {fault(f'{chr(39)}field {chr(39)*3} || {n} || {chr(39)*3} has no turns{chr(39)}', n)}")
        checks.append(
            f"""WHEN shape = {_q(shape)} AND NOT {fast} THEN {fault(
                f"coalesce({n} || {first_bad}, {n} || ': a turn lacks a string role or content')",
                n)}"""
        )
    for target in ("input", "system", "reasoning"):
        checks.append(f"WHEN {typ(target)} IS NOT NULL AND {typ(target)} NOT IN ('VARCHAR', 'NULL') THEN {wrong_type(target, 'a string')}")

    def is_turns(shape: str, target: str) -> str:
        return f"shape = {_q(shape)} AND {typ(target)} = 'ARRAY'"

    # a dialogue's turns as text values (one parse); as JSON text (their types, one more parse) only for
    # rows whose values do not settle the types (all rows with fast_types=False)
    turn_values = ",\n           ".join(
        f"CASE WHEN {is_turns(shape, target)} THEN json_transform(turns, {_q(parts['spec_text'])}) END AS {col}_v"
        for shape, (target, col, parts) in dialogue.items()
    )
    turn_fast = ",\n           ".join(
        (f"CASE WHEN {col}_v IS NOT NULL THEN {parts['fast_v'].replace('tv', col + '_v')} END" if fast_types
         else "false") + f" AS {col}_fv"
        for shape, (target, col, parts) in dialogue.items()
    )
    turn_types = ",\n           ".join(
        f"CASE WHEN {is_turns(shape, target)} AND NOT coalesce({col}_fv, false) "
        f"THEN json_transform(turns, {_q(parts['spec_json'])}) END AS {col}_j"
        for shape, (target, col, parts) in dialogue.items()
    )
    out = val("output")
    # where a think block at the start of the answer ends (NULL without one), found once per row
    out_te = f"CASE WHEN shape = 'alpaca' THEN think_end({out}) END AS out_te"
    path_list = "[" + ", ".join(_q(p) for p in paths) + "]"
    checks_sql = "\n            ".join(checks)
    spec_sql = _q(json.dumps(spec))
    slow_types = f"CASE WHEN problem IS NULL THEN try(json_type(raw, {path_list})) END"
    fast = _fast_types(spec, leaves) if fast_types else None
    if fast is None:
        types_sql = slow_types
    else:
        synth, plain = fast
        types_sql = f"CASE WHEN len(keys) > 0 AND {plain} THEN {synth} ELSE {slow_types} END"
    return f"""
WITH a0 AS (
    SELECT row_number, line, raw, raw_bytes, problem, row_hash,
           CASE WHEN problem IS NULL THEN try(json_keys(raw)) END AS keys
    FROM raw_in
), a00 AS (
    SELECT *, {_DUP_KEYS} AS dup FROM a0
), a1 AS (
    SELECT *, CASE WHEN len(keys) > 0 THEN json_transform(raw, {spec_sql}) END AS st0 FROM a00
), a AS (
    SELECT *, {types_sql} AS t FROM a1
), b AS (
    SELECT *, t[1] AS top_type, CASE WHEN t[1] = 'OBJECT' THEN raw END AS obj FROM a
), c AS (
    SELECT *, CASE WHEN st0 IS NOT NULL THEN st0 WHEN obj IS NOT NULL THEN json_transform(obj, {spec_sql}) END AS st
    FROM b
), d AS (
    SELECT *, CASE
        WHEN {typ('messages')} IS NOT NULL THEN 'openai'
        WHEN {typ('conversations')} IS NOT NULL THEN 'sharegpt'
        WHEN {typ('instruction')} IS NOT NULL OR {typ('output')} IS NOT NULL THEN 'alpaca'
        END AS shape
    FROM c
), d2 AS (
    SELECT *, CASE WHEN shape = 'openai' THEN {val('messages')}
                   WHEN shape = 'sharegpt' THEN {val('conversations')} END AS turns
    FROM d
), d3 AS (
    SELECT *, {turn_values}
    FROM d2
), d4 AS (
    SELECT *, {turn_fast}
    FROM d3
), d5 AS (
    SELECT *, {turn_types}
    FROM d4
), e AS (
    SELECT *, CASE
            {checks_sql}
        END AS fault,
        -- keys that go to metadata; the map is built only for rows that have any
        list_filter(keys, lambda k: NOT list_contains({consumed_case}, k)) AS extra_keys,
        {out_te}
    FROM d5
)
SELECT row_number, line, raw, raw_bytes, shape, fault.reason AS reason, fault.field AS field,
    CASE WHEN fault IS NULL THEN row_hash END AS raw_hash,
    CASE WHEN fault IS NULL AND {typ('id')} <> 'NULL' THEN {val('id')} END AS external_id,
    CASE WHEN fault IS NULL AND shape = 'alpaca' THEN {val('instruction')} END AS instruction,
    CASE WHEN fault IS NULL AND shape = 'alpaca' THEN {val('input')} END AS input,
    CASE WHEN fault IS NULL AND shape = 'alpaca' THEN
        CASE WHEN {val('reasoning')} IS NULL AND out_te IS NOT NULL THEN think_answer_at({out}, out_te) ELSE {out} END
    END AS output,
    CASE WHEN fault IS NULL THEN {val('system')} END AS system,
    CASE WHEN fault IS NULL AND shape = 'openai' THEN {dialogue['openai'][2]['structs'].replace('tv', 'msg_v')}
         WHEN fault IS NULL AND shape = 'sharegpt' THEN {dialogue['sharegpt'][2]['structs'].replace('tv', 'conv_v')}
    END AS messages,
    CASE WHEN fault IS NULL AND shape = 'alpaca' THEN
        coalesce({val('reasoning')}, CASE WHEN out_te IS NOT NULL THEN think_reasoning_at({out}, out_te) END)
    END AS reasoning,
    CASE WHEN fault IS NULL AND len(extra_keys) > 0 THEN to_json(map_from_entries(list_transform(extra_keys,
        lambda k: {{'key': k, 'value': json_extract(obj, '$."' || replace(k, '"', '\\"') || '"')}})))
    END AS metadata
FROM e
"""


# Whether a row's top-level keys repeat one. Rows of up to four keys (most rows) compare their keys
# pairwise, which costs a fifth of list_unique (0.06 s against 0.26 s per million rows, measured on
# benchmarks/bench_ingest.py's rows); larger rows count distinct keys.
_DUP_KEYS = """coalesce(CASE WHEN len(keys) <= 4
        THEN coalesce(keys[1] IN (keys[2], keys[3], keys[4]) OR keys[2] IN (keys[3], keys[4]) OR keys[3] = keys[4], false)
        ELSE len(keys) <> list_unique(keys) END, false)"""


def _json_kind(x: str) -> str:
    """The json_type name of a value read as JSON text (``x`` NULL when the key holds null)."""
    return (f"(CASE WHEN {x} IS NULL THEN 'NULL' WHEN starts_with({x}, '[') THEN 'ARRAY' "
            f"WHEN starts_with({x}, '{{') THEN 'OBJECT' WHEN starts_with({x}, '\"') THEN 'VARCHAR' "
            f"WHEN {x} IN ('true', 'false') THEN 'BOOLEAN' ELSE 'DOUBLE' END)")


def _maybe_not_string(x: str) -> str:
    """True when a value read as VARCHAR may not have been a JSON string.

    json_transform reads any value as VARCHAR (a number as its digits, an object as its JSON text), so
    a value that looks like a number, a boolean, an object or an array cannot be told from a string
    that reads the same; such rows get their types from json_type instead. Everything else was a string.
    """
    # prefix tests and byte-wise comparisons only: ascii() decodes the first character and costs more
    return (f"(CASE WHEN {x} IS NULL THEN false WHEN starts_with({x}, '[') OR starts_with({x}, '{{') THEN true "
            f"WHEN {x} IN ('true', 'false') THEN true "
            f"WHEN starts_with({x}, '-') OR ({x} >= '0' AND {x} < ':') "
            f"THEN regexp_full_match({x}, '-?[0-9][0-9.eE+-]*') ELSE false END)")


def _fast_types(spec: dict, leaves: dict[int, tuple[str, str, str]]) -> tuple[str, str] | None:
    """The types list ``t`` built from a row's keys and its json_transform struct ``st0``, without a
    json_type parse, and the condition under which it is exact; None when the mapping reads nested
    fields or one field for two targets (then json_type gives the types of every row).

    A key's presence comes from ``keys`` (json_keys, also needed for metadata); a JSON leaf's type
    from its first character; a VARCHAR leaf is a string unless it is null or reads like another
    type (:func:`_maybe_not_string`). ``id`` is read as text whatever its type, so only its null-ness
    counts.
    """
    if any("." in src for _t, src, _l in leaves.values()):
        return None
    if any(spec.get(src) != leaf for _t, src, leaf in leaves.values()):
        return None
    items = ["'OBJECT'"]
    plain = []
    for i in sorted(leaves):
        target, src, leaf = leaves[i]
        v = "st0." + _ident(src)
        present = f"list_contains(keys, {_q(src)})"
        if leaf == "JSON":
            items.append(f"CASE WHEN {present} THEN {_json_kind(v)} END")
            continue
        items.append(f"CASE WHEN {present} THEN CASE WHEN {v} IS NULL THEN 'NULL' ELSE 'VARCHAR' END END")
        if target != "id":
            plain.append(f"NOT {_maybe_not_string(v)}")
    return "[" + ", ".join(items) + "]", "(" + (" AND ".join(plain) or "true") + ")"


SAMPLE_COLUMNS = ("sample_id", "batch_id", "source", "row_number", "external_id", "shape", "instruction", "input",
                  "output", "system", "messages", "reasoning", "metadata", "raw_hash")


def _json_error(raw: str | None) -> str:
    """Why the JSON parser rejected a row, in words: Python's parser says where the syntax breaks; for
    text it accepts, what else is wrong (an escaped lone surrogate, which is not Unicode)."""
    try:
        value = json.loads(raw or "")
    except json.JSONDecodeError as e:
        return f"malformed JSON: {e.msg} at column {e.colno} (char {e.pos})"
    except RecursionError:
        return "malformed JSON: nested too deeply"
    found = _lone_surrogate(value)
    if found is not None:
        where, ch = found
        return f"lone surrogate \\u{ord(ch):04x} in {where} is not valid Unicode"
    return "malformed JSON"


_SURROGATE = re.compile("[\ud800-\udfff]")


def _lone_surrogate(value: object, path: str = "") -> tuple[str, str] | None:
    """(where, the character) of the first lone surrogate in a parsed JSON value, or None."""
    here = f"field {path!r}" if path else "the row"
    if isinstance(value, str):
        m = _SURROGATE.search(value)
        return (here, m.group()) if m else None
    items: list[tuple[str, object]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            m = _SURROGATE.search(k)
            if m:
                return (f"a key of {here}", m.group())
            items.append((f"{path}.{k}" if path else k, v))
    elif isinstance(value, list):
        items = [(f"{path}[{i}]", v) for i, v in enumerate(value)]
    for sub, v in items:
        found = _lone_surrogate(v, sub)
        if found is not None:
            return found
    return None


def _name_invalid_text(bad: pa.Table) -> pa.Table:
    """Quarantined rows whose text is not UTF-8, with that as their reason and their bytes in ``raw_bytes``.

    The JSONL reader leaves the UTF-8 check to the JSON parser, which rejects such a row (so it is
    quarantined as malformed, or as too large when it was never parsed); this names the bad bytes
    instead, exactly as a line-by-line decode would, and keeps ``raw`` a valid text column. Bad rows
    are few: one whole-column check settles the usual case.
    """
    raw = bad.column("raw").combine_chunks()
    try:
        raw.validate(full=True)
        return bad
    except pa.ArrowInvalid:
        pass
    texts: list[str | None] = []
    reasons = bad.column("reason").to_pylist()
    fields = bad.column("field").to_pylist()
    raw_bytes = bad.column("raw_bytes").to_pylist()
    for i, b in enumerate(raw.view(pa.binary()).to_pylist()):
        try:
            texts.append(b.decode("utf-8") if b is not None else None)
        except UnicodeDecodeError as e:
            texts.append(None)
            raw_bytes[i] = b
            reasons[i] = f"invalid utf-8 bytes at byte {e.start + 1} of the line ({e.reason})"
            fields[i] = None
    for name, values, typ in (("raw", texts, pa.string()), ("raw_bytes", raw_bytes, pa.binary()),
                              ("reason", reasons, pa.string()), ("field", fields, pa.string())):
        bad = bad.set_column(bad.schema.get_field_index(name), name, pa.array(values, typ))
    return bad


class Normalizer:
    """Runs the normalising query on raw chunks in its own in-memory DuckDB."""

    def __init__(self, mapping: FieldMapping) -> None:
        import duckdb

        self.mapping = mapping
        self.con = duckdb.connect()
        for m in MACROS:
            self.con.execute(m)
        self.sql = build_sql(mapping)
        self._rel = None
        self._rel_key: tuple[str, int, str] | None = None

    def _relation(self, source_name: str, batch_id: int, source: str):  # noqa: ANN202
        """The normalising query over the registered ``raw_in``, made once per batch.

        Making a relation parses and binds the query, and running it binds it again (about 40 ms
        each for this one); a relation run again reads whatever ``raw_in`` then names, so each
        further chunk of the batch pays for one binding instead of two.
        """
        key = (source_name, batch_id, source)
        if self._rel is None or self._rel_key != key:
            self._rel = self.con.sql(
                f"""SELECT CASE WHEN reason IS NULL
                                  THEN substr(md5($1 || chr(10) || row_number::VARCHAR || chr(10) || raw_hash), 1, 16)
                              END AS sample_id,
                              $2::INTEGER AS batch_id, $3 AS source, row_number, external_id, shape, instruction, input,
                              output, system, messages::STRUCT(role VARCHAR, content VARCHAR, reasoning VARCHAR)[] AS messages,
                              reasoning, metadata::JSON AS metadata, raw_hash,
                              line, CASE WHEN reason IS NOT NULL THEN raw END AS bad_raw,
                              CASE WHEN reason IS NOT NULL THEN raw_bytes END AS bad_bytes, reason, field
                        FROM ({self.sql})""",
                params=[source_name, batch_id, source],
            )
            self._rel_key = key
        return self._rel

    def close(self) -> None:
        """Release the scratch database."""
        self.con.close()

    def __enter__(self) -> "Normalizer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, chunk: pa.Table, batch_id: int, source: str, source_name: str) -> tuple[pa.Table, pa.Table]:
        """Normalise one chunk: (sample rows, quarantine rows) as Arrow tables in the store's column order."""
        # many small record batches, so that DuckDB scans them on all threads
        chunk = pa.Table.from_batches(chunk.to_batches(max_chunksize=8192), schema=chunk.schema)
        self.con.register("raw_in", chunk)
        try:
            both = relation_arrow(self._relation(source_name, batch_id, source))
        finally:
            self.con.unregister("raw_in")
        good = pc.is_null(both.column("reason"))
        if both.column("reason").null_count == both.num_rows:  # the common case: no copy
            samples, bad = both.select(list(SAMPLE_COLUMNS)), both.slice(0, 0)
        else:
            samples = both.filter(good).select(list(SAMPLE_COLUMNS))
            bad = both.filter(pc.invert(good))
        bad = pa.table(
            [bad.column("batch_id"), bad.column("source"), bad.column("row_number"), bad.column("line"),
             bad.column("bad_raw"), bad.column("bad_bytes"), bad.column("reason"), bad.column("field")],
            names=["batch_id", "source", "row_number", "line", "raw", "raw_bytes", "reason", "field"],
        )
        if bad.num_rows:
            bad = _name_invalid_text(bad)
            # rows without a row number (CSV rejects) carry a line; keep them in file order
            bad = bad.take(pc.sort_indices(pc.coalesce(bad.column("line"), bad.column("row_number"))))
            reasons = bad.column("reason").to_pylist()
            if "malformed JSON" in reasons:
                raws = bad.column("raw").to_pylist()
                reasons = [_json_error(r) if why == "malformed JSON" else why for r, why in zip(raws, reasons)]
                bad = bad.set_column(bad.schema.get_field_index("reason"), "reason", pa.array(reasons, pa.string()))
        return samples, bad
