"""Graph validation: fields exist, types fit, no cycles, inputs present, iterate/collect sane.

Types are compared as descriptors (see ``invoke_nb.nodes.types``), with the item type of
``iterate`` and the collection type of ``collect`` inferred from what is connected to them,
as InvokeAI does.
"""

from __future__ import annotations

from collections import defaultdict, deque
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from invoke_nb.graph.errors import (
    ConnectionModeError,
    CycleError,
    DuplicateInputError,
    IterateCollectError,
    MissingInputError,
    NodeNotFoundError,
    TypeMismatchError,
    UnknownFieldError,
)
from invoke_nb.nodes.base import Input, input_mode
from invoke_nb.nodes.types import compatible, describe, type_descriptor

if TYPE_CHECKING:
    from invoke_nb.graph.model import Edge, Graph

__all__ = ["check_edge", "find_cycle", "output_type", "topological_order", "validate_graph"]

ANY = {"kind": "any"}


@lru_cache(maxsize=8192)
def _descriptor(cls: type, field: str, output: bool) -> dict[str, Any]:
    """The type descriptor of a class's input or output field, made once (validation reads
    it for every edge; callers here only read it)."""
    fields = cls.output_class.model_fields if output else cls.input_fields()  # type: ignore[attr-defined]
    return type_descriptor(fields[field].annotation)


def _input_type(g: Graph, node_id: str, field: str) -> dict[str, Any]:
    spec = g.node(node_id)
    fields = spec.cls.input_fields()
    if field not in fields:
        raise UnknownFieldError(node_id, spec.type, field, "input", fields)
    return _descriptor(spec.cls, field, False)


def output_type(
    g: Graph, node_id: str, field: str, _seen: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The type of an output, inferring ``iterate.item`` and ``collect.collection``."""
    spec = g.node(node_id)
    out_fields = spec.cls.output_class.model_fields
    if field not in out_fields:
        raise UnknownFieldError(node_id, spec.type, field, "output", out_fields)
    if node_id in _seen:
        return ANY
    seen = _seen | {node_id}
    if spec.type == "iterate" and field == "item":
        for e in g.incoming(node_id):
            if e.destination.field == "collection":
                src = output_type(g, e.source.node_id, e.source.field, seen)
                return src["item"] if src["kind"] == "list" else ANY
        return ANY
    if spec.type == "collect" and field == "collection":
        items = [
            output_type(g, e.source.node_id, e.source.field, seen)
            for e in g.incoming(node_id)
            if e.destination.field == "item"
        ]
        known = [t for t in items if t["kind"] != "any"]
        return {"kind": "list", "item": known[0] if known else ANY}
    return _descriptor(spec.cls, field, True)


def check_edge(g: Graph, edge: Edge) -> None:
    """Check that both ends exist and the types fit."""
    s, d = edge.source, edge.destination
    if s.node_id not in g.nodes:
        raise NodeNotFoundError(s.node_id, " (edge source)")
    if d.node_id not in g.nodes:
        raise NodeNotFoundError(d.node_id, " (edge destination)")
    if s.node_id == d.node_id:
        raise CycleError([s.node_id])
    dspec = g.node(d.node_id)
    dfields = dspec.cls.input_fields()
    if d.field not in dfields:
        raise UnknownFieldError(d.node_id, dspec.type, d.field, "input", dfields)
    if input_mode(dfields[d.field]) is Input.DIRECT:
        raise ConnectionModeError(
            f"node {d.node_id!r} ({dspec.type}) input {d.field!r} takes a value, not a connection",
            node_id=d.node_id,
            field=d.field,
        )
    src_t = output_type(g, s.node_id, s.field)
    dst_t = _input_type(g, d.node_id, d.field)
    if dspec.type == "collect" and d.field == "item":
        return
    if dspec.type == "iterate" and d.field == "collection":
        if src_t["kind"] not in ("list", "any"):
            raise IterateCollectError(
                f"iterate {d.node_id!r} needs a collection, but {s.node_id}.{s.field} gives "
                f"{describe(src_t)}",
                node_id=d.node_id,
                field=d.field,
            )
        return
    if not compatible(src_t, dst_t):
        raise TypeMismatchError(
            s.node_id, s.field, describe(src_t), d.node_id, d.field, describe(dst_t)
        )


def _adjacency(g: Graph) -> tuple[dict[str, list[str]], dict[str, int]]:
    succ: dict[str, list[str]] = defaultdict(list)
    indeg = dict.fromkeys(g.nodes, 0)
    for e in g.edges:
        if e.source.node_id in indeg and e.destination.node_id in indeg:
            succ[e.source.node_id].append(e.destination.node_id)
            indeg[e.destination.node_id] += 1
    return succ, indeg


def topological_order(g: Graph) -> list[str]:
    """Node ids in an order where every edge points forward (insertion order kept)."""
    succ, indeg = _adjacency(g)
    ready = deque(n for n in g.nodes if indeg[n] == 0)
    order: list[str] = []
    while ready:
        n = ready.popleft()
        order.append(n)
        for m in succ[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                ready.append(m)
    if len(order) != len(g.nodes):
        raise CycleError(n for n in g.nodes if indeg[n] > 0)
    return order


def find_cycle(g: Graph) -> list[str]:
    """The ids on a cycle, or an empty list."""
    try:
        topological_order(g)
    except CycleError as e:
        return e.node_ids
    return []


def validate_graph(g: Graph) -> None:
    """Run every check on ``g``; raises the first problem as a :class:`GraphError`."""
    for e in g.edges:
        check_edge(g, e)
    topological_order(g)
    by_input: dict[tuple[str, str], list[str]] = defaultdict(list)
    for e in g.edges:
        by_input[(e.destination.node_id, e.destination.field)].append(e.source.node_id)
    for (nid, field), sources in by_input.items():
        if len(sources) > 1 and (g.nodes[nid].type, field) != ("collect", "item"):
            raise DuplicateInputError(nid, field, sources)
    for nid, spec in g.nodes.items():
        fields = spec.cls.input_fields()
        for name, info in fields.items():
            connected = (nid, name) in by_input
            if info.is_required() and name not in spec.values and not connected:
                raise MissingInputError(nid, spec.type, name)
            if input_mode(info) is Input.CONNECTION and name in spec.values and connected:
                raise ConnectionModeError(
                    f"node {nid!r} input {name!r} has both a value and a connection",
                    node_id=nid,
                    field=name,
                )
        if spec.type == "collect":
            _check_collect(g, nid)
        elif (
            spec.type == "iterate"
            and (nid, "collection") not in by_input
            and not spec.values.get("collection")
        ):
            raise IterateCollectError(
                f"iterate {nid!r} has no collection: connect a list output to its 'collection'",
                node_id=nid,
                field="collection",
            )


def _check_collect(g: Graph, nid: str) -> None:
    item_edges = [e for e in g.incoming(nid) if e.destination.field == "item"]
    if not item_edges:
        raise IterateCollectError(
            f"collect {nid!r} has no inputs: connect outputs to its 'item'",
            node_id=nid,
            field="item",
        )
    types = [output_type(g, e.source.node_id, e.source.field) for e in item_edges]
    first = next((t for t in types if t["kind"] != "any"), None)
    if first is not None:
        for e, t in zip(item_edges, types, strict=True):
            if t["kind"] != "any" and not (compatible(t, first) and compatible(first, t)):
                raise IterateCollectError(
                    f"collect {nid!r} mixes item types: {describe(first)} and "
                    f"{describe(t)} (from {e.source.node_id}.{e.source.field})",
                    node_id=nid,
                    field="item",
                )
