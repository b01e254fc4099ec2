"""The language step's fast path: arrays equal to objects, fastText as first pass, dialogues read from their
turns, views of long texts, code lines left out. Real models (lingua, fastText's lid.176.ftz)."""

from __future__ import annotations

import numpy as np

from curation.language import (
    FASTTEXT_SURE,
    VIEW_HEAD,
    detect,
    detect_arrays,
    english_share,
    first_pass,
    script_counts,
    strip_non_language,
    text_view,
)
from curation.pipeline.steps.language import LanguageStep
from tests.curation.pipeline.test_filters import GOOD_EN, _batch

TEXTS = [
    "La fotosíntesis es el proceso por el cual las plantas convierten la luz del sol en energía química.",
    "光合作用是植物利用阳光把二氧化碳和水变成糖的过程。",
    "Фотосинтез — это процесс, при котором растения превращают свет в химическую энергию.",
    GOOD_EN,
    "continue",
    "",
    "Die Photosynthese ist der Vorgang, bei dem Pflanzen Licht in chemische Energie umwandeln.",
]


def test_detect_arrays_is_detect() -> None:
    arrays = detect_arrays(TEXTS)
    objects = detect(TEXTS)
    assert list(arrays.lang) == [r.lang for r in objects] == ["es", "zh", "ru", "en", arrays.lang[4], "und", "de"]
    assert np.allclose(arrays.confidence, [r.confidence for r in objects])
    assert list(arrays.mixed) == [r.mixed for r in objects]
    # the same texts in another order and repeated: the same answers (identical texts detected once)
    again = detect_arrays(TEXTS[::-1] + TEXTS)
    assert list(again.lang[: len(TEXTS)]) == list(arrays.lang[::-1]) and list(again.lang[len(TEXTS):]) == list(arrays.lang)


def test_fasttext_first_pass_is_the_shipped_model_and_is_sure_on_plain_text() -> None:
    fast = first_pass()
    assert fast is not None and fast.path.endswith("lid.176.ftz")
    (best, *_), = fast.predict([TEXTS[0]])
    assert best[0] == "es" and best[1] >= FASTTEXT_SURE


def test_long_texts_are_read_as_a_head_and_a_tail() -> None:
    long = GOOD_EN * 40
    view = text_view(long)
    assert len(view) < len(long) and view.startswith(long[:VIEW_HEAD]) and view.endswith(long[-100:])
    # a long answer whose language is clear in its first lines: judged as such, with its script shares
    r = detect(["这是一个很长的回答。" * 300])[0]
    assert r.lang == "zh" and r.scripts == {"han": 1.0}


def test_script_counts_rare_and_common_scripts() -> None:
    counts = script_counts(["abc" * 1000 + "Ω", "中文", "", "Привет"])
    assert counts[0].sum() == 3001 and counts[1].sum() == 6 and counts[2].sum() == 0 and counts[3].sum() == 6


def test_script_counts_equal_a_per_character_count_on_real_text() -> None:
    """The compiled count against the plain definition (each character's script from the table, CJK weighted), on
    the bundled sample's texts in their scripts, from a list and from a chunked, sliced Arrow column."""
    import numpy as np
    import pyarrow as pa

    from curation.language import _CJK, CJK_WEIGHT, SCRIPTS, _script_table
    from tests.conftest import sample_texts

    texts = sample_texts() + ["ΣΊΣΥΦΟΣ", "עברית", "العربية", "हिन्दी", "ไทย", "日本語のカタカナ", "한국어", "a\u0301 😀", ""]
    table = _script_table()
    weight = np.array([CJK_WEIGHT if name in _CJK else 1 for name in SCRIPTS])
    want = np.zeros((len(texts), len(SCRIPTS)), dtype=np.int64)
    for r, text in enumerate(texts):
        for ch in text:
            if table[ord(ch)]:
                want[r, table[ord(ch)]] += 1
    want *= weight
    assert (want[:, SCRIPTS.index("han")] > 0).sum() > 100 and (want[:, SCRIPTS.index("latin")] > 0).sum() > 1000
    np.testing.assert_array_equal(script_counts(texts), want)
    column = pa.chunked_array([pa.array(["padding", *texts[:100]]).slice(1), pa.array(texts[100:])])
    np.testing.assert_array_equal(script_counts(column), want)


def test_english_share_from_tokens() -> None:
    words, share = english_share("The answer is in the second (the last) part of it.")
    assert words == 11 and share > 0.5
    assert english_share("Der Hund ist auf der Matte und es ist gut.")[1] < 0.25


def test_javascript_entries_are_code_not_german() -> None:
    # rewritten from a ShareGPT request: an object literal of translated paths, then the request
    instruction = ("Input:\n{\n" + "".join(f" {c}: '/{p}',\n" for c, p in (
        ("de", "datenschutz-erklaerung"), ("de", "ueber-uns"), ("fr", "politique-de-confidentialite"),
        ("es", "politica-de-privacidad"), ("de", "cookie-richtlinie"))) + "}\n\nGenerate the same output for "
                   "every locale in the object and keep the keys in the order they were given.")
    assert "richtlinie" not in strip_non_language(instruction)
    out = LanguageStep(params={"keep": ["en", "zh"]}).process(
        _batch([{"instruction": instruction, "output": "```js\nconst paths = {};\n```"}]))
    assert out.decisions.num_rows == 0, out.decisions.column("reason").to_pylist()


def test_dialogue_languages_come_from_its_turns() -> None:
    messages = [
        {"role": "user", "content": "请解释一下什么是二分查找，以及它为什么比线性查找快。"},
        {"role": "assistant", "content": GOOD_EN},
        {"role": "user", "content": "那么它的时间复杂度是多少？请详细说明。"},
        {"role": "assistant", "content": "Its time complexity is O(log n), because every comparison halves the "
                                         "part of the list that can still hold the target."},
    ]
    out = LanguageStep(params={"keep": ["en", "zh"]}).process(_batch([{"messages": messages}]))
    reasons = out.decisions.column("reason").to_pylist()
    assert reasons == ["answer language differs from instruction: instruction zh, answer en"]
    sig = {(n, t) for n, t in zip(out.signals.column("name").to_pylist(), out.signals.column("text").to_pylist())}
    assert {("lang.instruction", "zh"), ("lang.output", "en"), ("lang.turn.0", "zh"), ("lang.turn.1", "en"),
            ("lang.turn.2", "zh"), ("lang.turn.3", "en"), ("lang", "en")} <= sig
    values = dict(zip(out.signals.column("name").to_pylist(), out.signals.column("value").to_pylist()))
    assert values["lang.output"] > 0.5 and abs(values["script.han"] + values["script.latin"] - 1) < 1e-3


def test_chinese_prose_that_ends_like_a_call_is_not_code() -> None:
    # rewritten from translated PostgreSQL messages in the bundled sample
    lines = ["只有超级用户才能调用pg_reload_conf()", "生成中等规模的统计信息(20个目标)", "UPDATE 的目标字段数多于给出的值"]
    assert [strip_non_language(t) for t in lines] == lines
    assert [r.lang for r in detect(lines)] == ["zh", "zh", "zh"]
    for code in ("UPDATE accounts SET balance = 0;", "reload_conf()", "total = compute(rows)"):
        assert strip_non_language(code).strip() == "", code


def test_lingua_in_short_calls_answers_as_in_one_and_can_leave_the_gil_to_others(monkeypatch) -> None:
    """lingua holds the GIL through a call: the backend calls it on LINGUA_CALL_TEXTS texts at a time, and after
    share_gil(s) pauses so that its calls take at most that share of the time (the API's requests get the rest)."""
    import time

    import curation.language as L

    backend = L.get_backend("lingua")
    pool = ("de", "en", "es", "fr", "it", "pt")
    texts = [t for t in TEXTS if t and t.isascii() or "ó" in t] * 5
    # the second opinion's calls (short texts lingua is unsure of) pause the same way: counted below
    asked: list[int] = []
    scores = L.SecondOpinion.scores
    monkeypatch.setattr(L.SecondOpinion, "scores", lambda self, t: asked.append(len(t)) or scores(self, t))
    whole = backend.detect(texts, pool)
    monkeypatch.setattr(L, "LINGUA_CALL_TEXTS", 3)
    chunked = backend.detect(texts, pool)
    assert [c for c, _ in chunked] == [c for c, _ in whole]
    assert np.allclose([p for _, p in chunked], [p for _, p in whole])
    slept: list[float] = []
    monkeypatch.setattr(L, "_pause", slept.append)  # this module's pauses only, not other threads' sleeps
    backend.detect(texts, pool)
    assert slept == []  # the CLI's default: no pause
    try:
        L.share_gil(0.25)
        asked.clear()
        t = time.perf_counter()
        backend.detect(texts, pool)
        took = time.perf_counter() - t
    finally:
        L.share_gil(1.0)
    assert asked and asked[0] > 0
    assert len(slept) == -(-len(texts) // 3) + -(-asked[0] // 3)  # one pause per call
    assert 0 < sum(slept) <= 3 * took  # each pause three times its call: a quarter of the time in lingua
    import pytest

    with pytest.raises(ValueError, match="share"):
        L.share_gil(0)


def test_models_a_page_needs_load_in_one_call_unless_the_gil_is_shared(monkeypatch) -> None:
    """lingua loads the models of one call in parallel (39 languages: 4.7 s, one at a time 8.4 s), so the CLI loads
    what a page's pools lack at once; a process that shares the GIL (the API) still loads one language per call."""
    import curation.language as L

    backend = L.get_backend("lingua")
    real = backend._lingua.LanguageDetectorBuilder
    groups: list[tuple[str, ...]] = []

    class Spy:  # records each builder's languages and builds the real detector
        @staticmethod
        def from_languages(*langs):  # noqa: ANN001, ANN205
            groups.append(tuple(sorted(lang.iso_code_639_1.name.lower() for lang in langs)))
            return real.from_languages(*langs)

    monkeypatch.setattr(backend._lingua, "LanguageDetectorBuilder", Spy)
    first, second = ("st", "tn", "ts"), ("xh", "yo", "zu")
    for code in first + second:
        L._LINGUA_LOADED.discard((code, False))
    backend.prepare(first)
    assert groups == [first]
    assert {(c, False) for c in first} <= L._LINGUA_LOADED
    try:
        L.share_gil(0.5)
        monkeypatch.setattr(L, "_pause", lambda s: None)
        groups.clear()
        backend.prepare(second)
    finally:
        L.share_gil(1.0)
    assert sorted(groups) == [("en", c) for c in second]  # one language (and English: a detector needs two)
    groups.clear()
    assert [c for c, _ in backend.detect(["Ngiyabonga kakhulu ngosizo lwakho namuhla"], second)] == ["zu"]
    assert all(len(g) == 3 for g in groups)  # the detector of the pool; its models were loaded already


def test_a_text_fasttext_reads_as_another_script_is_weighed_among_the_common_languages() -> None:
    """fastText's labels for the Latin part of "mongodb 6.0 的change stream有哪些修改？" or of code are Chinese,
    Russian, Japanese: they say nothing of its Latin-script language, so lingua weighs the commonest Latin-script
    languages (all of COMMON_PRIOR for a short text), not all 50 it knows."""
    from curation.language import _NARROW_COMMON, COMMON_PRIOR, SCRIPT_LANGUAGES, _narrowed

    latin = SCRIPT_LANGUAGES["latin"]
    assert len(latin) > 40
    assert _narrowed(latin, ["ru", "uk", "ja"]) == tuple(sorted(c for c in _NARROW_COMMON if c in latin))
    assert _narrowed(latin, ["zh", "ja", "wuu"], short=True) == tuple(sorted(c for c in COMMON_PRIOR if c in latin))
    # a label of this script still narrows around it, with its relatives
    assert "tl" in _narrowed(latin, ["tl", "ru", "ja"]) and "yo" not in _narrowed(latin, ["tl", "ru", "ja"])


# the 22 languages of bench_language.py: a team's candidate set (`expected`)
CANDIDATES = ("en", "zh", "es", "ar", "fr", "ru", "pt", "de", "ja", "ko", "it", "tr", "vi", "pl", "uk", "nl", "hi",
              "id", "fa", "sv", "cs", "bg")
# short chat lines that lingua alone misreads among those candidates (rewritten from the kind of cut lines of
# real chat where it does: an English line read as French, Spanish ones read as German, Portuguese, Indonesian)
SHORT_LINES = {"I am able to": "en", "I am capab": "en", "Dime, qué te": "es", "Los robots": "es", "La ira es": "es",
               "Es un tema": "es", "Ser escrito en": "es", "Merci. P": "fr"}


def test_a_second_opinion_reads_the_short_lines_lingua_alone_misreads() -> None:
    """HeLI's scores weighed into lingua's on short texts it is unsure of (SecondOpinion)."""
    from curation.language import LinguaBackend

    texts = list(SHORT_LINES)
    assert [r.lang for r in detect(texts, CANDIDATES)] == list(SHORT_LINES.values())
    alone = [r.lang for r in detect(texts, CANDIDATES, backend=LinguaBackend(second_opinion=False))]
    assert sum(a == b for a, b in zip(alone, SHORT_LINES.values())) <= 2, alone


def test_the_second_opinion_is_asked_only_about_short_texts_lingua_is_unsure_of(monkeypatch) -> None:
    import curation.language as L

    asked: list[str] = []
    scores = L.SecondOpinion.scores
    monkeypatch.setattr(L.SecondOpinion, "scores", lambda self, texts: asked.extend(texts) or scores(self, texts))
    backend = L.LinguaBackend()
    sure, long = "Ich weiß es nicht", "I am able to read this sentence, which is long enough to settle its language."
    backend.detect([sure, long, "I am able to"], CANDIDATES[:10])
    assert asked == ["I am able to"]  # lingua is sure of the first; the second has 40 characters or more


def test_the_second_opinions_scores_multiply_lingua_s_confidence() -> None:
    """Each confidence times 10 ** -score (HeLI's score is a mean negative log10 probability), normalised; a language
    outside HeLI's best gets the worst of its scores."""
    from curation.language import SecondOpinion

    row = [("fr", 0.6), ("en", 0.3), ("it", 0.1)]
    out = SecondOpinion.combine(row, {"en": 2.0, "fr": 3.0, "": 4.0})
    w = {"fr": 0.6 * 10 ** -1, "en": 0.3 * 10 ** 0, "it": 0.1 * 10 ** -2}
    total = sum(w.values())
    assert [c for c, _ in out] == ["en", "fr", "it"]
    assert np.allclose([v for _, v in out], [w[c] / total for c, _ in out])
    assert SecondOpinion.combine([("fr", 0.0)], {"": 1.0}) == [("fr", 0.0)]  # nothing to weigh
