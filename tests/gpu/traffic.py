"""A TorchDispatchMode that plays a GPU on the CPU: ``meta`` tensors are "on the device".

Every op is counted by window (``mark()``): host reads of device values
(``aten._local_scalar_dense`` on a meta tensor: ``.item()``, ``bool()``, ``float()``) and
copies that change the device (CPU <-> meta). Meta tensors carry no data, so a read returns
0 and a copy to the host returns zeros; ops that mix a CPU tensor (other than a 0-d scalar)
with a device tensor fail as they would on CUDA.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten


class DeviceTraffic(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.copies = 0
        self.windows: list[tuple[int, int]] = []
        self._start = (0, 0)

    def mark(self) -> None:
        """Start a window."""
        self._start = (self.reads, self.copies)

    def close(self) -> None:
        """End the window started by :meth:`mark`: record its (reads, copies)."""
        self.windows.append((self.reads - self._start[0], self.copies - self._start[1]))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is aten._local_scalar_dense.default and args[0].device.type == "meta":
            self.reads += 1
            return False if args[0].dtype == torch.bool else 0
        if func.overloadpacket in (aten._to_copy, aten.to):
            src = args[0]
            if func is aten.to.device:
                dst, dtype = torch.device(args[1]), args[2]
            else:
                dst = torch.device(kwargs.get("device") or src.device)
                dtype = kwargs.get("dtype") or (args[1] if func is aten.to.dtype else None)
            if src.device.type != dst.type:
                self.copies += 1
                if src.device.type == "meta":
                    return torch.zeros(src.shape, dtype=dtype or src.dtype)
        if func is aten.copy_.default and args[0].device.type != args[1].device.type:
            self.copies += 1
            if args[1].device.type == "meta":
                return args[0]
        return func(*args, **kwargs)
