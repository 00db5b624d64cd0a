"""Studio fixtures: a studio on a temp root, closed after the test."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import invoke_nb as inb
from invoke_nb.nodes import InputField, Node, Output, OutputField, node, output
from invoke_nb.nodes.context import Context
from invoke_nb.studio import Studio


@output("t_slow_output")
class SlowOut(Output):
    value: int = OutputField()


@node("t_slow", category="test", deterministic=False)
class SlowNode(Node):
    """Sleeps in small steps, reporting progress and honouring cancellation."""

    steps: int = InputField(default=10)
    delay: float = InputField(default=0.05)
    fail: bool = InputField(default=False)

    def invoke(self, ctx: Context) -> SlowOut:
        for i in range(self.steps):
            ctx.check_cancelled()
            time.sleep(self.delay)
            ctx.progress(step=i + 1, total=self.steps, message="sleeping")
        if self.fail:
            raise RuntimeError("asked to fail")
        return SlowOut(value=self.steps)


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[Studio]:
    s = Studio(tmp_path / "studio")
    yield s
    s.close()


def _slow_graph(steps: int = 10, delay: float = 0.05, fail: bool = False) -> inb.Graph:
    g = inb.Graph()
    g.add("t_slow", id="slow", steps=steps, delay=delay, fail=fail)
    return g


@pytest.fixture
def slow_graph():
    """Builds a one-node graph that sleeps in steps (and can fail)."""
    return _slow_graph


@pytest.fixture
def tiny_studio(tmp_path: Path, tiny_sd1: Path) -> Iterator[Studio]:
    """A studio with the tiny SD1 model registered in place as 'tiny'."""
    s = Studio(tmp_path / "studio")
    s.models.install(str(tiny_sd1), name="tiny", in_place=True)
    yield s
    s.close()
