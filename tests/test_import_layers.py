"""The package's floors: who may import whom, read from the source (``ast``), not by running it.

Folders are the architecture: a module's place says what it may import. This test walks every
``import`` in ``src/invoke_nb`` (module level and inside functions; imports under
``if TYPE_CHECKING:`` are collected separately, since they never run) and fails on

- an import that the table :data:`MAY_IMPORT` below does not allow (an upward import),
- a cycle between packages among the imports that run,
- Studio importing widgets at module level (it makes them on demand, the other way round),
- anything importing the package root (``invoke_nb``) itself: the version is in ``_version``.

:data:`KNOWN` lists the violations that remain, each with its reason; it may only shrink (a
listed edge that no longer exists fails too, so the list is kept honest).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "invoke_nb"

# unit -> the units (a package, or one module of it as "package.module") it may import.
# Read it bottom-up: models and _version import nothing of ours; the Studio sits on top.
_BELOW_STUDIO = {
    "_version", "models", "catalog", "nodes", "graph", "presets", "queue", "executors",
    "interchange",
}  # fmt: skip
MAY_IMPORT: dict[str, set[str]] = {
    "_version": set(),
    "models": set(),  # loads weights; knows no nodes, catalog or widgets
    "catalog": {"models.records"},  # DuckDB; torch-free: only the record dataclass
    "presets": set(),
    "nodes": {"_version", "models"},  # nodes use models through their context
    "graph": {"nodes"},  # graphs of nodes; no DuckDB, no widgets
    "queue": {"graph", "nodes"},
    "executors": {"graph", "nodes", "models"},
    "interchange": {"catalog", "graph", "nodes", "models.records", "presets"},
    "testing": {"catalog", "models", "nodes", "graph"},
    # + the Studio API; catalog.query is the gallery's one filter type (ImageQuery), plain data
    "widgets": {"graph", "nodes", "queue", "interchange", "catalog.query"},
    "studio": _BELOW_STUDIO | {"widgets"},  # widgets only inside functions (LAZY_ONLY)
    "cli": _BELOW_STUDIO | {"studio", "testing", "widgets"},
    "<root>": _BELOW_STUDIO | {"studio", "widgets"},
}
# (importer, imported) allowed only inside a function: made on demand, never at import time
LAZY_ONLY = {("studio", "widgets"), ("<root>", "widgets")}
# (importer, imported) allowed under ``if TYPE_CHECKING:`` only (annotations, never run)
TYPE_ONLY = {
    ("interchange", "studio"),
    ("widgets", "catalog.records"),  # the row types the Studio API hands to widgets
    ("widgets", "models.records"),
}
# Remaining violations: (importer module, imported module) -> why it is still there.
KNOWN: dict[tuple[str, str], str] = {
    ("invoke_nb.models.local", "invoke_nb.nodes.types"): "the old home of `identifier` "
    "(moved to nodes.types) resolves lazily for code written against it",
    ("invoke_nb.widgets.panel", "invoke_nb.studio_views"): "open_view's old name, for lab "
    "extension builds made before it moved to the studio (they call widgets.panel.open_view)",
}


def unit(module: str) -> str:
    """The floor a module lives on: its package under ``invoke_nb`` (``studio_*`` modules
    belong to the studio)."""
    parts = module.split(".")
    if len(parts) == 1:
        return "<root>"
    return "studio" if parts[1].startswith("studio") else parts[1]


def _allowed(target: str, rules: set[str]) -> bool:
    """``target`` (a module) matches a rule naming its unit or one module of it."""
    rest = target.split(".")[1:]
    return any(
        rest[: len(r.split("."))] == r.split(".") or (r == "studio" and unit(target) == "studio")
        for r in rules
    )


@dataclass(frozen=True)
class Edge:
    src: str  # importing module
    dst: str  # imported module
    line: int
    type_only: bool
    in_function: bool


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = SRC.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _edges() -> list[Edge]:
    edges = []
    for path in sorted(PKG.rglob("*.py")):
        mod = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        type_only: set[int] = set()
        in_function: set[int] = set()
        for n in ast.walk(tree):
            if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test):
                type_only |= {id(s) for s in ast.walk(n)}
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                in_function |= {id(s) for s in ast.walk(n)}
        for n in ast.walk(tree):
            targets: list[str] = []
            if isinstance(n, ast.Import):
                targets = [a.name for a in n.names]
            elif isinstance(n, ast.ImportFrom):
                base = n.module or ""
                if n.level:
                    pkg = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
                    pkg = pkg[: len(pkg) - n.level + 1]
                    base = ".".join(pkg + ([n.module] if n.module else []))
                # ``from invoke_nb.x import y`` may name a submodule y: count it as x.y
                targets = [
                    f"{base}.{a.name}" if _is_module(f"{base}.{a.name}") else base for a in n.names
                ]
            for t in targets:
                if t == "invoke_nb" or t.startswith("invoke_nb."):
                    edges.append(Edge(mod, t, n.lineno, id(n) in type_only, id(n) in in_function))
    return edges


EDGES = _edges()


def _violations() -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for e in EDGES:
        a, b = unit(e.src), unit(e.dst)
        if e.dst == "invoke_nb" and a != "<root>":
            found[(e.src, e.dst)] = f"line {e.line}: imports the package root"
            continue
        if a == b:
            continue
        ok = _allowed(e.dst, MAY_IMPORT[a])
        if not ok and e.type_only:
            ok = any(a == x and _allowed(e.dst, {y}) for x, y in TYPE_ONLY)
        if ok and (a, b) in LAZY_ONLY and not e.in_function:
            found[(e.src, e.dst)] = f"line {e.line}: {a} may import {b} inside functions only"
        elif not ok:
            kind = "type-only import" if e.type_only else "import"
            found[(e.src, e.dst)] = f"line {e.line}: {kind} of {b} from {a} (upward)"
    return found


def test_every_package_has_a_floor() -> None:
    units = {unit(e.src) for e in EDGES} | {unit(e.dst) for e in EDGES if e.dst != "invoke_nb"}
    assert units <= set(MAY_IMPORT), f"packages missing from MAY_IMPORT: {units - set(MAY_IMPORT)}"


def test_the_table_is_one_way() -> None:
    """The allowed imports themselves form no cycle (else the table would allow one)."""
    graph = {u: {r.split(".")[0] for r in rules} for u, rules in MAY_IMPORT.items()}
    assert _cycle(graph) is None


def test_no_upward_imports() -> None:
    found = _violations()
    new = {k: v for k, v in found.items() if k not in KNOWN}
    assert not new, "imports against the layering:\n" + "\n".join(
        f"  {a} -> {b}: {why}" for (a, b), why in sorted(new.items())
    )
    gone = set(KNOWN) - set(found)
    assert not gone, f"fixed, remove from KNOWN: {sorted(gone)}"


def test_no_cycle_between_packages() -> None:
    """Among the imports that run (the KNOWN ones aside, listed with their reasons)."""
    graph: dict[str, set[str]] = {}
    for e in EDGES:
        if e.type_only or e.dst == "invoke_nb" or (e.src, e.dst) in KNOWN:
            continue
        if unit(e.src) != unit(e.dst):
            graph.setdefault(unit(e.src), set()).add(unit(e.dst))
    assert _cycle(graph) is None


def test_the_walk_sees_function_and_type_only_imports() -> None:
    """The walker finds what this test relies on (else every check above passes vacuously)."""
    studio_widgets = [e for e in EDGES if unit(e.src) == "studio" and unit(e.dst) == "widgets"]
    assert studio_widgets and all(e.in_function for e in studio_widgets)
    assert any(e.type_only for e in EDGES)
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return [*stack[stack.index(m) :], m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None
