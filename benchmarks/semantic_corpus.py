"""The semantic benchmark's texts: the bundled sample's instructions and answers, STS-B sentences, and
rows for the step run with planted paraphrase copies (an answer sentence swapped for one STS-B scores >= 4).

Used by ``bench_semantic.py``.
"""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

STSB_POSITIVE = 4.0  # STS-B pairs scoring at least this are paraphrases
ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = ROOT / "data" / "sample"


def _join(*parts) -> str:
    return "\n".join(p for p in parts if isinstance(p, str) and p.strip())


def bundled_samples() -> tuple[list[str], list[str]]:
    """(texts, instructions) of every readable sample in data/sample (malformed lines are skipped)."""
    texts: list[str] = []
    instructions: list[str] = []

    def add_alpaca(row: dict) -> None:
        if not isinstance(row, dict):
            return
        texts.append(_join(row.get("system"), row.get("instruction"), row.get("input"), row.get("output")))
        if isinstance(row.get("instruction"), str) and row["instruction"].strip():
            instructions.append(row["instruction"].strip())

    def add_turns(turns, content_key: str, role_key: str) -> None:
        if not isinstance(turns, list):
            return
        parts = [t.get(content_key) for t in turns if isinstance(t, dict)]
        texts.append(_join(*parts))
        for t in turns:
            if isinstance(t, dict) and t.get(role_key) in ("user", "human") and isinstance(t.get(content_key), str):
                instructions.append(t[content_key].strip())

    for line in (SAMPLE_DIR / "instructions.jsonl").read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            add_alpaca(json.loads(line, strict=False))
        except ValueError:
            continue
    for line in (SAMPLE_DIR / "dialogues_sharegpt.jsonl").read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line, strict=False)
        except ValueError:
            continue
        if isinstance(row, dict):
            add_turns(row.get("conversations"), "value", "from")
    try:
        rows = json.loads((SAMPLE_DIR / "messages_openai.json").read_text(encoding="utf-8"), strict=False)
    except ValueError:
        rows = []
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict):
            add_turns(row.get("messages"), "content", "role")
    raw = (SAMPLE_DIR / "instructions_gb18030.csv").read_bytes().decode("gb18030", errors="replace")
    for row in csv.DictReader(io.StringIO(raw)):
        add_alpaca(row)
    texts = list(dict.fromkeys(t for t in texts if t))
    return texts, list(dict.fromkeys(i for i in instructions if i))


def stsb_sentences() -> list[str]:
    from corpora import stsb_pairs

    out: list[str] = []
    for split in ("train", "dev", "test"):
        for s1, s2, _ in stsb_pairs(split):
            out.extend(s.strip() for s in (s1, s2) if len(s.split()) >= 3)
    return list(dict.fromkeys(out))


def composed(rng: random.Random, instructions: list[str], sentences: list[str]) -> tuple[str, list[str]]:
    """(instruction, answer sentences): a bundled instruction or an STS-B sentence; 2-4 STS-B sentences."""
    ins = rng.choice(instructions) if rng.random() < 0.5 else rng.choice(sentences)
    return ins, [rng.choice(sentences) for _ in range(rng.randint(2, 4))]


def build_texts(path: Path, n_first: int, n: int, seed: int) -> dict:
    """``n`` distinct texts, JSON list at ``path``. The first ``max(n_first, bundled)``: every bundled sample and
    composed samples, shuffled (the throughput set); the rest short composed samples (an instruction and one
    STS-B sentence: the ANN part's extra texts, short so that tens of thousands encode in minutes on a CPU)."""
    rng = random.Random(seed)
    bundled, instructions = bundled_samples()
    sentences = stsb_sentences()
    texts = bundled[:n]
    seen = set(texts)
    while len(texts) < n:
        ins, answer = composed(rng, instructions, sentences)
        t = ins + "\n" + (" ".join(answer) if len(texts) < n_first else answer[0])
        if t not in seen:
            seen.add(t)
            texts.append(t)
    n_head = min(n, max(n_first, len(bundled)))
    head = texts[:n_head]
    rng.shuffle(head)
    texts[:n_head] = head
    path.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    first = texts[:n_first]
    return {"n": len(texts), "bundled": min(len(bundled), n), "avg_chars_first": sum(map(len, first)) / max(1, len(first)),
            "avg_chars_rest": sum(map(len, texts[n_first:])) / max(1, len(texts) - n_first)}


def generate_rows(path: Path, n: int, seed: int) -> dict:
    """JSONL for the step run: composed alpaca rows; 10% are an earlier row again with one answer sentence
    swapped for a sentence that STS-B scores >= 4 against it (or, where none has one, the sentences reordered)."""
    from corpora import stsb_pairs

    rng = random.Random(seed)
    _, instructions = bundled_samples()
    sentences = stsb_sentences()
    para: dict[str, list[str]] = {}
    for split in ("train", "dev", "test"):
        for s1, s2, score in stsb_pairs(split):
            if score >= STSB_POSITIVE and s1.strip() != s2.strip():
                para.setdefault(s1.strip(), []).append(s2.strip())
                para.setdefault(s2.strip(), []).append(s1.strip())
    rows: list[tuple[str, list[str]]] = []
    copies = 0
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(n):
            if rows and rng.random() < 0.1:
                ins, answer = rng.choice(rows)
                answer = list(answer)
                swappable = [k for k, s in enumerate(answer) if s in para]
                if swappable:
                    k = rng.choice(swappable)
                    answer[k] = rng.choice(para[answer[k]])
                else:
                    rng.shuffle(answer)
                copies += 1
            else:
                ins, answer = composed(rng, instructions, sentences)
                rows.append((ins, answer))
            f.write(json.dumps({"instruction": ins, "input": "", "output": " ".join(answer)}, ensure_ascii=False) + "\n")
    return {"rows": n, "copies": copies}
