"""The Dockerfile cannot be built here (no Docker engine): read it, and hold it to what the demo needs.

The container runs the demo (``CMD ["demo"]``), so it installs the extras ``scripts/demo.sh`` installs and
copies what the demo reads: the packages, their package data and the bundled sample.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import PurePosixPath

from tests.conftest import REPO, SAMPLE_DIR


def instructions(text: str) -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        out.append((keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return out


def words(args: str) -> list[str]:
    """An instruction's arguments, in the JSON (exec) form or the shell form."""
    return json.loads(args) if args.startswith("[") else shlex.split(args)


def dockerfile() -> list[tuple[str, str]]:
    return instructions((REPO / "Dockerfile").read_text(encoding="utf-8"))


def copies() -> dict[str, str]:
    """Each COPY's source (relative to the build context) and where it lands, relative to WORKDIR."""
    got: dict[str, str] = {}
    for keyword, args in dockerfile():
        if keyword != "COPY":
            continue
        parts = [w for w in words(args) if not w.startswith("--")]
        *sources, dest = parts
        assert not any(s.startswith("--from") for s in words(args)), "COPY --from is not a build-context copy"
        for src in sources:
            if dest.endswith("/") or len(sources) > 1:
                landed = PurePosixPath(dest) / PurePosixPath(src).name
            else:
                landed = PurePosixPath(dest)
            got[str(PurePosixPath(src))] = str(landed)
    return got


def is_copied(path: str) -> bool:
    """``path`` (relative to the repository) is copied to the same place under WORKDIR."""
    p = PurePosixPath(path)
    for src, landed in copies().items():
        s = PurePosixPath(src)
        if (p == s or s in p.parents) and str(PurePosixPath(landed) / p.relative_to(s)) == str(p):
            return True
    return False


def pip_installs() -> list[list[str]]:
    """The arguments of each `pip install` in a RUN."""
    found = []
    for keyword, args in dockerfile():
        if keyword != "RUN":
            continue
        lexer = shlex.shlex(args, posix=True, punctuation_chars=True)  # ; and && outside quotes end a command
        lexer.whitespace_split = True
        commands: list[list[str]] = [[]]
        for token in lexer:
            if token in (";", "&&", "||"):
                commands.append([])
            else:
                commands[-1].append(token)
        for w in commands:
            if "pip" in (PurePosixPath(x).name for x in w[:3]) and "install" in w:
                found.append(w[w.index("install") + 1:])
    return found


def extras_of(spec: str) -> set[str]:
    m = re.fullmatch(r"\.\[([\w,\- ]+)\]", spec)
    assert m, f"not an install of this project with extras: {spec!r}"
    return {e.strip() for e in m.group(1).split(",") if e.strip()}


def _extras(name: str) -> set[str]:
    text = (REPO / "scripts" / "demo.sh").read_text(encoding="utf-8")
    found = re.findall(rf"^{name}=(\S+)\s*$", text, flags=re.M)
    assert len(found) == 1, (name, found)
    return {e for e in found[0].strip("\"'").split(",") if e}


def demo_extras() -> set[str]:
    """The extras scripts/demo.sh installs for the whole demo (``EXTRAS``, which it sources scripts/_venv.sh with)."""
    text = (REPO / "scripts" / "demo.sh").read_text(encoding="utf-8")
    calls = re.findall(r"^\s*(?:source|\.)\s+scripts/_venv\.sh\s+(\S+)\s*$", text, flags=re.M)
    assert calls == ['"$EXTRAS"'], calls
    whole, curation = _extras("EXTRAS"), _extras("CURATION_EXTRAS")
    assert curation < whole, "--curation-only installs a part of the whole demo's extras"
    return whole


def test_the_container_runs_the_demo() -> None:
    found = dict(dockerfile())
    assert words(found["ENTRYPOINT"]) == ["curate"]
    assert words(found["CMD"]) == ["demo"]


def test_the_image_installs_the_extras_the_demo_script_installs() -> None:
    installs = [w for w in pip_installs() if any(x.startswith(".[") or x == "." for x in w)]
    assert len(installs) == 1, f"one pip install of the project expected, got {installs}"
    spec = next(x for x in installs[0] if x.startswith("."))
    assert extras_of(spec) == demo_extras(), "the Dockerfile's extras differ from scripts/demo.sh's"
    declared = set(tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"])
    assert demo_extras() <= declared


def test_the_image_holds_what_the_demo_reads() -> None:
    from curation.demo import DEMO_INPUTS, SAMPLE_DIR as DEMO_SAMPLE_DIR

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    needed = ["pyproject.toml", project["project"]["readme"]]
    needed += [pattern.rstrip("*") for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    for package, files in project["tool"]["setuptools"].get("package-data", {}).items():
        for name in files:
            assert (REPO / package / name).exists(), (package, name)
            needed.append(f"{package}/{name}")
    # the demo reads the bundled sample next to the package source (not from site-packages)
    assert DEMO_SAMPLE_DIR.resolve() == SAMPLE_DIR.resolve()
    rel = SAMPLE_DIR.relative_to(REPO).as_posix()
    needed += [f"{rel}/{name}" for name in DEMO_INPUTS]
    missing = [p for p in needed if not is_copied(p)]
    assert not missing, f"the Dockerfile does not copy (to the same place under WORKDIR): {missing}"
    # so the image runs the code where it was copied: an editable install, as scripts/_venv.sh makes
    (install,) = [w for w in pip_installs() if any(x.startswith(".") for x in w)]
    assert "-e" in install or "--editable" in install, \
        "the demo finds data/sample next to the package, so the image must install the project editable"
