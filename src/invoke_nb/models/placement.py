"""Putting a cached model's weights on the execution device: whole, or partly.

Why this shape: the cache keeps every model's weights in CPU RAM for as long as it is cached
(pinned on CUDA, so copies to the GPU run without blocking the host). Moving a model to the
GPU copies those tensors there; moving it back only points the model at the CPU tensors
again (nothing is copied back: the weights did not change, LoRA patches are undone before).

A model larger than the room left on the device is loaded partly: layers are kept on the
device in module order until the room is used, and the remaining layers stream in for each
forward call (a pre-hook copies their weights from the CPU, a post-hook drops them). Between
calls those weights sit on ``meta``, so nothing may ask a parameter where the model runs: the
cache says (``ModelCache.execution_device``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["Placement", "stream_source"]

_SOURCES = "_invoke_nb_stream_sources"


def stream_source(module: Any, name: str) -> torch.Tensor | None:
    """The CPU tensor behind parameter ``name`` of a streamed ``module`` (else ``None``).

    LoRA patching changes this tensor (and restores it) when the parameter is on ``meta``.
    """
    sources = getattr(module, _SOURCES, None)
    return sources.get(name) if sources else None


def _set_param(mod: Any, name: str, tensor: torch.Tensor) -> None:
    """Point parameter ``name`` at ``tensor`` (a new Parameter when the device type changes:
    torch refuses ``.data`` across CPU and meta)."""
    import torch

    old = mod._parameters[name]
    if old.device.type == tensor.device.type:
        old.data = tensor
    else:
        mod._parameters[name] = torch.nn.Parameter(tensor, requires_grad=False)


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


class Placement:
    """The CPU copy of one module's tensors and where they currently are."""

    def __init__(self, model: torch.nn.Module, *, pin: bool = False) -> None:
        self.model = model
        # (module, name, is_parameter) -> the CPU tensor; module order, leaves first
        self._cpu: dict[tuple[Any, str, bool], torch.Tensor] = {}
        self._pin = pin
        for mod in model.modules():
            for name, p in mod._parameters.items():
                if p is not None:
                    self._cpu[(mod, name, True)] = p.data
            for name, b in mod._buffers.items():
                if b is not None:
                    self._cpu[(mod, name, False)] = b
        self._pinned = False
        self._hooks: list[Any] = []
        self.device_bytes = 0
        self.streamed_bytes = 0

    @property
    def partial(self) -> bool:
        return self.streamed_bytes > 0

    def _pin_once(self) -> None:
        if not self._pin or self._pinned:
            return
        for key, t in self._cpu.items():
            if t.device.type == "cpu" and not t.is_pinned():
                self._cpu[key] = pinned = t.pin_memory()
                self._set(key, pinned)
        self._pinned = True

    @staticmethod
    def _set(key: tuple[Any, str, bool], tensor: torch.Tensor) -> None:
        mod, name, is_param = key
        if is_param:
            _set_param(mod, name, tensor)
        else:
            mod._buffers[name] = tensor

    def load(self, device: str, room: int) -> int:
        """Put the model on ``device`` using at most ``room`` bytes there (whole when it
        fits, partly otherwise); returns the bytes now held on the device."""
        import torch

        self.offload()
        self._pin_once()
        dev = torch.device(device)
        groups: dict[Any, list[tuple[Any, str, bool]]] = {}
        for key in self._cpu:
            groups.setdefault(key[0], []).append(key)
        used = streamed = 0
        for mod, keys in groups.items():
            size = sum(_nbytes(self._cpu[k]) for k in keys)
            if used + size <= room:
                for k in keys:
                    self._set(k, self._cpu[k].to(dev, non_blocking=True))
                used += size
            else:
                self._stream(mod, keys, dev)
                streamed += size
        self.device_bytes, self.streamed_bytes = used, streamed
        return used

    def _stream(self, mod: Any, keys: list[tuple[Any, str, bool]], dev: Any) -> None:
        import torch

        sources = {k[1]: self._cpu[k] for k in keys if k[2]}
        for k in keys:
            if k[2]:  # parameters wait on meta; buffers (small) stay resident
                src = self._cpu[k]
                self._set(k, torch.empty(src.shape, dtype=src.dtype, device="meta"))
            else:
                self._set(k, self._cpu[k].to(dev, non_blocking=True))
        setattr(mod, _SOURCES, sources)

        def pre(module: Any, _args: Any) -> None:
            for name, src in sources.items():
                dtype = module._parameters[name].dtype
                _set_param(module, name, src.to(dev, dtype=dtype, non_blocking=True))

        def post(module: Any, _args: Any, _out: Any) -> None:
            for name, src in sources.items():
                dtype = module._parameters[name].dtype
                _set_param(module, name, torch.empty(src.shape, dtype=dtype, device="meta"))

        self._hooks += [mod.register_forward_pre_hook(pre), mod.register_forward_hook(post)]

    def offload(self) -> None:
        """Point the model back at its CPU tensors (nothing is copied)."""
        for h in self._hooks:
            h.remove()
        self._hooks.clear()
        for key, t in self._cpu.items():
            if key[2] and hasattr(key[0], _SOURCES):
                delattr(key[0], _SOURCES)
            self._set(key, t)
        self.device_bytes = self.streamed_bytes = 0
