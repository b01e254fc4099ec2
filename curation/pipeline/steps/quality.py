"""Quality and noise rules for instruction data, and a per-sample quality score.

Every rule is a DuckDB SQL expression evaluated over the whole record batch at once (one query per
batch, all rules together); only personal-data candidates that need a checksum (Luhn for card numbers,
ISO 7064 for Chinese resident IDs) are checked in Python, and only for the few rows that have one.

Each rule has a verdict (``drop`` or ``flag``), a penalty for the quality score and its thresholds,
all settable in the pipeline TOML::

    [[steps]]
    type = "quality"
    [steps.params.rules.truncated]
    verdict = "drop"
    min_line_chars = 30

Every rule that fires writes one decision with a readable reason ("<rule description>: <details>").
Signal ``quality_score`` = 1 - the sum of the penalties of the rules that fired, clipped to 0..1
(exact and near dedup keep the best-scoring copy; review stratifies by it). For dialogues the user turns
count as the instruction and the assistant turns as the answer.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from curation.duck import query_arrow, scratch
from curation.duck import sql_literal as _q
from curation.pipeline.base import DECISION_SCHEMA, SIGNAL_SCHEMA, RowStep, StepOutput

Verdict = Literal["drop", "flag"]


class Rule(BaseModel):
    """Settings every rule has."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    verdict: Verdict = "flag"
    penalty: float = Field(default=0.15, ge=0, le=1, description="Subtracted from the quality score when it fires.")


class DropRule(Rule):
    verdict: Verdict = "drop"
    penalty: float = 1.0


class LengthRule(Rule):
    min_chars: int = Field(default=2, ge=0, description="Non-empty answers shorter than this (characters) fire.")
    max_chars: int = Field(default=32_000, ge=1, description="Answers longer than this fire.")


class RepeatsRule(Rule):
    min_share: float = Field(default=0.6, ge=0, le=1, description="Instruction length / answer length from which it fires.")
    min_chars: int = Field(default=10, ge=0, description="Shorter instructions are not checked.")


class TruncatedRule(Rule):
    min_line_chars: int = Field(default=20, ge=1, description="The last line must be at least this long to judge its end.")


class ReasoningPresenceRule(Rule):
    expect: Literal["any", "required", "forbidden"] = Field(
        default="any", description="Whether the dataset's answers carry reasoning traces.")


class ReasoningBudgetRule(Rule):
    max_chars: int = Field(default=20_000, ge=1, description="Reasoning longer than this fires.")
    max_ratio: float = Field(default=30.0, gt=0, description="Reasoning / answer length above this fires.")


class LineRepetitionRule(DropRule):
    max_dup_line_share: float = Field(default=0.3, ge=0, le=1, description="Share of lines that repeat an earlier line.")
    max_dup_para_share: float = Field(default=0.3, ge=0, le=1, description="Share of paragraphs that repeat an earlier one.")
    min_lines: int = Field(default=4, ge=2, description="Fewer lines (paragraphs) are not judged.")


class NgramRepetitionRule(DropRule):
    # Gopher (Rae et al. 2021): share of characters in the most frequent 2/3/4-gram
    max_top_2gram: float = 0.20
    max_top_3gram: float = 0.18
    max_top_4gram: float = 0.16
    min_tokens: int = Field(
        default=150, ge=5,
        description="Shorter answers (tokens: words, CJK characters) are not judged for top n-gram shares "
                    "(a short answer repeats its subject; Gopher's thresholds are for documents).")
    max_dup_5gram: float = Field(default=0.3, description="Share of 5-gram occurrences that repeat an earlier one.")
    min_tokens_dup: int = Field(default=30, ge=5, description="Shorter answers are not judged for repeated 5-grams.")


class RatioRule(Rule):
    max_symbol: float = Field(default=0.25, description="Symbols (Unicode category S) / characters.")
    max_digit: float = Field(default=0.5, description="Digits / characters.")
    max_punctuation: float = Field(default=0.3, description="Punctuation / characters.")
    min_chars: int = Field(default=20, ge=1, description="Shorter answers are not judged.")


class UrlRule(Rule):
    min_urls: int = Field(default=3, ge=1, description="At least this many URLs or e-mail addresses ...")
    max_per_token: float = Field(default=0.1, description="... and more than this many per token.")


class PatternRule(Rule):
    extra_patterns: list[str] = Field(default_factory=list, description="More regular expressions (RE2) that fire.")


class BoilerplateRule(PatternRule):
    verdict: Verdict = "drop"
    penalty: float = 1.0


class PiiRule(Rule):
    kinds: list[Literal["email", "phone", "cn_id", "card"]] = ["email", "phone", "cn_id", "card"]


class QualityRules(BaseModel):
    """The rules, by name."""

    model_config = ConfigDict(extra="forbid")

    empty_output: DropRule = DropRule()
    empty_instruction: DropRule = DropRule()
    output_length: LengthRule = LengthRule()
    output_equals_instruction: DropRule = DropRule()
    output_repeats_instruction: RepeatsRule = RepeatsRule()
    truncated: TruncatedRule = TruncatedRule()
    unbalanced: Rule = Rule()
    unclosed_think: DropRule = DropRule()
    reasoning_presence: ReasoningPresenceRule = ReasoningPresenceRule()
    reasoning_budget: ReasoningBudgetRule = ReasoningBudgetRule()
    line_repetition: LineRepetitionRule = LineRepetitionRule()
    ngram_repetition: NgramRepetitionRule = NgramRepetitionRule()
    char_ratios: RatioRule = RatioRule()
    non_printable: Rule = Rule()
    markup: PatternRule = PatternRule()
    url_density: UrlRule = UrlRule()
    boilerplate: BoilerplateRule = BoilerplateRule()
    refusal: PatternRule = PatternRule()
    placeholder: PatternRule = PatternRule()
    mojibake: Rule = Rule()
    personal_data: PiiRule = PiiRule()
    dialogue_roles: Rule = Rule()
    dialogue_empty_turn: Rule = Rule()
    dialogue_last_turn: Rule = Rule()


class QualityParams(BaseModel):
    """Quality step parameters."""

    model_config = ConfigDict(extra="forbid")

    rules: QualityRules = QualityRules()


# --- patterns (RE2 syntax, used by DuckDB) ---------------------------------------------------------------
BOILERPLATE = [
    r"(?i)\bas an? (?:ai|artificial intelligence)(?:(?: language)? (?:model|assistant)\b|,)",
    r"(?i)\bas a (large )?language model\b",
    r"(?i)\bi(?: am|['’]m) (?:just |only )?an? (?:ai|artificial intelligence)(?: language model| assistant| model)?\b",
    r"(?i)\bas of my (?:last )?(?:knowledge )?(?:cutoff|update)\b",
    r"(?i)\bi (?:do not|don['’]t) have (?:personal )?(?:opinions|feelings|emotions|beliefs|preferences)\b",
    r"(?i)\bi (?:was|am|['’]m) (?:trained|developed|created) by openai\b",
    r"作为(?:一个|一名)?(?:人工智能|AI|ai)(?:语言)?(?:模型|助手|程序)",
    r"作为(?:一个)?(?:大型?)?语言模型",
    r"我(?:只是)?(?:一个)?(?:人工智能|AI)(?:语言模型|助手)",
    r"我没有(?:个人)?(?:的)?(?:观点|情感|感情|偏好)",
    r"我没有个人的?意见",
    r"我(?:无法|不能)(?:提供|表达|拥有)(?:个人)?的?(?:意见|观点|看法|情感)",
    r"截至我的知识",
]
REFUSAL = [
    r"(?i)\b(?:i['’]?m |i am )?(?:sorry|i apologi[sz]e),? (?:but )?i (?:cannot|can['’]t|can not|am unable to|won['’]t|will not)\b",
    r"(?i)\bi (?:cannot|can['’]t|can not|won['’]t|will not) (?:help|assist|fulfill|provide|comply|do that|answer)\b",
    r"(?i)\bi(?:['’]m| am) (?:not able|unable) to (?:help|assist|fulfill|provide|comply)\b",
    r"(?:抱歉|对不起|很遗憾)[，,]?(?:但是?)?我(?:无法|不能|没办法)",
    r"我(?:无法|不能)(?:提供|回答|协助|帮助|满足|完成)(?:您|你)?的?(?:请求|要求|问题)?",
]
PLACEHOLDER = [
    r"(?i)\[(?:your|insert|enter|add|name|company|date|placeholder|recipient|sender)\b[^\]\n]{0,40}\](?:[^(]|$)",
    r"(?i)<(?:insert|your|enter)[^>\n]{0,40}>",
    r"\{\{[^}\n]{1,40}\}\}",
    r"(?i)\blorem ipsum\b",
    r"\bTODO\b",
    r"[\[【](?:插入|填写|此处|您的|你的)[^\]】\n]{0,20}[\]】]",
]
MARKUP = [
    r"(?i)</?(?:div|span|p|br|a|table|tr|td|th|li|ul|ol|img|script|style|html|body|head|font|strong|em|b|i|h[1-6])(?:\s[^<>]*)?/?>",
    r"&(?:nbsp|amp|lt|gt|quot|apos|#\d{2,5});",
    r"\[\[\pL[^\]\n]{0,80}\]\]",
]
MOJIBAKE = (r"[ÂÃÅÆÐÑØâ][\x{80}-\x{BF}\x{152}\x{153}\x{160}\x{161}\x{178}\x{17D}\x{17E}\x{192}\x{2C6}\x{2DC}"
            r"\x{2013}\x{2014}\x{2018}-\x{201E}\x{2020}-\x{2022}\x{2026}\x{2030}\x{2039}\x{203A}\x{20AC}\x{2122}]|\x{FFFD}")
EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
PHONE = (r"(?:\+86[- ]?)?\b1[3-9]\d{9}\b|\B\+\d{1,3}[ -]?\(?\d{1,4}\)?[ -]?\d{3,4}[ -]?\d{3,4}\b"
         r"|\(\d{3}\) ?\d{3}-\d{4}\b|\b\d{3}-\d{3}-\d{4}\b|\b0\d{2,3}-\d{7,8}\b")
CN_ID = r"\b\d{17}[\dXx]\b"
CARD = r"\b\d(?:[ -]?\d){12,18}\b"
# Tokens: words; CJK text (no spaces) in pairs of characters, a crude stand-in for words (most Chinese
# words have two characters) that keeps n-gram statistics comparable across languages.
TOKENS = r"[\p{Han}\p{Hiragana}\p{Katakana}]{1,2}|[\p{L}\p{N}_']+"
# a last line that starts like a list item, heading, table row or quote is not judged for truncation
_LISTY = r"^\s*(?:[-*+>|#]|\d+[.)]|[a-zA-Z][.)]\s)"
# an answer ends mid-sentence when its last character is a letter / CJK character or a joining mark
_ENDS_OPEN = r"[\p{L}\p{M},，、:：;；(（\[{\-–—/]$"
_CODE = r"```.*?(?:```|$)|`[^`\n]*`"

_WORDS = 10  # stand-in token count for the URL rule on very short text


def _any(patterns: list[str]) -> str:
    return "|".join(f"(?:{p})" for p in patterns)


def _count(expr: str, needle: str) -> str:
    return f"((length({expr}) - length(replace({expr}, {_q(needle)}, ''))) // {len(needle)})"


def _join_role(role: str) -> str:
    return (f"array_to_string(list_transform(list_filter(messages, lambda m: m.role = {_q(role)}), "
            f"lambda m: coalesce(m.content, '')), chr(10) || chr(10))")


def _luhn(digits: str) -> bool:
    total, alt = 0, False
    for ch in reversed(digits):
        d = ord(ch) - 48
        if alt:
            d *= 2
            if d > 9:
                d -= 9
        total += d
        alt = not alt
    return total % 10 == 0


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def valid_cn_id(s: str) -> bool:
    """A Chinese resident ID number: 17 digits, a plausible birth date, ISO 7064 MOD 11-2 check character."""
    if len(s) != 18 or not s[:17].isdigit():
        return False
    y, m, d = int(s[6:10]), int(s[10:12]), int(s[12:14])
    if not (1900 <= y <= 2100 and 1 <= m <= 12 and 1 <= d <= 31):
        return False
    check = "10X98765432"[sum(int(c) * w for c, w in zip(s[:17], _ID_WEIGHTS)) % 11]
    return s[17].upper() == check


def valid_card(s: str) -> bool:
    """A payment card number: 13-19 digits (spaces and dashes allowed) passing the Luhn check."""
    digits = re.sub(r"[ -]", "", s)
    return 13 <= len(digits) <= 19 and digits.isdigit() and len(set(digits)) > 1 and _luhn(digits)


DESCRIPTIONS = {
    "empty_output": "empty answer",
    "empty_instruction": "empty instruction",
    "output_length": "answer length out of range",
    "output_equals_instruction": "answer equals the instruction",
    "output_repeats_instruction": "answer mostly repeats the instruction",
    "truncated": "truncated answer",
    "unbalanced": "unbalanced code fences or brackets",
    "unclosed_think": "unclosed or stray <think> tag",
    "reasoning_presence": "reasoning trace presence",
    "reasoning_budget": "reasoning over budget",
    "line_repetition": "repeated lines or paragraphs",
    "ngram_repetition": "repetitive n-grams",
    "char_ratios": "unusual character mix",
    "non_printable": "non-printable characters",
    "markup": "HTML or markup leftovers",
    "url_density": "many URLs or e-mail addresses",
    "boilerplate": "assistant boilerplate",
    "refusal": "refusal",
    "placeholder": "placeholder text",
    "mojibake": "mojibake (broken encoding)",
    "personal_data": "personal data",
    "dialogue_roles": "dialogue roles do not alternate",
    "dialogue_empty_turn": "dialogue has an empty turn",
    "dialogue_last_turn": "dialogue does not end with the assistant",
}


def _fmt(x: str, digits: int = 2) -> str:
    return f"printf('%.{digits}f', {x})"


def build_rules(r: QualityRules) -> dict[str, tuple[str, str]]:
    """Rule name -> (condition SQL, detail SQL) over the columns of the metrics query."""
    rules: dict[str, tuple[str, str]] = {}
    ln, rp, ng, ra = r.output_length, r.output_repeats_instruction, r.ngram_repetition, r.char_ratios
    rules["empty_output"] = ("olen = 0", "'nothing after trimming'")
    rules["empty_instruction"] = ("NOT dialogue AND length(wtrim(ins)) = 0 AND length(wtrim(coalesce(input, ''))) = 0",
                                  "'no instruction or input'")
    rules["output_length"] = (
        f"(olen > 0 AND olen < {ln.min_chars}) OR olen > {ln.max_chars}",
        f"olen || ' characters (allowed {ln.min_chars}..{ln.max_chars})'")
    rules["output_equals_instruction"] = ("olen > 0 AND lower(o) = lower(wtrim(ins))", "'same text'")
    rules["output_repeats_instruction"] = (
        f"olen > 0 AND lower(o) <> lower(wtrim(ins)) AND length(wtrim(ins)) >= {rp.min_chars} "
        f"AND length(wtrim(ins)) >= {rp.min_share} * olen AND contains(lower(o), lower(wtrim(ins)))",
        "'the instruction is ' || CAST(round(100 * length(wtrim(ins)) / olen) AS INT) || '% of the answer and appears in it'")
    rules["truncated"] = (
        f"olen > 0 AND NOT fence_open AND length(last_line) >= {r.truncated.min_line_chars} "
        f"AND NOT regexp_matches(last_line, {_q(_LISTY)}) AND regexp_matches(o, {_q(_ENDS_OPEN)})",
        "'ends mid-sentence: …' || right(o, 30)")
    rules["unbalanced"] = (
        "fence_open OR opens_round > closes_round OR opens_square > closes_square OR opens_curly > closes_curly",
        "concat_ws('; ', CASE WHEN fence_open THEN 'a ``` code fence is not closed' END, "
        "CASE WHEN opens_round > closes_round THEN (opens_round - closes_round) || ' unclosed (' END, "
        "CASE WHEN opens_square > closes_square THEN (opens_square - closes_square) || ' unclosed [' END, "
        "CASE WHEN opens_curly > closes_curly THEN (opens_curly - closes_curly) || ' unclosed {' END)")
    think = _q(r"(?i)</?\s*think(?:ing)?\s*>")
    rules["unclosed_think"] = (
        f"regexp_matches(o_nocode, {think}) OR regexp_matches(coalesce(rsn, ''), {think})",
        f"CASE WHEN regexp_matches(o_nocode, '(?i)<\\s*think') AND NOT regexp_matches(o_nocode, '(?i)</\\s*think') "
        f"THEN '<think> is never closed' ELSE 'a think tag is left in the ' || "
        f"CASE WHEN regexp_matches(o_nocode, {think}) THEN 'answer' ELSE 'reasoning' END END")
    expect = r.reasoning_presence.expect
    if expect == "required":
        rules["reasoning_presence"] = ("length(wtrim(coalesce(rsn, ''))) = 0", "'no reasoning, the dataset expects it'")
    elif expect == "forbidden":
        rules["reasoning_presence"] = ("length(wtrim(coalesce(rsn, ''))) > 0", "'reasoning present, the dataset expects none'")
    rb = r.reasoning_budget
    rules["reasoning_budget"] = (
        f"length(coalesce(rsn, '')) > {rb.max_chars} OR (olen > 0 AND length(coalesce(rsn, '')) > {rb.max_ratio} * olen)",
        f"length(rsn) || ' characters of reasoning for ' || olen || ' of answer (budget {rb.max_chars}, ratio {rb.max_ratio:g})'")
    lr = r.line_repetition
    rules["line_repetition"] = (
        f"(n_lines >= {lr.min_lines} AND dup_lines > {lr.max_dup_line_share} * n_lines) "
        f"OR (n_paras >= {lr.min_lines} AND dup_paras > {lr.max_dup_para_share} * n_paras)",
        "dup_lines || ' of ' || n_lines || ' lines and ' || dup_paras || ' of ' || n_paras || ' paragraphs repeat'")
    rules["ngram_repetition"] = (
        f"(n_tok >= {ng.min_tokens} AND (top2 > {ng.max_top_2gram} OR top3 > {ng.max_top_3gram} "
        f"OR top4 > {ng.max_top_4gram})) OR (n_tok >= {ng.min_tokens_dup} AND dup5 > {ng.max_dup_5gram})",
        f"concat_ws(', ', CASE WHEN top2 IS NOT NULL THEN 'top 2/3/4-gram share ' || {_fmt('top2')} || '/' "
        f"|| {_fmt('top3')} || '/' || {_fmt('top4')} END, 'repeated 5-grams ' || {_fmt('dup5')})")
    rules["char_ratios"] = (
        f"olen >= {ra.min_chars} AND (n_sym > {ra.max_symbol} * olen OR n_dig > {ra.max_digit} * olen "
        f"OR n_pun > {ra.max_punctuation} * olen)",
        f"'symbols ' || {_fmt('n_sym / olen')} || ', digits ' || {_fmt('n_dig / olen')} || ', punctuation ' || {_fmt('n_pun / olen')}")
    rules["non_printable"] = (
        r"regexp_matches(alltext, '[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x{80}-\x{9f}\x{200b}\x{feff}]')",
        "'control or zero-width characters'")
    rules["markup"] = (f"regexp_matches(o_nocode, {_q(_any(MARKUP + r.markup.extra_patterns))})",
                       f"regexp_extract(o_nocode, {_q(_any(MARKUP + r.markup.extra_patterns))})")
    ud = r.url_density
    rules["url_density"] = (f"n_url >= {ud.min_urls} AND n_url > {ud.max_per_token} * greatest(n_tok, {_WORDS})",
                            "n_url || ' URLs or addresses in ' || n_tok || ' tokens'")
    for name, base, where in (("boilerplate", BOILERPLATE, "o"), ("refusal", REFUSAL, "o"), ("placeholder", PLACEHOLDER, "o_nocode")):
        pat = _q(_any(base + getattr(r, name).extra_patterns))
        rules[name] = (f"regexp_matches({where}, {pat})", f"'\"' || regexp_extract({where}, {pat}) || '\"'")
    rules["mojibake"] = (f"regexp_matches(alltext, {_q(MOJIBAKE)})", f"'\"' || regexp_extract(alltext, {_q(MOJIBAKE)}) || '\"'")
    rules["dialogue_roles"] = (
        "dialogue AND (roles_ua[1] <> 'user' OR list_bool_or(list_transform(range(1, len(roles_ua)), "
        "lambda k: roles_ua[k] = roles_ua[k + 1])) OR list_position(roles, 'system') > 1)",
        "'roles: ' || array_to_string(roles, ' > ')")
    rules["dialogue_empty_turn"] = (
        "dialogue AND list_bool_or(list_transform(messages, lambda m: length(wtrim(coalesce(m.content, ''))) = 0))",
        "'turn ' || (list_position(list_transform(messages, lambda m: length(wtrim(coalesce(m.content, ''))) = 0), true) - 1) || ' is empty'")
    rules["dialogue_last_turn"] = ("dialogue AND len(messages) > 0 AND messages[-1].role <> 'assistant'",
                                   "'last turn is ' || messages[-1].role")
    return {k: v for k, v in rules.items() if getattr(r, k).enabled}


def _grams(n: int) -> str:
    """The token n-grams of an answer (tokens joined by a space), for answers long enough to judge."""
    # indexed elements, not a slice: a slice copies, which made long answers quadratic
    parts = ", ".join(f"tok[k + {j}]" for j in range(n))
    return f"list_transform(range(1, n_tok - {n - 2}), lambda k: concat_ws(' ', {parts}))"


def _top_share(n: int) -> str:
    """Gopher's share of token characters in the most frequent n-gram."""
    g, mode = f"g{n}", f"mode{n}"
    return (f"len(list_filter({g}, lambda x: x = {mode})) * (length({mode}) - {n - 1}) / greatest(tok_chars, 1)")


def metrics_sql(rules: QualityRules) -> str:
    """The query over the batch ``b`` that computes what the rules read."""
    ng = rules.ngram_repetition
    if ng.enabled:
        gram_cols = ", ".join(f"CASE WHEN n_tok >= {ng.min_tokens} THEN {_grams(k)} END AS g{k}" for k in (2, 3, 4))
        gram_cols += f", CASE WHEN n_tok >= {ng.min_tokens_dup} THEN {_grams(5)} END AS g5"
        mode_cols = ", ".join(f"list_aggregate(g{k}, 'mode') AS mode{k}" for k in (2, 3, 4))
        ngram_cols = (", ".join(f"{_top_share(k)} AS top{k}" for k in (2, 3, 4))
                      + ", 1 - len(list_distinct(g5)) / greatest(len(g5), 1) AS dup5")
    else:
        gram_cols = "NULL AS g2"
        mode_cols = "NULL AS mode2"
        ngram_cols = "NULL AS top2, NULL AS top3, NULL AS top4, NULL AS dup5"
    pii = rules.personal_data
    pii_cols = ", ".join(
        [f"len(regexp_extract_all(alltext, {_q(EMAIL)})) AS n_email" if "email" in pii.kinds else "0 AS n_email",
         f"len(regexp_extract_all(alltext, {_q(PHONE)})) AS n_phone" if "phone" in pii.kinds else "0 AS n_phone",
         f"regexp_extract_all(alltext, {_q(CN_ID)}) AS id_cands" if "cn_id" in pii.kinds else "[]::VARCHAR[] AS id_cands",
         f"regexp_extract_all(alltext, {_q(CARD)}) AS card_cands" if "card" in pii.kinds else "[]::VARCHAR[] AS card_cands"]
    )
    return f"""
WITH s AS (
    SELECT sample_id, messages, input, messages IS NOT NULL AS dialogue,
           CASE WHEN messages IS NULL THEN coalesce(instruction, '') ELSE {_join_role('user')} END AS ins,
           wtrim(CASE WHEN messages IS NULL THEN coalesce(output, '') ELSE {_join_role('assistant')} END) AS o,
           coalesce(reasoning, nullif(array_to_string(list_filter(list_transform(messages, lambda m: m.reasoning),
                                                                  lambda x: x IS NOT NULL), chr(10)), '')) AS rsn,
           concat_ws(chr(10), system, instruction, input, output, reasoning,
                     array_to_string(list_transform(messages, lambda m: coalesce(m.content, '') || chr(10)
                                                    || coalesce(m.reasoning, '')), chr(10))) AS alltext,
           list_transform(messages, lambda m: m.role) AS roles
    FROM b
), m0 AS (
    SELECT *, length(o) AS olen,
           regexp_replace(o, {_q(_CODE)}, ' ', 'gs') AS o_nocode,
           {_count('o', '```')} % 2 = 1 AS fence_open,
           regexp_extract(o, '[^\\n]*$') AS last_line,
           regexp_extract_all(lower(o), {_q(TOKENS)}) AS tok,
           list_filter(string_split(o_nocode, chr(10)), lambda x: length(wtrim(x)) > 0) AS lines,
           list_filter(string_split_regex(o_nocode, '\\n\\s*\\n'), lambda x: length(wtrim(x)) > 0) AS paras,
           list_filter(list_transform(roles, lambda x: CASE WHEN x = 'tool' THEN 'user' ELSE x END), lambda x: x IN ('user', 'assistant')) AS roles_ua
    FROM s
), m AS (
    SELECT *, len(tok) AS n_tok, list_sum(list_transform(tok, lambda x: length(x))) AS tok_chars,
           len(lines) AS n_lines, len(lines) - len(list_distinct(lines)) AS dup_lines,
           len(paras) AS n_paras, len(paras) - len(list_distinct(paras)) AS dup_paras,
           {_count('o_nocode', '(') + ' + ' + _count('o_nocode', '（')} AS opens_round,
           {_count('o_nocode', ')') + ' + ' + _count('o_nocode', '）')} AS closes_round,
           {_count('o_nocode', '[')} AS opens_square, {_count('o_nocode', ']')} AS closes_square,
           {_count('o_nocode', '{')} AS opens_curly, {_count('o_nocode', '}')} AS closes_curly,
           length(regexp_replace(o_nocode, '[^\\p{{S}}]', '', 'g')) AS n_sym,
           length(regexp_replace(o_nocode, '[^\\p{{N}}]', '', 'g')) AS n_dig,
           length(regexp_replace(o_nocode, '[^\\p{{P}}]', '', 'g')) AS n_pun,
           len(regexp_extract_all(o, 'https?://\\S+|www\\.\\S+|{EMAIL}')) AS n_url,
           {pii_cols}
    FROM m0
), m1 AS (
    SELECT *, {gram_cols} FROM m
), m2 AS (
    SELECT *, {mode_cols} FROM m1
)
SELECT * EXCLUDE (tok, lines, paras), {ngram_cols} FROM m2
"""


class QualityStep(RowStep):
    """All quality and noise rules in one vectorised pass; decisions per rule and a quality score."""

    type_name = "quality"
    Params = QualityParams

    def __init__(self, name: str | None = None, params: dict | None = None) -> None:
        super().__init__(name, params)
        self.rules = build_rules(self.params.rules)
        self._sql = metrics_sql(self.params.rules)
        conds = ",\n".join(f"CASE WHEN coalesce({c}, false) THEN {d} END AS {_rule_col(k)}"
                           for k, (c, d) in self.rules.items())
        self._sql = f"SELECT sample_id, n_email, n_phone, id_cands, card_cands, {conds} FROM ({self._sql})"
        # user patterns (extra_patterns) are RE2: check them now, not at the first batch
        con = _connect()
        try:
            for rule in ("markup", "boilerplate", "refusal", "placeholder"):
                for pat in getattr(self.params.rules, rule).extra_patterns:
                    try:
                        con.execute("SELECT regexp_matches('', ?)", [pat]).fetchall()
                    except Exception as e:  # duckdb.InvalidInputException
                        raise ValueError(f"rules.{rule}.extra_patterns: {pat!r} is not a valid RE2 pattern: {e}") from e
        finally:
            con.close()

    def process(self, batch: pa.Table) -> StepOutput:
        con = _connect()
        try:
            con.register("b", batch.select(["sample_id", "instruction", "input", "output", "system", "messages", "reasoning"]))
            res = query_arrow(con, self._sql)
        finally:
            con.close()
        n = res.num_rows
        ids = res.column("sample_id").combine_chunks()
        r = self.params.rules
        penalty = np.zeros(n)
        parts: list[pa.Table] = []
        counters: Counter[str] = Counter()
        for k in self.rules:
            col = res.column(_rule_col(k)).combine_chunks()
            hit = pc.is_valid(col)
            cnt = int(pc.sum(hit).as_py() or 0)
            if not cnt:
                continue
            rule: Rule = getattr(r, k)
            counters[k] += cnt
            penalty += rule.penalty * hit.to_numpy(zero_copy_only=False)
            detail = col.filter(hit)
            parts.append(_decisions(ids.filter(hit), rule.verdict, pc.binary_join_element_wise(
                pa.scalar(DESCRIPTIONS[k]), detail, ": "), rule.penalty))
        if r.personal_data.enabled:
            found = _personal_data(res)
            if found:
                idx = np.fromiter(found, dtype=np.int64)
                rule = r.personal_data
                counters["personal_data"] += len(idx)
                penalty[idx] += rule.penalty
                reasons = [f"{DESCRIPTIONS['personal_data']}: {found[i]}" for i in idx]
                parts.append(_decisions(ids.take(pa.array(idx)), rule.verdict, pa.array(reasons, pa.string()), rule.penalty))
        score = np.clip(1.0 - penalty, 0.0, 1.0)
        signals = pa.table([ids, pa.array(["quality_score"] * n, pa.string()), pa.array(np.round(score, 4)),
                            pa.nulls(n, pa.string())], schema=SIGNAL_SCHEMA)
        decisions = pa.concat_tables(parts) if parts else None
        return StepOutput(decisions=decisions, signals=signals, counters=counters)


def _connect():  # noqa: ANN202
    con = scratch()
    # trim() strips spaces only; answers end in newlines and tabs too
    con.execute(r"CREATE MACRO wtrim(x) AS regexp_replace(x, '^\s+|\s+$', '', 'g')")
    return con


def _rule_col(name: str) -> str:
    return f"rule_{name}"


def _decisions(ids: pa.Array, verdict: str, reasons: pa.Array, penalty: float) -> pa.Table:
    n = len(ids)
    return pa.table([ids, pa.array([verdict] * n, pa.string()), reasons.cast(pa.string()), pa.nulls(n, pa.string()),
                     pa.array([penalty] * n, pa.float64())], schema=DECISION_SCHEMA)


def _personal_data(res: pa.Table) -> dict[int, str]:
    """Row index -> what was found, e.g. 'e-mail, phone number'. Checksums run on the candidates only."""
    emails = res.column("n_email").to_numpy(zero_copy_only=False)
    phones = res.column("n_phone").to_numpy(zero_copy_only=False)
    ids_c = res.column("id_cands").combine_chunks()
    cards_c = res.column("card_cands").combine_chunks()
    has_id = np.flatnonzero(pc.fill_null(pc.greater(pc.list_value_length(ids_c), 0), False).to_numpy(zero_copy_only=False))
    has_card = np.flatnonzero(pc.fill_null(pc.greater(pc.list_value_length(cards_c), 0), False).to_numpy(zero_copy_only=False))
    kinds: dict[int, list[str]] = {}
    for i in np.flatnonzero(emails > 0):
        kinds.setdefault(int(i), []).append(f"{int(emails[i])} e-mail address{'es' if emails[i] > 1 else ''}")
    valid_ids: dict[int, set[str]] = {}
    for i in has_id:
        good = {c for c in ids_c[int(i)].as_py() if valid_cn_id(c)}
        if good:
            valid_ids[int(i)] = good
            kinds.setdefault(int(i), []).append(f"{len(good)} resident ID number{'s' if len(good) > 1 else ''}")
    for i in np.flatnonzero(phones > 0):
        kinds.setdefault(int(i), []).append(f"{int(phones[i])} phone number{'s' if phones[i] > 1 else ''}")
    for i in has_card:
        good = [c for c in cards_c[int(i)].as_py() if valid_card(c) and c not in valid_ids.get(int(i), ())]
        if good:
            kinds.setdefault(int(i), []).append(f"{len(good)} card number{'s' if len(good) > 1 else ''}")
    return {i: ", ".join(v) for i, v in sorted(kinds.items())}
