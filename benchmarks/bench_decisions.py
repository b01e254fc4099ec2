#!/usr/bin/env python3
"""Decisions benchmark: precision of the default pipeline's drops and flags on real data judged by reviewers,
and its recall on planted problems.

**Real data** (``benchmarks/audit/samples.jsonl``, 1,726 samples, see ``audit/build_audit_set.py``):
ShareGPT conversations (English and whatever else users wrote in, dialogues included), Chinese legal
QA and Chinese general QA. ``audit/labels.jsonl`` holds a reviewer's judgement of each sample (by the
written guide ``audit/GUIDE.md``; model-based reviewers, not people: see the README), made
before any rule was tuned on it: ``expected`` (keep / flag / drop), the ``problems`` present (a fixed
vocabulary, :data:`KINDS`), a verdict ("right" / "wrong") on each decision the pipeline made at
labelling time (``decisions``: rule -> the verdict it had and the judgement) and, for dedup drops, on
the pair (dropped sample, kept copy), with a note.

A decision is judged by its human verdict when one exists. A decision the labels do not cover (a rule
changed since) is judged by the sample's labels: a flag is right when the sample has a problem of the
rule's kind (:data:`RULE_KINDS`), a drop when it also is labelled ``drop``; a dedup drop of an unjudged
pair counts as wrong and is listed, to be judged and added to the labels.

**Planted problems** (recall): copies of samples labelled ``keep`` with one problem planted each
(:func:`plant`, fixed seed): answers in 12 other languages (real text: chatterbot-corpus's per-language
conversations, a PyPI wheel fetched into the cache), missing-input apologies, AI boilerplate alone and as
a preface, placeholder inputs, answers cut at the start and at the end (at a word, in a line of prose),
refusals, loops, personal data, markup, bytes lost in decoding (U+FFFD), empty answers, exact and near copies (English and Chinese). They run in a
second store together with the real samples (so dedup has the originals); a planted problem is caught
when a rule of its kind fires on it (a drop where a drop is expected).

Targets: drop precision >= 0.97; flag precision >= 0.85 overall and >= 0.70 for every rule with at
least 10 decisions; planted-problem recall >= 0.95. Exits 1 when one is missed.

Usage: python benchmarks/bench_decisions.py [--config PIPELINE.toml] [--workdir DIR] [--show-wrong N]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

from _common import Targets

HERE = Path(__file__).resolve().parent
AUDIT = HERE / "audit"
TARGET_DROP = 0.97
TARGET_FLAG = 0.85
TARGET_FLAG_RULE = 0.70
MIN_RULE_DECISIONS = 10
TARGET_RECALL = 0.95
SEED = 15

KINDS = ("foreign_language", "language_mismatch", "truncated_end", "truncated_start", "refusal", "boilerplate",
         "missing_input", "placeholder", "repetition", "markup", "pii", "noise", "too_short", "not_instruction",
         "unbalanced", "low_quality", "other", "duplicate")

# rule (step:description as in the decision's reason) -> problem kinds that make its decision right
RULE_KINDS: dict[str, set[str]] = {
    "language:language not kept": {"foreign_language"},
    "language:language possibly not kept": {"foreign_language"},
    "language:answer language differs from instruction": {"language_mismatch", "foreign_language"},
    "language:reasoning language differs from answer": {"language_mismatch"},
    "language:mixed-language text": {"language_mismatch", "foreign_language", "noise"},
    "quality:empty answer": {"too_short"},
    "quality:empty instruction": {"not_instruction", "too_short"},
    "quality:answer length out of range": {"too_short", "low_quality"},
    "quality:answer equals the instruction": {"low_quality", "repetition", "too_short"},
    "quality:answer mostly repeats the instruction": {"low_quality", "repetition", "too_short"},
    "quality:truncated answer": {"truncated_end"},
    "quality:answer starts mid-sentence": {"truncated_start"},
    "quality:unbalanced code fences or brackets": {"unbalanced", "truncated_end"},
    "quality:unclosed or stray <think> tag": {"noise", "truncated_end", "other"},
    "quality:reasoning trace presence": {"other"},
    "quality:reasoning over budget": {"other"},
    "quality:repeated lines or paragraphs": {"repetition"},
    "quality:repetitive n-grams": {"repetition"},
    "quality:unusual character mix": {"noise"},
    "quality:non-printable characters": {"noise"},
    "quality:HTML or markup leftovers": {"markup"},
    "quality:many URLs or e-mail addresses": {"noise", "other"},
    "quality:assistant boilerplate": {"boilerplate", "refusal"},  # "As an AI, I cannot ..." is both
    "quality:refusal": {"refusal"},
    "quality:placeholder text": {"placeholder"},
    "quality:placeholder input": {"placeholder"},
    "quality:missing input": {"missing_input"},
    "quality:mojibake (broken encoding)": {"noise"},
    "quality:personal data": {"pii"},
    "quality:dialogue roles do not alternate": {"other", "not_instruction"},
    "quality:dialogue has an empty turn": {"too_short", "other"},
    "quality:dialogue does not end with the assistant": {"other", "truncated_end"},
    "exact_dedup": {"duplicate"},
    "near_dedup": {"duplicate"},
    "semantic_dedup": {"duplicate"},
}
DEDUP_STEPS = ("exact_dedup", "near_dedup", "semantic_dedup")


def rule_key(step: str, reason: str) -> str:
    """The rule a decision comes from: the step, and for the language and quality steps its reason's head."""
    if step in DEDUP_STEPS:
        return step
    return f"{step}:{reason.split(':', 1)[0].strip()}"


# --- data -------------------------------------------------------------------------------------------------
def load_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def chatterbot_texts() -> dict[str, list[str]]:
    """Language code -> real conversational lines in that language, English and Chinese left out (they are kept)."""
    from corpora import chatterbot_lines

    return {k: v for k, v in chatterbot_lines().items() if k not in ("en", "zh")}


_EN_MISSING = [
    ("Summarize the following article in three sentences.",
     "I'm sorry, but you haven't provided the article you'd like me to summarize. Could you please paste the text?"),
    ("Write a short analysis of the song lyrics below.",
     "Unfortunately, no lyrics were included in your message. Please share the lyrics and I will analyze them."),
    ("Translate this paragraph into plain English for a ten-year-old.",
     "It seems like the paragraph you want me to simplify is missing. Please provide it so I can help."),
    ("Find the grammar mistakes in the given text.",
     "Sorry, I don't see any text in your request. Can you provide the text you would like me to check?"),
    ("Based on the table, which month had the highest sales?",
     "I apologize, but there is no table in your message, so I cannot tell which month had the highest sales. "
     "Please include the data."),
    ("Classify the sentiment of this review.",
     "You did not include the review. Please provide the review text and I'll classify its sentiment."),
]
_ZH_MISSING = [
    ("请总结下面这篇文章的主要内容。", "很抱歉，您没有提供需要总结的文章。请把文章内容发给我，我会帮您总结。"),
    ("分析一下这首歌的歌词表达了什么情感。", "抱歉，您似乎没有提供歌词内容，请提供歌词后我再为您分析。"),
    ("根据以下表格，计算每个部门的平均工资。", "对不起，我没有看到您提到的表格。请您提供表格数据，以便我进行计算。"),
    ("请帮我修改这段文字中的错别字。", "您好，您还没有给出需要修改的文字，请把这段文字发给我。"),
    ("对这段代码进行注释。", "很抱歉，您的消息中没有包含代码。请粘贴需要注释的代码。"),
    ("将下列句子翻译成英文。", "您没有提供需要翻译的句子，请补充后我再帮您翻译。"),
]
_EN_BOILER = ["As an AI language model, I don't have personal opinions or feelings.",
              "As an AI language model, I cannot browse the internet or access real-time information.",
              "I am an AI assistant and do not have personal experiences."]
_ZH_BOILER = ["作为一个AI语言模型，我没有个人观点和情感。", "作为一个人工智能助手，我无法提供个人意见。",
              "作为AI助手，我没有个人的感受。"]
_EN_REFUSAL = ["I'm sorry, but I can't help with that request.", "I cannot assist with that."]
_ZH_REFUSAL = ["抱歉，我无法完成这个请求。", "对不起，我不能回答这个问题。"]
_PLACEHOLDER_INPUTS = ["<noinput>", "N/A", "<No input>", "无", "(none)"]


def _is_zh(row: dict) -> bool:
    """A Chinese answer (the instruction may be in any language)."""
    out = row.get("output") or ""
    return len(re.findall(r"[\u4e00-\u9fff]", out)) > 0.3 * max(1, len(re.findall(r"\w", out)))


def _single(rows: list[dict], zh: bool, min_len: int = 200) -> list[dict]:
    return [r for r in rows if not r.get("messages") and _is_zh(r) == zh and len(r.get("output") or "") >= min_len]


def plant(keep: list[dict], foreign: dict[str, list[str]], rng: random.Random) -> list[dict]:
    """Planted rows, each ``{..., "id": "planted:<kind>:<n>", "planted": kind, "severity": drop|flag}``."""
    en, zh = _single(keep, False), _single(keep, True)
    out: list[dict] = []

    def add(kind: str, severity: str, base: dict, **fields) -> None:
        row = {k: v for k, v in base.items() if k not in ("id", "source")}
        row.update(fields)
        out.append({**row, "id": f"planted:{kind}:{sum(1 for r in out if r['planted'] == kind)}",
                    "source": "planted", "planted": kind, "severity": severity})

    # answers in other languages: to English and Chinese instructions, and whole foreign samples
    for lang, lines in sorted(foreign.items()):
        for k in range(6):
            body = " ".join(rng.sample(lines, min(len(lines), 6)))
            if k < 2:
                add("foreign_language", "drop", rng.choice(en), output=body)
            elif k < 4:
                add("foreign_language", "drop", rng.choice(zh), output=body)
            else:
                add("foreign_language", "drop", rng.choice(en), instruction=rng.choice(lines), output=body)
    for ins, ans in _EN_MISSING + _ZH_MISSING:
        add("missing_input", "flag", {}, instruction=ins, output=ans)
        add("missing_input", "flag", {}, instruction=ins, output=ans.split("。")[0].split(". ")[0] + ("。" if "。" in ans else "."))
    for text in _EN_BOILER:
        add("boilerplate", "drop", rng.choice(en), output=text)
        base = rng.choice(en)
        add("boilerplate", "flag", base, output=text + " However, " + base["output"][0].lower() + base["output"][1:])
    for text in _ZH_BOILER:
        add("boilerplate", "drop", rng.choice(zh), output=text)
        base = rng.choice(zh)
        add("boilerplate", "flag", base, output=text + "但是，" + base["output"])
    for text in _EN_REFUSAL:
        add("refusal", "flag", rng.choice(en), output=text)
    for text in _ZH_REFUSAL:
        add("refusal", "flag", rng.choice(zh), output=text)
    for k, ph in enumerate(_PLACEHOLDER_INPUTS * 2):
        add("placeholder", "flag", rng.choice(zh if ph == "无" else en), input=ph)
    prose = re.compile(r"^(?![ \t]*(?:[-*+>|#]|\d+[.)]))[^\n`{}<>=;|]{60,}$", re.M)  # a line of prose, not a list item
    for k in range(8):
        base = rng.choice(en)
        o = base["output"]
        word = re.search(r"\b[A-Za-z]{4,}\b", o[:80])  # cut inside the first word of four letters or more
        add("truncated_start", "flag", base, output=o[word.start() + 2 if word else 3:])
        # cut after a word in the middle of a line of prose, as a generation limit cuts (at a token boundary)
        for base, zh_ in ((rng.choice(en), False), (rng.choice(zh), True)):
            lines = [m for m in prose.finditer(base["output"]) if m.start() < 0.8 * len(base["output"])]
            if not lines:
                continue
            line = rng.choice(lines)
            if zh_:
                ends = [m.end() for m in re.finditer(r"[\u4e00-\u9fff]{2}(?=[\u4e00-\u9fff])", line.group())]
            else:
                ends = [m.end() for m in re.finditer(r"[a-z]+(?= [a-z])", line.group())]
            ends = [e for e in ends if 0.3 * len(line.group()) < e < len(line.group()) - 5]
            if ends:
                add("truncated_end", "flag", base, output=base["output"][: line.start() + rng.choice(ends)])
    for k in range(6):
        base = rng.choice(zh if k % 2 else en)
        first = max(re.split(r"(?<=[.!?。！？])\s*", base["output"])[:3], key=len)[:200]
        add("repetition", "drop", base, output="\n".join([first] * 12))
    for k in range(8):
        base = rng.choice(zh if k % 2 else en)
        contact = (f"联系人王{'明丽强'[k % 3]}，手机 139{rng.randrange(10**7, 10**8)}，邮箱 wang{k}@163.com。" if k % 2 else
                   f"Contact Maria Lopez at maria.lopez{k}@gmail.com or +1 415 {rng.randrange(200, 999)} {rng.randrange(1000, 9999)}.")
        add("pii", "flag", base, output=base["output"] + "\n\n" + contact)
    for k in range(6):
        base = rng.choice(zh if k % 2 else en)
        paras = base["output"].split("\n")
        add("markup", "flag", base, output="<div class=\"markdown prose\"><p>" + "</p><p>".join(paras) + "</p></div>")
    for k in range(6):
        # what a lossy decode leaves (errors="replace"): U+FFFD in place of about one character in 80
        base = rng.choice(zh if k % 2 else en)
        chars = list(base["output"])
        for j in rng.sample(range(len(chars)), max(3, len(chars) // 80)):
            chars[j] = "\ufffd"
        add("noise", "flag", base, output="".join(chars))
    for k in range(6):
        add("too_short", "drop", rng.choice(zh if k % 2 else en), output="")
    for k in range(10):
        base = rng.choice(zh if k % 2 else en)
        add("duplicate", "drop", base, planted_of=base["id"])
    for k in range(20):
        base = rng.choice(zh if k % 2 else en)
        o = base["output"]
        if k % 2:  # Chinese: change a few characters (one in 40)
            chars = list(o)
            for j in rng.sample(range(len(chars)), max(1, len(chars) // 40)):
                chars[j] = "的"
            o = "".join(chars)
        else:
            words = o.split(" ")
            for j in rng.sample(range(len(words)), max(1, len(words) // 30)):
                words[j] = words[j].upper()
            o = " ".join(words) + " Hope this helps!"
        add("duplicate", "drop", base, output=o, planted_of=base["id"])
    return out


# --- running ----------------------------------------------------------------------------------------------
def run(rows: list[dict], workdir: Path, name: str, config: Path | None) -> dict[str, list[dict]]:
    """Ingest ``rows`` into a fresh store, run the pipeline; external id -> its decisions."""
    from curation.ingest.ingest import ingest_paths
    from curation.pipeline.config import load_config
    from curation.pipeline.executor import run_pipeline
    from curation.store import Store

    path = workdir / f"{name}.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({k: v for k, v in r.items() if k not in ("planted", "severity", "planted_of")},
                               ensure_ascii=False) + "\n")
    db = workdir / f"{name}.duckdb"
    for p in (db, Path(f"{db}.wal")):
        p.unlink(missing_ok=True)
    store = Store(db)
    store.init()
    ingest_paths(store, [str(path)])
    res = run_pipeline(store, load_config(config))
    with store.reader() as con:
        ext = dict(con.execute("SELECT sample_id, external_id FROM samples").fetchall())
        decs = con.execute("SELECT sample_id, step, verdict, reason, ref_sample_id FROM decisions WHERE run_id = ?",
                           [res.run_id]).fetchall()
    out: dict[str, list[dict]] = defaultdict(list)
    for sid, step, verdict, reason, ref in decs:
        out[ext[sid]].append({"rule": rule_key(step, reason), "verdict": verdict, "reason": reason,
                              "ref": ext.get(ref) if ref else None})
    return out


_TEXTS: dict[str, str] = {}


def same_text(a: str, b: str | None) -> bool:
    """Whether two audit samples hold the same text (case and spacing aside): an exact copy, right by definition."""
    return b is not None and a in _TEXTS and b in _TEXTS and _TEXTS[a] == _TEXTS[b]


def judge(decision: dict, label: dict, pairs: dict[frozenset, str]) -> tuple[bool, str]:
    """(right, how): by the human verdict on this decision, or by the sample's labels."""
    rule = decision["rule"]
    if rule in DEDUP_STEPS:
        v = pairs.get(frozenset((label["id"], decision["ref"] or "")))
        if v is None and rule == "exact_dedup" and same_text(label["id"], decision["ref"]):
            return True, "same text"
        if v is None:
            return False, "unjudged pair"
        return v == "right", "human"
    v = label.get("decisions", {}).get(rule)
    if v and v["verdict"] == decision["verdict"]:  # a judgement of this rule's drop says nothing of its flag
        return v["judgement"] == "right", "human"
    kinds = RULE_KINDS.get(rule, set())
    ok = bool(kinds & set(label.get("problems") or ()))
    if decision["verdict"] == "drop":
        ok = ok and label.get("expected") == "drop"
    return ok, "labels"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", type=Path, default=None, help="pipeline TOML (default: the default pipeline)")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--show-wrong", type=int, default=5, help="wrong decisions printed per rule")
    args = ap.parse_args()
    samples = load_jsonl(AUDIT / "samples.jsonl")
    for smp in samples:
        text = json.dumps([smp.get(f) for f in ("system", "instruction", "input", "output", "messages")], ensure_ascii=False)
        _TEXTS[smp["id"]] = " ".join(text.lower().split())
    labels = {lab["id"]: lab for lab in load_jsonl(AUDIT / "labels.jsonl")}
    missing = [s["id"] for s in samples if s["id"] not in labels]
    if missing:
        raise SystemExit(f"{len(missing)} audit samples have no label, e.g. {missing[:3]}")
    pairs: dict[frozenset, str] = {}
    for lab in labels.values():
        for p in lab.get("pairs") or ():
            pairs[frozenset((lab["id"], p["ref"]))] = p["verdict"]

    keep = [s for s in samples if labels[s["id"]]["expected"] == "keep" and not labels[s["id"]].get("problems")]
    planted = plant(keep, chatterbot_texts(), random.Random(SEED))
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        print(f"real: {len(samples):,} labelled samples; planted: {len(planted)} problems; running the pipeline twice ...",
              flush=True)
        real = run(samples, work, "real", args.config)
        both = run(samples + planted, work, "planted", args.config)

    # precision on real samples
    per_rule: dict[tuple[str, str], Counter] = defaultdict(Counter)
    wrong: dict[tuple[str, str], list[str]] = defaultdict(list)
    how_counts: Counter[str] = Counter()
    for sid, decs in real.items():
        seen: set[tuple[str, str]] = set()
        for d in decs:
            key = (d["rule"], d["verdict"])
            if key in seen:
                continue
            seen.add(key)
            ok, how = judge(d, labels[sid], pairs)
            how_counts[how] += 1
            per_rule[key]["n"] += 1
            per_rule[key]["right"] += ok
            if not ok:
                note = labels[sid].get("note") or ""
                wrong[key].append(f"{sid} [{how}] {d['reason'][:110]!r} | label: {labels[sid]['expected']} "
                                  f"{labels[sid].get('problems')} {note[:100]}")
    t = Targets()
    print(f"\nprecision on real data (decisions judged: {dict(how_counts)})")
    print(f"{'rule':58} {'verdict':7} {'n':>5} {'right':>5} {'precision':>9}")
    totals: dict[str, Counter] = defaultdict(Counter)
    for (rule, verdict), c in sorted(per_rule.items(), key=lambda kv: (kv[0][1], -kv[1]["n"])):
        prec = c["right"] / c["n"]
        totals[verdict]["n"] += c["n"]
        totals[verdict]["right"] += c["right"]
        print(f"{rule[:58]:58} {verdict:7} {c['n']:5d} {c['right']:5d} {prec:9.3f}")
        if verdict == "flag" and c["n"] >= MIN_RULE_DECISIONS:
            t.check(prec >= TARGET_FLAG_RULE, f"flag precision of {rule}: {prec:.3f} < {TARGET_FLAG_RULE}")
    for verdict, target in (("drop", TARGET_DROP), ("flag", TARGET_FLAG)):
        c = totals[verdict]
        prec = c["right"] / c["n"] if c["n"] else 1.0
        print(f"{'ALL ' + verdict.upper() + 'S':58} {verdict:7} {c['n']:5d} {c['right']:5d} {prec:9.3f}")
        t.check(prec >= target, f"{verdict} precision {prec:.3f} < {target}")

    # missed on real data (information)
    should_drop = [s for s, lab in labels.items() if lab["expected"] == "drop"]
    caught = sum(1 for s in should_drop if any(d["verdict"] == "drop" for d in real.get(s, ())))
    should_look = [s for s, lab in labels.items() if lab["expected"] != "keep"]
    seen_any = sum(1 for s in should_look if real.get(s))
    print(f"\nreal samples labelled drop: {len(should_drop)}, dropped {caught}; labelled flag or drop: "
          f"{len(should_look)}, with any decision {seen_any} (information, no target)")

    # recall on planted problems
    by_kind: dict[str, Counter] = defaultdict(Counter)
    missed: dict[str, list[str]] = defaultdict(list)
    for r in planted:
        decs = both.get(r["id"], [])
        kind = r["planted"]
        hits = [d for d in decs if kind in RULE_KINDS.get(d["rule"], set())
                and (r["severity"] == "flag" or d["verdict"] == "drop")]
        if kind == "duplicate" and not hits:
            # the copy may have been kept and the original dropped as its duplicate: caught as well
            hits = [d for d in both.get(r["planted_of"], []) if d["rule"] in DEDUP_STEPS and d["ref"] == r["id"]]
        by_kind[kind]["n"] += 1
        by_kind[kind]["caught"] += bool(hits)
        if not hits:
            missed[kind].append(f"{r['id']}: {(r.get('output') or '')[:90]!r} -> {[d['reason'][:60] for d in decs]}")
    print("\nrecall on planted problems")
    print(f"{'problem':20} {'n':>4} {'caught':>6} {'recall':>7}")
    n_all = sum(c["n"] for c in by_kind.values())
    c_all = sum(c["caught"] for c in by_kind.values())
    for kind, c in sorted(by_kind.items()):
        print(f"{kind:20} {c['n']:4d} {c['caught']:6d} {c['caught'] / c['n']:7.3f}")
    langs = len({r["id"] for r in planted if r["planted"] == "foreign_language"})
    print(f"{'ALL':20} {n_all:4d} {c_all:6d} {c_all / n_all:7.3f}   ({langs} foreign answers in "
          f"{len(chatterbot_texts())} languages)")
    t.check(c_all / n_all >= TARGET_RECALL, f"planted recall {c_all / n_all:.3f} < {TARGET_RECALL}")
    fl = by_kind["foreign_language"]
    t.check(fl["caught"] / max(fl["n"], 1) >= TARGET_RECALL,
            f"foreign-language recall {fl['caught'] / max(fl['n'], 1):.3f} < {TARGET_RECALL}")

    if args.show_wrong:
        for key, items in sorted(wrong.items()):
            print(f"\nwrong {key[1]}s of {key[0]} ({len(items)}):")
            for line in items[: args.show_wrong]:
                print("  " + line)
        for kind, items in sorted(missed.items()):
            print(f"\nmissed planted {kind} ({len(items)}):")
            for line in items[: args.show_wrong]:
                print("  " + line)
    return t.finish()


if __name__ == "__main__":
    raise SystemExit(main())
