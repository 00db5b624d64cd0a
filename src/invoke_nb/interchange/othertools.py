"""Generation metadata of images made by other tools, in PNG, JPEG and WebP files.

:mod:`invoke_nb.interchange.pngmeta` reads InvokeAI, ComfyUI, A1111 and InvokeAI 2.x PNG
chunks; this module adds what those readers do not cover, normalised to the same
InvokeAI-shaped metadata dict:

* JPEG and WebP: the EXIF ``UserComment`` (A1111/Forge, Fooocus, SwarmUI write their text
  there, behind an 8-byte charset prefix), ComfyUI's WebP EXIF ``Model``/``Make`` tags
  (``prompt:{...}``/``workflow:{...}``) and XMP packets (``exif:UserComment``,
  ``dc:description``, ``parameters``);
* SwarmUI: a JSON object with ``sui_image_params`` (PNG ``parameters`` chunk or UserComment);
* Fooocus: a JSON ``parameters`` (its own scheme) and NovelAI: ``Software: NovelAI`` with a
  JSON ``Comment``, both through ``sd-parsers`` (PyPI), with our own mapping as fallback;
* anything else ``sd-parsers`` recognises.

Reading never raises: a file whose metadata cannot be understood still imports, with the
problem noted in :attr:`Extracted.problems`.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from invoke_nb.interchange.pngmeta import Extracted, extract, parse_a1111, parse_comfyui

__all__ = ["ForeignRead", "read_image_metadata"]

_EXIF_IFD = 0x8769
_USER_COMMENT = 0x9286
_MAKER_NOTE = 0x927C
_IMAGE_DESCRIPTION = 0x010E
_MAKE, _MODEL = 0x010F, 0x0110
_XMP_KEYS = {"usercomment", "parameters", "description"}
_STEPS = re.compile(r"(^|,\s*)Steps:\s*\d", re.MULTILINE)


@dataclass
class ForeignRead:
    """What an image file told us, and the text to keep in the PNG it is stored as."""

    extracted: Extracted
    keep: dict[str, str] = field(default_factory=dict)


def read_image_metadata(image: Image.Image, chunks: dict[str, str]) -> ForeignRead:
    """The metadata of an opened PNG/JPEG/WebP (``chunks``: its PNG text chunks, if any).

    Our own readers win where they apply (InvokeAI, ComfyUI, A1111 text); the rest goes to
    the readers here and to ``sd-parsers``. Raises only ``RecursionError`` (metadata nested
    too deeply: the importer skips such a file with its reason rather than keep it half-read).
    """
    try:
        if image.format == "PNG":
            return ForeignRead(_from_png(image, chunks))
        return _from_exif_and_xmp(image)
    except RecursionError:
        raise
    except Exception as exc:  # a reader bug must not stop an import
        return ForeignRead(Extracted(problems=[f"metadata unreadable: {exc!r}"]))


# -- PNG ----------------------------------------------------------------------------------------
def _from_png(image: Image.Image, chunks: dict[str, str]) -> Extracted:
    params = chunks.get("parameters", "")
    if params.lstrip().startswith("{"):  # SwarmUI and Fooocus write JSON there
        found = from_text(params)
        if found is not None:
            return found
    if chunks.get("Software") == "NovelAI" or _is_novelai_comment(chunks.get("Comment")):
        return _novelai(chunks)
    ex = extract(chunks)
    if ex.source is not None:
        return ex
    return _sd_parsers(image) or ex


# -- JPEG / WebP ----------------------------------------------------------------------------------
def _from_exif_and_xmp(image: Image.Image) -> ForeignRead:
    exif = image.getexif()
    problems: list[str] = []
    # ComfyUI's WebP saver: the API prompt and the workflow in the Model / Make tags.
    model_tag, make_tag = _tag_text(exif.get(_MODEL)), _tag_text(exif.get(_MAKE))
    if model_tag and model_tag.startswith("prompt:"):
        prompt = _loads(model_tag[len("prompt:") :])
        if isinstance(prompt, dict):
            keep = {"prompt": model_tag[len("prompt:") :]}
            if make_tag and make_tag.startswith("workflow:"):
                keep["workflow"] = make_tag[len("workflow:") :]
            return ForeignRead(Extracted(source="comfyui", metadata=parse_comfyui(prompt)), keep)
    texts: list[str] = []
    comment = None
    try:
        comment = exif.get_ifd(_EXIF_IFD).get(_USER_COMMENT)
    except Exception as exc:
        problems.append(f"EXIF unreadable: {exc!r}")
    if comment is not None:
        texts.append(decode_user_comment(comment))
    description = _tag_text(exif.get(_IMAGE_DESCRIPTION))
    if description:
        texts.append(description)
    texts += _xmp_texts(image.info.get("xmp"), problems)
    for text in texts:
        found = from_text(text)
        if found is not None:
            return ForeignRead(found, {"parameters": text})
    found = _sd_parsers(image)
    if found is not None:
        return ForeignRead(found)
    return ForeignRead(Extracted(problems=problems))


def decode_user_comment(value: bytes | str) -> str:
    """EXIF UserComment text: an 8-byte charset prefix (``UNICODE``, ``ASCII``, zeros) then
    the text; UNICODE is UTF-16 in the file's byte order, which writers get wrong both ways."""
    if isinstance(value, str):
        return value.strip("\x00")
    prefix, body = value[:8], value[8:]
    if prefix.startswith(b"UNICODE"):
        candidates = [body.decode("utf-16-be", "replace"), body.decode("utf-16-le", "replace")]
        # the right byte order gives mostly ASCII-range characters for SD metadata
        return max(candidates, key=lambda t: sum(c < "\u0250" for c in t)).strip("\x00")
    if prefix.startswith((b"ASCII", b"\x00" * 8, b"JIS")):
        return body.decode("utf-8", "replace").strip("\x00")
    return value.decode("utf-8", "replace").strip("\x00")  # no prefix at all (Fooocus via PIL)


def _tag_text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").strip("\x00")
    return value.strip("\x00") if isinstance(value, str) else None


def _xmp_texts(xmp: Any, problems: list[str]) -> list[str]:
    """Text of XMP elements and attributes named UserComment, parameters or description."""
    if not xmp:
        return []
    try:
        root = ET.fromstring(xmp if isinstance(xmp, (bytes, str)) else bytes(xmp))
    except ET.ParseError as exc:
        problems.append(f"XMP is not valid XML ({exc})")
        return []
    out: list[str] = []
    for el in root.iter():
        for key, value in el.attrib.items():
            if key.rsplit("}", 1)[-1].lower() in _XMP_KEYS and value.strip():
                out.append(value)
        if el.tag.rsplit("}", 1)[-1].lower() in _XMP_KEYS:
            text = "".join(t for t in el.itertext()).strip()
            if text:
                out.append(text)
    return out


# -- text formats ---------------------------------------------------------------------------------
def from_text(text: str) -> Extracted | None:
    """Recognise one metadata text (JSON of SwarmUI, Fooocus, NovelAI, Draw Things, ComfyUI,
    or A1111's parameters); None when it is none of them."""
    text = text.strip()
    if text.startswith("{"):
        data = _loads(text)
        if not isinstance(data, dict):
            return None
        if isinstance(data.get("sui_image_params"), dict):
            return Extracted(source="swarmui", metadata=_swarmui(data["sui_image_params"]))
        if str(data.get("version", "")).startswith("Fooocus") or "metadata_scheme" in data:
            return _fooocus(text, data)
        if "sampler" in data and "prompt" in data and ("uc" in data or "scale" in data):
            return Extracted(source="novelai", metadata=_novelai_comment(data, None))
        if "c" in data and "seed" in data:
            return Extracted(source="drawthings", metadata=_drawthings(data))
        if data and all(isinstance(v, dict) and "class_type" in v for v in data.values()):
            return Extracted(source="comfyui", metadata=parse_comfyui(data))
        return None
    if _STEPS.search(text):
        meta = parse_a1111(text)
        version = str(meta.get("a1111_parameters", {}).get("Version", ""))
        if version.startswith("f") and version[1:2].isdigit():  # Forge: "f2.0.1v1.10.1-..."
            meta["app"] = "forge"
        return Extracted(source="a1111", metadata=meta)
    return None


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _clean(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if v is not None and v != ""}


def _num(value: Any, kind: type) -> Any:
    try:
        return kind(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


def _swarmui(p: dict[str, Any]) -> dict[str, Any]:
    model = p.get("model")
    return _clean(
        {
            "generation_mode": "txt2img",
            "app": "swarmui",
            "positive_prompt": p.get("prompt"),
            "negative_prompt": p.get("negativeprompt"),
            "seed": _num(p.get("seed"), int),
            "steps": _num(p.get("steps"), int),
            "cfg_scale": _num(p.get("cfgscale"), float),
            "scheduler": p.get("sampler"),
            "width": _num(p.get("width"), int),
            "height": _num(p.get("height"), int),
            "model": {"name": model} if isinstance(model, str) and model else None,
            "swarmui_params": p,
        }
    )


def _fooocus(text: str, data: dict[str, Any]) -> Extracted:
    from sd_parsers.exceptions import ParserError
    from sd_parsers.parsers import FooocusParser

    try:
        meta = _from_prompt_info(FooocusParser().parse({"parameters": text}), "fooocus")
    except (ParserError, ValueError, KeyError):
        meta = {"app": "fooocus"}  # sd-parsers needs every key it knows; map what is there
    meta.setdefault("positive_prompt", data.get("prompt"))
    meta.setdefault("negative_prompt", data.get("negative_prompt"))
    meta.setdefault("seed", _num(data.get("seed"), int))
    meta.setdefault("steps", _num(data.get("steps"), int))
    meta.setdefault("cfg_scale", _num(data.get("guidance_scale"), float))
    meta.setdefault("scheduler", data.get("sampler"))
    if data.get("base_model"):
        meta.setdefault("model", {"name": data["base_model"]})
    size = re.fullmatch(r"\(?\s*(\d+)\s*,\s*(\d+)\s*\)?", str(data.get("resolution", "")))
    if size:
        meta.setdefault("width", int(size[1]))
        meta.setdefault("height", int(size[2]))
    meta["fooocus_parameters"] = data
    return Extracted(source="fooocus", metadata=_clean(meta))


def _is_novelai_comment(comment: str | None) -> bool:
    data = _loads(comment) if comment and comment.lstrip().startswith("{") else None
    return isinstance(data, dict) and "sampler" in data and ("uc" in data or "scale" in data)


def _novelai(chunks: dict[str, str]) -> Extracted:
    from sd_parsers.exceptions import ParserError
    from sd_parsers.parsers import NovelAIParser

    data = _loads(chunks.get("Comment") or "")
    data = data if isinstance(data, dict) else {}
    try:
        meta = _from_prompt_info(NovelAIParser().parse(dict(chunks)), "novelai")
    except (ParserError, ValueError, KeyError):
        meta = {}
    fallback = _novelai_comment(data, chunks.get("Description"))
    for key, value in fallback.items():
        meta.setdefault(key, value)
    source = chunks.get("Source", "")
    if "model" not in meta and source:
        meta["model"] = {"name": source}
    return Extracted(source="novelai", metadata=_clean(meta))


def _novelai_comment(data: dict[str, Any], description: str | None) -> dict[str, Any]:
    prompt = data.get("prompt")
    return _clean(
        {
            "generation_mode": "img2img" if data.get("strength") not in (None, 1) else "txt2img",
            "app": "novelai",
            "positive_prompt": prompt if isinstance(prompt, str) else description,
            "negative_prompt": data.get("uc") if isinstance(data.get("uc"), str) else None,
            "seed": _num(data.get("seed"), int),
            "steps": _num(data.get("steps"), int),
            "cfg_scale": _num(data.get("scale"), float),
            "scheduler": data.get("sampler"),
            "width": _num(data.get("width"), int),
            "height": _num(data.get("height"), int),
            "novelai_parameters": data,
        }
    )


def _drawthings(data: dict[str, Any]) -> dict[str, Any]:
    size = re.fullmatch(r"(\d+)x(\d+)", str(data.get("size", "")))
    return _clean(
        {
            "generation_mode": "txt2img",
            "app": "drawthings",
            "positive_prompt": data.get("c"),
            "negative_prompt": data.get("uc"),
            "seed": _num(data.get("seed"), int),
            "steps": _num(data.get("steps"), int),
            "cfg_scale": _num(data.get("scale"), float),
            "scheduler": data.get("sampler"),
            "width": int(size[1]) if size else None,
            "height": int(size[2]) if size else None,
            "model": {"name": data["model"]} if isinstance(data.get("model"), str) else None,
        }
    )


# -- sd-parsers -----------------------------------------------------------------------------------
def _sd_parsers(image: Image.Image) -> Extracted | None:
    """Whatever sd-parsers recognises (its default effort; no alpha-channel scan)."""
    from sd_parsers import ParserManager

    info = ParserManager().parse(image)
    if info is None:
        return None
    source = str(getattr(info.generator, "value", info.generator)).lower()
    source = {"automatic1111": "a1111"}.get(source, source)
    return Extracted(source=source, metadata=_from_prompt_info(info, source))


def _from_prompt_info(info: Any, app: str) -> dict[str, Any]:
    """InvokeAI-shaped metadata from an sd-parsers ``PromptInfo``."""
    sampler = info.samplers[0] if info.samplers else None
    params = dict(sampler.parameters) if sampler is not None else {}
    models = [m for m in info.models if m is not None]
    model = None
    if models:
        model = {k: v for k, v in (("name", models[0].name), ("hash", models[0].hash)) if v}
    meta = {
        "generation_mode": "txt2img",
        "app": app,
        "positive_prompt": ", ".join(p.value for p in info.prompts) or None,
        "negative_prompt": ", ".join(p.value for p in info.negative_prompts) or None,
        "seed": _num(params.get("seed"), int),
        "steps": _num(params.get("steps", info.metadata.get("steps")), int),
        "cfg_scale": _num(params.get("cfg_scale"), float),
        "scheduler": sampler.name if sampler is not None else None,
        "width": _num(info.metadata.get("width"), int),
        "height": _num(info.metadata.get("height"), int),
        "model": model or None,
    }
    return _clean(meta)
