"""Load FLUX.1's extra models: ControlNets (diffusers/InstantX folders and files), the Redux
projector (BFL's file) and its SigLIP image encoder (a transformers folder, with processor),
and XLabs' FLUX IP-Adapter (one file: an image projection and, per double block, the key and
value projections of the image-prompt attention; see :func:`xlabs_ip_adapter`).

XLabs ControlNet files (their own layout: an input-hint conv stack, double blocks only, in
BFL's key names) are converted to diffusers' ``FluxControlNetModel`` (the input-hint variant).
InstantX ControlNet files (InstantX trained in diffusers: one ``.safetensors`` holding
``FluxControlNetModel``'s own state dict, Union models with a ``controlnet_mode_embedder``)
need no renaming, only a config read from the tensor shapes (:func:`controlnet_config`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from invoke_nb.models.errors import ModelLoadError
from invoke_nb.models.records import ModelRecord

__all__ = [
    "controlnet_config",
    "diffusers_to_xlabs",
    "handles",
    "load_flux_extra",
    "xlabs_ip_adapter",
    "xlabs_to_diffusers",
]


def handles(record: ModelRecord) -> bool:
    """Whether this module loads ``record``."""
    return (
        record.base == "flux" and record.type in ("controlnet", "flux_redux", "ip_adapter")
    ) or (record.type == "siglip")


def load_flux_extra(record: ModelRecord, submodel: str | None, dtype: torch.dtype) -> Any:
    """The loaded model of ``record`` (a ControlNet has no submodels)."""
    path = Path(record.path).expanduser()
    where = f"model {record.name!r} ({record.key}): {path}"
    try:
        if record.type == "siglip":
            from transformers import SiglipImageProcessor, SiglipVisionModel

            model = SiglipVisionModel.from_pretrained(path, local_files_only=True, dtype=dtype)
            return model.eval(), SiglipImageProcessor.from_pretrained(path, local_files_only=True)
        if record.type == "flux_redux":
            return _redux(path, dtype)
        if record.type == "ip_adapter":
            return xlabs_ip_adapter(path, dtype)
    except Exception as exc:
        raise ModelLoadError(f"{where}: cannot load the {record.type} model: {exc}") from exc
    if submodel not in (None, "controlnet"):
        raise ModelLoadError(f"{where}: a ControlNet has no submodel {submodel!r}")
    if not path.is_dir():
        from invoke_nb.models.probe import read_safetensors_header

        shapes, _ = read_safetensors_header(path)
        xlabs = any(k.startswith("input_hint_block.") for k in shapes)
        if not xlabs and "controlnet_x_embedder.weight" not in shapes:
            raise ModelLoadError(
                f"{where}: not a FLUX ControlNet file in the XLabs or InstantX layout "
                "(no input_hint_block.* or controlnet_x_embedder.weight tensor)"
            )
        kind = "XLabs" if xlabs else "InstantX"
        try:
            return _xlabs(path, dtype) if xlabs else _instantx(path, dtype)
        except Exception as exc:
            raise ModelLoadError(f"{where}: cannot load the {kind} ControlNet: {exc}") from exc
    try:
        from diffusers import FluxControlNetModel

        return FluxControlNetModel.from_pretrained(
            path, local_files_only=True, torch_dtype=dtype
        ).eval()
    except Exception as exc:
        raise ModelLoadError(f"{where}: cannot load the ControlNet: {exc}") from exc


def _redux(path: Path, dtype: torch.dtype) -> Any:
    """BFL's Redux projector file as diffusers' ``ReduxImageEncoder`` (same tensor names)."""
    from diffusers.pipelines.flux.modeling_flux import ReduxImageEncoder
    from safetensors.torch import load_file

    file = path if path.is_file() else next(iter(sorted(path.glob("*.safetensors"))))
    sd = load_file(str(file))
    up, down = sd["redux_up.weight"], sd["redux_down.weight"]
    model = ReduxImageEncoder(redux_dim=up.shape[1], txt_in_features=down.shape[0])
    model.load_state_dict(sd)
    return model.to(dtype).eval()


# XLabs' input-hint conv stack (Sequential indices) -> diffusers' ControlNetConditioningEmbedding
_HINT = {0: "conv_in", 14: "conv_out", **{2 * (i + 1): f"blocks.{i}" for i in range(6)}}
_XLABS_ONLY = ("controlnet_blocks.", "input_hint_block.", "pos_embed_input.")


def xlabs_to_diffusers(sd: dict[str, Any]) -> dict[str, Any]:
    """An XLabs ControlNet state dict (BFL names + its own) in diffusers' names."""
    from invoke_nb.models.flux_keys import bfl_to_diffusers

    core = {k: v for k, v in sd.items() if not k.startswith(_XLABS_ONLY)}
    out = bfl_to_diffusers(core)
    for k, v in sd.items():
        if k.startswith("controlnet_blocks."):
            out[k] = v
        elif k.startswith("pos_embed_input."):
            out["controlnet_x_embedder." + k.split(".", 1)[1]] = v
        elif k.startswith("input_hint_block."):
            _, idx, param = k.split(".")
            out[f"input_hint_block.{_HINT[int(idx)]}.{param}"] = v
    return out


def diffusers_to_xlabs(sd: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`xlabs_to_diffusers` (used to write test models)."""
    from invoke_nb.models.flux_keys import diffusers_to_bfl

    back = {v: k for k, v in _HINT.items()}
    own = ("controlnet_blocks.", "input_hint_block.", "controlnet_x_embedder.")
    out = diffusers_to_bfl({k: v for k, v in sd.items() if not k.startswith(own)})
    for k, v in sd.items():
        if k.startswith("controlnet_blocks."):
            out[k] = v
        elif k.startswith("controlnet_x_embedder."):
            out["pos_embed_input." + k.split(".", 1)[1]] = v
        elif k.startswith("input_hint_block."):
            name, param = k.removeprefix("input_hint_block.").rsplit(".", 1)
            out[f"input_hint_block.{back[name]}.{param}"] = v
    return out


def controlnet_config(sd: dict[str, Any]) -> dict[str, Any]:
    """``FluxControlNetModel`` constructor arguments read from a diffusers-named state dict.

    Widths come from the embedders, the head size from the query norm, block counts from
    the block indices, the Union mode count from ``controlnet_mode_embedder``. The rotary
    axes are not stored: FLUX splits a head as 1/8, 7/16, 7/16 (16, 56, 56 at 128), the
    values InvokeAI hard-codes for real models.
    """

    def count(prefix: str) -> int:
        return len({k.split(".")[1] for k in sd if k.startswith(prefix)})

    hidden, in_channels = sd["x_embedder.weight"].shape
    head = sd["transformer_blocks.0.attn.norm_q.weight"].shape[0]
    mode = sd.get("controlnet_mode_embedder.weight")
    return dict(
        in_channels=in_channels,
        num_layers=count("transformer_blocks."),
        num_single_layers=count("single_transformer_blocks."),
        attention_head_dim=head,
        num_attention_heads=hidden // head,
        joint_attention_dim=sd["context_embedder.weight"].shape[1],
        pooled_projection_dim=sd["time_text_embed.text_embedder.linear_1.weight"].shape[1],
        guidance_embeds="time_text_embed.guidance_embedder.linear_1.weight" in sd,
        axes_dims_rope=(head // 8, head * 7 // 16, head * 7 // 16),
        num_mode=None if mode is None else mode.shape[0],
    )


def _instantx(path: Path, dtype: torch.dtype) -> Any:
    """Build diffusers' ``FluxControlNetModel`` from an InstantX single file (its names)."""
    from diffusers import FluxControlNetModel
    from safetensors.torch import load_file

    sd = load_file(str(path))
    model = FluxControlNetModel(patch_size=1, **controlnet_config(sd))
    model.load_state_dict(sd)
    return model.to(dtype).eval()


def _xlabs(path: Path, dtype: torch.dtype) -> Any:
    """Build diffusers' ``FluxControlNetModel`` (input-hint variant) from an XLabs file."""
    from diffusers import FluxControlNetModel
    from safetensors.torch import load_file

    sd = xlabs_to_diffusers(load_file(str(path)))
    model = FluxControlNetModel(
        patch_size=2,  # the input-hint output is packed in 2x2 patches
        conditioning_embedding_channels=sd["input_hint_block.conv_in.weight"].shape[0],
        **controlnet_config(sd),
    )
    model.load_state_dict(sd)
    return model.to(dtype).eval()


def xlabs_ip_adapter(path: Path, dtype: torch.dtype) -> Any:
    """XLabs' FLUX IP-Adapter file as a module the cache can size and move.

    ``image_proj`` turns a CLIP image embedding into ``tokens`` context vectors (a linear
    layer, then a LayerNorm); ``double_blocks[i].k`` / ``.v`` project them to the keys and
    values the image tokens of double block ``i`` attend to. Sizes come from the tensors.
    """
    import torch
    from safetensors.torch import load_file

    file = path if path.is_file() else path / "ip_adapter.safetensors"
    sd = load_file(str(file))
    n = 0
    while f"double_blocks.{n}.processor.ip_adapter_double_stream_k_proj.weight" in sd:
        n += 1
    hidden, context = sd["double_blocks.0.processor.ip_adapter_double_stream_k_proj.weight"].shape
    proj_out, clip_dim = sd["ip_adapter_proj_model.proj.weight"].shape

    class Block(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.k = torch.nn.Linear(context, hidden)
            self.v = torch.nn.Linear(context, hidden)

    class XLabsIPAdapter(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tokens = proj_out // context
            self.proj = torch.nn.Linear(clip_dim, proj_out)
            self.norm = torch.nn.LayerNorm(context)
            self.double_blocks = torch.nn.ModuleList(Block() for _ in range(n))

        def image_proj(self, embeds: torch.Tensor) -> torch.Tensor:
            return self.norm(
                self.proj(embeds).reshape(-1, self.tokens, self.norm.normalized_shape[0])
            )

    model = XLabsIPAdapter()
    ours = {}
    for key, value in sd.items():
        name = key.replace("ip_adapter_proj_model.", "").replace(".processor.", ".")
        name = name.replace("ip_adapter_double_stream_k_proj", "k")
        ours[name.replace("ip_adapter_double_stream_v_proj", "v")] = value
    model.load_state_dict(ours, strict=True)
    return model.to(dtype).eval()
