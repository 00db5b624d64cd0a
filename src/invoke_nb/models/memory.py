"""How much memory this process may use, and giving freed memory back to the system.

Hosted notebook servers (JupyterHub, cloud notebooks) run kernels in containers whose cgroup
limit is far below the machine's RAM; a cache sized from the machine alone gets the kernel
OOM-killed. So the limit is the smallest of physical RAM and the cgroup v2/v1 limits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
from pathlib import Path

__all__ = ["cgroup_memory_limit", "physical_ram", "ram_limit", "release_memory", "rss_bytes"]

_UNLIMITED = 1 << 60


def physical_ram() -> int:
    """Total physical RAM in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _read_limit(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if not text or text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return value if 0 < value < _UNLIMITED else None


def cgroup_memory_limit(
    root: str | Path = "/sys/fs/cgroup", proc_cgroup: str | Path = "/proc/self/cgroup"
) -> int | None:
    """The tightest cgroup memory limit on this process (v2 ``memory.max`` or v1
    ``memory.limit_in_bytes``), or ``None`` when unlimited."""
    root = Path(root)
    candidates = [root / "memory.max", root / "memory" / "memory.limit_in_bytes"]
    try:
        for line in Path(proc_cgroup).read_text().splitlines():
            parts = line.split(":", 2)
            if len(parts) != 3:
                continue
            rel = parts[2].lstrip("/")
            if parts[1] == "":  # cgroup v2: walk from our group up to the root
                p = root / rel
                while True:
                    candidates.append(p / "memory.max")
                    if p == root or root not in p.parents:
                        break
                    p = p.parent
            elif "memory" in parts[1].split(","):
                candidates.append(root / "memory" / rel / "memory.limit_in_bytes")
    except OSError:
        pass
    limits = [v for v in (_read_limit(c) for c in candidates) if v is not None]
    return min(limits) if limits else None


def ram_limit() -> int:
    """Bytes of RAM this process may use: physical RAM, capped by cgroup limits."""
    limit = cgroup_memory_limit()
    ram = physical_ram()
    return min(ram, limit) if limit else ram


def rss_bytes() -> int:
    """Resident set size of this process in bytes (from /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _malloc_trim() -> None:
    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return
    trim.argtypes = [ctypes.c_size_t]
    trim(0)


def release_memory() -> None:
    """Collect garbage, empty the CUDA allocator and return free heap pages to the OS."""
    gc.collect()
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
    _malloc_trim()
