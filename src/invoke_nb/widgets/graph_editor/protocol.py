"""The editor's request parameters and node run states (extension/src/widgets/graph_editor/
protocol.ts is the browser's side of the same messages)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from invoke_nb.widgets.messages import Params

RunState = Literal["idle", "queued", "running", "done", "cached", "error"]


class XY(Params):
    x: float
    y: float


class AddNode(Params):
    type: str
    position: XY | None = None
    values: dict[str, Any] = {}


class NodeIds(Params):
    ids: list[str]


class EdgeParams(Params):
    source: str
    source_field: str
    destination: str
    destination_field: str


class SetValue(Params):
    node_id: str
    field: str
    value: Any = None
    unset: bool = False


class Move(Params):
    positions: dict[str, XY]


class Duplicate(Params):
    ids: list[str]
    offset: XY = XY(x=40, y=40)


class SaveWorkflow(Params):
    format: Literal["invoke-nb", "invokeai"] = "invoke-nb"


class LoadWorkflow(Params):
    text: str


class InvokeParams(Params):
    runs: int = Field(1, ge=1, le=1000)


class ModelQuery(Params):
    node_type: str
    field: str


class RecentImages(Params):
    limit: int = Field(24, ge=1, le=200)
    search: str | None = None


class ImageName(Params):
    image_name: str


class LibraryList(Params):
    query: str | None = None


class LibrarySave(Params):
    name: str = Field(min_length=1, max_length=200)
    workflow_id: str | None = None
    description: str = ""


class WorkflowId(Params):
    workflow_id: str
