"""Graph editor in JupyterLab, second round: a custom node from the notebook in the palette,
generated field editors (slider, choice, limited number with its error), duplicate, and
workflow files saved and loaded through the browser."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

import invoke_nb as inb

from .lab import LabServer, Notebook

pytestmark = pytest.mark.browser

SETUP = """\
from typing import Literal
import invoke_nb as inb
from invoke_nb.nodes import UIHint
from invoke_nb.nodes.primitives import IntegerOutput
from invoke_nb.widgets import GraphEditor

@inb.node("scaled_demo", title="Scaled Demo", category="custom")
class ScaledDemo(inb.Node):
    \"\"\"A notebook-defined node.\"\"\"
    x: int = inb.InputField(5, ge=0, le=10, ui_hint=UIHint.SLIDER)
    factor: int = inb.InputField(1, ge=1)
    sign: Literal["plus", "minus"] = inb.InputField("plus")

    def invoke(self, ctx) -> IntegerOutput:
        return IntegerOutput(value=self.x * self.factor * (1 if self.sign == "plus" else -1))

editor = GraphEditor()
editor"""

REPORT = """\
print("STATE", sorted(editor.graph.nodes), [spec.values for spec in editor.graph.nodes.values()])"""


def test_custom_node_fields_duplicate_save_load(
    page: Any, lab_server: LabServer, tmp_path: Path
) -> None:
    nb = Notebook.open(page, lab_server, "graph_editor_fields.ipynb", [SETUP, REPORT])
    nb.run_cell(0)
    editor = page.locator(".inb-graph-editor")
    editor.locator(".inb-palette-item").first.wait_for(timeout=60_000)

    editor.locator(".inb-search").fill("scaled")
    assert editor.locator(".inb-palette-item[data-type='scaled_demo']").count() == 1
    editor.locator(".inb-palette-item[data-type='scaled_demo']").click()
    node = editor.locator(".react-flow__node").first
    node.wait_for()

    # generated editors: a slider within the limits, a choice, a number whose limit Python enforces
    slider = node.locator("input[type='range'][data-field='x']")
    assert (slider.get_attribute("min"), slider.get_attribute("max")) == ("0", "10")
    node.locator("select[data-field='sign']").select_option(label="minus")
    factor = node.locator("input[data-field='factor']")
    factor.fill("0")
    factor.press("Enter")
    error = node.locator(".inb-field-error")
    error.wait_for()
    assert re.search(r"greater than or equal to 1", error.inner_text())
    page.wait_for_function("el => el.value === '1'", arg=factor.element_handle())
    factor.fill("3")
    factor.press("Enter")
    nb.screenshot("graph_editor_fields_01_custom", editor)

    # duplicate the selected node
    node.locator(".inb-node-header").click()
    editor.get_by_role("button", name="Duplicate", exact=True).click()
    page.wait_for_function(
        "() => document.querySelectorAll('.inb-graph-editor .react-flow__node').length === 2"
    )

    nb.run_cell(1)
    printed = nb.output_text(1, "STATE")
    assert printed.count("'sign': 'minus'") == 2 and printed.count("'factor': 3") == 2, printed

    # save: the browser downloads our workflow JSON with both nodes
    with page.expect_download() as info:
        editor.get_by_role("button", name="Save", exact=True).click()
    saved = json.loads(Path(info.value.path()).read_text())
    assert saved["format"] == "invoke-nb/workflow" and len(saved["graph"]["nodes"]) == 2
    assert set(saved["layout"]) == set(saved["graph"]["nodes"])

    # load an InvokeAI workflow file through the file picker
    g = inb.Graph()
    g.add("integer", id="first", value=4)
    g.add("add", id="second", b=1)
    g.connect("first", "value", "second", "a")
    path = tmp_path / "from_invokeai.json"
    path.write_text(json.dumps(inb.Workflow(graph=g).to_invokeai()))
    editor.locator("input[type='file']").set_input_files(str(path))
    editor.locator(".react-flow__node[data-id='second']").wait_for()
    page.wait_for_function(
        "() => document.querySelectorAll('.inb-graph-editor .react-flow__edge').length === 1"
    )
    nb.screenshot("graph_editor_fields_02_loaded", editor)
    nb.run_cell(1)
    page.wait_for_function(
        "el => el.textContent.includes(\"['first', 'second']\")",
        arg=nb.cell(1).locator(".jp-OutputArea").element_handle(),
    )
    assert not page.page_errors, page.page_errors
