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

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import traitlets
from pydantic import Field, field_validator

from invoke_nb.catalog.query import UNCATEGORIZED, ImageQuery
from invoke_nb.widgets.arrow import table_to_ipc
from invoke_nb.widgets.imaging import encode_image
from invoke_nb.widgets.messages import MessageWidget, Params, Reply, handler

if TYPE_CHECKING:
    from invoke_nb.widgets.api import CataloguedImage as StudioImage
    from invoke_nb.widgets.api import StudioAPI

__all__ = ["PAGE_SCHEMA", "Gallery"]

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
PAGE_COLUMNS = tuple(PAGE_SCHEMA.names[:-2])  # from DuckDB; the thumbnail columns from disk

MAX_PAGE = 500
PREVIEW_INTERVAL = 0.1  # seconds between progress previews sent to the browser


FILTER_TRAITS = ("board", "starred", "search", "order", "starred_first")
"""The :class:`ImageQuery` fields the gallery keeps as traits (shared with the browser)."""


class GalleryQuery(ImageQuery):
    """A page request: an :class:`ImageQuery` as the browser sends it (its star toggle off
    means no star filter; blank board and search mean none), at most :data:`MAX_PAGE` rows.
    ``extension/src/widgets/gallery/query.ts`` is generated from this class
    (:func:`query_typescript`; a test checks the file)."""

    limit: int = Field(100, ge=1, le=MAX_PAGE)

    @field_validator("starred", mode="before")
    @classmethod
    def _toggle(cls, value: Any) -> Any:
        return None if value is False else value


def _ts_type(schema: dict[str, Any]) -> str:
    """A TypeScript type for a JSON-schema fragment of :class:`GalleryQuery`'s fields."""
    if "anyOf" in schema:
        return " | ".join(_ts_type(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        return f"{_ts_type(schema['items'])}[]"
    return {"string": "string", "boolean": "boolean", "integer": "number", "null": "null"}[kind]


def query_typescript() -> str:
    """The text of ``extension/src/widgets/gallery/query.ts``: :class:`GalleryQuery` as
    TypeScript, the trait fields required (the browser always sends them), the rest optional."""
    props = GalleryQuery.model_json_schema(by_alias=False)["properties"]
    lines = [
        "// Generated from invoke_nb.widgets.gallery.GalleryQuery by query_typescript(); do not",
        "// edit. tests/widgets/test_gallery_query.py checks it; to regenerate:",
        "//   python -c 'from invoke_nb.widgets.gallery import write_query_typescript as w; w()'",
        "",
        '/** The filters the gallery keeps as traits (board: an id, "none" for no board,',
        ' * "" for every board; starred false: no star filter). */',
        "export interface GalleryFilter {",
        *[f"  {k}: {_ts_type(props[k])};" for k in FILTER_TRAITS],
        "}",
        "",
        "/** A page request: the filters, the slice and the catalog's other filters. */",
        "export interface GalleryQuery extends GalleryFilter {",
        *[f"  {k}?: {_ts_type(v)};" for k, v in props.items() if k not in FILTER_TRAITS],
        "}",
        "",
    ]
    return "\n".join(lines)


QUERY_TS = Path(__file__).resolve().parents[3] / "extension/src/widgets/gallery/query.ts"


def write_query_typescript(path: Path = QUERY_TS) -> None:
    """Write :func:`query_typescript` into the front end's sources (a checkout, not a wheel)."""
    path.write_text(query_typescript(), encoding="utf-8")


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

    def __init__(self, studio: StudioAPI, **kwargs: Any) -> None:
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
        traits = {k: getattr(self, k) for k in FILTER_TRAITS}
        reply = self._page(GalleryQuery(**traits, limit=min(self.page_size, MAX_PAGE)), [])
        self._first_page_meta = {"filter": traits, **reply.result}
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
        return [self.studio.image(n) for n in self.selection]

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
        self.send_event("preview", data, [encode_image(image, size=256, fmt="JPEG")])

    def _on_item_status(self, _kind: str, payload: dict[str, Any]) -> None:
        if payload.get("status") in ("completed", "failed", "canceled"):
            self.send_event("preview_done", {"item_id": payload.get("item_id")})

    # -- browser requests ---------------------------------------------------------------------
    @handler("page", GalleryQuery)
    def _page(self, q: GalleryQuery, _b: list[bytes]) -> Reply:
        """A page as one Arrow buffer: the rows as DuckDB gives them, plus the thumbnails'
        WebP bytes from disk; the total from the page's snapshot."""
        images = self.studio.catalog.images
        search = q.search.strip() if q.search else None  # a search box's stray spaces
        q = q.model_copy(update={"with_total": True, "search": search or None})
        table, total = images.page_arrow(q, PAGE_COLUMNS)
        thumbs: list[bytes] = []
        for name in table.column("image_name").to_pylist():
            try:
                thumbs.append(images.files.thumbnail_path(name).read_bytes())
            except (FileNotFoundError, ValueError):  # ValueError: a row with an unsafe name
                thumbs.append(b"")
        table = table.append_column("has_thumbnail", pa.array([bool(t) for t in thumbs]))
        table = table.append_column("thumbnail", pa.array(thumbs, pa.binary()))
        ipc = table_to_ipc(table.cast(PAGE_SCHEMA))
        return Reply({"offset": q.offset, "count": table.num_rows, "total": total}, [ipc])

    @handler("names", GalleryQuery)
    def _names(self, q: GalleryQuery, _b: list[bytes]) -> list[str]:
        """Image names of a range (shift-click over rows the browser has not loaded)."""
        search = q.search.strip() if q.search else None
        table, _ = self.studio.catalog.images.page_arrow(
            q.model_copy(update={"search": search or None})
        )
        return table.column("image_name").to_pylist()

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
        rec = self.studio.boards.create(p.name.strip())
        return {"board_id": rec.board_id, "board_name": rec.board_name}

    @handler("star", StarParams)
    def _star(self, p: StarParams, _b: list[bytes]) -> dict[str, Any]:
        n = self.studio.images.star(p.names, p.starred)
        return {"changed": n}

    @handler("move", MoveParams)
    def _move(self, p: MoveParams, _b: list[bytes]) -> dict[str, Any]:
        board = None if p.board_id in (None, "", UNCATEGORIZED) else p.board_id
        n = self.studio.images.move(p.names, board)
        return {"changed": n}

    @handler("delete", DeleteParams)
    def _delete(self, p: DeleteParams, _b: list[bytes]) -> dict[str, Any]:
        if not p.confirm:
            raise ValueError(
                f"deleting {len(p.names)} image(s) needs confirm=true (the browser asks first)"
            )
        n = self.studio.images.delete(p.names)
        gone = set(p.names)
        self.selection = [s for s in self.selection if s not in gone]
        return {"deleted": n}

    @handler("detail", OneImage)
    def _detail(self, p: OneImage, _b: list[bytes]) -> Reply:
        rec = self.studio.image_record(p.name)
        png = self.studio.image(p.name).path.read_bytes()
        board_name = None
        if rec.board_id:
            board_name = self.studio.boards.get(rec.board_id).board_name
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
