"""The node API and the node library.

Importing this package registers every built-in node type. Custom nodes are plain classes
decorated with :func:`node` anywhere (a notebook cell is fine).
"""

import importlib
from pathlib import Path

from invoke_nb.nodes.base import (
    Input,
    InputField,
    Node,
    NodeRegistryWarning,
    Output,
    OutputField,
    UIHint,
    get_node_class,
    get_output_class,
    node,
    node_schema,
    node_types,
    output,
    registry_schema,
)
from invoke_nb.nodes.context import Cancelled, Context, MissingValueError, Services, register_image
from invoke_nb.nodes.types import (
    BoardField,
    ColorField,
    ConditioningField,
    DenoiseMaskField,
    ImageField,
    LatentsField,
    ModelIdentifierField,
    TensorField,
)

# TODO(lead): plain imports once the library modules have all landed.
for _name in (
    "flow",
    "primitives",
    "math",
    "strings",
    "collections",
    "image",
    "mask",
    "diffusion",
    "batch",
    "utilities",
    "metadata",
    "image_tools",
    "denoise_meta",
    "vllm",
    "control",
    "color_tools",
    "layer_blend",
    "preprocessors",
    "upscale",
):
    _here = Path(__file__).parent
    if (_here / f"{_name}.py").exists() or (_here / _name / "__init__.py").exists():
        importlib.import_module(f"invoke_nb.nodes.{_name}")

__all__ = [
    "BoardField",
    "Cancelled",
    "ColorField",
    "ConditioningField",
    "Context",
    "DenoiseMaskField",
    "ImageField",
    "Input",
    "InputField",
    "LatentsField",
    "MissingValueError",
    "ModelIdentifierField",
    "Node",
    "NodeRegistryWarning",
    "Output",
    "OutputField",
    "Services",
    "TensorField",
    "UIHint",
    "get_node_class",
    "get_output_class",
    "node",
    "node_schema",
    "node_types",
    "output",
    "register_image",
    "registry_schema",
]
