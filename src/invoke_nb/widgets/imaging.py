"""Images on their way to the browser: the one encoder every widget uses.

Pixels travel as binary message buffers (never base64 JSON). PNG keeps exact pixels and
alpha (canvas layers, masks, editor thumbnails); JPEG is for what is sent often and only
looked at (progress previews at every denoise step). The catalog's stored thumbnails are
another thing: WebP files made once by the catalog, sent as they are.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Literal

from PIL import Image

from invoke_nb.widgets.messages import Reply

if TYPE_CHECKING:
    from invoke_nb.widgets.api import StudioAPI

__all__ = ["encode_image", "recent_images"]


def encode_image(
    image: Image.Image, *, size: int | None = None, fmt: Literal["PNG", "JPEG"] = "PNG"
) -> bytes:
    """``image`` as PNG or JPEG bytes, shrunk to fit ``size`` x ``size`` when given (aspect
    kept; never enlarged). PNG is fast-compressed (level 1): these bytes are sent once."""
    im = image
    if fmt == "JPEG" and im.mode != "RGB":
        im = im.convert("RGB")
    elif fmt == "PNG" and im.mode not in ("RGB", "RGBA", "L", "LA"):
        im = im.convert("RGBA")
    if size is not None and (im.width > size or im.height > size):
        im = im.copy() if im is image else im
        im.thumbnail((size, size))
    buf = io.BytesIO()
    if fmt == "JPEG":
        im.save(buf, format="JPEG", quality=80)
    else:
        im.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def recent_images(studio: StudioAPI, limit: int = 24, search: str | None = None) -> Reply:
    """The newest catalogued images: names and sizes, with a thumbnail buffer each."""
    rows, buffers = [], []
    for rec in studio.recent_images(limit, search):
        try:
            thumb = studio.thumbnail(rec.image_name)
        except Exception:
            continue
        rows.append({"image_name": rec.image_name, "width": rec.width, "height": rec.height})
        buffers.append(encode_image(thumb, size=128))
    return Reply({"images": rows}, buffers)
