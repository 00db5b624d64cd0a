"""InvokeAI 6.11.1's face tools: ``face_identifier`` (numbers each face), ``face_off`` (crops
one face with its mask, for a face detailer) and ``face_mask_detection`` (masks faces).

They share one detection pass with InvokeAI's rules, kept because workflows depend on the
numbers and boxes they produce: the 468-point mesh (no iris points), a search over square
chunks of a non-square image when the whole image shows no face (or when asked), merging
of detections whose centres fall inside an earlier face's ellipse, numbering left to right
(then top to bottom), and a square crop 128 px larger than the mesh, a multiple of 8,
kept inside the image. No face is not an error: the image passes through, the mask white.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps
from pydantic import field_validator

from invoke_nb.nodes.base import Input, InputField, Node, OutputField, node, output
from invoke_nb.nodes.preprocessors.faces import find_faces
from invoke_nb.nodes.primitives import ImageOutput, ImageSavingNode
from invoke_nb.nodes.types import ImageField

if TYPE_CHECKING:
    from invoke_nb.nodes.context import Context

__all__ = ["Face", "crop_face", "detect_faces"]

MESH_POINTS = 468  # the face mesh without the iris refinement, as the face tools use it
OFFSET_SCALE = 0.2  # x_offset / y_offset grow the mask by this share of the mesh per unit
CROP_MARGIN = 128  # pixels added to the mesh size for the crop (also its smallest side)
LABEL_SIZE, LABEL_STROKE = 32, 4
_FACE_IDS = re.compile(r"^\d*(,\d+)*$")


@dataclass
class Face:
    """One detected face: the chunk it was found in, its mask at full-image offsets (white
    outside the mesh hull), its centre in image pixels and the mesh's size."""

    image: Image.Image
    mask: Image.Image
    x_center: float
    y_center: float
    mesh_width: int
    mesh_height: int
    chunk_x: int
    chunk_y: int


def _white(w: int, h: int) -> Image.Image:
    return Image.new("L", (w, h), 255)


def _black(w: int, h: int) -> Image.Image:
    return Image.new("L", (w, h), 0)


def _faces_in(
    ctx: Context,
    node: Node,
    chunk: Image.Image,
    chunk_x: int,
    chunk_y: int,
    confidence: float,
    x_offset: float,
    y_offset: float,
    draw_mesh: bool,
) -> list[Face]:
    import cv2

    rgb = np.asarray(chunk.convert("RGB"), dtype=np.uint8)
    h, w = rgb.shape[:2]
    found = find_faces(ctx, node.id, node.type_id, rgb, 999, confidence, confidence)
    faces = []
    for marks in found:
        marks = marks[:MESH_POINTS]
        lo, hi = marks.min(axis=0), marks.max(axis=0)
        points = marks * (w, h)
        cx, cy = points.mean(axis=0)
        mask = _white(*chunk.size)
        if draw_mesh:
            grown = points + OFFSET_SCALE * np.array([x_offset, y_offset]) * (points - (cx, cy))
            hull = cv2.convexHull(grown.astype(np.int32))
            drawn = np.full((h, w), 255, np.uint8)
            cv2.fillConvexPoly(drawn, hull, 0)
            mask = _white(w + chunk_x, h + chunk_y)
            mask.paste(Image.fromarray(drawn, "L"), (chunk_x, chunk_y))
        faces.append(
            Face(
                image=chunk,
                mask=mask,
                x_center=float(cx) + chunk_x,
                y_center=float(cy) + chunk_y,
                mesh_width=int((hi[0] - lo[0]) * w),
                mesh_height=int((hi[1] - lo[1]) * h),
                chunk_x=chunk_x,
                chunk_y=chunk_y,
            )
        )
    return faces


def _chunks(image: Image.Image) -> list[tuple[Image.Image, int, int]]:
    """Square windows along the long side (none for a square image), overlapping: about
    twice as many as the side ratio."""
    width, height = image.size
    out = []
    long, short = max(width, height), min(width, height)
    if long == short:
        return out
    steps = int(long * 2 / short) + 1
    step = (long - short) / (steps - 1)
    pos = 0.0
    while pos <= long - short:
        p = int(pos)
        if width > height:
            out.append((image.crop((p, 0, p + height, height)), p, 0))
        else:
            out.append((image.crop((0, p, width, p + width)), 0, p))
        pos += step
    return out


def _merge(a: Face, b: Face) -> Face:
    """Two detections of one face as one: both chunks on one canvas, both masks black."""
    x0, y0 = min(a.chunk_x, b.chunk_x), min(a.chunk_y, b.chunk_y)
    canvas = Image.new(
        a.image.mode,
        (
            max(a.image.width, b.image.width) + max(a.chunk_x, b.chunk_x) - x0,
            max(a.image.height, b.image.height) + max(a.chunk_y, b.chunk_y) - y0,
        ),
    )
    canvas.paste(a.image, (a.chunk_x - x0, a.chunk_y - y0))
    canvas.paste(b.image, (b.chunk_x - x0, b.chunk_y - y0))
    mask = _white(max(a.mask.width, b.mask.width), max(a.mask.height, b.mask.height))
    for m in (a.mask, b.mask):
        mask.paste(_black(*m.size), (0, 0), ImageOps.invert(m))
    return Face(
        image=canvas,
        mask=mask,
        x_center=max(a.x_center, b.x_center),
        y_center=max(a.y_center, b.y_center),
        mesh_width=max(a.mesh_width, b.mesh_width),
        mesh_height=max(a.mesh_height, b.mesh_height),
        chunk_x=max(a.chunk_x, b.chunk_x),
        chunk_y=b.chunk_y,  # InvokeAI takes the second face's row offset here
    )


def _dedupe_and_number(found: list[Face]) -> list[Face]:
    kept: list[Face] = []
    for face in found:
        for i, other in enumerate(kept):
            rx, ry = other.mesh_width / 2, other.mesh_height / 2
            inside = ((face.x_center - other.x_center) ** 2 / rx**2) + (
                (face.y_center - other.y_center) ** 2 / ry**2
            )
            if inside < 1:
                kept[i] = _merge(other, face)
                break
        else:
            kept.append(face)
    kept.sort(key=lambda f: f.y_center)
    kept.sort(key=lambda f: f.x_center)
    return kept


def detect_faces(
    ctx: Context,
    node: Node,
    image: Image.Image,
    chunk: bool,
    confidence: float,
    x_offset: float = 0.0,
    y_offset: float = 0.0,
    draw_mesh: bool = True,
) -> list[Face]:
    """The faces of ``image``, numbered by their place in the list."""
    found: list[Face] = []
    if not chunk:
        found = _faces_in(ctx, node, image, 0, 0, confidence, x_offset, y_offset, draw_mesh)
    if chunk or not found:
        found = []
        for piece, cx, cy in _chunks(image):
            found += _faces_in(ctx, node, piece, cx, cy, confidence, x_offset, y_offset, draw_mesh)
        if not found:
            ctx.log.warning("no face found in the image or its chunks: passing it through")
    return _dedupe_and_number(found)


def crop_face(
    image: Image.Image, face: Face, padding: int
) -> tuple[Image.Image, Image.Image, int, int]:
    """(the face's square crop, its mask softened by a 2 px blur, left, top). The side is
    the mesh's larger side plus 128 + padding, a multiple of 8 above 128, at most the mask's
    shorter side (before that rounding); the square is shifted to stay inside the mask."""
    mask = face.mask
    side = min(
        max(face.mesh_width + CROP_MARGIN + padding, face.mesh_height + CROP_MARGIN + padding, 128),
        min(mask.size),
    )
    if side > 128:
        side = (side + 7) // 8 * 8
    x0, y0 = int(face.x_center - side / 2), int(face.y_center - side / 2)
    x1, y1 = int(face.x_center + side / 2), int(face.y_center + side / 2)
    if x0 < 0:
        x1, x0 = x1 - x0, 0
    elif x1 > mask.width:
        x0, x1 = x0 - (x1 - mask.width), mask.width
    if y0 < 0:
        y1, y0 = y1 - y0, 0
    elif y1 > mask.height:
        y0, y1 = y0 - (y1 - mask.height), mask.height
    if x1 - x0 != side:
        d = side - (x1 - x0)
        x0, x1 = x0 - d // 2, x1 + d - d // 2
    if y1 - y0 != side:
        d = side - (y1 - y0)
        y0, y1 = y0 - d // 2, y1 + d - d // 2
    box = (x0, y0, x1, y1)
    soft = mask.crop(box).filter(ImageFilter.GaussianBlur(radius=2))
    return image.crop(box), soft, x0, y0


@output("face_off_output")
class FaceOffOutput(ImageOutput):
    """The face's crop, its mask and where the crop sits in the image."""

    mask: ImageField = OutputField(description="The output mask")
    x: int = OutputField(description="The x coordinate of the bounding box's left side")
    y: int = OutputField(description="The y coordinate of the bounding box's top side")


@output("face_mask_output")
class FaceMaskOutput(ImageOutput):
    """The image and a mask black over the chosen faces."""

    mask: ImageField = OutputField(description="The output mask")


_CONFIDENCE = "Minimum confidence for face detection (lower if detection is failing)"
_CHUNK = (
    "Whether to bypass full image face detection and default to image chunking. Chunking "
    "will occur if no faces are found in the full image."
)


class _MaskingNode(Node):
    """face_off and face_mask_detection: InvokeAI gives them a metadata input, no board."""

    metadata: dict[str, Any] | None = InputField(
        default=None,
        description="Optional metadata to be saved with the image",
        input=Input.CONNECTION,
    )

    def _save(self, ctx: Context, image: Image.Image) -> ImageField:
        return ctx.images.save(image, metadata=self.metadata)


@node(
    "face_off",
    title="FaceOff",
    category="image",
    tags=["image", "faceoff", "face", "mask"],
    version="1.2.2",
)
class FaceOffNode(_MaskingNode):
    """Bound, extract, and mask a face from an image using MediaPipe detection"""

    image: ImageField = InputField(description="Image for face detection")
    face_id: int = InputField(
        default=0,
        ge=0,
        description="The face ID to process, numbered from 0. Multiple faces not supported. "
        "Find a face's ID with FaceIdentifier node.",
    )
    minimum_confidence: float = InputField(default=0.5, description=_CONFIDENCE)
    x_offset: float = InputField(default=0.0, description="X-axis offset of the mask")
    y_offset: float = InputField(default=0.0, description="Y-axis offset of the mask")
    padding: int = InputField(default=0, description="All-axis padding around the mask in pixels")
    chunk: bool = InputField(default=False, description=_CHUNK)

    def invoke(self, ctx: Context) -> FaceOffOutput:
        image = ctx.images.get_pil(self.image)
        faces = detect_faces(
            ctx, self, image, self.chunk, self.minimum_confidence, self.x_offset, self.y_offset
        )
        if self.face_id < len(faces):
            crop, mask, x, y = crop_face(image, faces[self.face_id], self.padding)
            crop = crop.convert("RGBA")
        else:
            ctx.log.warning(
                f"face {self.face_id} not found ({len(faces)} detected): passing the image through"
            )
            crop, mask, x, y = image, _white(*image.size), 0, 0
        ref = self._save(ctx, crop)
        return FaceOffOutput(
            image=ref, width=crop.width, height=crop.height, mask=self._save(ctx, mask), x=x, y=y
        )


@node(
    "face_mask_detection",
    title="FaceMask",
    category="image",
    tags=["image", "face", "mask"],
    version="1.2.2",
)
class FaceMaskDetectionNode(_MaskingNode):
    """Face mask creation using mediapipe face detection"""

    image: ImageField = InputField(description="Image to face detect")
    face_ids: str = InputField(
        default="",
        description="Comma-separated list of face ids to mask eg '0,2,7'. Numbered from 0. "
        "Leave empty to mask all. Find face IDs with FaceIdentifier node.",
    )
    minimum_confidence: float = InputField(default=0.5, description=_CONFIDENCE)
    x_offset: float = InputField(default=0.0, description="Offset for the X-axis of the face mask")
    y_offset: float = InputField(default=0.0, description="Offset for the Y-axis of the face mask")
    chunk: bool = InputField(default=False, description=_CHUNK)
    invert_mask: bool = InputField(default=False, description="Toggle to invert the mask")

    @field_validator("face_ids")
    @classmethod
    def _comma_separated_ints(cls, v: str) -> str:
        if _FACE_IDS.match(v) is None or v.startswith(","):
            raise ValueError(f"face_ids must be comma-separated integers like '0,2,7', not {v!r}")
        return v

    def invoke(self, ctx: Context) -> FaceMaskOutput:
        image = ctx.images.get_pil(self.image)
        faces = detect_faces(
            ctx, self, image, self.chunk, self.minimum_confidence, self.x_offset, self.y_offset
        )
        mask = _white(*image.size)
        chosen = list(range(len(faces)))
        if self.face_ids:
            chosen = sorted({int(i) for i in self.face_ids.split(",")} & set(chosen))
            if not chosen:
                ctx.log.warning(
                    f"face ids {self.face_ids} not among the {len(faces)} detected: "
                    "passing the image through"
                )
                return self._output(ctx, image, mask)
        for i in chosen:
            crop, soft, x0, y0 = crop_face(image, faces[i], 0)
            mask.paste(_black(*crop.size), (x0, y0), ImageOps.invert(soft))
        if self.invert_mask:
            mask = ImageOps.invert(mask)
        return self._output(ctx, image.convert("RGBA"), mask)

    def _output(self, ctx: Context, image: Image.Image, mask: Image.Image) -> FaceMaskOutput:
        ref = self._save(ctx, image)
        return FaceMaskOutput(
            image=ref, width=image.width, height=image.height, mask=self._save(ctx, mask)
        )


@node(
    "face_identifier",
    title="FaceIdentifier",
    category="image",
    tags=["image", "face", "identifier"],
    version="1.2.2",
)
class FaceIdentifierNode(ImageSavingNode):
    """Outputs an image with detected face IDs printed on each face. For use with other FaceTools."""

    image: ImageField = InputField(description="Image to face detect")
    minimum_confidence: float = InputField(default=0.5, description=_CONFIDENCE)
    chunk: bool = InputField(default=False, description=_CHUNK)

    def invoke(self, ctx: Context) -> ImageOutput:
        image = ctx.images.get_pil(self.image).copy()
        faces = detect_faces(ctx, self, image, self.chunk, self.minimum_confidence, draw_mesh=False)
        font = ImageFont.load_default(size=LABEL_SIZE)
        draw = ImageDraw.Draw(image)
        for number, face in enumerate(faces):
            text = str(number)
            *_, tw, th = draw.textbbox((0, 0), text, font=font, stroke_width=LABEL_STROKE)
            draw.text(
                (face.x_center - tw / 2, face.y_center - th / 2),
                text,
                fill=(255, 255, 255, 255),
                font=font,
                stroke_width=LABEL_STROKE,
                stroke_fill=(0, 0, 0, 255),
            )
        return self.save_image(ctx, image.convert("RGBA"))
