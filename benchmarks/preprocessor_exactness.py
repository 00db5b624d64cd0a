"""How exact the network preprocessors are: each map beside InvokeAI 6.11.1's reference
(tests/fixtures/preprocessors, made by its own code on the same tiny weights), as the largest
difference in 0-255 levels and the share of differing values. The tests only bound these
(tests/preprocessors/test_annotators.py states each tolerance).

    python -m benchmarks.preprocessor_exactness
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures" / "preprocessors"
SOURCE = ROOT / "tests" / "fixtures" / "invokeai" / "invokeai-euler-seed42.png"


def _maps(weights: Path) -> list[tuple[str, Any]]:
    """(reference file name, our map) for every committed annotator reference."""
    import onnxruntime as ort
    from PIL import Image

    from invoke_nb.models.annotators import build_annotator
    from invoke_nb.models.load_annotators import read_state_dict
    from invoke_nb.nodes.preprocessors import edges, lines, normal, pbr, pose

    image = Image.open(SOURCE).convert("RGB")

    def net(kind: str, name: str) -> Any:
        return build_annotator(kind, read_state_dict(weights / name), name)

    hed, pidi = net("hed", "ControlNetHED.pth"), net("pidi", "table5_pidinet.pth")
    mlsd = net("mlsd", "annotator/ckpts/mlsd_large_512_fp32.pth")
    out = [
        ("hed.png", edges.hed_edges(image, hed)),
        ("hed-scribble.png", edges.hed_edges(image, hed, True)),
        ("pidi.png", edges.pidi_edges(image, pidi)),
        ("pidi-quantized.png", edges.pidi_edges(image, pidi, True)),
        ("pidi-scribble.png", edges.pidi_edges(image, pidi, False, True)),
        ("lineart.png", edges.lineart_edges(image, net("lineart", "sk_model.pth"))),
        ("lineart-coarse.png", edges.lineart_edges(image, net("lineart", "sk_model2.pth"))),
        ("lineart_anime.png", edges.lineart_anime_edges(image, net("lineart_anime", "netG.pth"))),
        ("mlsd.png", lines.mlsd_lines(image, mlsd, 0.1, 20.0)),
        ("mlsd-strict.png", lines.mlsd_lines(image, mlsd, 0.3, 30.0)),
        ("normal_map.png", normal.normal_colours(image, net("normal_bae", "scannet.pt"))),
    ]
    a = net("pbr_maps", "normal_map_generator.safetensors")
    b = net("pbr_maps", "franken_map_generator.safetensors")
    for tile, border in [(512, "none"), (32, "seamless"), (40, "replicate")]:
        kinds = ("normal", "roughness", "displacement")
        for kind, m in zip(kinds, pbr.pbr_maps(image, a, b, tile, border), strict=True):
            out.append((f"pbr-{border}-{tile}-{kind}.png", m))
    det, est = (
        ort.InferenceSession(str(weights / n), providers=["CPUExecutionProvider"])
        for n in ("yolox_l.onnx", "dw-ll_ucoco_384.onnx")
    )
    out.append(("dw_openpose.png", pose.draw_pose(image, det, est, True, False, False)))
    out.append(("dw_openpose-all.png", pose.draw_pose(image, det, est, True, True, True)))
    return out


def main() -> None:
    from PIL import Image

    from invoke_nb.testing.tiny_annotators import (
        ANNOTATOR_FILES,
        CONTROLNET_FILES,
        PBR_FILES,
        write_annotator,
    )
    from invoke_nb.testing.tiny_dwpose import DWPOSE_FILES

    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp)
        for name in [*ANNOTATOR_FILES, *CONTROLNET_FILES, *PBR_FILES]:
            write_annotator(weights, name)
        for name, make in DWPOSE_FILES.items():
            make(weights / name)
        print(f"{'map':36s} {'max |diff|':>10s} {'differing':>10s}")
        for name, ours in _maps(weights):
            got = np.asarray(ours).astype(int)
            ref = np.asarray(Image.open(FIX / name)).astype(int)
            diff = np.abs(got - ref)
            print(f"{name:36s} {diff.max():10d} {np.mean(diff > 0):10.4f}")


if __name__ == "__main__":
    main()
