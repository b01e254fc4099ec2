"""Language identification: a Unicode-script pass, then a statistical model among that script's languages.

``detect(texts, languages=None)`` returns one :class:`LanguageResult` per text, deterministically.

1. **Script pass** (vectorised with numpy over all texts at once): every letter is mapped to its script
   (Han, Hiragana, Katakana, Hangul, Latin, Cyrillic, Arabic, Devanagari, Greek, Hebrew, Thai, ...).
   A CJK character counts three times a letter, as it carries about as much as a short word; the
   shares of each script are returned. Fenced code, inline code and URLs are left out first: they are
   Latin whatever the language around them.
2. The **dominant script** decides alone where one language owns it (Hangul: ko, Greek: el, Thai: th,
   ...); Han is Chinese unless kana is present (Japanese). For shared scripts (Latin, Cyrillic, Arabic,
   Devanagari) a statistical **backend** chooses among the languages of that script, limited to the
   candidate set when one is given. Backends are pluggable (:data:`BACKENDS`): ``lingua`` (default,
   chosen by ``benchmarks/bench_language.py``) and ``langdetect`` (seeded).

Codes are ISO 639-1 where one exists, else ISO 639-3; ``und`` when the text has no letters.
A candidate set means "the languages this dataset contains": a text is then labelled with the closest
candidate of its script. When no candidate shares the text's script, the text is labelled with what it
is (a Russian row in an en/zh set comes out ``ru``), so that a keep-languages filter can drop it.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

UNDETERMINED = "und"

# Scripts, in table order (index 0 means "not a letter of a known script").
SCRIPTS: tuple[str, ...] = (
    "", "latin", "greek", "cyrillic", "armenian", "hebrew", "arabic", "syriac", "thaana", "devanagari", "bengali",
    "gurmukhi", "gujarati", "oriya", "tamil", "telugu", "kannada", "malayalam", "sinhala", "thai", "lao", "tibetan",
    "myanmar", "georgian", "hangul", "ethiopic", "khmer", "mongolian", "han", "hiragana", "katakana",
)
_RANGES: dict[str, tuple[tuple[int, int], ...]] = {
    "latin": ((0x41, 0x5A), (0x61, 0x7A), (0xAA, 0xAA), (0xBA, 0xBA), (0xC0, 0x24F), (0x1D00, 0x1DBF),
              (0x1E00, 0x1EFF), (0x2C60, 0x2C7F), (0xA720, 0xA7FF), (0xAB30, 0xAB6F), (0xFF21, 0xFF3A),
              (0xFF41, 0xFF5A)),
    "greek": ((0x370, 0x3FF), (0x1F00, 0x1FFF)),
    "cyrillic": ((0x400, 0x52F), (0x1C80, 0x1C8F), (0x2DE0, 0x2DFF), (0xA640, 0xA69F)),
    "armenian": ((0x530, 0x58F), (0xFB13, 0xFB17)),
    "hebrew": ((0x590, 0x5FF), (0xFB1D, 0xFB4F)),
    "arabic": ((0x600, 0x6FF), (0x750, 0x77F), (0x870, 0x8FF), (0xFB50, 0xFDFF), (0xFE70, 0xFEFF)),
    "syriac": ((0x700, 0x74F),),
    "thaana": ((0x780, 0x7BF),),
    "devanagari": ((0x900, 0x97F), (0xA8E0, 0xA8FF)),
    "bengali": ((0x980, 0x9FF),),
    "gurmukhi": ((0xA00, 0xA7F),),
    "gujarati": ((0xA80, 0xAFF),),
    "oriya": ((0xB00, 0xB7F),),
    "tamil": ((0xB80, 0xBFF),),
    "telugu": ((0xC00, 0xC7F),),
    "kannada": ((0xC80, 0xCFF),),
    "malayalam": ((0xD00, 0xD7F),),
    "sinhala": ((0xD80, 0xDFF),),
    "thai": ((0xE00, 0xE7F),),
    "lao": ((0xE80, 0xEFF),),
    "tibetan": ((0xF00, 0xFFF),),
    "myanmar": ((0x1000, 0x109F),),
    "georgian": ((0x10A0, 0x10FF), (0x2D00, 0x2D2F)),
    "hangul": ((0x1100, 0x11FF), (0x3130, 0x318F), (0xA960, 0xA97F), (0xAC00, 0xD7AF), (0xD7B0, 0xD7FF)),
    "ethiopic": ((0x1200, 0x139F),),
    "khmer": ((0x1780, 0x17FF),),
    "mongolian": ((0x1800, 0x18AF),),
    "han": ((0x2E80, 0x2FDF), (0x3005, 0x3007), (0x3021, 0x3029), (0x3038, 0x303B), (0x3400, 0x4DBF),
            (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3134F)),
    "hiragana": ((0x3041, 0x309F),),
    "katakana": ((0x30A0, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF9F)),
}
_CJK = ("han", "hiragana", "katakana", "hangul")
CJK_WEIGHT = 3
# Scripts that one language owns (its ISO 639-1 code).
SCRIPT_LANGUAGE = {
    "greek": "el", "armenian": "hy", "hebrew": "he", "syriac": "syr", "thaana": "dv", "bengali": "bn",
    "gurmukhi": "pa", "gujarati": "gu", "oriya": "or", "tamil": "ta", "telugu": "te", "kannada": "kn",
    "malayalam": "ml", "sinhala": "si", "thai": "th", "lao": "lo", "tibetan": "bo", "myanmar": "my",
    "georgian": "ka", "hangul": "ko", "ethiopic": "am", "khmer": "km", "mongolian": "mn", "hiragana": "ja",
    "katakana": "ja", "han": "zh",
}
# Languages of the shared scripts that a statistical backend chooses among.
SCRIPT_LANGUAGES: dict[str, tuple[str, ...]] = {
    "latin": ("af", "az", "bs", "ca", "cs", "cy", "da", "de", "en", "eo", "es", "et", "eu", "fi", "fr", "ga", "hr",
              "hu", "id", "is", "it", "la", "lg", "lt", "lv", "mi", "ms", "nb", "nl", "nn", "no", "pl", "pt", "ro",
              "sk", "sl", "sn", "so", "sq", "st", "sv", "sw", "tl", "tn", "tr", "ts", "vi", "xh", "yo", "zu"),
    "cyrillic": ("be", "bg", "kk", "mk", "mn", "ru", "sr", "uk"),
    "arabic": ("ar", "fa", "ur", "ps"),
    "devanagari": ("hi", "mr", "ne"),
}
# Languages whose usual script is not the one the code names (for candidate sets: ja may write Han only).
_ALSO_WRITTEN_IN = {"ja": ("han",), "zh": ("han",), "ko": ("han",), "mn": ("cyrillic",), "sr": ("latin",)}

# Close relatives that short texts cannot tell apart. When the model's best guess is in one of these
# groups, the group's members are re-ranked by the model's confidence times their approximate share of
# web text (rounded Common Crawl language shares, in percent): between Indonesian and Malay, or Hindi
# and Marathi, the common one is the better bet for fine-tuning data. General knowledge, not fitted on
# an evaluation set; ``relatives=False`` on the backend turns it off. Other languages are left alone.
RELATIVES: tuple[dict[str, float], ...] = (
    {"id": 1.0, "ms": 0.05},
    {"hi": 0.2, "mr": 0.02, "ne": 0.02},
    {"hr": 0.2, "sr": 0.1, "bs": 0.03},
    {"nb": 0.3, "nn": 0.02, "da": 0.5},
    {"cs": 1.0, "sk": 0.3},
    {"bg": 0.3, "mk": 0.03},
    {"nl": 2.0, "af": 0.01},
)
_RELATIVES_OF = {code: group for group in RELATIVES for code in group}
# Texts shorter than SHORT_TEXT characters: the model's confidence in a language outside COMMON_PRIOR (the
# larger shares of web text) is weighed by RARE_PRIOR, as RELATIVES does within a group. General knowledge,
# not fitted on an evaluation set.
SHORT_TEXT = 40
RARE_PRIOR = 0.1
COMMON_PRIOR = frozenset("en zh es fr de ru pt ja ko it nl pl tr vi ar fa id uk cs sv hu ro el he th hi da fi nb bg sk "
                         "ms".split())

_WRITTEN_WITH = {"ja": ("han", "hiragana", "katakana"), "ko": ("hangul", "han"), "zh": ("han",)}
# Codes people use that the models spell otherwise.
_ALIASES = {"no": "nb", "iw": "he", "in": "id", "ji": "yi", "zh-cn": "zh", "zh-tw": "zh", "zh-hans": "zh", "zh-hant": "zh"}

# Left out before counting scripts: fenced and inline code, URLs.
# URLs end at the first non-ASCII character: Chinese text often follows a link without a space
_NOT_LANGUAGE = re.compile(r"```.*?(```|$)|`[^`\n]*`|https?://[!-~]+|www\.[!-~]+", re.S)


@dataclass(frozen=True, slots=True)
class LanguageResult:
    """The language of one text: code, confidence in 0..1, dominant script and the share of each script."""

    lang: str
    confidence: float
    script: str = ""
    scripts: dict[str, float] = field(default_factory=dict)

    @property
    def mixed(self) -> float:
        """Share of the text's letters (CJK weighted) outside the scripts of its language.

        Japanese is written in kanji and kana, Korean in hangul with some hanja: those count as one.
        """
        if not self.scripts:
            return 0.0
        own = _WRITTEN_WITH.get(self.lang, (self.script,))
        return max(0.0, 1.0 - sum(self.scripts.get(s, 0.0) for s in own))


class Backend(Protocol):
    """A statistical model that picks one language of a candidate list per text."""

    name: str

    def detect(self, texts: list[str], candidates: tuple[str, ...]) -> list[tuple[str, float]]:
        """(code, confidence) per text; ``candidates`` has at least two codes."""


_TABLE: np.ndarray | None = None
_TABLE_LOCK = threading.Lock()


def _script_table() -> np.ndarray:
    """Code point -> script index, letters and combining marks only (built once, ~0.1 s)."""
    global _TABLE
    with _TABLE_LOCK:
        if _TABLE is None:
            table = np.zeros(0x110000, dtype=np.uint8)
            for name, ranges in _RANGES.items():
                idx = SCRIPTS.index(name)
                for lo, hi in ranges:
                    if name in ("han", "hangul") and hi - lo > 0x1000:
                        table[lo:hi + 1] = idx  # ideographs and syllables: all letters
                        continue
                    for cp in range(lo, hi + 1):
                        if unicodedata.category(chr(cp))[0] in "LM":
                            table[cp] = idx
            _TABLE = table
    return _TABLE


# Lines of code outside fences (ShareGPT answers often lose their fences): a line that starts with a
# keyword or a closing bracket, ends with ");" or "{", holds an arrow or an assignment, is a call, or is a
# JSON / YAML entry ("key": "value"). Code reads as Latin or
# French to a language model.
_CODE_LINE = re.compile(
    r"^[ \t]*(?:(?:import|from|def|class|function|var|let|const|return|public|private|protected|static|void|"
    r"#include|package|using|func|fn|elif|else|try|catch|except|SELECT|INSERT|UPDATE|DELETE|CREATE|WHERE|FROM)\b"
    r"|[\w.\[\]'\"]+[ \t]*(?:[-+*/]?=|=>|:=)[^=]|[\w.]+\(.*\)[ \t;,]*$|[}\])]"
    r"|.*[)}\]'\"][ \t]*;[ \t]*$|.*\{[ \t]*$|[\"'][^\"'\n]*[\"'][ \t]*:[ \t]*[\"'\[{\d-]).*$", re.M)  # not "...;": prose lists end clauses so


def strip_non_language(text: str) -> str:
    """Text without fenced code, inline code, URLs and lines of code."""
    if "`" in text or "http" in text or "www." in text:
        text = _NOT_LANGUAGE.sub(" ", text)
    if "=" in text or ";" in text or "{" in text or "(" in text:
        text = _CODE_LINE.sub(" ", text)
    return text


def script_counts(texts: Sequence[str | None], chunk_chars: int = 8_000_000) -> np.ndarray:
    """Letters per script, shape (len(texts), len(SCRIPTS)); CJK characters weighted by :data:`CJK_WEIGHT`.

    Vectorised: the texts are joined, decoded to code points as one numpy array and counted with one
    bincount per chunk of about ``chunk_chars`` characters.
    """
    table = _script_table()
    n_scripts = len(SCRIPTS)
    out = np.zeros((len(texts), n_scripts), dtype=np.int64)
    start = 0
    while start < len(texts):
        end, size = start, 0
        while end < len(texts) and (size < chunk_chars or end == start):
            size += len(texts[end] or "")
            end += 1
        part = [t or "" for t in texts[start:end]]
        cps = np.frombuffer("".join(part).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        if len(cps):
            lens = np.fromiter((len(t) for t in part), dtype=np.int64, count=len(part))
            doc = np.repeat(np.arange(len(part), dtype=np.int64), lens)
            sid = table[np.minimum(cps, 0x10FFFF)]
            keep = sid > 0
            counts = np.bincount(doc[keep] * n_scripts + sid[keep], minlength=len(part) * n_scripts)
            out[start:end] = counts.reshape(len(part), n_scripts)
        start = end
    weights = np.ones(n_scripts, dtype=np.int64)
    for name in _CJK:
        weights[SCRIPTS.index(name)] = CJK_WEIGHT
    return out * weights


def _script_of(code: str) -> set[str]:
    scripts = {s for s, langs in SCRIPT_LANGUAGES.items() if code in langs}
    scripts |= {s for s, c in SCRIPT_LANGUAGE.items() if c == code}
    scripts |= set(_ALSO_WRITTEN_IN.get(code, ()))
    return scripts


class LinguaBackend:
    """lingua-language-detector (n-gram models in the wheel; deterministic; strong on short text)."""

    name = "lingua"

    def __init__(self, low_accuracy: bool = False, relatives: bool = True) -> None:
        try:
            import lingua
        except ImportError as e:  # depends on the install
            from curation.errors import MissingExtraError

            raise MissingExtraError("filters", "language detection (lingua-language-detector)") from e
        self._lingua = lingua
        self.low_accuracy = low_accuracy
        self.relatives = relatives
        self._detectors: dict[tuple[str, ...], object] = {}
        self._lock = threading.Lock()
        self.known = {lang.iso_code_639_1.name.lower(): lang for lang in lingua.Language.all()}

    def _detector(self, codes: tuple[str, ...]):  # noqa: ANN202
        with self._lock:
            det = self._detectors.get(codes)
            if det is None:
                builder = self._lingua.LanguageDetectorBuilder.from_languages(*(self.known[c] for c in codes))
                if self.low_accuracy:
                    builder = builder.with_low_accuracy_mode()
                det = self._detectors[codes] = builder.build()
        return det

    def detect(self, texts: list[str], candidates: tuple[str, ...]) -> list[tuple[str, float]]:
        codes = tuple(sorted(c for c in candidates if c in self.known))
        if len(codes) == 0:
            return [(UNDETERMINED, 0.0)] * len(texts)
        if len(codes) == 1:
            return [(codes[0], 1.0)] * len(texts)
        values = self._detector(codes).compute_language_confidence_values_in_parallel(texts)
        out = []
        for k, row in enumerate(values):
            if not row or row[0].value <= 0:  # no letters the model knows
                out.append((UNDETERMINED, 0.0))
                continue
            best, conf = row[0].language.iso_code_639_1.name.lower(), float(row[0].value)
            if self.relatives and len(texts[k]) < SHORT_TEXT:
                # a short text says little: the model's confidences weighed by how common each language is
                weighted = {cv.language.iso_code_639_1.name.lower(): cv.value * (1.0 if cv.language.iso_code_639_1.name.lower()
                            in COMMON_PRIOR else RARE_PRIOR) for cv in row if cv.value > 0}
                total = sum(weighted.values())
                best = max(weighted, key=weighted.get)
                conf = weighted[best] / total if total else 0.0
            group = _RELATIVES_OF.get(best) if self.relatives else None
            if group:
                weighted = {}
                for cv in row:
                    code = cv.language.iso_code_639_1.name.lower()
                    if code in group and cv.value > 0:
                        weighted[code] = (cv.value * group[code], cv.value)
                mass = sum(v for _, v in weighted.values())
                total = sum(w for w, _ in weighted.values())
                best = max(weighted, key=lambda c: weighted[c][0])
                conf = weighted[best][0] / total * mass
            out.append((best, conf))
        return out


class LangdetectBackend:
    """langdetect (Google's language-detection port), seeded so that it is deterministic."""

    name = "langdetect"

    def __init__(self, seed: int = 0) -> None:
        try:
            from langdetect import DetectorFactory
            from langdetect.detector_factory import init_factory
        except ImportError as e:  # pragma: no cover - depends on the install
            raise ImportError("the langdetect backend needs langdetect: pip install langdetect") from e
        DetectorFactory.seed = seed
        init_factory()
        from langdetect import detector_factory

        self._factory = detector_factory._factory
        self.seed = seed

    def detect(self, texts: list[str], candidates: tuple[str, ...]) -> list[tuple[str, float]]:
        from langdetect.lang_detect_exception import LangDetectException

        allowed = set(candidates)
        out = []
        for text in texts:
            det = self._factory.create()
            det.set_seed = self.seed  # harmless attribute; DetectorFactory.seed is what seeds
            det.append(text)
            try:
                probs = det.get_probabilities()
            except LangDetectException:
                out.append((UNDETERMINED, 0.0))
                continue
            best = None
            total = 0.0
            for p in probs:
                code = normalise_code(p.lang)
                if code in allowed:
                    total += p.prob
                    if best is None:
                        best = (code, p.prob)
            out.append((best[0], best[1] / total) if best and total > 0 else (UNDETERMINED, 0.0))
        return out


def normalise_code(code: str) -> str:
    """Lower case; 'zh-cn' / 'zh-tw' -> 'zh'; 'no' -> 'nb' (the models know Bokmål and Nynorsk)."""
    code = code.lower().replace("_", "-")
    code = _ALIASES.get(code, code)
    code = code.split("-")[0] if "-" in code else code
    return _ALIASES.get(code, code)


def known_languages() -> set[str]:
    """Every code :func:`detect` can answer with."""
    known = set(SCRIPT_LANGUAGE.values()) | {c for langs in SCRIPT_LANGUAGES.values() for c in langs}
    return known


BACKENDS = {"lingua": LinguaBackend, "langdetect": LangdetectBackend}
DEFAULT_BACKEND = "lingua"
_backends: dict[str, Backend] = {}


def get_backend(name: str | Backend = DEFAULT_BACKEND) -> Backend:
    """A backend by name (built once per process) or the given instance."""
    if not isinstance(name, str):
        return name
    if name not in BACKENDS:
        raise ValueError(f"unknown language backend {name!r}; known: {', '.join(sorted(BACKENDS))}")
    if name not in _backends:
        _backends[name] = BACKENDS[name]()
    return _backends[name]


# English function words: a Latin-script text where they are at least ENGLISH_SHARE of the words (and there
# are ENGLISH_MIN_WORDS words) is English without asking the model. Other Latin-script languages share few
# of them ("in", "is", "a"), so the share they reach is far lower; the statistical model decides those.
ENGLISH_WORDS = frozenset(
    "the of and to a in is that for it with as on be this are by you or from at an was not can your which have will "
    "if we i they their has but more one all also there these its use when what how do would should been other "
    "some into than then them so about like each may such only most any our he she his her were more".split())
ENGLISH_SHARE = 0.25
ENGLISH_MIN_WORDS = 8
_WORD = re.compile(r"[a-zA-Z]+(?:'[a-z]+)?")


def english_share(text: str) -> tuple[int, float]:
    """(words, share of English function words) of a text's first 2,000 characters."""
    words = _WORD.findall(text[:2000])
    if not words:
        return 0, 0.0
    return len(words), sum(w.lower() in ENGLISH_WORDS for w in words) / len(words)


def detect(texts: Sequence[str | None], languages: Sequence[str] | None = None, *,
           backend: str | Backend = DEFAULT_BACKEND, max_chars: int = 400) -> list[LanguageResult]:
    """The language of each text.

    ``languages``: the candidate set (ISO codes), e.g. the languages a dataset is known to contain.
    ``max_chars``: how much of a long text the statistical model reads (the script pass reads all).
    Identical texts (a system prompt shared by a dataset) are detected once.
    """
    unique: dict[str, int] = {}
    index = [unique.setdefault(t or "", len(unique)) for t in texts]
    if len(unique) < len(texts):
        found = _detect(list(unique), languages, backend=backend, max_chars=max_chars)
        return [found[i] for i in index]
    return _detect(texts, languages, backend=backend, max_chars=max_chars)


def _detect(texts: Sequence[str | None], languages: Sequence[str] | None, *, backend: str | Backend,
            max_chars: int) -> list[LanguageResult]:
    cands = tuple(sorted({normalise_code(c) for c in languages})) if languages else None
    # NFC: decomposed accents (Vietnamese is often stored so) would otherwise be foreign n-grams to the model
    stripped = [unicodedata.normalize("NFC", strip_non_language(t)) if t else "" for t in texts]
    counts = script_counts(stripped)
    totals = counts.sum(axis=1)
    results: list[LanguageResult | None] = [None] * len(texts)
    pending: dict[tuple[str, ...], list[int]] = {}
    dominant_of: list[str] = [""] * len(texts)
    shares_of: list[dict[str, float]] = [{}] * len(texts)
    han, kana = SCRIPTS.index("han"), (SCRIPTS.index("hiragana"), SCRIPTS.index("katakana"))
    for i in range(len(texts)):
        total = int(totals[i])
        if total == 0:
            results[i] = LanguageResult(UNDETERMINED, 0.0)
            continue
        row = counts[i]
        nz = np.flatnonzero(row)
        shares = {SCRIPTS[j]: round(float(row[j]) / total, 4) for j in nz}
        dom = SCRIPTS[int(nz[np.argmax(row[nz])])]
        kana_n = int(row[kana[0]] + row[kana[1]])
        if dom in ("han", "hiragana", "katakana") and kana_n and kana_n >= 0.1 * (kana_n + int(row[han])):
            dom_lang = "ja"
        else:
            dom_lang = SCRIPT_LANGUAGE.get(dom)
        dominant_of[i], shares_of[i] = dom, shares
        share = shares[dom] if dom not in ("han", "hiragana", "katakana") else (kana_n + int(row[han])) / total
        if dom_lang is not None:
            lang = dom_lang
            if cands is not None and lang not in cands:
                # a candidate may write this script too (Japanese in kanji only, Korean hanja)
                alt = [c for c in cands if dom in _ALSO_WRITTEN_IN.get(c, ())]
                if alt:
                    lang = alt[0]
            results[i] = LanguageResult(lang, round(min(1.0, share), 4), dom, shares)
            continue
        pool = SCRIPT_LANGUAGES.get(dom, ())
        if cands is not None:
            inside = tuple(c for c in cands if c in pool or dom in _ALSO_WRITTEN_IN.get(c, ()))
            pool = inside or pool
        if dom == "latin" and "en" in pool:
            n_words, en_share = english_share(stripped[i])
            if n_words >= ENGLISH_MIN_WORDS and en_share >= ENGLISH_SHARE:
                results[i] = LanguageResult("en", round(0.95 * share, 4), dom, shares)
                continue
        pending.setdefault(pool, []).append(i)
    if pending:
        model = get_backend(backend)
        for pool, idx in pending.items():
            answers = model.detect([stripped[i][:max_chars] for i in idx], pool)
            for i, (lang, conf) in zip(idx, answers):
                dom = dominant_of[i]
                share = shares_of[i].get(dom, 0.0)
                results[i] = LanguageResult(lang, round(conf * share, 4), dom, shares_of[i])
    return results  # type: ignore[return-value]
