"""import_folder: InvokeAI, ComfyUI, A1111 and InvokeAI 2.x PNGs; duplicates; broken files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from catalog_data import pixel_image
from PIL import PngImagePlugin

from invoke_nb.catalog import Catalog, NotFoundError
from invoke_nb.interchange.importer import import_folder
from invoke_nb.interchange.pngmeta import parse_a1111, parse_comfyui

COMFY_PROMPT = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "dreamshaper_8.safetensors"}},
    "10": {"class_type": "LoraLoader", "inputs": {"model": ["4", 0], "clip": ["4", 1], "lora_name": "x.safetensors"}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse at dusk", "clip": ["10", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": ["12", 0], "clip": ["10", 1]}},
    "12": {"class_type": "PrimitiveString", "inputs": {"value": "low quality"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 768, "batch_size": 1}},
    "3": {
        "class_type": "KSampler",
        "inputs": {
            "seed": 123456789, "steps": 28, "cfg": 6.5, "sampler_name": "dpmpp_2m",
            "scheduler": "karras", "denoise": 1.0, "model": ["10", 0],
            "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0],
        },
    },
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "ComfyUI"}},
}  # fmt: skip

A1111_TEXT = (
    "masterpiece, a cat wearing a hat\n(detailed:1.2)\n"
    "Negative prompt: lowres, bad anatomy\n"
    "Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 987654321, Size: 512x640, "
    'Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Lora hashes: "add_detail: 7c6bad76eb54, x: 1", '
    "Version: v1.6.0"
)


def _png(path: Path, color: tuple[int, int, int], **chunks: str) -> Path:
    info = PngImagePlugin.PngInfo()
    for k, v in chunks.items():
        info.add_text(k.replace("_", "-") if k == "sd_metadata" else k, v)
    pixel_image(color).save(path, pnginfo=info)
    return path


def test_parse_comfyui_follows_links() -> None:
    meta = parse_comfyui(COMFY_PROMPT)
    assert meta["positive_prompt"] == "a lighthouse at dusk"
    assert meta["negative_prompt"] == "low quality"
    assert (meta["seed"], meta["steps"], meta["cfg_scale"]) == (123456789, 28, 6.5)
    assert (meta["scheduler"], meta["comfyui_scheduler"]) == ("dpmpp_2m", "karras")
    assert meta["model"] == {"name": "dreamshaper_8.safetensors"}
    assert (meta["width"], meta["height"]) == (512, 768)


def test_parse_a1111() -> None:
    meta = parse_a1111(A1111_TEXT)
    assert meta["positive_prompt"] == "masterpiece, a cat wearing a hat\n(detailed:1.2)"
    assert meta["negative_prompt"] == "lowres, bad anatomy"
    assert (meta["steps"], meta["scheduler"], meta["cfg_scale"]) == (30, "DPM++ 2M Karras", 7.0)
    assert (meta["seed"], meta["width"], meta["height"]) == (987654321, 512, 640)
    assert meta["model"] == {"name": "v1-5-pruned-emaonly", "hash": "6ce0161689"}
    assert meta["a1111_parameters"]["Lora hashes"] == "add_detail: 7c6bad76eb54, x: 1"
    assert meta["a1111_parameters"]["Version"] == "v1.6.0"
    only_prompt = parse_a1111("just a prompt")
    assert only_prompt["positive_prompt"] == "just a prompt" and "seed" not in only_prompt


def test_import_folder_reports_every_file(cat: Catalog, tmp_path: Path) -> None:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    comfy = _png(
        src / "comfy.png", (1, 0, 0), prompt=json.dumps(COMFY_PROMPT), workflow='{"nodes": []}'
    )
    a1111 = _png(src / "sub" / "a1111.png", (2, 0, 0), parameters=A1111_TEXT)
    legacy = _png(
        src / "legacy.png",
        (3, 0, 0),
        sd_metadata=json.dumps(
            {
                "model_weights": "stable-diffusion-1.5",
                "image": {"prompt": [{"prompt": "an owl [blurry]", "weight": 1}], "seed": 5,
                          "steps": 50, "cfg_scale": 7.5, "sampler": "k_lms", "width": 512, "height": 512},
            }
        ),
    )  # fmt: skip
    dream = _png(
        src / "dream.png",
        (4, 0, 0),
        Dream='"a fox in snow [ugly]" -s 40 -S 77 -W 512 -H 512 -C 8 -A k_euler',
    )
    plain = _png(src / "plain.png", (5, 0, 0))
    copy = src / "sub" / "copy-of-comfy.png"
    copy.write_bytes(comfy.read_bytes())
    broken = src / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (src / "notes.txt").write_text("ignored: not an image")
    pixel_image((6, 0, 0)).save(src / "photo.jpg")

    results = {Path(r.path).name: r for r in import_folder(cat.images, src)}
    assert set(results) == {
        "comfy.png",
        "a1111.png",
        "legacy.png",
        "dream.png",
        "plain.png",
        "copy-of-comfy.png",
        "broken.png",
        "photo.jpg",
    }
    assert results["broken.png"].status == "error" and "broken.png" in (
        results["broken.png"].reason or ""
    )
    assert results["photo.jpg"].status == "imported"  # JPEG without metadata: pixels only
    dup = [results["comfy.png"], results["copy-of-comfy.png"]]
    assert sorted(r.status for r in dup) == ["duplicate", "imported"]

    def rec(path: Path):
        return cat.images.get(results[path.name].image_name)

    c = rec(comfy)
    assert (c.source, c.positive_prompt, c.negative_prompt, c.seed) == (
        "comfyui",
        "a lighthouse at dusk",
        "low quality",
        123456789,
    )
    assert (c.steps, c.cfg_scale, c.scheduler, c.model_name) == (
        28,
        6.5,
        "dpmpp_2m",
        "dreamshaper_8.safetensors",
    )
    a = rec(a1111)
    assert (a.source, a.seed, a.steps, a.model_name, a.negative_prompt) == (
        "a1111",
        987654321,
        30,
        "v1-5-pruned-emaonly",
        "lowres, bad anatomy",
    )
    lg = rec(legacy)
    assert (lg.source, lg.positive_prompt, lg.negative_prompt, lg.seed, lg.scheduler) == (
        "invokeai-legacy",
        "an owl",
        "blurry",
        5,
        "k_lms",
    )
    d = rec(dream)
    assert (d.positive_prompt, d.negative_prompt, d.seed, d.steps, d.cfg_scale) == (
        "a fox in snow",
        "ugly",
        77,
        40,
        8.0,
    )
    p = rec(plain)
    assert p.source is None and p.metadata is None and p.width == 40
    assert cat.images.get_pil(p.image_name).getpixel((0, 0)) == (5, 0, 0)
    assert cat.images.count() == 6
    assert cat.images.list(search="lighthouse").names == [c.image_name]

    again = import_folder(cat.images, src)
    assert {r.status for r in again if r.path != str(broken)} == {"duplicate"}
    assert cat.images.count() == 6


def test_import_into_board_and_bad_folder(cat: Catalog, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    _png(src / "a.png", (7, 7, 7), parameters="hello\nSteps: 3, Seed: 4")
    board = cat.boards.create("imports")
    (res,) = import_folder(cat.images, src, board_id=board.board_id)
    assert cat.images.get(res.image_name).board_id == board.board_id
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        import_folder(cat.images, tmp_path / "missing")
    with pytest.raises(NotFoundError, match="no board"):
        import_folder(cat.images, src, board_id="nope")
