"""What the Studio hands back: catalogued images, run results, run statistics and the
progress bar of a blocking run. Plain objects over the catalog; no widget code."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from invoke_nb.graph.model import Graph
from invoke_nb.graph.runner import RunResult
from invoke_nb.nodes.types import ImageField

if TYPE_CHECKING:
    from invoke_nb.studio import Studio

__all__ = ["ProgressBar", "StudioImage", "StudioResult", "StudioStats"]


class StudioImage:
    """A catalogued image: shows inline, and passes back into graphs as an image input."""

    def __init__(self, studio: Studio, image_name: str) -> None:
        self._studio = studio
        self.image_name = image_name
        self._record: Any = None

    @property
    def name(self) -> str:
        return self.image_name

    @property
    def record(self) -> Any:
        """The catalog row (an ``ImageRecord``), refreshed on each access."""
        self._record = self._studio.catalog.images.get(self.image_name)
        return self._record

    @property
    def pil(self) -> Image.Image:
        """The full image as PIL."""
        return self._studio.catalog.images.get_pil(self.image_name)

    @property
    def path(self) -> Path:
        """The PNG on disk."""
        return self._studio.catalog.images.path(self.image_name)

    @property
    def metadata(self) -> dict[str, Any] | None:
        """InvokeAI-style generation metadata (``invokeai_metadata``)."""
        return self._studio.catalog.images.get_metadata(self.image_name)

    @property
    def graph(self) -> Graph | None:
        """The graph that made the image (``invokeai_graph``), ready to edit or re-run."""
        data = self._studio.catalog.images.get_graph(self.image_name)
        return Graph.from_dict(data) if data else None

    @property
    def field(self) -> ImageField:
        """A reference to use as an image input."""
        return ImageField(image_name=self.image_name)

    def star(self, starred: bool = True) -> StudioImage:
        self._studio.catalog.images.star([self.image_name], starred)
        return self

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.pil.save(buf, format="PNG")
        return buf.getvalue()

    def __repr__(self) -> str:
        return f"<StudioImage {self.image_name}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StudioImage) and other.image_name == self.image_name

    def __hash__(self) -> int:
        return hash(self.image_name)


class StudioResult:
    """What ``studio.run`` returns: the run result plus the images it catalogued."""

    def __init__(self, run: RunResult, images: list[StudioImage], item_id: int | None) -> None:
        self.run = run
        self.images = images
        self.item_id = item_id

    @property
    def outputs(self) -> dict[str, Any]:
        return self.run.outputs

    @property
    def executed(self) -> set[str]:
        return self.run.executed

    @property
    def cached(self) -> set[str]:
        return self.run.cached

    @property
    def stats(self) -> list[Any]:
        return self.run.stats

    @property
    def image(self) -> StudioImage:
        """The last catalogued image (most graphs make one)."""
        if not self.images:
            raise LookupError("this run catalogued no image")
        return self.images[-1]

    def __repr__(self) -> str:
        return (
            f"<StudioResult item={self.item_id} images={len(self.images)} "
            f"executed={len(self.executed)} cached={len(self.cached)}>"
        )


class StudioStats:
    """Run statistics (like InvokeAI's invocation stats); a table in a notebook."""

    def __init__(
        self, by_type: dict[str, dict[str, float]], runs: int, cache: dict[str, Any]
    ) -> None:
        self.by_type = by_type
        self.runs = runs
        self.cache = cache

    def rows(self) -> list[tuple[str, int, int, float, float, float]]:
        mib = 1024**2
        return [
            (
                t,
                int(a["count"]),
                int(a["cached"]),
                a["seconds"],
                a["peak_ram"] / mib,
                a["peak_vram"] / mib,
            )
            for t, a in sorted(self.by_type.items(), key=lambda kv: -kv[1]["seconds"])
        ]

    def __str__(self) -> str:
        head = f"{'node type':<24}{'count':>7}{'cached':>8}{'seconds':>10}{'RAM MiB':>10}{'VRAM MiB':>10}"
        lines = [f"{self.runs} runs", head]
        lines += [
            f"{t:<24}{c:>7}{k:>8}{s:>10.3f}{r:>10.0f}{v:>10.0f}" for t, c, k, s, r, v in self.rows()
        ]
        hits, misses = self.cache.get("hits", 0), self.cache.get("misses", 0)
        lines.append(
            f"model cache: {hits} hits, {misses} misses, {self.cache.get('loads', 0)} loads"
        )
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        import html

        cells = "".join(
            f"<tr><td>{html.escape(t)}</td><td>{c}</td><td>{k}</td><td>{s:.3f}</td><td>{r:.0f}</td><td>{v:.0f}</td></tr>"
            for t, c, k, s, r, v in self.rows()
        )
        return (
            f"<p>{self.runs} runs; model cache: {self.cache.get('hits', 0)} hits, "
            f"{self.cache.get('misses', 0)} misses</p><table><tr><th>node type</th><th>count</th>"
            f"<th>cached</th><th>seconds</th><th>peak RAM MiB</th><th>peak VRAM MiB</th></tr>{cells}</table>"
        )


class ProgressBar:
    """A tqdm bar over node executions, with denoise steps in the postfix."""

    def __init__(self, total: int) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, unit="node", leave=False)

    def update(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == "node_complete":
            self.bar.update(1)
        elif kind == "node_started":
            self.bar.set_description(str(payload.get("node_type", "")))
        elif kind == "progress" and payload.get("step") is not None:
            self.bar.set_postfix_str(f"step {payload['step']}/{payload.get('total')}")

    def close(self) -> None:
        self.bar.close()
