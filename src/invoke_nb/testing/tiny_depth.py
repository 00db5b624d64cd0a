"""Tiny random preprocessor networks saved as transformers folders with their processors, in
the layout of the Hub repos InvokeAI uses: Depth Anything (DINOv2 backbone + DPT head),
Segment Anything and Grounding DINO (well under 1 MB each)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["make_depth_anything", "make_grounding_dino", "make_sam"]


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


def make_sam(dest: str | Path, seed: int = 0) -> Path:
    """A tiny random Segment Anything (SamModel + SamProcessor, 64 px input) folder."""
    import torch
    from transformers import (
        SamConfig,
        SamImageProcessor,
        SamMaskDecoderConfig,
        SamModel,
        SamProcessor,
        SamPromptEncoderConfig,
        SamVisionConfig,
    )

    torch.manual_seed(seed)
    config = SamConfig(
        vision_config=SamVisionConfig(
            hidden_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            mlp_dim=32,
            output_channels=16,
            image_size=64,
            patch_size=16,
            global_attn_indexes=[1],
            window_size=2,
            num_pos_feats=8,
        ),
        prompt_encoder_config=SamPromptEncoderConfig(
            hidden_size=16, image_size=64, patch_size=16, mask_input_channels=4
        ),
        mask_decoder_config=SamMaskDecoderConfig(
            hidden_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            mlp_dim=32,
            iou_head_hidden_dim=16,
        ),
    )
    out = Path(dest)
    SamModel(config).eval().save_pretrained(out)
    processor = SamImageProcessor(size={"longest_edge": 64}, pad_size={"height": 64, "width": 64})
    SamProcessor(image_processor=processor).save_pretrained(out)
    return out


def make_grounding_dino(dest: str | Path, seed: int = 0) -> Path:
    """A tiny random Grounding DINO (Swin + BERT, 64 px) folder with its processor and a
    hand-written 14-word WordPiece vocabulary."""
    import torch
    from transformers import (
        BertConfig,
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SwinConfig,
    )

    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "a", "cat", "dog", "the"]
    words += ["on", "hill", "red", "car"]
    (out / "vocab.txt").write_text("\n".join(words) + "\n")
    torch.manual_seed(seed)
    config = GroundingDinoConfig(
        backbone_config=SwinConfig(
            image_size=64,
            patch_size=4,
            embed_dim=8,
            depths=[1, 1, 1, 1],
            num_heads=[1, 1, 1, 1],
            window_size=2,
            out_features=["stage2", "stage3", "stage4"],
        ),
        text_config=BertConfig(
            vocab_size=len(words),
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=64,
        ),
        d_model=32,  # GroupNorm(32, d_model) in the model
        encoder_layers=1,
        decoder_layers=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        num_queries=10,
        num_feature_levels=3,
        encoder_n_points=2,
        decoder_n_points=2,
        max_text_len=16,
        use_timm_backbone=False,
        backbone=None,
        use_pretrained_backbone=False,
    )
    GroundingDinoForObjectDetection(config).eval().save_pretrained(out)
    tokenizer = BertTokenizer(vocab_file=str(out / "vocab.txt"), do_lower_case=True)
    images = GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 64})
    GroundingDinoProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(out)
    return out
