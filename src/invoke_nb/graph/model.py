"""The Graph: nodes keyed by id with literal field values, and typed edges between fields.

A graph holds *specifications* (type id + literal values), not node instances: inputs fed by
edges are only known at run time. Literal values are validated against their field when
set, so mistakes surface at ``g.add``/``g.set`` with the node and field named.

JSON uses InvokeAI's graph shape (``nodes: {id: {id, type, ...fields}}``,
``edges: [{source: {node_id, field}, destination: {node_id, field}}]``), so the
``invokeai_graph`` chunk of an InvokeAI PNG loads directly.
"""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError

from invoke_nb.graph.errors import (
    ConnectionModeError,
    DuplicateInputError,
    DuplicateNodeIdError,
    FieldValueError,
    GraphError,
    NodeNotFoundError,
    UnknownFieldError,
    UnknownNodeTypeError,
    WorkflowError,
)
from invoke_nb.nodes.base import Input, Node, get_node_class, input_mode

__all__ = ["Edge", "EdgePoint", "Graph", "NodeSpec"]

_FLAGS = ("is_intermediate", "use_cache")
MULTI_INPUTS = {("collect", "item")}


@dataclass(frozen=True)
class EdgePoint:
    """One end of an edge: a node id and a field name."""

    node_id: str
    field: str


@dataclass(frozen=True)
class Edge:
    """``source`` (an output field) feeds ``destination`` (an input field)."""

    source: EdgePoint
    destination: EdgePoint

    def to_json(self) -> dict[str, Any]:
        return {
            "source": {"node_id": self.source.node_id, "field": self.source.field},
            "destination": {"node_id": self.destination.node_id, "field": self.destination.field},
        }


@dataclass
class NodeSpec:
    """A node in a graph: its type, its literal input values and its flags."""

    id: str
    type: str
    values: dict[str, Any] = field(default_factory=dict)
    is_intermediate: bool = False
    use_cache: bool = True

    @property
    def cls(self) -> type[Node]:
        return get_node_class(self.type)


@lru_cache(maxsize=4096)
def _adapter(cls: type[Node], name: str) -> TypeAdapter[Any]:
    info = cls.model_fields[name]
    return TypeAdapter(Annotated[info.annotation, info])


def validate_value(cls: type[Node], node_id: str, name: str, value: Any) -> Any:
    """Validate one literal value for a field; raise :class:`FieldValueError` naming it."""
    try:
        return _adapter(cls, name).validate_python(value)
    except ValidationError as e:
        problems = "; ".join(
            (".".join(str(p) for p in err["loc"]) + ": " if err["loc"] else "") + err["msg"]
            for err in e.errors()
        )
        raise FieldValueError(node_id, cls.type_id, name, problems) from None
    except Exception as e:  # a custom validator raised something else
        raise FieldValueError(node_id, cls.type_id, name, f"{type(e).__name__}: {e}") from None


def dump_value(cls: type[Node], name: str, value: Any) -> Any:
    """The JSON form of a literal value (an extra key of an extras-allowing node as is)."""
    if name not in cls.model_fields:
        return value
    return _adapter(cls, name).dump_python(value, mode="json")


class Graph:
    """A node graph. Build it with :meth:`add` and :meth:`connect`, run it with ``inb.run``."""

    def __init__(self, id: str | None = None) -> None:
        self.id = id or uuid.uuid4().hex
        self.nodes: dict[str, NodeSpec] = {}
        self.edges: list[Edge] = []
        self._counter = 0
        self._version = 0
        self.workflow: Any = None  # layout/labels/meta when loaded from a workflow file

    # -- building ---------------------------------------------------------------------
    def add(self, type: str, id: str | None = None, **values: Any) -> str:
        """Add a node of ``type`` with literal ``values``; returns its id."""
        if not _registered(type):
            raise UnknownNodeTypeError(type, id)
        if id is None:
            while True:
                self._counter += 1
                id = f"{type}_{self._counter}"
                if id not in self.nodes:
                    break
        elif not isinstance(id, str) or not id:
            raise GraphError(f"node id must be a non-empty string, got {id!r}")
        if id in self.nodes:
            raise DuplicateNodeIdError(id)
        spec = NodeSpec(id=id, type=type)
        self.nodes[id] = spec
        try:
            self.set(id, **values)
        except GraphError:
            del self.nodes[id]
            raise
        return id

    def set(self, node_id: str, **values: Any) -> None:
        """Set literal input values (and ``is_intermediate``/``use_cache``) of a node."""
        spec = self.node(node_id)
        cls = spec.cls
        fields = cls.input_fields()
        checked: dict[str, Any] = {}
        flags: dict[str, bool] = {}
        for name, value in values.items():
            if name in _FLAGS:
                if not isinstance(value, bool):
                    raise FieldValueError(node_id, spec.type, name, "must be true or false")
                flags[name] = value
                continue
            if name not in fields:
                if cls.model_config.get("extra") == "allow":  # core_metadata takes any key
                    checked[name] = value
                    continue
                raise UnknownFieldError(node_id, spec.type, name, "input", fields)
            if input_mode(fields[name]) is Input.CONNECTION and value is not None:
                raise ConnectionModeError(
                    f"node {node_id!r} ({spec.type}) input {name!r} takes a connection, not a value",
                    node_id=node_id,
                    field=name,
                )
            checked[name] = validate_value(cls, node_id, name, value)
        spec.values.update(checked)
        for k, v in flags.items():
            setattr(spec, k, v)
        self._version += 1

    def unset(self, node_id: str, field: str) -> None:
        """Remove a literal value so the field falls back to its default."""
        self.node(node_id).values.pop(field, None)
        self._version += 1

    def connect(
        self, source: str, source_field: str, destination: str, destination_field: str
    ) -> Edge:
        """Connect ``source.source_field`` (an output) to ``destination.destination_field``."""
        from invoke_nb.graph.validate import check_edge

        edge = Edge(EdgePoint(source, source_field), EdgePoint(destination, destination_field))
        check_edge(self, edge)
        if (self.node(destination).type, destination_field) not in MULTI_INPUTS:
            for e in self.edges:
                if e.destination == edge.destination:
                    raise DuplicateInputError(
                        destination, destination_field, [e.source.node_id, source]
                    )
        if edge in self.edges:
            return edge
        # a new edge s -> d closes a cycle only through a path out of d: skip the full
        # check while d has no outgoing edges (the usual case while a graph is built)
        leaves_d = any(e.source.node_id == destination for e in self.edges)
        self.edges.append(edge)
        from invoke_nb.graph.validate import find_cycle

        cycle = find_cycle(self) if leaves_d else []
        if cycle:
            self.edges.pop()
            from invoke_nb.graph.errors import CycleError

            raise CycleError(cycle)
        self._version += 1
        return edge

    def disconnect(
        self, source: str, source_field: str, destination: str, destination_field: str
    ) -> None:
        """Remove an edge; missing edges are ignored."""
        edge = Edge(EdgePoint(source, source_field), EdgePoint(destination, destination_field))
        self.edges = [e for e in self.edges if e != edge]
        self._version += 1

    def remove(self, node_id: str) -> None:
        """Remove a node and its edges."""
        self.node(node_id)
        del self.nodes[node_id]
        self.edges = [
            e for e in self.edges if node_id not in (e.source.node_id, e.destination.node_id)
        ]
        self._version += 1

    # -- queries ----------------------------------------------------------------------
    def node(self, node_id: str) -> NodeSpec:
        """The node spec with this id (:class:`NodeNotFoundError` otherwise)."""
        try:
            return self.nodes[node_id]
        except (KeyError, TypeError):
            raise NodeNotFoundError(node_id) from None

    def incoming(self, node_id: str) -> list[Edge]:
        return [e for e in self.edges if e.destination.node_id == node_id]

    def outgoing(self, node_id: str) -> list[Edge]:
        return [e for e in self.edges if e.source.node_id == node_id]

    def validate(self) -> None:
        """Check the whole graph; raises the first :class:`GraphError` found."""
        from invoke_nb.graph.validate import validate_graph

        validate_graph(self)

    def copy(self) -> Graph:
        """A deep copy (values are copied too)."""
        return copy.deepcopy(self)

    def __len__(self) -> int:
        return len(self.nodes)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.nodes

    def __repr__(self) -> str:
        return f"<Graph {len(self.nodes)} nodes, {len(self.edges)} edges>"

    # -- JSON -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """InvokeAI's graph shape, JSON-ready."""
        nodes = {}
        for nid, spec in self.nodes.items():
            cls = spec.cls
            d: dict[str, Any] = {"id": nid, "type": spec.type}
            for name, value in spec.values.items():
                d[name] = dump_value(cls, name, value)
            d["is_intermediate"] = spec.is_intermediate
            d["use_cache"] = spec.use_cache
            nodes[nid] = d
        return {"id": self.id, "nodes": nodes, "edges": [e.to_json() for e in self.edges]}

    def to_json(self, indent: int | None = None) -> str:
        """The graph as a JSON string (see :meth:`to_dict`)."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Any) -> Graph:
        """Build a graph from :meth:`to_dict` output (or InvokeAI's ``invokeai_graph``)."""
        if not isinstance(data, dict):
            raise WorkflowError(f"a graph must be a JSON object, got {type(data).__name__}")
        from invoke_nb.graph.legacy_ids import upgrade_graph

        data = upgrade_graph(data)  # InvokeAI 3.x-5.x processor ids -> their successors
        nodes = data.get("nodes", {})
        edges = data.get("edges", [])
        if isinstance(nodes, list):
            nodes = {n.get("id") if isinstance(n, dict) else None: n for n in nodes}
        if not isinstance(nodes, dict) or not isinstance(edges, list):
            raise WorkflowError("graph 'nodes' must be an object and 'edges' a list")
        gid = data.get("id")
        g = cls(id=gid if isinstance(gid, str) and gid else None)
        missing = sorted(
            {
                n.get("type")
                for n in nodes.values()
                if isinstance(n, dict)
                and isinstance(n.get("type"), str)
                and not _registered(n["type"])
            }
        )
        if missing:
            from invoke_nb.graph.errors import UnsupportedNodeTypesError

            raise UnsupportedNodeTypesError(missing, "graph")
        for key, n in nodes.items():
            if not isinstance(n, dict):
                raise WorkflowError(f"node {key!r} must be an object", node_id=str(key))
            nid = n.get("id", key)
            ntype = n.get("type")
            if not isinstance(nid, str) or not isinstance(ntype, str):
                raise WorkflowError(f"node {key!r} needs string 'id' and 'type'", node_id=str(key))
            values = {k: v for k, v in n.items() if k not in ("id", "type")}
            g.add(ntype, id=nid, **values)
        for i, e in enumerate(edges):
            try:
                s, d = e["source"], e["destination"]
                args = (s["node_id"], s["field"], d["node_id"], d["field"])
            except (KeyError, TypeError):
                raise WorkflowError(
                    f"edge {i} must have source/destination with node_id and field"
                ) from None
            if not all(isinstance(a, str) for a in args):
                raise WorkflowError(f"edge {i}: node ids and fields must be strings")
            g.connect(*args)
        return g

    @classmethod
    def from_json(cls, text: str | bytes | dict[str, Any]) -> Graph:
        """Parse :meth:`to_json` output (a string, bytes or an already-parsed dict)."""
        from invoke_nb.graph.workflow import check_depth, loads_json

        if isinstance(text, dict):
            check_depth(text, "graph JSON")
            return cls.from_dict(text)
        if not isinstance(text, (str, bytes, bytearray)):
            raise WorkflowError(f"graph JSON does not parse: got {type(text).__name__}")
        return cls.from_dict(loads_json(text, "graph JSON"))

    def content_hash(self) -> str:
        """A hash of nodes, values and edges (ids included), stable across processes."""
        d = self.to_dict()
        d.pop("id", None)
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()


def _registered(type_id: str) -> bool:
    try:
        get_node_class(type_id)
    except KeyError:
        return False
    return True
