"""Main-model and VAE loader nodes: they split a model into per-part references.

Nothing is loaded here; the parts are loaded (and cached) by the nodes that use them. A
loader only checks that the model is known, so a bad key fails at the loader's node id.
"""

from __future__ import annotations

from invoke_nb.nodes.base import InputField, Node, UIHint, node
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.diffusion.fields import (
    CLIPField,
    ModelLoaderOutput,
    SDXLModelLoaderOutput,
    SDXLRefinerModelLoaderOutput,
    UNetField,
    VAEField,
    VAEOutput,
)
from invoke_nb.nodes.types import ModelIdentifierField

__all__ = [
    "MainModelLoaderNode",
    "SDXLModelLoaderNode",
    "SDXLRefinerModelLoaderNode",
    "VAELoaderNode",
    "check_model",
]


class ModelNotAvailableError(LookupError):
    """A node names a model that the host's model service does not know."""


def check_model(ctx: Context, model: ModelIdentifierField, what: str) -> ModelIdentifierField:
    """Fail early, naming the node, when ``model`` is unknown; return it resolved to a record.

    The returned identifier carries the installed record's key, so a graph made elsewhere
    (an InvokeAI workflow) finds the model by hash or name and continues by key.
    """
    if ctx.models is None:
        raise ModelNotAvailableError(
            f"node {ctx.node_id!r} ({ctx.node_type}): no model service to find {what} "
            f"{model.name or model.key!r} (run inside a Studio or pass Services(models=...))"
        )
    try:
        rec = ctx.models.record(model)
    except Exception as exc:
        raise ModelNotAvailableError(
            f"node {ctx.node_id!r} ({ctx.node_type}): unknown {what} "
            f"(key={model.key!r}, name={model.name!r}, base={model.base!r}): {exc}"
        ) from exc
    return model.model_copy(
        update={
            "key": rec.key,
            "hash": rec.hash,
            "name": rec.name,
            "base": rec.base,
            "type": rec.type,
        }
    )


def _parts(model: ModelIdentifierField, *names: str) -> list[ModelIdentifierField]:
    return [model.with_submodel(n) for n in names]


@node(
    "main_model_loader",
    title="Main Model - SD1.5, SD2",
    category="model",
    tags=["model"],
    version="1.0.4",
)
class MainModelLoaderNode(Node):
    """Loads a main model, outputting its submodels."""

    model: ModelIdentifierField = InputField(
        description="Main model (UNet, VAE, CLIP) to load",
        ui_hint=UIHint.MODEL,
        ui_model_base=["sd-1", "sd-2"],
        ui_model_type=["main"],
    )

    def invoke(self, ctx: Context) -> ModelLoaderOutput:
        m = check_model(ctx, self.model, "main model")
        unet, sched, tok, te, vae = _parts(
            m, "unet", "scheduler", "tokenizer", "text_encoder", "vae"
        )
        return ModelLoaderOutput(
            unet=UNetField(unet=unet, scheduler=sched, loras=[]),
            clip=CLIPField(tokenizer=tok, text_encoder=te, loras=[], skipped_layers=0),
            vae=VAEField(vae=vae),
        )


@node(
    "sdxl_model_loader",
    title="Main Model - SDXL",
    category="model",
    tags=["model", "sdxl"],
    version="1.0.4",
)
class SDXLModelLoaderNode(Node):
    """Loads an sdxl base model, outputting its submodels."""

    model: ModelIdentifierField = InputField(
        description="SDXL Main model (UNet, VAE, CLIP1, CLIP2) to load",
        ui_hint=UIHint.MODEL,
        ui_model_base=["sdxl"],
        ui_model_type=["main"],
    )

    def invoke(self, ctx: Context) -> SDXLModelLoaderOutput:
        m = check_model(ctx, self.model, "SDXL model")
        unet, sched, tok, te, tok2, te2, vae = _parts(
            m,
            "unet",
            "scheduler",
            "tokenizer",
            "text_encoder",
            "tokenizer_2",
            "text_encoder_2",
            "vae",
        )
        return SDXLModelLoaderOutput(
            unet=UNetField(unet=unet, scheduler=sched, loras=[]),
            clip=CLIPField(tokenizer=tok, text_encoder=te, loras=[], skipped_layers=0),
            clip2=CLIPField(tokenizer=tok2, text_encoder=te2, loras=[], skipped_layers=0),
            vae=VAEField(vae=vae),
        )


@node(
    "sdxl_refiner_model_loader",
    title="Refiner Model - SDXL",
    category="model",
    tags=["model", "sdxl", "refiner"],
    version="1.0.4",
)
class SDXLRefinerModelLoaderNode(Node):
    """Loads an sdxl refiner model, outputting its submodels."""

    model: ModelIdentifierField = InputField(
        description="SDXL Refiner Main Modde (UNet, VAE, CLIP2) to load",
        ui_hint=UIHint.MODEL,
        ui_model_base=["sdxl-refiner"],
        ui_model_type=["main"],
    )

    def invoke(self, ctx: Context) -> SDXLRefinerModelLoaderOutput:
        m = check_model(ctx, self.model, "SDXL refiner model")
        unet, sched, tok2, te2, vae = _parts(
            m, "unet", "scheduler", "tokenizer_2", "text_encoder_2", "vae"
        )
        return SDXLRefinerModelLoaderOutput(
            unet=UNetField(unet=unet, scheduler=sched, loras=[]),
            clip2=CLIPField(tokenizer=tok2, text_encoder=te2, loras=[], skipped_layers=0),
            vae=VAEField(vae=vae),
        )


@node(
    "vae_loader",
    title="VAE Model - SD1.5, SD2, SDXL, SD3, FLUX",
    category="model",
    tags=["vae", "model"],
    version="1.0.4",
)
class VAELoaderNode(Node):
    """Loads a VAE model, outputting a VaeLoaderOutput"""

    vae_model: ModelIdentifierField = InputField(
        description="VAE model to load",
        title="VAE",
        ui_hint=UIHint.MODEL,
        ui_model_base=["sd-1", "sd-2", "sdxl", "sd-3", "flux", "flux2"],
        ui_model_type=["vae"],
    )

    def invoke(self, ctx: Context) -> VAEOutput:
        return VAEOutput(vae=VAEField(vae=check_model(ctx, self.vae_model, "VAE")))
