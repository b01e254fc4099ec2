"""Language step: the language of every text of a sample, kept languages, answer/instruction mismatches.

Signals (text = ISO code, value = confidence): ``lang`` (the sample's language: its answer's, else its
instruction's), ``lang.instruction``, ``lang.input``, ``lang.output``, ``lang.reasoning``,
``lang.system``, and ``lang.turn.N`` for each turn of a dialogue (N from 0). Script shares of the whole
sample: ``script.<name>`` (value in 0..1, CJK characters weighted, see :mod:`curation.language`).
For dialogues the user turns together count as the instruction and the assistant turns as the output.

Decisions: ``drop`` when the instruction or the answer is confidently in a language that is not kept;
``flag`` when that is not confident, when the answer's language differs from the instruction's (not for
translation tasks), when the reasoning's language differs from the answer's, and when a text mixes
scripts above a threshold.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator

from curation.duck import query_arrow, scratch, sql_literal
from curation.language import (
    _RELATIVES_OF,
    BACKENDS,
    CASED_SCRIPTS,
    SCRIPTS,
    UNDETERMINED,
    Detected,
    detect_arrays,
    get_backend,
    known_languages,
    normalise_code,
    strip_non_language_array,
)
from curation.pipeline.base import DECISION_SCHEMA, SIGNAL_SCHEMA, RowStep, StepOutput

FIELDS = ("instruction", "input", "output", "reasoning", "system")

# Languages common in instruction data (the larger shares of web text). Others need more evidence
# (``rare_min_confidence``): general knowledge, not fitted on an evaluation set.
COMMON_LANGUAGES = frozenset("en zh es fr de ru pt ja ko it nl pl tr vi ar fa id uk cs sv hu ro el he th hi da fi no nb "
                             "bg sk".split())
# Language names in instructions ("answer in German", "用英文回答"): a language the instruction names is
# asked for, so an answer in it is neither dropped nor flagged as a mismatch.
LANGUAGE_NAMES: dict[str, tuple[str, ...]] = {
    "en": ("english", "英文", "英语"), "zh": ("chinese", "mandarin", "中文", "汉语", "普通话", "简体", "繁体"),
    "ja": ("japanese", "日文", "日语", "romaji"), "ko": ("korean", "韩文", "韩语", "朝鲜语"),
    "de": ("german", "deutsch", "德语", "德文"), "fr": ("french", "français", "法语", "法文"),
    "es": ("spanish", "español", "西班牙语"), "pt": ("portuguese", "português", "葡萄牙语"),
    "it": ("italian", "italiano", "意大利语"), "ru": ("russian", "русск", "俄语", "俄文"),
    "nl": ("dutch", "nederlands", "荷兰语"), "af": ("afrikaans",), "ar": ("arabic", "阿拉伯语"),
    "hi": ("hindi", "印地语"), "vi": ("vietnamese", "tiếng việt", "越南语"), "th": ("thai", "泰语"),
    "id": ("indonesian", "bahasa", "印尼语"), "ms": ("malay",), "tr": ("turkish", "土耳其语"),
    "pl": ("polish", "波兰语"), "sv": ("swedish", "瑞典语"), "uk": ("ukrainian", "乌克兰语"),
    "el": ("greek", "希腊语"), "he": ("hebrew", "希伯来语"), "fa": ("persian", "farsi", "波斯语"),
    "la": ("latin", "拉丁语"), "tl": ("tagalog", "filipino"), "sw": ("swahili",), "cs": ("czech",),
    "da": ("danish",), "fi": ("finnish",), "nb": ("norwegian",), "hu": ("hungarian",), "ro": ("romanian",),
}
_NAME_PATTERN = re.compile("|".join(sorted({re.escape(n) for ns in LANGUAGE_NAMES.values() for n in ns}, key=len,
                                           reverse=True)))  # matched on lower-cased text (re.I is slow here)
_CODE_OF_NAME = {n: c for c, ns in LANGUAGE_NAMES.items() for n in ns}


class LanguageParams(BaseModel):
    """Language step parameters."""

    model_config = ConfigDict(extra="forbid")

    keep: list[str] | None = Field(default=None, description="Languages kept (ISO codes); others are dropped. None keeps all.")
    expected: list[str] | None = Field(
        default=None,
        description="Candidate set: the languages the dataset may contain, kept or not (None: all the model knows).",
    )
    backend: str = Field(default="lingua", description="Statistical model for shared scripts: lingua or langdetect.")
    drop_min_confidence: float = Field(default=0.3, ge=0, le=1,
                                       description="Below this confidence a not-kept language is flagged, not dropped.")
    flag_min_confidence: float = Field(default=0.15, ge=0, le=1,
                                       description="Below this confidence a not-kept language is not even flagged.")
    min_letters: int = Field(default=12, ge=0, description="Texts with fewer letters (CJK counted 3) are not judged: too short to tell.")
    mismatch_min_confidence: float = Field(default=0.3, ge=0, le=1,
                                           description="Both languages at least this confident to flag a mismatch.")
    mismatch_same_script_confidence: float = Field(
        default=0.6, ge=0, le=1,
        description="Within one script (English vs Latin, ...) a mismatch needs this confidence on both sides.")
    flag_mismatch: bool = Field(default=True, description="Flag answers in another language than their instruction.")
    flag_reasoning_mismatch: bool = Field(default=True, description="Flag reasoning in another language than the answer.")
    max_mixed: float = Field(default=0.5, ge=0, le=1,
                             description="Flag a text whose letters outside its main script exceed this share.")
    mixed_min_letters: int = Field(default=20, ge=0, description="Texts with fewer letters are not checked for mixing.")
    translation_pattern: str = Field(
        default=r"(?i)\btranslat|翻译|译成|译为|翻成|译文|trad[uú]c|übersetz|перевед",
        description="Instructions matching this regex are translation tasks: no mismatch flag, answer language not checked.",
    )
    mixed_instruction_share: float = Field(
        default=0.2, ge=0, le=1,
        description="No mismatch flag when the instruction has at least this share of its letters in the answer's script.")
    min_words: int = Field(
        default=5, ge=0,
        description="Texts in a cased script (Latin, Cyrillic, Greek) with fewer lower-case words than this are not "
                    "judged: lists of names, titles, numbers and labels say little about a language.")
    rare_min_confidence: float = Field(
        default=0.9, ge=0, le=1,
        description="A language outside COMMON_LANGUAGES (Latin, Tagalog, Tsonga, ...: rare in instruction data, and "
                    "where the model puts lists of names and short English) needs this confidence to be dropped or "
                    "flagged.")

    @field_validator("keep", "expected")
    @classmethod
    def _codes(cls, v: list[str] | None) -> list[str] | None:
        if not v:
            return v
        codes = sorted({normalise_code(c) for c in v})
        unknown = [c for c in codes if c not in known_languages()]
        if unknown:
            raise ValueError(f"unknown language codes {unknown}: the detector knows {', '.join(sorted(known_languages()))}")
        return codes

    @field_validator("backend")
    @classmethod
    def _backend(cls, v: str) -> str:
        if v not in BACKENDS:
            raise ValueError(f"unknown backend {v!r}; known: {', '.join(sorted(BACKENDS))}")
        return v

    @field_validator("translation_pattern")
    @classmethod
    def _regex(cls, v: str) -> str:
        re.compile(v)
        return v


def _join_turns(msgs: pa.ListArray, role: str) -> list[str | None]:
    """Per sample, the contents of the turns of one role joined by blank lines (None without such turns)."""
    out: list[list[str]] = [[] for _ in range(len(msgs))]
    flat = msgs.flatten()
    parents = pc.list_parent_indices(msgs).to_numpy(zero_copy_only=False)
    roles = flat.field("role").to_pylist()
    contents = flat.field("content").to_pylist()
    for p, r, c in zip(parents, roles, contents):
        if r == role and c:
            out[p].append(c)
    return ["\n\n".join(x) if x else None for x in out]


class LanguageStep(RowStep):
    """Detect languages per field and per turn; keep configured languages; flag mismatches and mixing."""

    type_name = "language"
    Params = LanguageParams

    def __init__(self, name: str | None = None, params: dict | None = None) -> None:
        super().__init__(name, params)
        try:
            get_backend(self.params.backend)
        except ImportError as e:
            raise ValueError(f"step {self.name!r}: {e}") from e

    def process(self, batch: pa.Table) -> StepOutput:
        """Vectorised over the batch: one detection pass over every field and turn, then decisions as masks."""
        p = self.params
        n = batch.num_rows
        ids = np.asarray(batch.column("sample_id").to_pylist(), dtype=object)
        msgs = batch.column("messages").combine_chunks()
        texts: dict[str, list[str | None]] = {f: batch.column(f).to_pylist() for f in FIELDS}
        is_dialogue = pc.is_valid(msgs).to_numpy(zero_copy_only=False)
        if is_dialogue.any():
            users, assistants = _join_turns(msgs, "user"), _join_turns(msgs, "assistant")
            for i in np.flatnonzero(is_dialogue):
                texts["instruction"][i] = users[i]
                texts["output"][i] = assistants[i]
        flat = msgs.flatten()
        turn_parent = pc.list_parent_indices(msgs).to_numpy(zero_copy_only=False).astype(np.int64)
        turn_index = (np.arange(len(flat)) - np.asarray(msgs.offsets)[turn_parent]) if len(flat) else np.zeros(0, int)
        turn_text = flat.field("content").to_pylist()

        # one detection pass for everything: fields, then turns; a dialogue's instruction and answer (its
        # user and assistant turns) are read from its turns' results, not detected a second time
        dialogue = np.flatnonzero(is_dialogue)
        pool: list[str | None] = []
        for f in FIELDS:
            column = list(texts[f])
            if f in ("instruction", "output"):
                for i in dialogue:
                    column[i] = None
            pool.extend(column)
        pool.extend(turn_text)
        found = detect_arrays(pool, p.expected, backend=p.backend, judge_min_letters=p.min_letters,
                              judge_min_words=p.min_words)
        res = {f: found.take(slice(k * n, (k + 1) * n)) for k, f in enumerate(FIELDS)}
        present = {f: np.array([bool(t) for t in texts[f]], dtype=bool) for f in FIELDS}
        has_turn = np.array([bool(t) for t in turn_text], dtype=bool)
        turns = found.take(slice(len(FIELDS) * n, len(pool)))
        if len(dialogue):
            roles = np.asarray(flat.field("role").to_pylist(), dtype=object)
            _from_turns(res["instruction"], turns, turn_parent, np.flatnonzero(has_turn & (roles == "user")))
            _from_turns(res["output"], turns, turn_parent, np.flatnonzero(has_turn & (roles == "assistant")))

        sig: list[pa.Table] = []

        def signals(rows: np.ndarray, names: np.ndarray | str, values: np.ndarray | None,
                    text: np.ndarray | None) -> None:
            k = len(rows)
            if not k:
                return
            names = np.full(k, names, dtype=object) if isinstance(names, str) else names
            sig.append(pa.table([pa.array(ids[rows], pa.string()), pa.array(names, pa.string()),
                                 pa.array(values, pa.float64()) if values is not None else pa.nulls(k, pa.float64()),
                                 pa.array(text, pa.string()) if text is not None else pa.nulls(k, pa.string())],
                                schema=SIGNAL_SCHEMA))

        for f in FIELDS:
            rows = np.flatnonzero(present[f])
            signals(rows, f"lang.{f}", res[f].confidence[rows], res[f].lang[rows])
        tr = np.flatnonzero(has_turn)
        signals(turn_parent[tr], np.array([f"lang.turn.{k}" for k in turn_index[tr]], dtype=object),
                turns.confidence[tr], turns.lang[tr])

        # judged: enough letters of a known language, and prose (cased scripts need lower-case words)
        judged = {f: present[f] & (res[f].letters >= p.min_letters) & (res[f].lang != UNDETERMINED)
                  & (~np.isin(res[f].script, CASED_SCRIPTS) | (res[f].lower_words >= p.min_words)) for f in FIELDS}
        out_r, ins_r, rs_r = res["output"], res["instruction"], res["reasoning"]
        main = np.where(judged["output"], out_r.lang, np.where(judged["instruction"], ins_r.lang, "und"))
        main_conf = np.where(judged["output"], out_r.confidence, np.where(judged["instruction"], ins_r.confidence, 0.0))
        signals(np.arange(n), "lang", main_conf, main)
        # script shares of the whole sample (what the models read: code and URLs left out)
        counts = sum(res[f].counts for f in FIELDS)
        totals = counts.sum(axis=1)
        rows, cols = np.nonzero(counts)
        signals(rows, np.array([f"script.{SCRIPTS[j]}" for j in cols], dtype=object),
                np.round(counts[rows, cols] / totals[rows], 4), None)

        asked = _asked(texts)
        # read without its code: "translatedPath" in a program is no translation task
        is_translation = present["instruction"] & _matches(
            strip_non_language_array(pa.array(texts["instruction"], pa.string())), p.translation_pattern)
        common = {f: np.isin(res[f].lang, tuple(COMMON_LANGUAGES)) | (res[f].confidence >= p.rare_min_confidence)
                  for f in ("instruction", "output")}

        decisions: list[tuple[int, int, str, str, float]] = []  # (row, order, verdict, reason, score)
        counters: Counter[str] = Counter()
        dropped = np.zeros(n, dtype=bool)
        if p.keep:
            keep = tuple(p.keep)
            # judged by the sample's main text, the answer (its instruction when it has none): a short
            # instruction is weak evidence, and a disagreement between the two is the mismatch flag's job
            by_ins = is_translation | ~judged["output"]
            lang = np.where(by_ins, ins_r.lang, out_r.lang)
            conf = np.where(by_ins, ins_r.confidence, out_r.confidence)
            field = np.where(by_ins, "instruction", "output")
            bad = (np.where(by_ins, judged["instruction"] & common["instruction"], judged["output"] & common["output"])
                   & ~np.isin(lang, keep) & (conf >= p.flag_min_confidence))
            for i in np.flatnonzero(bad):
                if lang[i] in asked.get(i, ()):
                    continue
                where = f"{field[i]} {lang[i]} ({conf[i]:.2f})"
                if conf[i] >= p.drop_min_confidence:
                    decisions.append((i, 0, "drop", f"language not kept: {where}; kept: {', '.join(sorted(keep))}",
                                      float(conf[i])))
                    counters["dropped_language"] += 1
                    dropped[i] = True
                else:
                    decisions.append((i, 0, "flag", f"language possibly not kept: {where}", float(conf[i])))
                    counters["flagged_uncertain"] += 1
        if p.flag_mismatch:
            need = np.where(ins_r.script == out_r.script, p.mismatch_same_script_confidence, p.mismatch_min_confidence)
            cand = (~dropped & ~is_translation & judged["instruction"] & judged["output"] & (ins_r.lang != out_r.lang)
                    & (np.minimum(ins_r.confidence, out_r.confidence) >= need) & common["instruction"] & common["output"]
                    # an instruction that is itself partly in the answer's script (Chinese words around English
                    # code or an error message) is answered in either language
                    & (ins_r.share_of(out_r.script) < p.mixed_instruction_share))
            for i in np.flatnonzero(cand):
                if out_r.lang[i] in asked.get(i, ()):
                    continue
                decisions.append((i, 1, "flag", f"answer language differs from instruction: instruction {ins_r.lang[i]}, "
                                  f"answer {out_r.lang[i]}", float(min(ins_r.confidence[i], out_r.confidence[i]))))
                counters["flagged_mismatch"] += 1
        if p.flag_reasoning_mismatch:
            need = np.where(rs_r.script == out_r.script, p.mismatch_same_script_confidence, p.mismatch_min_confidence)
            cand = (~dropped & judged["reasoning"] & judged["output"] & (rs_r.lang != out_r.lang)
                    & (np.minimum(rs_r.confidence, out_r.confidence) >= need))
            for i in np.flatnonzero(cand):
                decisions.append((i, 2, "flag", f"reasoning language differs from answer: reasoning {rs_r.lang[i]}, "
                                  f"answer {out_r.lang[i]}", float(min(rs_r.confidence[i], out_r.confidence[i]))))
                counters["flagged_reasoning_mismatch"] += 1
        mixed = {f: present[f] & (res[f].letters >= p.mixed_min_letters) & (res[f].mixed > p.max_mixed)
                 for f in ("instruction", "output")}
        for i in np.flatnonzero(~dropped & (mixed["instruction"] | mixed["output"])):
            parts = [(f, res[f]) for f in ("instruction", "output") if mixed[f][i]]
            where = ", ".join(f"{f} {r.mixed[i]:.0%} outside {r.script[i]}" for f, r in parts)
            decisions.append((i, 3, "flag", f"mixed-language text: {where}", float(max(r.mixed[i] for _, r in parts))))
            counters["flagged_mixed"] += 1

        decisions.sort(key=lambda d: (d[0], d[1]))
        out_decisions = pa.table([pa.array([ids[d[0]] for d in decisions], pa.string()),
                                  pa.array([d[2] for d in decisions], pa.string()),
                                  pa.array([d[3] for d in decisions], pa.string()), pa.nulls(len(decisions), pa.string()),
                                  pa.array([d[4] for d in decisions], pa.float64())], schema=DECISION_SCHEMA)
        out_signals = pa.concat_tables(sig) if sig else SIGNAL_SCHEMA.empty_table()
        counters.update({f"lang_{k}": int(v) for k, v in Counter(main.tolist()).most_common(20)})
        return StepOutput(decisions=out_decisions, signals=out_signals, counters=counters)


def _from_turns(target: Detected, turns: Detected, parent: np.ndarray, rows: np.ndarray) -> None:
    """Fill ``target`` (one entry per sample) from the turns ``rows`` of each sample: letters per script and
    lower-case words summed; the language with the most letters, its confidence the letter-weighted mean of
    its turns' times its share of the letters; the script of its longest turn."""
    samples = parent[rows]
    counts = np.zeros_like(target.counts)
    np.add.at(counts, samples, turns.counts[rows])
    words = np.zeros_like(target.lower_words)
    np.add.at(words, samples, turns.lower_words[rows])
    letters = turns.letters[rows]
    votes: dict[tuple[int, str], list[float]] = {}  # (sample, lang) -> [letters, letters x confidence, longest, turn]
    for s, t, n_letters in zip(samples.tolist(), rows.tolist(), letters.tolist()):
        v = votes.setdefault((s, turns.lang[t]), [0.0, 0.0, -1.0, t])
        v[0] += n_letters
        v[1] += n_letters * turns.confidence[t]
        if n_letters > v[2]:
            v[2], v[3] = n_letters, t
    best: dict[int, tuple[str, list[float]]] = {}
    for (s, lang), v in votes.items():
        if s not in best or v[0] > best[s][1][0]:
            best[s] = (lang, v)
    for s in np.unique(samples).tolist():
        target.counts[s] = counts[s]
        target.lower_words[s] = words[s]
        lang, v = best[s]
        total = counts[s].sum()
        target.lang[s] = lang
        target.confidence[s] = round(v[1] / total, 4) if total else 0.0
        target.script[s] = turns.script[v[3]]


def _asked(texts: dict[str, list[str | None]]) -> dict[int, set[str]]:
    """Row -> the languages its instruction, input or system prompt names ("in Spanish", "用日语"; with their
    relatives): asked for, so an answer in them is expected. Rows naming none are left out. One vectorised
    match finds the rows that name any; their names are then read in one pass (:func:`_names_in`)."""
    asked: dict[int, set[str]] = {}
    for f in ("instruction", "input", "system"):
        # the request is at the start or the end: of a long text, its first and last 1,000 characters
        view = [t[:1000] + t[-1000:] if t and len(t) > 2000 else t for t in texts[f]]
        rows = np.flatnonzero(_matches(pc.utf8_lower(pa.array(view, pa.string())), _NAME_PATTERN.pattern))
        for i, names in zip(rows.tolist(), _names_in([view[i].lower() for i in rows])):
            if names:
                asked.setdefault(i, set()).update(_CODE_OF_NAME[m] for m in names)
    for codes in asked.values():
        codes |= {c for a in list(codes) for c in _RELATIVES_OF.get(a, ())}  # Afrikaans asked, read as Dutch
    return asked


def _names_in(lowered: list[str]) -> list[list[str]]:
    """Per lower-cased text, the language names in it, as ``_NAME_PATTERN.finditer`` finds them (RE2 is
    leftmost-first like Python's re), in one DuckDB pass: Python's re took 0.13 ms a text."""
    if not lowered:
        return []
    con = scratch()
    try:
        con.register("t", pa.table({"i": np.arange(len(lowered)), "v": pa.array(lowered, pa.string())}))
        got = query_arrow(con, f"SELECT regexp_extract_all(v, {sql_literal(_NAME_PATTERN.pattern)}) AS m FROM t ORDER BY i")
    finally:
        con.close()
    return got.column("m").to_pylist()


def _matches(texts: pa.Array, pattern: str) -> np.ndarray:
    """Per text, whether ``pattern`` matches (Arrow's RE2 when it takes the pattern, else Python's re)."""
    try:
        hits = pc.match_substring_regex(texts, pattern)
    except pa.ArrowInvalid:  # a Python-only construct (lookbehind, backreference): per text
        rx = re.compile(pattern)
        return np.array([bool(t and rx.search(t)) for t in texts.to_pylist()], dtype=bool)
    return np.nan_to_num(hits.to_numpy(zero_copy_only=False).astype(float), nan=0.0) > 0
