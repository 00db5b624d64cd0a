"""Bad control input beyond the ControlNet cases of test_ip_adapter.py: a T2I-Adapter or
IP-Adapter of the wrong base names node, field and both bases; in a Studio a failed control
generation writes no output (only its input, kept for a retry)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from invoke_nb.graph.standard import txt2img
from invoke_nb.studio import Studio

from .conftest import cident

WRONG_BASE = [
    ("t2i_adapter", "t2i_adapter_model", "t2i-sdxl", "t2i_adapter"),
    ("ip_adapter", "ip_adapter_model", "ip-sdxl-plus", "ip_adapter"),
]


@pytest.mark.parametrize(("node_type", "field", "model", "into"), WRONG_BASE)
def test_an_adapter_of_the_wrong_base_names_node_field_and_bases(
    crunner, cmodels, control_image, node_type: str, field: str, model: str, into: str
) -> None:
    g = txt2img(cident(cmodels, "tiny-sd1"), "a cat", width=64, height=64, steps=2, seed=1)
    a = g.add(node_type, id="a", image=control_image, **{field: cident(cmodels, model)})
    g.connect(a, into, "denoise_latents", into)
    with pytest.raises(Exception) as err:
        crunner.run(g)
    text = str(err.value)
    assert "'denoise_latents'" in text and f"'{into}'" in text and model in text
    assert "'sdxl'" in text and "'sd-1'" in text


@pytest.fixture
def bad_studio(tmp_path: Path, tiny_sd1: Path, cmodels) -> Iterator[Studio]:
    s = Studio(tmp_path / "studio")
    s.models.install(str(tiny_sd1), name="tiny", in_place=True)
    s.models.install(cmodels.store.list(name="cn-sdxl")[0].path, name="cn-sdxl", in_place=True)
    yield s
    s.close()


def test_a_failed_control_generation_writes_no_output(
    bad_studio: Studio, control_image: Image.Image
) -> None:
    def files() -> list[Path]:
        return sorted(p for p in bad_studio.root.rglob("*.png"))

    before = files()
    with pytest.raises(Exception, match=r"cn-sdxl.*sdxl|sdxl.*cn-sdxl"):
        bad_studio.txt2img(
            "a cat", model="tiny", width=64, height=64, steps=2, progress=False,
            control=[dict(model="cn-sdxl", image=control_image)],
        )  # fmt: skip
    assert bad_studio.images.list() == []  # no output
    # the only files are the control image catalogued as the failed item's input (an
    # intermediate, kept so that studio.retry can run the item again)
    kept = {r.image_name for r in bad_studio.catalog.images.list(is_intermediate=True).items}
    new = [p for p in files() if p not in before]
    assert len(new) == 1 and new[0].name in kept
    (item,) = bad_studio.queue_items(status="failed")
    assert "cn-sdxl" in (item.error_message or "")
