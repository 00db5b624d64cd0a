"""The Studio one-liners on a Z-Image model: InvokeAI's graph, metadata, recall, rerun."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import invoke_nb as inb


def test_txt2img_with_lora_recall_and_rerun(
    tmp_path: Path, tiny_z_image: Path, tiny_z_image_lora: Path
) -> None:
    studio = inb.Studio(root=tmp_path / "studio")
    try:
        studio.models.install(str(tiny_z_image), name="zi")
        lora = studio.models.install(str(tiny_z_image_lora), name="zi-lora")
        assert (lora.base, lora.type) == ("z-image", "lora")
        img = studio.txt2img(
            "a red fox",
            model="zi",
            width=64,
            height=64,
            steps=3,
            cfg_scale=1.0,
            seed=7,
            loras=[("zi-lora", 0.5)],
            progress=False,
        )
        md = img.metadata
        assert md["generation_mode"] == "z_image_txt2img"
        assert (md["seed"], md["steps"], md["cfg_scale"]) == (7, 3, 1.0)
        assert md["loras"][0]["weight"] == 0.5
        types = {spec.type for spec in img.graph.nodes.values()}
        assert {"z_image_model_loader", "z_image_lora_loader", "z_image_denoise"} <= types
        again = studio.rerun(img, progress=False)
        assert np.array_equal(np.asarray(again.pil), np.asarray(img.pil))
        other = studio.rerun(img, seed=8, progress=False)
        assert np.abs(np.asarray(other.pil, np.int16) - np.asarray(img.pil, np.int16)).max() > 10
    finally:
        studio.close()


def test_model_pickers_offer_only_the_family_base() -> None:
    from types import SimpleNamespace as R

    from invoke_nb.widgets.graph_editor import model_choices

    recs = [
        R(key=n, hash="h", name=n, base=b, type=t)
        for n, b, t in [
            ("sd", "sd-1", "main"),
            ("cv4", "cogview4", "main"),
            ("zi", "z-image", "main"),
            ("zl", "z-image", "lora"),
            ("sl", "sd-1", "lora"),
            ("qwen", "any", "qwen3_encoder"),
            ("zc", "z-image", "controlnet"),
        ]
    ]

    def names(node: str, field: str) -> list[str]:
        return [m["name"] for m in model_choices(recs, node, field)]

    assert names("cogview4_model_loader", "model") == ["cv4"]
    assert names("z_image_model_loader", "model") == ["zi"]
    assert names("z_image_model_loader", "qwen3_encoder_model") == ["qwen"]
    assert names("z_image_lora_loader", "lora") == ["zl"]
    assert names("z_image_control", "control_model") == ["zc"]
