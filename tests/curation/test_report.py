"""`curate report`: the page agrees with the store, degrades when data is absent, escapes sample text, and
every figure renders in a real browser (headless Chromium, offline)."""

from __future__ import annotations

import dataclasses
import html
import json
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
        assert groups[0][:4] == ["step", "verdict", "reason", "samples"]
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
        example_heads={**data.example_heads, "flag": [("language mismatch", 1)]},
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
