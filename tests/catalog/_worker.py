"""A separate process that uses a catalog, for the concurrency and crash tests.

python _worker.py write ROOT TAG N      save N images, claim queue items, read back
python _worker.py hold ROOT SECONDS     hold the DuckDB file open (raw DuckDB)
python _worker.py crash ROOT            write batches and images until killed
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import types
from pathlib import Path

from PIL import Image


def _catalog_only() -> None:
    """Import the catalog without running ``invoke_nb/__init__.py`` and
    ``invoke_nb/models/__init__.py`` (they load torch for the node API). The catalog must
    work torch-free, and the worker starts in a fraction of the time."""
    spec = importlib.util.find_spec("invoke_nb")
    assert spec is not None and spec.submodule_search_locations
    root = Path(next(iter(spec.submodule_search_locations)))
    for name, folder in (("invoke_nb", root), ("invoke_nb.models", root / "models")):
        pkg = types.ModuleType(name)
        pkg.__path__ = [str(folder)]
        sys.modules[name] = pkg


_catalog_only()


def write(root: str, tag: str, n: int) -> None:
    from invoke_nb.catalog import Catalog

    cat = Catalog(root, busy_timeout=60)
    names, claimed = [], []
    for i in range(n):
        rec = cat.images.save(
            Image.new("RGB", (16, 16), (i, len(tag), 0)),
            metadata={"positive_prompt": f"{tag} number {i}", "seed": i},
        )
        names.append(rec.image_name)
        # read while the other process writes: our own writes are all visible
        seen = cat.images.count(search=f"{tag} number")
        assert seen == i + 1, (tag, i, seen)
        assert cat.images.list(limit=5).items
        item = cat.queue.claim_next()
        if item is not None:
            claimed.append(item.item_id)
            cat.queue.set_status(item.item_id, "completed")
    while (item := cat.queue.claim_next()) is not None:
        claimed.append(item.item_id)
        cat.queue.set_status(item.item_id, "completed")
    cat.close()
    torch_loaded = any(m == "torch" or m.startswith("torch.") for m in sys.modules)
    print(json.dumps({"names": names, "claimed": claimed, "torch": torch_loaded}))


def hold(root: str, seconds: float) -> None:
    import duckdb

    con = duckdb.connect(str(Path(root) / "catalog.duckdb"))
    print("held", flush=True)
    time.sleep(seconds)
    con.close()


def crash(root: str) -> None:
    from invoke_nb.catalog import Catalog

    cat = Catalog(root, busy_timeout=60)
    k = 0
    while True:
        rows = [
            {"image_name": f"batch{k:04d}-{j:03d}.png", "width": 1, "height": 1, "seed": k}
            for j in range(200)
        ]
        cat.images.insert_records(rows)
        cat.images.save(Image.new("RGB", (256, 256), (k % 256, 0, 0)), metadata={"seed": k})
        print("tick", k, flush=True)
        k += 1


if __name__ == "__main__":
    mode, root, *rest = sys.argv[1:]
    if mode == "write":
        write(root, rest[0], int(rest[1]))
    elif mode == "hold":
        hold(root, float(rest[0]))
    elif mode == "crash":
        crash(root)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
