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

from curation.language import (
    _RELATIVES_OF,
    BACKENDS,
    SCRIPTS,
    detect,
    get_backend,
    known_languages,
    normalise_code,
    script_counts,
    strip_non_language,
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
_LOWER_WORD = re.compile(r"(?<![\w'’])[a-zà-ÿа-яёα-ω][a-zà-ÿа-яёα-ω'’]+")
_CASED_SCRIPTS = ("latin", "cyrillic", "greek")


def named_languages(text: str | None) -> set[str]:
    """The languages an instruction names ("in Spanish", "用日语"): asked for, so an answer in them is expected."""
    if not text:
        return set()
    text = text[:1000] + text[-1000:] if len(text) > 2000 else text  # the request is at the start or the end
    return {_CODE_OF_NAME[m.group()] for m in _NAME_PATTERN.finditer(text.lower())}


def lower_words(text: str | None) -> int:
    """Lower-case words of two letters or more: what prose has and lists of names, titles and labels lack."""
    return len(_LOWER_WORD.findall(text)) if text else 0


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
        p = self.params
        n = batch.num_rows
        ids = batch.column("sample_id").to_pylist()
        msgs = batch.column("messages").combine_chunks()
        texts: dict[str, list[str | None]] = {f: batch.column(f).to_pylist() for f in FIELDS}
        is_dialogue = pc.is_valid(msgs).to_numpy(zero_copy_only=False)
        if is_dialogue.any():
            users, assistants = _join_turns(msgs, "user"), _join_turns(msgs, "assistant")
            for i in np.flatnonzero(is_dialogue):
                texts["instruction"][i] = users[i]
                texts["output"][i] = assistants[i]
        flat = msgs.flatten()
        turn_parent = pc.list_parent_indices(msgs).to_numpy(zero_copy_only=False)
        turn_index = (np.arange(len(flat)) - np.asarray(msgs.offsets)[turn_parent]) if len(flat) else np.zeros(0, int)
        turn_text = flat.field("content").to_pylist()

        # one detect call for everything: fields, then turns
        pool: list[str | None] = []
        for f in FIELDS:
            pool.extend(texts[f])
        pool.extend(turn_text)
        results = detect(pool, p.expected, backend=p.backend)
        res = {f: results[k * n:(k + 1) * n] for k, f in enumerate(FIELDS)}
        turn_res = results[len(FIELDS) * n:]
        # letters of what the model reads (code and URLs left out), so that "code + one word" is not judged
        letters = script_counts([strip_non_language(t) if t else "" for t in pool]).sum(axis=1)
        let = {f: letters[k * n:(k + 1) * n] for k, f in enumerate(FIELDS)}

        sig_ids: list[str] = []
        sig_names: list[str] = []
        sig_vals: list[float | None] = []
        sig_texts: list[str | None] = []

        def signal(i: int, name: str, value: float | None, text: str | None) -> None:
            sig_ids.append(ids[i])
            sig_names.append(name)
            sig_vals.append(value)
            sig_texts.append(text)

        for f in FIELDS:
            for i, r in enumerate(res[f]):
                if texts[f][i]:
                    signal(i, f"lang.{f}", r.confidence, r.lang)
        for j, r in enumerate(turn_res):
            if turn_text[j]:
                signal(int(turn_parent[j]), f"lang.turn.{int(turn_index[j])}", r.confidence, r.lang)
        # script shares of the whole sample
        whole = ["\n".join(t for t in (texts[f][i] for f in FIELDS) if t) for i in range(n)]
        counts = script_counts(whole)
        totals = counts.sum(axis=1)

        translation = re.compile(p.translation_pattern)
        d_ids: list[str] = []
        d_verdicts: list[str] = []
        d_reasons: list[str] = []
        d_scores: list[float | None] = []
        counters: Counter[str] = Counter()

        def decide(i: int, verdict: str, reason: str, score: float | None, counter: str) -> None:
            d_ids.append(ids[i])
            d_verdicts.append(verdict)
            d_reasons.append(reason)
            d_scores.append(score)
            counters[counter] += 1

        keep = set(p.keep) if p.keep else None
        stripped = {f: [strip_non_language(t) if t else "" for t in texts[f]] for f in ("instruction", "output", "reasoning")}

        def prose(f: str, i: int) -> bool:
            r = res[f][i]
            return r.script not in _CASED_SCRIPTS or lower_words(stripped[f][i] if f in stripped else texts[f][i]) >= p.min_words

        def evident(r) -> bool:  # noqa: ANN001
            return r.lang in COMMON_LANGUAGES or r.confidence >= p.rare_min_confidence

        for i in range(n):
            out_r, ins_r = res["output"][i], res["instruction"][i]
            judged = {f: bool(texts[f][i]) and let[f][i] >= p.min_letters and res[f][i].lang != "und" and prose(f, i)
                      for f in FIELDS}
            asked = named_languages(texts["instruction"][i]) | named_languages(texts["input"][i]) | named_languages(
                texts["system"][i])
            asked |= {c for a in asked for c in _RELATIVES_OF.get(a, ())}  # Afrikaans asked, read as Dutch
            main = out_r if judged["output"] else ins_r if judged["instruction"] else None
            if main is not None:
                signal(i, "lang", main.confidence, main.lang)
            else:
                signal(i, "lang", 0.0, "und")
            if totals[i]:
                for j in np.flatnonzero(counts[i]):
                    signal(i, f"script.{SCRIPTS[j]}", round(float(counts[i, j]) / float(totals[i]), 4), None)
            # read without its code: "translatedPath" in a program is no translation task
            is_translation = bool(ins_r and stripped["instruction"][i] and translation.search(stripped["instruction"][i]))
            dropped = False
            if keep is not None:
                # judged by the sample's main text, the answer (its instruction when it has none): a short
                # instruction is weak evidence, and a disagreement between the two is the mismatch flag's job
                checked = ("instruction",) if is_translation or not judged["output"] else ("output",)
                bad = [(f, res[f][i]) for f in checked if judged[f] and res[f][i].lang not in keep
                       and res[f][i].lang not in asked and evident(res[f][i])]
                if bad:
                    f, r = max(bad, key=lambda x: x[1].confidence)
                    where = ", ".join(f"{g} {q.lang} ({q.confidence:.2f})" for g, q in bad)
                    if r.confidence >= p.drop_min_confidence:
                        decide(i, "drop", f"language not kept: {where}; kept: {', '.join(sorted(keep))}",
                               r.confidence, "dropped_language")
                        dropped = True
                    elif r.confidence >= p.flag_min_confidence:
                        decide(i, "flag", f"language possibly not kept: {where}", r.confidence, "flagged_uncertain")
            if dropped:
                continue
            need = p.mismatch_same_script_confidence if ins_r.script == out_r.script else p.mismatch_min_confidence
            if (p.flag_mismatch and not is_translation and judged["instruction"] and judged["output"]
                    and ins_r.lang != out_r.lang and min(ins_r.confidence, out_r.confidence) >= need
                    and out_r.lang not in asked and evident(ins_r) and evident(out_r)
                    # an instruction that is itself partly in the answer's script (Chinese words around English
                    # code or an error message) is answered in either language
                    and ins_r.scripts.get(out_r.script, 0.0) < p.mixed_instruction_share):
                decide(i, "flag", f"answer language differs from instruction: instruction {ins_r.lang}, answer {out_r.lang}",
                       min(ins_r.confidence, out_r.confidence), "flagged_mismatch")
            rs_r = res["reasoning"][i]
            need = p.mismatch_same_script_confidence if rs_r.script == out_r.script else p.mismatch_min_confidence
            if (p.flag_reasoning_mismatch and judged["reasoning"] and judged["output"] and rs_r.lang != out_r.lang
                    and min(rs_r.confidence, out_r.confidence) >= need):
                decide(i, "flag", f"reasoning language differs from answer: reasoning {rs_r.lang}, answer {out_r.lang}",
                       min(rs_r.confidence, out_r.confidence), "flagged_reasoning_mismatch")
            mixed = [(f, res[f][i]) for f in ("instruction", "output")
                     if texts[f][i] and let[f][i] >= p.mixed_min_letters and res[f][i].mixed > p.max_mixed]
            if mixed:
                where = ", ".join(f"{f} {r.mixed:.0%} outside {r.script}" for f, r in mixed)
                decide(i, "flag", f"mixed-language text: {where}", max(r.mixed for _, r in mixed), "flagged_mixed")

        decisions = pa.table([pa.array(d_ids, pa.string()), pa.array(d_verdicts, pa.string()),
                              pa.array(d_reasons, pa.string()), pa.nulls(len(d_ids), pa.string()),
                              pa.array(d_scores, pa.float64())], schema=DECISION_SCHEMA)
        signals = pa.table([pa.array(sig_ids, pa.string()), pa.array(sig_names, pa.string()),
                            pa.array(sig_vals, pa.float64()), pa.array(sig_texts, pa.string())], schema=SIGNAL_SCHEMA)
        langs = Counter(t for name, t in zip(sig_names, sig_texts) if name == "lang")
        counters.update({f"lang_{k}": v for k, v in langs.most_common(20)})
        return StepOutput(decisions=decisions, signals=signals, counters=counters)
