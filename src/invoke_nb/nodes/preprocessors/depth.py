"""``depth_anything_depth_estimation``: a relative depth map from Depth Anything (v1 small,
base, large or v2 small), through transformers' depth-estimation pipeline as InvokeAI
runs it. Weights install on first use from the Hugging Face repos InvokeAI uses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from invoke_nb.nodes.base import InputField, node
from invoke_nb.nodes.preprocessors.weights import preprocessor_model
from invoke_nb.nodes.primitives import ImageOutput, ImageSavingNode
from invoke_nb.nodes.types import ImageField

if TYPE_CHECKING:
    from invoke_nb.nodes.context import Context

__all__ = ["DEPTH_ANYTHING_REPOS"]

DEPTH_ANYTHING_REPOS = {
    "large": "LiheYoung/depth-anything-large-hf",
    "base": "LiheYoung/depth-anything-base-hf",
    "small": "LiheYoung/depth-anything-small-hf",
    "small_v2": "depth-anything/Depth-Anything-V2-Small-hf",
}


@node(
    "depth_anything_depth_estimation",
    title="Depth Anything Depth Estimation",
    category="controlnet",
    tags=["controlnet", "depth", "depth anything"],
    version="1.0.0",
)
class DepthAnythingDepthEstimationNode(ImageSavingNode):
    """A depth map (near is bright) from a Depth Anything model."""

    image: ImageField = InputField(description="The image to process")
    model_size: Literal["large", "base", "small", "small_v2"] = InputField(
        default="small_v2", description="The size of the depth model to use"
    )

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image, mode="RGB")
        repo = DEPTH_ANYTHING_REPOS[self.model_size]
        ident = preprocessor_model(ctx, self.id, "depth_anything_depth_estimation", repo)
        with ctx.models.load(ident) as estimator:
            depth = estimator(image)["depth"]
        return self.save_image(ctx, depth)
