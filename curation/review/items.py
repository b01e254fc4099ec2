"""Review items, backend-neutral: what a reviewer sees, and the labels every backend offers.

Two kinds of item share one interface and the ``reviews`` table:

* ``sample``: a snapshot sample at its pinned text version, judged accept / reject, with an optional
  corrected answer and error categories. Our filters' flags, language and quality score go along as
  hints (a backend shows them as predictions).
* ``answer``: a model answer to rate (the evaluation's human round): the prompt, the answer, which model
  gave it, and the rating questions. Its content lives in the item row's ``payload``.

An item's id is stable (``snapshot:sample:version`` for samples), so a push or a pull can be repeated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from curation.store.store import Store

VERDICTS = ("accept", "reject")
CATEGORIES = ("factual error", "wrong language", "incomplete", "unsafe", "formatting", "duplicate", "other")
# default rating questions of an answer item: name -> (question, choices); choices None = 1..5 stars
RATING_QUESTIONS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "overall": ("Overall quality of the answer", None),
    "correct": ("Is the answer correct?", ("yes", "partly", "no")),
    "language": ("Is it in the language of the question?", ("yes", "no")),
}
# the evaluation's human round (curate eval --human-round): the three dimensions of practice, 1..5 each
EVAL_QUESTIONS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "factual": ("Factual accuracy: is what it says true? (1 = wrong, 5 = fully correct)", None),
    "logic": ("Logical consistency: does it follow from the question and the earlier turns? (1-5)", None),
    "style": ("Style match: length, tone, format and language as the question asks (1-5)", None),
}
#: The preference question of an evaluation's human round: two models' answers to one prompt, models hidden,
#: in an order drawn per item.
PREFERENCE_QUESTIONS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "preferred": ("Which answer is better? (the models are hidden; their order is random)",
                  ("Answer A", "Answer B", "Equally good", "Both bad")),
}


@dataclass
class ReviewItem:
    """One thing to push to a review backend."""

    item_id: str
    kind: str  # "sample" | "answer"
    snapshot_id: int | None = None
    sample_id: str | None = None
    version: int | None = None
    stratum: str | None = None
    # sample content (single-turn fields, or messages for a dialogue)
    instruction: str | None = None
    input: str | None = None
    output: str | None = None
    system: str | None = None
    reasoning: str | None = None
    messages: list[dict] | None = None
    source: str | None = None
    lang: str | None = None
    quality_score: float | None = None
    flags: list[str] = field(default_factory=list)
    cluster_size: int | None = None  # the near-duplicate cluster the sample is in (None: in none)
    # the text's embedding when the store holds one (a semantic dedup step cached it), and its model
    embedding: list[float] | None = None
    embedding_model: str | None = None
    # answer content
    payload: dict | None = None


def sample_items(store: Store, snapshot_id: int, item_ids: list[str] | None = None) -> list[ReviewItem]:
    """The pending sample items of a snapshot (or the given ones), with the text at their pinned version."""
    from curation.snapshots.core import get_snapshot

    snap = get_snapshot(store, snapshot_id)
    with store.reader() as con:
        rows = con.execute(
            """WITH it AS (SELECT item_id, sample_id, version, stratum FROM reviews
                           WHERE snapshot_id = $snap AND item_kind = 'sample' AND status = 'pending'
                             AND ($ids IS NULL OR item_id IN (SELECT unnest($ids))))
               SELECT it.item_id, it.sample_id, it.version, it.stratum, t.source, t.instruction, t.input, t.output,
                      t.system, t.reasoning, to_json(t.messages), g.lang, g.quality, f.flags, g.cluster,
                      e.vector, e.model
               FROM it JOIN snapshot_texts($snap) t ON t.sample_id = it.sample_id AND t.version = it.version
               LEFT JOIN (SELECT content_hash, arg_max(vector, created_at) AS vector, arg_max(model, created_at) AS model
                          FROM embeddings WHERE model = (SELECT model FROM embeddings GROUP BY model
                                                         ORDER BY max(created_at) DESC, model LIMIT 1)
                          GROUP BY content_hash) e ON e.content_hash = t.content_hash
               LEFT JOIN (SELECT sample_id, any_value(text) FILTER (WHERE name = 'lang') AS lang,
                                 max(value) FILTER (WHERE name = 'quality_score') AS quality,
                                 max(value) FILTER (WHERE name = 'near_dup_cluster') AS cluster
                          FROM signals WHERE run_id = $run AND name IN ('lang', 'quality_score', 'near_dup_cluster')
                          GROUP BY sample_id) g ON g.sample_id = it.sample_id
               LEFT JOIN (SELECT sample_id, list(step || ': ' || reason ORDER BY step, reason) AS flags
                          FROM decisions WHERE run_id = $run AND verdict = 'flag' GROUP BY sample_id) f
                      ON f.sample_id = it.sample_id
               ORDER BY it.item_id""",
            {"snap": snapshot_id, "run": snap.run_id, "ids": item_ids}).fetchall()
    return [ReviewItem(item_id=r[0], kind="sample", snapshot_id=snapshot_id, sample_id=r[1], version=r[2], stratum=r[3],
                       source=r[4], instruction=r[5], input=r[6], output=r[7], system=r[8], reasoning=r[9],
                       messages=json.loads(r[10]) if r[10] else None, lang=r[11], quality_score=r[12],
                       flags=list(r[13] or []), cluster_size=int(r[14]) if r[14] is not None else None,
                       embedding=list(r[15]) if r[15] is not None else None, embedding_model=r[16]) for r in rows]


def answer_items(store: Store, round_name: str) -> list[ReviewItem]:
    """The pending answer items of a rating round (added by :func:`curation.review.verdicts.add_answer_items`)."""
    with store.reader() as con:
        rows = con.execute("""SELECT item_id, payload FROM reviews WHERE item_kind = 'answer' AND status = 'pending'
                              AND stratum = ? ORDER BY item_id""", [round_name]).fetchall()
    return [ReviewItem(item_id=i, kind="answer", stratum=round_name, payload=json.loads(p)) for i, p in rows]
