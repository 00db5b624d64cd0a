"""Every node type we share with InvokeAI 6.11.1 matches its schema, field by field.

The reference is ``tests/fixtures/invokeai/node-schemas-6.11.1.json``, dumped from a real
InvokeAI 6.11.1 (see the README beside it). A registered id must have the same input names,
types, required-ness, defaults and connection modes, and the same output type and output
fields. Ids InvokeAI has and we do not are listed (other issues add them), not failed.
Differences we keep on purpose are in :data:`KEPT`, each with its reason; an entry that no
longer matches a real difference fails too, so the list stays true.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import invoke_nb.nodes as nodes
from invoke_nb.nodes.base import field_extra
from shared_paths import shared_dir

_FIX = Path(__file__).parents[1] / "fixtures" / "invokeai"
sys.path.insert(0, str(_FIX))
from dump_node_schemas import type_str  # noqa: E402  (the dump's own type spelling)

SCHEMAS: dict[str, Any] = json.loads((_FIX / "node-schemas-6.11.1.json").read_text())["nodes"]
NODE_TYPES = shared_dir() / "fixtures" / "invokeai-6.11-node-types.json"

# Our spelling -> InvokeAI's, where the two name the same thing.
_ALIASES = {
    # InvokeAI's MetadataField is a dict root model; its metadata items are plain dicts here
    "dict": (
        "MetadataField",
        "ControlNetMetadataField",
        "IPAdapterMetadataField",
        "LoRAMetadataField",
        "T2IAdapterMetadataField",
    ),
}

# Choice values we offer beyond InvokeAI 6.11.1's (a choice field may accept more)
KEPT_CHOICES = {"er_sde": "InvokeAI 6.14's ER-SDE scheduler"}

# (node type, field or "version") -> why we differ from InvokeAI 6.11.1 on purpose
KEPT: dict[tuple[str, str], str] = {
    ("denoise_latents", "seeding"): "ours: InvokeAI's or diffusers' noise seeding",
    ("flux2_denoise", "seeding"): "ours: InvokeAI's or diffusers' noise seeding",
    ("denoise_latents", "hidiffusion"): "InvokeAI 6.14's HiDiffusion inputs (must stay off)",
    ("denoise_latents", "hidiffusion_raunet"): "InvokeAI 6.14's HiDiffusion inputs",
    ("denoise_latents", "hidiffusion_window_attn"): "InvokeAI 6.14's HiDiffusion inputs",
    ("denoise_latents", "hidiffusion_t1_ratio"): "InvokeAI 6.14's HiDiffusion inputs",
    ("denoise_latents", "hidiffusion_t2_ratio"): "InvokeAI 6.14's HiDiffusion inputs",
    ("denoise_latents", "version"): "InvokeAI 6.14's node version (HiDiffusion inputs)",
    ("noise", "noise_type"): "InvokeAI 6.14's architecture switch (SD only here)",
    ("noise", "version"): "InvokeAI 6.14's node version (noise_type)",
    ("core_metadata", "mistral_encoder"): "InvokeAI 6.14's FLUX.2 [dev] metadata",
    ("core_metadata", "ideogram4_caption"): "InvokeAI 6.14's metadata",
    ("core_metadata", "version"): "InvokeAI 6.14's node version",
    ("flux_denoise", "seeding"): "ours: InvokeAI's or diffusers' FLUX noise seeding",
    ("compel", "clip"): "connection only: a CLIP model is never typed in",
    ("image_collection", "images"): "InvokeAI 6.14's shape: images given beside a collection",
    ("image_collection", "collection"): "InvokeAI 6.14's shape: the collection is optional",
    ("image_collection", "version"): "InvokeAI 6.14's node version",
    ("img_pad_crop", "board"): "ours saves its image like every image node",
    ("img_pad_crop", "metadata"): "ours saves its image like every image node",
    ("sd3_denoise", "seeding"): "ours: InvokeAI's SD3 sampler or diffusers' SD3 pipelines",
    ("cogview4_denoise", "seeding"): "ours: InvokeAI's or CogView4Pipeline's noise and schedule",
    ("z_image_denoise", "seeding"): "ours: InvokeAI's or ZImagePipeline's noise and schedule",
    ("tiled_multi_diffusion_denoise_latents", "control"): "Any: as denoise_latents' control",
}


def _literal_superset(ours: str, theirs: str) -> bool:
    """Ours offers every choice InvokeAI's does, plus only :data:`KEPT_CHOICES`."""
    m1 = re.fullmatch(r"(.*)Literal(\[.*?\])(.*)", ours)
    m2 = re.fullmatch(r"(.*)Literal(\[.*?\])(.*)", theirs)
    if not (m1 and m2) or (m1[1], m1[3]) != (m2[1], m2[3]):
        return False
    mine, their = json.loads(m1[2]), json.loads(m2[2])
    extra = [v for v in mine if v not in their]
    return set(their) <= set(mine) and all(v in KEPT_CHOICES for v in extra)


# node types whose inputs are another's plus a few: they share that one's KEPT entries
KEPT_LIKE = {
    "denoise_latents_meta": "denoise_latents",
    "flux_denoise_meta": "flux_denoise",
    "z_image_denoise_meta": "z_image_denoise",
}


def _same_type(ours: str, theirs: str) -> bool:
    if ours == theirs or _literal_superset(ours, theirs):
        return True
    for mine, names in _ALIASES.items():
        for t in names:
            if re.sub(rf"(?<![\w]){re.escape(mine)}(?![\w])", t, ours) == theirs:
                return True
    return False


def _jsonable(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "value") and type(value).__module__ != "builtins":
        return value.value  # enums
    return value


def differences(type_id: str) -> list[tuple[str, str]]:
    """(field or "version"/"output", what differs) for one node type."""
    cls = nodes.get_node_class(type_id)
    ref = SCHEMAS[type_id]
    out: list[tuple[str, str]] = []
    ours = cls.input_fields()
    for name in sorted(set(ref["inputs"]) | set(ours)):
        if name not in ours:
            out.append((name, "input missing here"))
            continue
        if name not in ref["inputs"]:
            out.append((name, "input InvokeAI does not have"))
            continue
        r, info = ref["inputs"][name], ours[name]
        t = type_str(info.annotation)
        theirs = r["type"]
        if r["required"] and theirs == f"Optional[{t}]":
            # a subclass of a decorated InvokeAI node (``denoise_latents_meta``) sees its
            # parent's made-optional annotation; a required input is what counts
            theirs = t
        if not _same_type(t, theirs):
            out.append((name, f"type {t} != {r['type']}"))
        if info.is_required() != r["required"]:
            out.append((name, f"required {info.is_required()} != {r['required']}"))
        elif not r["required"]:
            d = _jsonable(info.get_default(call_default_factory=True))
            if d != r.get("default"):
                out.append((name, f"default {d!r} != {r.get('default')!r}"))
        extra = field_extra(info)
        mode = extra.get("input", "any")
        if mode != r["input"]:
            out.append((name, f"connection mode {mode} != {r['input']}"))
        for hint in ("ui_model_base", "ui_model_type", "ui_model_variant", "ui_model_format"):
            # which models the field accepts: the editor's model picker reads these hints
            if sorted(extra.get(hint) or []) != sorted(r.get(hint) or []):
                out.append((name, f"{hint} {extra.get(hint)} != {r.get(hint)}"))
    if cls.output_class.output_type != ref["output_type"]:
        out.append(
            ("output", f"output type {cls.output_class.output_type} != {ref['output_type']}")
        )
    produced = cls.output_class.model_fields
    for name in sorted(set(ref["outputs"]) | set(produced)):
        if name not in produced or name not in ref["outputs"]:
            out.append(("output", f"output field {name!r} only on one side"))
        elif not _same_type(type_str(produced[name].annotation), ref["outputs"][name]["type"]):
            out.append(("output", f"output {name} type differs"))
    if cls.version != ref["version"]:
        out.append(("version", f"version {cls.version} != {ref['version']}"))
    return out


def test_registered_node_types_match_invokeai_6_11_1() -> None:
    ids = json.loads(NODE_TYPES.read_text())
    registered = nodes.node_types()
    shared = sorted(set(ids) & set(registered))
    missing = sorted(set(ids) - set(registered))
    print(f"\nInvokeAI 6.11.1 node types registered here: {len(shared)} of {len(ids)}")
    print(f"missing ({len(missing)}): {', '.join(missing)}")
    failures = []
    kept_seen = set()
    for type_id in sorted(set(SCHEMAS) & set(registered)):
        for field, what in differences(type_id):
            kept = next(
                (k for k in ((type_id, field), (KEPT_LIKE.get(type_id), field)) if k in KEPT), None
            )
            if kept is not None:
                kept_seen.add(kept)
            else:
                failures.append(f"{type_id}.{field}: {what}")
    assert not failures, "differences from InvokeAI 6.11.1:\n" + "\n".join(failures)
    stale = sorted(set(KEPT) - kept_seen)
    assert not stale, f"KEPT lists differences that no longer exist: {stale}"


def test_schema_dump_covers_the_shared_id_list() -> None:
    ids = json.loads(NODE_TYPES.read_text())
    assert set(ids) <= set(SCHEMAS)
    # a real dump: InvokeAI's noise node as InvokeAI 6.11.1 declares it
    noise = SCHEMAS["noise"]["inputs"]["seed"]
    assert (noise["type"], noise["default"], noise["ge"], noise["le"]) == ("int", 0, 0, 2**32 - 1)


def test_a_real_difference_is_caught() -> None:
    import warnings

    from invoke_nb.nodes.base import InputField, Node, node
    from invoke_nb.nodes.primitives import IntegerOutput

    original = nodes.get_node_class("integer")
    warnings.simplefilter("ignore")  # re-registering "integer" warns, on purpose
    try:

        @node("integer", version="1.0.1")
        class Wrong(Node):
            value: float = InputField(default=1.0)

            def invoke(self, ctx: Any) -> IntegerOutput:
                return IntegerOutput(value=int(self.value))

        found = dict(differences("integer"))
        assert "type float != int" in found["value"] or "default" in found["value"]
    finally:
        node(  # every attribute back as it was (later tests read this node's schema)
            "integer",
            title=original.title,
            category=original.category,
            tags=original.tags,
            version=original.version,
            deterministic=original.deterministic,
        )(original)
        warnings.resetwarnings()
