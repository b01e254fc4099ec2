#!/usr/bin/env python3
"""Generate the bundled sample data and its truth file (deterministic: same seed, same bytes).

Chinese and English instruction pairs (some with R1-style <think> reasoning), ShareGPT dialogues,
OpenAI-messages rows with reasoning_content, and a GB18030 CSV, with planted problems recorded in
``truth.json``: exact duplicates (identical, or differing only in Unicode form, control characters or
whitespace), near duplicates, wrong-language rows, empty / truncated outputs, unclosed think blocks,
control characters, assistant boilerplate, personal data, and malformed rows.

Usage: python scripts/make_sample_data.py [--out data/sample]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
from pathlib import Path

SEED = 20261128

EN_SUBJECTS = [
    "binary search", "photosynthesis", "compound interest", "the TCP handshake", "unit testing", "recursion",
    "the water cycle", "supply and demand", "public key cryptography", "garbage collection", "the French Revolution",
    "plate tectonics", "vaccines", "gradient descent", "hash tables", "sleep hygiene", "the immune system",
    "inflation", "version control with git", "the Pythagorean theorem", "climate change", "database indexes",
    "the scientific method", "black holes", "time management", "container orchestration", "regular expressions",
    "the Roman Empire", "protein synthesis", "renewable energy", "SQL joins", "memory leaks", "caching strategies",
    "probability distributions", "the stock market", "neural networks", "operating system scheduling",
    "the Silk Road", "ocean currents", "project budgeting", "REST APIs", "load balancing", "public speaking",
    "the greenhouse effect", "linked lists", "tax deductions", "the Renaissance", "CPU pipelines", "bird migration",
    "rainforest ecology", "data normalization", "electric circuits", "the printing press", "cloud storage",
    "nutrition labels", "earthquake safety", "code review", "type systems", "the Moon landing", "soil erosion",
]
EN_TASKS = [
    "Explain {s} to {a}.",
    "Give three practical tips about {s} for {a}.",
    "Write a short summary of {s} for {a}.",
    "What are common mistakes {a} make when learning about {s}?",
    "Compare {s} with a related idea, in terms {a} would understand.",
    "Describe a real-world example of {s} that {a} would find useful.",
    "Why does {s} matter to {a}?",
    "Create a five-question quiz about {s} for {a}.",
    "List the key terms of {s} and define each for {a}.",
    "Outline a one-week study plan on {s} for {a}.",
]
EN_AUDIENCES = ["a beginner", "a high school student", "a busy manager", "a software engineer", "a retiree",
                "a journalist", "a nurse", "a small business owner"]
ZH_SUBJECTS = [
    "二分查找", "光合作用", "复利", "TCP三次握手", "单元测试", "递归", "水循环", "供求关系", "公钥加密", "垃圾回收",
    "法国大革命", "板块构造", "疫苗", "梯度下降", "哈希表", "睡眠卫生", "免疫系统", "通货膨胀", "Git版本控制",
    "勾股定理", "气候变化", "数据库索引", "科学方法", "黑洞", "时间管理", "容器编排", "正则表达式", "罗马帝国",
    "蛋白质合成", "可再生能源", "SQL连接", "内存泄漏", "缓存策略", "概率分布", "股票市场", "神经网络", "进程调度",
    "丝绸之路", "洋流", "项目预算", "REST接口", "负载均衡", "公开演讲", "温室效应", "链表", "个人所得税", "文艺复兴",
    "CPU流水线", "候鸟迁徙", "雨林生态",
]
ZH_TASKS = [
    "请向{a}解释{s}。",
    "请为{a}给出关于{s}的三条实用建议。",
    "请为{a}写一段关于{s}的简短总结。",
    "{a}在学习{s}时常犯哪些错误？",
    "请用{a}能理解的方式，把{s}和一个相关概念做比较。",
    "请举一个{a}会觉得有用的{s}的实际例子。",
    "{s}为什么对{a}很重要？",
    "请为{a}出五道关于{s}的小测验题。",
]
ZH_AUDIENCES = ["初学者", "高中生", "忙碌的经理", "软件工程师", "退休老人", "记者"]

EN_OPENERS = ["In short,", "Put simply,", "At its core,", "To begin with,", "The key idea is that", "Broadly speaking,"]
EN_BODY = [
    "{s} is easiest to understand through a concrete case that {a} meets every day.",
    "a good first step is to write down what you already know about {s} and where it shows up.",
    "experts usually start from a small example of {s} and only then generalise.",
    "the most common confusion about {s} comes from mixing up cause and effect.",
    "it helps to set aside {n} minutes a day and review one idea about {s} at a time.",
    "many textbooks cover {s} in chapter {n}, but hands-on practice teaches more.",
    "when {a} applies {s}, checking each assumption avoids most errors.",
    "a useful rule of thumb is to test your understanding of {s} by explaining it aloud.",
]
ZH_BODY = [
    "理解{s}最简单的方法，是从{a}日常生活中的一个具体例子入手。",
    "第一步可以先写下自己已经知道的关于{s}的内容，以及它出现在哪些地方。",
    "专家通常先看一个关于{s}的小例子，然后再推广到一般情况。",
    "关于{s}最常见的误解，来自把原因和结果弄混。",
    "建议每天花{n}分钟，每次只复习{s}的一个要点。",
    "很多教材在第{n}章讲到{s}，但动手练习往往学得更扎实。",
    "{a}在运用{s}时，逐条检查前提可以避免大部分错误。",
    "一个实用的经验是：试着把{s}大声讲给别人听，检验自己是否真的理解。",
]
EN_THINK = ["The user wants {t} about {s}. I should keep it suitable for {a}. Let me pick the two most important points first, then check the wording.",
            "First, recall what {s} means. Then think about what {a} already knows. A concrete example will help; I will end with a short tip."]
ZH_THINK = ["用户想了解{s}，对象是{a}。我应该先挑出最重要的两点，再检查措辞是否通俗。",
            "先回忆{s}的定义，再考虑{a}已有的知识。举一个具体例子会更好，最后给一个小建议。"]

OTHER_LANG = [  # wrong-language rows for a zh/en dataset: (lang, instruction, output)
    ("es", "Explica qué es la fotosíntesis a un estudiante de secundaria.", "La fotosíntesis es el proceso por el cual las plantas convierten la luz solar, el agua y el dióxido de carbono en glucosa y oxígeno. Ocurre principalmente en las hojas, dentro de los cloroplastos."),
    ("fr", "Donne trois conseils pour mieux dormir.", "Couchez-vous à heure fixe, évitez les écrans une heure avant le coucher et gardez la chambre fraîche et sombre. Ces habitudes simples améliorent nettement la qualité du sommeil."),
    ("de", "Erkläre den Unterschied zwischen Inflation und Deflation.", "Inflation bedeutet, dass das allgemeine Preisniveau steigt und Geld an Kaufkraft verliert. Bei Deflation sinken die Preise, was Verbraucher dazu bringen kann, Käufe aufzuschieben."),
    ("ru", "Объясни, что такое рекурсия, простыми словами.", "Рекурсия — это когда функция вызывает саму себя для решения меньшей части задачи. Важно иметь базовый случай, иначе вызовы никогда не закончатся."),
    ("ja", "機械学習とは何か、初心者向けに説明してください。", "機械学習とは、データからパターンを学び、明示的にプログラムしなくても予測や判断ができるようにする技術です。例えば、迷惑メールの判定などに使われています。"),
    ("pt", "Quais são as vantagens da energia solar?", "A energia solar é renovável, reduz a conta de luz e quase não emite poluentes durante a operação. Além disso, os painéis exigem pouca manutenção."),
    ("it", "Spiega cos'è un database relazionale.", "Un database relazionale organizza i dati in tabelle collegate tra loro da chiavi. Si interroga con il linguaggio SQL, che permette di unire e filtrare le informazioni."),
    ("ko", "시간 관리를 잘하는 방법을 알려 주세요.", "할 일을 우선순위에 따라 정리하고, 큰 작업은 작은 단계로 나누세요. 집중하는 시간과 쉬는 시간을 번갈아 가지면 효율이 높아집니다."),
]
BOILERPLATE_EN = ["As an AI language model, I cannot have personal opinions, but ", "I'm sorry, but as an AI, I don't have feelings. However, "]
BOILERPLATE_ZH = ["作为一个人工智能语言模型，我没有个人观点，但是", "抱歉，作为AI助手，我无法提供个人意见。不过，"]


def cn_id(rng: random.Random) -> str:
    """A Chinese resident ID number with a valid check digit."""
    body = f"{rng.choice(['110101', '310104', '440305', '510107'])}{rng.randint(1960, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, weights)) % 11]
    return body + check


def luhn_card(rng: random.Random) -> str:
    """A 16-digit card number that passes the Luhn check."""
    digits = [4] + [rng.randint(0, 9) for _ in range(14)]
    total = 0
    for i, d in enumerate(reversed(digits)):
        total += (d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 == 0 else d
    digits.append((10 - total % 10) % 10)
    s = "".join(map(str, digits))
    return " ".join(s[i : i + 4] for i in range(0, 16, 4))


class Gen:
    """Builds rows and remembers what was planted where."""

    def __init__(self, seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        self.used: set[str] = set()
        self.truth: list[dict] = []

    def en_pair(self) -> tuple[str, str, str]:
        r = self.rng
        while True:
            s, a, t = r.choice(EN_SUBJECTS), r.choice(EN_AUDIENCES), r.choice(EN_TASKS)
            instr = t.format(s=s, a=a)
            if instr not in self.used:
                self.used.add(instr)
                break
        n = r.randint(2, 40)
        sents = r.sample(EN_BODY, 3)
        body = " ".join([f"{r.choice(EN_OPENERS)} {sents[0].format(s=s, a=a, n=n)}"] +
                        [x.format(s=s, a=a, n=n).capitalize() for x in sents[1:]])
        return instr, body, s

    def zh_pair(self) -> tuple[str, str, str]:
        r = self.rng
        while True:
            s, a, t = r.choice(ZH_SUBJECTS), r.choice(ZH_AUDIENCES), r.choice(ZH_TASKS)
            instr = t.format(s=s, a=a)
            if instr not in self.used:
                self.used.add(instr)
                break
        n = r.randint(2, 40)
        body = "".join(x.format(s=s, a=a, n=n) for x in r.sample(ZH_BODY, 3))
        return instr, body, s

    def think(self, lang: str, s: str) -> str:
        a = self.rng.choice(EN_AUDIENCES if lang == "en" else ZH_AUDIENCES)
        tmpl = self.rng.choice(EN_THINK if lang == "en" else ZH_THINK)
        return tmpl.format(s=s, a=a, t="an explanation")

    def plant(self, file: str, row: int, kind: str, **extra: object) -> None:
        self.truth.append({"file": file, "row_number": row, "problem": kind, **extra})


def fullwidth(text: str) -> str:
    """ASCII letters and digits to their full-width forms (NFKC maps them back)."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


def near_copy(rng: random.Random, text: str, lang: str) -> str:
    """Change about 10% of the words (or characters for Chinese)."""
    if lang == "zh":
        chars = list(text)
        for _ in range(max(2, len(chars) // 10)):
            i = rng.randrange(len(chars))
            chars[i] = rng.choice("的了在是我有和就不人都一上也很到说要去你会着没看好自己这")
        return "".join(chars)
    words = text.split(" ")
    for _ in range(max(2, len(words) // 10)):
        i = rng.randrange(len(words))
        words[i] = rng.choice(["really", "quite", "often", "usually", "simply", "clearly", "also"])
    return " ".join(words)


def make_instructions(g: Gen) -> list[str]:
    """instructions.jsonl: alpaca rows with every kind of planted problem."""
    file = "instructions.jsonl"
    r = g.rng
    rows: list[dict | str] = []
    clean: list[tuple[int, dict, str]] = []  # (index, row, lang)
    for i in range(2200):
        lang = "zh" if r.random() < 0.45 else "en"
        instr, out, s = g.en_pair() if lang == "en" else g.zh_pair()
        row = {"id": f"inst-{i:05d}", "instruction": instr, "input": "", "output": out, "lang": lang}
        if r.random() < 0.15:
            row["output"] = f"<think>\n{g.think(lang, s)}\n</think>\n\n{out}"
            row["has_reasoning"] = True
        rows.append(row)
        clean.append((len(rows), row, lang))

    def add(row: dict | str, kind: str, **extra: object) -> None:
        rows.append(row)
        g.plant(file, len(rows), kind, **extra)

    # exact duplicates: identical, Unicode-form, control-character and whitespace variants
    originals = r.sample(clean, 120)
    for n, (idx, orig, lang) in enumerate(originals):
        dup = dict(orig, id=f"dup-{n:04d}")
        variant = ("identical", "unicode", "control", "whitespace")[n % 4]
        if variant == "unicode":
            dup["instruction"] = fullwidth(orig["instruction"])
        elif variant == "control":
            dup["output"] = orig["output"][:10] + "\u0007" + orig["output"][10:] + "\u0000"
        elif variant == "whitespace":
            dup["instruction"] = "  " + orig["instruction"].replace(" ", "   ", 2) + " \n"
            dup["output"] = orig["output"] + "\t "
        add(dup, "exact_duplicate", variant=variant, duplicate_of=idx)
    # near duplicates
    for n, (idx, orig, lang) in enumerate(r.sample(clean, 80)):
        head, sep, answer = orig["output"].rpartition("</think>\n\n")
        dup = dict(orig, id=f"near-{n:04d}", output=head + sep + near_copy(r, answer, lang))
        add(dup, "near_duplicate", duplicate_of=idx)
    # wrong language (not zh/en), and a Chinese question answered in English
    for n, (lang, instr, out) in enumerate(OTHER_LANG * 3):
        add({"id": f"lang-{n:03d}", "instruction": instr + ("" if n < 8 else f" ({n})"), "input": "",
             "output": out, "lang": lang}, "wrong_language", language=lang)
    for n in range(15):
        instr, _, s = g.zh_pair()
        _, en_out, _ = g.en_pair()
        add({"id": f"mix-{n:03d}", "instruction": instr, "input": "", "output": en_out, "lang": "zh"},
            "answer_language_mismatch", language="en", expected="zh")
    # empty, truncated outputs, unclosed think blocks
    for n in range(20):
        instr, out, s = g.en_pair() if n % 2 else g.zh_pair()
        add({"id": f"empty-{n:03d}", "instruction": instr, "input": "", "output": "" if n % 3 else "   "}, "empty_output")
    for n in range(20):
        instr, out, s = g.en_pair() if n % 2 else g.zh_pair()
        cut = out[: max(12, len(out) // 2)].rstrip(" ,.，。")
        add({"id": f"trunc-{n:03d}", "instruction": instr, "input": "", "output": cut}, "truncated_output")
    for n in range(10):
        lang = "en" if n % 2 else "zh"
        instr, out, s = g.en_pair() if lang == "en" else g.zh_pair()
        add({"id": f"think-{n:03d}", "instruction": instr, "input": "", "output": f"<think>\n{g.think(lang, s)}"},
            "unclosed_think")
    # control characters (not duplicates)
    for n in range(15):
        instr, out, s = g.en_pair()
        add({"id": f"ctrl-{n:03d}", "instruction": instr, "input": "", "output": out.replace(" ", " \u0001", 1) + "\u001b[0m"},
            "control_characters")
    # boilerplate
    for n in range(20):
        if n % 2:
            instr, out, s = g.en_pair()
            out = r.choice(BOILERPLATE_EN) + out[0].lower() + out[1:]
        else:
            instr, out, s = g.zh_pair()
            out = r.choice(BOILERPLATE_ZH) + out
        add({"id": f"boiler-{n:03d}", "instruction": instr, "input": "", "output": out}, "boilerplate")
    # personal data
    for n in range(24):
        instr, out, s = g.en_pair() if n % 2 else g.zh_pair()
        kind = ("email", "phone", "cn_id", "card")[n % 4]
        pii = {"email": f"li.wei{n}@example.com", "phone": f"+86 138{r.randint(10000000, 99999999)}",
               "cn_id": cn_id(r), "card": luhn_card(r)}[kind]
        add({"id": f"pii-{n:03d}", "instruction": instr, "input": f"Contact: {pii}", "output": out}, "personal_data",
            pii_kind=kind, value=pii)
    # malformed rows (quarantined at ingest)
    add('{"id": "bad-000", "instruction": "Explain recursion", "output": "unterminated', "malformed_json")
    add('{"id": "bad-001", "instruction": "Explain recursion" "output": "missing comma"}', "malformed_json")
    add({"id": "bad-002", "instruction": "What is 2+2?", "output": 4}, "wrong_type", field="output")
    add({"id": "bad-003", "instruction": "Name a colour."}, "missing_field", field="output")
    add('["not", "an", "object"]', "not_an_object")
    add({"id": "bad-005", "prompt": "unmapped field names", "completion": "x"}, "unknown_shape")
    # shuffle the planted rows into the clean ones, keeping truth row numbers right
    order = list(range(len(rows)))
    r.shuffle(order)
    new_pos = {old + 1: new + 1 for new, old in enumerate(order)}
    for t in g.truth:
        if t["file"] == file:
            t["row_number"] = new_pos[t["row_number"]]
            if "duplicate_of" in t:
                t["duplicate_of"] = new_pos[t["duplicate_of"]]
    shuffled = [rows[old] for old in order]
    return [x if isinstance(x, str) else json.dumps(x, ensure_ascii=False) for x in shuffled]


def make_sharegpt(g: Gen) -> list[str]:
    """dialogues_sharegpt.jsonl: multi-turn ShareGPT dialogues, a few broken ones."""
    file = "dialogues_sharegpt.jsonl"
    r = g.rng
    lines = []
    for i in range(400):
        lang = "zh" if i % 2 else "en"
        conv = []
        if i % 5 == 0:
            conv.append({"from": "system", "value": "You are a helpful tutor." if lang == "en" else "你是一位耐心的老师。"})
        for _ in range(r.randint(1, 3)):
            q, a, _s = g.en_pair() if lang == "en" else g.zh_pair()
            conv += [{"from": "human", "value": q}, {"from": "gpt", "value": a}]
        lines.append(json.dumps({"id": f"conv-{i:04d}", "conversations": conv, "lang": lang}, ensure_ascii=False))
    bad = [
        ({"id": "conv-bad-0", "conversations": [{"from": "human", "value": "hi"}, {"from": "robot", "value": "beep"}]}, "unknown_role"),
        ({"id": "conv-bad-1", "conversations": [{"from": "human"}, {"from": "gpt", "value": "hello"}]}, "missing_field"),
        ({"id": "conv-bad-2", "conversations": []}, "empty_dialogue"),
    ]
    for obj, kind in bad:
        pos = r.randrange(len(lines) + 1)
        lines.insert(pos, json.dumps(obj))
    for obj, kind in bad:
        g.plant(file, lines.index(json.dumps(obj)) + 1, kind)
    return lines


def make_openai(g: Gen) -> list[dict]:
    """messages_openai.json (a JSON array): OpenAI messages, R1 reasoning_content on some answers."""
    file = "messages_openai.json"
    rows = []
    for i in range(300):
        lang = "en" if i % 3 else "zh"
        q, a, s = g.en_pair() if lang == "en" else g.zh_pair()
        assistant = {"role": "assistant", "content": a}
        if i % 4 == 0:
            assistant["reasoning_content"] = g.think(lang, s)
        msgs = [{"role": "user", "content": q}, assistant]
        if i % 6 == 0:
            msgs.insert(0, {"role": "system", "content": "Answer concisely."})
        rows.append({"id": f"msg-{i:04d}", "messages": msgs, "source": "synthetic-r1" if i % 4 == 0 else "synthetic"})
    rows.insert(150, {"id": "msg-bad-0", "messages": [{"role": "user", "content": ["image", "parts"]}]})
    g.plant(file, 151, "wrong_type", field="messages")
    return rows


def make_gb18030_csv(g: Gen) -> bytes:
    """instructions_gb18030.csv: Chinese pairs in GB18030, one row with a wrong column count."""
    file = "instructions_gb18030.csv"
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "instruction", "input", "output"])
    for i in range(200):
        q, a, _ = g.zh_pair()
        w.writerow([f"gb-{i:04d}", q, "", a])
    text = buf.getvalue().split("\n")
    text.insert(101, 'gb-bad,"多了一列",,"答案",多余')
    g.plant(file, None, "malformed_csv", line=102)
    return ("\n".join(text)).encode("gb18030")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "data" / "sample")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    g = Gen()
    (args.out / "instructions.jsonl").write_text("\n".join(make_instructions(g)) + "\n", encoding="utf-8")
    (args.out / "dialogues_sharegpt.jsonl").write_text("\n".join(make_sharegpt(g)) + "\n", encoding="utf-8")
    (args.out / "messages_openai.json").write_text(json.dumps(make_openai(g), ensure_ascii=False, indent=1), encoding="utf-8")
    (args.out / "instructions_gb18030.csv").write_bytes(make_gb18030_csv(g))
    truth = {
        "seed": SEED,
        "languages": ["en", "zh"],
        "note": "row_number is 1-based: the line for JSONL, the element for JSON arrays; CSV problems give the file line.",
        "planted": g.truth,
    }
    (args.out / "truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    kinds: dict[str, int] = {}
    for t in g.truth:
        kinds[t["problem"]] = kinds.get(t["problem"], 0) + 1
    print(f"wrote {args.out}: " + ", ".join(f"{k}={v}" for k, v in sorted(kinds.items())))


if __name__ == "__main__":
    main()
