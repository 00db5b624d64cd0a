"""Weights of preprocessor nodes: found among the installed models by the Hugging Face repo
they came from, else installed through the model manager on first use (from the repo
InvokeAI uses; ``HF_ENDPOINT`` is honoured). Offline without them, the error names the node
and the repo."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from invoke_nb.nodes.context import Context

__all__ = ["PreprocessorWeightsError", "hub_file_url", "preprocessor_file", "preprocessor_model"]


class PreprocessorWeightsError(RuntimeError):
    """A preprocessor's weights are not installed and could not be fetched."""


def preprocessor_model(ctx: Context, node_id: str, node_type: str, repo_id: str) -> Any:
    """The identifier of the installed model from ``repo_id``, installing it if needed."""
    from invoke_nb.models.local import identifier

    models = ctx.models
    if models is None:
        raise PreprocessorWeightsError(
            f"node {node_id!r} ({node_type}): no model service to find {repo_id!r}"
        )
    lister = getattr(models, "list", None) or models.store.list
    for rec in lister():
        if rec.source == repo_id or rec.name == repo_id:
            return identifier(rec)
    install = getattr(models, "install", None)
    if install is None:
        raise PreprocessorWeightsError(
            f"node {node_id!r} ({node_type}): model {repo_id!r} is not installed"
        )
    ctx.progress(message=f"Installing {repo_id} (first use)")
    try:
        rec = install(repo_id)
    except Exception as e:
        raise PreprocessorWeightsError(
            f"node {node_id!r} ({node_type}): model {repo_id!r} is not installed and could "
            f"not be downloaded ({type(e).__name__}: {e}); install it with "
            f"studio.models.install({repo_id!r}) where the Hub is reachable"
        ) from e
    return identifier(rec)


def hub_file_url(repo_id: str, filename: str) -> str:
    """The download address of one file of a Hub repo (``HF_ENDPOINT`` honoured)."""
    import os

    endpoint = (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
    return f"{endpoint}/{repo_id}/resolve/main/{filename}"


def preprocessor_file(
    ctx: Context, node_id: str, node_type: str, repo_id: str, filename: str, model_type: str
) -> Any:
    """The identifier of the installed single weight file ``filename`` of ``repo_id`` (the
    annotator checkpoints InvokeAI fetches one by one from repos holding dozens), installing
    it on first use as a model of ``model_type``. Pickle files are scanned before loading."""
    from invoke_nb.models.local import identifier

    label = f"{repo_id}/{filename}"
    models = ctx.models
    if models is None:
        raise PreprocessorWeightsError(
            f"node {node_id!r} ({node_type}): no model service to find {label!r}"
        )
    lister = getattr(models, "list", None) or models.store.list
    suffix = f"/{repo_id}/resolve/main/{filename}"
    for rec in lister():
        if rec.type == model_type and (rec.source or "").endswith(suffix):
            return identifier(rec)
    install = getattr(models, "install", None)
    if install is None:
        raise PreprocessorWeightsError(
            f"node {node_id!r} ({node_type}): model {label!r} is not installed"
        )
    ctx.progress(message=f"Installing {label} (first use)")
    try:
        rec = install(
            hub_file_url(repo_id, filename),
            allow_unsafe=True,  # the published files are pickles; the install scans them
            config={"type": model_type, "base": "any", "format": "checkpoint"},
        )
    except Exception as e:
        raise PreprocessorWeightsError(
            f"node {node_id!r} ({node_type}): model {label!r} is not installed and could "
            f"not be downloaded ({type(e).__name__}: {e}); install it with "
            f"studio.models.install({hub_file_url(repo_id, filename)!r}, allow_unsafe=True, "
            f"config={{'type': {model_type!r}, 'base': 'any'}}) where the Hub is reachable"
        ) from e
    return identifier(rec)
