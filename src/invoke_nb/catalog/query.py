"""One description of a gallery query: :class:`ImageQuery`.

The catalog's page and count functions, the gallery widget's requests and the browser's
filter type (``extension/src/widgets/gallery/query.ts``, checked against this class by a test)
all speak this one vocabulary, so a new filter is added here once. :meth:`ImageQuery.where`
turns it into the SQL condition the gallery planner pages through.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from invoke_nb.catalog import search as term_index
from invoke_nb.catalog.gallery import placeholders
from invoke_nb.catalog.records import to_db_time

__all__ = ["ASSET_CATEGORIES", "IMAGE_CATEGORIES", "UNCATEGORIZED", "ImageQuery", "Order"]

UNCATEGORIZED = "none"
"""The ``board`` of images on no board (InvokeAI's name for it)."""

IMAGE_CATEGORIES = ("general",)
ASSET_CATEGORIES = ("control", "mask", "user", "other")
"""InvokeAI's two gallery tabs: generated images, and assets (uploads, masks, control)."""

Order = Literal["newest", "oldest"]


class ImageQuery(BaseModel):
    """Which images a gallery page shows, in which order, and which slice of them.

    ``board``: None for every board, ``"none"`` (:data:`UNCATEGORIZED`) for images on no
    board, else a board id (``board_id=`` is accepted too). ``starred``: True only starred,
    False only the others. ``search``: words that must all occur (as parts of words,
    case-insensitively) in what InvokeAI's search looks through (the metadata text and the
    creation time; see :mod:`invoke_nb.catalog.search`). ``category``: ``"images"`` or
    ``"assets"`` (InvokeAI's tabs) or InvokeAI category names. ``model`` matches a model name
    or key, ``base`` a model base. ``since``/``until`` bound ``created_at`` (half-open).
    ``cursor`` (a page's ``next_cursor``) pages at any depth cheaply; ``offset`` costs more
    the deeper it goes. ``with_total`` also counts the matches, from the page's snapshot.
    Blank strings mean "no filter", as an empty search box does.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    board: str | None = Field(None, validation_alias=AliasChoices("board", "board_id"))
    starred: bool | None = None
    starred_first: bool = False
    search: str | None = None
    order: Order = "newest"
    category: str | list[str] | None = None
    model: str | None = None
    base: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    is_intermediate: bool | None = False
    offset: int = Field(0, ge=0)
    limit: int = Field(100, ge=1)
    cursor: str | None = None
    with_total: bool = False

    @field_validator("board", "search", "model", "base", "cursor", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("category", mode="before")
    @classmethod
    def _categories(cls, value: Any) -> Any:
        return list(value) if isinstance(value, tuple) else value

    def categories(self) -> list[str] | None:
        """The InvokeAI category names the query keeps (None: all)."""
        if self.category is None:
            return None
        if self.category == "images":
            return list(IMAGE_CATEGORIES)
        if self.category == "assets":
            return list(ASSET_CATEGORIES)
        return [self.category] if isinstance(self.category, str) else list(self.category)

    def where(
        self, conn: Any, search: term_index.SearchPlan | None = None
    ) -> tuple[list[str], list[Any]]:
        """SQL conditions on ``images`` (joined with AND) and their parameters; ``search``:
        the search's plan if the caller made it already (:func:`~invoke_nb.catalog.search.plan`)."""
        where, params = self.counted_conditions()
        where.insert(0, "deleted_at IS NULL")
        if self.model is not None:
            where.append("(model_name = ? OR model_key = ?)")
            params += [self.model, self.model]
        if self.base is not None:
            where.append("model_base = ?")
            params.append(self.base)
        if self.search:
            if search is None:
                search = term_index.plan(conn, self.search)
            where.append(search.cond)
            params += search.params
        if self.since is not None:
            where.append("created_at >= ?")
            params.append(to_db_time(self.since))
        if self.until is not None:
            where.append("created_at < ?")
            params.append(to_db_time(self.until))
        return where, params

    def counted_conditions(self) -> tuple[list[str], list[Any]]:
        """The conditions on the columns the gallery tallies count (board, starred,
        intermediate, category; see :mod:`invoke_nb.catalog.tallies`), and their parameters:
        they hold on ``images`` and on ``gallery_tallies`` alike."""
        where: list[str] = []
        params: list[Any] = []
        if self.board == UNCATEGORIZED:
            where.append("board_id IS NULL")
        elif self.board is not None:
            where.append("board_id = ?")
            params.append(self.board)
        if self.starred is not None:
            where.append("starred = ?")
            params.append(self.starred)
        if self.is_intermediate is not None:
            where.append("is_intermediate = ?")
            params.append(self.is_intermediate)
        cats = self.categories()
        if cats is not None:
            where.append(f"image_category IN ({placeholders(len(cats))})")
            params += cats
        return where, params
