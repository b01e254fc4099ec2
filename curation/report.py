"""`curate report`: one self-contained HTML page about a pipeline run.

Everything is gathered with SQL on one read-only connection (histograms are binned by DuckDB, so the
page costs the same for a thousand samples or ten million), figures are drawn by plotly with its
JavaScript inlined once (in the first figure), and the page needs nothing from the network.

Sample text is untrusted: every string that reaches the page goes through ``html.escape`` (also the
labels plotly draws, since plotly reads a few HTML-like tags in them).
"""

from __future__ import annotations

import functools
import html
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from curation.errors import UsageError
from curation.store.store import Store

EXCERPT_CHARS = 300  # instruction / output excerpts in the examples
TOP_REASONS = 30  # reason groups and reasons shown per table
EXAMPLES_PER_REASON = 5
LENGTH_BINS = 40
QUALITY_BINS = 20
TOP_LANGUAGES = 30
TOP_LANGUAGE_PAIRS = 30

# A reason's readable group: the part before the first ':' (per-sample details follow it), with
# sample ids (16 hex digits) replaced, so that "exact duplicate of 3fa4...": one group, not one per keeper.
REASON_HEAD_SQL = r"trim(regexp_replace(split_part(coalesce(reason, '(no reason)'), ':', 1), '\b[0-9a-f]{16}\b', '<sample>', 'g'))"

# The run's input samples with their current text: the run's latest sample_texts version, else as read
# (the definition of the `kept` view, for any run). Parameter: run_id.
RUN_TEXTS_SQL = """
    r AS (SELECT run_id, max_batch_id FROM runs WHERE run_id = ?),
    cur AS (
        SELECT t.* FROM sample_texts t JOIN r USING (run_id)
        QUALIFY row_number() OVER (PARTITION BY t.sample_id ORDER BY t.version DESC) = 1
    ),
    txt AS (
        SELECT s.sample_id, s.shape,
               CASE WHEN cur.sample_id IS NULL THEN s.instruction ELSE cur.instruction END AS instruction,
               CASE WHEN cur.sample_id IS NULL THEN s.input ELSE cur.input END AS input,
               CASE WHEN cur.sample_id IS NULL THEN s.output ELSE cur.output END AS output,
               CASE WHEN cur.sample_id IS NULL THEN s.messages ELSE cur.messages END AS messages,
               CASE WHEN cur.sample_id IS NULL THEN s.reasoning ELSE cur.reasoning END AS reasoning
        FROM samples s
        JOIN batches b ON b.batch_id = s.batch_id AND b.status = 'done'
        JOIN r ON s.batch_id <= r.max_batch_id
        LEFT JOIN cur ON cur.sample_id = s.sample_id
    )"""

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
    reason_groups: list[dict[str, Any]]  # step, verdict, head, n, distinct, example
    reasons: list[dict[str, Any]]  # step, verdict, reason, n
    languages: list[tuple[str, int, float | None]]  # lang, samples, mean confidence
    language_pairs: list[tuple[str, str, int]] | None  # None when the signals are not there
    lengths: dict[str, Histogram]
    quality: Histogram | None
    examples: dict[str, list[dict[str, Any]]]  # verdict -> example rows (head, reason, texts, ...)
    example_heads: dict[str, list[tuple[str, int]]]  # verdict -> [(head, count)] in display order


# ---------------------------------------------------------------------------------------------------
# Gathering
# ---------------------------------------------------------------------------------------------------


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


def _funnel(con, run: dict[str, Any], latest: int | None) -> list[tuple[str, int]]:  # noqa: ANN001
    if run["run_id"] == latest:  # the view answers for the latest run
        return [(s, int(n)) for s, n in con.execute("SELECT stage, rows FROM funnel ORDER BY position").fetchall()]
    # the same stages for an earlier (or unfinished) run, over the batches it read
    rid, mb = run["run_id"], run["max_batch_id"]
    sql = """
        SELECT 1 AS position, 'read' AS stage,
               COALESCE((SELECT sum(rows_read) FROM batches WHERE status = 'done' AND batch_id <= $mb), 0)::BIGINT AS rows
        UNION ALL SELECT 2, 'quarantined',
               COALESCE((SELECT sum(rows_quarantined) FROM batches WHERE status = 'done' AND batch_id <= $mb), 0)::BIGINT
        UNION ALL SELECT 3, 'loaded', (SELECT count(*) FROM samples s JOIN batches b USING (batch_id)
                                       WHERE b.status = 'done' AND b.batch_id <= $mb)::BIGINT
        UNION ALL SELECT 4, 'run input', samples_in FROM runs WHERE run_id = $rid
        UNION ALL SELECT 10 + 2 * position, step || ': dropped', dropped FROM run_steps WHERE run_id = $rid
        UNION ALL SELECT 11 + 2 * position, step || ': flagged', flagged FROM run_steps WHERE run_id = $rid
        UNION ALL SELECT 100000, 'kept', (
            SELECT count(*) FROM samples s JOIN batches b ON b.batch_id = s.batch_id AND b.status = 'done'
            WHERE s.batch_id <= $mb AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.run_id = $rid
                                                    AND d.sample_id = s.sample_id AND d.verdict = 'drop'))
        ORDER BY position"""
    return [(s, int(n)) for _, s, n in con.execute(sql, {"rid": rid, "mb": mb}).fetchall()]


def _histogram_from_bins(row: dict[str, Any], clip: float | None) -> Histogram:
    return Histogram(
        n=int(row["n"]),
        width=float(row["width"]),
        counts=[(int(b["bin"]), int(b["n"])) for b in row["bins"]],
        stats={k: row[k] for k in ("n", "empty", "p50", "p90", "p99", "max") if k in row},
        clipped_above=clip,
    )


def gather(store: Store, run_id: int | None = None) -> ReportData:
    """Read everything the report shows, on one read-only connection."""
    with store.reader() as con:
        run = resolve_run(con, run_id)
        rid = run["run_id"]
        latest = con.execute("SELECT max(run_id) FROM latest_run").fetchall()[0][0]
        funnel = _funnel(con, run, latest)
        kept = next((n for s, n in funnel if s == "kept"), None)
        run["kept"] = kept
        steps = _dicts(con, """SELECT position, step, kind, status, rows_in, dropped, flagged, changed, counters
                               FROM run_steps WHERE run_id = ? ORDER BY position""", [rid])
        reason_groups = _dicts(con, f"""
            SELECT step, verdict, {REASON_HEAD_SQL} AS head, count(*) AS n,
                   count(DISTINCT reason) AS distinct_reasons, min(reason) AS example
            FROM decisions WHERE run_id = ? AND verdict IN ('drop', 'flag')
            GROUP BY ALL ORDER BY n DESC, step, verdict, head LIMIT {TOP_REASONS}""", [rid])
        reasons = _dicts(con, f"""
            SELECT step, verdict, reason, count(*) AS n
            FROM decisions WHERE run_id = ? AND verdict IN ('drop', 'flag')
            GROUP BY ALL ORDER BY n DESC, step, verdict, reason LIMIT {TOP_REASONS}""", [rid])
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
        example_heads: dict[str, list[tuple[str, int]]] = {}
        for verdict in ("flag", "drop"):
            heads = [(h, int(n)) for h, n in con.execute(f"""
                SELECT {REASON_HEAD_SQL} AS head, count(*) AS n FROM decisions
                WHERE run_id = ? AND verdict = ? GROUP BY 1 ORDER BY n DESC, head LIMIT {TOP_REASONS}""",
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
                    SELECT d.* FROM d WHERE head IN (SELECT unnest(?::VARCHAR[]))
                    QUALIFY row_number() OVER (PARTITION BY head ORDER BY sample_id) <= {EXAMPLES_PER_REASON}
                )
                SELECT p.head, p.sample_id, p.step, p.reason, p.ref_sample_id, p.score, t.shape,
                       left(CASE WHEN t.messages IS NULL
                                 THEN concat_ws('\n\n', t.instruction, nullif(t.input, ''))
                                 ELSE list_filter(t.messages, lambda m: m.role = 'user')[1].content END,
                            {EXCERPT_CHARS + 64}) AS instruction,
                       left(CASE WHEN t.messages IS NULL THEN t.output
                                 ELSE list_filter(t.messages, lambda m: m.role = 'assistant')[1].content END,
                            {EXCERPT_CHARS + 64}) AS output,
                       CASE WHEN t.messages IS NULL THEN NULL ELSE len(t.messages) END AS turns
                FROM picked p LEFT JOIN txt t USING (sample_id)
                ORDER BY p.head, p.sample_id""", [rid, rid, verdict, [h for h, _ in heads]])
    return ReportData(run=run, latest_run_id=latest, funnel=funnel, steps=steps, reason_groups=reason_groups,
                      reasons=reasons, languages=languages, language_pairs=language_pairs, lengths=lengths,
                      quality=quality, examples=examples, example_heads=example_heads)


# ---------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------


def esc(value: object) -> str:
    """HTML-escaped text of any value ('' for None)."""
    if value is None:
        return ""
    return html.escape(str(value), quote=True)


def excerpt(text: str | None, limit: int = EXCERPT_CHARS) -> str:
    """``text`` cut to ``limit`` characters (with an ellipsis), personal data masked, HTML-escaped.

    A report is passed around more freely than the store, so e-mail addresses, phone numbers, ID and
    card numbers in examples are shown as placeholders (the same patterns as the redact_pii step).
    """
    if text is None:
        return '<span class="muted">(none)</span>'
    if text == "":
        return '<span class="muted">(empty)</span>'
    text = mask(text)
    cut = text if len(text) <= limit else text[:limit].rstrip() + "…"
    return esc(cut)


def mask(text: str | None) -> str | None:
    """Personal data in ``text`` replaced by placeholders (reasons quote the text they judged)."""
    return _redactor().redact(text, Counter()) if text else text


@functools.lru_cache(maxsize=1)
def _redactor():  # noqa: ANN202
    from curation.pipeline.steps.redact import RedactStep

    return RedactStep()


def _label(text: str, limit: int = 70) -> str:
    """A plotly axis label: cut, and escaped (plotly reads <br>, <a href> and the like in labels)."""
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return html.escape(text, quote=False)


def _fmt_num(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _fmt_time(v: object) -> str:
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S") + " UTC"
    return "—" if v is None else str(v)


def _table(headers: list[str], rows: list[list[object]], numeric: set[int] | None = None,
           wrap: set[int] | None = None, row_classes: list[str] | None = None) -> str:
    """An HTML table, every cell escaped; ``numeric`` columns right-aligned, ``wrap`` columns may wrap."""
    numeric, wrap = numeric or set(), wrap or set()

    def col(i: int) -> str:
        return "num" if i in numeric else "wrap" if i in wrap else ""

    head = "".join(f'<th class="{col(i)}">{esc(h)}</th>' for i, h in enumerate(headers))
    body = []
    for r_i, row in enumerate(rows):
        cells = []
        for i, v in enumerate(row):
            cells.append(f'<td class="{col(i)}">{esc(_fmt_num(v) if i in numeric else v)}</td>')
        tr = f' class="{esc(row_classes[r_i])}"' if row_classes and row_classes[r_i] else ""
        body.append(f"<tr{tr}>{''.join(cells)}</tr>")
    return f'<table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _none(message: str) -> str:
    return f'<p class="none">{esc(message)}</p>'


class _Figures:
    """Turns plotly figures into divs; plotly.js is inlined once, in the first figure of the page."""

    def __init__(self) -> None:
        try:
            import plotly.graph_objects as go  # noqa: F401
        except ImportError as e:  # pragma: no cover - depends on the install
            raise UsageError("`curate report` needs plotly: pip install 'llm-curate[report]'") from e
        self.count = 0

    def html(self, fig, name: str, height: int = 360) -> str:  # noqa: ANN001
        margin = {"l": 60, "r": 20, "t": 40, "b": 50}
        margin.update({k: getattr(fig.layout.margin, k) for k in margin if getattr(fig.layout.margin, k) is not None})
        fig.update_layout(template="plotly_white", height=height, margin=margin, font={"size": 12})
        self.count += 1
        div = fig.to_html(full_html=False, include_plotlyjs=self.count == 1, include_mathjax=False,
                          div_id=f"fig-{name}", config={"displaylogo": False, "responsive": True})
        return f'<div class="figure" data-figure="{esc(name)}">{div}</div>'


def _hist_figure(figs: _Figures, hist: Histogram, name: str, title: str, x_title: str, start: float = 0.0,
                 color: str = "#4C78A8", integer: bool = True, labels: bool = False) -> str:
    import plotly.graph_objects as go

    xs, ys, hover = [], [], []
    last = max(b for b, _ in hist.counts)
    for b, n in hist.counts:
        lo = start + b * hist.width
        hi = lo + hist.width
        xs.append(lo)
        ys.append(n)
        if integer:
            span = f"{int(lo):,}–{int(hi) - 1:,}" if hist.width > 1 else f"{int(lo):,}"
            if hist.clipped_above is not None and b == last:
                span = f"≥ {int(lo):,}"
        else:
            span = f"{lo:.2f}–{hi:.2f}"
        hover.append(f"{span}: {n:,}")
    fig = go.Figure(go.Bar(x=xs, y=ys, width=[hist.width] * len(xs), offset=0, marker_color=color,
                           hovertext=hover, hoverinfo="text", cliponaxis=False,
                           text=[f"{n:,}" for n in ys] if labels else None, textposition="outside"))
    fig.update_layout(title={"text": _label(title, 120)}, bargap=0.05, showlegend=False)
    fig.update_xaxes(title_text=x_title, rangemode="tozero")
    fig.update_yaxes(title_text="samples")
    return figs.html(fig, name, height=300)


def _header(data: ReportData) -> str:
    run = data.run
    try:
        config = json.dumps(json.loads(run["config"]), indent=2, ensure_ascii=False)
    except (TypeError, ValueError):
        config = str(run["config"])
    steps = ""
    try:
        steps = ", ".join(str(s.get("type") or s.get("name")) for s in json.loads(run["config"]).get("steps", []))
    except (TypeError, ValueError, AttributeError):
        pass
    latest = "" if run["run_id"] == data.latest_run_id else (
        f' <span class="badge">not the latest done run ({esc(data.latest_run_id)})</span>'
        if data.latest_run_id else "")
    status = "" if run["status"] == "done" else f' <span class="badge warn">{esc(run["status"])}</span>'
    facts = [
        ("run", f'{esc(run["run_id"])}{status}{latest}'),
        ("started", esc(_fmt_time(run["started_at"]))),
        ("finished", esc(_fmt_time(run["finished_at"]))),
        ("code version", esc(run["code_version"] or "—")),
        ("input", f'{esc(_fmt_num(run["samples_in"]))} samples (batches ≤ {esc(run["max_batch_id"])})'),
        ("kept", esc(_fmt_num(run["kept"])) if run["kept"] is not None else "—"),
        ("steps", esc(steps or "—")),
    ]
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    return (f'<header><h1>Curation report · run {esc(run["run_id"])}</h1><dl class="facts">{dl}</dl>'
            f'<details><summary>pipeline config</summary><pre>{esc(config)}</pre></details></header>')


def _funnel_section(figs: _Figures, data: ReportData) -> str:
    import plotly.graph_objects as go

    out = ['<section id="funnel"><h2>Funnel</h2>']
    if not data.funnel:
        out.append(_none("no funnel for this run"))
    else:
        stages = [s for s, _ in data.funnel]
        values = [n for _, n in data.funnel]
        colors = ["#E45756" if s == "quarantined" or s.endswith(": dropped") else
                  "#F58518" if s.endswith(": flagged") else "#54A24B" if s == "kept" else "#4C78A8" for s in stages]
        fig = go.Figure(go.Bar(y=[_label(s) for s in stages], x=values, orientation="h", marker_color=colors,
                               text=[f"{v:,}" for v in values], textposition="auto",
                               hovertemplate="%{y}: %{x:,}<extra></extra>"))
        fig.update_yaxes(autorange="reversed")
        fig.update_xaxes(title_text="rows")
        fig.update_layout(title={"text": "rows at each stage"}, margin={"l": 180})
        out.append(figs.html(fig, "funnel", height=max(260, 40 + 32 * len(stages))))
        out.append(_table(["stage", "rows"], [[s, n] for s, n in data.funnel], numeric={1}))
    if data.steps:
        rows = []
        for s in data.steps:
            try:
                counters = ", ".join(f"{k} {v}" for k, v in json.loads(s["counters"] or "{}").items())
            except (TypeError, ValueError, AttributeError):
                counters = str(s["counters"])
            rows.append([s["position"], s["step"], s["kind"], s["status"], s["rows_in"], s["dropped"], s["flagged"],
                         s["changed"], counters])
        out.append("<h3>Steps</h3>")
        out.append(_table(["#", "step", "kind", "status", "in", "dropped", "flagged", "changed", "counts"], rows,
                          numeric={0, 4, 5, 6, 7}, wrap={8}))
    out.append("</section>")
    return "".join(out)


def _reasons_section(figs: _Figures, data: ReportData) -> str:
    import plotly.graph_objects as go

    out = ['<section id="reasons"><h2>Drops and flags by step and reason</h2>']
    if not data.reason_groups:
        out.append(_none("no sample was dropped or flagged in this run"))
        out.append("</section>")
        return "".join(out)
    groups = data.reason_groups
    fig = go.Figure()
    for verdict, color in (("drop", "#E45756"), ("flag", "#F58518")):
        g = [r for r in groups if r["verdict"] == verdict]
        if g:
            fig.add_trace(go.Bar(
                y=[_label(f'{r["step"]} · {r["head"]}') for r in g], x=[r["n"] for r in g], orientation="h",
                name=verdict, marker_color=color, hovertemplate="%{y}: %{x:,}<extra>" + verdict + "</extra>"))
    fig.update_yaxes(autorange="reversed", categoryorder="total descending")
    fig.update_xaxes(title_text="samples")
    fig.update_layout(title={"text": f"top {len(groups)} reasons (part before ':')"}, barmode="stack",
                      margin={"l": 320, "t": 60},
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"})
    out.append(figs.html(fig, "reasons", height=max(260, 60 + 26 * len(groups))))
    out.append("<h3>By reason (part before ':')</h3>")
    out.append(_table(["step", "verdict", "reason", "samples", "distinct reasons", "e.g."],
                      [[r["step"], r["verdict"], r["head"], r["n"], r["distinct_reasons"], mask(r["example"])]
                       for r in groups], numeric={3, 4}, wrap={2, 5}))
    out.append(f"<h3>By reason as stored (top {TOP_REASONS})</h3>")
    out.append(_table(["step", "verdict", "reason", "samples"],
                      [[r["step"], r["verdict"], mask(r["reason"]), r["n"]] for r in data.reasons], numeric={3}, wrap={2}))
    out.append("</section>")
    return "".join(out)


def _language_section(figs: _Figures, data: ReportData) -> str:
    import plotly.graph_objects as go

    out = ['<section id="languages"><h2>Languages</h2>']
    if not data.languages:
        out.append(_none("no language signals in this run"))
    else:
        langs = data.languages[:TOP_LANGUAGES]
        rest = data.languages[TOP_LANGUAGES:]
        if rest:
            langs = [*langs, (f"other ({len(rest)})", sum(n for _, n, _ in rest), None)]
        fig = go.Figure(go.Bar(x=[_label(l, 24) for l, _, _ in langs], y=[n for _, n, _ in langs],
                               marker_color="#72B7B2", text=[f"{n:,}" for _, n, _ in langs], textposition="outside",
                               cliponaxis=False,
                               customdata=[("" if c is None else f"{c:.2f}") for _, _, c in langs],
                               hovertemplate="%{x}: %{y:,} samples, mean confidence %{customdata}<extra></extra>"))
        fig.update_layout(title={"text": "samples by detected language (signal 'lang')"})
        fig.update_xaxes(title_text="language", type="category")
        fig.update_yaxes(title_text="samples")
        out.append(figs.html(fig, "languages", height=320))
        out.append(_table(["language", "samples", "mean confidence"], [list(x) for x in langs], numeric={1, 2}))
    if data.language_pairs is not None:
        out.append("<h3>Instruction language → output language</h3>")
        if data.language_pairs:
            out.append(_table(["instruction", "output", "samples"], [list(p) for p in data.language_pairs],
                              numeric={2}, row_classes=["" if a == b else "mismatch" for a, b, _ in data.language_pairs]))
        else:
            out.append(_none("no sample has both signals"))
    out.append("</section>")
    return "".join(out)


def _lengths_section(figs: _Figures, data: ReportData) -> str:
    out = ['<section id="lengths"><h2>Lengths (characters, current text)</h2>',
           ('<p class="note">Over the run\'s input samples with their current text. Instruction includes the input '
            'field; in dialogues, user turns count as instruction and assistant turns as output. The x axis is '
            'clipped at the 99th percentile: longer samples are counted in the last bar.</p>')]
    if not data.lengths:
        out.append(_none("no samples in this run's input"))
    colors = {"instruction": "#4C78A8", "output": "#54A24B", "reasoning": "#B279A2"}
    rows = []
    for name in ("instruction", "output", "reasoning"):
        h = data.lengths.get(name)
        if h is None:
            if data.lengths:
                out.append(_none(f"no {name} text in this run's input" if name != "reasoning"
                                 else "no reasoning traces in this run's input"))
            continue
        title = f"{name}: {h.n:,} samples, median {_fmt_num(h.stats.get('p50'))} chars"
        if h.clipped_above is not None:
            title += f" (clipped at p99 = {int(h.clipped_above):,}; max {int(h.stats['max']):,})"
        out.append(_hist_figure(figs, h, f"length-{name}", title, "characters", color=colors[name]))
        s = h.stats
        rows.append([name, s["n"], s["empty"], s["p50"], s["p90"], s["p99"], s["max"]])
    if rows:
        out.append(_table(["text", "samples", "empty", "median", "p90", "p99", "max"], rows,
                          numeric={1, 2, 3, 4, 5, 6}))
    out.append("</section>")
    return "".join(out)


def _quality_section(figs: _Figures, data: ReportData) -> str:
    out = ['<section id="quality"><h2>Quality score</h2>']
    h = data.quality
    if h is None:
        out.append(_none("no quality scores in this run"))
    else:
        title = f"quality_score: {h.n:,} samples, median {_fmt_num(h.stats.get('median'))}"
        out.append(_hist_figure(figs, h, "quality", title, "quality_score", color="#EECA3B", integer=False,
                                 labels=True))
        out.append(_table(["samples", "min", "median", "max"],
                          [[h.stats["n"], h.stats["min"], h.stats["median"], h.stats["max"]]], numeric={0, 1, 2, 3}))
    out.append("</section>")
    return "".join(out)


def _examples_block(data: ReportData, verdict: str) -> str:
    heads = data.example_heads.get(verdict) or []
    by_head: dict[str, list[dict[str, Any]]] = {}
    for ex in data.examples.get(verdict) or []:
        by_head.setdefault(ex["head"], []).append(ex)
    out = []
    for head, n in heads:
        exs = by_head.get(head, [])
        out.append(f'<div class="reason-group"><h3>{esc(head)} <span class="muted">· {n:,} samples'
                   f'{", showing " + str(len(exs)) if len(exs) < n else ""}</span></h3>')
        for ex in exs:
            meta = [f'<code>{esc(ex["sample_id"])}</code>', f'step {esc(ex["step"])}', esc(ex["shape"] or "")]
            if ex.get("turns"):
                meta.append(f'{esc(ex["turns"])} turns')
            if ex.get("ref_sample_id"):
                meta.append(f'ref <code>{esc(ex["ref_sample_id"])}</code>')
            if ex.get("score") is not None:
                meta.append(f'score {esc(_fmt_num(ex["score"]))}')
            first_user = " (first user turn)" if ex.get("turns") else ""
            first_asst = " (first assistant turn)" if ex.get("turns") else ""
            out.append(
                '<div class="example">'
                f'<div class="meta">{" · ".join(m for m in meta if m)}</div>'
                f'<div class="reason">{esc(mask(ex["reason"]))}</div>'
                f'<div class="pair"><div><div class="lbl">instruction{first_user}</div>'
                f'<div class="text">{excerpt(ex["instruction"])}</div></div>'
                f'<div><div class="lbl">output{first_asst}</div><div class="text">{excerpt(ex["output"])}</div></div>'
                '</div></div>')
        out.append("</div>")
    return "".join(out)


def _examples_section(data: ReportData) -> str:
    out = ['<section id="flagged"><h2>Flagged samples</h2>']
    if not data.example_heads.get("flag"):
        out.append(_none("no sample was flagged in this run"))
    else:
        out.append(f'<p class="note">Up to {EXAMPLES_PER_REASON} examples per reason (part before the first \':\'), '
                   f'text excerpts cut at {EXCERPT_CHARS} characters.</p>')
        out.append(_examples_block(data, "flag"))
    out.append("</section>")
    if data.example_heads.get("drop"):
        out.append('<section id="dropped"><h2>Dropped samples</h2><details><summary>'
                   f'examples, up to {EXAMPLES_PER_REASON} per reason</summary>')
        out.append(_examples_block(data, "drop"))
        out.append("</details></section>")
    return "".join(out)


CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans CJK SC", sans-serif;
       color: #1f2328; background: #fff; margin: 0; }
main { max-width: 1180px; margin: 0 auto; padding: 12px 24px 48px; }
nav { position: sticky; top: 0; background: #f6f8fa; border-bottom: 1px solid #d0d7de; padding: 8px 24px;
      font-size: 13px; z-index: 10; }
nav a { margin-right: 14px; color: #0969da; text-decoration: none; }
h1 { font-size: 22px; margin: 16px 0 8px; }
h2 { font-size: 18px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; margin-top: 36px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 8px 0; }
dl.facts dt { color: #57606a; } dl.facts dd { margin: 0; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 3px 8px; text-align: left; vertical-align: top; white-space: nowrap; }
td.wrap { white-space: normal; max-width: 520px; min-width: 160px; overflow-wrap: anywhere; }
th { background: #f6f8fa; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.mismatch td { background: #fff8c5; }
pre { background: #f6f8fa; padding: 10px; overflow: auto; font-size: 12px; }
details summary { cursor: pointer; color: #0969da; margin: 6px 0; }
.none { color: #57606a; font-style: italic; background: #f6f8fa; padding: 8px 12px; border-radius: 4px; }
.note, .muted { color: #57606a; } .note { font-size: 13px; }
.badge { font-size: 12px; background: #ddf4ff; border-radius: 10px; padding: 1px 8px; }
.badge.warn { background: #fff8c5; }
.figure { margin: 8px 0 12px; }
.example { border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 10px; margin: 8px 0; }
.example .meta { font-size: 12px; color: #57606a; }
.example .reason { font-size: 13px; margin: 4px 0 6px; color: #9a6700; overflow-wrap: anywhere; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 10px; }
.lbl { font-size: 11px; text-transform: uppercase; letter-spacing: .04em; color: #57606a; }
.text { white-space: pre-wrap; overflow-wrap: anywhere; font-size: 13px; background: #f6f8fa; padding: 6px;
        border-radius: 4px; max-height: 260px; overflow: auto; }
"""


def render_html(data: ReportData) -> str:
    """The report page for ``data``: one HTML document with plotly inlined once."""
    figs = _Figures()
    sections = [
        _header(data),
        _funnel_section(figs, data),
        _reasons_section(figs, data),
        _language_section(figs, data),
        _lengths_section(figs, data),
        _quality_section(figs, data),
        _examples_section(data),
    ]
    links = [("funnel", "Funnel"), ("reasons", "Drops & flags"), ("languages", "Languages"), ("lengths", "Lengths"),
             ("quality", "Quality"), ("flagged", "Flagged")]
    if data.example_heads.get("drop"):
        links.append(("dropped", "Dropped"))
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in links)
    rid = esc(data.run["run_id"])
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>curate report · run {rid}</title><style>{CSS}</style></head>"
            f"<body><nav>{nav}</nav><main>{''.join(sections)}"
            f'<footer class="note">generated {esc(_fmt_time(_now()))} by curate report</footer>'
            "</main></body></html>\n")


def _now() -> datetime:
    from curation.store.store import utcnow

    return utcnow()


def default_report_path(store: Store, run_id: int) -> Path:
    """``<data dir>/reports/run-<id>.html``, the data dir being the store's folder."""
    return store.path.parent / "reports" / f"run-{run_id}.html"


def write_report(store: Store, run_id: int | None = None, out: Path | None = None) -> Path:
    """Gather, render and write the report of ``run_id`` (default: the latest done run); returns the path."""
    data = gather(store, run_id)
    page = render_html(data)
    path = Path(out) if out is not None else default_report_path(store, data.run["run_id"])
    if path.exists() and path.is_dir():
        raise UsageError(f"--out {path} is a directory; give a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path
