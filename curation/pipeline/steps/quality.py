"""Quality and noise rules for instruction data, and a per-sample quality score.

Every rule is a DuckDB SQL expression evaluated over the whole record batch at once (one query per
batch, all rules together), over figures some compiled passes made of the batch's text first (n-gram and line
statistics, :mod:`curation.answer_stats`; control characters, mojibake and which texts may hold a number or a
key, :mod:`curation.text_flags`); only personal-data candidates that need a checksum (Luhn for card numbers,
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

import fnmatch
from collections import Counter
from pathlib import PurePath
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator

from curation.duck import in_parts, query_arrow, scratch
from curation.duck import sql_literal as _q
from curation.pipeline.base import DECISION_SCHEMA, SIGNAL_SCHEMA, RowStep, StepOutput
from curation.pipeline.pii import (  # noqa: F401  (valid_card, valid_cn_id: re-exported)
    CARD_IN_TEXT,
    CN_ID,
    CREDENTIAL,
    EMAIL,
    PHONE,
    PHONE_IN_CONTEXT,
    personal_data,
    valid_card,
    valid_cn_id,
)
from curation.text_flags import CONTROL, MOJIBAKE, MOJIBAKE_SEEN, NUMBER_OR_KEY, text_flags

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
    min_chars: int = Field(default=2, ge=0, description="Non-empty answers shorter than this (characters) that hold no "
                           "letter or digit fire (\"3\", \"A\" or \"喝\" can be the whole answer asked for).")
    max_chars: int = Field(default=32_000, ge=1, description="Answers longer than this fire.")


class RepeatsRule(Rule):
    min_share: float = Field(default=0.6, ge=0, le=1, description="Instruction length / answer length from which it fires.")
    min_chars: int = Field(default=10, ge=0, description="Shorter instructions are not checked.")


class TruncatedRule(Rule):
    min_line_chars: int = Field(default=20, ge=1, description="The last line must be at least this long to judge its end.")
    min_prose_words: int = Field(
        default=10, ge=1,
        description="A last line of at least this many words that ends in a lower-case word, without a full stop, is cut.")
    min_cjk_chars: int = Field(
        default=40, ge=1,
        description="A Chinese last line of at least this many characters, with a full stop and then a comma in it, "
                    "that ends without closing punctuation is cut (names, dates, lists, single sentences often end so).")


class ReasoningPresenceRule(Rule):
    expect: Literal["any", "required", "forbidden"] = Field(
        default="any", description="Whether the dataset's answers carry reasoning traces.")


class ReasoningBudgetRule(Rule):
    max_chars: int = Field(default=20_000, ge=1, description="Reasoning longer than this fires.")
    max_ratio: float = Field(default=30.0, gt=0, description="Reasoning / answer length above this fires.")


class LineRepetitionRule(DropRule):
    # a loop, not structure: scripts repeat speaker names, songs their chorus, multi-turn work its code
    min_run: int = Field(default=4, ge=2, description="This many identical lines in a row (each of min_line_chars) fire.")
    min_para_run: int = Field(default=3, ge=2, description="This many identical paragraphs in a row fire.")
    min_line_chars: int = Field(default=10, ge=1, description="Shorter lines (speaker names, separators) are not counted.")
    max_dup_line_share: float = Field(
        default=0.6, ge=0, le=1,
        description="Share of (long enough) lines that repeat an earlier line from which the answer fires anywhere.")
    min_lines: int = Field(default=8, ge=2, description="Fewer lines are not judged by the share.")


class NgramRepetitionRule(DropRule):
    # Gopher (Rae et al. 2021): share of characters in the most frequent 2/3/4-gram
    # Gopher's 0.20 / 0.18 / 0.16 are for web documents; instruction answers (test lists that start every item
    # with "Verify that", JSON records, interview questions on one subject) pass them without looping
    max_top_2gram: float = 0.35
    max_top_3gram: float = 0.33
    max_top_4gram: float = 0.30
    min_tokens: int = Field(
        default=150, ge=5,
        description="Shorter answers (tokens: words, CJK characters) are not judged for top n-gram shares "
                    "(a short answer repeats its subject; Gopher's thresholds are for documents).")
    max_dup_5gram: float = Field(
        default=0.6, description="Share of 5-gram occurrences that repeat an earlier one (revised code, parallel "
                                 "sections and templates repeat a third of their 5-grams; loops most).")
    min_tokens_dup: int = Field(default=50, ge=5, description="Shorter answers are not judged for repeated 5-grams.")


class RatioRule(Rule):
    max_symbol: float = Field(default=0.25, description="Symbols (Unicode category S) / characters.")
    max_digit: float = Field(default=1.0, description="Digits / characters (off by default: dates, amounts, tables).")
    max_punctuation: float = Field(default=0.4, description="Punctuation / characters.")
    min_chars: int = Field(default=40, ge=1, description="Shorter answers are not judged.")


class UrlRule(Rule):
    min_urls: int = Field(default=3, ge=1, description="At least this many URLs or e-mail addresses ...")
    max_per_token: float = Field(default=0.1, description="... and more than this many per token.")


class PatternRule(Rule):
    extra_patterns: list[str] = Field(default_factory=list, description="More regular expressions (RE2) that fire.")


class BoilerplateRule(PatternRule):
    penalty: float = 0.3
    drop_below: int = Field(
        default=120, ge=0,
        description="An answer is dropped when, without its boilerplate clauses, less than this remains (characters, "
                    "a Chinese character counted 3): nothing but the disclaimer. Otherwise an \"As an AI...\" preface "
                    "that states no capability (\"I cannot browse\", \"我无法观看视频\" inform the user) is flagged. "
                    "Not judged when the instruction asks about the assistant itself (\"How are you?\", \"你是谁\").")


class RefusalRule(PatternRule):
    max_rest: int = Field(
        default=300, ge=0,
        description="Not flagged when more than this remains without the refusing sentences (characters, a Chinese "
                    "character counted 3): a safety refusal followed by real help is a good answer.")


class MissingInputRule(PatternRule):
    drop_below: int = Field(
        default=300, ge=0,
        description="Answers shorter than this that say the input is missing are dropped; longer ones flagged.")


class PlaceholderRule(PatternRule):
    skip_when_asked: str = Field(
        default=r"(?i)\btemplates?\b|fill[- ]in|placeholders?|模板|模版|占位",
        description="Instructions matching this (RE2) ask for a template: placeholders are the answer there.")


class PiiRule(Rule):
    kinds: list[Literal["email", "phone", "cn_id", "card", "credential"]] = ["email", "phone", "cn_id", "card", "credential"]


class QualityRules(BaseModel):
    """The rules, by name."""

    model_config = ConfigDict(extra="forbid")

    empty_output: DropRule = DropRule()
    empty_instruction: DropRule = DropRule()
    output_length: LengthRule = LengthRule()
    output_equals_instruction: DropRule = DropRule()
    output_repeats_instruction: RepeatsRule = RepeatsRule()
    truncated: TruncatedRule = TruncatedRule()
    truncated_start: Rule = Rule()
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
    refusal: RefusalRule = RefusalRule()
    missing_input: MissingInputRule = MissingInputRule()
    placeholder: PlaceholderRule = PlaceholderRule()
    placeholder_input: PatternRule = PatternRule()
    mojibake: Rule = Rule()
    personal_data: PiiRule = PiiRule()
    dialogue_roles: Rule = Rule()
    dialogue_empty_turn: Rule = Rule()
    dialogue_last_turn: Rule = Rule()


class SourceRules(BaseModel):
    """Rules turned off for the samples of some inputs (an identity set, a style guide)."""

    model_config = ConfigDict(extra="forbid")

    match: str = Field(description="Glob on the input's file name or full path, e.g. \"identity*.jsonl\".")
    disable: list[str] = Field(description="Names of the rules that do not judge these samples.")

    @field_validator("disable")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        unknown = sorted(set(v) - set(QualityRules.model_fields))
        if unknown:
            raise ValueError(f"unknown rules {unknown}; known: {', '.join(QualityRules.model_fields)}")
        return v


class QualityParams(BaseModel):
    """Quality step parameters."""

    model_config = ConfigDict(extra="forbid")

    rules: QualityRules = QualityRules()
    sources: list[SourceRules] = Field(
        default_factory=list,
        description="Per-input exceptions: [[steps.params.sources]] match = \"identity*.jsonl\", disable = [\"boilerplate\"].")


# --- patterns (RE2 syntax, used by DuckDB) ---------------------------------------------------------------
BOILERPLATE = [
    r"(?i)\bas an? (?:ai|artificial intelligence)(?:(?: language)? (?:model|assistant)\b|,)",
    r"(?i)\bas a (large )?language model\b",
    r"(?i)\bi(?: am|['’]m) (?:just |only )?an? (?:ai|artificial intelligence)(?: language model| assistant| model)?\b",
    r"(?i)\bas of my (?:last )?(?:knowledge )?(?:cutoff|update)\b",
    r"(?i)\bi (?:do not|don['’]t) have (?:personal )?(?:opinions|feelings|emotions|beliefs|preferences)\b",
    r"(?i)\bi (?:was|am|['’]m) (?:trained|developed|created) by openai\b",
    r"作为(?:一个|一名|一款)?(?:人工智能|AI|ai)(?:语言)?(?:模型|助手|助理|程序)?[，,]",
    r"作为(?:一个|一名|一款)?(?:人工智能|AI|ai)(?:语言)?(?:模型|助手|助理|程序)",
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
# Placeholders left in an answer. A sign-off slot ("[Your Name]", "[Your Title]") in a letter the user
# will send is expected and not matched; nor are template languages ({{name}}) and TODOs in code.
PLACEHOLDER = [
    r"(?i)\[(?:insert|enter|add|name|company|date|placeholder|recipient|sender|your (?:company|business|product|website|address|city|industry))\b[^\]\n]{0,40}\](?:[^(]|$)",
    r"(?i)<(?:insert|your|enter)[^>\n]{0,40}>",
    r"(?i)\blorem ipsum\b",
    r"[\[【](?:插入|填写|此处)[^\]】\n]{0,20}[\]】]",
]
# An input that stands for "no input": the template's marker was loaded as text.
PLACEHOLDER_INPUT = r"(?i)^\s*(?:<\s*no\s*_?\s*input\s*>|<\s*nooutput\s*>|n/?a|none|null|nil|nan|\(none\)|\(empty\)|empty|-+|无|空|暂无|没有)\s*$"
# The answer says that what the instruction refers to (a text, lyrics, a table) was not given.
MISSING_INPUT = [
    r"(?i)\byou (?:have not|haven['’]t|did not|didn['’]t|forgot to|may have forgotten to|need to) (?:yet |actually )?"
    r"(?:provide|include|share|give|attach|paste|specify|send|post|enter)(?:d)?\b(?: (?:me|us))?(?: (?:with|any|the|a|an|your))",
    r"(?i)\b(?:unfortunately, )?(?:no|the) (?:text|article|lyrics|song|table|code|list|data|input|transcript|passage|paragraph|"
    r"review|document|file|link|url|image|e-?mail|essay|story|poem|sentences?|content|information|details|examples?|"
    r"prompt|question|words?|excerpt|script|statement|context)s? (?:you (?:want|would like|wish|mentioned)[^.]{0,60} )?"
    r"(?:was|were|has been|have been|is|are|seems to be|appears to be) (?:not )?(?:provided|included|given|attached|shared|"
    r"supplied|missing)",
    r"(?i)\b(?:i (?:do not|don['’]t|cannot|can['’]t|could not|couldn['’]t) (?:see|find|locate)|there (?:is|are) no) "
    r"(?:any |the )?(?:text|article|lyrics|table|code|list|data|input|transcript|passage|paragraph|review|document|file|"
    r"link|attachment|image|e-?mail|content|sentences?|excerpt|script)s? (?:in|attached|provided|included|given|that "
    r"you|you|here|to (?:summari[sz]e|analy[sz]e|translate|review|check|classify|rewrite))\b",
    r"(?i)\b(?:seems|appears)[^.]{0,60}\b(?:text|article|lyrics|table|code|list|data|input|transcript|passage|"
    r"paragraph|document|file|link|content|information|details|attachment|image)s? (?:is|are|was|were) "
    r"(?:missing|not included|not provided)\b",
    r"(?i)\b(?:is|are) missing from your (?:message|request|question|prompt)\b",
    r"(?:您|你)(?:还|似乎|好像|并|可能)?(?:没有|未|没|忘记|忘了)(?:有)?(?:提供|给出|给我|发送|附上|包含|上传|输入|粘贴|说明|告诉我)",
    r"没有(?:看到|找到|收到|提供)(?:您|你)?(?:提到|所说|提供|说)?的?(?:文章|表格|歌词|文本|代码|内容|句子|段落|数据|文字|材料|图片|链接|问题|信息|文件|诗|评论)",
    r"(?:消息|问题|请求|输入)中(?:没有|并没有|未|并未)(?:包含|提供|给出)",
    r"(?:文章|表格|歌词|文本|代码|内容|句子|段落|数据|文字|材料)(?:似乎|好像)?(?:缺失|没有提供|未提供|不完整)",
]
# The instruction asks about the assistant itself: a disclaimer is then the answer, not boilerplate.
# a disclaimer that says what the assistant cannot do here informs the user: not filler
CAPABILITY = (r"(?i)\b(?:can(?:not|['’]t)|unable to|not able to|do(?:n['’]t| not) have (?:the )?(?:ability|access) to) "
              r"(?:directly |physically |personally )?(?:browse|access|see|watch|view|hear|listen|open|visit|click|"
              r"download|read (?:links|files|images|pdfs?|attachments)|generate (?:images|pictures)|draw|predict|"
              r"provide real-time|perform (?:physical )?actions|make (?:phone )?calls|remember|recall)\b|"
              r"(?:无法|不能)(?:直接)?(?:为您|为你|给您|给你)?(?:观看|浏览|访问|查看|上网|获取实时|生成图片|生成图像|画|绘制|听|"
              r"打开|预测|记住|进行任何需要身体)|不具备[^，。]{0,12}能力")
TRANSLATION = (r"(?i)\btranslat|翻译|译成|译为|翻成|译文|trad[uú]c|übersetz|перевед|\b(?:in|into|the) (?:english|chinese)\b|"
               r"(?:英文|中文|英语)(?:怎么说|是什么)")
ASKS_MARKUP = r"(?i)\b(?:html|xml|svg|markup|web ?page|website|css|jsx|tsx|vue|react|angular|template|tag|element|code|script)s?\b|网页|标签|代码"
ABOUT_ASSISTANT = (r"(?i)\b(?:how are you|who are you|what are you|are you (?:an? )?(?:ai|human|real|alive|conscious|"
                   r"sentient|robot|bot|chatgpt|machine|person)|your (?:name|feelings?|opinions?|favou?rite)|do you "
                   r"(?:feel|have (?:feelings|emotions|opinions|preferences|a favou?rite)|like|love|dream|believe)|"
                   r"about yourself|what can you do|your (?:capabilit|abilit|limitation)\w*|destroy you|shut you down)\b|你是谁|你好吗|你叫什么|你的名字|你(?:有没有|喜欢|会不会|"
                   r"能不能)|介绍一下你|介绍你自己|你是(?:人|机器|AI|ai|谁|什么)|社恐|你能(?:做|干)什么|你的能力|你(?:是否|可以|能否|会不会)")
MARKUP = [
    r"(?i)</?(?:div|span|p|br|a|table|tr|td|th|li|ul|ol|img|script|style|html|body|head|font|strong|em|b|i|h[1-6])(?:\s[^<>]*)?/?>",
    r"&(?:nbsp|amp|lt|gt|quot|apos|#\d{2,5});",
    r"\[\[\pL[^\]\n]{0,80}\]\]",
]
# Tokens: words; CJK text (no spaces) in pairs of characters, a crude stand-in for words (most Chinese
# words have two characters) that keeps n-gram statistics comparable across languages.
TOKENS = r"[\p{Han}\p{Hiragana}\p{Katakana}]{1,2}|[\p{L}\p{N}_']+"
# a last line that starts like a list item, heading, table row or quote is not judged for truncation
_LISTY = r"^\s*(?:[-*+>|#]|\d+[.)]|[a-zA-Z][.)]\s)"
# An answer is cut at the end when (a) it ends on a joining mark (comma, colon, dash, open bracket), (b) an
# English line ends on a word that cannot end a sentence ("the", "of", "and"), (c) a long English line of
# prose ends on a lower-case word with no full stop, or (d) a long Chinese line ends on a character that
# cannot end a sentence (的, 和, 在) or, with a comma before, on any Han character without closing punctuation.
# Short answers (names, dates, lists, code, sign-offs) often end without a full stop and are not judged.
_ENDS_JOINING = r"[,，、:：；(（\[{\-–—/]$"  # not ";": code ends so
_ENDS_FUNCTION_WORD = (r"(?i)[a-z]{2,}\W+(?:the|a|an|of|to|and|or|with|for|is|are|was|were|that|these|those|"
                       r"as|at|from|be|which|their|its|your|our|my|his|her|into|than|but|if|when|while|because|"
                       r"such|including|between|will|can|should|would|could|has|have|had|also|very|each|every|both|"
                       r"either|some|per|via|whose|whether|although|though|since|unless|until|many|several|more|other|another|"
                       r"about|through|during|without|within|among|most)$")
_ENDS_LOWER_WORD = r"(?:^|\s)[a-z][a-z'’-]+$"  # a whole last word in lower case ("Lewis", URLs are not)
_PROSE_LINE = r"^[^{}<>=;|\\#]*$"  # no code characters, no hashtags
_CJK_OPEN_END = r"[\p{Han}\p{P}\s][的和与及或是在对把被从向为以而但因所这那将让使给跟同由于并且就都也还又再很最更之其个各该每]$"
_CJK_ENDS_HAN = r"\p{Han}$"
# An answer cut at the start: a lower-case fragment of prose ("ed on your plan, I have...", "'m sorry") or
# Chinese text that opens with closing punctuation.
_STARTS_CUT = r"^(?:[a-z]{1,3}[,.;:!?]?\s|[a-z]+[,.;:!?]?\s+[a-z]|['’][a-z]{1,2}\s)|^[，。、；：！？）》」』]"
_STARTS_CODE = r"^[^\n]{0,20}[`{}()<>=;_/\\$@#*\[\]]|^\S*[A-Z0-9]"
_CODE = r"```.*?(?:```|$)|`[^`\n]*`"
_NOCODE = f"regexp_replace(o, {_q(_CODE)}, ' ', 'gs')"  # the answer with its code blocks and spans blanked out

_WORDS = 10  # stand-in token count for the URL rule on very short text


def _any(patterns: list[str]) -> str:
    return "|".join(f"(?:{p})" for p in patterns)


def _count(expr: str, needle: str) -> str:
    return f"((length({expr}) - length(replace({expr}, {_q(needle)}, ''))) // {len(needle)})"


def _join_role(role: str) -> str:
    return (f"array_to_string(list_transform(list_filter(messages, lambda m: m.role = {_q(role)}), "
            f"lambda m: coalesce(m.content, '')), chr(10) || chr(10))")


DESCRIPTIONS = {
    "empty_output": "empty answer",
    "empty_instruction": "empty instruction",
    "output_length": "answer length out of range",
    "output_equals_instruction": "answer equals the instruction",
    "output_repeats_instruction": "answer mostly repeats the instruction",
    "truncated": "truncated answer",
    "truncated_start": "answer starts mid-sentence",
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
    "missing_input": "missing input",
    "placeholder": "placeholder text",
    "placeholder_input": "placeholder input",
    "mojibake": "mojibake (broken encoding)",
    "personal_data": "personal data",
    "dialogue_roles": "dialogue roles do not alternate",
    "dialogue_empty_turn": "dialogue has an empty turn",
    "dialogue_last_turn": "dialogue does not end with the assistant",
}


def _fmt(x: str, digits: int = 2) -> str:
    return f"printf('%.{digits}f', {x})"


def build_rules(r: QualityRules) -> dict[str, tuple[str, str, str | None]]:
    """Rule name -> (condition SQL, detail SQL, drop condition SQL or None) over the columns of the metrics query.

    The drop condition, where a rule has one, turns a flag into a drop for the rows it holds on (an
    answer that is nothing but boilerplate); a rule configured with ``verdict = "drop"`` drops every row.
    """
    rules: dict[str, tuple[str, str] | tuple[str, str, str | None]] = {}
    ln, rp, ng, ra = r.output_length, r.output_repeats_instruction, r.ngram_repetition, r.char_ratios
    rules["empty_output"] = ("olen = 0", "'nothing after trimming'")
    rules["empty_instruction"] = ("NOT dialogue AND length(insw) = 0 AND length(wtrim(coalesce(input, ''))) = 0",
                                  "'no instruction or input'")
    rules["output_length"] = (
        f"(olen > 0 AND olen < {ln.min_chars} AND NOT regexp_matches(o, '[\\p{{L}}\\p{{N}}]')) OR olen > {ln.max_chars}",
        f"olen || ' characters (allowed {ln.min_chars}..{ln.max_chars})'")
    # CASE, not AND: DuckDB evaluates every operand of an AND in a SELECT list, and lower-casing each answer is
    # the cost; lower() maps a character to at most 3, so equal lower-cased texts are within 3x in length
    # DuckDB's lower() maps each code point to one (checked over all of them in the tests), so lower-cased texts
    # are equal only at equal lengths, and one holds the other, different, only when it is shorter: the lengths
    # are compared first, and most texts are not lower-cased at all
    rules["output_equals_instruction"] = (
        "CASE WHEN olen > 0 AND length(insw) <= 3 * olen AND olen <= 3 * length(insw) "
        "THEN CASE WHEN olen = length(insw) THEN lower(o) = lower(insw) ELSE false END END",
        "'same text'")
    rules["output_repeats_instruction"] = (
        f"CASE WHEN olen > 0 AND length(insw) >= {rp.min_chars} AND length(insw) >= {rp.min_share} * olen "
        f"THEN CASE WHEN length(insw) < olen THEN contains(lower(o), lower(insw)) ELSE false END END",
        "'the instruction is ' || CAST(round(100 * length(insw) / olen) AS INT) || '% of the answer and appears in it'")
    tr = r.truncated
    last = "last_line"
    rules["truncated"] = (
        # the pattern of a cut ending first: the checks of the given text scan the instruction
        f"CASE WHEN olen > 0 AND NOT fence_open AND length({last}) >= {tr.min_line_chars} "
        f"AND NOT regexp_matches({last}, {_q(_LISTY)}) AND ("
        f"regexp_matches(right(o, 1), {_q(_ENDS_JOINING)}) "
        f"OR (regexp_matches({last}, {_q(_ENDS_FUNCTION_WORD)}) AND regexp_matches({last}, {_q(_PROSE_LINE)})) "
        f"OR (regexp_matches({last}, {_q(_ENDS_LOWER_WORD)}) AND regexp_matches({last}, {_q(_PROSE_LINE)}) "
        f"AND len(string_split(wtrim({last}), ' ')) >= {tr.min_prose_words}) "
        f"OR (regexp_matches({last}, {_q(_CJK_OPEN_END)}) AND length({last}) >= {tr.min_line_chars}) "
        f"OR (regexp_matches({last}, {_q(_CJK_ENDS_HAN)}) AND length({last}) >= {tr.min_cjk_chars} "
        f"AND regexp_matches({last}, '。.*，')))"
        # an answer that ends as the text it was given ends (proofreading a fragment) is not cut
        f" THEN NOT contains(given_text, right(o, 12)) AND NOT (regexp_matches(right(o, 1), '[,，、:：；]') "
        f"AND right(o, 1) = right(wtrim(given_text), 1)) END",
        "'ends mid-sentence: …' || right(o, 30)")
    # a translation keeps its source's case ("could not connect to ..." translates a lower-case message)
    rules["truncated_start"] = (
        f"CASE WHEN olen >= 40 AND (regexp_matches(o, {_q(_STARTS_CUT)}) AND NOT regexp_matches(o, {_q(_STARTS_CODE)}) "
        f"AND regexp_matches(first_line, {_q(_PROSE_LINE)}) AND len(string_split(wtrim(first_line), ' ')) >= 4 "
        f"OR regexp_matches(o, '^[，。、；：！？）》」』]')) THEN NOT regexp_matches(ins, {_q(TRANSLATION)}) END",
        "'starts mid-sentence: ' || left(o, 30) || '…'")
    # one unclosed "(" is a smiley, a quoted message or "1) item" more often than a cut: two are needed
    rules["unbalanced"] = (
        "fence_open OR opens_round > closes_round + 1 OR opens_square > closes_square OR opens_curly > closes_curly",
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
        f"line_loop OR para_loop OR (n_long_lines >= {lr.min_lines} AND dup_long_lines > {lr.max_dup_line_share} * n_long_lines)",
        f"CASE WHEN line_loop THEN 'the same line {lr.min_run} or more times in a row; ' ELSE '' END || "
        f"CASE WHEN para_loop THEN 'the same paragraph {lr.min_para_run} or more times in a row; ' ELSE '' END || "
        "dup_long_lines || ' of ' || n_long_lines || ' lines repeat an earlier one'")
    rules["ngram_repetition"] = (
        f"(n_tok >= {ng.min_tokens} AND (top2 > {ng.max_top_2gram} OR top3 > {ng.max_top_3gram} "
        f"OR top4 > {ng.max_top_4gram})) OR (n_tok >= {ng.min_tokens_dup} AND dup5 > {ng.max_dup_5gram})",
        f"concat_ws(', ', CASE WHEN top2 IS NOT NULL THEN 'top 2/3/4-gram share ' || {_fmt('top2')} || '/' "
        f"|| {_fmt('top3')} || '/' || {_fmt('top4')} END, 'repeated 5-grams ' || {_fmt('dup5')})")
    rules["char_ratios"] = (
        f"olen >= {ra.min_chars} AND (n_sym > {ra.max_symbol} * olen "
        f"OR n_dig > {ra.max_digit} * olen OR n_pun > {ra.max_punctuation} * olen) "
        # a JSON or table answer: its pattern runs over the few answers with an unusual mix only
        "AND NOT regexp_matches(o, '^\\s*[\\[{<]|\\n\\s*\\|.*\\|')",
        f"'symbols ' || {_fmt('n_sym / olen')} || ', digits ' || {_fmt('n_dig / olen')} || ', punctuation ' || {_fmt('n_pun / olen')}")
    # text_flags: one compiled pass over all the text (curation.text_flags), not a regular expression per rule
    rules["non_printable"] = (f"(text_flags & {CONTROL}) <> 0", "'control or zero-width characters'")
    # markup the instruction asked for (HTML, XML, a web page, code) is the answer, not a leftover
    rules["markup"] = (f"regexp_matches(o_nocode, {_q(_any(MARKUP + r.markup.extra_patterns))}) "
                       f"AND NOT regexp_matches(ins, {_q(ASKS_MARKUP)})",
                       f"regexp_extract(o_nocode, {_q(_any(MARKUP + r.markup.extra_patterns))})")
    ud = r.url_density
    rules["url_density"] = (f"n_url >= {ud.min_urls} AND n_url > {ud.max_per_token} * greatest(n_tok, {_WORDS})",
                            "n_url || ' URLs or addresses in ' || n_tok || ' tokens'")
    bp = r.boilerplate
    pat = _any(BOILERPLATE + bp.extra_patterns)
    # the sentences that hold boilerplate, and what is left without them (CJK counted 3)
    # the clauses that hold boilerplate ("As an AI language model," / "我没有个人观点。"), and what is left without them
    sentence = _q(f"[^.!?。！？\\n,，;；]*(?:{pat})[^.!?。！？\\n,，;；]*[.!?。！？,，;；]?")
    rest = f"regexp_replace(o, {sentence}, '', 'g')"
    rest_size = f"(length(wtrim({rest})) + 2 * length(regexp_replace({rest}, '[^\\p{{Han}}]+', '', 'g')))"
    # the whole sentences, for what they say the assistant cannot do ("As an AI, I cannot browse ...")
    whole = _q(f"[^.!?。！？\\n]*(?:{pat})[^.!?。！？\\n]*[.!?。！？]?")
    bp_sentences = f"array_to_string(regexp_extract_all(o, {whole}), ' ')"
    rules["boilerplate"] = (
        # CASE: the clauses are cut out of the answers that hold boilerplate only (a regexp_replace per answer is slow)
        f"CASE WHEN regexp_matches(o, {_q(pat)}) AND NOT regexp_matches(ins, {_q(ABOUT_ASSISTANT)}) "
        f"THEN {rest_size} < {bp.drop_below} OR NOT regexp_matches({bp_sentences}, {_q(CAPABILITY)}) END",
        f"'\"' || regexp_extract(o, {_q(pat)}) || '\"' || CASE WHEN {rest_size} < {bp.drop_below} "
        f"THEN ', and little else' ELSE ' before the answer' END",
        f"{rest_size} < {bp.drop_below}")
    rf = r.refusal
    pat = _any(REFUSAL + rf.extra_patterns)
    # a refusal followed by a substantive answer (declining a harmful premise, then helping) is not flagged
    sentence = _q(f"[^.!?。！？\\n]*(?:{pat})[^.!?。！？\\n]*[.!?。！？]?")
    rest = f"regexp_replace(o, {sentence}, '', 'g')"
    rest_size = f"(length({rest}) + 2 * length(regexp_replace({rest}, '[^\\p{{Han}}]+', '', 'g')))"
    rules["refusal"] = (f"CASE WHEN regexp_matches(o, {_q(pat)}) THEN {rest_size} < {rf.max_rest} END",
                        f"'\"' || regexp_extract(o, {_q(pat)}) || '\"'")
    mi = r.missing_input
    pat = _q(_any(MISSING_INPUT + mi.extra_patterns))
    rules["missing_input"] = (
        f"regexp_matches(left(o, 400), {pat})",
        f"'the answer says the input is missing: \"' || regexp_extract(left(o, 400), {pat}) || '\"'",
        f"olen < {mi.drop_below}")
    ph = r.placeholder
    pat = _q(_any(PLACEHOLDER + ph.extra_patterns))
    rules["placeholder"] = (f"regexp_matches(o_nocode, {pat}) AND NOT regexp_matches(ins, {_q(ph.skip_when_asked)})",
                            f"'\"' || regexp_extract(o_nocode, {pat}) || '\"'")
    pat = _q(_any([PLACEHOLDER_INPUT] + r.placeholder_input.extra_patterns))
    rules["placeholder_input"] = (
        f"NOT dialogue AND (regexp_matches(coalesce(input, ''), {pat}) OR regexp_matches(coalesce(instruction, ''), {pat}))",
        f"CASE WHEN regexp_matches(coalesce(input, ''), {pat}) THEN 'input' ELSE 'instruction' END || ' is \"' "
        f"|| wtrim(CASE WHEN regexp_matches(coalesce(input, ''), {pat}) THEN input ELSE instruction END) || '\"'")
    rules["mojibake"] = (f"(text_flags & {MOJIBAKE_SEEN}) <> 0", f"'\"' || regexp_extract(alltext, {_q(MOJIBAKE)}) || '\"'")
    rules["dialogue_roles"] = (
        "dialogue AND (roles_ua[1] <> 'user' OR list_bool_or(list_transform(range(1, len(roles_ua)), "
        "lambda k: roles_ua[k] = roles_ua[k + 1])) OR list_position(roles, 'system') > 1)",
        "'roles: ' || array_to_string(roles, ' > ')")
    rules["dialogue_empty_turn"] = (
        "dialogue AND list_bool_or(list_transform(messages, lambda m: length(wtrim(coalesce(m.content, ''))) = 0))",
        "'turn ' || (list_position(list_transform(messages, lambda m: length(wtrim(coalesce(m.content, ''))) = 0), true) - 1) || ' is empty'")
    rules["dialogue_last_turn"] = ("dialogue AND len(messages) > 0 AND messages[-1].role <> 'assistant'",
                                   "'last turn is ' || messages[-1].role")
    return {k: (v[0], v[1], v[2] if len(v) > 2 else None) for k, v in rules.items() if getattr(r, k).enabled}


def _samples_cte(materialized: bool = False) -> str:
    """The CTE ``s`` over the batch ``b``: instruction (``ins``) and answer (``o``) as the rules read them (a
    dialogue's user and assistant turns joined), reasoning, all text, roles. ``materialized``: ``s`` is the
    registered table ``s_rows``, this CTE's result made once (:func:`samples_sql`) for the two queries that read it
    (a page's two queries made it twice: 0.3 CPU-s of a 50k real page's 4.8)."""
    if materialized:
        return "s AS (SELECT * FROM s_rows)"
    return f"""s AS (
    SELECT sample_id, __ord, messages, input, system, instruction, messages IS NOT NULL AS dialogue,
           CASE WHEN messages IS NULL THEN coalesce(instruction, '') ELSE {_join_role('user')} END AS ins,
           wtrim(CASE WHEN messages IS NULL THEN coalesce(output, '') ELSE {_join_role('assistant')} END) AS o,
           coalesce(reasoning, nullif(array_to_string(list_filter(list_transform(messages, lambda m: m.reasoning),
                                                                  lambda x: x IS NOT NULL), chr(10)), '')) AS rsn,
           concat_ws(chr(10), system, instruction, input, output, reasoning,
                     array_to_string(list_transform(messages, lambda m: coalesce(m.content, '') || chr(10)
                                                    || coalesce(m.reasoning, '')), chr(10))) AS alltext,
           list_transform(messages, lambda m: m.role) AS roles
    FROM b
)"""


def samples_sql() -> str:
    """The query over the batch ``b`` that makes ``s`` (:func:`_samples_cte`)."""
    return f"WITH {_samples_cte()} SELECT * FROM s"


def samples_table(con) -> pa.Table:  # noqa: ANN001
    """:func:`samples_sql`'s result over the batch ``b`` registered on ``con``, with the ``text_flags`` of each
    sample's text (``alltext``, :func:`curation.text_flags.text_flags`): what to register as ``s_rows``."""
    s = query_arrow(con, samples_sql())
    return s.append_column("text_flags", pa.array(text_flags(s.column("alltext")), pa.uint8()))


def answers_sql(materialized: bool = False) -> str:
    """The query over the batch ``b`` of each answer, lower-cased, and with its code blanked out (what the n-gram
    table reads; the latter is the metrics query's ``o_nocode``, through that table)."""
    return f"WITH {_samples_cte(materialized)} SELECT sample_id, lower(o) AS low, {_NOCODE} AS nocode FROM s"


def ngram_table(answers: pa.Table, rules: QualityRules) -> pa.Table:
    """``ng``: per sample the token count and characters, and Gopher's repetition statistics (NULL where the
    answer is too short to judge, or the rule is off), from :func:`answers_sql`'s result: the answers' tokens
    (``regexp_extract_all(lower(answer), TOKENS)``, made by a compiled loop that tests compare with that SQL: 1.6 s
    of DuckDB's regular expressions for 60k real answers became 0.4 s, and no token strings are built); and the
    line and paragraph repetition figures, mark and bracket counts of the answer without its code
    (:mod:`curation.answer_stats`)."""
    from curation.answer_stats import answer_stats
    from curation.ngram_stats import text_ngram_stats

    ng = rules.ngram_repetition
    off = 1 << 62
    st = text_ngram_stats(answers.column("low"), ng.min_tokens if ng.enabled else off,
                          ng.min_tokens_dup if ng.enabled else off)
    cols = {"sample_id": answers.column("sample_id"), "n_tok": pa.array(st["n_tok"], pa.int64()),
            "tok_chars": pa.array(st["tok_chars"], pa.int64())}
    for k in ("top2", "top3", "top4", "dup5"):
        cols[k] = pa.array(st[k], pa.float64(), from_pandas=True)  # NaN: not judged, NULL in SQL
    lr = rules.line_repetition
    cols.update(answer_stats(answers.column("nocode"), lr.min_line_chars, lr.min_run, lr.min_para_run))
    cols["o_nocode"] = answers.column("nocode")  # what the rules' regular expressions read too: made once
    return pa.table(cols)


def metrics_sql(rules: QualityRules) -> str:
    """The query over ``s_rows`` (:func:`samples_sql`'s result with its ``text_flags``, see :func:`samples_table`)
    and the n-gram table ``ng`` (:func:`ngram_table`) that computes what the rules read."""
    pii = rules.personal_data
    none = "[]::VARCHAR[]"
    # one pass of all number and key patterns tells which texts hold any (few do); the extracts run on those only,
    # not one scan of every text per pattern
    scanned = {"phone": PHONE, "cn_id": CN_ID, "card": CARD_IN_TEXT, "credential": CREDENTIAL}
    # and it runs only on the texts that may hold one (text_flags: a superset, from a pass over the bytes)
    hit = (f"CASE WHEN (text_flags & {NUMBER_OR_KEY}) <> 0 "
           f"THEN regexp_matches(alltext, {_q(_any([p for k, p in scanned.items() if k in pii.kinds]))}) ELSE false END"
           if any(k in pii.kinds for k in scanned) else "false")

    def extract(kind: str, sql: str) -> str:
        return f"CASE WHEN pii_hit THEN {sql} ELSE {none} END AS {kind}"
    pii_cols = ", ".join(
        # contains() is a memchr scan; the regex pass over every text cost as much as the rest of a rule
        [f"CASE WHEN contains(alltext, '@') THEN regexp_extract_all(alltext, {_q(EMAIL)}) ELSE {none} END AS email_cands"
         if "email" in pii.kinds else f"{none} AS email_cands",
         # with up to 16 characters before each number: a hotline is named there
         f"CASE WHEN pii_hit AND regexp_matches(alltext, {_q(PHONE)}) THEN regexp_extract_all(alltext, "
         f"{_q(PHONE_IN_CONTEXT)}) ELSE {none} END AS phone_cands" if "phone" in pii.kinds
         else f"{none} AS phone_cands",
         extract("id_cands", f"regexp_extract_all(alltext, {_q(CN_ID)})") if "cn_id" in pii.kinds else f"{none} AS id_cands",
         extract("card_cands", f"regexp_extract_all(alltext, {_q(CARD_IN_TEXT)}, 1)") if "card" in pii.kinds
         else f"{none} AS card_cands",
         extract("key_cands", f"regexp_extract_all(alltext, {_q(CREDENTIAL)})") if "credential" in pii.kinds
         else f"{none} AS key_cands"]
    )
    return f"""
WITH {_samples_cte(True)}, m0 AS (
    SELECT *, length(o) AS olen, wtrim(ins) AS insw,
           {_count('o', '```')} % 2 = 1 AS fence_open,
           regexp_extract(o, '[^\\n]*$') AS last_line,
           regexp_extract(o, '^[^\\n]*') AS first_line,
           concat_ws(chr(10), system, ins, input) AS given_text, {hit} AS pii_hit,
           list_filter(list_transform(roles, lambda x: CASE WHEN x = 'tool' THEN 'user' ELSE x END), lambda x: x IN ('user', 'assistant')) AS roles_ua
    FROM s JOIN ng USING (sample_id)
), m AS (
    SELECT *,
           len(regexp_extract_all(o, 'https?://\\S+|www\\.\\S+|{EMAIL}')) AS n_url,
           {pii_cols}
    FROM m0
)
SELECT * FROM m
"""


class QualityStep(RowStep):
    """All quality and noise rules in one vectorised pass; decisions per rule and a quality score."""

    type_name = "quality"
    Params = QualityParams

    def __init__(self, name: str | None = None, params: dict | None = None) -> None:
        super().__init__(name, params)
        self.rules = build_rules(self.params.rules)
        self._sql = metrics_sql(self.params.rules)
        # CASE WHEN, not coalesce(condition, false): a CASE condition is evaluated as a filter, where DuckDB skips
        # the rest of an AND for the rows already false (a function argument evaluates every operand on every row)
        conds = ",\n".join(f"CASE WHEN {c} THEN {d} END AS {_rule_col(k)}"
                            + (f", CASE WHEN {c} THEN {strong} ELSE false END AS {_rule_col(k)}_drop"
                               if strong else "")
                            for k, (c, d, strong) in self.rules.items())
        # in the batch's order (__ord), whatever order the threads finish in
        self._sql = (f"SELECT sample_id, email_cands, phone_cands, id_cands, card_cands, key_cands, {conds} "
                     f"FROM ({self._sql}) ORDER BY __ord")
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

    def _disabled(self, batch: pa.Table) -> dict[str, pa.Array]:
        """Rule name -> ids of the samples whose input turns the rule off (``sources``)."""
        if not self.params.sources or "source" not in batch.column_names:
            return {}
        paths = batch.column("source").to_pylist()
        ids = batch.column("sample_id").to_pylist()
        out: dict[str, set[str]] = {}
        for spec in self.params.sources:
            hit = {i for i, p in zip(ids, paths)
                   if p and (fnmatch.fnmatch(p, spec.match) or fnmatch.fnmatch(PurePath(p).name, spec.match))}
            for rule in spec.disable:
                out.setdefault(rule, set()).update(hit)
        return {k: pa.array(sorted(v), pa.string()) for k, v in out.items()}

    def process(self, batch: pa.Table) -> StepOutput:
        disabled = self._disabled(batch)
        con = _connect()
        try:
            cols = batch.select(["sample_id", "instruction", "input", "output", "system", "messages", "reasoning"])
            con.register("b", in_parts(cols, ordinal="__ord"))
            con.register("s_rows", in_parts(samples_table(con)))
            con.register("ng", in_parts(ngram_table(query_arrow(con, answers_sql(True)), self.params.rules)))
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
            if k in disabled:
                hit = pc.and_(hit, pc.invert(pc.is_in(ids, value_set=disabled[k])))
            cnt = int(pc.sum(hit).as_py() or 0)
            if not cnt:
                continue
            rule: Rule = getattr(r, k)
            counters[k] += cnt
            hit_np = hit.to_numpy(zero_copy_only=False)
            verdicts = pa.array([rule.verdict] * cnt, pa.string())
            pen = np.full(cnt, rule.penalty)
            if self.rules[k][2] and rule.verdict == "flag":  # rows where this rule drops rather than flags
                strong = res.column(f"{_rule_col(k)}_drop").combine_chunks().filter(hit).to_numpy(zero_copy_only=False)
                verdicts = pa.array(np.where(strong, "drop", "flag"), pa.string())
                pen = np.where(strong, 1.0, rule.penalty)
                counters[f"{k}_dropped"] += int(strong.sum())
            penalty[hit_np] += pen
            detail = col.filter(hit)
            parts.append(_decisions(ids.filter(hit), verdicts, pc.binary_join_element_wise(
                pa.scalar(DESCRIPTIONS[k]), detail, ": "), pen))
        if r.personal_data.enabled:
            found = personal_data(res)
            if "personal_data" in disabled:
                off = set(disabled["personal_data"].to_pylist())
                found = {i: v for i, v in found.items() if ids[i].as_py() not in off}
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
    # trim() strips spaces only; answers end in newlines and tabs too. These are RE2's \s ([\t\n\f\r ]), which
    # the rules' patterns use; trim() with a character set is a plain scan from both ends, not a regex over the text
    con.execute("CREATE MACRO wtrim(x) AS trim(x, chr(9) || chr(10) || chr(12) || chr(13) || ' ')")
    return con


def _rule_col(name: str) -> str:
    return f"rule_{name}"


def _decisions(ids: pa.Array, verdict: str | pa.Array, reasons: pa.Array, penalty: float | np.ndarray) -> pa.Table:
    n = len(ids)
    verdicts = pa.array([verdict] * n, pa.string()) if isinstance(verdict, str) else verdict
    scores = pa.array(np.broadcast_to(np.asarray(penalty, dtype=np.float64), (n,)), pa.float64())
    return pa.table([ids, verdicts, reasons.cast(pa.string()), pa.nulls(n, pa.string()), scores], schema=DECISION_SCHEMA)
