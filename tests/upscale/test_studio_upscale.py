"""``studio.upscale``: the one-liner upscales with an installed image-to-image model and
catalogues the result; without one it says what to install."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from invoke_nb.studio import Studio


def test_studio_upscale(tmp_path: Path, upscale_files: dict) -> None:
    s = Studio(tmp_path / "studio")
    try:
        img = Image.open(
            Path(__file__).parents[1] / "fixtures" / "invokeai" / "invokeai-euler-seed42.png"
        ).convert("RGB")
        with pytest.raises(LookupError, match="no image-to-image model installed"):
            s.upscale(img, progress=False)
        s.models.install(str(upscale_files["esrgan"]), name="x2", in_place=True)
        out = s.upscale(img, model="x2", scale=2, progress=False)
        assert out.pil.size == (128, 128)
        assert np.asarray(out.pil).std() > 0.5
        assert s.images.get(out.name).pil.size == (128, 128)  # in the catalog
        assert out.graph is not None
    finally:
        s.close()
