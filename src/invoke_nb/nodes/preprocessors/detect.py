"""``grounding_dino``: boxes around what a text prompt names, with Grounding DINO through
transformers' zero-shot object detection pipeline, as InvokeAI 6.11.1 runs it (weights on
first use from the repos InvokeAI uses). The boxes feed ``segment_anything``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from invoke_nb.nodes.base import InputField, Node, Output, OutputField, node, output
from invoke_nb.nodes.preprocessors.weights import preprocessor_model
from invoke_nb.nodes.types import ImageField
from invoke_nb.nodes.utilities import BoundingBoxField

if TYPE_CHECKING:
    from invoke_nb.nodes.context import Context

__all__ = ["GROUNDING_DINO_REPOS"]

GROUNDING_DINO_REPOS = {
    "grounding-dino-tiny": "IDEA-Research/grounding-dino-tiny",
    "grounding-dino-base": "IDEA-Research/grounding-dino-base",
}


@output("bounding_box_collection_output")
class BoundingBoxCollectionOutput(Output):
    """A list of boxes."""

    collection: list[BoundingBoxField] = OutputField(description="The output bounding boxes.")


@node(
    "grounding_dino",
    title="Grounding DINO (Text Prompt Object Detection)",
    category="image",
    tags=["prompt", "object detection"],
    version="1.0.0",
)
class GroundingDinoNode(Node):
    """Boxes (with scores) around the objects the prompt describes."""

    model: Literal["grounding-dino-tiny", "grounding-dino-base"] = InputField(
        description="The Grounding DINO model to use."
    )
    prompt: str = InputField(description="The prompt describing the object to segment.")
    image: ImageField = InputField(description="The image to segment.")
    detection_threshold: float = InputField(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="Boxes scoring above this threshold are returned.",
    )

    def invoke(self, ctx: Context) -> BoundingBoxCollectionOutput:
        image = ctx.images.get_pil(self.image, mode="RGB")
        label = self.prompt if self.prompt.endswith(".") else self.prompt + "."
        repo = GROUNDING_DINO_REPOS[self.model]
        ident = preprocessor_model(ctx, self.id, "grounding_dino", repo)
        with ctx.models.load(ident) as detector:
            found = detector(
                image=image, candidate_labels=[label], threshold=self.detection_threshold
            )
        boxes = [
            BoundingBoxField(
                x_min=d["box"]["xmin"],
                x_max=d["box"]["xmax"],
                y_min=d["box"]["ymin"],
                y_max=d["box"]["ymax"],
                score=min(1.0, max(0.0, float(d["score"]))),
            )
            for d in found
        ]
        return BoundingBoxCollectionOutput(collection=boxes)
