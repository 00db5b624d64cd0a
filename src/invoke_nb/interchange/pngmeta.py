"""PNG text metadata of other tools: recognise who wrote a PNG's chunks and normalise them.

InvokeAI's own three chunks (``invokeai_metadata``, ``invokeai_graph``, ``invokeai_workflow``)
are the catalog's format too (:mod:`invoke_nb.catalog.pngchunks` writes them).

Foreign images are normalised to that metadata shape, so the catalog's columns are filled the
same way whatever made the image:
* ComfyUI writes ``prompt`` (the API-format graph ``{id: {"class_type", "inputs"}}``, links are
  ``[node_id, output_index]``) and ``workflow`` (its editor JSON);
* AUTOMATIC1111 writes ``parameters``: prompt lines, ``Negative prompt: ...``, then a line of
  ``Key: value`` pairs (Steps, Sampler, CFG scale, Seed, Size, Model, Model hash, ...);
* InvokeAI 2.x wrote ``sd-metadata`` (JSON with an ``image`` dict) and ``Dream`` (a command line).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from invoke_nb.catalog.pngchunks import as_float as _float
from invoke_nb.catalog.pngchunks import as_int as _int
from invoke_nb.catalog.pngchunks import as_str as _str

__all__ = ["Extracted", "extract", "parse_a1111", "parse_comfyui"]


@dataclass
class Extracted:
    """What a PNG's text chunks told us."""

    source: str | None = None
    metadata: dict[str, Any] | None = None
    graph: dict[str, Any] | None = None
    workflow: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)


def _json(text: str | None, what: str, problems: list[str]) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        problems.append(f"{what} is not valid JSON ({exc})")
        return None


def extract(text: dict[str, str]) -> Extracted:
    """Recognise the tool that wrote these PNG text chunks and normalise its metadata."""
    out = Extracted()
    p = out.problems
    if "invokeai_metadata" in text or "invokeai_graph" in text:
        out.source = "invokeai"
        out.metadata = _json(text.get("invokeai_metadata"), "invokeai_metadata", p)
        out.graph = _json(text.get("invokeai_graph"), "invokeai_graph", p)
        out.workflow = _json(text.get("invokeai_workflow"), "invokeai_workflow", p)
    elif "prompt" in text and text["prompt"].lstrip().startswith("{"):
        out.source = "comfyui"
        prompt = _json(text["prompt"], "ComfyUI prompt", p)
        if isinstance(prompt, dict):
            out.metadata = parse_comfyui(prompt)
        out.workflow = (
            None  # ComfyUI's editor JSON is not an InvokeAI workflow; it stays in the file
        )
    elif "parameters" in text:
        out.source = "a1111"
        out.metadata = parse_a1111(text["parameters"])
    elif "sd-metadata" in text:
        out.source = "invokeai-legacy"
        legacy = _json(text["sd-metadata"], "sd-metadata", p)
        if isinstance(legacy, dict):
            out.metadata = _parse_sd_metadata(legacy)
    elif "Dream" in text:
        out.source = "invokeai-legacy"
        out.metadata = _parse_dream(text["Dream"])
    if out.metadata is not None and not isinstance(out.metadata, dict):
        p.append("metadata is not a JSON object")
        out.metadata = None
    return out


# -- ComfyUI ----------------------------------------------------------------------------------
_SAMPLER_TYPES = ("KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced")
_COND_INPUTS = ("conditioning", "conditioning_1", "conditioning_to", "positive", "cond")


def _node(prompt: dict[str, Any], link: Any) -> dict[str, Any] | None:
    if isinstance(link, list) and link:
        node = prompt.get(str(link[0]))
        return node if isinstance(node, dict) else None
    return None


def _comfy_text(prompt: dict[str, Any], link: Any, depth: int = 0) -> str | None:
    """Follow a conditioning or string link back to the text that made it."""
    node = _node(prompt, link)
    if node is None or depth > 20:
        return None
    inputs = node.get("inputs") or {}
    for key in ("text", "text_g", "string", "value", "prompt"):
        if key in inputs:
            value = inputs[key]
            if isinstance(value, str):
                return value
            if isinstance(value, list):
                return _comfy_text(prompt, value, depth + 1)
    for key in _COND_INPUTS:
        if isinstance(inputs.get(key), list):
            return _comfy_text(prompt, inputs[key], depth + 1)
    return None


def _comfy_model(prompt: dict[str, Any], link: Any, depth: int = 0) -> str | None:
    node = _node(prompt, link)
    if node is None or depth > 20:
        return None
    inputs = node.get("inputs") or {}
    for key in ("ckpt_name", "unet_name", "model_name"):
        if isinstance(inputs.get(key), str):
            return inputs[key]
    if isinstance(inputs.get("model"), list):
        return _comfy_model(prompt, inputs["model"], depth + 1)
    return None


def parse_comfyui(prompt: dict[str, Any]) -> dict[str, Any]:
    """InvokeAI-shaped metadata from a ComfyUI API-format prompt graph."""
    sampler = next(
        (
            n
            for n in prompt.values()
            if isinstance(n, dict)
            and (n.get("class_type") in _SAMPLER_TYPES or "positive" in (n.get("inputs") or {}))
        ),
        None,
    )
    meta: dict[str, Any] = {"generation_mode": "txt2img", "app": "comfyui"}
    if sampler is None:
        return meta
    inputs = sampler.get("inputs") or {}
    seed = inputs.get("seed", inputs.get("noise_seed"))
    if isinstance(seed, list):  # seed from a primitive node
        seed_node = _node(prompt, seed) or {}
        seed = next(iter((seed_node.get("inputs") or {}).values()), None)
    meta.update(
        positive_prompt=_comfy_text(prompt, inputs.get("positive")),
        negative_prompt=_comfy_text(prompt, inputs.get("negative")),
        seed=_int(seed),
        steps=_int(inputs.get("steps")),
        cfg_scale=_float(inputs.get("cfg")),
        scheduler=_str(inputs.get("sampler_name")),
        comfyui_scheduler=_str(inputs.get("scheduler")),
    )
    latent = _node(prompt, inputs.get("latent_image")) or {}
    latent_inputs = latent.get("inputs") or {}
    if "width" in latent_inputs:
        meta.update(width=_int(latent_inputs["width"]), height=_int(latent_inputs.get("height")))
    model = _comfy_model(prompt, inputs.get("model"))
    if model:
        meta["model"] = {"name": model}
    return {k: v for k, v in meta.items() if v is not None}


# -- AUTOMATIC1111 ----------------------------------------------------------------------------
_A1111_PAIR = re.compile(r'\s*([A-Za-z][\w \-/]*):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')


def parse_a1111(text: str) -> dict[str, Any]:
    """InvokeAI-shaped metadata from A1111's ``parameters`` text."""
    lines = text.strip().splitlines()
    settings_line = ""
    if lines and re.search(r"(^|,\s*)Steps:\s*\d", lines[-1]):
        settings_line = lines.pop()
    positive: list[str] = []
    negative: list[str] = []
    target = positive
    for line in lines:
        if line.startswith("Negative prompt:"):
            target = negative
            line = line[len("Negative prompt:") :].strip()
        target.append(line)
    pairs: dict[str, str] = {}
    for key, value in _A1111_PAIR.findall(settings_line):
        value = value.strip()
        if value.startswith('"') and value.endswith('"'):
            with_escapes = value[1:-1]
            value = with_escapes.replace('\\"', '"').replace("\\\\", "\\")
        pairs[key.strip()] = value
    meta: dict[str, Any] = {
        "generation_mode": "txt2img",
        "app": "a1111",
        "positive_prompt": "\n".join(positive).strip(),
        "negative_prompt": "\n".join(negative).strip() or None,
        "steps": _int(pairs.get("Steps")),
        "scheduler": pairs.get("Sampler"),
        "cfg_scale": _float(pairs.get("CFG scale")),
        "seed": _int(pairs.get("Seed")),
    }
    size = re.fullmatch(r"(\d+)x(\d+)", pairs.get("Size", ""))
    if size:
        meta["width"], meta["height"] = int(size[1]), int(size[2])
    if "Model" in pairs or "Model hash" in pairs:
        meta["model"] = {
            k: v for k, v in (("name", pairs.get("Model")), ("hash", pairs.get("Model hash"))) if v
        }
    meta["a1111_parameters"] = {
        k: v for k, v in pairs.items() if k not in {"Steps", "Sampler", "CFG scale", "Seed", "Size"}
    }
    return {k: v for k, v in meta.items() if v is not None}


# -- InvokeAI 2.x -----------------------------------------------------------------------------
def _parse_sd_metadata(legacy: dict[str, Any]) -> dict[str, Any]:
    image = legacy.get("image") if isinstance(legacy.get("image"), dict) else {}
    prompt = image.get("prompt")
    if isinstance(prompt, list):
        prompt = " ".join(p.get("prompt", "") for p in prompt if isinstance(p, dict))
    positive, negative = _split_negative(prompt if isinstance(prompt, str) else "")
    meta = {
        "generation_mode": "txt2img",
        "app": "invokeai-2",
        "positive_prompt": positive,
        "negative_prompt": negative,
        "seed": _int(image.get("seed")),
        "steps": _int(image.get("steps")),
        "cfg_scale": _float(image.get("cfg_scale")),
        "scheduler": _str(image.get("sampler")),
        "width": _int(image.get("width")),
        "height": _int(image.get("height")),
    }
    weights = legacy.get("model_weights")
    if isinstance(weights, str):
        meta["model"] = {"name": weights, "hash": legacy.get("model_hash")}
    return {k: v for k, v in meta.items() if v is not None}


def _split_negative(prompt: str) -> tuple[str, str | None]:
    """InvokeAI 2.x wrote negatives inline as ``[bracketed]`` text."""
    negatives = re.findall(r"\[([^\]]*)\]", prompt)
    positive = re.sub(r"\s*\[[^\]]*\]", "", prompt).strip()
    return positive, (", ".join(negatives) or None)


_DREAM_FLAGS = {
    "-s": "steps",
    "-S": "seed",
    "-W": "width",
    "-H": "height",
    "-C": "cfg_scale",
    "-A": "scheduler",
}


def _parse_dream(text: str) -> dict[str, Any]:
    try:
        parts = shlex.split(text)
    except ValueError:
        parts = text.split()
    meta: dict[str, Any] = {"generation_mode": "txt2img", "app": "invokeai-2"}
    words: list[str] = []
    i = 0
    while i < len(parts):
        flag = parts[i]
        if flag in _DREAM_FLAGS and i + 1 < len(parts):
            meta[_DREAM_FLAGS[flag]] = parts[i + 1]
            i += 2
            continue
        if not flag.startswith("-"):
            words.append(flag)
        i += 1
    meta["positive_prompt"], meta["negative_prompt"] = _split_negative(" ".join(words))
    for key in ("steps", "seed", "width", "height"):
        if key in meta:
            meta[key] = _int(meta[key])
    if "cfg_scale" in meta:
        meta["cfg_scale"] = _float(meta["cfg_scale"])
    return {k: v for k, v in meta.items() if v is not None}
