"""Importing images of other tools: JPEG/WebP (EXIF UserComment, XMP), NovelAI, Fooocus,
SwarmUI, Forge, ComfyUI WebP. Every file is built here the way its tool writes it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import piexif
import piexif.helper
import pytest
from catalog_data import pixel_image
from PIL import Image, PngImagePlugin

from invoke_nb.catalog import Catalog
from invoke_nb.interchange.importer import import_folder
from invoke_nb.interchange.othertools import decode_user_comment

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

A1111 = (
    "a red lighthouse, night\nNegative prompt: blurry\n"
    "Steps: 24, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 1234567, "
    "Size: 40x24, Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Version: v1.10.1"
)
FORGE = A1111.replace("Seed: 1234567", "Seed: 42").replace("v1.10.1", "f2.0.1v1.10.1-1.10.1")

FOOOCUS = {
    "adm_guidance": "(1.5, 0.8, 0.3)",
    "base_model": "juggernautXL_v8Rundiffusion",
    "base_model_hash": "aeb7e9e689",
    "full_negative_prompt": ["ugly"],
    "full_prompt": ["a fox in a forest, cinematic"],
    "guidance_scale": 4.0,
    "loras": [],
    "metadata_scheme": "fooocus",
    "negative_prompt": "ugly",
    "performance": "Speed",
    "prompt": "a fox in a forest",
    "refiner_model": "None",
    "resolution": "(1152, 896)",
    "sampler": "dpmpp_2m_sde_gpu",
    "scheduler": "karras",
    "seed": "998877",
    "sharpness": 2.0,
    "steps": 30,
    "styles": "['Fooocus V2']",
    "vae": "Default (model)",
    "version": "Fooocus v2.5.5",
}

SWARM = {
    "sui_image_params": {
        "prompt": "a castle in the clouds",
        "negativeprompt": "low quality",
        "model": "OfficialStableDiffusion/sd_xl_base_1.0",
        "seed": 305223794,
        "steps": 25,
        "cfgscale": 7.0,
        "aspectratio": "1:1",
        "width": 1024,
        "height": 1024,
        "sampler": "euler",
        "scheduler": "normal",
        "swarm_version": "0.9.6.2",
    },
    "sui_extra_data": {"date": "2025-01-02", "prep_time": "1 s"},
}

NOVELAI_COMMENT = {
    "prompt": "1girl, cherry blossoms, best quality",
    "steps": 28,
    "height": 24,
    "width": 40,
    "scale": 5.0,
    "uncond_scale": 1.0,
    "cfg_rescale": 0.0,
    "seed": 3141592,
    "n_samples": 1,
    "noise_schedule": "native",
    "sampler": "k_euler_ancestral",
    "uc": "lowres, bad hands",
}

COMFY_PROMPT = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "flux-dev.safetensors"}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a neon city", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 40, "height": 24}},
    "3": {"class_type": "KSampler", "inputs": {
        "seed": 777, "steps": 12, "cfg": 1.0, "sampler_name": "euler", "scheduler": "simple",
        "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
}  # fmt: skip


def _xmp(description: str) -> bytes:
    """An XMP packet as photo tools write it, the text in ``dc:description``."""
    body = description.replace("&", "&amp;").replace("<", "&lt;")
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{body}</rdf:li></rdf:Alt>'
        "</dc:description></rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    ).encode()


def _png(path: Path, color: tuple[int, int, int], chunks: dict[str, str]) -> Path:
    info = PngImagePlugin.PngInfo()
    for k, v in chunks.items():
        info.add_text(k, v)
    pixel_image(color).save(path, pnginfo=info)
    return path


def _jpeg_a1111(path: Path) -> Path:
    """A1111/Forge: piexif, UserComment with the UNICODE prefix, UTF-16 big-endian."""
    comment = piexif.helper.UserComment.dump(A1111, encoding="unicode")
    exif = piexif.dump({"0th": {}, "Exif": {piexif.ExifIFD.UserComment: comment}})
    pixel_image((200, 10, 10)).save(path, "JPEG", quality=95, exif=exif)
    return path


def _webp_forge_le(path: Path) -> Path:
    """UserComment written through Pillow's Exif, UTF-16 little-endian (as some tools do)."""
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + FORGE.encode("utf-16-le")
    pixel_image((10, 200, 10)).save(path, "WEBP", lossless=True, exif=exif)
    return path


def _webp_xmp(path: Path) -> Path:
    pixel_image((10, 10, 200)).save(path, "WEBP", lossless=True, xmp=_xmp(A1111))
    return path


def _jpeg_fooocus(path: Path) -> Path:
    """Fooocus: the JSON in UserComment without a charset prefix, scheme in MakerNote."""
    exif = Image.Exif()
    exif[0x0131] = FOOOCUS["version"]
    ifd = exif.get_ifd(0x8769)
    ifd[0x9286] = json.dumps(FOOOCUS)
    ifd[0x927C] = "fooocus"
    pixel_image((90, 90, 10)).save(path, "JPEG", quality=95, exif=exif)
    return path


def _jpeg_swarm(path: Path) -> Path:
    comment = piexif.helper.UserComment.dump(json.dumps(SWARM, indent=2), encoding="unicode")
    exif = piexif.dump({"0th": {}, "Exif": {piexif.ExifIFD.UserComment: comment}})
    pixel_image((10, 90, 90)).save(path, "JPEG", quality=95, exif=exif)
    return path


def _webp_comfy(path: Path) -> Path:
    """ComfyUI's WebP saver: ``prompt:`` in EXIF Model, ``workflow:`` in EXIF Make."""
    exif = Image.Exif()
    exif[0x0110] = "prompt:" + json.dumps(COMFY_PROMPT)
    exif[0x010F] = "workflow:" + json.dumps({"nodes": [], "links": []})
    pixel_image((90, 10, 90)).save(path, "WEBP", lossless=True, exif=exif)
    return path


def _novelai_png(path: Path) -> Path:
    return _png(
        path,
        (1, 2, 3),
        {
            "Title": "AI generated image",
            "Description": NOVELAI_COMMENT["prompt"],
            "Software": "NovelAI",
            "Source": "Stable Diffusion XL C1E1DE52",
            "Generation time": "3.1",
            "Comment": json.dumps(NOVELAI_COMMENT),
        },
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    src = tmp_path / "others"
    src.mkdir()
    _jpeg_a1111(src / "a1111.jpg")
    _webp_forge_le(src / "forge.webp")
    _webp_xmp(src / "xmp.webp")
    _jpeg_fooocus(src / "fooocus.jpeg")
    _jpeg_swarm(src / "swarm.jpg")
    _webp_comfy(src / "comfy.webp")
    _novelai_png(src / "novelai.png")
    _png(
        src / "fooocus.png",
        (4, 5, 6),
        {"parameters": json.dumps(FOOOCUS), "fooocus_scheme": "fooocus"},
    )
    _png(src / "swarm.png", (7, 8, 9), {"parameters": json.dumps(SWARM, indent=2)})
    return src


def _by_name(cat: Catalog, src: Path) -> dict:
    results = import_folder(cat.images, src)
    bad = [r for r in results if r.status != "imported"]
    assert bad == []
    return {Path(r.path).name: cat.images.get(r.image_name) for r in results}


def test_every_tool_imports_with_prompt_seed_and_model(cat: Catalog, folder: Path) -> None:
    got = _by_name(cat, folder)
    facts = {
        name: (r.source, r.positive_prompt, r.negative_prompt, r.seed, r.model_name)
        for name, r in got.items()
    }
    xl = "sd_xl_base_1.0"
    assert facts == {
        "a1111.jpg": ("a1111", "a red lighthouse, night", "blurry", 1234567, xl),
        "forge.webp": ("a1111", "a red lighthouse, night", "blurry", 42, xl),
        "xmp.webp": ("a1111", "a red lighthouse, night", "blurry", 1234567, xl),
        "fooocus.jpeg": ("fooocus", "a fox in a forest", "ugly", 998877, FOOOCUS["base_model"]),
        "fooocus.png": ("fooocus", "a fox in a forest", "ugly", 998877, FOOOCUS["base_model"]),
        "swarm.jpg": ("swarmui", "a castle in the clouds", "low quality", 305223794,
                      "OfficialStableDiffusion/sd_xl_base_1.0"),
        "swarm.png": ("swarmui", "a castle in the clouds", "low quality", 305223794,
                      "OfficialStableDiffusion/sd_xl_base_1.0"),
        "comfy.webp": ("comfyui", "a neon city", "", 777, "flux-dev.safetensors"),
        "novelai.png": ("novelai", NOVELAI_COMMENT["prompt"], "lowres, bad hands", 3141592,
                        "Stable Diffusion XL"),
    }  # fmt: skip
    a = got["a1111.jpg"]
    assert (a.steps, a.cfg_scale, a.scheduler) == (24, 6.5, "DPM++ 2M")
    assert got["forge.webp"].metadata["app"] == "forge"
    assert (got["fooocus.png"].steps, got["fooocus.png"].cfg_scale) == (30, 4.0)
    assert (got["fooocus.png"].width, got["fooocus.png"].height) == (40, 24)  # the file's size
    assert got["fooocus.png"].metadata["width"] == 1152  # the metadata's resolution
    assert (got["swarm.png"].steps, got["swarm.png"].cfg_scale) == (25, 7.0)
    n = got["novelai.png"]
    assert (n.steps, n.cfg_scale, n.scheduler) == (28, 5.0, "k_euler_ancestral")
    assert n.metadata["model"]["hash"] == "C1E1DE52"


def test_jpeg_and_webp_are_stored_as_pngs_keeping_pixels_and_text(
    cat: Catalog, folder: Path
) -> None:
    got = _by_name(cat, folder)
    for name, color in (("a1111.jpg", (200, 10, 10)), ("forge.webp", (10, 200, 10))):
        rec = got[name]
        path = cat.images.path(rec.image_name)
        with Image.open(path) as im:
            assert im.format == "PNG" and im.size == (40, 24)
            pixel = im.convert("RGB").getpixel((20, 12))
            assert all(abs(p - c) <= 4 for p, c in zip(pixel, color, strict=True))  # JPEG loss
            assert "Seed:" in im.text["parameters"]
        assert cat.images.get_thumbnail(rec.image_name).size[0] > 0
    # a second import finds the original files' bytes already catalogued
    again = import_folder(cat.images, folder)
    assert {r.status for r in again} == {"duplicate"}


def test_unreadable_files_are_skipped_with_a_reason_and_never_stop_an_import(
    cat: Catalog, tmp_path: Path
) -> None:
    src = tmp_path / "bad"
    src.mkdir()
    good = _jpeg_a1111(src / "good.jpg")
    (src / "truncated.jpg").write_bytes(good.read_bytes()[:200])
    (src / "empty.webp").write_bytes(b"")
    (src / "text.jpeg").write_text("not an image")
    odd = Image.Exif()
    odd.get_ifd(0x8769)[0x9286] = b"UNICODE\x00\xff\xfe\xd8"  # garbage comment
    pixel_image((1, 1, 1)).save(src / "odd-comment.jpg", "JPEG", exif=odd)
    pixel_image((2, 2, 2)).save(src / "bad-xmp.webp", "WEBP", xmp=b"<x:xmpmeta><unclosed")
    _png(src / "bad-json.png", (3, 3, 3), {"parameters": "{not json", "Comment": "{also not"})
    _png(src / "nai-broken.png", (4, 4, 4), {"Software": "NovelAI", "Comment": "[]"})
    results = {Path(r.path).name: r for r in import_folder(cat.images, src)}
    status = {name: r.status for name, r in results.items()}
    assert status == {
        "good.jpg": "imported",
        "odd-comment.jpg": "imported",
        "bad-xmp.webp": "imported",
        "bad-json.png": "imported",
        "nai-broken.png": "imported",
        "truncated.jpg": "error",
        "empty.webp": "error",
        "text.jpeg": "error",
    }
    for name in ("truncated.jpg", "empty.webp", "text.jpeg"):
        assert name in (results[name].reason or "")
    assert cat.images.get(results["good.jpg"].image_name).seed == 1234567
    assert cat.images.get(results["odd-comment.jpg"].image_name).metadata is None
    assert cat.images.get(results["nai-broken.png"].image_name).source == "novelai"


def test_every_real_image_of_the_test_set_imports(cat: Catalog, folder: Path) -> None:
    """The committed real images (InvokeAI's own PNGs) and the files built above."""
    real = [p for p in (FIXTURES / "invokeai").rglob("*") if p.suffix.lower() in (".png", ".jpg")]
    assert real
    for p in real:
        shutil.copy(p, folder / p.name)
    results = import_folder(cat.images, folder)
    assert len(results) == len(real) + 9
    assert [r for r in results if r.status != "imported"] == []
    invokeai = [r for r in results if r.source == "invokeai"]
    assert len(invokeai) == len(real)
    assert all(cat.images.get(r.image_name).seed == 42 for r in invokeai)


def test_user_comment_charsets() -> None:
    text = "a cat, Steps: 3"
    assert decode_user_comment(b"UNICODE\x00" + text.encode("utf-16-be")) == text
    assert decode_user_comment(b"UNICODE\x00" + text.encode("utf-16-le")) == text
    assert decode_user_comment(b"ASCII\x00\x00\x00" + text.encode()) == text
    assert decode_user_comment(text.encode()) == text
    assert decode_user_comment(text) == text
