"""Language and quality filters: planted problems are caught, rules fire on what they describe, redaction."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pytest

from curation.ingest import ingest_paths
from curation.language import SCRIPTS, detect, script_counts
from curation.pipeline import load_config
from curation.pipeline.base import MESSAGE_TYPE
from curation.pipeline.executor import run_pipeline
from curation.pipeline.steps.language import LanguageStep
from curation.pipeline.steps.quality import QualityStep, valid_card, valid_cn_id
from curation.pipeline.steps.redact import RedactStep
from curation.store import Store
from schemas.pipeline import PipelineConfig, StepConfig
from tests.conftest import SAMPLE_DIR

FILES = ["instructions.jsonl", "dialogues_sharegpt.jsonl", "messages_openai.json", "instructions_gb18030.csv"]
# planted kinds that the language and quality steps (and cleaning, for control characters) must catch
FILTER_KINDS = {"wrong_language", "answer_language_mismatch", "empty_output", "truncated_output", "unclosed_think",
                "control_characters", "boilerplate", "personal_data"}


def rows(store, sql: str, params: list | None = None) -> list[tuple]:
    with store.reader() as con:
        return con.execute(sql, params or []).fetchall()


@pytest.fixture(scope="module")
def default_run(tmp_path_factory) -> Store:
    """The bundled sample through the default pipeline, once for the module."""
    store = Store(tmp_path_factory.mktemp("filters") / "curate.duckdb")
    ingest_paths(store, [str(SAMPLE_DIR / f) for f in FILES])
    assert run_pipeline(store, load_config()).status == "done"
    return store


def test_planted_problems_are_caught(default_run, truth) -> None:
    store = default_run
    ids = {(Path(src).name, n): sid for sid, src, n in rows(store, "SELECT sample_id, source, row_number FROM samples")}
    decided = defaultdict(list)
    for sid, step, verdict, reason in rows(store, "SELECT sample_id, step, verdict, reason FROM decisions "
                                                  "WHERE run_id = (SELECT run_id FROM latest_run)"):
        decided[sid].append((step, verdict, reason))
    cleaned = {sid for (sid,) in rows(store, "SELECT sample_id FROM sample_texts WHERE step = 'clean'")}
    caught, total = defaultdict(int), defaultdict(int)
    for p in truth["planted"]:
        if p["problem"] not in FILTER_KINDS:
            continue
        sid = ids[(p["file"], p["row_number"])]
        total[p["problem"]] += 1
        if p["problem"] == "control_characters":
            caught[p["problem"]] += sid in cleaned
        else:
            caught[p["problem"]] += any(step in ("language", "quality") for step, _, _ in decided[sid])
    assert set(total) == FILTER_KINDS
    for kind in FILTER_KINDS:
        assert caught[kind] >= 0.95 * total[kind], (kind, caught[kind], total[kind])
    # the specific rule names the problem
    by_kind = {"wrong_language": "language not kept", "answer_language_mismatch": "answer language differs",
               "empty_output": "empty answer", "truncated_output": "truncated answer",
               "unclosed_think": "unclosed or stray <think>", "boilerplate": "assistant boilerplate",
               "personal_data": "personal data"}
    for p in truth["planted"]:
        if p["problem"] in by_kind:
            reasons = [r for _, _, r in decided[ids[(p["file"], p["row_number"])]]]
            assert any(r.startswith(by_kind[p["problem"]]) for r in reasons), (p, reasons)
    # wrong-language rows name the planted language
    for p in truth["planted"]:
        if p["problem"] == "wrong_language":
            reasons = [r for _, _, r in decided[ids[(p["file"], p["row_number"])]]]
            assert any(f"output {p['language']} " in r for r in reasons), (p, reasons)


def test_every_sample_has_a_score_and_a_language(default_run) -> None:
    store = default_run
    n_lang = rows(store, "SELECT count(*) FROM signals WHERE name = 'quality_score' AND run_id = (SELECT run_id FROM latest_run)")[0][0]
    seen_by_quality = rows(store, "SELECT rows_done FROM run_steps WHERE step = 'quality' AND run_id = (SELECT run_id FROM latest_run)")[0][0]
    assert n_lang == seen_by_quality > 3000
    langs = dict(rows(store, "SELECT text, count(*) FROM signals WHERE name = 'lang' GROUP BY text"))
    assert langs["en"] > 1000 and langs["zh"] > 1000
    # script shares of a sample add up to 1
    sums = rows(store, "SELECT sample_id, sum(value) FROM signals WHERE name LIKE 'script.%' GROUP BY sample_id")
    assert sums and all(abs(s - 1) < 1e-3 for _, s in sums)
    # funnel: flagged and dropped count samples, not decisions
    funnel = dict(rows(store, "SELECT stage, rows FROM funnel"))
    n_dropped = rows(store, "SELECT count(DISTINCT sample_id) FROM dropped WHERE step = 'quality'")[0][0]
    assert funnel["quality: dropped"] == n_dropped


def test_detect_scripts_and_candidates() -> None:
    res = detect(["The quick brown fox jumps over the lazy dog.", "今天天气很好，我们去公园散步吧。", "今日はいい天気ですね。",
                  "오늘 날씨가 좋네요.", "Сегодня хорошая погода.", "Η σημερινή μέρα είναι όμορφη.", "12345 !!!", "", None])
    assert [r.lang for r in res] == ["en", "zh", "ja", "ko", "ru", "el", "und", "und", "und"]
    assert all(0 < r.confidence <= 1 for r in res[:6])
    # deterministic
    assert [r.lang for r in detect(["Hola, ¿cómo estás?"] * 3)] == ["es"] * 3
    # a candidate set restricts the choice within a script, but a text of another script says what it is
    assert detect(["Hola, ¿cómo estás hoy?"], ["en", "zh"])[0].lang == "en"
    assert detect(["Привет, как дела?"], ["en", "zh"])[0].lang == "ru"
    # code and URLs do not count as English inside Chinese text
    r = detect(["请运行 `pip install duckdb` 然后访问 https://duckdb.org 查看文档说明"])[0]
    assert r.lang == "zh" and r.mixed < 0.2
    counts = script_counts(["abc", "中文", ""])
    assert counts[0, SCRIPTS.index("latin")] == 3 and counts[1, SCRIPTS.index("han")] == 6 and counts[2].sum() == 0


def _batch(rows_: list[dict]) -> pa.Table:
    cols = {"sample_id": [], "batch_id": [], "row_number": [], "shape": [], "instruction": [], "input": [], "output": [],
            "system": [], "messages": [], "reasoning": []}
    for i, r in enumerate(rows_):
        cols["sample_id"].append(f"s{i}")
        cols["batch_id"].append(1)
        cols["row_number"].append(i + 1)
        cols["shape"].append("openai" if r.get("messages") else "alpaca")
        for f in ("instruction", "input", "output", "system", "reasoning"):
            cols[f].append(r.get(f))
        cols["messages"].append(r.get("messages"))
    return pa.table({k: pa.array(v, MESSAGE_TYPE if k == "messages" else pa.int64() if k in ("batch_id", "row_number") else pa.string())
                     for k, v in cols.items()})


GOOD_EN = ("Binary search halves the search interval at every step. Start with the whole sorted list, compare the "
           "target with the middle element, and continue in the half that can still contain it.")
CASES = {
    "empty answer": {"instruction": "Explain recursion.", "output": "  "},
    "truncated answer": {"instruction": "Explain recursion.", "output": "Recursion is when a function calls itself, and the"},
    "unbalanced code fences or brackets": {"instruction": "Show code.", "output": "Here it is:\n```python\nprint('hi')\n"},
    "unclosed or stray <think> tag": {"instruction": "Why?", "output": "<think>\nLet me think about the user's question"},
    "answer equals the instruction": {"instruction": "Explain recursion to me.", "output": "Explain recursion to me."},
    "repeated lines or paragraphs": {"instruction": "List fruits.",
                                     "output": "Here are some fruits:\n" + "I am not sure about that one.\n" * 5},
    "repetitive n-grams": {"instruction": "Say something.", "output": " ".join(["I think that is right and"] * 20) + "."},
    "HTML or markup leftovers": {"instruction": "Describe Paris.", "output": "Paris is the capital of France.<br/>It is &nbsp; large."},
    "assistant boilerplate": {"instruction": "你怎么评价这部电影？", "output": "作为一个人工智能语言模型，我没有个人观点。"},
    "refusal": {"instruction": "Help me.", "output": "I'm sorry, but I can't help with that request."},
    "placeholder text": {"instruction": "Write a letter.", "output": "Dear [Recipient Name], thank you for the offer."},
    "mojibake (broken encoding)": {"instruction": "Describe.", "output": "The cafÃ© is nice and the weather is good today."},
    "personal data": {"instruction": "Contact?", "output": "Write to zhang.san@hongxin-trading.cn or call 13912345678."},
    # in another field than the answer: the rules read every field of the sample
    "non-printable characters": {"instruction": "Name\u200b a planet of the solar system.", "output": "Mars is one of them."},
    "many URLs or e-mail addresses": {"instruction": "Links?", "output": "See https://a.example https://b.example https://c.example now."},
    "unusual character mix": {"instruction": "Describe it.", "output": "★☆★☆ ♥♥♥ ★☆★☆ ♥♥♥ ★☆★☆ ♥♥♥ ★☆★☆ ♥♥♥ ★☆ ok"},
    "dialogue does not end with the assistant": {"messages": [{"role": "user", "content": "Hi there"},
                                                              {"role": "assistant", "content": "Hello! How can I help?"},
                                                              {"role": "user", "content": "Tell me a joke."}]},
    "dialogue roles do not alternate": {"messages": [{"role": "user", "content": "Hi there"},
                                                     {"role": "user", "content": "Anyone?"},
                                                     {"role": "assistant", "content": "Hello! How can I help?"}]},
    "dialogue has an empty turn": {"messages": [{"role": "user", "content": "Hi there"},
                                                {"role": "assistant", "content": ""}]},
}


@pytest.mark.parametrize("reason", sorted(CASES))
def test_each_rule_fires_on_its_case_and_not_on_clean_text(reason) -> None:
    step = QualityStep()
    out = step.process(_batch([CASES[reason], {"instruction": "Explain binary search.", "output": GOOD_EN}]))
    reasons = {sid: [] for sid in ("s0", "s1")}
    for sid, r in zip(out.decisions.column("sample_id").to_pylist(), out.decisions.column("reason").to_pylist()):
        reasons[sid].append(r)
    assert any(r.startswith(reason) for r in reasons["s0"]), reasons
    assert reasons["s1"] == []
    scores = dict(zip(out.signals.column("sample_id").to_pylist(), out.signals.column("value").to_pylist()))
    assert scores["s1"] == 1.0 and scores["s0"] < 1.0


def test_rules_are_configurable() -> None:
    case = CASES["truncated answer"]
    off = QualityStep(params={"rules": {"truncated": {"enabled": False}}}).process(_batch([case]))
    assert off.decisions is None or not any(r.startswith("truncated") for r in off.decisions.column("reason").to_pylist())
    drop = QualityStep(params={"rules": {"truncated": {"verdict": "drop"}}}).process(_batch([case]))
    assert "drop" in drop.decisions.column("verdict").to_pylist()
    with pytest.raises(ValueError, match="truncatd"):
        QualityStep(params={"rules": {"truncatd": {}}})
    required = QualityStep(params={"rules": {"reasoning_presence": {"expect": "required"}}}).process(
        _batch([{"instruction": "Why?", "output": GOOD_EN}]))
    assert any(r.startswith("reasoning trace presence") for r in required.decisions.column("reason").to_pylist())


def test_checksums() -> None:
    assert valid_cn_id("11010519491231002X") and not valid_cn_id("110105194912310021")
    assert valid_card("4111 1111 1111 1111") and not valid_card("4111 1111 1111 1112")


def test_language_step_decisions() -> None:
    step = LanguageStep(params={"keep": ["en", "zh"]})
    batch = _batch([
        {"instruction": "Explica qué es la fotosíntesis.", "output": "La fotosíntesis es el proceso por el cual las plantas convierten la luz en energía."},
        {"instruction": "请解释什么是光合作用。", "output": "Photosynthesis is how plants turn light, water and carbon dioxide into sugar."},
        {"instruction": "Translate into Chinese: good morning", "output": "早上好"},
        {"instruction": "Explain binary search.", "output": GOOD_EN},
        {"instruction": "Why?", "output": GOOD_EN, "reasoning": "用户想知道二分查找的原理，我应该先解释区间，再说明每一步如何缩小范围。"},
    ])
    out = step.process(batch)
    got = defaultdict(list)
    for sid, v, r in zip(*(out.decisions.column(c).to_pylist() for c in ("sample_id", "verdict", "reason"))):
        got[sid].append((v, r))
    assert got["s0"][0][0] == "drop" and "es" in got["s0"][0][1]
    assert got["s1"] == [("flag", "answer language differs from instruction: instruction zh, answer en")]
    assert "s2" not in got and "s3" not in got  # a translation task is not a mismatch
    assert [r for _, r in got["s4"]] == ["reasoning language differs from answer: reasoning zh, answer en"]


def test_redaction_writes_a_new_version(tmp_path) -> None:
    store = Store(tmp_path / "curate.duckdb")
    src = tmp_path / "pii.jsonl"
    src.write_text('{"instruction": "Who?", "output": "Mail li.wei@example.com, ID 11010519491231002X, call +86 13912345678."}\n'
                   '{"instruction": "Hi", "output": "No personal data here, order 1234567890123."}\n', encoding="utf-8")
    ingest_paths(store, [str(src)])
    cfg = PipelineConfig(steps=[StepConfig(type="redact_pii")])
    run_pipeline(store, cfg)
    kept = dict(rows(store, "SELECT instruction, output FROM kept"))
    assert kept["Who?"] == "Mail [EMAIL], ID [ID_NUMBER], call [PHONE]."
    assert kept["Hi"] == "No personal data here, order 1234567890123."
    # the original stays
    assert rows(store, "SELECT count(*) FROM samples WHERE contains(output, 'li.wei@example.com')")[0][0] == 1


def test_bad_step_parameters_are_usage_errors(tmp_path) -> None:
    from curation.errors import UsageError
    from curation.pipeline.registry import build_step

    with pytest.raises(UsageError, match="backend"):
        build_step(StepConfig(type="language", params={"backend": "nope"}))
    with pytest.raises(UsageError, match="verdict"):
        build_step(StepConfig(type="quality", params={"rules": {"refusal": {"verdict": "delete"}}}))


FALSE_POSITIVES = {
    "an AI engineer": "As an AI engineer, you should learn linear algebra first, then statistics and programming.",
    "an AI winter": "Funding collapsed in the 1970s, a period known as an AI winter, and research slowed for a decade.",
    "code fences": "Install:\n```bash\npip install mytool\n```\nConfigure:\n```bash\nmytool init\n```\n"
                   "Run:\n```bash\nmytool run\n```\nCheck:\n```bash\nmytool status\n```\nThat is all you need.",
    "a dict lookup in code": "Count them:\n```python\ncounts[name] = counts.get(name, 0) + 1\n# TODO: sort\n```\nThat is the idea.",
    "explaining think tags": "R1 writes its reasoning between `<think>` and `</think>` tags before the answer.",
    "inline JSON": 'Send `{"name": "Bob", "age": 30, "tags": ["a", "b"]}` as the request body to create the user.',
    "Japanese prose": "私は昨日友達と一緒に映画を見に行きました。とても面白かったです。",
}


@pytest.mark.parametrize("case", sorted(FALSE_POSITIVES))
def test_good_answers_are_not_flagged(case) -> None:
    out = QualityStep().process(_batch([{"instruction": "Explain it.", "output": FALSE_POSITIVES[case]}]))
    assert out.decisions is None or out.decisions.num_rows == 0, out.decisions.column("reason").to_pylist()


def test_tool_turns_alternate_and_whitespace_only_answers_are_empty() -> None:
    tool_dialogue = {"messages": [{"role": "user", "content": "Weather in Paris?"},
                                  {"role": "assistant", "content": "Let me look that up."},
                                  {"role": "tool", "content": "{\"temp\": 21}"},
                                  {"role": "assistant", "content": "It is 21 degrees in Paris right now."}]}
    out = QualityStep().process(_batch([tool_dialogue, {"instruction": "Hi", "output": "\n\n\t"}]))
    reasons = dict(zip(out.decisions.column("sample_id").to_pylist(), out.decisions.column("reason").to_pylist()))
    assert "s0" not in reasons and reasons["s1"].startswith("empty answer")


def test_a_one_megabyte_answer_is_judged() -> None:
    # its time is a target of benchmarks/bench_quality.py (one_megabyte_answer_seconds), not of a test
    big = " ".join(f"word{i % 5000}" for i in range(150_000))
    out = QualityStep().process(_batch([{"instruction": "Write a lot.", "output": big}]))
    reasons = out.decisions.filter(pa.compute.equal(out.decisions.column("verdict"), "drop")).column("reason").to_pylist()
    assert any("repeat" in r for r in reasons), reasons


def test_redaction_next_to_chinese_text() -> None:
    from collections import Counter

    step = RedactStep()
    assert step.redact("我的手机号13912345678，有事打给我。", Counter()) == "我的手机号[PHONE]，有事打给我。"
    assert step.redact("身份证11010519491231002X", Counter()) == "身份证[ID_NUMBER]"
    assert step.redact("version 2.2.0+12345678", Counter()) == "version 2.2.0+12345678"
    # cards next to text and punctuation are redacted; the digits of a decimal fraction are not a card
    assert step.redact("卡号4111 1111 1111 1111，请核对。", Counter()) == "卡号[CARD_NUMBER]，请核对。"
    assert step.redact("Pay with card 4111-1111-1111-1111.", Counter()) == "Pay with card [CARD_NUMBER]."
    assert step.redact("Card no.4111111111111111", Counter()) == "Card no.[CARD_NUMBER]"
    assert step.redact("x = 0.4111111111111111", Counter()) == "x = 0.4111111111111111"


def test_language_step_judges_the_answer_not_a_short_instruction() -> None:
    step = LanguageStep(params={"keep": ["en", "zh"]})
    out = step.process(_batch([{"instruction": "Define photosynthesis.", "output": GOOD_EN.replace("Binary search", "It")},
                               {"instruction": "Convert Celsius to Fahrenheit.", "output": "Multiply by 9/5 and add 32 to the Celsius value."}]))
    assert out.decisions.num_rows == 0, out.decisions.column("reason").to_pylist()
    with pytest.raises(ValueError, match="unknown language codes"):
        LanguageStep(params={"keep": ["en", "klingon"]})


def test_answer_equal_to_or_repeating_its_instruction_in_another_case() -> None:
    """The two rules compare lower-cased text and look at the lengths first, which holds because DuckDB's
    lower() maps every code point to exactly one (all of them checked)."""
    import duckdb

    con = duckdb.connect()
    bad = con.execute("SELECT count(*) FROM range(0, 1114112) t(cp) WHERE (cp < 55296 OR cp > 57343) "
                      "AND length(lower(chr(cp::INTEGER))) <> 1").fetchall()[0][0]
    assert bad == 0
    ins = "Name the capital city of France, please"
    rows = [(ins, ins.upper()), (ins, "ＮＡＭＥ"), ("İSTANBUL is a city in Turkey", "i̇stanbul is a city in turkey"),
            (ins, f"{ins.upper()}: Paris."),
            (ins, "Paris is the capital city of France; it lies on the Seine.")]
    n = len(rows)
    batch = pa.table({"sample_id": [f"s{i}" for i in range(n)], "instruction": [q for q, _ in rows],
                      "input": pa.nulls(n, pa.string()), "output": [a for _, a in rows],
                      "system": pa.nulls(n, pa.string()), "messages": pa.nulls(n, MESSAGE_TYPE),
                      "reasoning": pa.nulls(n, pa.string())})
    out = QualityStep().process(batch).decisions.to_pylist()
    hit = {(d["sample_id"], d["reason"].split(":")[0]) for d in out}
    assert ("s0", "answer equals the instruction") in hit and ("s2", "answer equals the instruction") not in hit
    assert ("s3", "answer mostly repeats the instruction") in hit
    assert not {sid for sid, r in hit if "instruction" in r} & {"s1", "s4"}
