"""Test data shared by the catalog tests (images, InvokeAI metadata, a graph)."""

from __future__ import annotations

from PIL import Image


def pixel_image(color: tuple[int, int, int], size: tuple[int, int] = (40, 24)) -> Image.Image:
    """An RGB image whose top-left pixel is ``color`` and bottom-right is its inverse."""
    im = Image.new("RGB", size, color)
    im.putpixel((size[0] - 1, size[1] - 1), tuple(255 - c for c in color))
    return im


def invokeai_metadata(prompt: str = "a red fox", seed: int = 42, **extra: object) -> dict:
    """Core metadata the way InvokeAI 6 writes it."""
    return {
        "generation_mode": "txt2img",
        "positive_prompt": prompt,
        "negative_prompt": "blurry",
        "width": 40,
        "height": 24,
        "seed": seed,
        "rand_device": "cpu",
        "cfg_scale": 7.5,
        "cfg_rescale_multiplier": 0,
        "steps": 20,
        "scheduler": "euler",
        "model": {
            "key": "5f1c",
            "hash": "blake3:abcd",
            "name": "tiny-sd1",
            "base": "sd-1",
            "type": "main",
        },
        **extra,
    }


GRAPH = {
    "id": "g1",
    "nodes": {
        "noise": {"id": "noise", "type": "noise", "seed": 42, "width": 40, "height": 24},
        "l2i": {"id": "l2i", "type": "l2i", "is_intermediate": False},
    },
    "edges": [
        {
            "source": {"node_id": "noise", "field": "noise"},
            "destination": {"node_id": "l2i", "field": "latents"},
        }
    ],
}
