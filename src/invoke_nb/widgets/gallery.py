"""The gallery widget: a virtualized grid over the catalog, in the browser, paged by the kernel.

The browser never holds the whole gallery: it asks for the pages under its viewport
(``page`` requests with an offset), first page first, and the kernel answers each with one
Arrow IPC buffer whose ``thumbnail`` column holds the WebP bytes straight from disk (one
buffer per page: fewer frames on the comm, one decode in the browser). Filters are
traits (``board``, ``starred``, ``search``, ``order``, ``starred_first``) so Python and the
browser share them; the selection is the ``selection`` trait and :attr:`Gallery.selected`
turns it into :class:`~invoke_nb.studio.StudioImage` objects. The queue's ``image_saved`` and
``progress`` events keep the grid live and show the running item's previews.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import traitlets
from pydantic import Field

from invoke_nb.catalog.images import UNCATEGORIZED
from invoke_nb.widgets.arrow import records_to_ipc
from invoke_nb.widgets.messages import MessageWidget, Params, Reply, handler

if TYPE_CHECKING:
    from PIL import Image

    from invoke_nb.studio import Studio, StudioImage

__all__ = ["PAGE_SCHEMA", "Gallery", "encode_preview"]

PAGE_SCHEMA = pa.schema(
    [
        ("image_name", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("starred", pa.bool_()),
        ("board_id", pa.string()),
        ("positive_prompt", pa.string()),
        ("model_name", pa.string()),
        ("seed", pa.int64()),
        ("created_at", pa.string()),
        ("has_thumbnail", pa.bool_()),
        ("thumbnail", pa.binary()),  # WebP bytes; empty when the file is missing
    ]
)
"""Columns of a gallery page as the browser reads them (extension/src/widgets/gallery)."""

MAX_PAGE = 500
PREVIEW_INTERVAL = 0.1  # seconds between progress previews sent to the browser


def encode_preview(image: Image.Image, size: int = 256) -> bytes:
    """A progress preview as JPEG bytes (small: it is sent at every denoise step)."""
    im = image.convert("RGB")
    im.thumbnail((size, size))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=80)
    return buf.getvalue()


class Filter(Params):
    board: str = ""
    starred: bool = False
    search: str = ""
    order: Literal["newest", "oldest"] = "newest"
    starred_first: bool = False


class PageParams(Filter):
    offset: int = Field(0, ge=0)
    limit: int = Field(100, ge=1, le=MAX_PAGE)


class Names(Params):
    names: list[str] = Field(min_length=1)


class StarParams(Names):
    starred: bool = True


class MoveParams(Names):
    board_id: str | None = None


class DeleteParams(Names):
    confirm: bool = False


class OneImage(Params):
    name: str


class RerunParams(OneImage):
    seed: int | None = None


class UseParams(OneImage):
    purpose: Literal["img2img", "canvas"] = "img2img"


class BoardName(Params):
    name: str = Field(min_length=1, max_length=300)


Callback = Callable[..., Any]


class Gallery(MessageWidget):
    """Browse, filter and manage the catalog's images (``studio.gallery()``).

    Callbacks: :meth:`on_recall` gets ``(image, graph)`` when the person asks to recall an
    image's graph (a graph editor connects here); :meth:`on_use` gets ``(image, purpose)``
    with purpose ``"img2img"`` or ``"canvas"``.

    Keyboard, with the grid focused (click it or Tab to it): arrow keys move the selection by
    one tile or one row, PageUp/PageDown by a screenful, Home/End to the first/last image;
    Shift with any of these extends the selection; Enter opens the image's details; Space
    stars the selection (or unstars it when the current image is starred); Delete asks to
    delete the selection; Escape closes the details, then clears the selection.

    Layout: in a cell the grid is ``height`` px tall with tiles at least ``thumb_size`` px
    wide; docked in a panel (``gallery.show()``) it fills the panel; narrower than 560 px the
    boards become a menu in the toolbar and tiles shrink to 72 px.
    """

    _bundle = "gallery"

    board = traitlets.Unicode("").tag(sync=True)
    starred = traitlets.Bool(False).tag(sync=True)
    search = traitlets.Unicode("").tag(sync=True)
    order = traitlets.Enum(["newest", "oldest"], "newest").tag(sync=True)
    starred_first = traitlets.Bool(False).tag(sync=True)
    selection = traitlets.List(traitlets.Unicode()).tag(sync=True)
    page_size = traitlets.Int(100).tag(sync=True)
    thumb_size = traitlets.Int(100).tag(sync=True)  # smallest cell width, px (narrow views: 72)
    height = traitlets.Int(560).tag(sync=True)  # grid viewport height, px
    # The first page, made with the widget (Arrow IPC as a ``page`` reply holds it) and its
    # filters and total: a new view shows it without a round trip to the kernel. Dropped when
    # what it shows may change (filters, star/move/delete, a new image, refresh()); views
    # then ask as usual.
    _first_page = traitlets.Bytes(b"").tag(sync=True)
    _first_page_meta = traitlets.Dict().tag(sync=True)

    def __init__(self, studio: Studio, **kwargs: Any) -> None:
        self.studio = studio  # before the traits: validating ``board`` needs the catalog
        super().__init__(**kwargs)
        self._recall_cbs: list[Callback] = []
        self._use_cbs: list[Callback] = []
        self._last_preview = 0.0
        self._subs = [
            studio.events.on("image_saved", self._on_image_saved, main_thread=True),
            studio.events.on("progress", self._on_progress, main_thread=True, previews=True),
            studio.events.on("queue_item_status_changed", self._on_item_status, main_thread=True),
        ]
        self._prefill()
        self.observe(
            lambda _change: self._drop_first_page(),
            names=["board", "starred", "search", "order", "starred_first", "page_size"],
        )

    def _prefill(self) -> None:
        f = Filter(
            board=self.board,
            starred=self.starred,
            search=self.search,
            order=self.order,
            starred_first=self.starred_first,
        )
        reply = self._page(PageParams(**f.model_dump(), limit=min(self.page_size, MAX_PAGE)), [])
        self._first_page_meta = {"filter": f.model_dump(), **reply.result}
        self._first_page = bytes(reply.buffers[0])

    def _drop_first_page(self) -> None:
        if self._first_page:
            self._first_page = b""
            self._first_page_meta = {}

    def dispatch(
        self, content: Any, buffers: Sequence[bytes | memoryview] = ()
    ) -> tuple[dict[str, Any], list[bytes | memoryview]] | None:
        """Answer a browser request; the first page made with the widget is now out of date."""
        answer = super().dispatch(content, buffers)
        if answer is not None and content.get("method") not in (
            "page",
            "boards",
            "names",
            "detail",
        ):
            self._drop_first_page()  # star, move, delete, ... changed what a page shows
        return answer

    @traitlets.validate("board")
    def _valid_board(self, proposal: dict[str, Any]) -> str:
        """A board id, ``"none"`` (uncategorized), ``""`` (all), or a board name (made an id)."""
        value = proposal["value"]
        if value in ("", UNCATEGORIZED):
            return value
        boards = self.studio.catalog.boards.list(include_archived=True)
        for b in boards:
            if value == b.board_id:
                return value
        named = [b.board_id for b in boards if b.board_name == value]
        if len(named) == 1:
            return named[0]
        raise traitlets.TraitError(
            f"no board with id or name {value!r}"
            if not named
            else f"{len(named)} boards are named {value!r}; use the board id"
        )

    # -- the Python side ----------------------------------------------------------------------
    @property
    def selected(self) -> list[StudioImage]:
        """The selected images, in selection order."""
        from invoke_nb.studio import StudioImage

        return [StudioImage(self.studio, n) for n in self.selection]

    def on_recall(self, callback: Callable[[StudioImage, Any], Any]) -> Callable[[], None]:
        """Call ``callback(image, graph)`` on "recall"; returns the unsubscribe function."""
        self._recall_cbs.append(callback)
        return lambda: self._recall_cbs.remove(callback)

    def on_use(self, callback: Callable[[StudioImage, str], Any]) -> Callable[[], None]:
        """Call ``callback(image, purpose)`` on "use as img2img / canvas input"."""
        self._use_cbs.append(callback)
        return lambda: self._use_cbs.remove(callback)

    def refresh(self) -> None:
        """Make the browser fetch boards and pages again (after changes made in Python)."""
        self._drop_first_page()
        self.send_event("changed", {"reason": "refresh"})

    def close(self) -> None:
        for off in self._subs:
            off()
        self._subs = []
        super().close()

    def _filter_kwargs(self, f: Filter) -> dict[str, Any]:
        return {
            "board_id": f.board or None,
            "starred": True if f.starred else None,
            "search": f.search.strip() or None,
        }

    def _image(self, name: str) -> StudioImage:
        return self.studio.image(name)  # NotFoundError (a LookupError) names the image

    # -- events from the queue ----------------------------------------------------------------
    def _on_image_saved(self, _kind: str, payload: dict[str, Any]) -> None:
        self._drop_first_page()
        self.send_event("image_added", {"image_name": payload.get("image_name")})

    def _on_progress(self, _kind: str, payload: dict[str, Any]) -> None:
        image = payload.get("image")
        now = time.monotonic()
        step, total = payload.get("step"), payload.get("total")
        last_step = step is not None and total is not None and step >= total
        if image is None or (now - self._last_preview < PREVIEW_INTERVAL and not last_step):
            return
        self._last_preview = now
        data = {
            "item_id": payload.get("item_id"),
            "step": step,
            "total": total,
            "fraction": payload.get("fraction"),
        }
        self.send_event("preview", data, [encode_preview(image)])

    def _on_item_status(self, _kind: str, payload: dict[str, Any]) -> None:
        if payload.get("status") in ("completed", "failed", "canceled"):
            self.send_event("preview_done", {"item_id": payload.get("item_id")})

    # -- browser requests ---------------------------------------------------------------------
    @handler("page", PageParams)
    def _page(self, p: PageParams, _b: list[bytes]) -> Reply:
        images = self.studio.catalog.images
        kw = self._filter_kwargs(p)
        total = images.count(**kw)
        page = images.list(
            **kw, order=p.order, starred_first=p.starred_first, offset=p.offset, limit=p.limit
        )
        rows: list[dict[str, Any]] = []
        for r in page.items:
            try:
                thumb = images.files.thumbnail_path(r.image_name).read_bytes()
            except (FileNotFoundError, ValueError):  # ValueError: a row with an unsafe name
                thumb = b""
            rows.append(
                {
                    "image_name": r.image_name,
                    "width": r.width,
                    "height": r.height,
                    "starred": r.starred,
                    "board_id": r.board_id,
                    "positive_prompt": r.positive_prompt,
                    "model_name": r.model_name,
                    "seed": r.seed,
                    "created_at": r.created_at.isoformat(),
                    "has_thumbnail": bool(thumb),
                    "thumbnail": thumb,
                }
            )
        table = records_to_ipc(rows, PAGE_SCHEMA)
        return Reply({"offset": p.offset, "count": len(rows), "total": total}, [table])

    @handler("names", PageParams)
    def _names(self, p: PageParams, _b: list[bytes]) -> list[str]:
        """Image names of a range (shift-click over rows the browser has not loaded)."""
        page = self.studio.catalog.images.list(
            **self._filter_kwargs(p),
            order=p.order,
            starred_first=p.starred_first,
            offset=p.offset,
            limit=p.limit,
        )
        return page.names

    @handler("boards")
    def _boards(self, _p: Params, _b: list[bytes]) -> dict[str, Any]:
        cat = self.studio.catalog
        boards = [
            {"board_id": b.board_id, "board_name": b.board_name, "image_count": b.image_count}
            for b in cat.boards.list()
        ]
        return {
            "boards": boards,
            "all": cat.images.count(),
            "uncategorized": cat.boards.uncategorized_count(),
            "starred": cat.images.count(starred=True),
            "uncategorized_id": UNCATEGORIZED,
        }

    @handler("create_board", BoardName)
    def _create_board(self, p: BoardName, _b: list[bytes]) -> dict[str, Any]:
        rec = self.studio.catalog.boards.create(p.name.strip())
        return {"board_id": rec.board_id, "board_name": rec.board_name}

    @handler("star", StarParams)
    def _star(self, p: StarParams, _b: list[bytes]) -> dict[str, Any]:
        n = self.studio.catalog.images.star(p.names, p.starred)
        return {"changed": n}

    @handler("move", MoveParams)
    def _move(self, p: MoveParams, _b: list[bytes]) -> dict[str, Any]:
        board = None if p.board_id in (None, "", UNCATEGORIZED) else p.board_id
        n = self.studio.catalog.images.move_to_board(p.names, board)
        return {"changed": n}

    @handler("delete", DeleteParams)
    def _delete(self, p: DeleteParams, _b: list[bytes]) -> dict[str, Any]:
        if not p.confirm:
            raise ValueError(
                f"deleting {len(p.names)} image(s) needs confirm=true (the browser asks first)"
            )
        n = self.studio.catalog.images.delete(p.names)
        gone = set(p.names)
        self.selection = [s for s in self.selection if s not in gone]
        return {"deleted": n}

    @handler("detail", OneImage)
    def _detail(self, p: OneImage, _b: list[bytes]) -> Reply:
        images = self.studio.catalog.images
        rec = images.get(p.name)
        png = images.path(p.name).read_bytes()
        board_name = None
        if rec.board_id:
            board_name = self.studio.catalog.boards.get(rec.board_id).board_name
        info = rec.model_dump(mode="json", exclude={"metadata"})
        info["board_name"] = board_name
        info["metadata"] = rec.metadata or {}
        return Reply(info, [png])

    @handler("recall", OneImage)
    def _recall(self, p: OneImage, _b: list[bytes]) -> dict[str, Any]:
        img = self._image(p.name)
        graph = self.studio.recall(img)
        for cb in list(self._recall_cbs):
            cb(img, graph)
        return {"nodes": len(graph.nodes), "listeners": len(self._recall_cbs)}

    @handler("use", UseParams)
    def _use(self, p: UseParams, _b: list[bytes]) -> dict[str, Any]:
        img = self._image(p.name)
        self.selection = [p.name]
        for cb in list(self._use_cbs):
            cb(img, p.purpose)
        return {"listeners": len(self._use_cbs)}

    @handler("rerun", RerunParams)
    def _rerun(self, p: RerunParams, _b: list[bytes]) -> dict[str, Any]:
        """Queue the image's graph again with a new seed; the result arrives as a live image.

        Same graph as ``studio.rerun`` but enqueued, so the kernel stays free while it runs.
        """
        import random

        from invoke_nb.interchange.recall import set_seed

        seed = p.seed if p.seed is not None else random.randint(0, 2**32 - 1)
        graph = self.studio.recall(self._image(p.name))
        set_seed(graph, seed)
        ids = self.studio.enqueue(graph)
        return {"item_ids": ids, "seed": seed}
