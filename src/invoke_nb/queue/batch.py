"""Batches with InvokeAI's semantics: data is a list of groups; inside a group the item lists
are zipped (equal lengths required); groups combine by cartesian product; the whole is
repeated ``runs`` times. Every item addresses a ``(node id, field)`` of the graph.

Batch nodes in the graph (``integer_batch``, ``image_batch``, ... fed by their generators)
become batch data here, as InvokeAI's editor turns them into its batch before enqueueing:
:func:`split_batch_nodes` takes them out of the graph and gives one datum per outgoing edge.

Notebook users may also pass a pandas DataFrame (each row is one zipped item, columns named
``"node_id.field"``) or a dict ``{"node_id.field": [values...]}`` for a single group.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from invoke_nb.graph.errors import GraphError
from invoke_nb.graph.model import Graph

__all__ = [
    "Batch",
    "BatchDatum",
    "BatchError",
    "FieldValue",
    "apply_field_values",
    "expand_batch",
    "seed_batch",
    "split_batch_nodes",
]


class BatchError(GraphError):
    """A batch does not fit its graph (unknown node or field, unequal zip lengths, ...)."""


@dataclass(frozen=True)
class BatchDatum:
    """One column of a batch group: values for ``node_id.field``."""

    node_id: str
    field: str
    items: tuple[Any, ...]


@dataclass(frozen=True)
class FieldValue:
    """One value set on one field for one queue item."""

    node_id: str
    field: str
    value: Any

    def to_json(self) -> dict[str, Any]:
        # InvokeAI's names (node_path, field_name) so queue rows read the same in both tools.
        return {"node_path": self.node_id, "field_name": self.field, "value": self.value}


def _split_key(key: Any) -> tuple[str, str]:
    if isinstance(key, tuple) and len(key) == 2:
        return str(key[0]), str(key[1])
    if isinstance(key, str) and "." in key:
        node_id, _, field = key.rpartition(".")
        return node_id, field
    raise BatchError(f"batch key {key!r} must be 'node_id.field' or a (node_id, field) pair")


def _datum(obj: Any) -> BatchDatum:
    if isinstance(obj, BatchDatum):
        return obj
    if isinstance(obj, dict):
        node_id = obj.get("node_id", obj.get("node_path"))
        field = obj.get("field", obj.get("field_name"))
        items = obj.get("items")
        if (
            not isinstance(node_id, str)
            or not isinstance(field, str)
            or not isinstance(items, (list, tuple))
        ):
            raise BatchError(
                f"batch datum needs node_id/node_path, field/field_name and an items list: {obj!r}"
            )
        return BatchDatum(node_id, field, tuple(items))
    raise BatchError(f"cannot read a batch datum from {type(obj).__name__}")


def _group(obj: Any) -> list[BatchDatum]:
    if _is_dataframe(obj):
        return [BatchDatum(*_split_key(col), tuple(obj[col].tolist())) for col in obj.columns]
    if isinstance(obj, dict) and not {"items"} <= set(obj):
        return [BatchDatum(*_split_key(k), tuple(v)) for k, v in obj.items()]
    if isinstance(obj, (list, tuple)):
        return [_datum(d) for d in obj]
    return [_datum(obj)]


def _is_dataframe(obj: Any) -> bool:
    return type(obj).__name__ == "DataFrame" and hasattr(obj, "columns")


@dataclass
class Batch:
    """A batch: ``data`` groups (zipped inside, product across) times ``runs``."""

    data: list[list[BatchDatum]]
    runs: int = 1

    @classmethod
    def parse(cls, data: Any, runs: int = 1) -> Batch:
        """Build from groups, a dict, a DataFrame, or ``None`` (just ``runs`` copies)."""
        if not isinstance(runs, int) or isinstance(runs, bool) or runs < 1:
            raise BatchError(f"runs must be a positive integer, got {runs!r}")
        if data is None:
            return cls([], runs)
        if isinstance(data, Batch):
            return cls(data.data, runs * data.runs)
        if _is_dataframe(data) or isinstance(data, dict):
            return cls([_group(data)], runs)
        if not isinstance(data, (list, tuple)):
            raise BatchError(
                f"batch data must be a list of groups, a dict or a DataFrame, not {type(data).__name__}"
            )
        return cls([_group(g) for g in data], runs)

    def validate(self, graph: Graph) -> None:
        """Check node ids, fields, values and zip lengths against ``graph``."""
        from invoke_nb.graph.model import validate_value

        seen: set[tuple[str, str]] = set()
        for gi, group in enumerate(self.data):
            if not group:
                raise BatchError(f"batch group {gi} is empty")
            lengths = {len(d.items) for d in group}
            if len(lengths) > 1:
                detail = ", ".join(f"{d.node_id}.{d.field}: {len(d.items)}" for d in group)
                raise BatchError(f"batch group {gi} zips lists of unequal lengths ({detail})")
            if 0 in lengths:
                raise BatchError(f"batch group {gi} has no items")
            for d in group:
                if (d.node_id, d.field) in seen:
                    raise BatchError(
                        f"batch sets {d.node_id}.{d.field} twice", node_id=d.node_id, field=d.field
                    )
                seen.add((d.node_id, d.field))
                spec = graph.node(d.node_id)
                fields = spec.cls.input_fields()
                if d.field not in fields:
                    from invoke_nb.graph.errors import UnknownFieldError

                    raise UnknownFieldError(d.node_id, spec.type, d.field, "input", fields)
                feeding = [e for e in graph.incoming(d.node_id) if e.destination.field == d.field]
                if feeding:
                    src = feeding[0].source
                    raise BatchError(
                        f"batch sets {d.node_id}.{d.field}, but an edge from "
                        f"{src.node_id}.{src.field} feeds it; batch the source "
                        f"('{src.node_id}.value' for a primitive node) instead",
                        node_id=d.node_id,
                        field=d.field,
                    )
                for v in d.items:
                    validate_value(spec.cls, d.node_id, d.field, v)

    def __len__(self) -> int:
        n = self.runs
        for group in self.data:
            n *= len(group[0].items)
        return n


def expand_batch(batch: Batch) -> list[list[FieldValue]]:
    """Field values for each queue item, in InvokeAI's order (runs outermost)."""
    per_group = []
    for group in batch.data:
        n = len(group[0].items)
        per_group.append(
            [[FieldValue(d.node_id, d.field, d.items[i]) for d in group] for i in range(n)]
        )
    combos = [list(itertools.chain.from_iterable(c)) for c in itertools.product(*per_group)]
    return [list(c) for _ in range(batch.runs) for c in combos]


def apply_field_values(graph: Graph, values: list[FieldValue] | list[dict[str, Any]]) -> Graph:
    """A copy of ``graph`` with the batch values set."""
    g = graph.copy()
    for v in values:
        if isinstance(v, dict):
            v = FieldValue(v["node_path"], v["field_name"], v["value"])
        g.set(v.node_id, **{v.field: v.value})
    return g


def seed_batch(graph: Graph, runs: int, *, rng: Any = None) -> list[dict[str, list[int]]] | None:
    """A batch giving each of ``runs`` items its own random seed (InvokeAI's iterations with
    a random seed), or ``None`` when the graph has no seed to vary.

    The seed of a ``noise`` node is varied where it comes from: the ``integer`` node feeding
    it (standard graphs), else the noise node's own literal. Seeds fed by other nodes
    (``rand_int``...) already vary and are left alone.
    """
    import random

    rng = rng or random.Random()
    targets: list[str] = []
    for nid, spec in graph.nodes.items():
        if spec.type != "noise":
            continue
        feeding = [e for e in graph.incoming(nid) if e.destination.field == "seed"]
        if not feeding:
            targets.append(f"{nid}.seed")
        elif graph.nodes[feeding[0].source.node_id].type == "integer":
            targets.append(f"{feeding[0].source.node_id}.value")
    targets = list(dict.fromkeys(targets))
    if not targets:
        return None
    seeds = [rng.randrange(0, 2**32) for _ in range(runs)]
    return [{t: seeds for t in targets}]


def split_batch_nodes(
    graph: Graph, board_images: Callable[[str, str], list[str]] | None = None
) -> tuple[Graph, list[list[BatchDatum]]]:
    """The graph without its batch and generator nodes, and the batch groups they stand for.

    Each batch node gives its values (its own list, or what the generator feeding it
    describes) to every field its output feeds. Batch nodes of one ``batch_group_id`` form
    one zipped group (equal lengths required); each ungrouped node is a group of its own, so
    groups multiply. The fields keep the first value as a placeholder so the graph still
    validates; every queue item sets its own.
    """
    from invoke_nb.nodes.batch import BATCH_TYPES, GENERATOR_TYPES, resolve_generator

    batch_ids = [nid for nid, s in graph.nodes.items() if s.type in BATCH_TYPES]
    if not batch_ids:
        return graph, []
    g = graph.copy()
    # InvokeAI's order: groups by first appearance; an ungrouped node is a group by itself
    by_group: dict[str, list[tuple[str, int, list[BatchDatum]]]] = {}
    for nid in batch_ids:
        spec = g.nodes[nid]
        list_field, out_field = BATCH_TYPES[spec.type]
        feeding = [e for e in g.incoming(nid) if e.destination.field == list_field]
        if feeding:
            gen = g.nodes[feeding[0].source.node_id]
            if gen.type not in GENERATOR_TYPES or "generator" not in gen.values:
                raise BatchError(
                    f"batch node {nid!r}: {list_field!r} must come from a generator node "
                    f"with a generator set, not {gen.id!r} ({gen.type})",
                    node_id=nid,
                    field=list_field,
                )
            items = resolve_generator(gen.type, gen.values["generator"], board_images)
        else:
            items = list(spec.values.get(list_field) or [])
        # queue rows keep field values as JSON: references travel as their dicts
        items = [i.model_dump(mode="json") if hasattr(i, "model_dump") else i for i in items]
        if not items:
            raise BatchError(
                f"batch node {nid!r} ({spec.type}) has no values to batch over",
                node_id=nid,
                field=list_field,
            )
        data = [
            BatchDatum(e.destination.node_id, e.destination.field, tuple(items))
            for e in g.outgoing(nid)
            if e.source.field == out_field
        ]
        group = str(spec.values.get("batch_group_id", "None"))
        by_group.setdefault(group, []).append((nid, len(items), data))
    groups: list[list[BatchDatum]] = []
    for group, members in by_group.items():
        if group == "None":
            groups.extend(data for _, _, data in members if data)
            continue
        if len({n for _, n, _ in members}) > 1:
            detail = ", ".join(f"{nid}: {n}" for nid, n, _ in members)
            raise BatchError(f"batch nodes of {group!r} have lists of unequal lengths ({detail})")
        zipped = [d for _, _, data in members for d in data]
        if zipped:
            groups.append(zipped)
    for nid in [
        n for n, s in g.nodes.items() if s.type in BATCH_TYPES or s.type in GENERATOR_TYPES
    ]:
        g.remove(nid)
    for group in groups:
        for d in group:
            g.set(d.node_id, **{d.field: d.items[0]})
    return g, groups
