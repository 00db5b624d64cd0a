"""The canvas's guidance layers in a real JupyterLab on tiny models: a control layer from a
file, a regional guidance layer painted with its prompts and a reference image, and a
global reference image, drawn with the mouse and the panel; Generate builds the graph
InvokeAI 6.11.1's canvas builds for those layers (tests/fixtures/invokeai/
canvas-layers-sd1.json, compared without ids, seeds or image names) and an image lands.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from invoke_nb.testing.graph_shape import layer_shape

from .lab import LabServer, Notebook
from .waits import wait_painted

pytestmark = pytest.mark.browser

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "invokeai" / "canvas-layers-sd1.json"


@pytest.fixture(scope="session")
def guidance_models(tiny_models_dir: Path, tiny_sd1: Path) -> dict[str, Path]:
    """A tiny ControlNet, IP-Adapter and its CLIP vision encoder for the tiny SD1."""
    from invoke_nb.testing import tiny_control as tc

    d = tiny_models_dir / "browser-guidance"
    d.mkdir(exist_ok=True)
    return {
        "tiny-cn": tc.make_controlnet(d / "cn", tiny_sd1, seed=31),
        "tiny-ip": tc.make_ip_adapter(d / "ip", tiny_sd1, "plain"),
        "ip_adapter_sd_image_encoder": tc.make_clip_vision(d / "ip_adapter_sd_image_encoder"),
    }


def _pictures(folder: Path) -> dict[str, Path]:
    arr = np.zeros((48, 48, 3), np.uint8)
    arr[4:44, 10:14] = 255
    arr[20:24, 2:46] = 255
    rng = np.random.default_rng(4)
    out = {
        "edges": Image.fromarray(arr),
        "style": Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)),
        "ball": Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)),
    }
    paths = {}
    for name, img in out.items():
        paths[name] = folder / f"{name}.png"
        img.save(paths[name])
    return paths


def _setup(root: Path, models: dict[str, Path]) -> str:
    return f"""\
import json
import invoke_nb as inb
from invoke_nb.testing.graph_shape import layer_shape
studio = inb.Studio({str(root)!r})
for name, path in { ({k: str(v) for k, v in models.items()})!r}.items():
    studio.models.install(path, name=name, in_place=True)
canvas = studio.canvas(width=64, height=64)
canvas"""


REPORT = """\
img = canvas.staged[-1]
print("REPORT", json.dumps({
    "mode": canvas.last_mode,
    "size": img.pil.size,
    "kinds": [la.kind for la in canvas.layers],
    "regions": [(r.prompt, r.negative, int((r.mask.point(lambda v: v > 0 and 255)).getbbox()[0])) for r in canvas.regions],
    "shape": layer_shape(img.graph.to_dict()),
}))"""


def test_control_and_regional_layers_build_invokeais_canvas_graph(
    page: Any,
    lab_server: LabServer,
    tiny_sd1: Path,
    guidance_models: dict[str, Path],
    tmp_path: Path,
) -> None:
    pics = _pictures(tmp_path)
    models = {"tiny": tiny_sd1, **guidance_models}
    nb = Notebook.open(
        page, lab_server, "canvas_layers.ipynb", [_setup(tmp_path / "studio", models), REPORT]
    )
    nb.run_cell(0)
    cv = page.locator(".inb-canvas")
    gen = cv.locator(".inb-cv-generate")
    gen.wait_for(timeout=90_000)
    page.wait_for_function("el => !el.disabled", arg=gen.element_handle(), timeout=60_000)

    # a control layer: an edge map from a file, made a control layer with a ControlNet
    cv.get_by_test_id("layer-file").set_input_files(pics["edges"])
    cv.locator(".inb-cv-layer").first.wait_for()
    cv.get_by_test_id("layer-kind").select_option("control")
    control = cv.locator("[data-control-of]")
    assert (
        control.get_by_test_id("control-model")
        .locator("option:checked")
        .inner_text()
        .startswith("tiny-cn")
    )
    control.get_by_test_id("control-weight").fill("0.8")
    control.get_by_test_id("control-begin").fill("0.1")
    control.get_by_test_id("control-end").fill("0.9")
    control.get_by_test_id("control-mode").select_option("more_control")
    # a control layer guides; it is not the picture: the box is still empty (txt2img)
    page.wait_for_function("el => el.textContent.includes('txt2img')", arg=gen.element_handle())

    # a regional guidance layer: paint the right part of the box, prompts, a reference image
    cv.locator("button[data-action='add-region']").click()
    region = cv.locator(".inb-cv-region")
    assert "region 1" in cv.get_by_test_id("paint-target").inner_text()

    def screen(x: float, y: float) -> tuple[float, float]:
        p = page.evaluate(
            "([x, y]) => document.querySelector('.inb-canvas').inbCanvas.engine.toScreen(x, y)",
            [x, y],
        )
        return p["x"], p["y"]

    cv.locator("button[data-tool='brush']").click()
    cv.get_by_test_id("brush-size").fill("16")
    page.mouse.move(*screen(48, 8))
    page.mouse.down()
    for y in range(12, 60, 4):
        page.mouse.move(*screen(48, y))
    page.mouse.up()
    region.get_by_test_id("region-prompt").fill("a red ball")
    region.get_by_test_id("region-negative").fill("blurry")
    region.get_by_test_id("region-ref-file").set_input_files(pics["ball"])
    region.locator("[data-reference-id]").wait_for()
    region.get_by_test_id("ip-weight").fill("0.6")

    # a global reference image
    refs = cv.get_by_test_id("references")
    refs.get_by_test_id("ref-file").set_input_files(pics["style"])
    glob = refs.locator("[data-reference-id]")
    glob.wait_for()
    model = glob.get_by_test_id("ip-model").locator("option:checked")
    assert model.inner_text().startswith("tiny-ip")
    glob.get_by_test_id("ip-weight").fill("0.5")
    wait_painted(page)
    nb.screenshot("canvas_layers_01_drawn", cv)

    cv.locator(".inb-cv-prompt").fill("a cat")
    cv.get_by_test_id("steps").fill("2")
    cv.get_by_test_id("seed").fill("3")
    gen.click()
    staging = cv.get_by_test_id("staging")
    staging.wait_for(timeout=120_000)
    assert "txt2img done" in cv.locator(".inb-cv-status").inner_text()
    wait_painted(page)
    nb.screenshot("canvas_layers_02_staged", cv)

    nb.run_cell(1)
    report = json.loads(re.search(r"REPORT (\{.*\})", nb.output_text(1, "REPORT")).group(1))
    assert report["mode"] == "txt2img" and report["size"] == [64, 64]
    assert report["kinds"] == ["control"]
    ((prompt, negative, left),) = report["regions"]
    assert (prompt, negative) == ("a red ball", "blurry") and 32 <= left <= 44
    want = layer_shape(json.loads(FIXTURE.read_text()))
    assert report["shape"] == want
    assert not page.page_errors, page.page_errors
