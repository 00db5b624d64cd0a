"""Widgets use the Studio through :class:`~invoke_nb.widgets.api.StudioAPI` only.

Read from the widget sources (``ast``): every attribute a widget takes from its studio
(``studio.x``, ``self.studio.x``) must be a member of the Protocol, and a real ``Studio``
must provide every member.
"""

from __future__ import annotations

import ast
from pathlib import Path

from invoke_nb.studio import Studio
from invoke_nb.widgets.api import StudioAPI

WIDGETS = Path(__file__).resolve().parents[2] / "src" / "invoke_nb" / "widgets"
# file -> studio attributes it may use beyond the API, with the reason
EXCEPTIONS = {
    "gallery.py": {"catalog"},  # the page/count queries: they become one ImageQuery (issue 18)
}


def _members() -> set[str]:
    names = set(getattr(StudioAPI, "__annotations__", {}))
    names |= {n for n, v in vars(StudioAPI).items() if callable(v) and not n.startswith("_")}
    return names


def _studio_uses(path: Path) -> set[str]:
    """Attributes read from a name or attribute called ``studio``/``_studio``."""
    used = set()
    for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(n, ast.Attribute):
            v = n.value
            name = (
                v.id if isinstance(v, ast.Name) else v.attr if isinstance(v, ast.Attribute) else ""
            )
            if name in ("studio", "_studio"):
                used.add(n.attr)
    return used


def test_widgets_use_only_the_studio_api() -> None:
    members = _members()
    assert {"enqueue", "events", "image", "workflows"} <= members  # the walk reads the Protocol
    uses = {str(p.relative_to(WIDGETS)): _studio_uses(p) for p in sorted(WIDGETS.rglob("*.py"))}
    assert "enqueue" in uses["graph_editor/widget.py"]  # the walk finds real uses
    extra = {name: sorted(u - members - EXCEPTIONS.get(name, set())) for name, u in uses.items()}
    assert not {k: v for k, v in extra.items() if v}, f"widgets beyond the Studio API: {extra}"


def test_a_studio_provides_the_whole_api(tmp_path: Path) -> None:
    studio = Studio(tmp_path / "studio", start_queue=False)
    try:
        assert isinstance(studio, StudioAPI)
        missing = [m for m in sorted(_members()) if not hasattr(studio, m)]
        assert not missing
        assert studio.recent_images(5) == []
    finally:
        studio.close()
