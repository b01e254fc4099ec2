"""The near-duplicate benchmark's corpus: real sentences (UDHR in English and Chinese, STS-B) made into
documents, with planted near copies at known edit rates, so that the truth is known.

Used by ``bench_near_dedup.py``: ``generate`` writes the scored corpus, ``generate_rows`` the JSONL for the
pipeline run.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

EDIT_RATES = (0.0, 0.05, 0.10, 0.15)
COPY_SHARE = 0.3


def pools() -> dict:
    """Sentence pools and edit vocabularies: English (UDHR + STS-B sentences), Chinese (UDHR clauses)."""
    import regex
    from corpora import stsb_pairs, udhr_paragraphs

    en: list[str] = []
    for p in udhr_paragraphs("en"):
        en.extend(s for s in regex.split(r"(?<=[.;:])\s+", p) if len(s.split()) >= 3)
    for split in ("train", "dev", "test"):
        for s1, s2, _ in stsb_pairs(split):
            en.extend(s.strip() for s in (s1, s2) if len(s.split()) >= 3)
    en = list(dict.fromkeys(en))
    zh_text = "".join(udhr_paragraphs("zh"))
    zh = [c for c in regex.split(r"(?<=[，。；：、！？,;:])", zh_text) if len(c) >= 2]
    zh = list(dict.fromkeys(zh))
    en_vocab = sorted({w for s in en for w in s.split()})
    zh_vocab = sorted(set(regex.findall(r"\p{Han}", zh_text)))
    return {"en": en, "zh": zh, "en_vocab": en_vocab, "zh_vocab": zh_vocab}


def base_doc(lang: str, pool: dict, rng: random.Random, short: bool = False) -> str:
    """A document of random sentences: 50-150 words (English) or 80-250 characters (Chinese)."""
    if lang == "en":
        target = rng.randint(30, 100) if short else rng.randint(50, 150)
        words: list[str] = []
        while len(words) < target:
            words.extend(rng.choice(pool["en"]).split())
        return " ".join(words[:target])
    target = rng.randint(60, 200) if short else rng.randint(80, 250)
    text = ""
    while len(text) < target:
        text += rng.choice(pool["zh"])
    return text[:target]


def edit(text: str, lang: str, rate: float, pool: dict, rng: random.Random) -> str:
    """``round(rate * len)`` random substitutions / insertions / deletions of words (en) or characters (zh)."""
    toks = text.split() if lang == "en" else list(text)
    vocab = pool["en_vocab"] if lang == "en" else pool["zh_vocab"]
    for _ in range(round(rate * len(toks))):
        op, pos = rng.randrange(3), rng.randrange(len(toks))
        if op == 0:
            toks[pos] = rng.choice(vocab)
        elif op == 1:
            toks.insert(pos, rng.choice(vocab))
        elif len(toks) > 1:
            del toks[pos]
    return (" " if lang == "en" else "").join(toks)


def generate(path: Path, n: int, seed: int) -> None:
    """``n`` documents, half English half Chinese, 30% of each planted copies; Parquet (text, lang, group, rate)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pool = pools()
    rng = random.Random(seed)
    rows: list[
        tuple[str, str, int, float]
    ] = []  # text, lang, group (base id), rate (-1 = the base)
    gid = 0
    for lang, n_lang in (("en", n // 2), ("zh", n - n // 2)):
        n_copies = round(COPY_SHARE * n_lang)
        bases = [base_doc(lang, pool, rng) for _ in range(n_lang - n_copies)]
        rows.extend((t, lang, gid + i, -1.0) for i, t in enumerate(bases))
        for _ in range(n_copies):
            b = rng.randrange(len(bases))
            rate = rng.choice(EDIT_RATES)
            rows.append((edit(bases[b], lang, rate, pool, rng), lang, gid + b, rate))
        gid += len(bases)
    rng.shuffle(rows)
    text, lang, group, rate = zip(*rows)
    pq.write_table(
        pa.table(
            {
                "text": pa.array(text, pa.string()),
                "lang": pa.array(lang, pa.string()),
                "group": pa.array(group, pa.int64()),
                "rate": pa.array(rate, pa.float64()),
            }
        ),
        path,
    )


def generate_rows(path: Path, n: int, seed: int) -> None:
    """JSONL for the 1M pipeline run: alpaca rows of recycled text, 20% near copies (0/5/10% edits)."""
    pool = pools()
    rng = random.Random(seed)
    originals: list[tuple[str, str, str]] = []
    copies = 0
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            if originals and rng.random() < 0.2:
                lang, ins, out = rng.choice(originals)
                out = edit(out, lang, rng.choice((0.0, 0.05, 0.10)), pool, rng)
                copies += 1
            else:
                lang = "en" if rng.random() < 0.5 else "zh"
                ins = rng.choice(pool[lang]) + (
                    f" #{i}" if lang == "en" else f"（{i}）"
                )
                out = base_doc(lang, pool, rng, short=True)
                if len(originals) < 100_000:
                    originals.append((lang, ins, out))
            f.write(
                json.dumps(
                    {"instruction": ins, "input": "", "output": out}, ensure_ascii=False
                )
                + "\n"
            )
    print(json.dumps({"copies": copies}))
