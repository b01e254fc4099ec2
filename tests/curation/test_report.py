"""`curate report`: the page agrees with the store, degrades when data is absent, escapes sample text, and
every figure renders in a real browser (headless Chromium, offline)."""

from __future__ import annotations

import dataclasses
import html
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curation.cli.app import app
from curation.ingest import ingest_paths
from curation.pipeline import load_config
from curation.pipeline.executor import run_pipeline
from curation.report import Histogram, gather, render_html
from curation.store import Store
from tests.conftest import SAMPLE_DIR

FILES = ["instructions.jsonl", "dialogues_sharegpt.jsonl", "messages_openai.json", "instructions_gb18030.csv"]

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--virtual-time-budget=15000",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: a page that needs the network fails here
    "--enable-logging=stderr", "--v=0",  # console messages (uncaught errors) on stderr
]
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def rows(store: Store, sql: str, params: list | None = None) -> list[tuple]:
    with store.reader() as con:
        return con.execute(sql, params or []).fetchall()


def report(store: Store, *args: str):  # noqa: ANN201
    return CliRunner().invoke(app, ["--db", str(store.path), "report", *args], catch_exceptions=False)


class Page(HTMLParser):
    """What a test needs from a page: tables and text per section, and each plotly figure's content."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.section = "top"
        self.text: dict[str, list[str]] = {}
        self.tables: dict[str, list[list[list[str]]]] = {}
        self.figures: list[dict] = []
        self._stack: list[bool] = []  # per open element: does it open a figure?
        self._figure: dict | None = None
        self._cell: list[str] | None = None
        self._skip = 0  # inside <script>/<style>
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if self._figure is not None:
            self._figure["elements"] += 1
            self._figure["main_svg"] += tag == "svg" and "main-svg" in classes
            self._figure["traces"] += "trace" in classes
        if tag in ("section", "header"):
            self.section = a.get("id") or tag
        elif tag == "table":
            self.tables.setdefault(self.section, []).append([])
        elif tag == "tr" and self.tables.get(self.section):
            self.tables[self.section][-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag in ("script", "style"):
            self._skip += 1
        if tag in VOID:
            return
        opens = tag == "div" and "plotly-graph-div" in classes and self._figure is None
        if opens:
            self._figure = {"id": a.get("id"), "elements": 0, "main_svg": 0, "traces": 0, "section": self.section}
            self.figures.append(self._figure)
        self._stack.append(opens)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._figure is not None:
            self._figure["elements"] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self.section][-1][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        if tag in VOID or not self._stack:
            return
        if self._stack.pop():
            self._figure = None

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.text.setdefault(self.section, []).append(data)
        if self._cell is not None:
            self._cell.append(data)

    def section_text(self, section: str) -> str:
        return " ".join(" ".join(self.text.get(section, [])).split())


def number(cell: str) -> int:
    return int(cell.replace(",", ""))


def find_chromium() -> str:
    """The chromium binary; a missing one fails the test (never skips it): scripts/test.sh installs it."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is not installed, so the report cannot be checked in a browser: "
                    "apt-get install -y chromium (Debian), as scripts/test.sh does", pytrace=False)
    return path


def render_in_browser(page: Path, tmp_path: Path) -> tuple[str, str]:
    """The DOM after scripts ran, and the browser's stderr."""
    chromium = find_chromium()
    profile = tmp_path / f"chromium-profile-{page.stem}"
    proc = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0 and proc.stdout.strip(), f"chromium failed ({proc.returncode}): {proc.stderr[-2000:]}"
    return proc.stdout, proc.stderr


def assert_figures_rendered(source: str, dom: str, stderr: str) -> Page:
    """Every figure div of ``source`` holds a drawn plot (plotly's svg.main-svg with traces) in ``dom``."""
    src, out = Page(source), Page(dom)
    assert src.figures, "the page has no figure at all"
    assert all(f["elements"] == 0 for f in src.figures)  # drawn by the browser, not written in the file
    assert [f["id"] for f in out.figures] == [f["id"] for f in src.figures]
    empty = [f["id"] for f in out.figures if f["elements"] == 0]
    assert not empty, f"figure divs left empty: {empty}"
    not_drawn = [f["id"] for f in out.figures if not f["main_svg"] or not f["traces"]]
    assert not not_drawn, f"figures without a plot: {not_drawn}"
    errors = [line for line in stderr.splitlines() if "CONSOLE" in line and "Uncaught" in line]
    assert not errors, errors
    return out


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory) -> Store:
    """The bundled sample, ingested and run through the default pipeline (whatever steps it has)."""
    store = Store(tmp_path_factory.mktemp("report") / "store" / "curate.duckdb", lock_timeout=30)
    ingest_paths(store, [str(SAMPLE_DIR / f) for f in FILES])
    assert run_pipeline(store, load_config()).status == "done"
    return store


@pytest.fixture(scope="module")
def sample_report(sample_store) -> tuple[Path, str]:
    res = report(sample_store)
    assert res.exit_code == 0, res.output
    path = sample_store.path.parent / "reports" / "run-1.html"
    assert res.stdout.strip() == str(path)
    return path, path.read_text(encoding="utf-8")


def test_report_agrees_with_the_store(sample_store, sample_report) -> None:
    _, text = sample_report
    page = Page(text)
    funnel = rows(sample_store, "SELECT stage, rows FROM funnel ORDER BY position")
    table = page.tables["funnel"][0]
    assert table[0] == ["stage", "rows"]
    assert [(stage, number(n)) for stage, n in table[1:]] == funnel
    # the header: run, input, kept
    (run_id, samples_in), = rows(sample_store, "SELECT run_id, samples_in FROM latest_run")
    header = page.section_text("header")
    assert f"run {run_id}" in header and f"{samples_in:,} samples" in header
    assert f"kept {dict(funnel)['kept']:,}" in header
    # one step table row per step of the run
    steps = [r[1] for r in page.tables["funnel"][1][1:]]
    assert steps == [s for s, in rows(sample_store, "SELECT step FROM run_steps WHERE run_id = ? ORDER BY position", [run_id])]
    # drops and flags: every counted decision is in the reason table (when there are at most 30 groups)
    decided = rows(sample_store, """SELECT step, verdict, count(*) FROM decisions
                                    WHERE run_id = ? AND verdict IN ('drop', 'flag') GROUP BY ALL""", [run_id])
    if not decided:
        assert "no sample was dropped or flagged" in page.section_text("reasons")
    else:
        groups = page.tables["reasons"][0]
        assert groups[0][:4] == ["step", "verdict", "rule", "samples"]
        if len(groups) - 1 < 30:
            totals: dict[tuple[str, str], int] = {}
            for step, verdict, _, n, *_ in groups[1:]:
                totals[(step, verdict)] = totals.get((step, verdict), 0) + number(n)
            assert totals == {(s, v): n for s, v, n in decided}
    # sections with data show a figure; without, they say so
    figures = {f["section"] for f in page.figures}
    n_lang = rows(sample_store, "SELECT count(*) FROM signals WHERE run_id = ? AND name = 'lang'", [run_id])[0][0]
    assert ("languages" in figures) == bool(n_lang)
    if not n_lang:
        assert "no language signals in this run" in page.section_text("languages")
    n_quality = rows(sample_store, "SELECT count(*) FROM signals WHERE run_id = ? AND name = 'quality_score'", [run_id])[0][0]
    assert ("quality" in figures) == bool(n_quality)
    if not n_quality:
        assert "no quality scores in this run" in page.section_text("quality")
    n_flagged = rows(sample_store, "SELECT count(*) FROM decisions WHERE run_id = ? AND verdict = 'flag'", [run_id])[0][0]
    if not n_flagged:
        assert "no sample was flagged in this run" in page.section_text("flagged")
    else:
        assert text.count('class="example"') > 0
    # lengths: instruction and output always, reasoning because the sample has R1 traces
    length_figs = [f["id"] for f in page.figures if f["section"] == "lengths"]
    assert length_figs == ["fig-length-instruction", "fig-length-output", "fig-length-reasoning"]
    lengths = {r[0]: r for r in page.tables["lengths"][0][1:]}
    assert number(lengths["instruction"][1]) == samples_in == number(lengths["output"][1])
    n_reasoning = rows(sample_store, """SELECT count(*) FROM samples WHERE reasoning IS NOT NULL
                                        OR list_bool_or(list_transform(messages, lambda m: m.reasoning IS NOT NULL))""")[0][0]
    assert number(lengths["reasoning"][1]) == n_reasoning


def test_report_is_self_contained(sample_report) -> None:
    _, text = sample_report
    assert "<script src" not in text and "<link" not in text and "cdn.plot.ly/plotly" not in text
    assert text.count("window.PlotlyConfig") == 1  # plotly.js inlined once, in the first figure
    assert text.count("Plotly.newPlot(") == len(Page(text).figures)


def test_every_figure_renders_in_chromium(sample_report, tmp_path) -> None:
    path, text = sample_report
    dom, stderr = render_in_browser(path, tmp_path)
    out = assert_figures_rendered(text, dom, stderr)
    assert {"funnel", "lengths"} <= {f["section"] for f in out.figures}


def test_sections_with_languages_quality_and_flags_render(sample_store, tmp_path) -> None:
    """The sections the default pipeline does not fill yet (language, quality, flags), from data built here."""
    data = gather(sample_store)
    example = dict(data.examples["drop"][0]) if data.examples.get("drop") else {
        "sample_id": "0" * 16, "step": "x", "shape": "alpaca", "ref_sample_id": None, "score": None, "turns": None,
        "instruction": "Why?", "output": "Because."}
    flagged = [{**example, "head": "language mismatch", "reason": "language mismatch: zh → en <b>bold</b>",
                "instruction": "<img src=x onerror=alert(1)>" + "长" * 400, "step": "language"}]
    data = dataclasses.replace(
        data,
        languages=[("en", 1800, 0.93), ("zh", 1500, 0.88), ("<i>es</i>", 12, None)],
        language_pairs=[("zh", "zh", 1400), ("zh", "en", 100)],
        quality=Histogram(n=10, width=0.05, counts=[(3, 2), (10, 5), (19, 3)],
                          stats={"n": 10, "min": 0.15, "median": 0.5, "max": 1.0}),
        examples={**data.examples, "flag": flagged},
        example_heads={**data.example_heads, "flag": [("language", "language mismatch", 1)]},
    )
    text = render_html(data)
    page = tmp_path / "synthetic.html"
    page.write_text(text, encoding="utf-8")
    assert "<img src=x" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    cut = html.escape(flagged[0]["instruction"][:300]) + "…"  # excerpts are cut at 300 characters
    assert cut in text and "长" * (301 - flagged[0]["instruction"].index("长")) not in text
    dom, stderr = render_in_browser(page, tmp_path)
    out = assert_figures_rendered(text, dom, stderr)
    assert {"languages", "quality"} <= {f["section"] for f in out.figures}
    assert "<img" not in dom
    assert out.tables["languages"][1][1:] == [["zh", "zh", "1,400"], ["zh", "en", "100"]]


def test_hostile_sample_text_is_escaped(tmp_path) -> None:
    """Sample text is data, never markup: a duplicated hostile row shows up (escaped) among the drop examples."""
    hostile = {"instruction": "<script>alert('x')</script> & <img src=x onerror=alert(1)>",
               "output": "</div></section><h1>owned</h1>"}
    src = tmp_path / "hostile.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in [hostile, hostile, {"instruction": "ok", "output": "fine"}]) + "\n",
                   encoding="utf-8")
    store = Store(tmp_path / "curate.duckdb", lock_timeout=30)
    ingest_paths(store, [str(src)])
    run_pipeline(store, load_config())
    out_path = tmp_path / "out" / "hostile.html"
    res = report(store, "--out", str(out_path))
    assert res.exit_code == 0, res.output
    text = out_path.read_text(encoding="utf-8")
    assert "<script>alert" not in text and "<img src=x" not in text and "<h1>owned" not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt;" in text
    dom, stderr = render_in_browser(out_path, tmp_path)
    assert_figures_rendered(text, dom, stderr)
    assert "<img" not in dom and "<h1>owned" not in dom and dom.count("<h1>") == 1


def test_report_of_an_earlier_run_and_the_errors(tmp_path) -> None:
    src = tmp_path / "small.jsonl"
    src.write_text("".join(json.dumps({"instruction": f"question {i % 4}", "output": f"answer {i % 4}"}) + "\n"
                           for i in range(6)), encoding="utf-8")
    store = Store(tmp_path / "curate.duckdb", lock_timeout=30)
    ingest_paths(store, [str(src)])
    run_pipeline(store, load_config())
    res = report(store, "--run", "99")
    assert res.exit_code == 2 and "no run 99" in res.output
    second = run_pipeline(store, load_config(), fresh=True)
    assert second.run_id == 2
    res = report(store, "--run", "1", "-o", str(tmp_path / "r1.html"))
    assert res.exit_code == 0, res.output
    # run 1 is no longer the latest: its funnel is computed for it, and equals run 2's (same config, same input)
    page = Page((tmp_path / "r1.html").read_text(encoding="utf-8"))
    assert [(s, number(n)) for s, n in page.tables["funnel"][0][1:]] == \
        rows(store, "SELECT stage, rows FROM funnel ORDER BY position")
    assert "not the latest done run" in page.section_text("header")
    res = report(store)
    assert res.exit_code == 0 and res.stdout.strip().endswith("run-2.html")
    # a store without runs
    empty = Store(tmp_path / "empty.duckdb")
    empty.init()
    res = report(empty)
    assert res.exit_code == 2 and "no pipeline run in the store" in res.output
    # no store at all
    res = report(Store(tmp_path / "missing.duckdb"))
    assert res.exit_code == 2 and "no store at" in res.output


# --- rules, not reason texts; where an example comes from; CJK text drawn with a CJK font -----------------------

SAMPLE_ID = re.compile(r"\b[0-9a-f]{16}\b")


def expected_rule(reason: str) -> str:
    """The rule of a reason, as the report's SQL defines it (written again here, in Python)."""
    head = reason.split(":", 1)[0] if ":" in reason else reason.split(" (", 1)[0]
    head = re.sub(r'\s*(\b[0-9a-f]{16}\b|["“«]).*$', " …", head, flags=re.S)
    head = re.sub(r"\b\d+(\.\d+)?\b", "#", head)
    return " ".join(head.split()) or "(no reason)"


def test_reasons_are_grouped_by_rule_and_details_stay_in_the_examples(sample_store, sample_report) -> None:
    """A reason's details (a Jaccard value, a copy count, a sample id, a quoted excerpt) make no row of their own."""
    _, text = sample_report
    page = Page(text)
    run_id = 1
    decided = rows(sample_store, """SELECT step, verdict, reason FROM decisions
                                    WHERE run_id = ? AND verdict IN ('drop', 'flag')""", [run_id])
    want: dict[tuple[str, str, str], int] = {}
    for step, verdict, reason in decided:
        key = (step, verdict, expected_rule(reason))
        want[key] = want.get(key, 0) + 1
    table = page.tables["reasons"][0]
    assert table[0] == ["step", "verdict", "rule", "samples", "distinct reasons", "e.g."]
    got = {(step, verdict, html.unescape(rule)): number(n) for step, verdict, rule, n, *_ in table[1:]}
    assert len(got) == len(table) - 1  # one row per rule
    assert got == want  # fewer than 30 rules in the sample: every one is there
    for step, verdict, rule, n, distinct, _ in table[1:]:
        assert not SAMPLE_ID.search(rule) and not re.search(r"\d", rule), rule
        assert "Jaccard" not in rule and "copies" not in rule
    # the bundled sample's details that used to make rows of their own: one row each now
    details = {(s, r): number(d) for s, _, r, _, d, _ in table[1:]}
    assert details[("exact_dedup", "exact duplicate of …")] > 1  # a keeper's id and a copy count per reason
    assert details[("near_dedup", "near duplicate of sample …")] > 1  # a keeper's id and a Jaccard value
    assert details[("quality", "truncated answer")] > 1  # a quoted excerpt: "ends mid-sentence: …"
    # the figure's bars are the same rules
    fig = next(f for f in page.figures if f["section"] == "reasons")
    assert fig["id"] == "fig-reasons"
    assert "as stored" not in page.section_text("reasons")
    # the details are in the example cards: each under its rule, with the full reason
    for verdict, section in (("flag", "flagged"), ("drop", "dropped")):
        heads = re.findall(r'<div class="reason-group"><h3>(.*?) <span class="muted">· step (.*?) ·',
                           text.split(f'<section id="{section}">')[1].split("</section>")[0])
        want_heads = sorted({(html.unescape(r), s) for (s, v, r) in want if v == verdict})
        assert sorted((html.unescape(h), html.unescape(s)) for h, s in heads) == want_heads
    cards = re.findall(r'<div class="reason">(.*?)</div>', text)
    assert any("Jaccard" in c for c in cards) and any(SAMPLE_ID.search(c) for c in cards)


def cards(text: str) -> list[dict[str, str | None]]:
    """The example cards of a page: sample id, source, row and external id as shown."""
    out = []
    for m in re.finditer(r'<div class="example"><div class="meta"><code>([0-9a-f]+)</code>.*?</div>'
                         r'<div class="meta origin">(.*?)</div>', text):
        origin = m.group(2)
        src = re.search(r'<span class="source"[^>]*>(.*?)</span>', origin)
        row = re.search(r'<span class="row">row ([\d,]+)</span>', origin)
        ext = re.search(r'<span class="external-id">id <code>(.*?)</code></span>', origin)
        out.append({"sample_id": m.group(1), "source": html.unescape(src.group(1)) if src else None,
                    "row": row.group(1).replace(",", "") if row else None,
                    "external_id": html.unescape(ext.group(1)) if ext else None})
    return out


def test_example_cards_name_the_source_file_row_and_external_id(sample_store, sample_report) -> None:
    _, text = sample_report
    shown = cards(text)
    assert len(shown) == text.count('<div class="example">') > 0
    where = {sid: (src, row, ext) for sid, src, row, ext in rows(
        sample_store, "SELECT sample_id, source, row_number, external_id FROM samples")}
    for card in shown:
        src, row, ext = where[card["sample_id"]]
        # named relative to the folder the inputs share: the bundled sample's files are all in data/sample
        assert card["source"] == Path(src).name and card["source"] in FILES
        assert card["row"] == str(row)
        assert card["external_id"] == ext
    assert any(c["external_id"] for c in shown) and len({c["source"] for c in shown}) >= 1


CJK_STEP = "精确去重"  # exact dedup under a Chinese step name: in tables, figures, example cards and the config
CJK_FAMILIES = ["PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", "Source Han Sans SC",
                "WenQuanYi Zen Hei", "WenQuanYi Micro Hei"]

# Appended to a copy of the page: once the figures are drawn, measures every occurrence of CJK_STEP as drawn
# (an HTML text range, or an SVG text's substring) and, with the same font, the width of as many unassigned
# code points (the missing-glyph box, 'tofu'); and which CJK families of the stack the browser has.
PROBE = """<script>
window.addEventListener('load', () => setTimeout(() => {
  const S = %(s)s, N = S.length, TOFU = '\\u0378'.repeat(N), FAMILIES = %(families)s;
  const ctx = document.createElement('canvas').getContext('2d');
  const width = (font, t) => { ctx.font = font; return ctx.measureText(t).width; };
  const seen = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const i = n.data.indexOf(S), el = n.parentElement;
    if (i < 0 || !el || el.closest('#cjk-probe')) continue;
    const cs = getComputedStyle(el), size = parseFloat(cs.fontSize);
    let w;
    if (el instanceof SVGTextContentElement) {
      w = el.getSubStringLength(i, N);
    } else {
      const r = document.createRange(); r.setStart(n, i); r.setEnd(n, i + N); w = r.getBoundingClientRect().width;
    }
    const font = cs.fontStyle + ' ' + cs.fontWeight + ' ' + cs.fontSize + ' ' + cs.fontFamily;
    seen.push({tag: el.tagName.toLowerCase(), svg: el instanceof SVGElement, family: cs.fontFamily, size: size,
               width: w, tofu: width(font, TOFU), section: (el.closest('section, header') || {}).id || '',
               example: !!el.closest('.example'), table: !!el.closest('td'), figure: !!el.closest('.figure')});
  }
  const probe = 'mmmmmmmmmmlliWW';
  const installed = FAMILIES.filter(f => ['monospace', 'serif', 'sans-serif'].some(
      g => width('32px "' + f + '", ' + g, probe) !== width('32px ' + g, probe)));
  const pre = document.createElement('pre');
  pre.id = 'cjk-probe';
  pre.textContent = JSON.stringify({seen: seen, installed: installed});
  document.body.appendChild(pre);
}, 1500));
</script>"""


def test_chinese_text_is_drawn_with_a_cjk_font(tmp_path) -> None:
    """Chinese in tables, example cards and plotly figures is drawn by a CJK font of the page's stack: each glyph
    about 1em wide, and not the missing-glyph box (scripts/test.sh installs fonts-wqy-zenhei when no CJK font is
    there; a machine without one fails here, it does not skip)."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    qa = {"instruction": "请解释光合作用的过程。", "output": "光合作用是绿色植物利用光能，把二氧化碳和水转化为有机物并释放氧气的过程。"}
    (folder / "chinese.jsonl").write_text("".join(json.dumps({"id": f"zh-{i}", **qa}, ensure_ascii=False) + "\n"
                                                  for i in range(3)), encoding="utf-8")
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(f'[[steps]]\ntype = "exact_dedup"\nname = "{CJK_STEP}"\n', encoding="utf-8")
    store = Store(tmp_path / "curate.duckdb", lock_timeout=30)
    ingest_paths(store, [str(folder / "chinese.jsonl")])
    assert run_pipeline(store, load_config(pipeline)).status == "done"
    out_path = tmp_path / "report.html"
    res = report(store, "--out", str(out_path))
    assert res.exit_code == 0, res.output
    text = out_path.read_text(encoding="utf-8")
    # the stack is declared for the page, for code and for plotly (its layout's font family)
    for family in CJK_FAMILIES:
        assert f'"{family}"' in text.split("</style>")[0]
    assert text.count('\\"WenQuanYi Zen Hei\\"') >= len(Page(text).figures) > 0  # in each figure's layout (JSON)
    # the example cards: the duplicates, from inputs/chinese.jsonl... named relative to the inputs' folder
    shown = cards(text)
    assert sorted((c["source"], c["row"], c["external_id"]) for c in shown) == \
        [("chinese.jsonl", "2", "zh-1"), ("chinese.jsonl", "3", "zh-2")]
    probe_page = tmp_path / "probe.html"
    probe_page.write_text(text.replace("</body>", PROBE % {"s": json.dumps(CJK_STEP),
                                                           "families": json.dumps(CJK_FAMILIES)} + "</body>"),
                          encoding="utf-8")
    dom, stderr = render_in_browser(probe_page, tmp_path)
    assert_figures_rendered(text, dom, stderr)
    m = re.search(r'<pre id="cjk-probe">(.*?)</pre>', dom, re.S)
    assert m, f"the probe did not run: {stderr[-2000:]}"
    probe = json.loads(html.unescape(m.group(1)))
    assert probe["installed"], (f"no CJK font of the page's stack is installed ({', '.join(CJK_FAMILIES)}): "
                                "apt-get install -y fonts-wqy-zenhei (Debian), as scripts/test.sh does")
    seen = probe["seen"]
    assert any(s["table"] for s in seen) and any(s["example"] for s in seen)
    assert any(s["svg"] and s["figure"] for s in seen) and any(s["tag"] == "pre" for s in seen)
    n = len(CJK_STEP)
    for s in seen:
        where = f'{s["tag"]} in {s["section"]} ({s["family"]}, {s["size"]}px)'
        assert "WenQuanYi Zen Hei" in s["family"], where  # the page's stack, also in plotly's SVG text
        em = s["width"] / (n * s["size"])
        assert 0.9 <= em <= 1.1, f"{where}: {CJK_STEP!r} drawn {em:.2f}em a glyph, not about 1em"
        assert abs(s["width"] - s["tofu"]) > 0.1 * n * s["size"], f"{where}: drawn as missing-glyph boxes"
