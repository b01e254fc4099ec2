"""A scripted reviewer: a script, not a person, that answers review items through the review tool's own API.

The README's main command (``curate demo``) shows the whole product on the bundled sample, whose planted
problems are known (``data/sample/truth.json``). Nobody is there to review, so a script plays the reviewer:
it rejects a drawn sample when the sample carries a planted problem that curation let through, and accepts
the others. It is never mistaken for people:

* its account is :data:`SCRIPTED_REVIEWER`, an address in the ``.invalid`` domain (reserved, RFC 2606: it
  can never be a person's e-mail), named "Scripted reviewer (not a person)" in the review tool;
* its verdicts go through the review tool like anyone's and land in the ``reviews`` table under that name;
* an exported snapshot's manifest lists the reviewers its certification rests on, each with ``scripted``
  true or false (:func:`reviewer_counts`), and the demo's output says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from curation.store.store import Store

SCRIPTED_REVIEWER = "scripted-reviewer@llm-curate.invalid"
SCRIPTED_NAME = "Scripted reviewer (not a person)"

# a planted problem -> the error category a careful reviewer would tick
CATEGORY_OF = {
    "exact_duplicate": "duplicate", "near_duplicate": "duplicate", "wrong_language": "wrong language",
    "answer_language_mismatch": "wrong language", "personal_data": "unsafe", "empty_output": "incomplete",
    "truncated_output": "incomplete", "unclosed_think": "formatting", "boilerplate": "other",
}


def is_scripted(reviewer: str | None) -> bool:
    """Whether ``reviewer`` is a scripted reviewer (an address in the reserved ``.invalid`` domain)."""
    return bool(reviewer) and (reviewer == SCRIPTED_REVIEWER or str(reviewer).lower().endswith(".invalid"))


@dataclass(frozen=True)
class Judgement:
    """What the scripted reviewer says of one sample."""

    verdict: str  # accept | reject
    categories: tuple[str, ...] = ()
    why: str = ""


def planted_problems(store: Store, truth: dict) -> dict[str, Judgement]:
    """Sample id -> a rejection, for every sample of ``store`` a careful reviewer of the kept set would reject,
    from the planted truth of the bundled sample (``truth.json``): a planted problem, or a planted copy whose
    twin is kept too. Control characters are left out: cleaning repairs them, so what a reviewer sees is fine."""
    with store.reader() as con:
        ids = {(Path(src).name, n): sid for sid, src, n in
               con.execute("SELECT sample_id, source, row_number FROM samples").fetchall()}
        kept = {r[0] for r in con.execute("SELECT sample_id FROM kept").fetchall()}
    bad: dict[str, Judgement] = {}
    for p in truth.get("planted", []):
        sid = ids.get((p["file"], p["row_number"]))
        problem = p["problem"]
        if sid is None or problem == "control_characters":
            continue
        if problem in ("exact_duplicate", "near_duplicate") and ids.get((p["file"], p["duplicate_of"])) not in kept:
            continue  # a copy is wrong only while its twin is kept too
        bad[sid] = Judgement("reject", (CATEGORY_OF.get(problem, "other"),), f"planted: {problem}")
    return bad


def judge_items(items: list, bad: dict[str, Judgement]) -> dict[str, Judgement]:  # noqa: ANN001 (ReviewItem)
    """Item id -> the scripted reviewer's judgement, for sample items (``ReviewItem``)."""
    accept = Judgement("accept", (), "no planted problem")
    return {it.item_id: bad.get(it.sample_id, accept) for it in items}


def answer(backend, key, items: list, judgements: dict[str, Judgement], progress=None) -> dict:  # noqa: ANN001
    """Submit the scripted reviewer's verdicts on ``items`` through ``backend``'s API (as its own account),
    skipping items it has already answered; returns counts."""
    done = backend.annotate(key, "sample", SCRIPTED_REVIEWER, SCRIPTED_NAME,
                            {it.item_id: judgements[it.item_id] for it in items}, progress=progress)
    rejected = sum(1 for it in items if judgements[it.item_id].verdict == "reject")
    return {"reviewer": SCRIPTED_REVIEWER, "answered": done, "items": len(items), "rejected": rejected,
            "accepted": len(items) - rejected}


def reviewer_counts(store: Store, snapshot_ids: list[int]) -> list[dict]:
    """Per reviewer of the given snapshots' sample reviews: submitted verdicts, and whether a script gave them."""
    if not snapshot_ids:
        return []
    with store.reader() as con:
        rows = con.execute(
            """SELECT reviewer, count(*) FROM reviews
               WHERE item_kind = 'sample' AND status = 'submitted' AND list_contains(?, snapshot_id)
               GROUP BY 1 ORDER BY 1""", [list(snapshot_ids)]).fetchall()
    return [{"reviewer": r, "reviews": int(n), "scripted": is_scripted(r)} for r, n in rows]
