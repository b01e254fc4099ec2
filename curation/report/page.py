"""Drawing a `curate report` page: one self-contained HTML document from :class:`ReportData`.

Figures are drawn by plotly with its JavaScript inlined once (in the first figure), and the page needs
nothing from the network. Sample text is untrusted: every string that reaches the page goes through
``html.escape`` (also the labels plotly draws, since plotly reads a few HTML-like tags in them).
"""

from __future__ import annotations

import functools
import html
import json
from collections import Counter
from datetime import datetime
from typing import Any

from curation.errors import UsageError
from curation.report.data import (
    EXAMPLES_PER_REASON,
    EXCERPT_CHARS,
    TOP_LANGUAGES,
    TOP_REASONS,
    Histogram,
    ReportData,
)


# Font stacks: Latin families first, then CJK-capable ones (macOS, Windows, Noto / Source Han, WenQuanYi), so that
# Chinese sample text, reasons and step names draw with real glyphs in tables, example cards and plotly's SVG
# text alike (scripts/test.sh installs fonts-wqy-zenhei where no CJK font is present).
CJK_FAMILIES = ('"PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", "Source Han Sans SC", '
                '"WenQuanYi Zen Hei", "WenQuanYi Micro Hei"')
FONT_FAMILY = f'system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", Arial, {CJK_FAMILIES}, sans-serif'
MONO_FAMILY = f'ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", {CJK_FAMILIES}, monospace'


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
        fig.update_layout(template="plotly_white", height=height, margin=margin,
                          font={"size": 12, "family": FONT_FAMILY}, hoverlabel={"font": {"family": FONT_FAMILY}})
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
    for batch, name, warning in data.warnings:  # inputs that do not look like instruction data
        out.append(f'<p class="warning"><strong>Batch {esc(batch)} ({esc(name)}):</strong> {esc(warning)}</p>')
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
    fig.update_layout(title={"text": f"top {len(groups)} rules (step · rule)"}, barmode="stack",
                      margin={"l": 320, "t": 60},
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"})
    out.append(figs.html(fig, "reasons", height=max(260, 60 + 26 * len(groups))))
    out.append(f"<h3>By rule (top {TOP_REASONS})</h3>")
    out.append('<p class="note">A rule is the reason without its per-sample details (a score, a count, a sample '
               'id, a quoted excerpt): the part before the first \':\', without one the part before the first \'(\'. '
               'The details are in the flagged and dropped examples below.</p>')
    out.append(_table(["step", "verdict", "rule", "samples", "distinct reasons", "e.g."],
                      [[r["step"], r["verdict"], r["head"], r["n"], r["distinct_reasons"], mask(r["example"])]
                       for r in groups], numeric={3, 4}, wrap={2, 5}))
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
    by_head: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for ex in data.examples.get(verdict) or []:
        by_head.setdefault((ex["step"], ex["head"]), []).append(ex)
    out = []
    for step, head, n in heads:
        exs = by_head.get((step, head), [])
        out.append(f'<div class="reason-group"><h3>{esc(head)} <span class="muted">· step {esc(step)} · {n:,} samples'
                   f'{", showing " + str(len(exs)) if len(exs) < n else ""}</span></h3>')
        for ex in exs:
            meta = [f'<code>{esc(ex["sample_id"])}</code>', f'step {esc(ex["step"])}', esc(ex["shape"] or "")]
            where = [f'<span class="source" title="source file">{esc(ex.get("source") or "?")}</span>']
            if ex.get("row_number") is not None:
                where.append(f'<span class="row">row {esc(_fmt_num(ex["row_number"]))}</span>')
            if ex.get("external_id") is not None:
                where.append(f'<span class="external-id">id <code>{esc(ex["external_id"])}</code></span>')
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
                f'<div class="meta origin">{" · ".join(where)}</div>'
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
        out.append(f'<p class="note">Up to {EXAMPLES_PER_REASON} examples per rule (step and reason without its details), '
                   f'text excerpts cut at {EXCERPT_CHARS} characters.</p>')
        out.append(_examples_block(data, "flag"))
    out.append("</section>")
    if data.example_heads.get("drop"):
        out.append('<section id="dropped"><h2>Dropped samples</h2><details><summary>'
                   f'examples, up to {EXAMPLES_PER_REASON} per rule</summary>')
        out.append(_examples_block(data, "drop"))
        out.append("</details></section>")
    return "".join(out)


CSS = f"""
body {{ font: 14px/1.45 {FONT_FAMILY};
       color: #1f2328; background: #fff; margin: 0; }}
pre, code {{ font-family: {MONO_FAMILY}; }}
main {{ max-width: 1180px; margin: 0 auto; padding: 12px 24px 48px; }}
nav {{ position: sticky; top: 0; background: #f6f8fa; border-bottom: 1px solid #d0d7de; padding: 8px 24px;
      font-size: 13px; z-index: 10; }}
nav a {{ margin-right: 14px; color: #0969da; text-decoration: none; }}
h1 {{ font-size: 22px; margin: 16px 0 8px; }}
h2 {{ font-size: 18px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; margin-top: 36px; }}
h3 {{ font-size: 15px; margin: 18px 0 6px; }}
dl.facts {{ display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 8px 0; }}
dl.facts dt {{ color: #57606a; }} dl.facts dd {{ margin: 0; }}
table {{ border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }}
th, td {{ border: 1px solid #d0d7de; padding: 3px 8px; text-align: left; vertical-align: top; white-space: nowrap; }}
td.wrap {{ white-space: normal; max-width: 520px; min-width: 160px; overflow-wrap: anywhere; }}
th {{ background: #f6f8fa; }} td.num, th.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
tr.mismatch td {{ background: #fff8c5; }}
pre {{ background: #f6f8fa; padding: 10px; overflow: auto; font-size: 12px; }}
details summary {{ cursor: pointer; color: #0969da; margin: 6px 0; }}
.none {{ color: #57606a; font-style: italic; background: #f6f8fa; padding: 8px 12px; border-radius: 4px; }}
.warning {{ color: #6a4a00; background: #fff8c5; border: 1px solid #d4a72c; padding: 8px 12px; border-radius: 4px; }}
.note, .muted {{ color: #57606a; }} .note {{ font-size: 13px; }}
.badge {{ font-size: 12px; background: #ddf4ff; border-radius: 10px; padding: 1px 8px; }}
.badge.warn {{ background: #fff8c5; }}
.figure {{ margin: 8px 0 12px; }}
.example {{ border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 10px; margin: 8px 0; }}
.example .meta {{ font-size: 12px; color: #57606a; }}
.example .reason {{ font-size: 13px; margin: 4px 0 6px; color: #9a6700; overflow-wrap: anywhere; }}
.pair {{ display: grid; grid-template-columns: 1fr 1fr; gap: 10px; }}
.lbl {{ font-size: 11px; text-transform: uppercase; letter-spacing: .04em; color: #57606a; }}
.text {{ white-space: pre-wrap; overflow-wrap: anywhere; font-size: 13px; background: #f6f8fa; padding: 6px;
        border-radius: 4px; max-height: 260px; overflow: auto; }}
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
