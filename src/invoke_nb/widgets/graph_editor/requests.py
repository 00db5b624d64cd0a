"""The editor's browser requests on the graph: add, remove, connect, set values, move,
duplicate, validate, invoke, save/load files, model and image pickers."""

from __future__ import annotations

import json
import re
from typing import Any

from invoke_nb.graph import GraphError
from invoke_nb.graph.workflow import loads_json, parse_workflow
from invoke_nb.nodes import registry_schema
from invoke_nb.nodes.types import ImageField
from invoke_nb.widgets.graph_editor.fields import field_model_filter, model_choices
from invoke_nb.widgets.graph_editor.protocol import (
    AddNode,
    Duplicate,
    EdgeParams,
    ImageName,
    InvokeParams,
    LoadWorkflow,
    ModelQuery,
    Move,
    NodeIds,
    RecentImages,
    SaveWorkflow,
    SetValue,
)
from invoke_nb.widgets.imaging import encode_image, recent_images
from invoke_nb.widgets.messages import Params, Reply, handler

__all__ = ["GraphRequests"]


class GraphRequests:
    """Mixed into :class:`GraphEditor`: every graph edit the browser asks for; each is checked by
    the Graph, so a refused edit changes nothing."""

    @handler("schemas")
    def _schemas(self, _p: Params, _b: list[bytes]) -> dict[str, Any]:
        return registry_schema()

    @handler("add_node", AddNode)
    def _add_node(self, p: AddNode, _b: list[bytes]) -> dict[str, Any]:
        nid = self._graph.add(p.type, **p.values)
        if p.position is not None:
            self.positions[nid] = p.position.model_dump()
        self._publish()
        return {"id": nid}

    @handler("remove_nodes", NodeIds)
    def _remove_nodes(self, p: NodeIds, _b: list[bytes]) -> dict[str, Any]:
        self._require(p.ids)  # all or nothing
        for nid in p.ids:
            self._graph.remove(nid)
            self.positions.pop(nid, None)
            self.labels.pop(nid, None)
        self._publish()
        return {"removed": p.ids}

    @handler("connect", EdgeParams)
    def _connect(self, p: EdgeParams, _b: list[bytes]) -> dict[str, Any]:
        self._graph.connect(p.source, p.source_field, p.destination, p.destination_field)
        self._publish()
        return {"ok": True}

    @handler("disconnect", EdgeParams)
    def _disconnect(self, p: EdgeParams, _b: list[bytes]) -> dict[str, Any]:
        edge = (p.source, p.source_field, p.destination, p.destination_field)
        if not any(
            (e.source.node_id, e.source.field, e.destination.node_id, e.destination.field) == edge
            for e in self._graph.edges
        ):
            raise GraphError(
                f"no edge {p.source}.{p.source_field} -> {p.destination}.{p.destination_field}",
                node_id=p.destination,
                field=p.destination_field,
            )
        self._graph.disconnect(*edge)
        self._publish()
        return {"ok": True}

    @handler("set_value", SetValue)
    def _set_value(self, p: SetValue, _b: list[bytes]) -> dict[str, Any]:
        spec = self._graph.node(p.node_id)
        try:
            if p.unset:
                self._graph.unset(p.node_id, p.field)
            else:
                before = dict(spec.values)
                self._graph.set(p.node_id, **{p.field: p.value})
                ref = spec.values.get(p.field)
                if isinstance(ref, ImageField) and not ref.image_name.startswith("mem-"):
                    try:  # a catalog image only: a checked name with a row
                        self._need_studio("use catalog images").image(ref.image_name)
                    except Exception:
                        spec.values.clear()
                        spec.values.update(before)
                        raise
        finally:
            self._publish()  # a refused value snaps the browser back to the kept one
        return {"value": self.graph_data["graph"]["nodes"][p.node_id].get(p.field)}

    @handler("move", Move)
    def _move(self, p: Move, _b: list[bytes]) -> dict[str, Any]:
        self._require(list(p.positions))
        for nid, xy in p.positions.items():
            self.positions[nid] = xy.model_dump()
        self._publish()
        return {"ok": True}

    @handler("duplicate", Duplicate)
    def _duplicate(self, p: Duplicate, _b: list[bytes]) -> dict[str, Any]:
        self._require(p.ids)
        mapping: dict[str, str] = {}
        try:
            for nid in p.ids:
                spec = self._graph.nodes[nid]
                new = self._graph.add(
                    spec.type,
                    **spec.values,
                    is_intermediate=spec.is_intermediate,
                    use_cache=spec.use_cache,
                )
                mapping[nid] = new
                pos = self.positions.get(nid)
                if pos is not None:
                    self.positions[new] = {"x": pos["x"] + p.offset.x, "y": pos["y"] + p.offset.y}
                if nid in self.labels:
                    self.labels[new] = self.labels[nid]
            for e in list(self._graph.edges):
                if e.source.node_id in mapping and e.destination.node_id in mapping:
                    self._graph.connect(
                        mapping[e.source.node_id],
                        e.source.field,
                        mapping[e.destination.node_id],
                        e.destination.field,
                    )
        except GraphError:
            for new in mapping.values():
                if new in self._graph.nodes:
                    self._graph.remove(new)
            raise
        finally:
            self._publish()
        return {"ids": [mapping[n] for n in p.ids]}

    @handler("validate")
    def _validate(self, _p: Params, _b: list[bytes]) -> dict[str, Any]:
        try:
            self._graph.validate()
        except GraphError as e:
            return {"ok": False, "error": str(e), "node_id": e.node_id, "field": e.field}
        return {"ok": True}

    @handler("invoke", InvokeParams)
    def _invoke(self, p: InvokeParams, _b: list[bytes]) -> dict[str, Any]:
        if self.studio is not None:
            ids = self._enqueue(p.runs)
            n = len(ids)
            return {"ok": True, "summary": f"queued {n} run{'s' if n > 1 else ''}", "items": ids}
        result = self.invoke()
        executed = getattr(result, "executed", None)
        if executed is not None:
            cached = getattr(result, "cached", set())
            seconds = getattr(result, "seconds", 0.0)
            summary = f"ran {len(executed)} nodes, {len(cached)} from cache, in {seconds:.2f} s"
        else:
            summary = "submitted"
        return {"ok": True, "summary": summary}

    @handler("save_workflow", SaveWorkflow)
    def _save_workflow(self, p: SaveWorkflow, _b: list[bytes]) -> dict[str, Any]:
        wf = self.workflow()
        data = wf.to_invokeai() if p.format == "invokeai" else wf.to_dict()
        stem = (
            re.sub(r"[^\w.-]+", "_", str(self.meta.get("name") or "workflow")).strip("_")
            or "workflow"
        )
        suffix = ".invokeai.json" if p.format == "invokeai" else ".json"
        return {"text": json.dumps(data, indent=2), "filename": stem + suffix}

    @handler("load_workflow", LoadWorkflow)
    def _load_workflow(self, p: LoadWorkflow, _b: list[bytes]) -> dict[str, Any]:
        # Parse here: read_workflow would take a non-JSON string for a kernel-side path.
        wf = parse_workflow(loads_json(p.text))
        wf.graph.workflow = wf
        self.graph = wf.graph
        return {"nodes": len(wf.graph.nodes)}

    @handler("models", ModelQuery)
    def _models(self, p: ModelQuery, _b: list[bytes]) -> dict[str, Any]:
        studio = self._need_studio("list models")
        return {
            "models": model_choices(studio.models.list(), p.node_type, p.field),
            "filter": field_model_filter(p.node_type, p.field),
        }

    @handler("recent_images", RecentImages)
    def _recent_images(self, p: RecentImages, _b: list[bytes]) -> Reply:
        return recent_images(self._need_studio("list images"), p.limit, p.search)

    @handler("image_thumbnail", ImageName)
    def _image_thumbnail(self, p: ImageName, _b: list[bytes]) -> Reply:
        studio = self._need_studio("show catalog images")
        rec = studio.image_record(p.image_name)
        thumb = studio.thumbnail(p.image_name)
        return Reply(
            {"image_name": p.image_name, "width": rec.width, "height": rec.height},
            [encode_image(thumb, size=256)],
        )
