"""From an exported snapshot to token ids and labels: the base model's own chat template, loss on the
assistant's tokens only.

- An alpaca row is a user turn (instruction, then input after a blank line) and an assistant turn, after
  the system prompt when it has one. A dialogue keeps all its turns, and every assistant turn is trained.
- R1 reasoning: ``reasoning="keep"`` puts ``<think>...</think>`` before the trained answer (distillation),
  ``"drop"`` trains the answer alone; the reasoning of earlier assistant turns is always removed, as the R1
  chat template does.
- Labels are ``-100`` outside the assistant's turns. The spans come from rendering the conversation up to
  each assistant turn with the generation prompt (where the answer starts) and up to the end of that turn
  (where it ends, its end-of-turn token included, so that the model learns to stop); a template whose
  rendering of a prefix is not a prefix of the whole is refused rather than guessed at.
- A sample over ``max_seq_length`` is truncated (its assistant tokens past the limit are lost) or skipped,
  and counted either way; a truncated sample with no assistant token left is skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from curation.errors import UsageError
from schemas.manifest import SnapshotManifest

IGNORE_INDEX = -100


@dataclass
class ExportData:
    """An export folder's manifest and its train / eval rows (dicts as in ``train.jsonl``)."""

    path: Path
    manifest: SnapshotManifest
    train: list[dict]
    eval: list[dict]


def load_export(folder: Path) -> ExportData:
    """Read ``manifest.json`` and the Parquet splits of an export folder (``curate snapshot export``)."""
    folder = Path(folder)
    mf = folder / "manifest.json"
    if not mf.is_file():
        raise UsageError(f"{folder}: no manifest.json; export the snapshot first (curate snapshot export ID)")
    manifest = SnapshotManifest.model_validate_json(mf.read_text(encoding="utf-8"))
    splits = {}
    for name in ("train", "eval"):
        part = folder / getattr(manifest.files, name).parquet
        if not part.is_file():
            raise UsageError(f"{folder}: {part.name}, named by manifest.json, is missing")
        splits[name] = pq.read_table(part).to_pylist()
    return ExportData(folder, manifest, splits["train"], splits["eval"])


def _with_reasoning(answer: str, reasoning: str | None, keep: bool) -> str:
    if keep and reasoning:
        return f"<think>\n{reasoning.strip()}\n</think>\n\n{answer}"
    return answer


def to_messages(row: dict, reasoning: str = "keep") -> list[dict[str, str]]:
    """The chat messages of one exported row (see the module docstring)."""
    keep = reasoning == "keep"
    out: list[dict[str, str]] = []
    if row.get("messages"):
        turns = [m for m in row["messages"] if m.get("role") in ("system", "user", "assistant", "tool")]
        last_assistant = max((k for k, m in enumerate(turns) if m["role"] == "assistant"), default=-1)
        for k, m in enumerate(turns):
            content = m.get("content") or ""
            if m["role"] == "assistant":
                content = _with_reasoning(content, m.get("reasoning") or (row.get("reasoning") if k == last_assistant else None),
                                          keep and k == last_assistant)
            out.append({"role": m["role"], "content": content})
        if row.get("system") and not any(m["role"] == "system" for m in out):
            out.insert(0, {"role": "system", "content": row["system"]})
        return out
    if row.get("system"):
        out.append({"role": "system", "content": row["system"]})
    user = row.get("instruction") or ""
    if row.get("input"):
        user = f"{user}\n\n{row['input']}" if user else row["input"]
    out.append({"role": "user", "content": user})
    out.append({"role": "assistant", "content": _with_reasoning(row.get("output") or "", row.get("reasoning"), keep)})
    return out


@dataclass
class Example:
    """One tokenised sample: ids, labels (IGNORE_INDEX outside the assistant's tokens), and what happened to it."""

    sample_id: str
    input_ids: list[int]
    labels: list[int]
    truncated: bool = False

    @property
    def trained_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE_INDEX)


@dataclass
class TokenizeReport:
    """Counts over a split: kept, truncated, skipped (too long, or nothing to train on), tokens."""

    samples: int = 0
    kept: int = 0
    truncated: int = 0
    skipped_too_long: int = 0
    skipped_no_answer: int = 0
    tokens: int = 0
    trained_tokens: int = 0
    longest: int = 0
    skipped_ids: list[str] = field(default_factory=list)


def _render(tokenizer, messages: list[dict], generation_prompt: bool) -> list[int]:  # noqa: ANN001
    ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=generation_prompt)
    if isinstance(ids, dict) or hasattr(ids, "keys"):  # transformers 5 returns a BatchEncoding
        ids = ids["input_ids"]
    return list(ids)


def tokenize_messages(tokenizer, messages: list[dict]) -> tuple[list[int], list[int]]:  # noqa: ANN001
    """(input_ids, labels) of a conversation: labels are the ids inside the assistant turns, IGNORE_INDEX elsewhere."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise UsageError("the tokenizer has no chat template: the base model must ship one (tokenizer_config.json)")
    ids = _render(tokenizer, messages, False)
    labels = [IGNORE_INDEX] * len(ids)
    for k, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        start = len(_render(tokenizer, messages[:k], True))
        end_ids = _render(tokenizer, messages[: k + 1], False)
        if end_ids != ids[: len(end_ids)] or start > len(end_ids):
            raise UsageError("the chat template renders a conversation's beginning differently from the whole "
                             "conversation, so the assistant's tokens cannot be found; use a template without "
                             "history rewriting, or reasoning='drop'")
        labels[start:len(end_ids)] = ids[start:len(end_ids)]
    return ids, labels


def tokenize_rows(tokenizer, rows: list[dict], max_seq_length: int, too_long: str = "truncate",  # noqa: ANN001
                  reasoning: str = "keep") -> tuple[list[Example], TokenizeReport]:
    """Every row as an :class:`Example`, with the counts of what was truncated or skipped."""
    report = TokenizeReport()
    out: list[Example] = []
    for row in rows:
        report.samples += 1
        sid = str(row.get("sample_id", report.samples))
        ids, labels = tokenize_messages(tokenizer, to_messages(row, reasoning))
        report.longest = max(report.longest, len(ids))
        truncated = len(ids) > max_seq_length
        if truncated:
            if too_long == "skip":
                report.skipped_too_long += 1
                report.skipped_ids.append(sid)
                continue
            ids, labels = ids[:max_seq_length], labels[:max_seq_length]
        ex = Example(sid, ids, labels, truncated)
        if not ex.trained_tokens:
            report.skipped_no_answer += 1
            report.skipped_ids.append(sid)
            continue
        report.truncated += truncated
        report.kept += 1
        report.tokens += len(ids)
        report.trained_tokens += ex.trained_tokens
        out.append(ex)
    return out, report


def report_json(report: TokenizeReport) -> str:
    """The report as JSON (skipped ids capped at 100)."""
    d = dict(report.__dict__)
    d["skipped_ids"] = d["skipped_ids"][:100]
    return json.dumps(d)


@dataclass
class Packed:
    """Several examples in one sequence: ``position_ids`` restart at 0 for each, which is how transformers
    tells packed samples apart (with no attention mask, each sample attends only to itself)."""

    sample_ids: list[str]
    input_ids: list[int]
    labels: list[int]
    position_ids: list[int]


def pack(examples: list[Example], max_seq_length: int) -> list[Packed]:
    """Pack examples into sequences of at most ``max_seq_length`` tokens, best fit by decreasing length.

    Each example stays whole and in one sequence; the first token of each keeps no label, so that no sample
    is trained to predict the start of the next one.
    """
    import bisect

    order = sorted(range(len(examples)), key=lambda k: (-len(examples[k].input_ids), k))
    bins: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (room left, bin index), sorted
    for k in order:
        n = len(examples[k].input_ids)
        at = bisect.bisect_left(free, (n, -1))
        if at < len(free):
            room, b = free.pop(at)
            bins[b].append(k)
            bisect.insort(free, (room - n, b))
        else:
            bins.append([k])
            bisect.insort(free, (max_seq_length - n, len(bins) - 1))
    out = []
    for members in bins:
        members.sort()  # sample order inside a sequence, stable across runs
        p = Packed([], [], [], [])
        for k in members:
            e = examples[k]
            p.sample_ids.append(e.sample_id)
            p.input_ids += e.input_ids
            p.labels += [IGNORE_INDEX] + e.labels[1:]
            p.position_ids += list(range(len(e.input_ids)))
        out.append(p)
    out.sort(key=lambda p: min(p.sample_ids))  # a fixed order; the Trainer's sampler shuffles anyway
    return out
