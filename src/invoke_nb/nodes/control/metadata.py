"""``metadata_to_controlnets`` / ``_ip_adapters`` / ``_t2i_adapters``: recall control layers.

They read the ``controlnets``, ``ipAdapters`` and ``t2iAdapters`` lists that
``core_metadata`` writes (InvokeAI's metadata keys and item fields), resolve each model
against the installed ones, and append the rebuilt fields to the list given by connection.
"""

from __future__ import annotations

from typing import Any

from invoke_nb.nodes.base import Input, InputField, Output, OutputField, node, output
from invoke_nb.nodes.context import Context
from invoke_nb.nodes.control.fields import ControlField, IPAdapterField, T2IAdapterField
from invoke_nb.nodes.control.nodes import IPAdapterNode
from invoke_nb.nodes.metadata import _identifier, _Linked, _resolve

__all__ = ["MetadataToControlnetsNode", "MetadataToIPAdaptersNode", "MetadataToT2IAdaptersNode"]


def _entries(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return [e for e in data.get(key) or [] if isinstance(e, dict)]


def _model(ctx: Context, entry: dict[str, Any], field: str, what: str) -> Any:
    ident = _identifier(entry.get(field))
    if ident is None:
        raise ValueError(f"node {ctx.node_id!r}: a {what} in the metadata names no model")
    return _resolve(ctx, ident, what)


def _append(given: Any, more: list[Any]) -> list[Any]:
    base = [] if given is None else (list(given) if isinstance(given, list) else [given])
    return base + more


def _window(entry: dict[str, Any]) -> dict[str, float]:
    return {
        "begin_step_percent": float(entry.get("begin_step_percent", 0)),
        "end_step_percent": float(entry.get("end_step_percent", 1)),
    }


@output("md_control_list_output")
class MDControlListOutput(Output):
    """ControlNets recalled from metadata."""

    control_list: ControlField | list[ControlField] | None = OutputField(
        description="ControlNet(s) to apply", title="ControlNet-List"
    )


@output("md_ip_adapter_list_output")
class MDIPAdapterListOutput(Output):
    """IP-Adapters recalled from metadata."""

    ip_adapter_list: IPAdapterField | list[IPAdapterField] | None = OutputField(
        description="IP-Adapter to apply", title="IP-Adapter-List"
    )


@output("md_ip_adapters_output")
class MDT2IAdapterListOutput(Output):
    """T2I-Adapters recalled from metadata (InvokeAI's output type id)."""

    t2i_adapter_list: T2IAdapterField | list[T2IAdapterField] | None = OutputField(
        description="T2I-Adapter(s) to apply", title="T2I Adapter-List"
    )


@node(
    "metadata_to_controlnets",
    title="Metadata To ControlNets",
    category="metadata",
    tags=["metadata"],
    version="1.2.0",
)
class MetadataToControlnetsNode(_Linked):
    """Extracts a Controlnets value of a label from metadata"""

    control_list: ControlField | list[ControlField] | None = InputField(
        default=None,
        description="ControlNet(s) to apply",
        title="ControlNet-List",
        input=Input.CONNECTION,
    )

    def invoke(self, ctx: Context) -> MDControlListOutput:
        found = [
            ControlField(
                image=e["image"],
                control_model=_model(ctx, e, "control_model", "ControlNet"),
                control_weight=e.get("control_weight", 1.0),
                control_mode=e.get("control_mode", "balanced"),
                resize_mode=e.get("resize_mode", "just_resize"),
                **_window(e),
            )
            for e in _entries(self._data(), "controlnets")
        ]
        return MDControlListOutput(control_list=_append(self.control_list, found))


@node(
    "metadata_to_ip_adapters",
    title="Metadata To IP-Adapters",
    category="metadata",
    tags=["metadata"],
    version="1.2.0",
)
class MetadataToIPAdaptersNode(_Linked):
    """Extracts a IP-Adapters value of a label from metadata"""

    ip_adapter_list: IPAdapterField | list[IPAdapterField] | None = InputField(
        default=None,
        description="IP-Adapter to apply",
        title="IP-Adapter-List",
        input=Input.CONNECTION,
    )

    def invoke(self, ctx: Context) -> MDIPAdapterListOutput:
        found = []
        for e in _entries(self._data(), "ipAdapters"):
            fields: dict[str, Any] = {
                "image": e["image"],
                "ip_adapter_model": _model(ctx, e, "ip_adapter_model", "IP-Adapter"),
                "weight": e.get("weight", 1.0),
                **_window(e),
            }
            for k in ("method", "clip_vision_model"):
                if e.get(k) is not None:
                    fields[k] = e[k]
            found.append(IPAdapterNode(**fields).invoke(ctx).ip_adapter)
        return MDIPAdapterListOutput(ip_adapter_list=_append(self.ip_adapter_list, found))


@node(
    "metadata_to_t2i_adapters",
    title="Metadata To T2I-Adapters",
    category="metadata",
    tags=["metadata"],
    version="1.2.0",
)
class MetadataToT2IAdaptersNode(_Linked):
    """Extracts a T2I-Adapters value of a label from metadata"""

    t2i_adapter_list: T2IAdapterField | list[T2IAdapterField] | None = InputField(
        default=None,
        description="IP-Adapter to apply",
        title="T2I-Adapter",
        input=Input.CONNECTION,
    )

    def invoke(self, ctx: Context) -> MDT2IAdapterListOutput:
        found = [
            T2IAdapterField(
                image=e["image"],
                t2i_adapter_model=_model(ctx, e, "t2i_adapter_model", "T2I-Adapter"),
                weight=e.get("weight", 1.0),
                resize_mode=e.get("resize_mode", "just_resize"),
                **_window(e),
            )
            for e in _entries(self._data(), "t2iAdapters")
        ]
        return MDT2IAdapterListOutput(t2i_adapter_list=_append(self.t2i_adapter_list, found))
