"""Does a batch look like instruction data? A light check per row, a warning per batch.

A file mapped with ``--map`` can load cleanly and still not be instruction data: e-mails with the subject
as the instruction, a log file, a table dump. Row by row nothing is wrong, so nothing is quarantined;
the batch as a whole is. An instruction "looks like one" when it asks or requests something: a question
mark, a question or request word at its start (what, how, explain, write, list, ...), a request word
anywhere in Chinese (请, 什么, 如何, 解释, 翻译, ...), or an input beside it (the instruction then says what
to do with the input). Dialogues are judged by their first user turn.

:func:`unlike_instruction_share` runs one DuckDB query over a batch's samples; the ingest writes a
warning into the batch's ``problems`` when at least :data:`MIN_ROWS` rows are loaded and at least
:data:`WARN_SHARE` of them do not look like instructions. The run and the report repeat it.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_ROWS = 20
WARN_SHARE = 0.5
WARNING_HEAD = "rows do not look like instruction data"

# an instruction asks or requests: a question mark, a question or request word at its start, Chinese request
# words anywhere (no word boundaries there)
_LEADS = ("what|how|why|when|where|who|whom|which|whose|is|are|am|was|were|do|does|did|can|could|would|should|"
          "will|shall|may|might|have|has|explain|describe|write|list|give|tell|create|generate|summari[sz]e|"
          "translate|classify|rewrite|rephrase|paraphrase|compose|make|find|identify|compare|calculate|compute|"
          "convert|suggest|provide|name|define|design|develop|analy[sz]e|edit|correct|fix|implement|please|help|"
          "imagine|pretend|act|let|show|draft|outline|plan|recommend|evaluate|determine|predict|solve|sort|"
          "categori[sz]e|extract|detect|choose|select|answer|complete|continue|fill|generate|build|construct|"
          "brainstorm|come up|i need|i want|i'd like|i would like|i am|i'm|my|hi|hello|hey|you are|you're|"
          "assume|given|using|based on|from the|in the|for the|if|according")
_ZH = ("请|帮|什么|怎么|怎样|如何|为什么|为何|吗|呢|哪|是否|多少|几|解释|写|列出|列举|翻译|总结|概括|介绍|描述|分析|给出|"
       "生成|判断|回答|抽取|提取|识别|计算|改写|根据|以下|下面|下列|推荐|建议|比较|说明|设计|创作|编写|能否")
LOOKS_LIKE_INSTRUCTION = (
    rf"(?i)[?？]|^\s*(?:\d+[.)]\s*)?(?:{_LEADS})\b|{_ZH}"
)


def instruction_text_sql() -> str:
    """SQL over ``samples``: the text judged (the instruction, or a dialogue's first user turn)."""
    return ("CASE WHEN messages IS NULL THEN coalesce(instruction, '') ELSE coalesce(list_filter(messages, "
            "lambda m: m.role = 'user')[1].content, '') END")


def likeness_sql(alias: str = "") -> str:
    """SQL boolean: the row looks like an instruction (see the module docstring)."""
    a = f"{alias}." if alias else ""
    text = instruction_text_sql().replace("messages", f"{a}messages").replace("instruction", f"{a}instruction")
    return (f"(regexp_matches({text}, '{LOOKS_LIKE_INSTRUCTION.replace(chr(39), chr(39) * 2)}') "
            f"OR length(trim(coalesce({a}input, ''))) > 0)")


@dataclass
class Likeness:
    """How much of a batch looks like instruction data."""

    rows: int
    unlike: int
    examples: list[str]

    @property
    def share(self) -> float:
        return self.unlike / self.rows if self.rows else 0.0

    def warning(self) -> str | None:
        """The batch-level warning, or None when the batch looks like instruction data."""
        if self.rows < MIN_ROWS or self.share < WARN_SHARE:
            return None
        shown = " | ".join(repr(e[:50]) for e in self.examples[:3])
        return (f"warning: {self.share:.0%} of {self.rows:,} {WARNING_HEAD} (no question or request in the "
                f"instruction, e.g. {shown}): is this an e-mail, a log or a table mapped with --map?")


def unlike_instruction_share(con, batch_id: int) -> Likeness:  # noqa: ANN001
    """The rows of one batch's samples that do not look like instructions, with a few examples."""
    looks = likeness_sql()
    rows, unlike = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE NOT {looks}) FROM samples WHERE batch_id = ?", [batch_id]
    ).fetchall()[0]
    examples = [r[0] for r in con.execute(
        f"SELECT {instruction_text_sql()} FROM samples WHERE batch_id = ? AND NOT {looks} ORDER BY row_number LIMIT 3",
        [batch_id]).fetchall()]
    return Likeness(int(rows), int(unlike or 0), examples)


def batch_warnings(store, max_batch_id: int) -> list[tuple[int, str, str]]:  # noqa: ANN001
    """Warnings of the batches up to ``max_batch_id`` (a run's input): (batch id, source name, warning)."""
    with store.reader() as con:
        rows = con.execute(
            "SELECT batch_id, source_name, problems FROM batches WHERE status = 'done' AND batch_id <= ? "
            "AND problems LIKE '%warning: %' ORDER BY batch_id", [max_batch_id]).fetchall()
    return [(int(b), name, part) for b, name, problems in rows for part in problems.split("; ")
            if part.startswith("warning: ")]
