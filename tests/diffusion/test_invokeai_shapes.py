"""Node ids, versions and field names match InvokeAI 6.14.2 and its shipped workflow files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from invoke_nb.nodes import get_node_class
from shared_paths import INVOKEAI_WORKFLOWS

WORKFLOWS = INVOKEAI_WORKFLOWS
FILES = [
    "Text to Image - SD1.5.json",
    "Text to Image - SDXL.json",
    "Text to Image with LoRA.json",
    "Prompt from File.json",
]

# type id -> (version, output type, output field names), read from invokeai==6.14.2.
INVOKEAI = {
    "main_model_loader": ("1.0.4", "model_loader_output", {"unet", "clip", "vae"}),
    "sdxl_model_loader": ("1.0.4", "sdxl_model_loader_output", {"unet", "clip", "clip2", "vae"}),
    "sdxl_refiner_model_loader": (
        "1.0.4",
        "sdxl_refiner_model_loader_output",
        {"unet", "clip2", "vae"},
    ),
    "vae_loader": ("1.0.4", "vae_output", {"vae"}),
    "lora_loader": ("1.0.4", "lora_loader_output", {"unet", "clip"}),
    "sdxl_lora_loader": ("1.0.5", "sdxl_lora_loader_output", {"unet", "clip", "clip2"}),
    "seamless": ("1.0.2", "seamless_output", {"unet", "vae"}),
    "clip_skip": ("1.1.1", "clip_skip_output", {"clip"}),
    "compel": ("1.2.1", "conditioning_output", {"conditioning"}),
    "sdxl_compel_prompt": ("1.2.1", "conditioning_output", {"conditioning"}),
    "sdxl_refiner_compel_prompt": ("1.1.2", "conditioning_output", {"conditioning"}),
    "noise": ("1.1.0", "noise_output", {"noise", "width", "height"}),
    "denoise_latents": ("1.6.0", "latents_output", {"latents", "width", "height"}),
    "l2i": ("1.3.2", "image_output", {"image", "width", "height"}),
    "i2l": ("1.2.0", "latents_output", {"latents", "width", "height"}),
    "lscale": ("1.0.2", "latents_output", {"latents", "width", "height"}),
    "lblend": ("1.1.0", "latents_output", {"latents", "width", "height"}),
    "create_denoise_mask": ("1.0.2", "denoise_mask_output", {"denoise_mask"}),
    "create_gradient_mask": (
        "1.3.0",
        "gradient_mask_output",
        {"denoise_mask", "expanded_mask_area"},
    ),
    "core_metadata": ("2.2.0", "metadata_output", {"metadata"}),
    "prompt_from_file": ("1.0.2", "string_collection_output", {"collection"}),
}


@pytest.mark.parametrize("type_id", sorted(INVOKEAI))
def test_version_and_outputs(type_id: str) -> None:
    version, out_type, out_fields = INVOKEAI[type_id]
    cls = get_node_class(type_id)
    assert cls.version == version
    assert cls.output_class.output_type == out_type
    assert set(cls.output_class.model_fields) == out_fields


@pytest.mark.parametrize("name", FILES)
def test_workflow_fields_exist_on_our_nodes(name: str) -> None:
    path = WORKFLOWS / name
    if not path.exists():
        pytest.skip(f"fixture {path} not present")
    wf = json.loads(path.read_text(encoding="utf-8"))
    types = {n["id"]: n["data"]["type"] for n in wf["nodes"] if n.get("type") == "invocation"}
    ours = {i: t for i, t in types.items() if t in INVOKEAI}
    assert ours, "the workflow uses diffusion nodes"
    for n in wf["nodes"]:
        t = types.get(n["id"])
        if t in INVOKEAI:
            fields = set(get_node_class(t).model_fields)
            assert set(n["data"]["inputs"]) <= fields, (t, set(n["data"]["inputs"]) - fields)
    for e in wf["edges"]:
        if e.get("type") == "collapsed":  # editor-only edge between collapsed nodes
            continue
        if e["source"] in ours:
            out_fields = get_node_class(ours[e["source"]]).output_class.model_fields
            assert e["sourceHandle"] in out_fields, (ours[e["source"]], e["sourceHandle"])
        if e["target"] in ours:
            assert e["targetHandle"] in get_node_class(ours[e["target"]]).model_fields, (
                ours[e["target"]],
                e["targetHandle"],
            )


@pytest.mark.parametrize("name", FILES)
def test_invokeai_workflow_runs_on_tiny_models(
    name: str, models, sd1, sdxl, tiny_sdxl: Path, tmp_path: Path
) -> None:
    """Load InvokeAI's own workflow file, choose our models, shrink it, run it."""
    import invoke_nb as inb
    from invoke_nb.nodes.types import identifier

    path = WORKFLOWS / name
    if not path.exists():
        pytest.skip(f"fixture {path} not present")
    lora = identifier(models.store.list(name="tiny-lora")[0])
    vaes = models.store.list(name="tiny-sdxl-vae")
    vae = identifier(
        vaes[0] if vaes else models.register(tiny_sdxl / "vae", name="tiny-sdxl-vae", type="vae")
    )
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a cat\na dog\n", encoding="utf-8")
    g = inb.load_workflow(path)
    values = {
        "main_model_loader": {"model": sd1},
        "sdxl_model_loader": {"model": sdxl},
        "vae_loader": {"vae_model": vae},
        "lora_loader": {"lora": lora},
        "noise": {"width": 64, "height": 64},
        "denoise_latents": {"steps": 2},
        "prompt_from_file": {"file_path": str(prompts), "max_prompts": 2},
    }
    for nid in list(g.nodes):
        g.set(nid, **values.get(g.node(nid).type, {}))
    r = inb.Runner(services=inb.Services(models=models)).run(g)
    l2i = [nid for nid in g.nodes if g.node(nid).type == "l2i"]
    outs = r.outputs[l2i[0]]
    outs = outs if isinstance(outs, list) else [outs]
    assert len(outs) == (2 if name == "Prompt from File.json" else 1)
    assert all((o.width, o.height) == (64, 64) for o in outs)
