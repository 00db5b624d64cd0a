"""Importing an InvokeAI library of 1,000,000 images (rows only): images/s and peak RSS.

    .venv/bin/python benchmarks/import_invokeai.py                 # 1M rows
    .venv/bin/python benchmarks/import_invokeai.py --images 100000 --keep /tmp/ia-bench
    .venv/bin/python benchmarks/import_invokeai.py --invokeai-root /work/ext/ia-db/1m

``--invokeai-root`` (or ``INVOKEAI_BENCH_ROOT``) imports a database built by InvokeAI 6.14.2's
own migrator and services (benchmarks/invokeai_db/build_invokeai_db.py) instead of the
synthetic one. The synthetic rows' metadata comes from benchmarks/invokeai_db/shapes.py
(~670 bytes, as InvokeAI writes it).

The InvokeAI database is built first, in a child process, with InvokeAI 6.14.2's exact
schema (tests/fixtures/invokeai/schema-v33-invokeai-6.14.2.sql): 100 boards holding 30% of
the images, 5% starred, 2% intermediate, InvokeAI-shaped metadata JSON (~670 bytes, from
benchmarks/invokeai_db/shapes.py: prompts, seed, steps, cfg, scheduler, model, loras). Then this process
imports it into a fresh catalog with ``files="none"`` (records only; linking files costs a
few microseconds per image on top and is I/O-bound) and reports the import's wall time,
images per second, its CPU time and this process's peak RSS (ru_maxrss; the build ran
elsewhere), and the load average (the machine is shared: compare figures taken at similar
loads). The import returns once the rows are in, counted for the gallery and their names
indexed; the search term index is then built by the catalog's background indexer, timed
apart (with a search every 5 s while it runs). Targets (issue 23): >= 150,000
images/s with peak RSS < 1 GiB (InvokeAI's own bulk insert: 17k-22k/s).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, Python puts benchmarks/ first on sys.path, where a benchmark module could
# shadow a standard library one: drop that entry.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse
import contextlib
import os
import random
import resource
import shutil
import sqlite3
import subprocess
import tempfile
import time
import urllib.request
import uuid
from datetime import datetime, timedelta

SCHEMA = (
    Path(__file__).resolve().parents[1]
    / "tests"
    / "fixtures"
    / "invokeai"
    / "schema-v33-invokeai-6.14.2.sql"
)
sys.path.insert(0, str(Path(__file__).resolve().parent / "invokeai_db"))
import shapes  # noqa: E402  (stdlib-only row shapes, shared with InvokeAI's venv)


def build(root: Path, n: int, seed: int = 3) -> None:
    """An InvokeAI root whose database holds ``n`` image rows (no image files)."""
    (root / "databases").mkdir(parents=True)
    db = sqlite3.connect(root / "databases" / "invokeai.db")
    db.execute("PRAGMA journal_mode = WAL")
    db.executescript(SCHEMA.read_text())
    db.executemany(
        "INSERT INTO migrations (version, migrated_at) VALUES (?, '2025-01-01')",
        [(v,) for v in range(34)],
    )
    rnd = random.Random(seed)
    models = shapes.model_records()
    boards = [str(uuid.UUID(int=rnd.getrandbits(128))) for _ in range(100)]
    db.executemany(
        "INSERT INTO boards (board_id, board_name) VALUES (?, ?)",
        [(b, f"board {i}") for i, b in enumerate(boards)],
    )
    start = datetime(2023, 1, 1)
    step = 3 * 365 * 24 * 3600 / n
    chunk = 50_000
    for lo in range(0, n, chunk):
        images, members = [], []
        for i in range(lo, min(n, lo + chunk)):
            name = f"{uuid.UUID(int=rnd.getrandbits(128))}.png"
            created = (start + timedelta(seconds=i * step)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
            meta = shapes.metadata(rnd, models, 1024, 1024)
            r = rnd.random()
            images.append(
                (name, "internal", "general", 1024, 1024, str(uuid.uuid4()), "canvas_output",
                 shapes.dumps(meta), r < 0.02, created, created, r > 0.95, True)
            )  # fmt: skip
            if rnd.random() < 0.3:
                members.append((boards[i % len(boards)], name))
        db.executemany(
            "INSERT INTO images (image_name, image_origin, image_category, width, height, "
            "session_id, node_id, metadata, is_intermediate, created_at, updated_at, starred, "
            "has_workflow) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            images,
        )
        db.executemany("INSERT INTO board_images (board_id, image_name) VALUES (?, ?)", members)
        db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def main() -> None:
    from invoke_nb.interchange.invokeai import BATCH_ROWS, import_invokeai

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1_000_000)
    ap.add_argument("--batch-size", type=int, default=BATCH_ROWS)
    ap.add_argument("--keep", type=Path, help="build (or reuse) the InvokeAI root here")
    ap.add_argument("--build-only", type=Path, help=argparse.SUPPRESS)
    env_root = os.environ.get("INVOKEAI_BENCH_ROOT")
    ap.add_argument(
        "--invokeai-root",
        type=Path,
        default=Path(env_root) if env_root else None,
        help="an InvokeAI root built by benchmarks/invokeai_db/build_invokeai_db.py",
    )
    args = ap.parse_args()
    if args.invokeai_root:
        args.keep = args.invokeai_root
        # read-only and closed at once: an open connection would create a -wal beside the
        # database, and the importer reads a library with a -wal as InvokeAI running (live)
        path = (args.invokeai_root / "databases" / "invokeai.db").resolve()
        uri = f"file:{urllib.request.pathname2url(str(path))}?mode=ro&immutable=1"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as con:
            args.images = con.execute("SELECT count(*) FROM images").fetchone()[0]
    if args.build_only:
        build(args.build_only, args.images)
        return
    work = Path(tempfile.mkdtemp(prefix="ia-import-bench-"))
    ia_root = args.keep or work / "invokeai"
    try:
        if not (ia_root / "databases" / "invokeai.db").exists():
            t = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--images",
                    str(args.images),
                    "--build-only",
                    str(ia_root),
                ],
                check=True,
            )
            print(
                f"built InvokeAI database: {args.images:,} images in {time.perf_counter() - t:.1f} s"
            )
        size = (ia_root / "databases" / "invokeai.db").stat().st_size
        from invoke_nb.interchange.invokeai import InvokeAIRoot

        # a -wal beside it (InvokeAI or another reader has it open): read as a live library,
        # one connection at a time, which is slower; say so beside the figures
        live = InvokeAIRoot.locate(ia_root).live()
        print(f"InvokeAI database: {size / 2**20:.0f} MiB{' (live: a -wal beside it)' * live}")

        from invoke_nb.catalog import Catalog

        cat = Catalog(work / "studio")
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        cpu0 = time.process_time()
        t = time.perf_counter()
        report = import_invokeai(
            cat, ia_root, files="none", batch_size=args.batch_size, progress=False
        )
        seconds = time.perf_counter() - t
        cpu = time.process_time() - cpu0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        n = report.added["images"]
        print(report)
        print(
            f"import: {n:,} images in {seconds:.2f} s = {n / seconds:,.0f} images/s "
            f"(CPU {cpu:.1f} s on {os.cpu_count()} cores); peak RSS {rss / 2**20:.2f} GiB "
            f"(before the import {rss0 / 2**20:.2f} GiB); load average {os.getloadavg()[0]:.1f}"
        )
        # the search index follows in the background (searches meanwhile scan what it has not
        # reached): how long until it is complete, and what a search costs while it runs
        t = time.perf_counter()
        while cat.indexer.running:
            s0 = time.perf_counter()
            page = cat.images.list(search="lighthouse", category="general", with_total=True)
            during = (time.perf_counter() - s0) * 1000
            print(f"  search while indexing: {during:.0f} ms ({page.total:,} found)", flush=True)
            cat.indexer.wait(5)
        indexed = time.perf_counter() - t
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(
            f"search index: complete {indexed:.1f} s after the import returned "
            f"(error: {cat.indexer.error}); peak RSS now {rss / 2**20:.2f} GiB"
        )
        t = time.perf_counter()
        again = import_invokeai(
            cat, ia_root, files="none", batch_size=args.batch_size, progress=False
        )
        print(
            f"second run: {sum(again.added.values())} added, {again.existing['images']:,} "
            f"already there, {time.perf_counter() - t:.1f} s"
        )
        count = cat.sql("SELECT count(*) FROM images").fetchall()[0][0]
        assert count == n == args.images, (count, n)
        cat.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
