"""The Studio one-liners on a CogView4 model: InvokeAI's graph, metadata, recall, rerun."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import invoke_nb as inb


def test_txt2img_img2img_recall_and_rerun(tmp_path: Path, tiny_cogview4: Path) -> None:
    studio = inb.Studio(root=tmp_path / "studio")
    try:
        studio.models.install(str(tiny_cogview4), name="cv4")
        img = studio.txt2img(
            "a red fox",
            model="cv4",
            width=64,
            height=64,
            steps=3,
            cfg_scale=3.5,
            seed=7,
            progress=False,
        )
        md = img.metadata
        assert md["generation_mode"] == "cogview4_txt2img"
        assert (md["seed"], md["steps"], md["width"], md["positive_prompt"]) == (
            7,
            3,
            64,
            "a red fox",
        )
        assert md["model"]["base"] == "cogview4"
        types = {spec.type for spec in img.graph.nodes.values()}
        assert {"cogview4_model_loader", "cogview4_text_encoder", "cogview4_denoise"} <= types
        again = studio.rerun(img, progress=False)
        assert np.array_equal(np.asarray(again.pil), np.asarray(img.pil))
        other = studio.rerun(img, seed=8, progress=False)
        assert other.metadata["seed"] == 8
        assert np.abs(np.asarray(other.pil, np.int16) - np.asarray(img.pil, np.int16)).max() > 10
        i2i = studio.img2img(
            img.pil, "a red fox", model="cv4", strength=0.5, steps=4, seed=1, progress=False
        )
        assert i2i.metadata["generation_mode"] == "cogview4_img2img"
        assert i2i.pil.size == (64, 64)
    finally:
        studio.close()
