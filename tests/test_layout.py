"""The layout shows the flow: no import cycle between modules, earlier stages never import later ones."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _module(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m.split(".")[0] in ("curation", "schemas")}


def _graph(top_level_only: bool) -> dict[str, set[str]]:
    files = [p for p in (REPO / "curation").rglob("*.py")] + [p for p in (REPO / "schemas").rglob("*.py")]
    mods = {_module(p): p for p in files}
    graph = {}
    for name, path in mods.items():
        deps = set()
        for imp in _imports(path, top_level_only):
            # `from curation.x import y` may name a module curation.x.y or an attribute of curation.x
            deps.add(imp if imp in mods else imp.rsplit(".", 1)[0] if imp.rsplit(".", 1)[0] in mods else imp)
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for d in sorted(graph[n]):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state and (found := visit(d)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_no_import_cycle_between_modules() -> None:
    cycle = _cycle(_graph(top_level_only=True))
    assert cycle is None, " -> ".join(cycle)


def test_earlier_stages_never_import_later_ones() -> None:
    graph = _graph(top_level_only=False)  # imports inside functions count too
    later = {"curation.snapshots.core": ("curation.review", "curation.cli"),
             "curation.pipeline": ("curation.snapshots", "curation.review", "curation.cli", "curation.report"),
             "curation.store": ("curation.pipeline", "curation.snapshots", "curation.review", "curation.cli"),
             "curation.ingest": ("curation.pipeline", "curation.snapshots", "curation.review", "curation.cli"),
             "curation.review": ("curation.cli",),
             "schemas": ("curation",)}
    for mod, deps in graph.items():
        for early, forbidden in later.items():
            if mod == early or mod.startswith(early + "."):
                bad = sorted(d for d in deps if d.startswith(forbidden))
                assert not bad, f"{mod} imports {bad}"
    # review reaches snapshots only through their public functions, never their private helpers
    for path in (REPO / "curation" / "review").rglob("*.py"):
        assert "snapshots.core import _" not in path.read_text(encoding="utf-8"), path
