"""``studio.images`` and ``studio.boards``: the public repository of images and boards.

A notebook user works with the objects the one-liners return (:class:`StudioImage`) and
with board names; the catalog layer below (``studio.catalog.images``/``.boards``) works
with image names and board ids. This module translates between the two and keeps the
catalog's checks: unknown names raise ``NotFoundError`` naming them, and nothing changes.

    studio.images.list(board="portraits", starred=True, search="lighthouse", limit=20)
    studio.images.get("3f0c....png").pil
    studio.images.import_folder("~/Downloads/a1111-outputs")  # board= an existing board
    studio.images.star(page[:3]); studio.images.move(page, "keepers")
    studio.boards.list()            # records with image_count and cover
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from invoke_nb.catalog.errors import NotFoundError
from invoke_nb.catalog.images import UNCATEGORIZED
from invoke_nb.catalog.records import BoardRecord, ImageRecord, ImportResult
from invoke_nb.interchange.importer import import_folder

if TYPE_CHECKING:
    from invoke_nb.studio import Studio, StudioImage

__all__ = ["UNCATEGORIZED", "ImageList", "ImportSummary", "StudioBoards", "StudioImages"]

ImageRef = Any  # a StudioImage, an ImageRecord or an image name
BoardRef = Any  # a BoardRecord, a board id or a board name


class ImageList(list):  # type: ignore[type-arg]
    """One page of images (a list of :class:`StudioImage`), with the records behind it and
    the cursor of the next page (``None`` on the last page)."""

    def __init__(self, images: Iterable[StudioImage], records: list[ImageRecord], cursor: Any):
        super().__init__(images)
        self.records = records
        self.next_cursor = cursor

    @property
    def names(self) -> list[str]:
        """The image names, in page order."""
        return [r.image_name for r in self.records]

    def df(self) -> Any:
        """The page's records as a pandas DataFrame (one row per image)."""
        import pandas as pd

        return pd.DataFrame([r.model_dump() for r in self.records])


@dataclass
class ImportSummary:
    """What ``studio.images.import_folder`` did: the new images, the files already in the
    catalog, and the files skipped with the reason (``results`` has one entry per file)."""

    imported: list[StudioImage] = field(default_factory=list)
    duplicates: list[ImportResult] = field(default_factory=list)
    skipped: list[ImportResult] = field(default_factory=list)
    results: list[ImportResult] = field(default_factory=list)

    def __repr__(self) -> str:
        return (
            f"<ImportSummary {len(self.imported)} imported, {len(self.duplicates)} duplicate, "
            f"{len(self.skipped)} skipped>"
        )


def _names(images: ImageRef | Iterable[ImageRef]) -> list[str]:
    """Image names from one or many StudioImages, records or names."""
    if isinstance(images, (str, ImageRecord)) or hasattr(images, "image_name"):
        images = [images]
    names = []
    for item in images:
        name = item if isinstance(item, str) else getattr(item, "image_name", None)
        if not isinstance(name, str):
            raise TypeError(
                f"expected an image (StudioImage, record or name), got {type(item).__name__}"
            )
        names.append(name)
    return names


class StudioBoards:
    """Boards by name or id: list (with image counts), get, create, rename, delete."""

    def __init__(self, studio: Studio) -> None:
        self._studio = studio

    @property
    def _repo(self) -> Any:
        return self._studio.catalog.boards

    def board_id(self, board: BoardRef) -> str:
        """The id of a board given as a record, an id or a name (names must be unique)."""
        if isinstance(board, BoardRecord):
            return board.board_id
        if not isinstance(board, str) or not board:
            raise TypeError(f"a board is a name, an id or a record, not {board!r}")
        boards = self._repo.list(include_archived=True)
        if any(b.board_id == board for b in boards):
            return board
        named = [b.board_id for b in boards if b.board_name == board]
        if len(named) > 1:
            raise LookupError(f"{len(named)} boards are named {board!r}; pass the board id")
        if not named:
            raise NotFoundError(
                f"no board named {board!r} (or with that id); create it with "
                f"studio.boards.create({board!r})"
            )
        return named[0]

    def list(self, *, archived: bool = False) -> list[BoardRecord]:
        """Boards, oldest first, each with ``image_count`` and ``cover_image_name``;
        ``archived=True`` includes archived boards."""
        return self._repo.list(include_archived=archived)

    def get(self, board: BoardRef) -> BoardRecord:
        """One board (by name or id) with its count and cover."""
        return self._repo.get(self.board_id(board))

    def create(self, name: str) -> BoardRecord:
        """A new, empty board."""
        return self._repo.create(name)

    def rename(self, board: BoardRef, name: str) -> BoardRecord:
        """Give a board a new name."""
        return self._repo.rename(self.board_id(board), name)

    def delete(self, board: BoardRef, *, delete_images: bool = False) -> int:
        """Delete a board; its images become uncategorized, or are deleted with their files
        when ``delete_images``. Returns how many images were affected."""
        return self._repo.delete(self.board_id(board), delete_images=delete_images)

    def uncategorized_count(self) -> int:
        """How many images are on no board."""
        return self._repo.uncategorized_count()

    def __iter__(self) -> Iterator[BoardRecord]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self.list())

    def __repr__(self) -> str:
        return f"<StudioBoards {len(self)} boards>"


class StudioImages:
    """The studio's images as :class:`StudioImage` objects: list, get, import, star, move,
    delete and export. Boards are given by name or id; ``board="none"`` means on no board."""

    def __init__(self, studio: Studio, boards: StudioBoards) -> None:
        self._studio = studio
        self._boards = boards

    @property
    def _repo(self) -> Any:
        return self._studio.catalog.images

    def _image(self, name: str) -> StudioImage:
        from invoke_nb.studio import StudioImage

        return StudioImage(self._studio, name)

    def _board_filter(self, board: BoardRef | None) -> str | None:
        if board is None or board == UNCATEGORIZED:
            return board
        return self._boards.board_id(board)

    def list(
        self,
        *,
        board: BoardRef | None = None,
        starred: bool | None = None,
        search: str | None = None,
        model: str | None = None,
        limit: int = 100,
        offset: int = 0,
        base: str | None = None,
        order: Literal["newest", "oldest"] = "newest",
        intermediates: bool = False,
        cursor: str | None = None,
    ) -> ImageList:
        """A page of images, newest first.

        ``board``: a board name or id, ``"none"`` for images on no board, None for all.
        ``starred``: True/False filters, None does not. ``search``: words looked up as
        InvokeAI's gallery search does (case-insensitive, in the metadata text and time). ``model``: a model name or key; ``base``: ``sd-1``, ``sdxl``...
        Page with ``offset`` or with ``cursor=page.next_cursor`` (cheap at any depth).
        """
        page = self._repo.list(
            board_id=self._board_filter(board),
            starred=starred,
            search=search,
            model=model,
            base=base,
            order=order,
            limit=limit,
            offset=offset,
            cursor=cursor,
            is_intermediate=None if intermediates else False,
        )
        return ImageList((self._image(r.image_name) for r in page), page.items, page.next_cursor)

    def count(
        self,
        *,
        board: BoardRef | None = None,
        starred: bool | None = None,
        search: str | None = None,
        model: str | None = None,
        base: str | None = None,
    ) -> int:
        """How many images :meth:`list` would find with these filters."""
        return self._repo.count(
            board_id=self._board_filter(board),
            starred=starred,
            search=search,
            model=model,
            base=base,
        )

    def get(self, name: ImageRef) -> StudioImage:
        """An image by name (``NotFoundError`` when the catalog has none)."""
        (name,) = _names(name)
        self._repo.get(name)
        return self._image(name)

    def import_folder(
        self, path: str | Path, *, board: BoardRef | None = None, recursive: bool = True
    ) -> ImportSummary:
        """Import the images of a folder (InvokeAI, ComfyUI, A1111/Forge, NovelAI, Fooocus,
        SwarmUI... with their prompts, seeds and models when the file carries them). Files
        already catalogued count as duplicates; files that cannot be read are skipped with
        the reason; nothing stops the import."""
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise NotADirectoryError(f"import_folder: {folder} is not a folder")
        board_id = None if board is None else self._boards.board_id(board)
        results = import_folder(self._repo, folder, board_id=board_id, recursive=recursive)
        summary = ImportSummary(results=results)
        for r in results:
            if r.status == "imported" and r.image_name:
                summary.imported.append(self._image(r.image_name))
            elif r.status == "duplicate":
                summary.duplicates.append(r)
            else:
                summary.skipped.append(r)
        return summary

    def star(self, images: ImageRef | Iterable[ImageRef], starred: bool = True) -> int:
        """Star (``starred=False``: unstar) images; returns how many."""
        return self._repo.star(_names(images), starred)

    def move(self, images: ImageRef | Iterable[ImageRef], board: BoardRef | None) -> int:
        """Put images on a board (name or id; None takes them off every board)."""
        board_id = None if board is None else self._boards.board_id(board)
        return self._repo.move_to_board(_names(images), board_id)

    def delete(self, images: ImageRef | Iterable[ImageRef]) -> int:
        """Delete images: their records and files. Returns how many."""
        return self._repo.delete(_names(images))

    def export(self, images: ImageRef | Iterable[ImageRef], path: str | Path) -> Path:
        """Write the PNGs (with their metadata) to ``path``: a ``.zip`` file, or a folder
        (created if needed; an existing file of the same name stops the export before
        anything is written). Returns ``path``."""
        names = list(dict.fromkeys(_names(images)))
        dest = Path(path).expanduser()
        if dest.suffix.lower() == ".zip":
            return self._repo.export_zip(names, dest)
        missing = set(names) - self._repo.exists(names)
        if missing:
            raise NotFoundError(f"no image named {sorted(missing)[0]!r} in the catalog")
        clash = [n for n in names if (dest / n).exists()]
        if clash:
            raise FileExistsError(f"export: {dest / clash[0]} exists already; nothing written")
        dest.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copyfile(self._repo.path(name), dest / name)
        return dest

    def __len__(self) -> int:
        return self.count()

    def __iter__(self) -> Iterator[StudioImage]:
        """Every image, newest first, a page at a time."""
        cursor = None
        while True:
            page = self.list(limit=500, cursor=cursor)
            yield from page
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def __repr__(self) -> str:
        return f"<StudioImages {len(self)} images>"
