"""Tiny random DWPose ONNX models with the published interfaces: a YOLOX-style detector
(``images`` 1x3x640x640 -> 1x8400x85: box offsets, log sizes, objectness, 80 class scores
over strides 8, 16 and 32) and an RTMPose-style whole-body model (1x3x384x288 -> SimCC
``simcc_x`` 1x133x576 and ``simcc_y`` 1x133x768). A few hundred KB each; needs ``onnx``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DWPOSE_FILES", "make_detector", "make_pose"]


def _tensor(name: str, arr: np.ndarray) -> Any:
    from onnx import numpy_helper

    return numpy_helper.from_array(arr.astype(np.float32), name)


def make_detector(dest: str | Path, seed: int = 0) -> Path:
    """Per YOLOX stride: average pooling and a 1x1 conv, flattened and concatenated; biases
    put box sizes near 12 cells and person scores (objectness x class 0) around 0.25 at
    stride 32 only, so a few large, overlapping boxes survive suppression."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(seed)
    nodes, inits, parts = [], [], []
    for s in (8, 16, 32):
        w = rng.normal(0, 3e-3, (85, 3, 1, 1))
        b = np.zeros(85)
        w[:4] *= 0.1  # boxes of nearly one size: 12 cells (a third of the image)
        b[2:4], b[4], b[5] = 2.5, 0.45, 0.45
        if s < 32:  # people only at the coarsest level: large boxes that suppress each other
            w[4], b[4] = 0.0, 0.0
        inits += [_tensor(f"w{s}", w), _tensor(f"b{s}", b)]
        inits.append(helper.make_tensor(f"shape{s}", TensorProto.INT64, [3], [1, 85, -1]))
        nodes.append(
            helper.make_node(
                "AveragePool", ["images"], [f"p{s}"], kernel_shape=[s, s], strides=[s, s]
            )
        )
        nodes.append(helper.make_node("Conv", [f"p{s}", f"w{s}", f"b{s}"], [f"c{s}"]))
        nodes.append(helper.make_node("Reshape", [f"c{s}", f"shape{s}"], [f"f{s}"]))
        parts.append(f"f{s}")
    nodes.append(helper.make_node("Concat", parts, ["cat"], axis=2))
    nodes.append(helper.make_node("Transpose", ["cat"], ["output"], perm=[0, 2, 1]))
    graph = helper.make_graph(
        nodes,
        "tiny_yolox",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 640, 640])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 8400, 85])],
        inits,
    )
    return _save(graph, dest)


def make_pose(dest: str | Path, seed: int = 0) -> Path:
    """A 16x16 strided conv to 133 keypoint maps, averaged over rows (for x) or columns (for
    y) and spread by a random matrix to the SimCC bins (2 per pixel)."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(seed)
    inits = [
        _tensor("w", rng.normal(0, 0.02, (133, 3, 16, 16))),
        _tensor("b", np.full(133, 1.0)),
        _tensor("mx", rng.normal(0, 0.1, (18, 576))),
        _tensor("my", rng.normal(0, 0.1, (24, 768))),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "w", "b"], ["c"], strides=[16, 16]),
        helper.make_node("ReduceMean", ["c"], ["rows"], axes=[2], keepdims=0),
        helper.make_node("ReduceMean", ["c"], ["cols"], axes=[3], keepdims=0),
        helper.make_node("MatMul", ["rows", "mx"], ["simcc_x"]),
        helper.make_node("MatMul", ["cols", "my"], ["simcc_y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_rtmpose",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 384, 288])],
        [
            helper.make_tensor_value_info("simcc_x", TensorProto.FLOAT, [1, 133, 576]),
            helper.make_tensor_value_info("simcc_y", TensorProto.FLOAT, [1, 133, 768]),
        ],
        inits,
    )
    return _save(graph, dest)


def _save(graph: Any, dest: str | Path) -> Path:
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # readable by older onnxruntime builds too
    onnx.checker.check_model(model)
    out = Path(dest)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return out


# file name in yzd-v/DWPose -> builder of its tiny stand-in
DWPOSE_FILES = {"yolox_l.onnx": make_detector, "dw-ll_ucoco_384.onnx": make_pose}

if __name__ == "__main__":
    import sys

    for name, make in DWPOSE_FILES.items():
        print(make(Path(sys.argv[1]) / name))
