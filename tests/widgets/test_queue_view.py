"""Every QueueView message handler against a real queue thread (no browser)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import invoke_nb as inb
from invoke_nb.nodes import InputField, Node, Output, OutputField, node, output
from invoke_nb.nodes.context import Context
from invoke_nb.studio import Studio
from invoke_nb.widgets import QueueView

from .test_graph_editor import err, ok


@output("t_widget_sleep_output")
class SleepOut(Output):
    value: int = OutputField()


@node("t_widget_sleep", category="test", deterministic=False)
class SleepNode(Node):
    """Sleeps in steps with progress; honours cancellation; can fail."""

    steps: int = InputField(default=10)
    delay: float = InputField(default=0.05)
    prompt: str = InputField(default="")
    fail: bool = InputField(default=False)

    def invoke(self, ctx: Context) -> SleepOut:
        for i in range(self.steps):
            ctx.check_cancelled()
            time.sleep(self.delay)
            ctx.progress(step=i + 1, total=self.steps, message="sleeping")
        if self.fail:
            raise RuntimeError("asked to fail")
        return SleepOut(value=self.steps)


def sleep_graph(**values: Any) -> inb.Graph:
    g = inb.Graph()
    g.add("t_widget_sleep", id="sleep", **values)
    return g


class Recorder(QueueView):
    def send(self, content: Any, buffers: Any = None) -> None:
        self.__dict__.setdefault("outbox", []).append((content, buffers))

    def events(self, name: str) -> list[dict[str, Any]]:
        return [
            c["data"]
            for c, _ in list(self.__dict__.get("outbox", []))
            if c.get("kind") == "event" and c["name"] == name
        ]


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[Studio]:
    s = Studio(tmp_path / "studio")
    yield s
    s.close()


@pytest.fixture
def view(studio: Studio) -> Iterator[Recorder]:
    v = Recorder(studio)
    yield v
    v.close()


def wait_for(cond: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def status(view: QueueView, item_id: int) -> str:
    rows = ok(view, "items")["items"]
    return next(r["status"] for r in rows if r["item_id"] == item_id)


def test_items_grouped_by_batch_with_labels_and_counts(studio: Studio, view: Recorder) -> None:
    studio.queue.pause()
    a = studio.enqueue(sleep_graph(steps=1, delay=0.0, prompt="a fox"), runs=2)
    b = studio.enqueue(sleep_graph(steps=1, delay=0.0))
    result = ok(view, "items")
    rows = result["items"]
    assert [r["item_id"] for r in rows] == [*a, *b]
    assert rows[0]["batch_id"] == rows[1]["batch_id"] != rows[2]["batch_id"]
    assert [r["label"] for r in rows] == ["a fox", "a fox", "graph of 1 nodes"]
    assert result["counts"]["pending"] == 3 and result["paused"] is True
    assert len(ok(view, "items", limit=1)["items"]) == 1
    assert view.events("changed")[0]["kind"] == "batch_enqueued"

    studio.queue.resume()
    wait_for(lambda: ok(view, "items")["counts"]["completed"] == 3)
    assert {e["status"] for e in view.events("changed")} >= {"in_progress", "completed"}
    assert any(e.get("step") == 1 and e["fraction"] == 1.0 for e in view.events("progress"))


def test_cancel_a_running_item_then_retry_it(studio: Studio, view: Recorder) -> None:
    steps: list[int] = []  # every step the node reported, straight from the studio's events
    off = studio.events.on("progress", lambda k, p: p.get("item_id") and steps.append(p["step"]))
    (item,) = studio.enqueue(sleep_graph(steps=400, delay=0.05))
    wait_for(lambda: status(view, item) == "in_progress")
    wait_for(lambda: any(e["item_id"] == item for e in view.events("progress")))
    wait_for(lambda: steps)  # the node has reported a step (the first event is its start)
    at_cancel = len(steps)
    assert ok(view, "cancel", item_ids=[item]) == {"canceled": [item]}
    wait_for(lambda: status(view, item) == "canceled")
    off()
    # stopped at the next step boundary (the step in flight may report), not after 400 steps
    assert len(steps) - at_cancel <= 2 and max(steps) < 400, (at_cancel, len(steps))
    assert any(e.get("status") == "canceled" for e in view.events("changed"))

    studio.queue.pause()
    (again,) = ok(view, "retry", item_ids=[item])["item_ids"]
    rows = {r["item_id"]: r for r in ok(view, "items")["items"]}
    assert rows[again]["status"] == "pending" and rows[again]["retried_from"] == item
    assert ok(view, "cancel", batch_id=rows[again]["batch_id"])["canceled"] == [again]


def test_failed_items_show_their_error_and_prune_clears_finished(
    studio: Studio, view: Recorder
) -> None:
    (bad,) = studio.enqueue(sleep_graph(steps=1, delay=0.0, fail=True))
    wait_for(lambda: status(view, bad) == "failed")
    row = next(r for r in ok(view, "items")["items"] if r["item_id"] == bad)
    assert "asked to fail" in row["error_message"] and row["completed_at"]
    assert ok(view, "prune") == {"removed": 1}
    assert ok(view, "items")["items"] == []


def test_bad_requests_name_the_problem(view: Recorder) -> None:
    assert "item_ids or a batch_id" in err(view, "cancel")["message"]
    e = err(view, "cancel", item_ids=[999])
    assert e["type"] == "NotFoundError" and "999" in e["message"]
    assert "retry needs item_ids" in err(view, "retry")["message"]
    assert "item_ids" in err(view, "retry", item_ids=["x"])["message"]
    assert "limit" in err(view, "items", limit=0)["message"]


def test_close_unsubscribes(studio: Studio) -> None:
    v = Recorder(studio)
    v.close()
    studio.events.emit("queue_item_status_changed", {"item_id": 1, "status": "completed"})
    assert v.events("changed") == []


def test_labels_come_from_prompt_nodes_and_batch_values(studio: Studio, view: Recorder) -> None:
    studio.queue.pause()
    g = inb.Graph()
    g.add("string", id="negative_prompt", value="blurry")
    g.add("string", id="positive_prompt", value="a lighthouse")
    g.add("t_widget_sleep", id="sleep", steps=1, delay=0.0)
    studio.enqueue(g)
    studio.enqueue(g, batch={"positive_prompt.value": ["a cat", "a dog"]})
    labels = [r["label"] for r in ok(view, "items")["items"]]
    assert labels == ["a lighthouse", "a cat", "a dog"]
