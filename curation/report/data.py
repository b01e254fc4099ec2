"""Gathering the figures of a `curate report` page: everything with SQL on one read-only connection.

Histograms are binned by DuckDB, so gathering costs the same for a thousand samples or ten million.
The page itself is drawn by :mod:`curation.report.page`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from curation.errors import UsageError
from curation.ingest.likeness import batch_warnings
from curation.store.store import Store

EXCERPT_CHARS = 300  # instruction / output excerpts in the examples
TOP_REASONS = 30  # rules (reason groups) shown in the table and the examples
EXAMPLES_PER_REASON = 5
LENGTH_BINS = 40
QUALITY_BINS = 20
TOP_LANGUAGES = 30
TOP_LANGUAGE_PAIRS = 30

# A reason's rule: the stable prefix of its text, so that a per-sample detail (a Jaccard value, a copy count,
# a sample id, a quoted excerpt) never makes a group of its own. Steps write "<rule>: <details>" (quality,
# language, decontaminate) or "<rule> <sample id> (<details>)" (exact, near and semantic dedup), and record
# no rule name of their own, so the rule is:
#   1. the part before the first ':'; without one, the part before the first ' (';
#   2. cut at the first sample id (16 hex digits) or opening double quote, written ' …';
#   3. numbers left in it written '#', spaces squeezed; '(no reason)' when nothing is left.
# "near duplicate of sample fa7a... (Jaccard 0.75; cluster of 2, one kept)" -> "near duplicate of sample …";
# "truncated answer: ends mid-sentence: ..." -> "truncated answer". Grouped with the step (rule per step).
_REASON = "coalesce(reason, '')"
REASON_HEAD_SQL = (
    "coalesce(nullif(trim(regexp_replace(regexp_replace(regexp_replace("
    f"CASE WHEN strpos({_REASON}, ':') > 0 THEN split_part({_REASON}, ':', 1) "
    rf"ELSE regexp_replace({_REASON}, '\s*\(.*$', '', 's') END, "
    r"""'\s*(\b[0-9a-f]{16}\b|["“«]).*$', ' …', 's'), """
    r"'\b\d+(\.\d+)?\b', '#', 'g'), '\s+', ' ', 'g')), ''), '(no reason)')"
)

# The run's input samples with their current text: the store's one definition (run_texts). Parameter: run_id.
RUN_TEXTS_SQL = """
    txt AS (SELECT * FROM run_texts(?))"""

# Characters per sample: dialogue user turns count as instruction, assistant turns as output.
LENGTHS_SQL = f"""
    WITH {RUN_TEXTS_SQL},
    lens AS (
        SELECT sample_id,
            CASE WHEN messages IS NULL
                 THEN length(coalesce(instruction, '')) + length(coalesce(input, ''))
                 ELSE coalesce(list_sum(list_transform(list_filter(messages, lambda m: m.role = 'user'),
                                                       lambda m: length(coalesce(m.content, '')))), 0)
            END AS instruction,
            CASE WHEN messages IS NULL THEN length(coalesce(output, ''))
                 ELSE coalesce(list_sum(list_transform(list_filter(messages, lambda m: m.role = 'assistant'),
                                                       lambda m: length(coalesce(m.content, '')))), 0)
            END AS output,
            CASE WHEN messages IS NULL THEN length(reasoning)
                 ELSE list_sum(list_transform(list_filter(messages, lambda m: m.reasoning IS NOT NULL),
                                              lambda m: length(m.reasoning)))
            END AS reasoning
        FROM txt
    ),
    long AS (
        SELECT 'instruction' AS field, instruction AS len FROM lens
        UNION ALL SELECT 'output', output FROM lens
        UNION ALL SELECT 'reasoning', reasoning FROM lens WHERE reasoning IS NOT NULL
    ),
    stats AS (
        SELECT field, count(*) AS n, count(*) FILTER (WHERE len = 0) AS empty,
               quantile_disc(len, 0.5) AS p50, quantile_disc(len, 0.9) AS p90,
               quantile_disc(len, 0.99) AS p99, max(len) AS max,
               greatest(1, ceil((quantile_disc(len, 0.99) + 1) / {LENGTH_BINS}))::BIGINT AS width
        FROM long GROUP BY field
    ),
    binned AS (
        SELECT l.field, s.width, least(l.len, s.p99)::BIGINT // s.width AS bin
        FROM long l JOIN stats s USING (field)
    )
    SELECT s.field, s.n, s.empty, s.p50, s.p90, s.p99, s.max, s.width,
           list({{'bin': b.bin, 'n': b.n}} ORDER BY b.bin) AS bins
    FROM stats s
    JOIN (SELECT field, bin, count(*) AS n FROM binned GROUP BY ALL) b USING (field)
    GROUP BY ALL
"""


@dataclass
class Histogram:
    """Counts per bin: bin i covers [start + i*width, start + (i+1)*width); the last may hold a clipped tail."""

    n: int
    width: float
    counts: list[tuple[int, int]]  # (bin index, count)
    stats: dict[str, Any] = field(default_factory=dict)
    clipped_above: float | None = None  # values above this were counted in the last bin


@dataclass
class ReportData:
    """What the page shows; every part may be empty."""

    run: dict[str, Any]
    latest_run_id: int | None
    funnel: list[tuple[str, int]]
    steps: list[dict[str, Any]]
    reason_groups: list[dict[str, Any]]  # step, verdict, head (the rule), n, distinct_reasons, example
    languages: list[tuple[str, int, float | None]]  # lang, samples, mean confidence
    language_pairs: list[tuple[str, str, int]] | None  # None when the signals are not there
    lengths: dict[str, Histogram]
    quality: Histogram | None
    examples: dict[str, list[dict[str, Any]]]  # verdict -> example rows (step, head, reason, source, texts, ...)
    example_heads: dict[str, list[tuple[str, str, int]]]  # verdict -> [(step, head, count)] in display order
    warnings: list[tuple[int, str, str]] = field(default_factory=list)  # batch id, source name, warning


def _dicts(con, sql: str, params: list | None = None) -> list[dict[str, Any]]:  # noqa: ANN001
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def resolve_run(con, run_id: int | None) -> dict[str, Any]:  # noqa: ANN001
    """The run to report on: ``run_id``, else the latest done run; UsageError when there is none."""
    runs = _dicts(con, "SELECT run_id, status FROM runs ORDER BY run_id")
    if not runs:
        raise UsageError("no pipeline run in the store: run `curate run` first")
    if run_id is None:
        done = [r["run_id"] for r in runs if r["status"] == "done"]
        if not done:
            last = runs[-1]
            raise UsageError(
                f"no finished run in the store (run {last['run_id']} is {last['status']}): "
                f"finish it with `curate run`, or pass --run {last['run_id']}"
            )
        run_id = done[-1]
    rows = _dicts(con, "SELECT * FROM runs WHERE run_id = ?", [run_id])
    if not rows:
        known = ", ".join(str(r["run_id"]) for r in runs[-20:])
        raise UsageError(f"no run {run_id} in the store (runs: {known})")
    return rows[0]


def _funnel(con, run: dict[str, Any]) -> list[tuple[str, int]]:  # noqa: ANN001
    """The run's funnel: the store's funnel_for macro (what the `funnel` view answers for the latest run)."""
    return [(s, int(n)) for s, n in con.execute("SELECT stage, rows FROM funnel_for(?) ORDER BY position",
                                                [run["run_id"]]).fetchall()]


def _histogram_from_bins(row: dict[str, Any], clip: float | None) -> Histogram:
    return Histogram(
        n=int(row["n"]),
        width=float(row["width"]),
        counts=[(int(b["bin"]), int(b["n"])) for b in row["bins"]],
        stats={k: row[k] for k in ("n", "empty", "p50", "p90", "p99", "max") if k in row},
        clipped_above=clip,
    )


def _sources_root(sources: list[str]) -> str:
    """The folder the run's input files share ('' when they share none): example cards name a file relative
    to it, so a report passed around names ``instructions.jsonl``, not the path of someone's home folder."""
    paths = [s for s in sources if s and os.path.isabs(s)]
    if not paths:
        return ""
    try:
        root = os.path.commonpath(paths) if len(paths) > 1 else os.path.dirname(paths[0])
    except ValueError:  # different drives
        return ""
    if root in paths:  # one file ingested more than once
        root = os.path.dirname(root)
    return root


def _relative_source(source: str | None, root: str) -> str | None:
    if source and root and source.startswith(root.rstrip(os.sep) + os.sep):
        return source[len(root.rstrip(os.sep)) + 1:]
    return source


def gather(store: Store, run_id: int | None = None) -> ReportData:
    """Read everything the report shows, on one read-only connection."""
    with store.reader() as con:
        run = resolve_run(con, run_id)
        rid = run["run_id"]
        latest = con.execute("SELECT max(run_id) FROM latest_run").fetchall()[0][0]
        funnel = _funnel(con, run)
        kept = next((n for s, n in funnel if s == "kept"), None)
        run["kept"] = kept
        steps = _dicts(con, """SELECT position, step, kind, status, rows_in, dropped, flagged, changed, counters
                               FROM run_steps WHERE run_id = ? ORDER BY position""", [rid])
        reason_groups = _dicts(con, f"""
            SELECT step, verdict, {REASON_HEAD_SQL} AS head, count(*) AS n,
                   count(DISTINCT reason) AS distinct_reasons, min(reason) AS example
            FROM decisions WHERE run_id = ? AND verdict IN ('drop', 'flag')
            GROUP BY ALL ORDER BY n DESC, step, verdict, head LIMIT {TOP_REASONS}""", [rid])
        languages = [(str(lang), int(n), conf) for lang, n, conf in con.execute(
            """SELECT coalesce(nullif(text, ''), '(none)') AS lang, count(DISTINCT sample_id) AS n, avg(value) AS conf
               FROM signals WHERE run_id = ? AND name = 'lang' GROUP BY 1 ORDER BY n DESC, lang""", [rid]).fetchall()]
        has_pairs = con.execute(
            """SELECT count(DISTINCT name) = 2 FROM signals
               WHERE run_id = ? AND name IN ('lang.instruction', 'lang.output')""", [rid]).fetchall()[0][0]
        language_pairs = None
        if has_pairs:
            language_pairs = [(str(a), str(b), int(n)) for a, b, n in con.execute(f"""
                SELECT coalesce(nullif(i.text, ''), '(none)'), coalesce(nullif(o.text, ''), '(none)'),
                       count(DISTINCT i.sample_id) AS n
                FROM signals i JOIN signals o ON o.run_id = i.run_id AND o.sample_id = i.sample_id
                                              AND o.name = 'lang.output'
                WHERE i.run_id = ? AND i.name = 'lang.instruction'
                GROUP BY ALL ORDER BY n DESC, 1, 2 LIMIT {TOP_LANGUAGE_PAIRS}""", [rid]).fetchall()]
        lengths = {}
        for row in _dicts(con, LENGTHS_SQL, [rid]):
            clip = row["p99"] if row["max"] > row["p99"] else None
            lengths[row["field"]] = _histogram_from_bins(row, clip)
        q = _dicts(con, f"""
            WITH v AS (SELECT value FROM signals WHERE run_id = ? AND name = 'quality_score' AND value IS NOT NULL)
            SELECT (SELECT count(*) FROM v) AS n, {1 / QUALITY_BINS} AS width,
                   (SELECT quantile_cont(value, 0.5) FROM v) AS p50,
                   (SELECT min(value) FROM v) AS min, (SELECT max(value) FROM v) AS max,
                   (SELECT list({{'bin': bin, 'n': n}} ORDER BY bin) FROM (
                       SELECT least(greatest(floor(value * {QUALITY_BINS}), 0), {QUALITY_BINS - 1})::BIGINT AS bin,
                              count(*) AS n
                       FROM v GROUP BY 1)) AS bins""", [rid])[0]
        quality = None
        if q["n"]:
            quality = Histogram(n=int(q["n"]), width=float(q["width"]),
                                counts=[(int(b["bin"]), int(b["n"])) for b in q["bins"]],
                                stats={"n": q["n"], "min": q["min"], "median": q["p50"], "max": q["max"]})
        examples: dict[str, list[dict[str, Any]]] = {}
        root = _sources_root([s for s, in con.execute(
            "SELECT DISTINCT source FROM batches WHERE batch_id <= ? ORDER BY 1", [run["max_batch_id"]]).fetchall()])
        example_heads: dict[str, list[tuple[str, str, int]]] = {}
        for verdict in ("flag", "drop"):
            heads = [(st, h, int(n)) for st, h, n in con.execute(f"""
                SELECT step, {REASON_HEAD_SQL} AS head, count(*) AS n FROM decisions
                WHERE run_id = ? AND verdict = ? GROUP BY 1, 2 ORDER BY n DESC, step, head LIMIT {TOP_REASONS}""",
                [rid, verdict]).fetchall()]
            example_heads[verdict] = heads
            if not heads:
                examples[verdict] = []
                continue
            examples[verdict] = _dicts(con, f"""
                WITH {RUN_TEXTS_SQL},
                d AS (SELECT sample_id, step, reason, ref_sample_id, score, {REASON_HEAD_SQL} AS head
                      FROM decisions WHERE run_id = ? AND verdict = ?),
                picked AS (
                    SELECT d.* FROM d WHERE {{'step': step, 'head': head}} IN (SELECT unnest(?::STRUCT(step VARCHAR, head VARCHAR)[]))
                    QUALIFY row_number() OVER (PARTITION BY step, head ORDER BY sample_id) <= {EXAMPLES_PER_REASON}
                )
                SELECT p.head, p.sample_id, p.step, p.reason, p.ref_sample_id, p.score, t.shape,
                       t.source, t.row_number, t.external_id,
                       left(CASE WHEN t.messages IS NULL
                                 THEN concat_ws('\n\n', t.instruction, nullif(t.input, ''))
                                 ELSE list_filter(t.messages, lambda m: m.role = 'user')[1].content END,
                            {EXCERPT_CHARS + 64}) AS instruction,
                       left(CASE WHEN t.messages IS NULL THEN t.output
                                 ELSE list_filter(t.messages, lambda m: m.role = 'assistant')[1].content END,
                            {EXCERPT_CHARS + 64}) AS output,
                       CASE WHEN t.messages IS NULL THEN NULL ELSE len(t.messages) END AS turns
                FROM picked p LEFT JOIN txt t USING (sample_id)
                ORDER BY p.step, p.head, p.sample_id""",
                [rid, rid, verdict, [{"step": st, "head": h} for st, h, _ in heads]])
            for ex in examples[verdict]:
                ex["source"] = _relative_source(ex["source"], root)
    return ReportData(run=run, latest_run_id=latest, funnel=funnel, steps=steps, reason_groups=reason_groups,
                      languages=languages, language_pairs=language_pairs, lengths=lengths,
                      quality=quality, examples=examples, example_heads=example_heads,
                      warnings=batch_warnings(store, run["max_batch_id"]))
