"""A tiny random Depth Anything (DINOv2 backbone + DPT head) saved as a transformers folder
with its image processor, in the layout of the Hub repos InvokeAI uses (~0.2 MB)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["make_depth_anything"]


def make_depth_anything(dest: str | Path, seed: int = 0) -> Path:
    """Write the folder (config.json, model.safetensors, preprocessor_config.json)."""
    import torch
    from transformers import (
        DepthAnythingConfig,
        DepthAnythingForDepthEstimation,
        Dinov2Config,
        DPTImageProcessor,
    )

    torch.manual_seed(seed)
    backbone = Dinov2Config(
        hidden_size=16,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=32,
        patch_size=14,
        image_size=56,
        out_features=["stage1", "stage2", "stage3", "stage4"],
        reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=16,
        neck_hidden_sizes=[8, 8, 16, 16],
        fusion_hidden_size=8,
        head_hidden_size=8,
        depth_estimation_type="relative",
    )
    out = Path(dest)
    DepthAnythingForDepthEstimation(config).eval().save_pretrained(out)
    DPTImageProcessor(
        do_resize=True,
        size={"height": 56, "width": 56},
        keep_aspect_ratio=True,
        ensure_multiple_of=14,
        resample=3,
        do_normalize=True,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(out)
    return out
