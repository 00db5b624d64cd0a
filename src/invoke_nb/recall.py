"""Recall: the graph that made an image, with its models found here, ready to re-run.

Sources, best first: the ``invokeai_graph`` chunk (the exact graph); else the
``invokeai_metadata`` chunk or older InvokeAI 2.x/3.x metadata (``sd-metadata``, ``Dream``),
from which the standard txt2img graph is rebuilt (prompt, seed, size, steps, cfg, scheduler,
model). Model references are resolved by key, then hash, then name and base; a model that is
not installed gives an error naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from invoke_nb.catalog.pngmeta import extract, read_text_chunks
from invoke_nb.graph.model import Graph
from invoke_nb.nodes.types import ModelIdentifierField

if TYPE_CHECKING:
    from invoke_nb.studio import Studio

__all__ = ["RecallError", "recall_graph", "set_seed"]


class RecallError(ValueError):
    """The image carries nothing to rebuild a graph from, or names a missing model."""


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
        pil = Image.open(image)  # type: ignore[arg-type]
        label = getattr(image, "name", "image file")
    elif isinstance(image, Image.Image):
        pil, label = image, "PIL image"
    else:
        raise RecallError(
            f"recall takes a catalog image, a PNG path or a file, not {type(image).__name__}"
        )
    found = extract(read_text_chunks(pil))
    return found.graph if isinstance(found.graph, dict) else None, found.metadata, label


def _resolve_models(studio: Studio, g: Graph) -> None:
    for nid, spec in g.nodes.items():
        for fname, value in list(spec.values.items()):
            if isinstance(value, ModelIdentifierField):
                try:
                    rec = studio.models.find(value)
                except Exception as e:
                    raise RecallError(
                        f"node {nid!r} field {fname!r} needs model {value.name!r} "
                        f"({value.base}, {value.type}, {value.hash or 'no hash'}), which is not installed: {e}"
                    ) from None
                spec.values[fname] = value.model_copy(
                    update={"key": rec.key, "hash": rec.hash, "name": rec.name, "base": rec.base}
                )


def _from_metadata(studio: Studio, meta: dict[str, Any], label: str) -> Graph:
    from invoke_nb.graph import standard

    model = meta.get("model")
    if isinstance(model, dict):
        ident = ModelIdentifierField(
            **{
                k: model[k]
                for k in ("key", "hash", "name", "base", "type")
                if isinstance(model.get(k), str)
            }
        )
    elif isinstance(model, str) or isinstance(meta.get("model_name"), str):
        ident = ModelIdentifierField(name=model if isinstance(model, str) else meta["model_name"])
    else:
        raise RecallError(f"{label}: its metadata names no model")
    prompt = meta.get("positive_prompt", meta.get("prompt"))
    if not isinstance(prompt, str):
        raise RecallError(f"{label}: its metadata has no prompt")
    g = standard.txt2img(
        ident,
        prompt,
        negative=str(meta.get("negative_prompt") or ""),
        width=int(meta.get("width") or 512),
        height=int(meta.get("height") or 512),
        steps=int(meta.get("steps") or 30),
        cfg_scale=float(meta.get("cfg_scale") or 7.5),
        scheduler=str(meta.get("scheduler") or "euler"),
        seed=int(meta.get("seed") or 0),
    )
    return g


def recall_graph(studio: Studio, image: Any) -> Graph:
    """See the module docstring."""
    graph_data, meta, label = _chunks(studio, image)
    if graph_data:
        g = Graph.from_dict(graph_data)
    elif meta:
        g = _from_metadata(studio, meta, label)
    else:
        raise RecallError(f"{label} carries no invokeai_graph or generation metadata")
    _resolve_models(studio, g)
    return g


def set_seed(g: Graph, seed: int) -> None:
    """Set the seed of every noise node and of the metadata.

    A seed fed by an ``integer`` node (InvokeAI's graphs) is set there; other seed edges
    (``rand_int``...) are replaced by the literal value.
    """
    for nid, spec in list(g.nodes.items()):
        if spec.type not in ("noise", "core_metadata") or "seed" not in spec.cls.input_fields():
            continue
        edges = [e for e in g.incoming(nid) if e.destination.field == "seed"]
        for e in edges:
            src = g.nodes[e.source.node_id]
            if src.type == "integer" and e.source.field == "value":
                g.set(src.id, value=seed)
            else:
                g.disconnect(e.source.node_id, e.source.field, nid, "seed")
                g.set(nid, seed=seed)
        if not edges:
            g.set(nid, seed=seed)
