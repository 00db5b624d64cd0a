"""No kernel downloads at import time.

bitsandbytes (which diffusers and transformers import whenever it is installed, as the
``bnb`` extra installs it) asks the Hugging Face hub, through the ``kernels`` package, for a
compiled CPU kernel while it imports on CPUs with AVX-512 BF16 (and for an MPS kernel on
Macs): a request to the hub, then a binary download, from a plain ``import diffusers``.
invoke-nb never downloads at run or test time, so those repositories are refused inside the
process; bitsandbytes logs that and keeps its built-in kernels. Every other use of
``kernels.get_kernel`` passes through unchanged.

:func:`install` runs when this module is imported (``invoke_nb`` imports it first of all): it
guards ``kernels`` if it is loaded already, else the moment it loads; it imports nothing.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import sys
from types import ModuleType
from typing import Any

__all__ = ["REFUSED", "install"]

REFUSED = frozenset(
    {"kernels-community/quantization-bitsandbytes", "kernels-community/bitsandbytes-mps"}
)


def _guard(module: ModuleType) -> None:
    get = getattr(module, "get_kernel", None)
    if get is None or getattr(get, "_invoke_nb_offline", False):
        return

    def get_kernel(repo_id: str, *args: Any, **kwargs: Any) -> Any:
        if repo_id in REFUSED:
            raise RuntimeError(f"invoke-nb does not download the kernel {repo_id!r} at run time")
        return get(repo_id, *args, **kwargs)

    get_kernel._invoke_nb_offline = True  # type: ignore[attr-defined]
    get_kernel.__doc__ = get.__doc__
    module.get_kernel = get_kernel  # type: ignore[attr-defined]


class _GuardOnLoad(importlib.abc.MetaPathFinder):
    """Finds ``kernels`` with the other finders and guards it once it has executed."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "kernels":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            _guard(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install() -> None:
    """Guard ``kernels`` now if loaded, else when it loads (idempotent); and keep
    bitsandbytes from logging the refusal in every process (its kernels serve)."""
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    if "kernels" in sys.modules:
        _guard(sys.modules["kernels"])
    elif not any(isinstance(f, _GuardOnLoad) for f in sys.meta_path):
        sys.meta_path.insert(0, _GuardOnLoad())


install()
