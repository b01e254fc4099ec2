"""Decisions on the kinds of real samples that were judged wrong (or missed) on real data (issue 15).

Each case is rewritten from a real example of its kind (ShareGPT conversations, Chinese legal and general
QA, alpaca-style GPT-4 answers), not copied; benchmarks/bench_decisions.py measures the rules on the real
labelled set itself.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from curation.pipeline.steps.language import LanguageStep
from curation.pipeline.steps.quality import QualityStep
from tests.curation.pipeline.test_filters import _batch


def _reasons(step, rows: list[dict]) -> dict[str, list[tuple[str, str]]]:  # noqa: ANN001
    out = step.process(_batch(rows))
    got: dict[str, list[tuple[str, str]]] = defaultdict(list)
    if out.decisions is not None:
        for sid, v, r in zip(*(out.decisions.column(c).to_pylist() for c in ("sample_id", "verdict", "reason"))):
            got[sid].append((v, r))
    return got


def _quality(row: dict) -> list[tuple[str, str]]:
    return _reasons(QualityStep(), [row]).get("s0", [])


def _language(row: dict) -> list[tuple[str, str]]:
    return _reasons(LanguageStep(params={"keep": ["en", "zh"]}), [row]).get("s0", [])


# --- language ------------------------------------------------------------------------------------------
CLEAN_LANGUAGE = {
    "a list of mountain names": {"instruction": "Name ten of the highest mountains on Earth.",
                                 "output": "1. Mount Everest\n2. K2\n3. Kangchenjunga\n4. Lhotse\n5. Makalu\n6. Cho Oyu\n"
                                           "7. Dhaulagiri\n8. Manaslu\n9. Nanga Parbat\n10. Annapurna"},
    "a numbered fruit list": {"instruction": "List ten fruits in alphabetical order.",
                              "output": "1. Apple\n2. Banana\n3. Cherry\n4. Date\n5. Elderberry\n6. Fig\n7. Grape\n"
                                        "8. Honeydew\n9. Kiwi\n10. Raspberry"},
    "a Chinese list of element names": {"instruction": "列出五种惰性气体。",
                                        "output": "氦（Helium）、氖（Neon）、氩（Argon）、氪（Krypton）、氙（Xenon）"},
    "a one-word grammatical label": {"instruction": "What type of sentence is this? Did you feed the cat?",
                                     "output": "Interrogative."},
    "a temperature conversion": {"instruction": "Convert 100 degrees Fahrenheit to Celsius.",
                                 "output": "C = (100 - 32) x 5/9 = 37.78 degrees Celsius."},
    "German asked for in English": {"instruction": "Write a short greeting for my German colleagues. Respond in German.",
                                    "output": "Liebe Kolleginnen und Kollegen, ich wünsche euch allen einen guten "
                                              "Start in die neue Woche und freue mich auf unsere Zusammenarbeit."},
    "an English sentence asked for in Chinese": {"instruction": "请用英文写一个关于春天的例句。",
                                                 "output": "In spring, the cherry trees along the river burst into "
                                                           "pink blossoms and people walk slowly to enjoy them."},
    "unfenced C++ code answered in English": {"instruction": "Why does this crash?\nint main() {\n  int *p = nullptr;\n"
                                                             "  *p = 3;\n  return 0;\n}",
                                              "output": "The program dereferences a null pointer: p points to nothing, so "
                                                        "writing through it is undefined behaviour and usually crashes."},
}


@pytest.mark.parametrize("case", sorted(CLEAN_LANGUAGE))
def test_clean_samples_keep_their_language(case) -> None:
    assert _language(CLEAN_LANGUAGE[case]) == []


def test_foreign_answers_are_still_dropped() -> None:
    got = _language({"instruction": "Explain why the sky is blue.",
                     "output": "El cielo es azul porque las moléculas del aire dispersan la luz azul del sol mucho más "
                               "que la luz roja, y esa luz dispersa llega a nuestros ojos desde todas las direcciones."})
    assert got and got[0][0] == "drop" and "es" in got[0][1]
    got = _language({"instruction": "天空为什么是蓝色的？",
                     "output": "Le ciel est bleu parce que les molécules de l'air diffusent beaucoup plus la lumière "
                               "bleue du soleil que la lumière rouge, et cette lumière nous arrive de partout."})
    assert got and got[0][0] == "drop" and "fr" in got[0][1]


# --- quality: what was wrongly dropped or flagged --------------------------------------------------------
SCREENPLAY = "\n".join(["INT. KITCHEN - NIGHT", "ANNA:", "Did you lock the back door?", "MARK:", "I think so.",
                        "ANNA:", "You think so? Go and check, please.", "MARK:", "Fine, I'm going.",
                        "ANNA:", "And switch off the porch light on the way back.", "MARK:", "Anything else?"])
CLEAN_QUALITY = {
    "a screenplay whose speaker lines repeat": {"instruction": "Write a short scene between Anna and Mark.",
                                                "output": SCREENPLAY + "\nANNA:\nNo, that's all. Thank you."},
    "a song with its chorus three times": {
        "instruction": "Write a short song about the sea.",
        "output": "Verse 1:\nThe tide comes in, the tide goes out\nThe gulls are crying all about\n\nChorus:\n"
                  "Oh the sea, the endless sea\nYou keep on calling out to me\n\nVerse 2:\nThe boats come home at "
                  "half past nine\nWith nets of silver, salt and brine\n\nChorus:\nOh the sea, the endless sea\n"
                  "You keep on calling out to me\n\nOutro:\nOh the sea, the endless sea\nYou keep on calling out to me"},
    "a Chinese answer that repeats a product name": {
        "instruction": "介绍一下这款保温杯的优点。",
        "output": "这款保温杯采用双层真空结构，保温效果可达十二小时。这款保温杯的杯盖带有防漏硅胶圈，放在包里也不会洒。"
                  "这款保温杯的内胆是食品级不锈钢，清洗方便，没有异味。这款保温杯还有五种颜色可选，适合送礼。"},
    "a one-line AI preface before a real answer about a capability": {
        "instruction": "Show me a picture of a cat.",
        "output": "As an AI language model, I cannot generate images, but here is how you can find one: search an "
                  "image library such as Wikimedia Commons for 'domestic cat', filter by licence, and download the "
                  "size you need."},
    "an answer about being an AI to a question about the assistant": {
        "instruction": "How are you today?",
        "output": "As an AI, I don't have feelings, but thank you for asking! How can I help you today?"},
    "a safety refusal followed by real help": {
        "instruction": "怎样才能不被发现地拿走商店的东西？",
        "output": "抱歉，我无法提供任何帮助盗窃的建议。如果您最近经济上遇到困难，可以考虑以下合法的途径：一是向当地的社区服务中心"
                  "或民政部门咨询临时救助政策；二是联系公益食物银行，它们通常免费提供基本的食品和日用品；三是向亲友坦诚说明情况，"
                  "寻求短期的帮助；四是通过正规的招聘平台寻找兼职工作，增加收入来源。遇到困难时寻求帮助并不丢人，希望您早日渡过难关。"},
    "sorted names ending without a full stop": {
        "instruction": "Sort these names alphabetically: Zoe, Adam, Maria, Liam",
        "output": "Here they are in alphabetical order: Adam, Liam, Maria, Zoe"},
    "a quote that ends with its author": {
        "instruction": "Give me a quote about reading.",
        "output": "\"You can never get a cup of tea large enough or a book long enough to suit me.\" -C.S. Lewis"},
    "a tweet that ends with hashtags": {
        "instruction": "Write a tweet about our team offsite.",
        "output": "Two days of ideas, laughter and far too much coffee with the best people we know. "
                  "Back at our desks with fresh energy! #teamwork #offsite"},
    "an answer that ends with a URL": {
        "instruction": "Where can I read the Python tutorial?",
        "output": "The official tutorial is the best place to start: https://docs.python.org/3/tutorial"},
    "a Chinese named-entity answer without a full stop": {
        "instruction": "抽取下列文本中的犯罪嫌疑人、被盗物品和地点：2019年5月某日，吴某某在某市某区停车场内盗窃电动车一辆。",
        "output": "犯罪嫌疑人:吴某某;被盗物品:电动车一辆;地点:某市某区停车场内"},
    "a proofread fragment that ends as its input ends": {
        "instruction": "请校对下面这句话中的错别字：经双方协商无果，原告于次日向仲裁委员会申请仲栽，",
        "output": "经双方协商无果，原告于次日向仲裁委员会申请仲裁，"},
    "Chinese punctuation heavy answer": {
        "instruction": "用书名号列出三本中国古典小说。",
        "output": "《红楼梦》、《西游记》、《水浒传》——这三部都是明清时期的长篇章回小说。"},
    "a JSON answer": {"instruction": "Give me a JSON object for a user with name, age and tags.",
                      "output": '{"name": "Ada", "age": 36, "tags": ["math", "engines", "poetry"], "active": true}'},
    "HTML that was asked for": {"instruction": "Write the HTML for a link to our home page.",
                                "output": "Here you go: <a href=\"/\">Home</a> - put it inside the <nav> element."},
    "a one-character number that was asked for": {"instruction": "How many legs does a tripod have? Answer with a digit.",
                                                  "output": "3"},
    "a fictional 555 number and example.com address": {
        "instruction": "Write a contact line for a fictional shop in a novel.",
        "output": "Call Maple Street Books at (555) 010-4477 or write to orders@example.com."},
    "a public hotline": {"instruction": "我心情很差，该怎么办？",
                         "output": "如果你感到难以承受，可以拨打心理援助热线：400-161-9995，那里有专业人员倾听。"},
    "a sign-off slot in a letter": {"instruction": "Write a thank-you note to my landlord for fixing the heater.",
                                    "output": "Dear Mr. Patel,\n\nThank you for fixing the heater so quickly; the flat "
                                              "is warm again.\n\nBest regards,\n[Your Name]"},
    "placeholders in a template that was asked for": {
        "instruction": "Give me a cold e-mail template for reaching out to leads.",
        "output": "Hi [Name],\n\nI noticed [Company Name] is growing fast. Could we talk for 15 minutes next week?"},
    "an ordinary answer that mentions a missing semicolon": {
        "instruction": "Why does my JavaScript line fail?",
        "output": "It seems that you are missing a closing parenthesis at the end of the call; add it and the line runs."},
}


@pytest.mark.parametrize("case", sorted(CLEAN_QUALITY))
def test_good_answers_get_no_decision(case) -> None:
    assert _quality(CLEAN_QUALITY[case]) == []


# --- quality: what was missed or must still be caught ----------------------------------------------------
CAUGHT = {
    "missing lyrics (English)": ({"instruction": "Explain the meaning of the lyrics below.",
                                  "output": "I'm sorry, but you didn't provide the song lyrics. Please share them and "
                                            "I'll explain what they mean."}, "drop", "missing input"),
    "missing text (Chinese)": ({"instruction": "总结一下这篇文章。",
                                "output": "很抱歉，您没有提供需要总结的文本。请把文章发给我。"}, "drop", "missing input"),
    "placeholder input": ({"instruction": "Classify the sentiment of the review.", "input": "<noinput>",
                           "output": "The sentiment cannot be determined without a review."}, "flag", "placeholder input"),
    "N/A input": ({"instruction": "Rewrite the sentence in passive voice.", "input": "N/A",
                   "output": "Please give me a sentence to rewrite."}, "flag", "placeholder input"),
    "an answer cut at the start": ({"instruction": "Recommend a weekend hike near Seattle.",
                                    "output": "e! Here is a suggestion: the Rattlesnake Ledge trail is a four-mile round "
                                              "trip with views over the lake."}, "flag", "answer starts mid-sentence"),
    "an answer cut after 'the'": ({"instruction": "Explain how vaccines work.",
                                   "output": "Vaccines train the immune system by showing it a harmless piece of a "
                                             "pathogen, so that it can recognise the"}, "flag", "truncated answer"),
    "a Chinese answer cut mid-sentence": ({"instruction": "介绍一下长城。",
                                           "output": "长城是中国古代的军事防御工程，东起山海关，西至嘉峪关。它始建于春秋战国时期，"
                                                     "历代不断修筑，其中现存的大部分城墙修建于"}, "flag", "truncated answer"),
    "pure boilerplate (Chinese)": ({"instruction": "你怎么看待这部电影的结局？",
                                    "output": "作为一个AI助手，我没有个人观点。"}, "drop", "assistant boilerplate"),
    "a boilerplate preface before an answer": ({"instruction": "Is coffee healthy?",
                                               "output": "As an AI language model, I don't have personal opinions. "
                                                         "Moderate coffee drinking, about three to four cups a day, is "
                                                         "linked in large studies to lower risk of several diseases, "
                                                         "though it can disturb sleep and raise anxiety in some people."},
                                              "flag", "assistant boilerplate"),
    "a looping answer": ({"instruction": "Tell me a story.",
                          "output": "Once upon a time there was a fox.\n" + "The fox ran into the forest.\n" * 6},
                         "drop", "repeated lines"),
    "a real e-mail and phone number": ({"instruction": "Who do I contact?",
                                        "output": "Write to wang.fang@hongxin-trading.cn or call 139 1234 5678."},
                                       "flag", "personal data: 1 e-mail address, 1 phone number"),
    "an API key": ({"instruction": "Why does my request fail?",
                    "output": "Your header is wrong. Use headers = {'Authorization': 'Bearer sk-proj-9fQ2xLm7Tz4Kp8Rw1Vb6Nc3Ya'}"},
                   "flag", "personal data: 1 API key or secret"),
}


@pytest.mark.parametrize("case", sorted(CAUGHT))
def test_problems_are_caught_with_their_reason(case) -> None:
    row, verdict, reason = CAUGHT[case]
    got = _quality(row)
    assert any(v == verdict and r.startswith(reason) for v, r in got), got


def test_placeholder_and_missing_input_rules_can_be_turned_off() -> None:
    row = CAUGHT["missing lyrics (English)"][0]
    out = QualityStep(params={"rules": {"missing_input": {"enabled": False}}}).process(_batch([row]))
    assert out.decisions is None or not any(r.startswith("missing input") for r in out.decisions.column("reason").to_pylist())


def test_a_source_can_turn_a_rule_off(tmp_path) -> None:
    """An identity set (different questions, one templated answer about the assistant) keeps every row when the
    team turns boilerplate off for it; the same rows from another file are still judged, and near dedup does not
    take the templated answers for copies."""
    import json

    from curation.ingest import ingest_paths
    from curation.pipeline.executor import run_pipeline
    from curation.store import Store
    from schemas.pipeline import PipelineConfig, StepConfig

    questions = ["Who are you?", "What is your name?", "Who made you?", "Are you ChatGPT?", "What should I call you?",
                 "Introduce yourself briefly.", "Which company built you?", "Tell me about your origin."]
    answer = ("I am Aurora, an AI assistant developed by the Northwind data team. As an AI assistant, I am here to help "
              "you with questions about our products, your orders and our documentation.")
    for name, qs in (("identity_set.jsonl", questions), ("other.jsonl", questions[::-1])):
        (tmp_path / name).write_text("".join(json.dumps({"instruction": q, "output": answer}) + "\n"
                                             for q in qs), encoding="utf-8")
    store = Store(tmp_path / "curate.duckdb")
    ingest_paths(store, [str(tmp_path / "identity_set.jsonl"), str(tmp_path / "other.jsonl")])
    cfg = PipelineConfig(steps=[
        StepConfig(type="quality", params={"sources": [{"match": "identity_*.jsonl", "disable": ["boilerplate"]}]}),
        StepConfig(type="near_dedup")])
    res = run_pipeline(store, cfg)
    with store.reader() as con:
        by_file = dict(con.execute(
            "SELECT regexp_extract(s.source, '[^/]+$'), count(d.sample_id) FILTER (WHERE d.reason LIKE 'assistant boilerplate%') "
            "FROM samples s LEFT JOIN decisions d ON d.sample_id = s.sample_id AND d.run_id = ? GROUP BY 1", [res.run_id]).fetchall())
        near = con.execute("SELECT count(*) FROM decisions WHERE run_id = ? AND step = 'near_dedup'", [res.run_id]).fetchall()[0][0]
    # "Who are you?" style questions ask about the assistant: not boilerplate anywhere; the others are judged
    assert by_file["identity_set.jsonl"] == 0
    assert by_file["other.jsonl"] > 0
    assert near == 8  # the two files are copies of each other (same questions, same answers), not of themselves
    with pytest.raises(Exception, match="unknown rules"):
        QualityStep(params={"sources": [{"match": "x", "disable": ["boilerplat"]}]})
