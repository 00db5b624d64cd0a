"""Catalog benchmark: gallery queries and inserts at 1,000,000 images, DuckDB vs InvokeAI's SQLite.

    .venv/bin/python benchmarks/catalog.py            # 1M synthetic rows (a few minutes)
    .venv/bin/python benchmarks/catalog.py --rows 50000
    .venv/bin/python benchmarks/catalog.py --invokeai-root /work/ext/ia-db/1m [--studio DIR]

With ``--invokeai-root`` (or ``INVOKEAI_BENCH_ROOT``), the library is a database built by
InvokeAI 6.14.2's migrator and services (benchmarks/invokeai_db/build_invokeai_db.py): it is
imported (records only) into a catalog (or ``--studio`` names one already imported), the
gallery queries are timed through ``studio.catalog.images``/``boards``, and InvokeAI's own
services are timed on the same database in the same run, in InvokeAI's venv
(``--invokeai-python``, default /work/ext/invokeai-6.14.2/bin/python).

The same synthetic gallery (20 boards holding 60% of the images, 2% starred, 8 models over 3
bases, prompts from a 300-word vocabulary, InvokeAI-shaped metadata JSON, creation times over
two years) goes into (a) our catalog through its repository API and (b) an SQLite file with
InvokeAI's images/boards/board_images tables and indexes (as its migrations leave them),
queried with the SQL its image-records service runs. Each query is timed as a median of
``--repeat`` runs after one warm-up; DuckDB timings include building the pydantic records.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, Python puts benchmarks/ first on sys.path, where benchmarks/queue.py would
# shadow the standard library's ``queue`` (pyarrow and torch import it): drop that entry.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse
import gc
import json
import os
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import pyarrow as pa

from invoke_nb.catalog import Catalog
from invoke_nb.catalog.images import ARROW_SCHEMA

sys.path.insert(0, str(Path(__file__).resolve().parent / "invokeai_db"))
import shapes  # stdlib-only row shapes, shared with InvokeAI's venv

SEARCH_WORD = shapes.COMMON_WORD  # in about 5% of prompts
RARE_WORD = shapes.RARE_WORD  # in about 0.05% of prompts


def make_rows(n: int, seed: int = 7) -> tuple[list[dict], list[str]]:
    """Synthetic image rows (dicts of catalog columns) and the board ids; metadata as long as
    InvokeAI writes it (benchmarks/invokeai_db/shapes.py, ~670 bytes)."""
    rnd = random.Random(seed)
    models = shapes.model_records()
    boards = [str(uuid.UUID(int=rnd.getrandbits(128))) for _ in range(20)]
    start = datetime(2024, 1, 1)
    span = 2 * 365 * 24 * 3600
    rows = []
    for i in range(n):
        created = start + timedelta(seconds=span * i / n + rnd.random())
        meta = shapes.metadata(rnd, models, 512, 512)
        model, base = meta["model"]["name"], meta["model"]["base"]
        prompt, negative = meta["positive_prompt"], meta["negative_prompt"]
        s, steps, cfg, sched = meta["seed"], meta["steps"], meta["cfg_scale"], meta["scheduler"]
        rows.append(
            {
                "image_name": str(uuid.UUID(int=rnd.getrandbits(128), version=4)) + ".png",
                "image_origin": "internal",
                "image_category": "general",
                "width": 512,
                "height": 512,
                "session_id": None,
                "node_id": None,
                "is_intermediate": False,
                "starred": rnd.random() < 0.02,
                "has_workflow": True,
                "board_id": boards[rnd.randrange(20)] if rnd.random() < 0.6 else None,
                "created_at": created,
                "updated_at": created,
                "deleted_at": None,
                "metadata": shapes.dumps(meta),
                "model_name": model,
                "model_key": model,
                "model_base": base,
                "positive_prompt": prompt,
                "negative_prompt": negative,
                "seed": s,
                "steps": steps,
                "cfg_scale": cfg,
                "scheduler": sched,
                "graph_hash": None,
                "content_hash": None,
                "source": "invoke-nb",
            }
        )
    return rows, boards


# -- SQLite with InvokeAI's schema ----------------------------------------------------------
SQLITE_SCHEMA = """
CREATE TABLE images (
    image_name TEXT NOT NULL PRIMARY KEY, image_origin TEXT NOT NULL, image_category TEXT NOT NULL,
    width INTEGER NOT NULL, height INTEGER NOT NULL, session_id TEXT, node_id TEXT, metadata TEXT,
    is_intermediate BOOLEAN DEFAULT FALSE,
    created_at DATETIME NOT NULL DEFAULT(STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW')),
    updated_at DATETIME NOT NULL DEFAULT(STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW')),
    deleted_at DATETIME, starred BOOLEAN DEFAULT FALSE, has_workflow BOOLEAN DEFAULT FALSE,
    user_id TEXT DEFAULT 'system', image_subfolder TEXT NOT NULL DEFAULT '');
CREATE UNIQUE INDEX idx_images_image_name ON images(image_name);
CREATE INDEX idx_images_image_origin ON images(image_origin);
CREATE INDEX idx_images_image_category ON images(image_category);
CREATE INDEX idx_images_created_at ON images(created_at);
CREATE INDEX idx_images_starred ON images(starred);
CREATE INDEX idx_images_user_id ON images(user_id);
CREATE TABLE boards (
    board_id TEXT NOT NULL PRIMARY KEY, board_name TEXT NOT NULL, cover_image_name TEXT,
    created_at DATETIME NOT NULL DEFAULT(STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW')),
    updated_at DATETIME NOT NULL DEFAULT(STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW')),
    deleted_at DATETIME, archived BOOLEAN DEFAULT FALSE, user_id TEXT DEFAULT 'system',
    is_public BOOLEAN NOT NULL DEFAULT FALSE, board_visibility TEXT NOT NULL DEFAULT 'private',
    FOREIGN KEY (cover_image_name) REFERENCES images (image_name) ON DELETE SET NULL);
CREATE INDEX idx_boards_created_at ON boards (created_at);
CREATE TABLE board_images (
    board_id TEXT NOT NULL, image_name TEXT NOT NULL,
    created_at DATETIME NOT NULL DEFAULT(STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW')),
    updated_at DATETIME NOT NULL DEFAULT(STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW')),
    deleted_at DATETIME, PRIMARY KEY (image_name),
    FOREIGN KEY (board_id) REFERENCES boards (board_id) ON DELETE CASCADE,
    FOREIGN KEY (image_name) REFERENCES images (image_name) ON DELETE CASCADE);
CREATE INDEX idx_board_images_board_id ON board_images (board_id);
CREATE INDEX idx_board_images_board_id_created_at ON board_images (board_id, created_at);
"""
SQLITE_INSERT = (
    "INSERT INTO images (image_name, image_origin, image_category, width, height, session_id, "
    "node_id, metadata, is_intermediate, created_at, updated_at, starred, has_workflow) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
SQLITE_COLS = (
    "images.image_name, images.image_origin, images.image_category, images.width, images.height, "
    "images.session_id, images.node_id, images.metadata, images.is_intermediate, images.created_at, "
    "images.updated_at, images.deleted_at, images.starred, images.has_workflow, board_images.board_id"
)
SQLITE_FROM = (
    "FROM images LEFT JOIN board_images ON board_images.image_name = images.image_name "
    "WHERE images.image_category IN ('general') AND images.is_intermediate = 0"
)


def _ts(d: datetime) -> str:
    return d.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def sqlite_tuple(r: dict) -> tuple:
    return (
        r["image_name"], r["image_origin"], r["image_category"], r["width"], r["height"],
        r["session_id"], r["node_id"], r["metadata"], r["is_intermediate"],
        _ts(r["created_at"]), _ts(r["updated_at"]), r["starred"], r["has_workflow"],
    )  # fmt: skip


def build_sqlite(path: Path, rows: list[dict], boards: list[str]) -> float:
    """Create InvokeAI's tables and bulk-insert; returns rows/s of the images executemany."""
    con = sqlite3.connect(path)
    con.executescript(SQLITE_SCHEMA)
    con.executemany(
        "INSERT INTO boards (board_id, board_name) VALUES (?, ?)",
        [(b, f"board {i}") for i, b in enumerate(boards)],
    )
    t = time.perf_counter()
    con.executemany(SQLITE_INSERT, (sqlite_tuple(r) for r in rows))
    con.commit()
    rate = len(rows) / (time.perf_counter() - t)
    con.executemany(
        "INSERT INTO board_images (board_id, image_name, created_at) VALUES (?, ?, ?)",
        ((r["board_id"], r["image_name"], _ts(r["created_at"])) for r in rows if r["board_id"]),
    )
    con.commit()
    con.execute("ANALYZE")
    con.close()
    return rate


def sqlite_page(
    con: sqlite3.Connection,
    where: str = "",
    params: tuple = (),
    order: str = "images.created_at DESC",
    offset: int = 0,
) -> list:
    sql = f"SELECT {SQLITE_COLS} {SQLITE_FROM} {where} ORDER BY {order} LIMIT 100 OFFSET {offset}"
    return con.execute(sql, params).fetchall()


# -- timing ----------------------------------------------------------------------------------
def median_ms(
    fn: Callable[[], object], repeat: int, before: Callable[[], object] | None = None
) -> float:
    """Median time of ``fn`` after one warm-up; ``before`` runs untimed before each call."""
    fn()
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def invokeai_library(args: argparse.Namespace) -> int:
    """Our gallery queries beside InvokeAI's services, on a library InvokeAI built."""
    import subprocess

    from invoke_nb.interchange.invokeai import import_invokeai

    root = args.invokeai_root
    studio = args.studio or Path(tempfile.mkdtemp(prefix="catalog-bench-")) / "studio"
    fresh = not (studio / "catalog.duckdb").exists()
    cat = Catalog(studio, idle_release=60.0)
    if fresh:
        print(f"importing {root} (records only) ...", flush=True)
        t = time.perf_counter()
        report = import_invokeai(cat, root, files="none", progress=False)
        print(f"  {report.added['images']:,} images in {time.perf_counter() - t:.1f} s")
    cat.indexer.wait()  # the search index is complete (the import left it to the background)
    img = cat.images
    n = img.count(is_intermediate=None)
    board = max(cat.boards.list(), key=lambda b: b.image_count).board_id
    offset = n // 2
    words = [args.search, args.rare, *args.broad]
    rep = args.repeat
    ours = {
        "default page (list + count)": lambda: img.list(
            category="general", starred_first=True, with_total=True
        ),
        "offset page (list + count)": lambda: img.list(
            category="general", starred_first=True, offset=offset, with_total=True
        ),
        "board page (list + count)": lambda: img.list(
            category="general", starred_first=True, board_id=board, with_total=True
        ),
        "uncategorized page (list + count)": lambda: img.list(
            category="general", starred_first=True, board_id="none", with_total=True
        ),
        "newest first, not starred first": lambda: img.list(category="general", with_total=True),
        "boards with counts + covers": lambda: cat.boards.list(),
        "count by model": lambda: img.count_by_model(),
    }
    for w in words:
        ours[f"search {w!r} (list + count)"] = lambda w=w: img.list(
            category="general", starred_first=True, search=w, with_total=True
        )

    # a real write before each timed read: star (or unstar) the newest image, as a kernel
    # generating images writes between a gallery's reads
    newest = img.list(limit=1, is_intermediate=None).names
    flip = [False]

    def write() -> None:
        flip[0] = not flip[0]
        img.star(newest, flip[0])

    def first_ask() -> None:
        """Forget what the keys derived per filter and search word (not the keys)."""
        img.gallery_keys.drop_derived()

    for label in ("default page (list + count)", "board page (list + count)"):
        ours[label.replace(")", ", after a write)")] = ours[label]
    ours["boards with counts, after a write"] = ours["boards with counts + covers"]
    ours["count by model, after a write"] = ours["count by model"]
    theirs: dict[str, float] = {}
    if args.invokeai_python.exists():
        script = Path(__file__).resolve().parent / "invokeai_db" / "invokeai_queries.py"
        cmd = [str(args.invokeai_python), str(script), str(root), "--board", board]
        cmd += ["--offset", str(offset), "--repeat", str(rep)]
        for w in words:
            cmd += ["--search", w]
        print("InvokeAI's services ...", flush=True)
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        theirs = json.loads(out.strip().splitlines()[-1])
    else:
        print(f"no InvokeAI venv at {args.invokeai_python}: its column stays empty")
    print("our queries ...", flush=True)
    img.gallery_keys.forget()  # as a fresh process's first page: reads every key
    t = time.perf_counter()
    img.list(category="general", starred_first=True, with_total=True)
    first_page = (time.perf_counter() - t) * 1000
    print()
    print(f"gallery queries on an InvokeAI-built library of {n:,} images (median of {rep}, ms)")
    print(
        "  keys: from the gallery's in-memory keys (catalog/gallery_keys.py), asked again;"
        " first ask: the filter's (and search word's) masks built afresh; SQL: the same"
        " query with the keys off"
    )
    print(f"  first page after opening the catalog (reads every key): {first_page:.0f} ms")
    head = f"{'query':42} {'keys':>7} {'first ask':>10} {'SQL':>7} {'InvokeAI':>9} {'ratio':>7}"
    print(head)
    for label, fn in ours.items():
        written = "after a write" in label
        keyed = label.startswith(("default", "offset", "board page", "uncat", "newest", "search"))
        before = write if written else None
        d = median_ms(fn, rep, before)
        fresh = median_ms(fn, rep, first_ask) if keyed and not written else None
        img.gallery_keys.enabled = False
        d_sql = median_ms(fn, rep, before) if keyed else None
        img.gallery_keys.enabled = True
        s = theirs.get(label)
        ratio = f"{s / d:.0f}x" if s else "-"

        def cell(x: float | None, width: int) -> str:
            return f"{x:{width}.1f}" if x is not None else f"{'-':>{width}}"

        worst = max(d, fresh or 0.0)
        flag = "" if worst <= 10 else "  (> 10 ms)"
        print(
            f"{label:42} {cell(d, 7)} {cell(fresh, 10)} {cell(d_sql, 7)} {cell(s, 9)} "
            f"{ratio:>7}{flag}",
            flush=True,
        )
    cat.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp dir)")
    env_root = os.environ.get("INVOKEAI_BENCH_ROOT")
    ap.add_argument(
        "--invokeai-root",
        type=Path,
        default=Path(env_root) if env_root else None,
        help="an InvokeAI root built by benchmarks/invokeai_db/build_invokeai_db.py",
    )
    ap.add_argument(
        "--studio", type=Path, help="with --invokeai-root: a studio it was imported into"
    )
    ap.add_argument(
        "--invokeai-python", type=Path, default=Path("/work/ext/invokeai-6.14.2/bin/python")
    )
    ap.add_argument("--search", default=SEARCH_WORD)
    ap.add_argument("--rare", default=RARE_WORD)
    ap.add_argument(
        "--broad",
        nargs="*",
        default=["sdxl", "prompt"],
        help="with --invokeai-root: words most rows hold (a model base, a JSON key name)",
    )
    args = ap.parse_args(argv)
    if args.invokeai_root:
        return invokeai_library(args)
    work = args.dir or Path(tempfile.mkdtemp(prefix="catalog-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    n = args.rows
    print(f"generating {n:,} rows ...", flush=True)
    rows, boards = make_rows(n)
    big_board = boards[0]

    # DuckDB catalog ------------------------------------------------------------------------
    cat = Catalog(work / "studio", idle_release=5.0)
    now = datetime(2024, 1, 1)
    with cat.db.transaction() as conn:
        for i, b in enumerate(boards):
            conn.execute(
                "INSERT INTO boards VALUES (?, ?, NULL, FALSE, ?, ?, NULL)",
                [b, f"board {i}", now, now],
            )
    print("bulk insert into DuckDB ...", flush=True)
    t = time.perf_counter()
    chunk = 100_000
    for s in range(0, n, chunk):
        cat.images.insert_arrow(pa.Table.from_pylist(rows[s : s + chunk], schema=ARROW_SCHEMA))
    duck_bulk = n / (time.perf_counter() - t)
    print("bulk insert into SQLite ...", flush=True)
    sqlite_path = work / "invokeai.db"
    sqlite_bulk = build_sqlite(sqlite_path, rows, boards)
    con = sqlite3.connect(sqlite_path)
    # a million dicts alive would make every garbage collection crawl through them and slow
    # whichever side allocates more objects per query; drop them before timing
    del rows
    gc.collect()
    gc.freeze()

    mid = cat.images.list(limit=100, offset=n // 2 - 100, category="general")
    cursor = mid.next_cursor
    last = mid.items[-1]
    last_ts = _ts(last.created_at.replace(tzinfo=None))
    rep = args.repeat
    img = cat.images
    results: list[tuple[str, float, float | None, str]] = []

    def both(
        label: str, duck: Callable[[], object], lite: Callable[[], object] | None, note: str = ""
    ) -> None:
        d = median_ms(duck, rep)
        s = median_ms(lite, rep) if lite else None
        results.append((label, d, s, note))
        print(
            f"  {label}: duckdb {d:.1f} ms" + (f", sqlite {s:.1f} ms" if s is not None else ""),
            flush=True,
        )

    print("queries ...", flush=True)
    both("newest page, offset 0", lambda: img.list(category="general"), lambda: sqlite_page(con))
    both(
        f"newest page, offset {n // 2:,}",
        lambda: img.list(category="general", offset=n // 2),
        lambda: sqlite_page(con, offset=n // 2),
    )
    both(
        f"keyset page at depth {n // 2:,}",
        lambda: img.list(category="general", cursor=cursor),
        lambda: sqlite_page(
            con,
            "AND images.created_at <= ? AND (images.created_at < ? OR images.image_name < ?)",
            (last_ts, last_ts, last.image_name),
            order="images.created_at DESC, images.image_name DESC",
        ),
        "SQLite: keyset on its created_at index (InvokeAI itself pages by offset)",
    )
    both(
        "board page (1 of 20 boards)",
        lambda: img.list(category="general", board_id=big_board),
        lambda: sqlite_page(con, "AND board_images.board_id = ?", (big_board,)),
    )
    both(
        "uncategorized page",
        lambda: img.list(category="general", board_id="none"),
        lambda: sqlite_page(con, "AND board_images.board_id IS NULL"),
    )
    both(
        "starred-first page",
        lambda: img.list(category="general", starred_first=True),
        lambda: sqlite_page(con, order="images.starred DESC, images.created_at DESC"),
    )
    both(
        f"prompt search page ({SEARCH_WORD!r})",
        lambda: img.list(category="general", search=SEARCH_WORD),
        lambda: sqlite_page(
            con,
            "AND (images.metadata LIKE ? OR images.created_at LIKE ?)",
            (f"%{SEARCH_WORD}%",) * 2,
        ),
        "SQLite: InvokeAI's LIKE over the metadata JSON",
    )
    both(
        f"prompt search page, rare word ({RARE_WORD!r})",
        lambda: img.list(category="general", search=RARE_WORD),
        lambda: sqlite_page(
            con, "AND (images.metadata LIKE ? OR images.created_at LIKE ?)", (f"%{RARE_WORD}%",) * 2
        ),
        "few matches: both sides read most of the table",
    )
    both(
        "count by model",
        lambda: img.count_by_model(),
        lambda: con.execute(
            "SELECT json_extract(metadata, '$.model.name') m, count(*) FROM images "
            "WHERE is_intermediate = 0 GROUP BY m"
        ).fetchall(),
        "SQLite: json_extract over metadata (no model column in InvokeAI's table)",
    )
    both(
        "gallery count (total)",
        lambda: img.count(category="general"),
        lambda: con.execute(f"SELECT count(*) {SQLITE_FROM}").fetchall(),
    )
    both(
        "board list with counts + covers",
        lambda: cat.boards.list(),
        lambda: con.execute(
            "SELECT b.board_id, b.board_name, (SELECT count(*) FROM board_images bi JOIN images i "
            "USING (image_name) WHERE bi.board_id = b.board_id AND i.is_intermediate = 0), "
            "(SELECT bi.image_name FROM board_images bi WHERE bi.board_id = b.board_id "
            "ORDER BY bi.created_at DESC LIMIT 1) FROM boards b ORDER BY b.created_at"
        ).fetchall(),
    )
    cold = []
    for _ in range(5):
        cat.release()
        t = time.perf_counter()
        img.list(category="general")
        cold.append((time.perf_counter() - t) * 1000)
    results.append(
        (
            "newest page incl. opening the file",
            statistics.median(cold),
            None,
            "the cost when another kernel had the file",
        )
    )

    # inserts ---------------------------------------------------------------------------------
    print("single inserts ...", flush=True)
    extra, _ = make_rows(2000, seed=99)
    for r in extra:
        r["board_id"] = None
    k = 200
    t = time.perf_counter()
    for r in extra[:k]:
        img.insert_records([r])
    duck_single = k / (time.perf_counter() - t)
    t = time.perf_counter()
    for r in extra[k : 2 * k]:
        con.execute(SQLITE_INSERT, sqlite_tuple(r))
        con.commit()
    sqlite_single = k / (time.perf_counter() - t)
    results.append(
        (
            "single inserts/s (record, own transaction)",
            duck_single,
            sqlite_single,
            "rate: higher is better",
        )
    )
    results.append(
        ("bulk inserts/s", duck_bulk, sqlite_bulk, "rate: DuckDB Arrow batches vs executemany")
    )
    from PIL import Image

    tiny = Image.new("RGB", (64, 64), "gray")
    t = time.perf_counter()
    for _ in range(50):
        img.save(tiny, metadata={"positive_prompt": "bench", "seed": 1})
    results.append(
        (
            "images.save()/s (PNG+thumbnail+fsync+record)",
            50 / (time.perf_counter() - t),
            None,
            "rate",
        )
    )

    # table -------------------------------------------------------------------------------------
    print()
    print(f"catalog benchmark, {n:,} images (median of {rep}, ms unless a rate)")
    print(f"{'operation':46} {'DuckDB':>10} {'SQLite':>10} {'ratio':>7}  note")
    for label, d, s, note in results:
        is_rate = "/s" in label
        if s is None:
            ratio = "-"
        elif is_rate:
            ratio = f"{d / s:.2f}x"
        else:
            ratio = f"{s / d:.2f}x"
        flag = "" if is_rate or d <= 50 else "  (> 50 ms)"
        s_text = f"{s:10.1f}" if s is not None else f"{'-':>10}"
        print(f"{label:46} {d:10.1f} {s_text} {ratio:>7}  {note}{flag}")
    print("ratio = how many times faster DuckDB is (SQLite time / DuckDB time, or rate / rate)")
    cat.close()
    con.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
