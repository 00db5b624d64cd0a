"""Fixtures for node-library tests: invoke nodes one by one through a real ``Context``."""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

import numpy as np
import pytest
from PIL import Image

# the node modules under test (registering their node types)
import invoke_nb.nodes.collections
import invoke_nb.nodes.image
import invoke_nb.nodes.mask
import invoke_nb.nodes.math
import invoke_nb.nodes.primitives
import invoke_nb.nodes.strings  # noqa: F401
from invoke_nb.nodes.base import Node, Output, get_node_class
from invoke_nb.nodes.context import Context, Services, memory_image
from invoke_nb.nodes.types import ImageField


class NodeRunner:
    """Builds a node from its type id and fields, invokes it with a Context and keeps the
    values it stored, so an image made by one node can feed the next."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.services = Services()
        self._count = itertools.count()

    def build(self, type_id: str, **fields: Any) -> Node:
        return get_node_class(type_id)(id=f"{type_id}-{next(self._count)}", **fields)

    def __call__(self, type_id: str, **fields: Any) -> Output:
        return self.invoke(self.build(type_id, **fields))

    def invoke(self, n: Node) -> Output:
        key = hashlib.sha256(f"{n.id}-{next(self._count)}".encode()).hexdigest()
        ctx = Context(
            node=n, key=key, session_id="test", services=self.services, lookup=self.values.get
        )
        out = n.invoke(ctx)
        assert isinstance(out, n.output_class)
        self.values.update(ctx.produced)
        return out

    def pil(self, ref: ImageField | Output) -> Image.Image:
        """The PIL image behind a reference or an output's ``image`` field."""
        if isinstance(ref, Output):
            ref = ref.image  # type: ignore[attr-defined]
        img = self.values.get(ref.image_name)
        if img is None:
            img = memory_image(ref.image_name)
        assert img is not None, f"no image named {ref.image_name}"
        return img

    def arr(self, ref: ImageField | Output) -> np.ndarray:
        return np.asarray(self.pil(ref))


@pytest.fixture
def run() -> NodeRunner:
    return NodeRunner()
