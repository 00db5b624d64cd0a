"""Graph errors: one base class, one subclass per kind of mistake, each naming what is wrong.

Loaders and the validator raise only these (the property tests hold them to it), so a
caller can catch ``GraphError`` and show ``str(e)`` to a person.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "ConnectionModeError",
    "CycleError",
    "DuplicateInputError",
    "DuplicateNodeIdError",
    "FieldValueError",
    "GraphError",
    "IterateCollectError",
    "MissingInputError",
    "NodeError",
    "NodeNotFoundError",
    "TypeMismatchError",
    "UnknownFieldError",
    "UnknownNodeTypeError",
    "UnsupportedNodeTypesError",
    "WorkflowError",
]


class GraphError(ValueError):
    """Base of every graph and workflow error. ``node_id`` and ``field`` name the culprit."""

    def __init__(self, message: str, *, node_id: str | None = None, field: str | None = None):
        super().__init__(message)
        self.node_id = node_id
        self.field = field


class UnknownNodeTypeError(GraphError):
    """A node's type id is not registered."""

    def __init__(self, type_id: str, node_id: str | None = None):
        where = f" (node {node_id!r})" if node_id else ""
        super().__init__(f"unknown node type {type_id!r}{where}", node_id=node_id)
        self.type_id = type_id


class NodeNotFoundError(GraphError):
    """An edge or lookup names a node id the graph does not have."""

    def __init__(self, node_id: str, context: str = ""):
        super().__init__(f"no node with id {node_id!r}{context}", node_id=node_id)


class DuplicateNodeIdError(GraphError):
    """Two nodes share an id."""

    def __init__(self, node_id: str):
        super().__init__(f"node id {node_id!r} is already in the graph", node_id=node_id)


class UnknownFieldError(GraphError):
    """A node type has no input (or output) field of that name."""

    def __init__(self, node_id: str, type_id: str, field: str, side: str, known: Iterable[str]):
        names = ", ".join(sorted(known)) or "none"
        super().__init__(
            f"node {node_id!r} ({type_id}) has no {side} field {field!r}; {side}s: {names}",
            node_id=node_id,
            field=field,
        )
        self.side = side


class FieldValueError(GraphError):
    """A literal value does not fit its field (type, limits, choices)."""

    def __init__(self, node_id: str, type_id: str, field: str, problem: str):
        super().__init__(
            f"node {node_id!r} ({type_id}) field {field!r}: {problem}", node_id=node_id, field=field
        )


class ConnectionModeError(GraphError):
    """A field got an edge where it only takes a value, or a value where it needs an edge."""


class TypeMismatchError(GraphError):
    """An edge joins an output to an input of an incompatible type."""

    def __init__(
        self, src: str, src_field: str, src_type: str, dst: str, dst_field: str, dst_type: str
    ):
        super().__init__(
            f"cannot connect {src}.{src_field} ({src_type}) to {dst}.{dst_field} ({dst_type}): "
            "types are not compatible",
            node_id=dst,
            field=dst_field,
        )
        self.source = (src, src_field)
        self.destination = (dst, dst_field)


class CycleError(GraphError):
    """The edges form a cycle."""

    def __init__(self, node_ids: Iterable[str]):
        ids = sorted(node_ids)
        super().__init__(
            f"the graph has a cycle through nodes {ids}", node_id=ids[0] if ids else None
        )
        self.node_ids = ids


class DuplicateInputError(GraphError):
    """Two edges feed one input (only ``collect.item`` takes many)."""

    def __init__(self, node_id: str, field: str, sources: Iterable[str]):
        super().__init__(
            f"input {node_id}.{field} has more than one incoming edge (from {sorted(sources)})",
            node_id=node_id,
            field=field,
        )


class MissingInputError(GraphError):
    """A required input has neither a value nor an edge."""

    def __init__(self, node_id: str, type_id: str, field: str):
        super().__init__(
            f"node {node_id!r} ({type_id}) needs input {field!r}: give a value or connect an edge",
            node_id=node_id,
            field=field,
        )


class IterateCollectError(GraphError):
    """``iterate``/``collect`` used in a way that cannot run (wrong inputs, mixed item types)."""


class WorkflowError(GraphError):
    """A workflow file is malformed (not JSON, wrong shape, unknown version)."""


class UnsupportedNodeTypesError(WorkflowError):
    """A workflow uses node types this installation does not have."""

    def __init__(self, missing: Iterable[str], source: str = "workflow"):
        self.missing = sorted(set(missing))
        super().__init__(
            f"{source} uses node types that are not available here: {', '.join(self.missing)}"
        )


class NodeError(RuntimeError):
    """A node raised while running. Names the node; the original is ``__cause__``.

    ``traceback`` keeps the formatted original traceback for display in widgets.
    """

    def __init__(self, node_id: str, node_type: str, original: BaseException, tb: str = ""):
        super().__init__(
            f"node {node_id!r} ({node_type}) failed: {type(original).__name__}: {original}"
        )
        self.node_id = node_id
        self.node_type = node_type
        self.original = original
        self.traceback = tb
