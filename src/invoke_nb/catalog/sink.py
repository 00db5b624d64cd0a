"""The image sink a graph runner uses to catalogue non-intermediate images.

Duck-typed to ``invoke_nb.nodes.context.ImageSink`` (the catalog does not import the node
package): ``save`` writes the PNG with the run's metadata and graph and returns its name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PIL import Image

from invoke_nb.catalog.errors import NotFoundError

if TYPE_CHECKING:
    from invoke_nb.catalog.catalog import Catalog

__all__ = ["CatalogImageSink"]


class CatalogImageSink:
    """Saves images produced by nodes into a :class:`Catalog`."""

    def __init__(self, catalog: Catalog, *, workflow: dict[str, Any] | None = None) -> None:
        self.catalog = catalog
        self.workflow = workflow

    def save(
        self,
        image: Image.Image,
        *,
        node_id: str,
        node_type: str,
        metadata: dict[str, Any] | None,
        board_id: str | None,
        session_id: str,
        graph: dict[str, Any] | None,
    ) -> str:
        """Catalogue the image; returns its image name."""
        rec = self.catalog.images.save(
            image,
            metadata=metadata,
            graph=graph,
            workflow=self.workflow,
            board_id=board_id,
            session_id=session_id,
            node_id=node_id,
        )
        return rec.image_name

    def get(self, name: str) -> Image.Image | None:
        """The catalogued image with this name, or None when the catalog has no such image."""
        try:
            return self.catalog.images.get_pil(name)
        except NotFoundError:
            return None
