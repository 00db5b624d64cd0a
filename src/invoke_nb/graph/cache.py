"""The output cache: node outputs keyed by content, with the values they reference.

A key is the hash of a node's type, version, literal inputs and the keys of the upstream
outputs feeding it (ComfyUI's idea, InvokeAI's node shapes). Keys are sha256 over canonical
JSON, so they are stable across processes and runs. An entry keeps the node's output and
the in-memory values (images, tensors, conditioning) it stored, and is charged their size
against a byte budget; least recently used entries go first.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CacheEntry", "OutputCache", "content_key"]


def content_key(payload: Any) -> str:
    """sha256 of canonical JSON (sorted keys, no spaces); non-JSON values use ``str``."""
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class CacheEntry:
    """A cached output and the values it references."""

    output: Any
    values: dict[str, Any] = field(default_factory=dict)
    size: int = 0


class OutputCache:
    """LRU cache of node outputs under a byte budget (and an entry cap)."""

    def __init__(self, max_bytes: int = 2 * 1024**3, max_entries: int = 100_000) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()
        self._names: dict[str, str] = {}  # value name -> entry key
        self._bytes = 0
        self._lock = threading.RLock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def get(self, key: str) -> CacheEntry | None:
        """The entry for ``key`` (and mark it recently used), or ``None``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: str, entry: CacheEntry) -> None:
        """Store an entry; evicts old ones past the budget. Oversized entries are not kept."""
        with self._lock:
            if entry.size > self.max_bytes:
                return
            self._drop(key)
            self._entries[key] = entry
            self._bytes += entry.size
            for name in entry.values:
                self._names[name] = key
            while self._entries and (
                self._bytes > self.max_bytes or len(self._entries) > self.max_entries
            ):
                oldest = next(iter(self._entries))
                self._drop(oldest)
                self.evictions += 1

    def value(self, name: str) -> Any:
        """A stored value by name, from whichever entry holds it; ``None`` when evicted."""
        with self._lock:
            key = self._names.get(name)
            if key is None:
                return None
            entry = self._entries.get(key)
            return None if entry is None else entry.values.get(name)

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self._bytes -= entry.size
        for name in entry.values:
            if self._names.get(name) == key:
                del self._names[name]

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()
            self._names.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    @property
    def bytes(self) -> int:
        """Bytes currently charged to the budget."""
        return self._bytes

    def stats(self) -> dict[str, int]:
        """Entries, bytes, hits, misses and evictions so far."""
        with self._lock:
            return {
                "entries": len(self._entries),
                "bytes": self._bytes,
                "max_bytes": self.max_bytes,
                "hits": self.hits,
                "misses": self.misses,
                "evictions": self.evictions,
            }
