"""Load a LLaVA-OneVision vision-language model and an image-only processor for it.

transformers' ``LlavaOnevisionProcessor`` insists on a video processor, and its video
processors need torchvision, which cannot be installed beside a CPU build of torch from our
registries. Our nodes pass images only, so :class:`ImageOnlyLlavaProcessor` keeps
transformers' own image-token expansion (the count of ``<image>`` tokens must equal the
features the vision tower produces) and leaves the video side out. The image processor is
transformers' PIL implementation, which needs no torchvision either.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["image_only_processor", "load_llava_onevision"]


def _processor_class() -> type:
    from transformers import LlavaOnevisionProcessor
    from transformers.processing_utils import ProcessorMixin

    class ImageOnlyLlavaProcessor(LlavaOnevisionProcessor):
        """``LlavaOnevisionProcessor`` for images and text only (no video processor)."""

        def __init__(
            self,
            image_processor: Any = None,
            tokenizer: Any = None,
            num_image_tokens: int | None = None,
            vision_feature_select_strategy: str | None = None,
            chat_template: str | None = None,
            vision_aspect_ratio: str = "anyres_max_9",
        ) -> None:
            self.num_image_tokens = num_image_tokens
            self.vision_feature_select_strategy = vision_feature_select_strategy
            self.image_token = getattr(tokenizer, "image_token", None) or "<image>"
            self.video_token = getattr(tokenizer, "video_token", None) or "<video>"
            self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
            self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
            self.vision_aspect_ratio = vision_aspect_ratio
            ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

    return ImageOnlyLlavaProcessor


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def image_only_processor(folder: str | Path) -> Any:
    """The processor of a LLaVA-OneVision folder as the hub lays it out (tokenizer files,
    ``preprocessor_config.json`` or an ``image_processor`` entry in ``processor_config.json``,
    the chat template in ``chat_template.jinja``/``.json`` or the tokenizer config)."""
    from transformers import AutoTokenizer, LlavaOnevisionImageProcessorPil

    folder = Path(folder)
    settings = _json(folder / "processor_config.json")
    image_cfg = settings.get("image_processor") or _json(folder / "preprocessor_config.json")
    image_cfg = {k: v for k, v in image_cfg.items() if k not in ("image_processor_type",)}
    image_processor = LlavaOnevisionImageProcessorPil(**image_cfg)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    template = None
    if (folder / "chat_template.jinja").is_file():
        template = (folder / "chat_template.jinja").read_text(encoding="utf-8")
    elif (folder / "chat_template.json").is_file():
        template = _json(folder / "chat_template.json").get("chat_template")
    template = template or getattr(tokenizer, "chat_template", None)
    if not template:
        raise ValueError(f"{folder}: no chat template (chat_template.jinja/.json or tokenizer)")
    return _processor_class()(
        image_processor=image_processor,
        tokenizer=tokenizer,
        num_image_tokens=settings.get("num_image_tokens"),
        vision_feature_select_strategy=settings.get("vision_feature_select_strategy"),
        chat_template=template,
        vision_aspect_ratio=settings.get("vision_aspect_ratio", "anyres_max_9"),
    )


def load_llava_onevision(folder: str | Path, dtype: Any) -> tuple[Any, Any]:
    """(model, processor) of a LLaVA-OneVision folder, from local files only."""
    from transformers import LlavaOnevisionForConditionalGeneration

    model = LlavaOnevisionForConditionalGeneration.from_pretrained(
        folder, local_files_only=True, dtype=dtype
    ).eval()
    return model, image_only_processor(folder)
