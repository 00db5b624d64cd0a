"""The browser's request and event maps against the kernel's handlers, both read from source.

Each widget's TypeScript declares ``Methods`` (request kind -> [params, result]) and
``Events`` (event name -> payload) once (extension/src/widgets/<bundle>/); the Python class
registers a handler per request kind (``@handler("kind", ...)``) and sends events with
``send_event("name", ...)``. A kind one side has and the other lacks is a request that fails
at run time, or dead code: this test names it.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

from invoke_nb.widgets.hub import VIEWS, view_class

ROOT = Path(__file__).resolve().parents[2]
TS_WIDGETS = ROOT / "extension" / "src" / "widgets"


def ts_map(folder: Path, name: str) -> set[str]:
    """The keys of ``export type <name> = { ... }`` in the folder's TypeScript (top level only)."""
    for path in sorted([*folder.glob("*.ts"), *folder.glob("*.tsx")]):
        text = path.read_text(encoding="utf-8")
        m = re.search(rf"export type {name} = \{{", text)
        if m is None:
            continue
        keys, depth, i = set(), 1, m.end()
        while depth:
            if text[i] in "{[(":
                depth += 1
            elif text[i] in "}])":
                depth -= 1
            elif (
                depth == 1 and (k := re.match(r"\s*(\w+)\??:", text[i:])) and text[i - 1] in "{;\n"
            ):
                keys.add(k.group(1))
            i += 1
        return keys
    raise AssertionError(f"no `export type {name}` in {folder}")


def py_events(cls: type) -> set[str]:
    """Event names the widget's modules send (``send_event("name", ...)``, literal names)."""
    module = importlib.import_module(cls.__module__)
    package = module.__name__.rsplit(".", 1)[0]
    files = [Path(inspect.getfile(module))]
    if package.endswith(".graph_editor"):  # a widget that is a package: all its modules
        files = sorted(files[0].parent.glob("*.py"))
    names = set()
    for path in files:
        for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "send_event":
                first = n.args[0] if n.args else None
                assert isinstance(first, ast.Constant), (
                    f"{path.name}:{n.lineno}: event name not literal"
                )
                names.add(first.value)
    return names


@pytest.mark.parametrize("kind", sorted(VIEWS))
def test_requests_and_events_match(kind: str) -> None:
    cls = view_class(kind)
    folder = TS_WIDGETS / cls._bundle
    ts_methods, py_methods = ts_map(folder, "Methods"), set(cls._handlers)
    assert ts_methods and py_methods
    assert ts_methods == py_methods, (
        f"{cls.__name__} requests: browser only {sorted(ts_methods - py_methods)}, "
        f"kernel only {sorted(py_methods - ts_methods)}"
    )
    ts_events, sent = ts_map(folder, "Events"), py_events(cls)
    assert ts_events == sent, (
        f"{cls.__name__} events: browser only {sorted(ts_events - sent)}, "
        f"kernel only {sorted(sent - ts_events)}"
    )


def test_the_parser_reads_nested_types() -> None:
    """Keys inside a value's own braces are not taken for kinds."""
    keys = ts_map(TS_WIDGETS / "graph_editor", "Methods")
    assert {"add_node", "library_delete", "models"} <= keys
    assert "position" not in keys and "filter" not in keys
