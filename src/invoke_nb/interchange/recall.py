"""Recall: the graph that made an image, with its models found here, ready to re-run.

Sources, best first: the ``invokeai_graph`` chunk (the exact graph); else the
``invokeai_metadata`` chunk or older InvokeAI 2.x/3.x metadata (``sd-metadata``, ``Dream``),
from which the standard txt2img graph is rebuilt (prompt, seed, size, steps, cfg, scheduler,
model). Model references are resolved by key, then hash, then name and base; a model that is
not installed gives an error naming it.

InvokeAI writes its session graph with every field of every node: inputs fed by an edge
appear as ``null`` (or a stale literal such as ``"prompt": ""``), and unset optional inputs
as ``null``. :func:`normalize_graph` reduces such a graph to what our nodes take: connected
inputs and nulls our fields do not accept are dropped (ours use their defaults); fields our
nodes do not have (a newer InvokeAI, a custom node pack) are dropped with a
:class:`RecallWarning` naming node, field and value; unknown node types raise
:class:`RecallError` listing them all.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from invoke_nb.catalog.pngchunks import read_text_chunks
from invoke_nb.graph.errors import FieldValueError, UnsupportedNodeTypesError
from invoke_nb.graph.model import Graph, validate_value
from invoke_nb.interchange.pngmeta import extract
from invoke_nb.nodes.base import get_node_class
from invoke_nb.nodes.types import ModelIdentifierField

if TYPE_CHECKING:
    from invoke_nb.studio import Studio

__all__ = [
    "LEGACY_SAMPLERS",
    "RecallError",
    "RecallWarning",
    "normalize_graph",
    "recall_graph",
    "set_seed",
]


class RecallError(ValueError):
    """The image carries nothing to rebuild a graph from, or names a missing model/node."""


class RecallWarning(UserWarning):
    """A field of a recalled graph was dropped because invoke-nb's node does not have it."""


# InvokeAI 2.x sampler names (sd-metadata "sampler", Dream "-A") -> scheduler names now.
LEGACY_SAMPLERS: dict[str, str] = {
    "ddim": "ddim",
    "plms": "pndm",
    "k_lms": "lms",
    "k_dpm_2": "kdpm_2",
    "k_dpm_2_a": "kdpm_2_a",
    "k_dpmpp_2": "dpmpp_2m",
    "k_dpmpp_2_a": "dpmpp_2s",
    "k_euler": "euler",
    "k_euler_a": "euler_a",
    "k_heun": "heun",
}

_SILENT_TYPES = {"core_metadata", "metadata", "metadata_item", "merge_metadata"}


def _chunks(studio: Studio, image: Any) -> tuple[dict[str, Any] | None, dict[str, Any] | None, str]:
    name = getattr(image, "image_name", None)
    if isinstance(name, str):
        cat = studio.catalog.images
        return cat.get_graph(name), cat.get_metadata(name), name
    if isinstance(image, (str, Path)):
        try:
            pil = Image.open(Path(image).expanduser())
        except (OSError, ValueError) as e:
            raise RecallError(f"cannot open image {image}: {e}") from None
        label = str(image)
    elif hasattr(image, "read"):
        try:
            pil = Image.open(image)  # type: ignore[arg-type]
        except (OSError, ValueError) as e:
            raise RecallError(f"cannot open image file {getattr(image, 'name', '')}: {e}") from None
        label = getattr(image, "name", "image file")
    elif isinstance(image, Image.Image):
        pil, label = image, "PIL image"
    else:
        raise RecallError(
            f"recall takes a catalog image, a PNG path or a file, not {type(image).__name__}"
        )
    found = extract(read_text_chunks(pil))
    return found.graph if isinstance(found.graph, dict) else None, found.metadata, label


def normalize_graph(data: dict[str, Any], label: str = "graph") -> dict[str, Any]:
    """InvokeAI's session graph reduced to what our nodes take (see the module docstring).

    Unknown node types raise :class:`RecallError` listing them all; dropped fields that held
    a value are reported with a :class:`RecallWarning`.
    """
    from invoke_nb.graph.legacy_ids import upgrade_graph

    data = upgrade_graph(data)  # InvokeAI 3.x-5.x processor ids -> their successors
    nodes = data.get("nodes")
    edges = data.get("edges")
    if isinstance(nodes, list):
        nodes = {n.get("id"): n for n in nodes if isinstance(n, dict)}
    if not isinstance(nodes, dict) or not isinstance(edges, list):
        raise RecallError(f"{label}: invokeai_graph needs 'nodes' and an 'edges' list")
    fed = set()
    for e in edges:
        try:
            fed.add((e["destination"]["node_id"], e["destination"]["field"]))
        except (KeyError, TypeError):
            raise RecallError(f"{label}: malformed edge in invokeai_graph: {e!r:.200}") from None
    missing = sorted(
        {
            str(n.get("type"))
            for n in nodes.values()
            if isinstance(n, dict) and not _known(n.get("type"))
        }
    )
    if missing:
        raise RecallError(
            f"{label}: its graph uses node types invoke-nb does not have: {', '.join(missing)}"
        )
    out_nodes: dict[str, Any] = {}
    dropped: list[str] = []
    for key, n in nodes.items():
        nid, ntype = n.get("id", key), n["type"]
        cls = get_node_class(ntype)
        fields = cls.input_fields()
        clean: dict[str, Any] = {"id": nid, "type": ntype}
        for flag in ("is_intermediate", "use_cache"):
            if isinstance(n.get(flag), bool):
                clean[flag] = n[flag]
        for fname, value in n.items():
            if fname in ("id", "type", "is_intermediate", "use_cache") or (nid, fname) in fed:
                continue
            if fname not in fields:
                if value is not None and ntype not in _SILENT_TYPES:
                    dropped.append(f"{nid}.{fname}={value!r:.40}")
                continue
            if value is None:
                try:
                    validate_value(cls, nid, fname, None)
                except FieldValueError:
                    continue  # InvokeAI writes null for unset inputs; ours use the default
            clean[fname] = value
        out_nodes[nid] = clean
    if dropped:
        warnings.warn(
            f"{label}: fields invoke-nb's nodes do not have were ignored: {', '.join(dropped)}",
            RecallWarning,
            stacklevel=3,
        )
    return {"id": data.get("id"), "nodes": out_nodes, "edges": edges}


def _known(type_id: Any) -> bool:
    if not isinstance(type_id, str):
        return False
    try:
        get_node_class(type_id)
    except KeyError:
        return False
    return True


def _resolve_models(studio: Studio, g: Graph) -> None:
    for nid, spec in g.nodes.items():
        for fname, value in list(spec.values.items()):
            if isinstance(value, ModelIdentifierField):
                try:
                    rec = studio.models.find(value)
                except Exception as e:
                    raise RecallError(
                        f"node {nid!r} field {fname!r} needs model {value.name!r} "
                        f"({value.base}, {value.type}, {value.hash or 'no hash'}), "
                        f"which is not installed: {e}"
                    ) from None
                spec.values[fname] = value.model_copy(
                    update={"key": rec.key, "hash": rec.hash, "name": rec.name, "base": rec.base}
                )


def _model_ident(meta: dict[str, Any], fallback: Any, label: str) -> Any:
    """What the metadata says about its model, as a dict for ``ModelManager.find`` (only the
    facts it gives: a name alone must not be narrowed by a default base)."""
    model = meta.get("model")
    if isinstance(model, dict):
        # 4.x+: {key, hash, name, base, type}; 3.x: {model_name, base_model, model_type}
        fields = {
            "key": model.get("key"),
            "hash": model.get("hash"),
            "name": model.get("name", model.get("model_name")),
            "base": model.get("base", model.get("base_model")),
            "type": model.get("type", model.get("model_type")),
        }
        return {k: v for k, v in fields.items() if isinstance(v, str)}
    name = model if isinstance(model, str) else meta.get("model_name")
    if isinstance(name, str):
        return {"name": name}
    if fallback is not None:
        return {"name": fallback} if isinstance(fallback, str) else fallback
    raise RecallError(f"{label}: its metadata names no model; pass model= to recall it")


def _scheduler(meta: dict[str, Any], label: str) -> str:
    from invoke_nb.nodes.diffusion.schedulers import SCHEDULER_NAMES

    raw = meta.get("scheduler") or meta.get("sampler") or "euler"
    name = LEGACY_SAMPLERS.get(str(raw), str(raw))
    if name not in SCHEDULER_NAMES:
        raise RecallError(
            f"{label}: unknown sampler {raw!r}; known: {', '.join(SCHEDULER_NAMES)} "
            f"and InvokeAI 2.x's {', '.join(LEGACY_SAMPLERS)}"
        )
    return name


def _from_metadata(studio: Studio, meta: dict[str, Any], label: str, model: Any) -> Graph:
    from invoke_nb.graph import standard

    ident = _model_ident(meta, model, label)
    try:
        rec = studio.models.find(ident)
    except Exception as e:
        name = ident.get("name") if isinstance(ident, dict) else getattr(ident, "name", ident)
        raise RecallError(f"{label} was made with model {name!r}: {e}") from None
    prompt = meta.get("positive_prompt", meta.get("prompt"))
    if not isinstance(prompt, str):
        raise RecallError(f"{label}: its metadata has no prompt")
    missing = [k for k in ("seed", "width", "height", "steps") if meta.get(k) is None]
    if missing:
        raise RecallError(f"{label}: its metadata lacks {', '.join(missing)}")
    return standard.txt2img(
        rec,
        prompt,
        negative=str(meta.get("negative_prompt") or ""),
        width=int(meta["width"]),
        height=int(meta["height"]),
        steps=int(meta["steps"]),
        cfg_scale=float(meta.get("cfg_scale") or 7.5),
        scheduler=_scheduler(meta, label),
        seed=int(meta["seed"]),
        clip_skip=int(meta.get("clip_skip") or 0),
        cfg_rescale_multiplier=float(meta.get("cfg_rescale_multiplier") or 0.0),
    )


def recall_graph(studio: Studio, image: Any, *, model: Any = None) -> Graph:
    """See the module docstring; ``model`` stands in when old metadata names none."""
    graph_data, meta, label = _chunks(studio, image)
    if graph_data:
        try:
            g = Graph.from_dict(normalize_graph(graph_data, label))
        except UnsupportedNodeTypesError as e:
            raise RecallError(f"{label}: {e}") from None
    elif meta:
        g = _from_metadata(studio, meta, label, model)
    else:
        raise RecallError(f"{label} carries no invokeai_graph or generation metadata")
    _resolve_models(studio, g)
    return g


def set_seed(g: Graph, seed: int) -> None:
    """Set the seed of every noise node (and the metadata), replacing seed edges."""
    for nid, spec in g.nodes.items():
        seeded = spec.type in ("noise", "core_metadata") or spec.type.endswith("_denoise")
        if seeded and "seed" in spec.cls.input_fields():
            for e in g.incoming(nid):
                if e.destination.field == "seed":
                    g.disconnect(e.source.node_id, e.source.field, nid, "seed")
            g.set(nid, seed=seed)
