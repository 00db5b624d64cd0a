"""FLUX in a Studio: install + hash, InvokeAI's default FLUX workflows, the one-liners, recall."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

import invoke_nb as inb
from invoke_nb.studio import Studio
from shared_paths import INVOKEAI_WORKFLOWS


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory, flux_paths) -> Iterator[Studio]:
    s = Studio(tmp_path_factory.mktemp("flux-studio") / "studio")
    for name in ("t5", "clip", "vae", "schnell", "dev"):
        s.models.install(str(flux_paths[name]), name=f"flux-{name}", in_place=True)
    yield s
    s.close()


def _model_values(studio: Studio, variant: str) -> dict:
    ident = studio._model  # the studio's own name -> identifier lookup
    return {
        "model": ident(f"flux-{variant}"),
        "t5_encoder_model": ident("flux-t5"),
        "clip_embed_model": ident("flux-clip"),
        "vae_model": ident("flux-vae"),
    }


@pytest.mark.parametrize("name", ["Flux Text to Image", "FLUX Image to Image"])
def test_default_flux_workflows_import_and_run(studio: Studio, name: str) -> None:
    import json

    path = INVOKEAI_WORKFLOWS / f"{name}.json"
    raw = json.loads(path.read_text())
    g = inb.load_workflow(path)
    assert len(g.nodes) == sum(n["type"] == "invocation" for n in raw["nodes"])
    assert len(g.edges) == len(raw["edges"])
    for nid, spec in g.nodes.items():
        if spec.type == "flux_model_loader":
            g.set(nid, **_model_values(studio, "schnell"))
        elif spec.type == "flux_denoise":
            g.set(nid, width=32, height=32, num_steps=2)
        elif spec.type == "flux_vae_encode":
            g.set(nid, image=Image.new("RGB", (32, 32), (200, 80, 40)))
    before = len(studio.images.list())
    result = studio.run(g, progress=False)
    assert result.image is not None and result.image.pil.size == (32, 32)
    assert len(studio.images.list()) == before + 1  # it landed in the catalog


def test_txt2img_builds_invokeais_flux_graph_and_recall_reruns(studio: Studio) -> None:
    img = studio.txt2img("a red cat", model="flux-dev", width=32, height=32, steps=2,
                         guidance=3.0, seed=4, progress=False)  # fmt: skip
    types = {s.type for s in img.graph.nodes.values()} if hasattr(img, "graph") else set()
    md = img.metadata
    assert md["generation_mode"] == "flux_txt2img" and md["guidance"] == 3.0
    assert md["model"]["name"] == "flux-dev" and md["t5_encoder"]["name"] == "flux-t5"
    assert md["seed"] == 4 and md["positive_prompt"] == "a red cat"
    assert not types or {"flux_model_loader", "flux_denoise", "flux_vae_decode"} <= types
    again = studio.rerun(img, progress=False)
    assert np.abs(np.asarray(again.pil, np.int16) - np.asarray(img.pil, np.int16)).max() == 0
    other = studio.rerun(img, seed=5, progress=False)
    assert np.abs(np.asarray(other.pil, np.int16) - np.asarray(img.pil, np.int16)).max() > 0


def test_img2img_inpaint_outpaint_one_liners(studio: Studio) -> None:
    src = Image.new("RGB", (32, 32), (30, 120, 200))
    out = studio.img2img(
        src, "a cat", model="flux-dev", strength=0.5, steps=2, seed=1, progress=False
    )
    assert out.metadata["generation_mode"] == "flux_img2img" and out.pil.size == (32, 32)
    big = Image.new("RGB", (64, 64), (30, 120, 200))
    mask = Image.new("L", (64, 64), 255)
    mask.paste(0, (24, 24, 40, 40))
    inp = studio.inpaint(big, mask, "a cat", model="flux-dev", steps=2, seed=1, edge_radius=4,
                         progress=False)  # fmt: skip
    assert inp.graph.node("flux_denoise").values["denoising_start"] == 0.0
    a = np.asarray(inp.pil.convert("RGB"), np.int16)
    assert (a[0, 0] == (30, 120, 200)).all()  # pasted back outside the mask
    rgba = Image.new("RGBA", (96, 64), (0, 0, 0, 0))
    rgba.paste(Image.new("RGBA", (64, 64), (30, 120, 200, 255)), (0, 0))
    op = studio.outpaint(rgba, "a cat", model="flux-dev", steps=2, seed=1, progress=False)
    assert "infill" in op.graph.nodes and op.pil.size == (96, 64)


def test_flux_model_pickers_offer_flux_models(studio: Studio) -> None:
    from invoke_nb.nodes import get_node_class
    from invoke_nb.nodes.base import field_extra

    fields = get_node_class("flux_model_loader").input_fields()
    assert field_extra(fields["model"])["ui_model_base"] == ["flux"]
    assert field_extra(fields["t5_encoder_model"])["ui_model_type"] == ["t5_encoder"]
    flux_mains = [r.name for r in studio.models.list(type="main") if r.base == "flux"]
    assert sorted(flux_mains) == ["flux-dev", "flux-schnell"]
