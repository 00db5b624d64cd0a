"""``segment_anything``: masks from Segment Anything prompted by boxes and/or point lists,
merged into one mask, as InvokeAI 6.11.1's node makes them (SAM through transformers'
SamModel; weights install on first use from the repos InvokeAI uses). Each object's mask
can be refined to its largest outer polygon (smooth edge, no holes, no stray pieces)."""

from __future__ import annotations

import enum
from itertools import zip_longest
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator

from invoke_nb.nodes.base import InputField, Node, node
from invoke_nb.nodes.preprocessors.weights import preprocessor_model
from invoke_nb.nodes.primitives import MaskOutput
from invoke_nb.nodes.types import ImageField, TensorField
from invoke_nb.nodes.utilities import BoundingBoxField

if TYPE_CHECKING:
    import torch

    from invoke_nb.nodes.context import Context

__all__ = ["SEGMENT_ANYTHING_REPOS", "SAMPoint", "SAMPointLabel", "SAMPointsField"]

SEGMENT_ANYTHING_REPOS = {
    "segment-anything-base": "facebook/sam-vit-base",
    "segment-anything-large": "facebook/sam-vit-large",
    "segment-anything-huge": "facebook/sam-vit-huge",
    "segment-anything-2-tiny": "facebook/sam2.1-hiera-tiny",
    "segment-anything-2-small": "facebook/sam2.1-hiera-small",
    "segment-anything-2-base": "facebook/sam2.1-hiera-base-plus",
    "segment-anything-2-large": "facebook/sam2.1-hiera-large",
}


class SAMPointLabel(enum.Enum):
    negative = -1
    neutral = 0
    positive = 1


class SAMPoint(BaseModel):
    x: int = Field(description="The x-coordinate of the point")
    y: int = Field(description="The y-coordinate of the point")
    label: SAMPointLabel = Field(description="The label of the point")


class SAMPointsField(BaseModel):
    points: list[SAMPoint] = Field(description="The points of the object", min_length=1)


def _refine(mask: np.ndarray) -> np.ndarray:
    """The mask redrawn as its largest outer contour, filled (an empty mask stays empty)."""
    import cv2

    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    out = np.zeros(mask.shape, dtype=np.uint8)
    if contours:
        cv2.fillPoly(out, [max(contours, key=cv2.contourArea).reshape(-1, 2)], color=(1,))
    return out.astype(bool)


def sam_masks(
    model: Any, processor: Any, image: Any, boxes: list[list[float]], points: list[Any]
) -> torch.Tensor:
    """One bool mask (H, W) per object (the best of SAM's three per object: any of them
    set, as InvokeAI merges them)."""
    import torch

    labels = [[p[2] for p in obj] for obj in points] or None
    coords = [[p[:2] for p in obj] for obj in points] or None
    inputs = processor(
        images=image,
        input_boxes=[boxes] if boxes else None,
        input_points=coords,
        input_labels=labels,
        return_tensors="pt",
    )
    param = next(model.parameters())
    inputs = {k: (v.to(param.device) if hasattr(v, "to") else v) for k, v in inputs.items()}
    with torch.no_grad():
        out = model(**inputs)
    masks = processor.post_process_masks(
        masks=out.pred_masks.cpu(),
        original_sizes=inputs["original_sizes"].cpu(),
        reshaped_input_sizes=inputs["reshaped_input_sizes"].cpu(),
    )[0]
    return masks.max(dim=1).values


@node(
    "segment_anything",
    title="Segment Anything",
    category="segmentation",
    tags=["prompt", "segmentation", "sam", "sam2"],
    version="1.3.0",
)
class SegmentAnythingNode(Node):
    """Runs a Segment Anything model on boxes and/or point lists (one object each)."""

    model: Literal[
        "segment-anything-base",
        "segment-anything-large",
        "segment-anything-huge",
        "segment-anything-2-tiny",
        "segment-anything-2-small",
        "segment-anything-2-base",
        "segment-anything-2-large",
    ] = InputField(description="The Segment Anything model to use (SAM or SAM2).")
    image: ImageField = InputField(description="The image to segment.")
    bounding_boxes: list[BoundingBoxField] | None = InputField(
        default=None, description="The bounding boxes to prompt the model with."
    )
    point_lists: list[SAMPointsField] | None = InputField(
        default=None, description="The list of point lists to prompt the model with."
    )
    apply_polygon_refinement: bool = InputField(
        default=True, description="Refine each mask to one closed polygon before merging."
    )
    mask_filter: Literal["all", "largest", "highest_box_score"] = InputField(
        default="all", description="The filtering to apply to the masks before merging them."
    )

    @model_validator(mode="after")
    def _same_count(self) -> SegmentAnythingNode:
        pts, boxes = self.point_lists, self.bounding_boxes
        if pts and boxes and len(pts) != len(boxes):
            raise ValueError("point_lists and bounding_boxes must have the same length")
        return self

    def invoke(self, ctx: Context) -> MaskOutput:
        import torch

        image = ctx.images.get_pil(self.image, mode="RGB")
        boxes = self.bounding_boxes or []
        points = self.point_lists or []
        if not boxes and not points:
            merged = torch.zeros((image.height, image.width), dtype=torch.bool)
        else:
            if "sam2" in SEGMENT_ANYTHING_REPOS[self.model]:
                raise ValueError(
                    f"node {self.id!r}: SAM2 models ({self.model}) are not supported yet; "
                    "use a segment-anything-base/large/huge model"
                )
            masks = self._segment(ctx, image, boxes, points)
            masks = self._filter(masks, boxes)
            merged = torch.stack(masks).amax(dim=0)
        mask = merged[None]
        name = ctx.tensors.save(mask)
        return MaskOutput(
            mask=TensorField(tensor_name=name), width=mask.shape[2], height=mask.shape[1]
        )

    def _segment(self, ctx: Context, image: Any, boxes: list, points: list) -> list[torch.Tensor]:
        import torch

        ident = preprocessor_model(
            ctx, self.id, "segment_anything", SEGMENT_ANYTHING_REPOS[self.model]
        )
        box_lists, point_lists = [], []
        for box, pts in zip_longest(boxes, points):
            if box is not None:
                box_lists.append([box.x_min, box.y_min, box.x_max, box.y_max])
            if pts is not None:
                point_lists.append([[p.x, p.y, p.label.value] for p in pts.points])
        with ctx.models.load(ident) as (model, processor):
            masks = sam_masks(model, processor, image, box_lists, point_lists)
        out = list(masks.unbind(0))
        if self.apply_polygon_refinement:
            out = [torch.from_numpy(_refine(m.numpy())) for m in out]
        return out

    def _filter(self, masks: list[torch.Tensor], boxes: list) -> list[torch.Tensor]:
        if self.mask_filter == "largest":
            return [max(masks, key=lambda m: float(m.sum()))]
        if self.mask_filter == "highest_box_score":
            if not boxes or len(boxes) != len(masks):
                raise ValueError(
                    f"node {self.id!r}: mask_filter 'highest_box_score' needs one bounding box "
                    "per mask"
                )
            best = max(range(len(boxes)), key=lambda i: boxes[i].score or -1.0)
            return [masks[best]]
        return masks
