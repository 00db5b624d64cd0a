"""``denoise_latents_meta`` denoises as ``denoise_latents`` and reports its settings."""

from __future__ import annotations

import torch

import invoke_nb as inb
from invoke_nb.graph.standard import txt2img
from invoke_nb.studio import Studio


def _graph(studio: Studio, meta: bool) -> tuple[inb.Graph, str]:
    g = txt2img(
        studio.models.get("tiny"),
        "a red fox",
        width=64,
        height=64,
        steps=3,
        seed=11,
        scheduler="euler",
    )
    (did,) = [nid for nid, s in g.nodes.items() if s.type == "denoise_latents"]
    if meta:
        g.nodes[did].type = "denoise_latents_meta"
        g.add("metadata_item", id="mi", label="positive_prompt", value="a red fox")
        g.add("metadata", id="md")
        g.connect("mi", "item", "md", "items")
        g.connect("md", "metadata", did, "metadata")
    return g, did


def test_denoise_meta_same_latents_plus_metadata(tiny_studio: Studio) -> None:
    g, did = _graph(tiny_studio, meta=False)
    plain = tiny_studio.run(g, progress=False)
    gm, _ = _graph(tiny_studio, meta=True)
    withmeta = tiny_studio.run(gm, progress=False)
    a = plain.run.value(plain.outputs[did].latents)
    b = withmeta.run.value(withmeta.outputs[did].latents)
    assert torch.allclose(a, b, atol=1e-5)
    md = withmeta.outputs[did].metadata
    assert md["positive_prompt"] == "a red fox"  # the incoming metadata is kept
    assert (md["width"], md["height"], md["steps"], md["seed"]) == (64, 64, 3, 11)
    assert md["scheduler"] == "euler" and md["cfg_scale"] == 7.5
    assert md["model"]["name"] == "tiny" and md["model"]["submodel_type"] == "unet"
