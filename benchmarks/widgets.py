"""Widget benchmarks in a real JupyterLab driven by Chromium (Playwright, Debian's chromium).

    .venv/bin/python -m benchmarks.widgets                 # every part
    .venv/bin/python -m benchmarks.widgets gallery --images 10000 --repeat 10

Parts (each a function ``bench_<name>(server, browser, args) -> dict``, listed in ``PARTS``;
``main`` runs those asked for, or all, in one JupyterLab and one browser):

- ``gallery``: a catalog of ``--images`` synthetic rows (``benchmarks.catalog.make_rows``),
  each with a real WebP thumbnail on disk. The gallery widget shows 100 thumbnails at once;
  the time measured runs from the moment the browser sends the ``page`` request to the
  moment all 100 thumbnails of the answer are decoded and laid out (the widget writes it to
  ``data-page-ms`` on its root). Each repeat changes the sort order (a new first page),
  alternating newest / oldest (so only the first repeat shows thumbnails the browser has not
  shown before: ``page_of_100_first_show_ms``). Beside it, in the same run, the baseline: a
  bare anywidget that asks for 100 of the same thumbnails over one custom message and shows them as plain
  ``<img>`` elements (``bare_anywidget_100_ms_median``). Also: from a gallery cell's first
  line running in a warm kernel (and in a fresh kernel, import included) to its first 100
  thumbnails shown. The kernel-side handler time (Arrow + thumbnail reads) is measured
  separately, without a browser, at the first page and at offset n/2.
- ``editor``: a graph of ``--nodes`` nodes (chains integer -> add -> mul -> add) in the graph
  editor, auto-laid out and fitted to the view (every node drawn). The pane is dragged
  (panned) by the mouse in small steps for about two seconds while the page records the
  interval between animation frames; reported: median, 95th percentile and worst frame time,
  and the share of frames slower than 60 fps.
"""

# ruff: noqa: E402  (imports follow the sys.path fix above them)
from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, Python puts benchmarks/ first on sys.path (benchmarks/queue.py would shadow
# the standard library's ``queue``): drop it; the repo root makes ``tests.browser.lab`` importable.
_HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0]).resolve() == _HERE:
    sys.path.pop(0)
if str(_HERE.parent) not in sys.path:
    sys.path.insert(0, str(_HERE.parent))

import argparse
import io
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from PIL import Image

from benchmarks.catalog import make_rows
from invoke_nb.catalog import Catalog
from invoke_nb.catalog.files import THUMBNAIL_SIZE


def _thumbnail_bytes(count: int, seed: int = 3) -> list[bytes]:
    """``count`` distinct noisy WebP thumbnails (real sizes, ~5-15 kB each)."""
    rnd = random.Random(seed)
    out = []
    for _ in range(count):
        small = Image.frombytes("RGB", (16, 16), rnd.randbytes(16 * 16 * 3))
        im = small.resize((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        im.save(buf, "WEBP", quality=80)
        out.append(buf.getvalue())
    return out


def build_gallery(root: Path, images: int) -> Path:
    """A studio root whose catalog holds ``images`` rows, each with a thumbnail file."""
    rows, board_ids = make_rows(images)
    with Catalog(root) as cat:
        made = {b: cat.boards.create(f"board {i}").board_id for i, b in enumerate(board_ids)}
        for r in rows:
            r["board_id"] = made.get(r["board_id"])
        cat.images.insert_records(rows)
        # 200 distinct thumbnails, row i gets i % 200: the newest and the oldest pages (rows
        # made in time order) hold 100 distinct thumbnails each and share none, so a page shown
        # for the first time is not served from the browser's image cache
        thumbs = _thumbnail_bytes(200)
        for i, r in enumerate(rows):
            cat.images.files.thumbnail_path(r["image_name"]).write_bytes(thumbs[i % len(thumbs)])
    return root


def kernel_page_times(root: Path, repeat: int) -> dict[str, float]:
    """Median ms of the gallery's ``page`` handler (no browser) at the top and the middle."""
    from invoke_nb.studio import Studio
    from invoke_nb.widgets.gallery import Gallery

    out: dict[str, float] = {}
    with Studio(root, start_queue=False) as studio:
        total = studio.catalog.images.count()
        gal = Gallery(studio)
        for label, offset in (("kernel_first_page_ms", 0), ("kernel_mid_page_ms", total // 2)):
            times = []
            for _ in range(repeat + 1):
                t0 = time.perf_counter()
                reply = gal.dispatch(
                    {
                        "kind": "request",
                        "id": 1,
                        "method": "page",
                        "params": {"offset": offset, "limit": 100},
                    }
                )
                times.append((time.perf_counter() - t0) * 1000)
                assert reply is not None and reply[0]["ok"], reply
            out[label] = statistics.median(times[1:])
        gal.close()
    return out


BARE_CELL = """\
import anywidget, pathlib

class Bare(anywidget.AnyWidget):
    \"\"\"The floor: 100 thumbnails over one custom message, one buffer each, plain <img>s.\"\"\"
    _esm = \"\"\"
    export default { render({ model, el }) {
      let t0 = 0, gen = 0;
      model.on("msg:custom", (msg, buffers) => {
        el.dataset.replyMs = (performance.now() - t0).toFixed(1);
        const box = document.createElement("div");
        let left = buffers.length;
        for (const b of buffers) {
          const img = document.createElement("img");
          img.width = 96; img.height = 96;
          img.onload = () => { if (--left === 0) requestAnimationFrame(() => {
            el.dataset.pageMs = (performance.now() - t0).toFixed(1); el.dataset.pageGen = String(++gen); }); };
          img.src = URL.createObjectURL(new Blob([b], { type: "image/webp" }));
          box.append(img);
        }
        el.replaceChildren(box);
      });
      el.inbAsk = (offset) => { t0 = performance.now(); model.send({ offset }); };
      el.classList.add("inb-bare");
    } }\"\"\"

    def __init__(self, folder):
        super().__init__()
        self.files = sorted(pathlib.Path(folder).rglob("*.webp"))[:400]
        self.on_msg(lambda _w, c, _b: self.send(
            {"n": 100}, [p.read_bytes() for p in self.files[c["offset"]:c["offset"] + 100]]))

bare = Bare({folder!r})
bare"""


def bench_bare(page: Any, nb: Any, cell: int, repeat: int) -> tuple[list[float], list[float]]:
    """Request-to-rendered and request-to-reply times of the bare anywidget (BARE_CELL)."""
    nb.run_cell(cell)
    bare = page.locator(".inb-bare")
    bare.wait_for(state="attached")
    times, replies = [], []
    for i in range(repeat + 1):  # the first one warms up
        gen = bare.evaluate("el => el.dataset.pageGen || ''")
        bare.evaluate("(el, off) => el.inbAsk(off)", (i % 2) * 100)
        page.wait_for_function(
            "([el, g]) => el.dataset.pageGen && el.dataset.pageGen !== g",
            arg=[bare.element_handle(), gen],
        )
        times.append(float(bare.evaluate("el => el.dataset.pageMs")))
        replies.append(float(bare.evaluate("el => el.dataset.replyMs")))
    return times[1:], replies[1:]


WARMUP_CELL = """\
import time
import invoke_nb as inb
studio = inb.Studio({root!r}, start_queue=False)
print("READY")"""

GALLERY_CELL = """\
import time
T0 = time.time() * 1000
gal = studio.gallery(thumb_size=96, height=900)
print("T0", T0)
gal"""

FRESH_CELL = """\
import time
T0 = time.time() * 1000
import invoke_nb as inb
studio = inb.Studio({root!r}, start_queue=False)
gal = studio.gallery(thumb_size=96, height=900)
print("T0", T0)
gal"""


def _stop_kernels(server: Any) -> None:
    """Shut down every kernel of the server (through its REST API)."""
    import urllib.request

    url = f"{server.url}/api/kernels?token={server.token}"
    with urllib.request.urlopen(url, timeout=10) as r:
        kernels = json.loads(r.read())
    for k in kernels:
        req = urllib.request.Request(
            f"{server.url}/api/kernels/{k['id']}?token={server.token}", method="DELETE"
        )
        urllib.request.urlopen(req, timeout=30).close()


def cell_to_shown_ms(page: Any, nb: Any, cell: int) -> float:
    """From the cell's first line running in the kernel to its gallery's first page shown."""
    import re

    nb.run_cell(cell)
    gallery = nb.cell(cell).locator(".inb-gallery")
    page.wait_for_function(
        "el => el.dataset.pageShownAt", arg=gallery.element_handle(timeout=120_000)
    )
    t0 = float(re.search(r"T0 ([\d.]+)", nb.output_text(cell, "T0")).group(1))
    return float(gallery.evaluate("el => el.dataset.pageShownAt")) - t0


def bench_gallery(server: Any, browser: Any, args: argparse.Namespace) -> dict[str, Any]:
    from tests.browser.lab import Notebook

    work = Path(tempfile.mkdtemp(prefix="inb-bench-gallery-"))
    t0 = time.perf_counter()
    root = build_gallery(work / "studio", args.images)
    build_s = time.perf_counter() - t0
    kernel = kernel_page_times(root, args.repeat)

    context = browser.new_context(viewport={"width": 2400, "height": 1400})
    page = context.new_page()
    page.set_default_timeout(60_000)
    with Catalog(root) as cat:
        thumbs = cat.images.files.thumbnails_dir
    # a fresh kernel: import, studio and gallery in one cell (its own notebook, its own kernel)
    fresh = Notebook.open(
        page, server, "bench_gallery_fresh.ipynb", [FRESH_CELL.format(root=str(root))]
    )
    fresh_ms = cell_to_shown_ms(page, fresh, 0)
    _stop_kernels(server)  # its studio holds the catalog's lock

    cells = [
        WARMUP_CELL.format(root=str(root)),
        GALLERY_CELL,
        BARE_CELL.replace("{folder!r}", repr(str(thumbs))),
    ]
    nb = Notebook.open(page, server, "bench_gallery.ipynb", cells)
    nb.run_cell(0)
    nb.output_text(0, "READY", timeout=120_000)
    warm_ms = cell_to_shown_ms(page, nb, 1)
    gallery = nb.cell(1).locator(".inb-gallery")

    replies: list[float] = []

    def measured(gen_before: str | None) -> tuple[float, int, str]:
        page.wait_for_function(
            "([el, g]) => el.dataset.pageMs && el.dataset.pageGen !== g",
            arg=[gallery.element_handle(), gen_before or ""],
        )
        d = gallery.evaluate("el => ({...el.dataset})")
        if gen_before is not None:  # the first page came with the widget: no reply to time
            replies.append(float(d["pageReplyMs"]))
        return float(d["pageMs"]), int(d["pageCount"]), d["pageGen"]

    first_ms, count, gen = measured(None)
    if count != 100:
        raise RuntimeError(f"the viewport showed {count} thumbnails of the first page, not 100")
    times = []  # the first (oldest first) is a page never shown before; later ones come back
    for i in range(args.repeat):
        gallery.locator(".inb-sort").select_option("oldest" if i % 2 == 0 else "newest")
        ms, count, gen = measured(gen)
        times.append(ms)
    nb.screenshot("bench_gallery", gallery)
    bare, bare_replies = bench_bare(page, nb, 2, args.repeat)
    context.close()
    return {
        "images": args.images,
        "catalog_build_s": round(build_s, 1),
        "warm_cell_run_to_100_shown_ms": round(warm_ms, 1),
        "fresh_kernel_cell_run_to_100_shown_ms": round(fresh_ms, 1),
        "first_page_decode_to_shown_ms": round(first_ms, 1),  # it came with the widget
        "page_of_100_ms_median": round(statistics.median(times), 1),
        "bare_anywidget_100_ms_median": round(statistics.median(bare), 1),
        "bare_reply_arrived_ms_median": round(statistics.median(bare_replies), 1),
        "page_of_100_first_show_ms": round(times[0], 1),  # thumbnails not shown before
        "page_of_100_ms_min": round(min(times), 1),
        "page_of_100_ms_max": round(max(times), 1),
        "reply_arrived_ms_median": round(statistics.median(replies), 1),
        **{k: round(v, 1) for k, v in kernel.items()},
    }


EDITOR_CELL = """\
import invoke_nb as inb
from invoke_nb.widgets import GraphEditor
g = inb.Graph()
for i in range({chains}):
    a = g.add("integer", id=f"i{{i}}", value=i)
    b = g.add("add", id=f"a{{i}}", b=1)
    c = g.add("mul", id=f"m{{i}}", b=2)
    d = g.add("add", id=f"s{{i}}", b=3)
    g.connect(a, "value", b, "a"); g.connect(b, "value", c, "a"); g.connect(c, "value", d, "a")
editor = GraphEditor(g)
editor"""

FRAME_RECORDER = """() => {
    const rec = window.__inbFrames = {times: [], on: true};
    const tick = t => { rec.times.push(t); if (rec.on) requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
}"""


def bench_editor(server: Any, browser: Any, args: argparse.Namespace) -> dict[str, Any]:
    import itertools

    from tests.browser.lab import Notebook

    chains = max(1, args.nodes // 4)
    context = browser.new_context(viewport={"width": 1600, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(120_000)
    nb = Notebook.open(page, server, "bench_editor.ipynb", [EDITOR_CELL.format(chains=chains)])
    nb.run_cell(0)
    editor = page.locator(".inb-graph-editor")
    page.wait_for_function(
        "n => document.querySelectorAll('.inb-graph-editor .react-flow__node .inb-node').length === n",
        arg=chains * 4,
    )
    page.wait_for_timeout(1500)  # auto-layout and fit
    pane = editor.locator(".react-flow__pane").bounding_box()
    cx, cy = pane["x"] + pane["width"] / 2, pane["y"] + pane["height"] / 2
    results = []
    for r in range(args.repeat):
        page.evaluate(FRAME_RECORDER)
        page.mouse.move(cx - 200, cy)
        page.mouse.down()
        for i in range(161):  # right, left, right, left: ends where it started
            dx = 200 - abs((i * 10) % 800 - 400)
            page.mouse.move(cx + dx, cy + (r % 2) * 20)
            page.wait_for_timeout(16)
        page.mouse.up()
        times = page.evaluate(
            "() => { window.__inbFrames.on = false; return window.__inbFrames.times; }"
        )
        results += [b - a for a, b in itertools.pairwise(times)]
    nb.screenshot("bench_editor", editor)
    context.close()
    results.sort()
    return {
        "nodes": chains * 4,
        "frames": len(results),
        "frame_ms_median": round(statistics.median(results), 1),
        "frame_ms_p95": round(results[int(0.95 * (len(results) - 1))], 1),
        "frame_ms_max": round(results[-1], 1),
        "slower_than_60fps": round(sum(t > 17.5 for t in results) / len(results), 3),
    }


PARTS: dict[str, Callable[[Any, Any, argparse.Namespace], dict[str, Any]]] = {
    "gallery": bench_gallery,
    "editor": bench_editor,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("parts", nargs="*", help=f"parts to run (default all: {', '.join(PARTS)})")
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--nodes", type=int, default=200, help="editor: nodes in the graph")
    args = ap.parse_args()
    unknown = [p for p in args.parts if p not in PARTS]
    if unknown:
        ap.error(f"unknown part(s) {unknown}; parts: {', '.join(PARTS)}")
    chosen = args.parts or list(PARTS)

    from playwright.sync_api import sync_playwright
    from tests.browser.lab import CHROMIUM, CHROMIUM_ARGS, LabServer

    server = LabServer.start(Path(tempfile.mkdtemp(prefix="inb-bench-lab-")))
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for name in chosen:
                    result = PARTS[name](server, browser, args)
                    print(json.dumps({"part": name, **result}), flush=True)
            finally:
                browser.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
