"""Label Studio labeling configs and the mapping between our review items and its tasks / annotations.

Kept apart from the client so the mapping is testable without a server and the client stays thin.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from curation.review.items import CATEGORIES, RATING_QUESTIONS, VERDICTS, ReviewItem

MODEL_VERSION = "llm-curate filters"


def sample_config() -> str:
    """Labeling config of a sample item: the sample, reasoning collapsed, our hints; verdict (required),
    error categories, an optional corrected answer."""
    verdicts = "".join(f"<Choice value={quoteattr(v)}/>" for v in VERDICTS)
    cats = "".join(f"<Choice value={quoteattr(c)}/>" for c in CATEGORIES)
    return f"""<View>
  <Style>.lc-box {{ padding: 8px 12px; margin-bottom: 8px; border-left: 3px solid #ccc; white-space: pre-wrap; }}</Style>
  <Header value="Instruction" size="5"/>
  <View className="lc-box"><Text name="instruction" value="$instruction" granularity="word"/></View>
  <Header value="Input" size="6"/>
  <View className="lc-box"><Text name="input" value="$input"/></View>
  <Header value="Dialogue turns" size="6"/>
  <Paragraphs name="dialogue" value="$messages" layout="dialogue" nameKey="role" textKey="content"/>
  <Collapse>
    <Panel value="Reasoning trace (open to read)">
      <Text name="reasoning" value="$reasoning"/>
    </Panel>
  </Collapse>
  <Header value="Answer" size="5"/>
  <View className="lc-box"><Text name="output" value="$output"/></View>
  <Header value="What our filters noticed" size="6"/>
  <Text name="hints" value="$hints"/>
  <Header value="Verdict" size="5"/>
  <Choices name="verdict" toName="output" choice="single-radio" required="true" showInline="true">{verdicts}</Choices>
  <Header value="Error categories (when rejecting)" size="6"/>
  <Choices name="categories" toName="output" choice="multiple" showInline="true">{cats}</Choices>
  <Header value="Corrected answer (optional)" size="6"/>
  <TextArea name="corrected_output" toName="output" rows="6" maxSubmissions="1" editable="true"/>
  <Header value="Curation filters' view (pre-filled; the verdict is yours)" size="6"/>
  <TextArea name="filter_notes" toName="output" rows="3" maxSubmissions="1" editable="true"/>
</View>"""


def rating_config(questions: dict[str, tuple[str, tuple[str, ...] | None]] | None = None) -> str:
    """Labeling config of an answer item: the prompt, the answer and the rating questions (all required)."""
    parts = []
    for name, (question, choices) in (questions or RATING_QUESTIONS).items():  # choices: a tuple, or a list from JSON
        parts.append(f"  <Header value={quoteattr(question)} size=\"6\"/>")
        if choices is None:
            parts.append(f"  <Rating name={quoteattr(name)} toName=\"answer\" maxRating=\"5\" required=\"true\"/>")
        else:
            opts = "".join(f"<Choice value={quoteattr(c)}/>" for c in choices)
            parts.append(f"  <Choices name={quoteattr(name)} toName=\"answer\" choice=\"single-radio\" required=\"true\" "
                         f"showInline=\"true\">{opts}</Choices>")
    body = "\n".join(parts)
    return f"""<View>
  <Header value="Prompt" size="5"/>
  <Text name="prompt" value="$prompt"/>
  <Header value="Answer" size="5"/>
  <Text name="model" value="$model"/>
  <Text name="answer" value="$answer"/>
{body}
  <Header value="Comment (optional)" size="6"/>
  <TextArea name="comment" toName="answer" rows="3" maxSubmissions="1"/>
</View>"""


def _hints(item: ReviewItem) -> str:
    parts = [f"source: {item.source}", f"language: {item.lang or 'und'}"]
    if item.quality_score is not None:
        parts.append(f"quality score: {item.quality_score:.2f}")
    parts += [f"flag: {f}" for f in item.flags]
    return "\n".join(parts)


def task_of(item: ReviewItem) -> dict:
    """The Label Studio task of an item: ``data`` (with our ``item_id``) and our filters' view as a prediction."""
    if item.kind == "answer":
        p = item.payload or {}
        return {"data": {"item_id": item.item_id, "prompt": p.get("prompt", ""), "answer": p.get("answer", ""),
                         "model": f"model: {p.get('model') or 'unnamed'}"}}
    messages = [{"role": m.get("role", "?"), "content": m.get("content") or ""} for m in (item.messages or [])]
    data = {"item_id": item.item_id, "sample_id": item.sample_id, "version": item.version,
            "instruction": item.instruction or "", "input": item.input or "", "output": item.output or "",
            "reasoning": item.reasoning or "(none)", "messages": messages, "hints": _hints(item)}
    # The filters' view is a prediction of a notes field, never of the verdict: a pre-filled verdict would
    # satisfy `required` and let a reviewer submit without deciding.
    suggestion = "reject (flagged)" if item.flags else "accept (nothing flagged)"
    notes = f"suggestion: {suggestion}\n{_hints(item)}"
    prediction = {"model_version": MODEL_VERSION,
                  "result": [{"from_name": "filter_notes", "to_name": "output", "type": "textarea",
                              "value": {"text": [notes]}}]}
    if item.quality_score is not None:
        prediction["score"] = float(item.quality_score)
    return {"data": data, "predictions": [prediction]}


def _value(result: list[dict], name: str) -> dict | None:
    for r in result or []:
        if r.get("from_name") == name:
            return r.get("value") or {}
    return None


def annotation_of(verdict: str, categories: tuple[str, ...] | list[str] = (), corrected: str | None = None) -> list[dict]:
    """The ``result`` of a Label Studio annotation giving ``verdict`` (the inverse of :func:`verdict_of`)."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, not {verdict!r}")
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown:
        raise ValueError(f"unknown error categories {unknown}; known: {CATEGORIES}")
    result = [{"from_name": "verdict", "to_name": "output", "type": "choices", "value": {"choices": [verdict]}}]
    if categories:
        result.append({"from_name": "categories", "to_name": "output", "type": "choices",
                       "value": {"choices": list(categories)}})
    if corrected:
        result.append({"from_name": "corrected_output", "to_name": "output", "type": "textarea",
                       "value": {"text": [corrected]}})
    return result


def verdict_of(item_id: str, kind: str, annotation: dict, reviewer: str) -> dict | None:
    """Our verdict dict from one Label Studio annotation; None for a cancelled (skipped) or empty one."""
    if annotation.get("was_cancelled"):
        return None
    result = annotation.get("result") or []
    out = {"item_id": item_id, "reviewer": reviewer, "backend_record_id": annotation.get("id"),
           "submitted_at": annotation.get("updated_at") or annotation.get("created_at")}
    if kind == "answer":
        ratings = {}
        for r in result:
            v = r.get("value") or {}
            name = r.get("from_name")
            if "rating" in v:
                ratings[name] = v["rating"]
            elif v.get("choices"):
                ratings[name] = v["choices"][0]
            elif v.get("text"):
                ratings[name] = "\n".join(v["text"])
        return {**out, "ratings": ratings} if ratings else None
    verdict = (_value(result, "verdict") or {}).get("choices") or []
    if not verdict:
        return None
    corrected = (_value(result, "corrected_output") or {}).get("text") or []
    return {**out, "verdict": verdict[0], "categories": list((_value(result, "categories") or {}).get("choices") or []),
            "corrected_output": "\n".join(corrected).strip() or None}
