"""Typed request/response and events between a widget's browser view and the kernel.

Why not traitlets for everything: traits suit small state that both sides own (a filter, a
busy flag); commands (add a node, fetch a page of images) need an answer, an error naming
what was wrong, and binary payloads. The browser sends ``{"kind": "request", "id", "method",
"params"}`` over the widget comm; :meth:`MessageWidget.dispatch` validates ``params`` with the
handler's pydantic model, calls it and answers ``{"kind": "response", "id", "ok", "result"
| "error"}``. Images and Arrow tables travel in the message buffers, never as base64 JSON.
The TypeScript side is ``extension/src/shared/messages.ts``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import anywidget
from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["STATIC", "MessageWidget", "Params", "Reply", "bundle", "bundle_path", "handler"]

log = logging.getLogger(__name__)

W = TypeVar("W", bound="MessageWidget")
P = TypeVar("P", bound="Params")


class Params(BaseModel):
    """Base of request parameter models: unknown keys are refused, so typos surface."""

    model_config = ConfigDict(extra="forbid")


class NoParams(Params):
    """A request without parameters."""


@dataclass
class Reply:
    """A handler result with binary buffers (images, Arrow IPC) beside the JSON part."""

    result: Any
    buffers: list[bytes | memoryview] = field(default_factory=list)


@dataclass(frozen=True)
class _Handler:
    method: str
    params: type[Params]
    fn: Callable[..., Any]


def handler(
    method: str, params: type[Params] = NoParams
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a widget method as the handler of browser requests named ``method``.

    The method is called as ``fn(self, params, buffers)`` with ``params`` an instance of the
    given pydantic model; it returns a JSON-ready result or a :class:`Reply`.
    """

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.__message_handler__ = _Handler(method, params, fn)  # type: ignore[attr-defined]
        return fn

    return wrap


STATIC = Path(__file__).resolve().parent.parent / "static"
"""Where esbuild writes each widget's ``<name>.js`` and ``<name>.css`` (extension/build.mjs)."""


def bundle_path(name: str, suffix: str = ".js") -> Path:
    """The path of a built front-end file (``invoke_nb/static/<name>.js`` or ``.css``)."""
    return STATIC / f"{name}{suffix}"


def bundle(name: str, suffix: str = ".js") -> str:
    """The text of a built front-end file; names ``make frontend`` when it is missing."""
    path = bundle_path(name, suffix)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"front-end bundle {name}{suffix} is missing from {path.parent}; build it with "
            "`make frontend` (or `make -C extension`)"
        ) from None


def _error(e: BaseException) -> dict[str, Any]:
    return {
        "type": type(e).__name__,
        "message": str(e) or type(e).__name__,
        "node_id": getattr(e, "node_id", None),
        "field": getattr(e, "field", None),
    }


class MessageWidget(anywidget.AnyWidget):
    """An anywidget whose browser view calls typed kernel methods (see :func:`handler`)."""

    _bundle: ClassVar[str] = ""
    # Errors that are the user's (bad input, a failing node): answered without a log entry.
    expected_errors: ClassVar[tuple[type[BaseException], ...]] = (
        ValueError,
        LookupError,
        TypeError,
    )
    _handlers: ClassVar[dict[str, _Handler]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # anywidget convention: ``_esm``/``_css`` are paths on the class; anywidget reads them
        # and, with ANYWIDGET_HMR=1 outside site-packages, reloads open views when
        # `node build.mjs --watch` rewrites them. The CSS is added to the page once per
        # class, not once per view. A bundle not built yet is looked up again in __init__,
        # so the package imports before a build.
        name = cls.__dict__.get("_bundle")
        if name:
            for key, suffix in (("_esm", ".js"), ("_css", ".css")):
                if key not in cls.__dict__ and bundle_path(name, suffix).is_file():
                    setattr(cls, key, bundle_path(name, suffix))
        super().__init_subclass__(**kwargs)
        found: dict[str, _Handler] = {}
        for klass in reversed(cls.__mro__):
            for value in vars(klass).values():
                h = getattr(value, "__message_handler__", None)
                if isinstance(h, _Handler):
                    found[h.method] = h
        cls._handlers = found

    def __init__(self, **kwargs: Any) -> None:
        if self._bundle and not hasattr(type(self), "_esm"):
            # built after this module was imported (or never: the error names the fix)
            self._esm = bundle(self._bundle)
            if bundle_path(self._bundle, ".css").is_file():
                self._css = bundle(self._bundle, ".css")
        super().__init__(**kwargs)
        self.on_msg(self._on_custom_message)

    def show(self, area: str = "right", title: str | None = None) -> Any:
        """Dock this widget in a JupyterLab panel (``right``, ``main``, ``split-right``, ...).

        Returns the panel; see :func:`invoke_nb.widgets.panel.show_in_panel`.
        """
        from invoke_nb.widgets.panel import show_in_panel

        return show_in_panel(self, area=area, title=title)

    @classmethod
    def methods(cls) -> list[str]:
        """The request methods this widget answers."""
        return sorted(cls._handlers)

    def dispatch(
        self, content: Any, buffers: Sequence[bytes | memoryview] = ()
    ) -> tuple[dict[str, Any], list[bytes | memoryview]] | None:
        """Answer one browser message; ``None`` for messages that are not requests."""
        if not isinstance(content, dict) or content.get("kind") != "request":
            return None
        rid = content.get("id")
        method = content.get("method")
        h = self._handlers.get(method) if isinstance(method, str) else None
        if h is None:
            err = LookupError(
                f"{type(self).__name__} has no method {method!r}; methods: {', '.join(self.methods())}"
            )
            return {"kind": "response", "id": rid, "ok": False, "error": _error(err)}, []
        try:
            params = h.params.model_validate(content.get("params") or {})
        except ValidationError as e:
            problems = "; ".join(
                (".".join(str(p) for p in err["loc"]) + ": " if err["loc"] else "") + err["msg"]
                for err in e.errors()
            )
            bad = ValueError(f"bad parameters for {method!r}: {problems}")
            return {"kind": "response", "id": rid, "ok": False, "error": _error(bad)}, []
        try:
            result = h.fn(self, params, list(buffers))
        except Exception as e:
            if not isinstance(e, self.expected_errors):
                log.exception("%s.%s failed", type(self).__name__, method)
            return {"kind": "response", "id": rid, "ok": False, "error": _error(e)}, []
        if isinstance(result, Reply):
            return {"kind": "response", "id": rid, "ok": True, "result": result.result}, list(
                result.buffers
            )
        return {"kind": "response", "id": rid, "ok": True, "result": result}, []

    def send_event(
        self, name: str, data: Any = None, buffers: Sequence[bytes | memoryview] = ()
    ) -> None:
        """Push an event to every open browser view."""
        self.send(
            {"kind": "event", "name": name, "data": data if data is not None else {}},
            list(buffers) or None,
        )

    def _on_custom_message(
        self, _widget: Any, content: Any, buffers: Sequence[bytes | memoryview]
    ) -> None:
        answer = self.dispatch(content, buffers)
        if answer is not None:
            reply, bufs = answer
            self.send(reply, bufs or None)
