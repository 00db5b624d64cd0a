"""ControlNet preprocessors with InvokeAI 6.11.1's ids: edge, line, colour, shuffle,
depth, normal, pose and material maps, detection and segmentation, faces.

Classical ones (OpenCV/numpy) live in :mod:`.classical`, network ones beside it (their
weights through :mod:`.weights`, their networks in :mod:`invoke_nb.models.annotators`);
every module here registers its nodes when imported.
"""

from invoke_nb.nodes.preprocessors import (
    classical,
    depth,
    detect,
    edges,
    faces,
    facetools,
    lines,
    normal,
    pbr,
    pose,
    segment,
)

__all__ = [
    "classical",
    "depth",
    "detect",
    "edges",
    "faces",
    "facetools",
    "lines",
    "normal",
    "pbr",
    "pose",
    "segment",
]
