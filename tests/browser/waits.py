"""Waits on what the user sees, instead of fixed sleeps: layout settled, frames painted.

A fixed sleep is too short on a loaded machine and wasted time on a fast one; these wait
for the condition itself (Playwright's polling runs every animation frame).
"""

from __future__ import annotations

from typing import Any

_SIGNATURE = """sel => JSON.stringify([...document.querySelectorAll(sel)].map(e => {
    const r = e.getBoundingClientRect();
    return [Math.round(r.x), Math.round(r.y), Math.round(r.width), Math.round(r.height)];
}))"""

_SETTLED = (
    "([sel, before, frames]) => { const sig = ("
    + _SIGNATURE
    + """)(sel);
    const s = window.__inbSettle || (window.__inbSettle = {sig: null, n: 0});
    if (sig === s.sig) s.n++; else { s.sig = sig; s.n = 0; }
    return sig !== before && sig !== '[]' && s.n >= frames;
}"""
)


def layout_of(page: Any, selector: str) -> str:
    """The on-screen boxes of every element matching ``selector`` (to compare later)."""
    return page.evaluate(_SIGNATURE, selector)


def wait_settled(
    page: Any,
    selector: str,
    *,
    changed_from: str | None = None,
    frames: int = 10,
    timeout: float = 30_000,
) -> None:
    """Wait until the boxes of ``selector`` stop moving for ``frames`` painted frames (and,
    with ``changed_from``, differ from that earlier :func:`layout_of`)."""
    page.evaluate("() => { window.__inbSettle = null; }")
    page.wait_for_function(_SETTLED, arg=[selector, changed_from, frames], timeout=timeout)


def wait_painted(page: Any) -> None:
    """Wait until the browser has painted two more frames (for screenshots)."""
    page.wait_for_function(
        "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))"
    )
