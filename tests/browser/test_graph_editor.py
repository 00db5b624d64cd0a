"""The graph editor in a real JupyterLab: add nodes from the palette, refuse a bad connection
with its reason, connect, auto-layout, delete, edit a field, invoke, and see the result in
Python."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from .lab import LabServer, Notebook
from .waits import layout_of, wait_settled

pytestmark = pytest.mark.browser

SETUP = """\
import json
import invoke_nb as inb
from invoke_nb.widgets import GraphEditor

g = inb.Graph()
g.add("integer", id="n", value=2)
g.add("add", id="s", b=3)
g.connect("n", "value", "s", "a")
results = []

def on_invoke(graph):
    r = inb.run(graph, services=inb.Services(emit=editor.node_event))
    results.append({nid: out.value for nid, out in r.outputs.items()})
    return r

editor = GraphEditor(g, on_invoke=on_invoke)
editor"""

REPORT = """\
print("RESULT", json.dumps(results, sort_keys=True), sorted(editor.graph.nodes), len(editor.graph.edges))"""

SWAP = """\
g2 = inb.Graph()
g2.add("integer", id="k", value=7)
g2.add("mul", id="m", b=6)
g2.connect("k", "value", "m", "a")
editor.graph = g2"""


def handle(page: Any, node_id: str, field: str, kind: str) -> Any:
    return page.locator(
        f".react-flow__handle.{kind}[data-nodeid='{node_id}'][data-handleid='{field}']"
    )


def add_from_palette(editor: Any, type_id: str) -> str:
    """Click a palette entry; the id the kernel gave the new node."""
    ids = "ns => ns.map(n => n.dataset.id)"
    before = set(editor.locator(".react-flow__node").evaluate_all(ids))
    editor.locator(f".inb-palette-item[data-type='{type_id}']").click()
    editor.page.wait_for_function(
        "n => document.querySelectorAll('.inb-graph-editor .react-flow__node').length === n",
        arg=len(before) + 1,
    )
    (nid,) = set(editor.locator(".react-flow__node").evaluate_all(ids)) - before
    assert (
        editor.locator(f".react-flow__node[data-id='{nid}'] [data-node-type='{type_id}']").count()
        == 1
    )
    return nid


def drag(page: Any, src: Any, dst: Any, hold: Any = None) -> None:
    """Drag from one port to another like a person (press, move in steps, release)."""
    a, b = src.bounding_box(), dst.bounding_box()
    page.mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, steps=12)
    if hold is not None:
        hold()
    page.mouse.up()


def test_build_connect_invoke(page: Any, lab_server: LabServer) -> None:
    nb = Notebook.open(page, lab_server, "graph_editor.ipynb", [SETUP, REPORT, SWAP])
    nb.run_cell(0)
    editor = page.locator(".inb-graph-editor")
    nodes = editor.locator(".react-flow__node")
    nodes.nth(1).wait_for(timeout=40_000)
    assert nodes.count() == 2
    editor.locator(".react-flow__edge").first.wait_for()
    nb.screenshot("graph_editor_01_loaded", editor)

    # palette: search and add, then lay the graph out
    editor.locator(".inb-search").fill("add integers")
    items = editor.locator(".inb-palette-item")
    assert items.count() >= 1
    add = add_from_palette(editor, "add")
    editor.locator(".inb-search").fill("string primitive")
    text = add_from_palette(editor, "string")
    before = layout_of(page, ".inb-graph-editor .react-flow__node")
    editor.get_by_role("button", name="Auto-layout", exact=True).click()
    wait_settled(page, ".inb-graph-editor .react-flow__node", changed_from=before)

    # a refused connection says why, and changes nothing
    shown: list[str] = []

    def read_hint() -> None:
        hint = editor.locator(".inb-hint")
        hint.wait_for(timeout=5_000)
        shown.append(hint.inner_text())
        nb.screenshot("graph_editor_02_refused", editor)

    drag(
        page,
        handle(page, text, "value", "source"),
        handle(page, add, "b", "target"),
        hold=read_hint,
    )
    assert shown and f"{text}.value (str) does not fit {add}.b (int)" in shown[0]
    toast = editor.locator(".inb-toast-error")
    toast.wait_for()
    assert "Cannot connect" in toast.inner_text()
    assert editor.locator(".react-flow__edge").count() == 1

    # a compatible connection is accepted by the kernel's Graph
    drag(page, handle(page, "s", "value", "source"), handle(page, add, "a", "target"))
    page.wait_for_function(
        "() => document.querySelectorAll('.inb-graph-editor .react-flow__edge').length === 2"
    )

    # auto-layout puts the new node right of the one feeding it
    editor.get_by_role("button", name="Auto-layout", exact=True).click()
    page.wait_for_function(
        """([a, s]) => {
            const x = id => document.querySelector(`.react-flow__node[data-id='${id}']`).getBoundingClientRect().x;
            return x(a) > x(s);
        }""",
        arg=[add, "s"],
    )

    # delete: select the unused string node and press Delete
    editor.locator(f".react-flow__node[data-id='{text}'] .inb-node-header").click()
    page.keyboard.press("Delete")
    page.wait_for_function(
        "() => document.querySelectorAll('.inb-graph-editor .react-flow__node').length === 3"
    )

    # field editor: b = 10 (typed, sent on Enter, validated in Python)
    field = editor.locator(f".react-flow__node[data-id='{add}'] input[data-field='b']")
    field.fill("10")
    field.press("Enter")
    # the value is committed over the comm before Invoke's message (the kernel keeps order)
    page.wait_for_function(
        "el => el.value === '10' && !el.closest('.inb-field').querySelector('.inb-field-error')",
        arg=field.element_handle(),
    )

    editor.get_by_role("button", name="Invoke", exact=True).click()
    value = editor.locator(
        f".react-flow__node[data-id='{add}'] .inb-output-value[data-output='value']"
    )
    value.wait_for(timeout=60_000)
    assert value.inner_text() == "15"
    assert editor.locator(".react-flow__node[data-id='s'] .inb-badge-done").count() == 1
    nb.screenshot("graph_editor_03_invoked", editor)

    nb.run_cell(1)
    printed = nb.output_text(1, "RESULT")
    payload = re.search(r"RESULT (\[.*?\]) (\[.*?\]) (\d+)", printed)
    assert payload, printed
    assert json.loads(payload.group(1)) == [{add: 15, "n": 2, "s": 5}]
    assert payload.group(2) == str(sorted([add, "n", "s"])) and payload.group(3) == "2"
    nb.screenshot("graph_editor_04_python", page)

    # a graph assigned in Python replaces the one shown, laid out, and runs
    nb.run_cell(2)
    editor.locator(".react-flow__node[data-id='m']").wait_for()
    page.wait_for_function(
        "() => document.querySelectorAll('.inb-graph-editor .react-flow__node').length === 2"
    )
    editor.get_by_role("button", name="Invoke", exact=True).click()
    product = editor.locator(
        ".react-flow__node[data-id='m'] .inb-output-value[data-output='value']"
    )
    product.wait_for(timeout=60_000)
    assert product.inner_text() == "42"
    k, m = (editor.locator(f".react-flow__node[data-id='{i}']").bounding_box() for i in "km")
    assert k["x"] + k["width"] <= m["x"], "auto-layout should put the source left of its consumer"
    nb.screenshot("graph_editor_05_swapped", editor)
    assert not page.page_errors, page.page_errors
