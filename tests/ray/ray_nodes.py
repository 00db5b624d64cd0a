"""Test nodes for the Ray executor: slow steps with progress, cancellation and an image."""

from __future__ import annotations

import time

from PIL import Image

from invoke_nb.nodes import InputField, Node, Output, OutputField, node, output
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.types import ImageField


@output("ray_t_slow_output")
class SlowImageOut(Output):
    image: ImageField = OutputField()
    steps_done: int = OutputField()


@node("ray_t_slow_image", category="test", deterministic=False)
class SlowImage(Node):
    """Sleeps ``steps`` times (progress, cancel checks), then saves a flat image of ``value``."""

    steps: int = InputField(default=10)
    delay: float = InputField(default=0.05)
    value: int = InputField(default=128, ge=0, le=255)
    fail: bool = InputField(default=False)

    def invoke(self, ctx: Context) -> SlowImageOut:
        for i in range(self.steps):
            ctx.check_cancelled()
            time.sleep(self.delay)
            ctx.progress(step=i + 1, total=self.steps, message="sleeping")
        if self.fail:
            raise ValueError(f"asked to fail at value {self.value}")
        img = Image.new("RGB", (16, 16), (self.value, 255 - self.value, 7))
        ref = ctx.images.save(img, metadata={"value": self.value})
        return SlowImageOut(image=ref, steps_done=self.steps)
