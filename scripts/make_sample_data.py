#!/usr/bin/env python3
"""Generate the bundled sample data and its truth file (deterministic: same seed and material, same bytes).

Chinese and English instruction pairs (some with R1-style <think> reasoning), ShareGPT dialogues,
OpenAI-messages rows with reasoning_content, and a GB18030 CSV, with planted problems recorded in
``truth.json``: exact duplicates (identical, or differing only in Unicode form, control characters or
whitespace), near duplicates, wrong-language rows, empty / truncated outputs, unclosed think blocks,
control characters, assistant boilerplate, personal data, and malformed rows.

The clean samples are made to vary like real data, from several kinds of task, each with its own
phrasings, drawn from text on this machine (offline) and from generators with computed answers:

- questions on Python's standard library, answered with the docstrings of its modules, and on the
  language, answered with the Python Language Reference that ships with the interpreter
  (``pydoc_data.topics``; PSF licence);
- translations between English and Chinese of PostgreSQL 15's messages, from Debian's Simplified
  Chinese catalogues (``/usr/share/locale/zh_CN/LC_MESSAGES/*-15.mo``; PostgreSQL licence);
- arithmetic word problems, questions over small tables (scores, bills, temperatures, timesheets, lists
  of numbers) and calendar questions, with computed, worked answers (English and Chinese);
- a few dozen hand-written explanations (English and Chinese).

No two clean samples are near copies: a candidate whose word 3-grams (character 3-grams for Chinese,
as near dedup shingles them) have a Jaccard similarity of 0.5 or more with those of an earlier one of
its language (translations: of either direction) is not used. The only near duplicates are the planted
ones, which rewrite about 10% of an answer's words (characters for Chinese) in one to three runs.

The material's digest is recorded in ``truth.json``: with another Python version or other catalogues
the generator makes another sample (tests/test_sample_data.py then skips its byte-for-byte check).

Usage: python scripts/make_sample_data.py [--out data/sample]
"""

from __future__ import annotations

import argparse
import ast
import calendar
import csv
import datetime as dt
import gettext
import hashlib
import io
import json
import random
import re
import sys
import sysconfig
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

SEED = 20261128
MAX_JACCARD = 0.5  # between any two clean samples of a language (near dedup's threshold is 0.6)

# --- material ----------------------------------------------------------------------------------------

# standard-library modules whose docstrings answer questions: (file under the stdlib dir, import name)
STDLIB_MODULES = [
    ("argparse", "argparse"), ("base64", "base64"), ("bisect", "bisect"), ("calendar", "calendar"),
    ("collections/__init__", "collections"), ("configparser", "configparser"), ("contextlib", "contextlib"),
    ("copy", "copy"), ("csv", "csv"), ("dataclasses", "dataclasses"), ("datetime", "datetime"),
    ("difflib", "difflib"), ("email/message", "email.message"), ("email/utils", "email.utils"), ("enum", "enum"),
    ("fnmatch", "fnmatch"), ("fractions", "fractions"), ("ftplib", "ftplib"), ("functools", "functools"),
    ("getopt", "getopt"), ("gettext", "gettext"), ("glob", "glob"), ("gzip", "gzip"), ("heapq", "heapq"),
    ("hmac", "hmac"), ("html/parser", "html.parser"), ("http/client", "http.client"), ("http/cookies", "http.cookies"),
    ("http/server", "http.server"), ("imaplib", "imaplib"), ("inspect", "inspect"), ("ipaddress", "ipaddress"),
    ("json/__init__", "json"), ("locale", "locale"), ("logging/__init__", "logging"),
    ("logging/handlers", "logging.handlers"), ("mailbox", "mailbox"), ("mimetypes", "mimetypes"),
    ("operator", "operator"), ("optparse", "optparse"), ("os", "os"), ("pathlib", "pathlib"), ("pickle", "pickle"),
    ("platform", "platform"), ("pprint", "pprint"), ("queue", "queue"), ("random", "random"), ("re/__init__", "re"),
    ("sched", "sched"), ("secrets", "secrets"), ("selectors", "selectors"), ("shlex", "shlex"), ("shutil", "shutil"),
    ("smtplib", "smtplib"), ("socket", "socket"), ("statistics", "statistics"), ("string", "string"),
    ("subprocess", "subprocess"), ("tarfile", "tarfile"), ("tempfile", "tempfile"), ("textwrap", "textwrap"),
    ("threading", "threading"), ("timeit", "timeit"), ("tokenize", "tokenize"), ("traceback", "traceback"),
    ("types", "types"), ("typing", "typing"), ("unittest/case", "unittest"), ("urllib/parse", "urllib.parse"),
    ("urllib/request", "urllib.request"), ("uuid", "uuid"), ("warnings", "warnings"), ("weakref", "weakref"),
    ("zipfile", "zipfile"), ("asyncio/tasks", "asyncio"), ("asyncio/queues", "asyncio"), ("asyncio/locks", "asyncio"),
    ("concurrent/futures/_base", "concurrent.futures"), ("cmd", "cmd"), ("codecs", "codecs"), ("filecmp", "filecmp"),
    ("fileinput", "fileinput"), ("graphlib", "graphlib"), ("numbers", "numbers"), ("abc", "abc"),
    ("plistlib", "plistlib"), ("pstats", "pstats"), ("reprlib", "reprlib"), ("runpy", "runpy"),
    ("socketserver", "socketserver"), ("sysconfig", "sysconfig"), ("xml/etree/ElementTree", "xml.etree.ElementTree"),
    ("zipapp", "zipapp"), ("ast", "ast"), ("dis", "dis"), ("bdb", "bdb"), ("doctest", "doctest"),
    ("linecache", "linecache"), ("posixpath", "os.path"), ("pyclbr", "pyclbr"), ("py_compile", "py_compile"),
    ("compileall", "compileall"), ("netrc", "netrc"), ("pickletools", "pickletools"), ("tracemalloc", "tracemalloc"),
    ("contextvars", "contextvars"), ("mailcap", "mailcap"), ("cgi", "cgi"), ("wave", "wave"),
]
LOCALE_DIR = Path("/usr/share/locale/zh_CN/LC_MESSAGES")
PG_CATALOGS = ["initdb-15", "libpq5-15", "pg_amcheck-15", "pg_archivecleanup-15", "pg_config-15",
               "pg_controldata-15", "pg_ctl-15", "pg_dump-15", "pg_resetwal-15", "pg_rewind-15", "pg_upgrade-15",
               "pg_verifybackup-15", "pgscripts-15", "plpgsql-15", "postgres-15", "psql-15"]

_WS = re.compile(r"\s+")
_ENDS_SENTENCE = re.compile(r"[.!?。！？)）]$")
_BAD_CHARS = re.compile(r"[<>{}\\|@#$^~]|XXX|TODO|http|www\.|\.\.\.")
_CJK_ANY = re.compile(r"[\u4e00-\u9fff]")


def _balanced(text: str) -> bool:
    return all(text.count(a) == text.count(b) for a, b in ("()", "[]", "（）", "“”")) and text.count('"') % 2 == 0


def _prose(blocks: list[str], max_paras: int = 3, max_chars: int = 1100) -> list[str]:
    """The leading prose paragraphs of a docstring's blank-line separated blocks, each on one line."""
    paras: list[str] = []
    for block in blocks:
        lines = block.split("\n")
        if any(ln[:1].isspace() for ln in lines) or block.lstrip()[:1] in (">", ".", ":", "*", "-", "+", "|"):
            break
        text = _WS.sub(" ", re.sub(r"(?<=\w)-\n\s*(?=\w)", "-", block)).strip()
        if (text.endswith("::") or "::=" in text or re.match(r"^\w+ -- ", text)
                or re.search(r":(?:param|type|return|raises?)\b|\b(?:Args|Returns|Raises|Parameters|Example)s?:", text)):
            break
        if not _ENDS_SENTENCE.search(text) or _BAD_CHARS.search(text) or not _balanced(text):
            break
        paras.append(text)
        if len(paras) == max_paras or sum(map(len, paras)) > max_chars:
            break
    return paras


@dataclass(frozen=True)
class Doc:
    """A documented name of the standard library."""

    name: str  # module.qualname
    short: str  # qualname
    module: str
    what: str  # function, class, method
    paras: tuple[str, ...]


def stdlib_docs() -> list[Doc]:
    """Public functions, classes and methods of STDLIB_MODULES with a prose docstring of 60+ characters."""
    root = Path(sysconfig.get_paths()["stdlib"])
    docs: list[Doc] = []
    seen: set[str] = set()
    for rel, module in STDLIB_MODULES:
        path = root / f"{rel}.py"
        if not path.is_file():
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            items: list[tuple[ast.AST, str, str]] = []
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                items.append((node, node.name, "function"))
            elif isinstance(node, ast.ClassDef):
                items.append((node, node.name, "class"))
                items += [(x, f"{node.name}.{x.name}", "method") for x in node.body
                          if isinstance(x, (ast.FunctionDef, ast.AsyncFunctionDef))]
            for item, qual, what in items:
                if any(part.startswith("_") for part in qual.split(".")):
                    continue
                doc = ast.get_docstring(item)
                if not doc:
                    continue
                paras = _prose(re.split(r"\n\s*\n", doc.strip()))
                key = " ".join(paras)
                if len(key) < 60 or key in seen or re.search(r" = |^\w+\(", key):  # a signature, not prose
                    continue
                seen.add(key)
                docs.append(Doc(f"{module}.{qual}", qual, module, what, tuple(paras)))
    return docs


@dataclass(frozen=True)
class RefEntry:
    """A section or an entry (``str.split(sep=None, maxsplit=-1)``) of the Python Language Reference."""

    title: str
    entry: bool
    paras: tuple[str, ...]


def language_reference() -> list[RefEntry]:
    """Sections with prose and entries with a prose body, from pydoc_data.topics (the interpreter's)."""
    from pydoc_data.topics import topics

    out: list[RefEntry] = []
    seen: set[str] = set()

    def add(title: str, entry: bool, blocks: list[str]) -> None:
        paras = _prose(blocks, max_paras=2, max_chars=900)
        key = " ".join(paras)
        if len(key) >= 80 and key not in seen and title and len(title) <= 60:
            seen.add(key)
            out.append(RefEntry(title, entry, tuple(paras)))

    def heading(block: str) -> bool:
        lines = block.split("\n")
        return len(lines) == 2 and bool(re.fullmatch(r"[*=\-~^\"]{3,}", lines[1])) and not lines[0][:1].isspace()

    def indented(block: str) -> bool:  # one level (an entry's body), not a code block
        return block.startswith("   ") and not block.startswith("    ")

    for key in sorted(topics):
        blocks = [b for b in re.split(r"\n\s*\n", topics[key]) if b.strip()]
        i = 0
        while i < len(blocks):
            lines = blocks[i].split("\n")
            if heading(blocks[i]):
                j = i + 1
                while j < len(blocks) and not blocks[j][:1].isspace() and not heading(blocks[j]):
                    j += 1
                add(lines[0].strip(), False, blocks[i + 1 : j])
                i += 1
                continue
            if (len(lines) == 1 and not lines[0][:1].isspace() and i + 1 < len(blocks) and indented(blocks[i + 1])
                    and re.search(r"[(.]", lines[0]) and not re.search(r"[.!?:]$", lines[0])):
                j = i + 1
                while j < len(blocks) and indented(blocks[j]):
                    j += 1
                add(lines[0].strip(), True, ["\n".join(ln[3:] for ln in b.split("\n")) for b in blocks[i + 1 : j]])
                i = j
                continue
            i += 1
    return out


def pg_messages() -> list[tuple[str, str]]:
    """(English, Chinese) PostgreSQL 15 messages without format directives, one line each."""
    missing = [c for c in PG_CATALOGS if not (LOCALE_DIR / f"{c}.mo").is_file()]
    if missing:
        sys.exit(f"missing {', '.join(missing)} in {LOCALE_DIR}: install Debian's postgresql-15, "
                 "postgresql-client-15 and libpq5 (their zh_CN catalogues are the translation material)")
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name in PG_CATALOGS:
        with open(LOCALE_DIR / f"{name}.mo", "rb") as f:
            catalog = gettext.GNUTranslations(f)._catalog  # noqa: SLF001 (the parsed catalogue, msgid -> msgstr)
        for en, zh in sorted((k, v) for k, v in catalog.items() if isinstance(k, str) and k):
            if re.search(r"[%\t\\]", en + zh):
                continue
            en, zh = _WS.sub(" ", en).strip(), _WS.sub(" ", zh).strip()
            punct = sum(not (c.isalnum() or c.isspace()) for c in zh) / max(len(zh), 1)
            if (len(en.split()) < 6 or len(_CJK_ANY.findall(zh)) < 6 or en.startswith("-") or en.lower() in seen
                    or "--" in en or "==" in en or punct > 0.15
                    or _BAD_CHARS.search(en + zh) or not _balanced(en) or not _balanced(zh)):
                continue
            seen.add(en.lower())
            pairs.append((en, zh))
    return pairs


def material_digest(docs: list[Doc], ref: list[RefEntry], pg: list[tuple[str, str]]) -> str:
    h = hashlib.sha256()
    for d in docs:
        h.update(json.dumps([d.name, d.paras], ensure_ascii=False).encode())
    for e in ref:
        h.update(json.dumps([e.title, e.paras], ensure_ascii=False).encode())
    for p in pg:
        h.update(json.dumps(p, ensure_ascii=False).encode())
    return h.hexdigest()


# --- near-copy guard ---------------------------------------------------------------------------------

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_CJK_CHAR = re.compile(f"[{_CJK}]")
_TOKEN_CJK = re.compile(f"[{_CJK}]|[^\\W{_CJK}]+")
_TOKEN = re.compile(r"\w+")


def shingles(text: str, n: int = 3) -> frozenset[str]:
    """Word n-grams, or character n-grams when CJK is 30% of the letters or more (like near dedup's)."""
    text = text.lower()
    n_cjk = len(_CJK_CHAR.findall(text))
    letters = sum(c.isalpha() for c in text)
    tokens = (_TOKEN_CJK if n_cjk and n_cjk >= 0.3 * max(letters, 1) else _TOKEN).findall(text)
    if len(tokens) < n:
        return frozenset([" ".join(tokens)])
    return frozenset(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


class Guard:
    """Rejects a text sharing MAX_JACCARD or more of its shingles with an accepted text of its bucket."""

    def __init__(self) -> None:
        self.buckets: dict[str, list[frozenset[str]]] = {}

    def accept(self, bucket: str, text: str) -> bool:
        s = shingles(text)
        seen = self.buckets.setdefault(bucket, [])
        n = len(s)
        for t in seen:
            common = len(s & t)
            if common and common >= MAX_JACCARD * (n + len(t) - common):
                return False
        seen.append(s)
        return True


# --- samples -----------------------------------------------------------------------------------------


@dataclass
class Unit:
    """One question and its answer."""

    lang: str
    kind: str
    instruction: str
    input: str
    output: str
    think: str  # reasoning, in the answer's language

    def prompt(self) -> str:
        """The question as one user turn."""
        return f"{self.instruction}\n\n{self.input}" if self.input else self.instruction


EN_PEOPLE = [("Maria", "she"), ("James", "he"), ("Aisha", "she"), ("Tom", "he"), ("Priya", "she"), ("Lucas", "he"),
             ("Emma", "she"), ("Omar", "he"), ("Sofia", "she"), ("Daniel", "he"), ("Chloe", "she"), ("Ben", "he"),
             ("Hannah", "she"), ("Mateo", "he"), ("Grace", "she"), ("Kenji", "he"), ("Olivia", "she"), ("Noah", "he"),
             ("Fatima", "she"), ("Leo", "he"), ("Zoe", "she"), ("Ethan", "he"), ("Nadia", "she"), ("Samuel", "he"),
             ("Ruth", "she"), ("Ivan", "he"), ("Lena", "she"), ("Marcus", "he"), ("Ines", "she"), ("Victor", "he")]
ZH_PEOPLE = ["小明", "小红", "王老师", "李阿姨", "张伟", "刘洋", "陈静", "赵磊", "周婷", "吴昊", "孙悦", "郑凯", "何琳", "高翔",
             "林芳", "梁晨", "宋佳", "唐宁", "许诺", "韩梅", "冯涛", "马丽", "胡斌", "杨帆", "黄蕾", "朱峰", "徐晓", "曹敏"]
EN_GOODS = [("notebook", "notebooks", 2, 6), ("pen", "pens", 1, 3), ("mug", "mugs", 5, 12), ("apple", "apples", 1, 2),
            ("ticket", "tickets", 8, 25), ("candle", "candles", 3, 9), ("book", "books", 7, 20), ("plant", "plants", 4, 15),
            ("sandwich", "sandwiches", 4, 9), ("towel", "towels", 6, 14), ("lamp", "lamps", 15, 40), ("puzzle", "puzzles", 9, 18)]
ZH_GOODS = [("笔记本", "本", 3, 9), ("圆珠笔", "支", 2, 5), ("苹果", "斤", 4, 9), ("电影票", "张", 30, 60), ("蜡烛", "根", 3, 8),
            ("故事书", "本", 12, 35), ("盆栽", "盆", 15, 40), ("面包", "个", 4, 10), ("毛巾", "条", 9, 25), ("台灯", "盏", 45, 120),
            ("拼图", "盒", 20, 50), ("水杯", "个", 10, 30)]


def math_en(r: random.Random) -> tuple[str, str, str]:
    """An English arithmetic word problem: (question, worked answer, reasoning)."""
    name, he = r.choice(EN_PEOPLE)
    his = "his" if he == "he" else "her"
    k = r.randrange(10)
    if k == 0:
        (g1, g1s, lo1, hi1), (g2, g2s, lo2, hi2) = r.sample(EN_GOODS, 2)
        a, b, p, q = r.randint(2, 9), r.randint(2, 9), r.randint(lo1, hi1), r.randint(lo2, hi2)
        qn = f"{name} buys {a} {g1s} at ${p} each and {b} {g2s} at ${q} each. How much does {he} spend altogether?"
        ans = r.choice([
            f"{g1s.capitalize()}: {a} × ${p} = ${a * p}\n{g2s.capitalize()}: {b} × ${q} = ${b * q}\n\n"
            f"Total: ${a * p} + ${b * q} = ${a * p + b * q}. {name} spends ${a * p + b * q}.",
            f"The {g1s} cost {a} × ${p} = ${a * p} and the {g2s} cost {b} × ${q} = ${b * q}, "
            f"so {name} spends ${a * p} + ${b * q} = **${a * p + b * q}** in total."])
        think = f"{a}*{p} = {a * p}; {b}*{q} = {b * q}; sum {a * p + b * q}."
    elif k == 1:
        vehicle = r.choice(["train", "bus", "cyclist", "ferry", "delivery van", "hiker"])
        s = {"train": (60, 140), "bus": (40, 80), "cyclist": (12, 25), "ferry": (20, 40), "delivery van": (35, 70),
             "hiker": (3, 6)}[vehicle]
        speed, t, t2 = r.randint(*s), r.randint(2, 5), r.randint(2, 9)
        qn = f"A {vehicle} covers {speed * t} km in {t} hours. At the same speed, how far does it travel in {t2} hours?"
        ans = (f"First find the speed: {speed * t} km ÷ {t} h = {speed} km/h.\n"
               f"Then the distance in {t2} hours: {speed} km/h × {t2} h = {speed * t2} km.\n\n"
               f"The {vehicle} travels {speed * t2} km.")
        think = f"speed = {speed * t}/{t} = {speed}. {speed} x {t2} = {speed * t2} km."
    elif k == 2:
        thing = r.choice(["jacket", "bicycle", "coffee maker", "pair of boots", "backpack", "desk chair", "tent", "printer"])
        price, pct = 20 * r.randint(2, 25), r.choice([10, 15, 20, 25, 30, 35, 40])
        off = price * pct // 100
        qn = f"A {thing} normally costs ${price}. It is on sale at {pct}% off. What is the sale price?"
        ans = r.choice([
            f"The discount is {pct}% of ${price} = {pct / 100:g} × {price} = ${off}.\nSale price: ${price} − ${off} = ${price - off}.",
            f"Paying {100 - pct}% of the price: {(100 - pct) / 100:g} × ${price} = ${price - off}. "
            f"(That is ${off} less than usual.)"])
        think = f"{pct}% of {price} is {off}; {price} - {off} = {price - off}."
    elif k == 3:
        target = r.randint(72, 88)
        scores = [r.randint(62, 98) for _ in range(4)]
        need = 5 * target - sum(scores)
        while not 50 <= need <= 100:
            scores = [r.randint(62, 98) for _ in range(4)]
            need = 5 * target - sum(scores)
        qn = (f"{name}'s first four test scores are {', '.join(map(str, scores[:3]))} and {scores[3]}. "
              f"What must {he} score on the fifth test to average exactly {target}?")
        ans = (f"An average of {target} over 5 tests needs a total of 5 × {target} = {5 * target} points.\n"
               f"So far {he} has {' + '.join(map(str, scores))} = {sum(scores)}.\n"
               f"Needed on the fifth test: {5 * target} − {sum(scores)} = {need}.")
        think = f"5*{target} = {5 * target}, have {sum(scores)}, need {need}."
    elif k == 4:
        ingredient = r.choice(["flour", "rice", "butter", "sugar", "lentils", "oats", "cheese", "pasta"])
        n, m, per = r.randint(2, 6), r.randint(3, 12), r.choice([15, 20, 25, 30, 40, 50, 60, 75])
        while m == n:
            m = r.randint(3, 12)
        qn = f"A recipe for {n} people uses {per * n} g of {ingredient}. How many grams of {ingredient} are needed for {m} people?"
        ans = r.choice([
            f"Per person: {per * n} g ÷ {n} = {per} g.\nFor {m} people: {per} g × {m} = {per * m} g of {ingredient}.",
            f"Scale by {m}/{n}: {per * n} g × {m} ÷ {n} = {per * m} g. You need {per * m} g of {ingredient}."])
        think = f"{per * n}/{n} = {per} g each, times {m} = {per * m}."
    elif k == 5:
        item, items = r.choice([("sticker", "stickers"), ("marble", "marbles"), ("cookie", "cookies"), ("card", "cards"),
                                ("seed packet", "seed packets"), ("crayon", "crayons")])
        friends, total = r.randint(3, 9), r.randint(20, 95)
        each, left = divmod(total, friends)
        qn = f"{name} has {total} {items} and shares them equally among {friends} friends. How many does each friend get, and how many are left over?"
        ans = (f"{total} ÷ {friends} = {each} remainder {left}.\n\nEach friend gets {each} {items if each != 1 else item}"
               + (f", and {left} {items if left != 1 else item} {'are' if left != 1 else 'is'} left over." if left else ", with none left over."))
        think = f"{friends} x {each} = {friends * each}, remainder {total - friends * each}."
    elif k == 6:
        length, width, cost = r.randint(3, 12), r.randint(2, 9), r.choice([12, 15, 18, 22, 25, 30, 35, 42])
        surface = r.choice(["laminate flooring", "carpet", "floor tiles", "cork flooring"])
        qn = f"A room is {length} m long and {width} m wide. {surface.capitalize()} costs ${cost} per square metre. How much does it cost to cover the whole floor?"
        ans = (f"Area: {length} m × {width} m = {length * width} m².\nCost: {length * width} m² × ${cost}/m² = ${length * width * cost}.")
        think = f"area {length * width}, times {cost} = {length * width * cost}."
    elif k == 7:
        per_week, goal = r.choice([15, 20, 25, 30, 35, 40, 45, 50]), r.randint(8, 60) * 10
        weeks = -(-goal // per_week)
        purpose = r.choice(["a new phone", "a guitar", "a weekend trip", "a bicycle", "a laptop", "concert tickets"])
        qn = f"{name} saves ${per_week} a week for {purpose} that costs ${goal}. How many weeks until {he} can afford it?"
        exact = goal % per_week == 0
        ans = (f"${goal} ÷ ${per_week} per week = {goal / per_week:g}"
               + ("" if exact else f", so {he} needs to round up: after {weeks - 1} weeks {he} has only ${(weeks - 1) * per_week}")
               + f".\n\n{name} can afford it after {weeks} weeks.")
        think = f"{goal}/{per_week} = {goal / per_week:.2f} -> {weeks} weeks."
    elif k == 8:
        rate, hours, extra = r.choice([14, 16, 18, 20, 22, 24, 26, 30]), r.randint(20, 40), r.randint(2, 10)
        qn = (f"{name} earns ${rate} an hour for a {hours}-hour week, and overtime is paid at 1.5 times the normal rate. "
              f"Last week {he} also worked {extra} hours of overtime. What was {his} pay for the week?")
        ot = rate * 3 // 2
        ans = (f"Regular pay: {hours} h × ${rate} = ${hours * rate}.\nOvertime rate: 1.5 × ${rate} = ${ot} an hour, "
               f"so overtime pay is {extra} × ${ot} = ${extra * ot}.\n\nTotal: ${hours * rate} + ${extra * ot} = ${hours * rate + extra * ot}.")
        think = f"{hours}*{rate} = {hours * rate}; ot {ot}/h * {extra} = {extra * ot}; total {hours * rate + extra * ot}."
    else:
        principal, pct, years = 100 * r.randint(5, 80), r.choice([2, 3, 4, 5, 6]), r.randint(2, 8)
        interest = principal * pct * years // 100
        qn = f"${principal:,} is deposited at {pct}% simple interest per year. How much interest has it earned after {years} years, and what is the balance then?"
        ans = (f"Simple interest = principal × rate × time = ${principal:,} × {pct / 100:g} × {years} = ${interest:,}.\n"
               f"Balance: ${principal:,} + ${interest:,} = ${principal + interest:,}.")
        think = f"I = P r t = {principal}*{pct / 100:g}*{years} = {interest}."
    return qn, ans, think


def math_zh(r: random.Random) -> tuple[str, str, str]:
    """A Chinese arithmetic word problem: (question, worked answer, reasoning)."""
    name = r.choice(ZH_PEOPLE)
    k = r.randrange(8)
    if k == 0:
        (g1, u1, lo1, hi1), (g2, u2, lo2, hi2) = r.sample(ZH_GOODS, 2)
        a, b, p, q = r.randint(2, 9), r.randint(2, 9), r.randint(lo1, hi1), r.randint(lo2, hi2)
        qn = f"{name}买了{a}{u1}{g1}，每{u1}{p}元，又买了{b}{u2}{g2}，每{u2}{q}元。一共花了多少钱？"
        ans = r.choice([
            f"{g1}：{a}×{p}={a * p}（元）\n{g2}：{b}×{q}={b * q}（元）\n合计：{a * p}+{b * q}={a * p + b * q}（元）\n\n答：一共花了{a * p + b * q}元。",
            f"先分别算：{g1}花了{a}×{p}={a * p}元，{g2}花了{b}×{q}={b * q}元。两项相加，{name}一共花了{a * p + b * q}元。"])
        think = f"{a}乘{p}得{a * p}，{b}乘{q}得{b * q}，加起来是{a * p + b * q}。"
    elif k == 1:
        speed, t, t2 = r.randint(40, 120), r.randint(2, 5), r.randint(2, 9)
        who = r.choice(["一辆汽车", "一列火车", "一艘轮船", "一辆货车"])
        qn = f"{who}{t}小时行驶了{speed * t}千米。照这样的速度，{t2}小时能行驶多少千米？"
        ans = f"速度：{speed * t}÷{t}={speed}（千米/时）\n路程：{speed}×{t2}={speed * t2}（千米）\n\n答：{t2}小时能行驶{speed * t2}千米。"
        think = f"先求速度{speed * t}除以{t}等于{speed}，再乘{t2}，得{speed * t2}。"
    elif k == 2:
        thing = r.choice(["羽绒服", "自行车", "咖啡机", "运动鞋", "书包", "办公椅", "帐篷", "打印机"])
        price, zhe = 20 * r.randint(5, 60), r.choice([6, 7, 75, 8, 85, 9])
        rate = zhe / 10 if zhe < 10 else zhe / 100
        sale = round(price * rate)
        label = f"{zhe}折" if zhe < 10 else f"{zhe // 10}.{zhe % 10}折"
        qn = f"一件{thing}原价{price}元，现在打{label}出售。现价是多少元？比原价便宜了多少元？"
        ans = f"打{label}就是按原价的{rate:g}计算：\n{price}×{rate:g}={sale}（元）\n{price}-{sale}={price - sale}（元）\n\n答：现价{sale}元，便宜了{price - sale}元。"
        think = f"{label}即乘以{rate:g}，{price}乘{rate:g}得{sale}，差价{price - sale}。"
    elif k == 3:
        target = r.randint(80, 92)
        scores = [r.randint(70, 99) for _ in range(3)]
        need = 4 * target - sum(scores)
        while not 60 <= need <= 100:
            scores = [r.randint(70, 99) for _ in range(3)]
            need = 4 * target - sum(scores)
        subject = r.choice(["数学", "语文", "英语", "物理", "化学"])
        qn = f"{name}前三次{subject}测验分别得了{scores[0]}分、{scores[1]}分和{scores[2]}分。要使四次的平均分正好是{target}分，第四次要考多少分？"
        ans = f"四次总分应为：{target}×4={4 * target}（分）\n前三次共：{scores[0]}+{scores[1]}+{scores[2]}={sum(scores)}（分）\n第四次：{4 * target}-{sum(scores)}={need}（分）\n\n答：第四次要考{need}分。"
        think = f"平均{target}分，四次共{4 * target}分，已有{sum(scores)}分，还差{need}分。"
    elif k == 4:
        total, kids = r.randint(30, 150), r.randint(4, 12)
        each, left = divmod(total, kids)
        thing = r.choice(["颗糖", "张贴纸", "支铅笔", "块饼干", "本练习册", "个橘子"])
        qn = f"{name}把{total}{thing}平均分给{kids}个小朋友，每人分到几{thing[0]}？还剩几{thing[0]}？"
        ans = f"{total}÷{kids}={each}" + (f"余{left}" if left else "") + f"\n\n答：每人分到{each}{thing[0]}，" + (f"还剩{left}{thing[0]}。" if left else "正好分完，没有剩余。")
        think = f"{kids}乘{each}是{kids * each}，{total}减去{kids * each}余{left}。"
    elif k == 5:
        length, width, price = r.randint(4, 15), r.randint(3, 10), r.choice([45, 60, 80, 95, 120, 150])
        qn = f"一间教室长{length}米，宽{width}米。铺地板每平方米需要{price}元，铺满整个地面要花多少钱？"
        ans = f"面积：{length}×{width}={length * width}（平方米）\n费用：{length * width}×{price}={length * width * price}（元）\n\n答：一共要花{length * width * price}元。"
        think = f"长乘宽得{length * width}平方米，再乘每平方米{price}元，共{length * width * price}元。"
    elif k == 6:
        per_day, pages = r.randint(12, 40), r.randint(150, 600)
        days = -(-pages // per_day)
        book = r.choice(["《西游记》", "一本小说", "一本历史书", "《红楼梦》", "一本科普读物", "《三国演义》"])
        qn = f"{name}读{book}，全书共{pages}页，每天读{per_day}页。至少需要多少天才能读完？"
        ans = f"{pages}÷{per_day}={pages // per_day}" + (f"余{pages % per_day}" if pages % per_day else "") + "\n" + (
            f"余下的{pages % per_day}页还要再读一天，所以是{pages // per_day}+1={days}（天）。" if pages % per_day else f"正好{days}天读完。"
        ) + f"\n\n答：至少需要{days}天。"
        think = f"{pages}除以{per_day}，商{pages // per_day}余{pages % per_day}，{'有余数要加一天，' if pages % per_day else ''}共{days}天。"
    else:
        principal, rate, years = 1000 * r.randint(2, 50), r.choice([2, 2.5, 3, 3.5, 4]), r.randint(1, 5)
        interest = round(principal * rate / 100 * years)
        qn = f"{name}把{principal}元存入银行，定期{years}年，年利率{rate:g}%（单利）。到期时能拿到多少利息？本息一共多少元？"
        ans = f"利息 = 本金×年利率×年数\n= {principal}×{rate:g}%×{years} = {interest}（元）\n本息合计：{principal}+{interest}={principal + interest}（元）\n\n答：利息{interest}元，本息共{principal + interest}元。"
        think = f"{principal}乘{rate:g}%是{round(principal * rate / 100)}，再乘{years}年，利息{interest}。"
    return qn, ans, think


EN_FIRST = ["Maria", "James", "Aisha", "Tom", "Priya", "Lucas", "Emma", "Omar", "Sofia", "Daniel", "Chloe", "Ben",
            "Hannah", "Mateo", "Grace", "Kenji", "Olivia", "Noah", "Fatima", "Leo", "Zoe", "Ethan", "Nadia", "Samuel",
            "Ruth", "Ivan", "Lena", "Marcus", "Ines", "Victor", "Amara", "Felix", "Yuki", "Diego", "Clara", "Hugo"]
EN_LAST = ["Smith", "Garcia", "Chen", "Okafor", "Novak", "Patel", "Kowalski", "Haddad", "Jensen", "Moreau", "Silva",
           "Tanaka", "Brown", "Nguyen", "Rossi", "Schmidt", "Kim", "Lopez", "Ivanova", "Adeyemi", "Murphy", "Costa"]
ZH_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程魏苏吕丁任沈姚卢"
ZH_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂英华玉萍红娟建文辉力兰婷宇浩凯鹏晨欣怡佳琪思雨子轩梓涵博文嘉悦"
# city: (rough annual mean °C, half the swing between the warmest and coldest month; negative south of the equator)
ZH_CITIES = {"北京": (13, 15), "上海": (17, 12), "广州": (22, 8), "深圳": (23, 7), "成都": (16, 10), "重庆": (18, 11),
             "杭州": (17, 12), "武汉": (17, 13), "西安": (14, 13), "南京": (16, 13), "天津": (13, 15), "苏州": (16, 12),
             "长沙": (17, 12), "郑州": (15, 13), "青岛": (13, 12), "沈阳": (8, 18), "大连": (11, 14), "厦门": (21, 8),
             "昆明": (15, 6), "哈尔滨": (5, 21), "济南": (14, 14), "福州": (20, 9), "合肥": (16, 13), "南宁": (22, 8),
             "贵阳": (15, 10), "兰州": (10, 13), "乌鲁木齐": (7, 19), "拉萨": (8, 9)}
EN_CITIES = {"Lisbon": (17, 6), "Oslo": (6, 10), "Nairobi": (19, 2), "Lima": (19, -3), "Osaka": (16, 11),
             "Denver": (10, 11), "Krakow": (9, 10), "Porto": (15, 5), "Hanoi": (24, 7), "Quito": (14, 1), "Tunis": (19, 8),
             "Perth": (19, -6), "Calgary": (4, 13), "Seville": (19, 8), "Tbilisi": (13, 12), "Bergen": (8, 7),
             "Accra": (27, 2), "Cusco": (12, -2), "Leeds": (10, 6), "Dublin": (10, 5), "Zagreb": (11, 11), "Hobart": (13, -4)}


def _temperatures(r: random.Random, climates: dict[str, tuple[int, int]], n: int) -> list[tuple[str, int, int]]:
    """(city, high, low) on one day of a random season."""
    season = r.uniform(-1, 1)  # -1: January, 1: July
    out = []
    for city in r.sample(sorted(climates), n):
        mean, swing = climates[city]
        mid = mean + season * swing + r.randint(-3, 3)
        spread = r.randint(4, 13)
        out.append((city, round(mid + spread / 2), round(mid - spread / 2)))
    return out


def _names(r: random.Random, n: int, zh: bool) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        name = (r.choice(ZH_SURNAMES) + "".join(r.sample(ZH_GIVEN, r.choice([1, 2])))) if zh else \
            f"{r.choice(EN_FIRST)} {r.choice(EN_LAST)}"
        if name not in out:
            out.append(name)
    return out


def table_en(r: random.Random) -> tuple[str, str, str]:
    """An English question over a small generated table, with computed answers."""
    k = r.randrange(4)
    if k == 0:
        names = _names(r, r.randint(5, 8), False)
        scores = [r.randint(48, 99) for _ in names]
        pass_mark = r.choice([50, 60, 65, 70])
        subject = r.choice(["chemistry", "history", "algebra", "biology", "geography", "French", "statistics"])
        table = "\n".join(f"{n}: {s}" for n, s in zip(names, scores))
        qn = r.choice([f"Here are the {subject} exam results for a small class:\n\n{table}\n\nWhat is the class average, who scored highest and lowest, and how many passed (pass mark {pass_mark})?",
                       f"{table}\n\nThese are {subject} scores. Give the mean, the top and bottom student, and the number of scores at or above {pass_mark}."])
        mean = sum(scores) / len(scores)
        hi, lo = max(zip(scores, names)), min(zip(scores, names))
        passed = sum(s >= pass_mark for s in scores)
        ans = (f"- Average: {sum(scores)} / {len(scores)} = {mean:.1f}\n- Highest: {hi[1]} with {hi[0]}\n"
               f"- Lowest: {lo[1]} with {lo[0]}\n- Passed: {passed} of {len(scores)}"
               + (f" ({', '.join(n for n, s in zip(names, scores) if s < pass_mark)} did not reach {pass_mark})." if passed < len(scores) else " (everyone passed)."))
        think = f"Sum {sum(scores)}, n {len(scores)}, mean {mean:.2f}. Max {hi[0]}, min {lo[0]}. {passed} pass."
    elif k == 1:
        goods = r.sample(EN_GOODS, r.randint(3, 6))
        lines = [(g[1] if q > 1 else g[0], q, r.randint(g[2], g[3])) for g, q in ((g, r.randint(1, 6)) for g in goods)]
        total = sum(q * p for _, q, p in lines)
        listing = "\n".join(f"- {q} {name} at ${p}" for name, q, p in lines)
        qn = r.choice([f"What is the total of this order?\n\n{listing}", f"I'm buying:\n{listing}\n\nHow much will I pay in total?",
                       f"Add up this shopping list for me:\n\n{listing}"])
        ans = (r.choice(["Multiply each quantity by its price, then add them up:", "Working through the list item by item:"]) + "\n\n"
               + "\n".join(f"- {q} {name} at ${p} each {'come' if q > 1 else 'comes'} to ${q * p}" for name, q, p in lines)
               + f"\n\nThe total for the order is ${total}.")
        if total >= 100 and r.random() < 0.5:
            ans += f" With a 10% discount on orders over $100 it would come to ${total * 0.9:.2f}."
        think = f"Line totals {', '.join(str(q * p) for _, q, p in lines)}; sum {total}."
    elif k == 2:
        days = _temperatures(r, EN_CITIES, r.randint(4, 7))
        cities, temps = [c for c, _, _ in days], [(h, lo) for _, h, lo in days]
        table = "\n".join(f"{c}: high {h} °C, low {lo} °C" for c, (h, lo) in zip(cities, temps))
        qn = r.choice([f"Yesterday's temperatures:\n\n{table}\n\nWhich city had the largest difference between its high and low, and which was warmest?",
                       f"{table}\n\nFor each city give the daily range, then name the city with the biggest range."])
        ranges = [(h - lo, c) for c, (h, lo) in zip(cities, temps)]
        ans = ("Daily ranges:\n" + "\n".join(f"- {c}: {h} − ({lo}) = {h - lo} °C" if lo < 0 else f"- {c}: {h} − {lo} = {h - lo} °C"
                                            for c, (h, lo) in zip(cities, temps))
               + f"\n\nThe largest range was in {max(ranges)[1]} ({max(ranges)[0]} °C). The warmest high was {max(zip((t[0] for t in temps), cities))[1]} at {max(t[0] for t in temps)} °C.")
        think = f"Ranges: {', '.join(f'{c} {d}' for d, c in ranges)}. Max {max(ranges)[1]}."
    else:
        days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"][: r.randint(3, 5)]
        shifts = []
        for _ in days:
            start = r.randint(14, 22) * 30  # minutes after midnight: 7:00 to 11:00
            shifts.append((start, start + r.randint(10, 20) * 30))
        fmt = lambda m: f"{m // 60}:{m % 60:02d}"  # noqa: E731
        table = "\n".join(f"{d}: {fmt(a)}–{fmt(b)}" for d, (a, b) in zip(days, shifts))
        name = r.choice(EN_FIRST)
        qn = r.choice([f"{name}'s timesheet for the week:\n\n{table}\n\nHow many hours did {name} work in total?",
                       f"Total these shifts in hours and minutes:\n{table}"])
        mins = [b - a for a, b in shifts]
        ans = ("Work out each day's hours, then add them up:\n\n"
               + "\n".join(f"- On {d} the shift lasted {m // 60} hours" + (f" and {m % 60} minutes" if m % 60 else "")
                           for d, m in zip(days, mins))
               + f"\n\nThat makes {sum(mins)} minutes in total, which is {sum(mins) // 60} hours"
               + (f" and {sum(mins) % 60} minutes." if sum(mins) % 60 else "."))
        think = f"Minutes per day {', '.join(map(str, mins))}; total {sum(mins)}."
    return qn, ans, think


def table_zh(r: random.Random) -> tuple[str, str, str]:
    """A Chinese question over a small generated table, with computed answers."""
    k = r.randrange(4)
    if k == 0:
        names = _names(r, r.randint(5, 8), True)
        scores = [r.randint(52, 100) for _ in names]
        subject = r.choice(["数学", "语文", "英语", "物理", "化学", "生物", "历史", "地理"])
        table = "\n".join(f"{n}：{s}分" for n, s in zip(names, scores))
        qn = r.choice([f"下面是几位同学的{subject}成绩：\n{table}\n请算出平均分，并指出最高分和最低分各是谁。",
                       f"{table}\n以上是{subject}小测的成绩，平均分是多少？谁考得最好？"])
        hi, lo = max(zip(scores, names)), min(zip(scores, names))
        ans = (f"总分：{'+'.join(map(str, scores))}={sum(scores)}（分）\n平均分：{sum(scores)}÷{len(scores)}≈{sum(scores) / len(scores):.1f}（分）\n"
               f"最高分：{hi[1]}，{hi[0]}分\n最低分：{lo[1]}，{lo[0]}分")
        think = f"共{len(scores)}人，总分{sum(scores)}，平均约{sum(scores) / len(scores):.1f}。最高{hi[0]}，最低{lo[0]}。"
    elif k == 1:
        goods = r.sample(ZH_GOODS, r.randint(3, 6))
        lines = [(g[0], g[1], r.randint(1, 6), r.randint(g[2], g[3])) for g in goods]
        total = sum(q * p for _, _, q, p in lines)
        listing = "\n".join(f"{name} {q}{unit}，单价{p}元" for name, unit, q, p in lines)
        qn = r.choice([f"帮我算一下这张购物清单一共多少钱：\n{listing}", f"{listing}\n以上商品合计多少元？",
                       f"我买了这些东西：\n{listing}\n总共要付多少钱？"])
        ans = "\n".join(f"{name}：{q}×{p}={q * p}（元）" for name, _, q, p in lines) + f"\n\n合计：{'+'.join(str(q * p) for *_, q, p in lines)}={total}（元）。"
        think = f"逐项相乘再相加，共{total}元。"
    elif k == 2:
        days = _temperatures(r, ZH_CITIES, r.randint(4, 7))
        cities, temps = [c for c, _, _ in days], [(h, lo) for _, h, lo in days]
        table = "\n".join(f"{c}：最高{h}℃，最低{lo}℃" for c, (h, lo) in zip(cities, temps))
        qn = r.choice([f"下面是某天几个城市的气温：\n{table}\n哪个城市的昼夜温差最大？", f"{table}\n请分别算出各城市的温差，并找出温差最大的城市。"])
        ranges = [(h - lo, c) for c, (h, lo) in zip(cities, temps)]
        ans = ("用最高气温减去最低气温，就是昼夜温差：\n" + "\n".join(r.choice([
            f"{c}：最高{h}℃，最低{lo}℃，相差{h - lo}℃；", f"{c}的温差是{h}-({lo})={h - lo}℃；" if lo < 0 else f"{c}的温差是{h}-{lo}={h - lo}℃；",
            f"{c}从{lo}℃到{h}℃，温差{h - lo}℃；"]) for c, (h, lo) in zip(cities, temps))
               + f"\n\n温差最大的是{max(ranges)[1]}，为{max(ranges)[0]}℃。")
        think = f"温差依次为{'、'.join(str(d) for d, _ in ranges)}，最大的是{max(ranges)[1]}。"
    else:
        nums = r.sample(range(1, 300), r.randint(6, 10))
        srt = sorted(nums)
        mid = len(srt) // 2
        median = srt[mid] if len(srt) % 2 else (srt[mid - 1] + srt[mid]) / 2
        qn = r.choice([f"把下面这些数从小到大排列，并求出中位数：{'，'.join(map(str, nums))}",
                       f"一组数据：{'、'.join(map(str, nums))}。请排序并计算中位数和平均数。"])
        ans = (f"从小到大：{' < '.join(map(str, srt))}\n共{len(srt)}个数，"
               + (f"中位数是第{mid + 1}个数：{median}。" if len(srt) % 2 else f"中位数是第{mid}个和第{mid + 1}个数的平均：({srt[mid - 1]}+{srt[mid]})÷2={median:g}。")
               + f"\n平均数：{sum(nums)}÷{len(nums)}≈{sum(nums) / len(nums):.2f}。")
        think = f"排好序，{len(srt)}个数，中位数{median:g}，总和{sum(nums)}。"
    return qn, ans, think


def month_parts(a: dt.date, b: dt.date) -> list[tuple[int, int, int]]:
    """(year, month, days) counted from a (exclusive) to b (inclusive), month by month."""
    if (a.year, a.month) == (b.year, b.month):
        return [(a.year, a.month, b.day - a.day)]
    parts = [(a.year, a.month, calendar.monthrange(a.year, a.month)[1] - a.day)]
    y, m = a.year, a.month
    while True:
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        if (y, m) == (b.year, b.month):
            parts.append((y, m, b.day))
            return parts
        parts.append((y, m, calendar.monthrange(y, m)[1]))


def dates_en(r: random.Random) -> tuple[str, str, str]:
    """An English calendar question with a worked answer."""
    a = dt.date(1990, 1, 1) + dt.timedelta(days=r.randrange(15000))
    if r.random() < 0.5:
        b = a + dt.timedelta(days=r.randint(20, 330))
        parts = month_parts(a, b)
        n = (b - a).days
        assert sum(p[2] for p in parts) == n
        fa, fb = f"{calendar.month_name[a.month]} {a.day}, {a.year}", f"{calendar.month_name[b.month]} {b.day}, {b.year}"
        qn = r.choice([f"How many days are there from {fa} to {fb}?", f"Count the days between {fa} and {fb}.",
                       f"If a project starts on {fa} and ends on {fb}, how many days long is it?"])
        if len(parts) == 1:
            ans = f"Both dates fall in {calendar.month_name[a.month]} {a.year}, so the answer is {b.day} − {a.day} = {n} days."
        else:
            middle = parts[1:-1]
            ans = (f"Count the days left in {calendar.month_name[a.month]} after the {a.day}{_th(a.day)}: "
                   f"{calendar.monthrange(a.year, a.month)[1]} − {a.day} = {parts[0][2]}.")
            if middle:
                ans += (" Then add the whole months in between (" + ", ".join(f"{calendar.month_name[m]} has {d}" for _, m, d in middle)
                        + f"), which make {sum(p[2] for p in middle)} days.")
            ans += (f" Finally add the {b.day} day{'s' if b.day != 1 else ''} of {calendar.month_name[b.month]}.\n\n"
                    f"Total: {' + '.join(str(x) for x in ([parts[0][2], sum(p[2] for p in middle), b.day] if middle else [parts[0][2], b.day]))}"
                    f" = {n} days (the first day is not counted).")
        think = f"{fa} to {fb}. Month pieces: {', '.join(str(p[2]) for p in parts)}. Sum {n}."
    else:
        n = r.randint(30, 400)
        b = a + dt.timedelta(days=n)
        fa = f"{calendar.day_name[a.weekday()]}, {calendar.month_name[a.month]} {a.day}, {a.year}"
        qn = r.choice([f"Today is {fa}. What will the date be in {n} days, and which day of the week?",
                       f"A parcel was sent on {fa} and arrives {n} days later. On what date and weekday does it arrive?"])
        weeks, extra = divmod(n, 7)
        ans = (f"{n} days is {weeks} weeks and {extra} day{'s' if extra != 1 else ''}. Whole weeks keep the weekday, so the "
               f"weekday moves {extra} place{'s' if extra != 1 else ''} on from {calendar.day_name[a.weekday()]}: "
               f"{calendar.day_name[b.weekday()]}.\n\nCounting the days on the calendar gives "
               f"{calendar.day_name[b.weekday()]}, {calendar.month_name[b.month]} {b.day}, {b.year}.")
        think = f"{n} = 7*{weeks} + {extra}. {calendar.day_name[a.weekday()]} + {extra} -> {calendar.day_name[b.weekday()]}. Date {b.isoformat()}."
    return qn, ans, think


def _th(d: int) -> str:
    return "th" if 10 <= d % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")


ZH_WEEKDAYS = ["星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"]


def dates_zh(r: random.Random) -> tuple[str, str, str]:
    """A Chinese calendar question with a worked answer."""
    a = dt.date(1990, 1, 1) + dt.timedelta(days=r.randrange(15000))
    fa = f"{a.year}年{a.month}月{a.day}日"
    if r.random() < 0.5:
        b = a + dt.timedelta(days=r.randint(20, 330))
        fb = f"{b.year}年{b.month}月{b.day}日"
        parts = month_parts(a, b)
        n = (b - a).days
        qn = r.choice([f"从{fa}到{fb}一共有多少天？", f"{fa}到{fb}之间相隔多少天？", f"一个活动从{fa}开始，到{fb}结束，共经历了多少天（不算开始当天）？"])
        if len(parts) == 1:
            ans = f"两个日期在同一个月，直接相减：{b.day}-{a.day}={n}（天）。"
        else:
            middle = parts[1:-1]
            ans = f"先算开始那个月剩下的天数：{a.month}月共有{calendar.monthrange(a.year, a.month)[1]}天，{a.day}日之后还剩{parts[0][2]}天。"
            if middle:
                ans += f"中间的整月有{'、'.join(f'{m}月' for _, m, _ in middle)}，一共{sum(p[2] for p in middle)}天。"
            ans += f"最后一个月算到{b.day}日，是{b.day}天。\n\n合计：{parts[0][2]}+" + (f"{sum(p[2] for p in middle)}+" if middle else "") + f"{b.day}={n}（天）。"
        think = f"分段：{'、'.join(str(p[2]) for p in parts)}，加起来{n}天。"
    else:
        n = r.randint(30, 400)
        b = a + dt.timedelta(days=n)
        weeks, extra = divmod(n, 7)
        qn = r.choice([f"今天是{fa}，{ZH_WEEKDAYS[a.weekday()]}。{n}天以后是几月几日，星期几？",
                       f"{fa}（{ZH_WEEKDAYS[a.weekday()]}）寄出的包裹，{n}天后送到。送到那天是哪一天、星期几？"])
        ans = (f"{n}天是{weeks}个星期零{extra}天。整星期不改变星期几，所以从{ZH_WEEKDAYS[a.weekday()]}往后数{extra}天，"
               f"是{ZH_WEEKDAYS[b.weekday()]}。\n\n日期按日历往后推{n}天，是{b.year}年{b.month}月{b.day}日，{ZH_WEEKDAYS[b.weekday()]}。")
        think = f"{n}除以7商{weeks}余{extra}，{ZH_WEEKDAYS[a.weekday()]}往后{extra}天是{ZH_WEEKDAYS[b.weekday()]}，日期{b.isoformat()}。"
    return qn, ans, think


# hand-written explanations: (question, answer), each used once
EN_WRITTEN = [
    ("Why is the sky blue?",
     "Sunlight contains every colour, but air molecules scatter short wavelengths much more strongly than long ones "
     "(Rayleigh scattering goes roughly with the inverse fourth power of the wavelength). Blue light is therefore bounced "
     "around the sky and reaches your eyes from every direction, while most red and yellow light passes straight through. "
     "Violet is scattered even more, but the Sun emits less of it and our eyes are less sensitive to it, so the sky looks blue."),
    ("What is the difference between weather and climate?",
     "Weather is what the atmosphere is doing over hours or days: today's rain, tomorrow's heat. Climate is the statistics "
     "of weather over decades in a region, such as average temperatures, typical rainfall and how often extremes happen. "
     "A cold week says little about the climate; thirty years of records do."),
    ("Give me three tips for writing a clear email at work.",
     "1. Put the request or the decision you need in the first two lines, not at the end.\n"
     "2. Keep one topic per email, and make the subject line say what it is about.\n"
     "3. If you need an answer by a certain date, say so explicitly, and name who should act."),
    ("How do vaccines train the immune system?",
     "A vaccine shows the immune system a harmless version or piece of a pathogen: an inactivated virus, a protein from its "
     "surface, or instructions (mRNA) for cells to make that protein briefly. The body responds as if infected, producing "
     "antibodies and memory B and T cells. If the real pathogen arrives later, those memory cells recognise it and mount a "
     "fast response, often before the person gets seriously ill."),
    ("Explain compound interest with a simple example.",
     "With compound interest you earn interest on the interest already added. Put $1,000 in an account paying 5% a year: "
     "after one year you have $1,050. In the second year the 5% is computed on $1,050, giving $1,102.50, and after ten "
     "years you have about $1,629 instead of the $1,500 simple interest would give. The longer the time, the bigger the gap."),
    ("What does a database index do?",
     "An index is a separate data structure, usually a B-tree, that keeps the values of one or more columns in sorted order "
     "with pointers to the rows. A query filtering on those columns can then jump to the matching rows instead of scanning "
     "the whole table. The price is extra storage and slower writes, since every insert or update must maintain the index too."),
    ("Summarize the causes of the French Revolution in a few sentences.",
     "By the late 1780s the French state was nearly bankrupt after costly wars, including support for the American Revolution. "
     "Taxes fell mostly on commoners while the clergy and nobility kept their privileges, and bad harvests drove bread prices up. "
     "Enlightenment ideas about rights and popular sovereignty gave the discontent a language, and when the Estates-General met "
     "in 1789 the Third Estate broke away to form the National Assembly."),
    ("How can I fall asleep faster?",
     "Keep a regular schedule, even at weekends, so your body clock knows when night starts. Avoid caffeine after early "
     "afternoon and heavy meals late in the evening. Dim the lights and put screens away for the last half hour, keep the "
     "bedroom cool and dark, and if you are still awake after about twenty minutes, get up and do something quiet until you feel sleepy."),
    ("What is plate tectonics?",
     "Plate tectonics is the theory that Earth's outer shell is broken into large rigid plates that move a few centimetres a "
     "year over the hotter, softer mantle beneath. Where plates pull apart, new crust forms at mid-ocean ridges; where they "
     "collide, one may sink under the other, building mountains and volcanic arcs. Most earthquakes happen along plate boundaries."),
    ("Write a haiku about autumn rain.",
     "Cold rain on the roof,\nmaple leaves slide down the glass;\nthe kettle starts up."),
    ("Is it better to rent or buy a home?",
     "It depends on how long you will stay, local prices and your finances. Buying usually pays off only if you stay long "
     "enough (often five years or more) to outweigh transaction costs, and it ties up savings in a deposit. Renting keeps "
     "you flexible and shifts repairs to the landlord. A useful check is the price-to-rent ratio: if buying costs far more "
     "than twenty years of rent, renting and investing the difference is often the better deal."),
    ("What is recursion in programming?",
     "A recursive function solves a problem by calling itself on a smaller version of the same problem. It needs a base case "
     "that is answered directly, and each call must move towards it. Computing a factorial is the classic example: "
     "factorial(n) is n times factorial(n - 1), and factorial(0) is 1. Without a base case the calls never stop and the "
     "program runs out of stack."),
    ("Explain supply and demand to a twelve-year-old.",
     "Imagine a new video game everyone wants, but the shop only has a few copies. Lots of buyers and little stock means the "
     "shop can charge more: that is high demand and low supply. A year later, plenty of copies are left and fewer people "
     "care, so the price drops. Prices move until the number of people willing to buy roughly matches what sellers have."),
    ("What should I check before signing a rental lease?",
     "Read how long the lease runs and what it costs to leave early, how much the deposit is and when it is returned, who "
     "pays for which utilities and repairs, and whether pets or subletting are allowed. Walk through the flat and photograph "
     "any damage before moving in, and get every promise the landlord makes written into the contract."),
    ("How does a refrigerator keep food cold?",
     "A fridge moves heat from inside to outside using a refrigerant that boils at a low temperature. The liquid evaporates "
     "in coils inside the fridge, absorbing heat from the air. A compressor then squeezes the vapour, which heats it up, and "
     "it releases that heat through the coils at the back as it condenses into liquid again. The cycle repeats as long as the thermostat asks for cooling."),
    ("Suggest a name for a bakery that specializes in sourdough.",
     "Some ideas: \"Slow Rise\", \"Wild Crumb\", \"The Starter Jar\", \"Crust & Culture\" and \"Levain Lane\". \"Slow Rise\" is "
     "short and hints at the long fermentation that makes sourdough special."),
    ("Why do onions make you cry?",
     "Cutting an onion breaks its cells and mixes enzymes with sulfur compounds. One product is a gas, syn-propanethial "
     "S-oxide, that drifts up and irritates the nerves in your eyes, so your tear glands flush it out. Chilling the onion, "
     "using a sharp knife that crushes fewer cells, or cutting near a running fan reduces the effect."),
    ("What is the difference between a virus and a bacterium?",
     "Bacteria are single living cells that can grow and divide on their own, and many are harmless or useful. Viruses are "
     "much smaller packages of genetic material in a protein coat; they cannot reproduce without hijacking a host cell. "
     "That is why antibiotics, which attack bacterial structures, do nothing against viral infections like the flu."),
    ("Draft a polite message declining a meeting invitation.",
     "Hi Sam,\n\nThank you for the invitation. Unfortunately I can't join on Thursday because of a prior commitment. "
     "Could you share the notes afterwards, or let me know if there is anything I should prepare in advance?\n\nBest regards,\nAlex"),
    ("What is the Pythagorean theorem used for?",
     "In a right triangle, the square of the hypotenuse equals the sum of the squares of the other two sides: a² + b² = c². "
     "It lets you find a missing side, check whether a corner is square (builders use a 3-4-5 rope), and compute straight-line "
     "distances, for example between two points on a map or a screen."),
    ("How do I start learning to run?",
     "Begin with run-walk intervals: one minute of easy running, two minutes of walking, repeated for 20 to 30 minutes, three "
     "times a week. Each week lengthen the running parts a little. Run slowly enough to talk, wear comfortable shoes, and "
     "take a rest day between sessions; most beginner injuries come from doing too much too soon."),
    ("Why did the Roman Empire split into East and West?",
     "The empire had become too large to govern and defend from one place. Diocletian divided its administration at the end "
     "of the third century, and after Theodosius I died in 395 it was permanently split between his sons. The Greek-speaking "
     "East was richer and more urban, and as the Western half weakened under invasions and economic strain, the two drifted apart."),
    ("Translate the idea of 'technical debt' into plain language.",
     "Technical debt is the extra work you will have later because you took a shortcut now. Like a loan, it can be worth it "
     "to ship something quickly, but it charges interest: every change to messy code takes longer until someone pays it back by cleaning it up."),
    ("What are black holes?",
     "A black hole is a region where so much mass is packed into so small a space that gravity prevents anything, even "
     "light, from escaping once it crosses the boundary called the event horizon. Stellar black holes form when massive "
     "stars collapse at the end of their lives; supermassive ones, millions of times heavier than the Sun, sit at the centres of most galaxies."),
]
ZH_WRITTEN = [
    ("天空为什么是蓝色的？",
     "太阳光包含各种颜色的光。空气分子对波长短的光散射得更强，这叫瑞利散射。蓝光被散射到天空的各个方向，所以我们无论朝哪里看都能看到蓝色；"
     "紫光虽然散射得更多，但阳光中紫光较少，人眼对紫光也不太敏感，于是天空看起来是蓝色的。"),
    ("天气和气候有什么区别？",
     "天气指的是几小时到几天内的大气状况，比如今天下雨、明天升温。气候则是一个地区几十年天气的统计特征，包括平均气温、降水量和极端天气出现的频率。"
     "某一周很冷说明不了气候变化，三十年的观测记录才能说明问题。"),
    ("怎样写好一封工作邮件？给三条建议。",
     "1. 开头两行就写清楚你需要对方做什么决定或提供什么，不要放到最后。\n2. 一封邮件只讲一件事，主题行要能看出内容。\n3. 如果有截止时间，直接写明日期，并点名由谁负责。"),
    ("疫苗是怎样起作用的？",
     "疫苗让免疫系统提前“认识”病原体：可以是灭活的病毒、病原体表面的一段蛋白质，也可以是让细胞短暂制造这种蛋白质的mRNA。身体会像真的被感染一样产生抗体和记忆细胞。"
     "以后真正的病原体入侵时，记忆细胞能迅速识别并发动反击，往往在人严重发病之前就把它清除了。"),
    ("用一个例子解释复利。",
     "复利就是“利滚利”：已经得到的利息也会继续产生利息。比如把1000元存入年利率5%的账户，一年后变成1050元；第二年的利息按1050元计算，得到1102.5元。"
     "十年后大约有1629元，而单利只有1500元。时间越长，两者差距越大。"),
    ("数据库索引有什么用？",
     "索引是单独维护的一种数据结构，常见的是B树，它把某些列的值按顺序排好，并记录对应行的位置。按这些列查询时，数据库可以直接定位到符合条件的行，而不必扫描整张表。"
     "代价是占用额外空间，并且每次插入或更新数据时都要同步维护索引，写入会变慢。"),
    ("怎样才能更快入睡？",
     "尽量每天固定时间上床和起床，周末也不例外；下午以后少喝咖啡和浓茶，晚饭不要吃得太晚太饱。睡前半小时调暗灯光、放下手机，卧室保持凉爽安静。"
     "如果躺了二十分钟还睡不着，不妨起来做点安静的事，等有困意再回到床上。"),
    ("什么是板块构造学说？",
     "板块构造学说认为，地球的岩石圈分裂成许多巨大的板块，它们漂浮在较热、较软的软流圈上，每年移动几厘米。板块分离的地方，例如大洋中脊，会形成新的地壳；"
     "板块碰撞的地方会形成山脉，或者一个板块俯冲到另一个板块下面，引发火山活动。世界上大多数地震都发生在板块交界处。"),
    ("写一首关于秋雨的短诗。",
     "窗外一夜雨，\n梧桐叶满阶。\n灯下翻旧信，\n茶凉人未来。"),
    ("租房好还是买房好？",
     "要看你打算住多久、当地房价和自己的财务状况。买房通常要住得足够久，才能摊薄交易税费和贷款利息，而且首付会占用大量积蓄；租房更灵活，维修也主要由房东负责。"
     "可以参考租售比：如果房价远高于二三十年的租金总和，租房并把差额用于投资往往更划算。"),
    ("编程中的递归是什么意思？",
     "递归是指函数在执行过程中调用自身，把大问题拆成规模更小的同类问题来解决。递归必须有一个可以直接给出答案的终止条件，并且每次调用都要向它靠近。"
     "例如阶乘：n的阶乘等于n乘以n-1的阶乘，而0的阶乘等于1。如果没有终止条件，调用会无限进行下去，最终导致栈溢出。"),
    ("给初中生讲讲供求关系。",
     "假设一款新游戏机人人都想要，但商店只进了几台。想买的人多、货少，商家就可以卖高价，这就是需求大于供给。一年以后，店里还剩很多台，想买的人也少了，价格自然下降。"
     "价格会不断调整，直到愿意买的人数和商家能卖出的数量大致相当。"),
    ("签租房合同前要注意什么？",
     "先看清租期多长、提前退租要付什么违约金，押金是多少、什么时候退还；再确认水电燃气和物业费由谁承担，出了故障谁负责维修，能不能养宠物或转租。"
     "入住前把房屋里里外外检查一遍，已有的损坏拍照留证，房东口头答应的事情一定要写进合同。"),
    ("冰箱为什么能制冷？",
     "冰箱靠制冷剂把热量从箱内“搬”到箱外。液态制冷剂在冰箱内部的管道里蒸发，吸收箱内空气的热量；压缩机把蒸气压缩，使其温度升高，"
     "再通过冰箱背面的散热管把热量释放到室内，制冷剂随之重新凝结成液体。这个循环不断重复，直到温控器认为温度已经足够低。"),
    ("切洋葱为什么会流眼泪？",
     "切洋葱时细胞被破坏，细胞里的酶和含硫化合物混合，生成一种挥发性气体——硫代丙醛-S-氧化物。它飘到眼睛里会刺激神经，泪腺就分泌泪水把它冲走。"
     "切之前把洋葱放进冰箱冷藏一会儿、用锋利的刀、在通风处切，都能减轻这种情况。"),
    ("病毒和细菌有什么不同？",
     "细菌是能独立生长繁殖的单细胞生物，很多细菌对人无害甚至有益。病毒要小得多，只是由蛋白质外壳包裹的一段遗传物质，必须进入宿主细胞、借用细胞的机器才能复制。"
     "抗生素针对的是细菌特有的结构，所以对流感这类病毒感染不起作用。"),
    ("帮我写一段婉拒会议邀请的话。",
     "王经理您好：\n\n感谢邀请。很抱歉周四下午我已有其他安排，无法参加这次会议。会后能否把会议纪要发我一份？如果有需要我提前准备的材料，也请随时告诉我。\n\n祝好！\n小李"),
    ("勾股定理有什么用？",
     "勾股定理说的是：直角三角形两条直角边的平方和等于斜边的平方，即a²+b²=c²。利用它可以求直角三角形中未知的边长，检验一个角是不是直角"
     "（木工常用“勾三股四弦五”来找直角），还可以计算平面上两点之间的直线距离。"),
    ("零基础怎么开始跑步？",
     "可以从“跑走结合”开始：慢跑一分钟、步行两分钟，交替进行二三十分钟，每周三次。之后每周把跑步的时间稍微延长一点。"
     "跑步时的速度以还能正常说话为宜，穿合脚的跑鞋，两次训练之间休息一天。新手受伤大多是因为一开始跑得太多太快。"),
    ("丝绸之路为什么重要？",
     "丝绸之路是古代连接中国与中亚、西亚乃至欧洲的陆上贸易路线网络，兴起于汉代。沿线运输的不只是丝绸，还有瓷器、香料、马匹和金银器。"
     "更重要的是，佛教、造纸术、各种作物和艺术风格也随着商队传播，深刻影响了东西方文明的交流。"),
    ("什么是黑洞？",
     "黑洞是质量高度集中在极小空间里的天体，引力强到连光都无法逃脱，这个“有进无出”的边界叫作事件视界。恒星级黑洞由大质量恒星在生命末期坍缩形成；"
     "而质量是太阳数百万倍甚至更多的超大质量黑洞，则位于大多数星系的中心。"),
    ("用通俗的话解释“技术债”。",
     "技术债就是现在为了图快走了捷径，将来要多付出的工作量。它像一笔贷款：为了尽快上线，欠一点有时是值得的，但它会“收利息”——代码越乱，以后每次修改就越费时间，"
     "直到有人花时间把它整理干净，这笔债才算还清。"),
    ("为什么要做代码审查？",
     "代码审查能在代码合入之前发现缺陷和安全隐患，比上线后再修便宜得多。它也是团队分享知识的方式：审查者了解了新代码，作者也能学到别人的经验。"
     "此外，统一的审查标准能让整个代码库的风格保持一致，后来的人更容易读懂。"),
    ("温室效应是怎么回事？",
     "阳光穿过大气层照到地面，地面吸收后以红外线的形式向外散发热量。二氧化碳、水汽、甲烷等温室气体会吸收一部分红外线，再向各个方向辐射，其中一部分回到地面，"
     "使地表比没有大气时温暖得多。温室效应本身是生命存在的前提，问题在于人类排放让温室气体浓度快速上升，导致全球变暖。"),
]


def _keyword(text: str) -> str:
    words = [w.strip(".,;:()\"'") for w in text.split()]
    long = [w for w in words if len(w) >= 6 and w.isascii()]
    return long[0] if long else words[0]


def _first_clause(text: str, n: int = 12) -> str:
    words = re.split(r"(?<=[.;:!?])\s", text, maxsplit=1)[0].split()
    return " ".join(words[:n]).rstrip(".,;:")


class Kinds:
    """Each task kind: an endless (or exhausted) stream of candidate units, in one language."""

    def __init__(self, r: random.Random, docs: list[Doc], ref: list[RefEntry], pg: list[tuple[str, str]]) -> None:
        self.r = r
        docs, ref, pg = list(docs), list(ref), list(pg)
        r.shuffle(docs)
        r.shuffle(ref)
        r.shuffle(pg)
        cut = len(pg) // 4  # a quarter of the messages go from Chinese to English, the rest the other way
        self.streams: dict[str, dict[str, Iterator[Unit]]] = {
            "en": {"stdlib_doc": self._docs(docs), "language_ref": self._ref(ref), "math": self._math("en"),
                   "calendar": self._dates("en"), "translate_zh_en": self._translate(pg[:cut], "en"),
                   "table": self._table("en"),
                   "written": self._written(EN_WRITTEN, "en")},
            "zh": {"translate_en_zh": self._translate(pg[cut:], "zh"), "math": self._math("zh"), "table": self._table("zh"),
                   "calendar": self._dates("zh"), "written": self._written(ZH_WRITTEN, "zh")},
        }
        self.weights = {"en": {"stdlib_doc": 32, "language_ref": 14, "math": 14, "table": 12, "calendar": 6,
                               "translate_zh_en": 14, "written": 8},
                        "zh": {"translate_en_zh": 40, "math": 20, "table": 24, "calendar": 8, "written": 8}}

    def next(self, lang: str, allowed: Callable[[str], bool] = lambda k: True) -> Unit:
        """A candidate unit of a kind drawn by weight among those not exhausted."""
        while True:
            kinds = [k for k in self.weights[lang] if k in self.streams[lang] and allowed(k)]
            if not kinds:
                raise SystemExit(f"out of material for {lang}")
            kind = self.r.choices(kinds, [self.weights[lang][k] for k in kinds])[0]
            unit = next(self.streams[lang][kind], None)
            if unit is None:
                del self.streams[lang][kind]
                continue
            return unit

    # --- English: the standard library and the language reference ---

    def _docs(self, docs: list[Doc]) -> Iterator[Unit]:
        r = self.r
        for d in docs:
            asks = [f"What does `{d.name}` do?", f"What does the Python {d.what} `{d.name}` do?",
                    f"Explain `{d.short}` from Python's `{d.module}` module.",
                    f"I came across `{d.short}` in some code that imports `{d.module}`. What is it for?",
                    f"How does `{d.name}` work?", f"Can you summarize what `{d.name}` does?",
                    f"Briefly describe the `{d.short}` {d.what} in the `{d.module}` module.",
                    f"In Python, what is `{d.name}` used for?", f"what does {d.name} do",
                    f"Quick question: what's `{d.short}` in `{d.module}`?"]
            intro = r.choice(["", "", "", f"`{d.name}` is a {d.what} of the standard library.",
                              f"From the `{d.module}` documentation:", f"Here is what the docstring of `{d.short}` says.",
                              f"Short version: it is a {d.what} in `{d.module}`."])
            outro = r.choice(["", "", "", "", f"Run `help({d.name})` in an interpreter for the full details.",
                              f"It ships with Python; just `import {d.module}`."])
            out = "\n\n".join(x for x in (intro, *d.paras, outro) if x)
            think = r.choice([
                f"The question is about `{d.name}`. Its documentation starts: \"{_first_clause(d.paras[0])}\". I'll relay that clearly.",
                f"`{d.short}` is a {d.what} in `{d.module}`. Key point: {_first_clause(d.paras[0], 9)}. Keep it short.",
                f"Recall {d.name}: {_first_clause(d.paras[0], 10)}. Mention what it returns or changes.",
            ])
            yield Unit("en", "stdlib_doc", r.choice(asks), "", out, think)

    def _ref(self, ref: list[RefEntry]) -> Iterator[Unit]:
        r = self.r
        for e in ref:
            t = e.title
            lc = t if t[:2].isupper() else t[:1].lower() + t[1:]
            if e.entry:
                asks = [f"What does `{t}` do in Python?", f"Explain `{t}`.", f"How is `{t}` used?",
                        f"Describe `{t}` briefly.", f"What is `{t}` for?"]
            else:
                asks = [f"Explain {lc} in Python.", f"How does Python handle {lc}?",
                        f"What does the Python language reference say about {lc}?",
                        f"Give me an overview of {lc} in Python.", f"I'm learning Python. Can you explain {lc}?"]
            think = r.choice([f"Topic: {t}. The reference explains: {_first_clause(e.paras[0], 10)}. Summarize faithfully.",
                              f"They want {t} explained. Start from the definition, then the detail that matters most."])
            yield Unit("en", "language_ref", r.choice(asks), "", "\n\n".join(e.paras), think)

    # --- translation ---

    def _translate(self, pairs: list[tuple[str, str]], lang: str) -> Iterator[Unit]:
        """PostgreSQL messages: lang is the answer's language (zh: English to Chinese)."""
        r = self.r
        i = 0
        while i < len(pairs):
            src_i, dst_i = (0, 1) if lang == "zh" else (1, 0)
            first = pairs[i][dst_i]
            single = _ENDS_SENTENCE.search(first) or len(first) < 20
            n = 1 if single and r.random() < 0.7 else r.randint(2, 5)
            batch = pairs[i : i + n]
            i += n
            if n > 1 and len(batch) == 1:  # the last message, which needs the list form
                return
            if len(batch) == 1:
                src, dst = batch[0][src_i], batch[0][dst_i]
                if lang == "zh":
                    ask = r.choice(["请把下面这句话翻译成中文。", "翻译成中文：", "请将以下 PostgreSQL 提示信息翻译为简体中文。",
                                    "这句英文是什么意思？请给出中文译文。", "把这条数据库报错信息译成中文："])
                else:
                    ask = r.choice(["Translate into English:", "Please translate this Chinese message into English.",
                                    "What is the English for this PostgreSQL message?", "Translate the following text to English."])
            else:
                src = "\n".join(f"{k + 1}. {p[src_i]}" for k, p in enumerate(batch))
                dst = "\n".join(f"{k + 1}. {p[dst_i]}" for k, p in enumerate(batch))
                if lang == "zh":
                    ask = r.choice([f"请把下面{len(batch)}条软件提示信息翻译成中文，保持编号。", "把以下英文逐条译成中文：",
                                    "下面是 PostgreSQL 的几条消息，请翻译成简体中文。"])
                else:
                    ask = r.choice([f"Translate these {len(batch)} messages into English, keeping the numbering.",
                                    "Translate each line into English:", "Please give English versions of these PostgreSQL messages."])
            en_text = src if lang == "zh" else dst
            if lang == "zh":
                think = r.choice([f"这是 PostgreSQL 的提示信息，关键词是“{_keyword(en_text)}”。译文要准确简洁，术语用数据库领域的通行译法。",
                                  f"原文共{len(en_text.split())}个英文单词。先弄清句子结构，再按中文语序表达，命令名和参数名保持原样。"])
            else:
                think = r.choice([f"A PostgreSQL message in Chinese. The English should use the standard term \"{_keyword(en_text)}\".",
                                  "Translate faithfully and keep it in the terse style of database error messages."])
            yield Unit(lang, "translate_zh_en" if lang == "en" else "translate_en_zh", ask, src, dst, think)

    # --- generated ---

    def _math(self, lang: str) -> Iterator[Unit]:
        while True:
            q, a, t = (math_en if lang == "en" else math_zh)(self.r)
            yield Unit(lang, "math", q, "", a, t)

    def _table(self, lang: str) -> Iterator[Unit]:
        while True:
            q, a, t = (table_en if lang == "en" else table_zh)(self.r)
            yield Unit(lang, "table", q, "", a, t)

    def _dates(self, lang: str) -> Iterator[Unit]:
        while True:
            q, a, t = (dates_en if lang == "en" else dates_zh)(self.r)
            yield Unit(lang, "calendar", q, "", a, t)

    def _written(self, bank: list[tuple[str, str]], lang: str) -> Iterator[Unit]:
        r = self.r
        for q, a in r.sample(bank, len(bank)):
            think = (f"The user asks: {q} Give the core idea first, then one concrete detail." if lang == "en"
                     else f"用户问：{q}先讲核心道理，再补充一个具体的例子或细节。")
            yield Unit(lang, "written", q, "", a, think)


# --- planted problems ---------------------------------------------------------------------------------

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
EN_SYSTEMS = ["You are a helpful assistant.", "You are a patient tutor. Explain step by step.",
              "You are a senior Python developer. Answer precisely.", "Answer concisely."]
ZH_SYSTEMS = ["你是一位耐心的老师。", "你是一个乐于助人的助手。", "你是一名资深的数据库工程师，回答要准确。", "请简洁地回答。"]
EN_FOLLOW = ["", "", "Thanks! ", "Got it. ", "One more question: ", "OK, next: ", "Follow-up: "]
ZH_FOLLOW = ["", "", "谢谢！", "明白了。", "再问一个：", "好的，下一个问题：", "另外，"]


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


TRANSLATION = ("translate_zh_en", "translate_en_zh")


class Gen:
    """Builds rows and remembers what was planted where."""

    def __init__(self, seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        self.docs, self.ref, self.pg = stdlib_docs(), language_reference(), pg_messages()
        self.kinds = Kinds(self.rng, self.docs, self.ref, self.pg)
        self.guard = Guard()
        self.truth: list[dict] = []
        self.used: dict[str, int] = {}

    def unit(self, lang: str, *, no_translation: bool = False, one_line: bool = False,
             kinds: tuple[str, ...] | None = None) -> Unit:
        """A clean question and answer, not a near copy of any drawn before (in its language)."""
        for _ in range(10_000):
            u = self.kinds.next(lang, lambda k: (kinds is None or k in kinds) and not (no_translation and k in TRANSLATION))
            if one_line and ("\n" in u.output or len(u.output) < (60 if lang == "en" else 40)
                             or not _ENDS_SENTENCE.search(u.output)):
                continue
            # translations in both directions share one bucket: the catalogues hold near-identical messages
            if self.guard.accept("translation" if u.kind in TRANSLATION else lang, f"{u.instruction}\n{u.input}\n{u.output}"):
                self.used[u.kind] = self.used.get(u.kind, 0) + 1
                return u
        raise SystemExit(f"no {lang} unit passes the near-copy guard")

    def plant(self, file: str, row: int | None, kind: str, **extra: object) -> None:
        self.truth.append({"file": file, "row_number": row, "problem": kind, **extra})


def fullwidth(text: str) -> str:
    """ASCII letters and digits to their full-width forms (NFKC maps them back)."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


def near_copy(rng: random.Random, text: str, lang: str) -> str:
    """Change about 10% of the words (characters for Chinese), in one to three runs: a reworded phrase or two."""
    zh = lang == "zh"
    units = list(text) if zh else text.split(" ")
    budget = max(2, len(units) // 10)
    runs = min(budget, rng.randint(1, 3))
    cuts = sorted(rng.sample(range(1, budget), runs - 1)) if runs > 1 else []
    for size in (b - a for a, b in zip([0, *cuts], [*cuts, budget])):
        start = rng.randrange(max(1, len(units) - size + 1))
        for i in range(start, min(len(units), start + size)):
            units[i] = rng.choice("的了在是我有和就不人都一上也很到说要去你会着没看好自己这" if zh else
                                  ["really", "quite", "often", "usually", "simply", "clearly", "also"])
    return ("" if zh else " ").join(units)


_OPEN_EN = {"to", "of", "the", "a", "an", "and", "or", "for", "with", "that", "is", "are", "from", "as", "which", "by"}
_OPEN_ZH = "的和与及或是在对把被从向为以而但因所这那将让使给，"


def truncate(text: str, lang: str) -> str:
    """Cut an answer about half way, mid-sentence, where a reader sees the cut: after a word that cannot end a
    sentence ("to", "the", "的", "和") or a comma, the nearest such place to the middle (else the middle itself)."""
    if lang == "zh":
        half = max(28, len(text) // 2)
        places = [i + 1 for i, ch in enumerate(text[:-1]) if ch in _OPEN_ZH and i + 1 >= 20]
        cut = text[: min(places, key=lambda i: abs(i - half))] if places else text[:half]
        if not places:
            while cut and not cut[-1].isalpha():
                cut = cut[:-1]
        return cut
    words = text.split(" ")
    k = max(6, len(words) // 2)
    while len(" ".join(words[:k])) < 40 and k < len(words) - 1:
        k += 1
    places = [j for j in range(4, len(words) - 1)
              if words[j - 1].lower() in _OPEN_EN or (words[j - 1].endswith(",") and words[j - 1][:-1].isalpha())]
    if places:
        k = min(places, key=lambda j: abs(j - k))
    cut = " ".join(words[:k])
    while cut and not (cut[-1].isalpha() or cut[-1] == ","):
        cut = cut[:-1]
    return cut


def alpaca(u: Unit, row_id: str, *, reasoning: bool = False) -> dict:
    row = {"id": row_id, "instruction": u.instruction, "input": u.input, "output": u.output, "lang": u.lang}
    if reasoning:
        row["output"] = f"<think>\n{u.think}\n</think>\n\n{u.output}"
        row["has_reasoning"] = True
    return row


def make_instructions(g: Gen) -> list[str]:
    """instructions.jsonl: alpaca rows with every kind of planted problem."""
    file = "instructions.jsonl"
    r = g.rng
    rows: list[dict | str] = []
    clean: list[tuple[int, dict, str]] = []  # (index, row, lang)
    for i in range(2200):
        lang = "zh" if r.random() < 0.45 else "en"
        rows.append(alpaca(g.unit(lang), f"inst-{i:05d}", reasoning=r.random() < 0.15))
        clean.append((len(rows), rows[-1], lang))

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
        # prose on both sides (tables of names and numbers are not clearly in one language)
        q, a = g.unit("zh", kinds=("math", "calendar", "written")), g.unit("en", kinds=("stdlib_doc", "language_ref", "written"))
        add({"id": f"mix-{n:03d}", "instruction": q.instruction, "input": "", "output": a.output, "lang": "zh"},
            "answer_language_mismatch", language="en", expected="zh")
    # empty, truncated outputs, unclosed think blocks
    for n in range(20):
        u = g.unit("en" if n % 2 else "zh")
        add({"id": f"empty-{n:03d}", "instruction": u.instruction, "input": u.input, "output": "" if n % 3 else "   "},
            "empty_output")
    for n in range(20):
        lang = "en" if n % 2 else "zh"
        u = g.unit(lang, one_line=True, kinds=("stdlib_doc", "language_ref", "written") if lang == "en" else None)
        add({"id": f"trunc-{n:03d}", "instruction": u.instruction, "input": u.input, "output": truncate(u.output, lang)},
            "truncated_output")
    for n in range(10):
        u = g.unit("en" if n % 2 else "zh")
        add({"id": f"think-{n:03d}", "instruction": u.instruction, "input": u.input, "output": f"<think>\n{u.think}"},
            "unclosed_think")
    # control characters (not duplicates)
    for n in range(15):
        u = g.unit("en", one_line=True)
        add({"id": f"ctrl-{n:03d}", "instruction": u.instruction, "input": u.input,
             "output": u.output.replace(" ", " \u0001", 1) + "\u001b[0m"}, "control_characters")
    # boilerplate
    for n in range(20):
        if n % 2:
            u = g.unit("en", no_translation=True)
            out = r.choice(BOILERPLATE_EN) + u.output[0].lower() + u.output[1:]
        else:
            u = g.unit("zh", no_translation=True)
            out = r.choice(BOILERPLATE_ZH) + u.output
        add({"id": f"boiler-{n:03d}", "instruction": u.instruction, "input": "", "output": out}, "boilerplate")
    # personal data
    for n in range(24):
        u = g.unit("en" if n % 2 else "zh", no_translation=True)
        kind = ("email", "phone", "cn_id", "card")[n % 4]
        # not example.com: addresses of reserved domains are for documentation, and the rule passes them
        pii = {"email": f"liwei.{n:02d}@hongxin-trading.cn", "phone": f"+86 138{r.randint(10000000, 99999999)}",
               "cn_id": cn_id(r), "card": luhn_card(r)}[kind]
        add({"id": f"pii-{n:03d}", "instruction": u.instruction, "input": f"Contact: {pii}", "output": u.output},
            "personal_data", pii_kind=kind, value=pii)
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
            conv.append({"from": "system", "value": r.choice(EN_SYSTEMS if lang == "en" else ZH_SYSTEMS)})
        for turn in range(r.randint(1, 3)):
            u = g.unit(lang, no_translation=True)  # the user turns are judged together: keep them in one language
            lead = r.choice(EN_FOLLOW if lang == "en" else ZH_FOLLOW) if turn else ""
            conv += [{"from": "human", "value": lead + u.prompt()}, {"from": "gpt", "value": u.output}]
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
    r = g.rng
    rows = []
    for i in range(300):
        lang = "en" if i % 3 else "zh"
        u = g.unit(lang)
        assistant = {"role": "assistant", "content": u.output}
        if i % 4 == 0:
            assistant["reasoning_content"] = u.think
        msgs = [{"role": "user", "content": u.prompt()}, assistant]
        if i % 6 == 0:
            msgs.insert(0, {"role": "system", "content": r.choice(EN_SYSTEMS if lang == "en" else ZH_SYSTEMS)})
        rows.append({"id": f"msg-{i:04d}", "messages": msgs, "source": "synthetic-r1" if i % 4 == 0 else "synthetic"})
    rows.insert(150, {"id": "msg-bad-0", "messages": [{"role": "user", "content": ["image", "parts"]}]})
    g.plant(file, 151, "wrong_type", field="messages")
    return rows


def make_gb18030_csv(g: Gen) -> bytes:
    """instructions_gb18030.csv: Chinese pairs in GB18030 (some cells span lines), one record with a wrong column count."""
    file = "instructions_gb18030.csv"
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "instruction", "input", "output"])
    for i in range(200):
        if i == 100:
            line = buf.getvalue().count("\n") + 1
            buf.write('gb-bad,"多了一列",,"答案",多余\n')
            g.plant(file, None, "malformed_csv", line=line)
        u = g.unit("zh")
        w.writerow([f"gb-{i:04d}", u.instruction, u.input, u.output])
    return buf.getvalue().encode("gb18030")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "data" / "sample")
    args = ap.parse_args()
    g = Gen()
    digest = material_digest(g.docs, g.ref, g.pg)
    instructions = make_instructions(g)
    dialogues = make_sharegpt(g)
    messages = make_openai(g)
    gb_csv = make_gb18030_csv(g)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "instructions.jsonl").write_text("\n".join(instructions) + "\n", encoding="utf-8")
    (args.out / "dialogues_sharegpt.jsonl").write_text("\n".join(dialogues) + "\n", encoding="utf-8")
    (args.out / "messages_openai.json").write_text(json.dumps(messages, ensure_ascii=False, indent=1), encoding="utf-8")
    (args.out / "instructions_gb18030.csv").write_bytes(gb_csv)
    truth = {
        "seed": SEED,
        "languages": ["en", "zh"],
        "note": "row_number is 1-based: the line for JSONL, the element for JSON arrays; CSV problems give the file line.",
        "material": {"sha256": digest, "python": ".".join(map(str, sys.version_info[:2])),
                     "stdlib_docs": len(g.docs), "language_reference": len(g.ref), "postgresql_messages": len(g.pg)},
        "kinds": dict(sorted(g.used.items())),
        "planted": g.truth,
    }
    (args.out / "truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    kinds: dict[str, int] = {}
    for t in g.truth:
        kinds[t["problem"]] = kinds.get(t["problem"], 0) + 1
    print(f"wrote {args.out}: " + ", ".join(f"{k}={v}" for k, v in sorted(kinds.items())))
    print("clean material by kind: " + ", ".join(f"{k}={v}" for k, v in sorted(g.used.items())))


if __name__ == "__main__":
    main()
