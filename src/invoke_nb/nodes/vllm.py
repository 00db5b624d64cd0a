"""Vision-language nodes: LLaVA-OneVision answers a prompt about up to three images.

The model comes through the model manager (type ``llava_onevision``, loaded with an
image-only processor, see :mod:`invoke_nb.models.load_llava`). Generation is greedy, 400 new
tokens at most, as InvokeAI runs it; the answer is the generated text alone (we decode the
new tokens instead of splitting the echoed conversation, so a prompt that itself contains
"assistant" cannot cut the answer short).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, field_validator

from invoke_nb.nodes.base import InputField, Node, UIHint, node
from invoke_nb.nodes.primitives import StringOutput
from invoke_nb.nodes.types import ImageField, ModelIdentifierField

if TYPE_CHECKING:
    from invoke_nb.nodes.context import Context

__all__ = ["MAX_NEW_TOKENS", "LlavaOnevisionVllmNode"]

MAX_NEW_TOKENS = 400


@node(
    "llava_onevision_vllm",
    title="LLaVA OneVision VLLM",
    category="vllm",
    tags=["vllm"],
    version="1.0.0",
)
class LlavaOnevisionVllmNode(Node):
    """Run a LLaVA OneVision VLLM model."""

    images: Annotated[list[ImageField], Field(max_length=3)] | ImageField | None = InputField(
        default=None, description="Input image."
    )
    prompt: str = InputField(default="", description="Input text prompt.", ui_hint=UIHint.TEXTAREA)
    vllm_model: ModelIdentifierField = InputField(
        title="LLaVA Model Type",
        description="The VLLM model to use",
        ui_hint=UIHint.MODEL,
        ui_model_type=["llava_onevision"],
    )

    @field_validator("images", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return v if v is None or isinstance(v, list) else [v]

    def invoke(self, ctx: Context) -> StringOutput:
        import torch

        from invoke_nb.nodes.diffusion.devices import execution_device

        images = [ctx.images.get_pil(i, mode="RGB") for i in self.images or []]
        content: list[dict[str, str]] = [{"type": "text", "text": self.prompt}]
        content += [{"type": "image"} for _ in images]
        with ctx.models.load(self.vllm_model) as (model, processor):
            text = processor.apply_chat_template(
                [{"role": "user", "content": content}], add_generation_prompt=True
            )
            inputs = processor(images=images or None, text=text, return_tensors="pt")
            inputs = inputs.to(device=execution_device(ctx), dtype=model.dtype)
            with torch.no_grad():
                out = model.generate(**inputs, max_new_tokens=MAX_NEW_TOKENS, do_sample=False)
            answer = processor.decode(
                out[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True
            )
        return StringOutput(value=answer.strip())
