"""The node API: typed pydantic nodes declared with a decorator, and their registry.

A node is a pydantic model whose fields are its inputs and whose ``invoke(ctx)`` returns a
typed output model. The decorator records the type id, title, category, tags and version
on the class and registers it, so a class defined in a notebook cell is usable at once.

The shapes follow InvokeAI's invocation API (type ids, field names, ``id``,
``is_intermediate`` and ``use_cache`` on every node) so its graphs and workflow files map
onto ours, but nothing here knows about storage or widgets: a node only sees ``ctx``.
"""

from __future__ import annotations

import enum
import re
import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo

if TYPE_CHECKING:
    from invoke_nb.nodes.context import Context

__all__ = [
    "Input",
    "InputField",
    "Node",
    "NodeRegistryWarning",
    "Output",
    "OutputField",
    "UIHint",
    "get_node_class",
    "get_output_class",
    "node",
    "node_schema",
    "node_types",
    "output",
    "registry_schema",
]

_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


class Input(enum.StrEnum):
    """How an input may be given: a literal value, an edge, or either."""

    DIRECT = "direct"
    CONNECTION = "connection"
    ANY = "any"


class UIHint(enum.StrEnum):
    """Hints for the editor's generated field widgets."""

    TEXTAREA = "textarea"
    SLIDER = "slider"
    MODEL = "model"
    IMAGE = "image"
    HIDDEN = "hidden"
    SCHEDULER = "scheduler"
    COLOR = "color"


class NodeRegistryWarning(UserWarning):
    """A node or output type id was registered again and replaced the earlier class."""


def InputField(
    default: Any = ...,
    *,
    description: str = "",
    title: str | None = None,
    input: Input = Input.ANY,
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
    lt: float | None = None,
    multiple_of: float | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    ui_hint: UIHint | None = None,
    ui_order: int | None = None,
    ui_model_base: Sequence[str] | None = None,
    ui_model_type: Sequence[str] | None = None,
    ui_model_variant: Sequence[str] | None = None,
    ui_model_format: Sequence[str] | None = None,
    default_factory: Callable[[], Any] | None = None,
    extension: bool = False,
) -> Any:
    """Declare a node input: a pydantic field plus the connection mode and UI hints.

    Choices are expressed with ``Literal[...]`` annotations; limits with ``ge``/``le``.
    ``extension=True`` marks a field InvokeAI's node of the same id does not have; workflow
    export leaves it out while it holds its default, so InvokeAI still opens the file.
    ``ui_model_base``/``_type``/``_variant``/``_format`` say which installed models a model
    field accepts (InvokeAI's strings, as its UI hints): the node knows, so the editor's
    model picker and graph validation ask the field instead of keeping their own table.
    """
    extra: dict[str, Any] = {"field_kind": "input", "input": input.value}
    if extension:
        extra["extension"] = True
    if ui_hint is not None:
        extra["ui_hint"] = ui_hint.value
    if ui_order is not None:
        extra["ui_order"] = ui_order
    for key, allowed in (
        ("ui_model_base", ui_model_base),
        ("ui_model_type", ui_model_type),
        ("ui_model_variant", ui_model_variant),
        ("ui_model_format", ui_model_format),
    ):
        if allowed is not None:
            extra[key] = list(allowed)
    kwargs: dict[str, Any] = {
        "description": description,
        "title": title,
        "ge": ge,
        "le": le,
        "gt": gt,
        "lt": lt,
        "multiple_of": multiple_of,
        "min_length": min_length,
        "max_length": max_length,
        "json_schema_extra": extra,
    }
    if default_factory is not None:
        return Field(default_factory=default_factory, **kwargs)
    return Field(default, **kwargs)


def OutputField(*, description: str = "", title: str | None = None) -> Any:
    """Declare an output field of a node's output class."""
    return Field(
        ..., description=description, title=title, json_schema_extra={"field_kind": "output"}
    )


class Output(BaseModel):
    """Base of node output classes. Values are small: big objects travel as references."""

    model_config = ConfigDict(arbitrary_types_allowed=True, validate_assignment=False)

    output_type: ClassVar[str] = ""


class Node(BaseModel):
    """Base class of every node. Subclass it, decorate with :func:`node`, write ``invoke``."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, validate_default=False)

    type_id: ClassVar[str] = ""
    title: ClassVar[str] = ""
    category: ClassVar[str] = ""
    tags: ClassVar[tuple[str, ...]] = ()
    version: ClassVar[str] = "1.0.0"
    deterministic: ClassVar[bool] = True
    output_class: ClassVar[type[Output]]

    id: str = Field(default="", description="The node id within its graph.")
    is_intermediate: bool = Field(
        default=False, description="Whether produced images are intermediates (not in gallery)."
    )
    use_cache: bool = Field(default=True, description="Whether the output cache may serve it.")

    def invoke(self, ctx: Context) -> Output:
        """Do the node's work. Subclasses must override this."""
        raise NotImplementedError(f"node type {self.type_id!r} does not implement invoke()")

    @classmethod
    def input_fields(cls) -> dict[str, FieldInfo]:
        """The node's own input fields (not ``id``/``is_intermediate``/``use_cache``).

        Graph building and validation ask for them on every edge and value, so the dict is
        made once per class (and again if pydantic rebuilds the class's fields): read it,
        do not change it."""
        fields = cls.model_fields
        hit = _INPUT_FIELDS.get(cls)
        if hit is not None and hit[0] is fields:
            return hit[1]
        own = {k: v for k, v in fields.items() if k not in _BASE_FIELDS}
        _INPUT_FIELDS[cls] = (fields, own)
        return own


_BASE_FIELDS = frozenset({"id", "is_intermediate", "use_cache"})
# class -> (its model_fields, its input fields); weak, so redefined notebook nodes go away
_INPUT_FIELDS: weakref.WeakKeyDictionary[type, tuple[Any, dict[str, FieldInfo]]] = (
    weakref.WeakKeyDictionary()
)

_NODES: dict[str, type[Node]] = {}
_OUTPUTS: dict[str, type[Output]] = {}

N = TypeVar("N", bound=type[Node])
O = TypeVar("O", bound=type[Output])  # noqa: E741


def output(output_type: str) -> Callable[[O], O]:
    """Register an output class under a type id (InvokeAI's ``invocation_output``)."""

    def wrap(cls: O) -> O:
        if not (isinstance(cls, type) and issubclass(cls, Output)):
            raise TypeError(f"@output({output_type!r}) must decorate an Output subclass")
        cls.output_type = output_type
        if output_type in _OUTPUTS and _OUTPUTS[output_type] is not cls:
            warnings.warn(
                f"output type {output_type!r} registered again; the new class replaces the old",
                NodeRegistryWarning,
                stacklevel=2,
            )
        _OUTPUTS[output_type] = cls
        return cls

    return wrap


def node(
    type_id: str,
    *,
    title: str | None = None,
    category: str = "misc",
    tags: list[str] | tuple[str, ...] = (),
    version: str = "1.0.0",
    deterministic: bool = True,
) -> Callable[[N], N]:
    """Register a node class under ``type_id``.

    ``deterministic=False`` marks nodes whose output must never come from the cache
    (random numbers, reads of changing files). Registering an id again replaces the earlier
    class with a :class:`NodeRegistryWarning`, so re-running a notebook cell just works.
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", type_id):
        raise ValueError(f"invalid node type id {type_id!r}")
    if not _SEMVER.match(version):
        raise ValueError(f"node {type_id!r}: version {version!r} is not semver (x.y.z)")

    def wrap(cls: N) -> N:
        if not (isinstance(cls, type) and issubclass(cls, Node)):
            raise TypeError(f"@node({type_id!r}) must decorate a Node subclass")
        out = cls.__dict__.get("invoke")
        ret = getattr(out, "__annotations__", {}).get("return") if out else None
        out_cls = _resolve_output_annotation(cls, ret)
        if out_cls is None:
            raise TypeError(
                f"node {type_id!r}: invoke() must be annotated to return an Output subclass"
            )
        cls.type_id = type_id
        cls.title = title or cls.__name__
        cls.category = category
        cls.tags = tuple(tags)
        cls.version = version
        cls.deterministic = deterministic
        cls.output_class = out_cls
        for fname in cls.input_fields():
            if fname in ("type",):
                raise TypeError(f"node {type_id!r}: field name {fname!r} is reserved")
        if type_id in _NODES and _NODES[type_id] is not cls:
            warnings.warn(
                f"node type {type_id!r} registered again; the new class replaces the old",
                NodeRegistryWarning,
                stacklevel=2,
            )
        _NODES[type_id] = cls
        return cls

    return wrap


def _resolve_output_annotation(cls: type, ret: Any) -> type[Output] | None:
    if isinstance(ret, type) and issubclass(ret, Output):
        return ret
    if isinstance(ret, str):
        import sys

        module = sys.modules.get(cls.__module__)
        ns = dict(vars(module)) if module else {}
        ns.update({c.__name__: c for c in _OUTPUTS.values()})
        try:
            val = eval(ret, ns)  # annotations are code the class author wrote
        except Exception:
            return None
        if isinstance(val, type) and issubclass(val, Output):
            return val
    return None


def get_node_class(type_id: str) -> type[Node]:
    """The registered class for ``type_id``; ``KeyError`` when unknown."""
    return _NODES[type_id]


def get_output_class(output_type: str) -> type[Output]:
    """The registered output class for ``output_type``; ``KeyError`` when unknown."""
    return _OUTPUTS[output_type]


def node_types() -> dict[str, type[Node]]:
    """A snapshot of the registry: type id -> class."""
    return dict(_NODES)


def field_extra(info: FieldInfo) -> dict[str, Any]:
    """Our ``json_schema_extra`` of a field (connection mode, UI hints)."""
    extra = info.json_schema_extra
    return dict(extra) if isinstance(extra, dict) else {}


def model_filter(info: FieldInfo) -> dict[str, list[str]] | None:
    """Which models a model field accepts: ``{"base": [...], "type": [...], ...}`` from its
    ``ui_model_*`` hints, or ``None`` for a field without any."""
    extra = field_extra(info)
    found = {
        key: list(extra[f"ui_model_{key}"])
        for key in ("base", "type", "variant", "format")
        if f"ui_model_{key}" in extra
    }
    return found or None


class NodeInputError(ValueError):
    """A node's input does not fit it (a model of another family, a size the model refuses,
    a missing part). Every family's input errors derive from it, so callers catch one class
    and read ``node_id``, ``node_type`` and ``field`` instead of parsing the message."""

    def __init__(self, node_id: str, node_type: str, field: str, problem: str) -> None:
        super().__init__(f"node {node_id!r} ({node_type}) field {field!r}: {problem}")
        self.node_id, self.node_type, self.field, self.problem = node_id, node_type, field, problem


class ModelFieldError(NodeInputError):
    """A model field names an installed model of a type or base the field does not take."""


def check_model_fields(node: Node, models: Any) -> None:
    """Refuse, naming node and field, a model whose record does not fit the field's
    ``ui_model_*`` hints (a FLUX LoRA on the SD1.5 LoRA loader, a VAE as a VLLM ...).

    ``models`` is the host's model service (``ctx.models``); without one, or for a model it
    cannot find, nothing is checked here: the node reports the missing model itself.
    """
    if models is None:
        return
    for name, info in type(node).input_fields().items():
        want = model_filter(info)
        value = getattr(node, name, None)
        if not want or value is None:
            continue
        for ident in value if isinstance(value, (list, tuple)) else [value]:
            if not hasattr(ident, "key"):
                continue
            try:
                rec = models.record(ident)
            except Exception:
                continue
            for key, allowed in want.items():
                actual = getattr(rec, key, None)
                if key == "base" and actual in ("any", "unknown"):
                    continue  # a model for every base, or one the probe could not place
                if actual not in allowed:
                    raise ModelFieldError(
                        node.id,
                        node.type_id,
                        name,
                        f"model {rec.name!r} has {key} {actual!r}; this field takes {key} "
                        f"{' or '.join(map(repr, allowed))}",
                    )


def input_mode(info: FieldInfo) -> Input:
    """How a field may be given (direct, connection or any); remembered per field object
    (validation asks for every field of every node)."""
    hit = _INPUT_MODES.get(id(info))
    if hit is not None and hit[0] is info:
        return hit[1]
    mode = Input(field_extra(info).get("input", Input.ANY.value))
    _INPUT_MODES[id(info)] = (info, mode)
    return mode


_INPUT_MODES: dict[int, tuple[FieldInfo, Input]] = {}


def node_schema(type_id: str) -> dict[str, Any]:
    """JSON schema of one node type for the editor: fields, types, defaults, limits, hints."""
    cls = get_node_class(type_id)
    from invoke_nb.nodes.types import type_descriptor

    inputs = {}
    model_schema = cls.model_json_schema(mode="validation")
    props = model_schema.get("properties", {})
    required = set(model_schema.get("required", []))
    for order, (name, info) in enumerate(cls.input_fields().items()):
        extra = field_extra(info)
        inputs[name] = {
            "name": name,
            "title": info.title or name.replace("_", " ").title(),
            "description": info.description or "",
            "type": type_descriptor(info.annotation),
            "input": extra.get("input", "any"),
            "ui_hint": extra.get("ui_hint"),
            "ui_order": extra.get("ui_order", order),
            "ui_model": model_filter(info),
            "required": name in required,
            "schema": props.get(name, {}),
        }
    outputs = {}
    for name, info in cls.output_class.model_fields.items():
        outputs[name] = {
            "name": name,
            "title": info.title or name.replace("_", " ").title(),
            "description": info.description or "",
            "type": type_descriptor(info.annotation),
        }
    return {
        "type": cls.type_id,
        "title": cls.title,
        "category": cls.category,
        "tags": list(cls.tags),
        "version": cls.version,
        "deterministic": cls.deterministic,
        "description": (cls.__doc__ or "").strip(),
        "output_type": cls.output_class.output_type,
        "inputs": inputs,
        "outputs": outputs,
        "definitions": model_schema.get("$defs", {}),
    }


def registry_schema() -> dict[str, dict[str, Any]]:
    """Schemas of every registered node type, keyed by type id."""
    return {t: node_schema(t) for t in sorted(_NODES)}
