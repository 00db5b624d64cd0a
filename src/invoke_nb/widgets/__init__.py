"""Widgets: anywidget classes whose browser code is bundled from ``extension/``.

They talk to the kernel only over the widget comm: small shared state in traitlets,
commands as typed request/response messages (:mod:`invoke_nb.widgets.messages`), binary
data (images, Arrow tables) in message buffers.
"""

from invoke_nb.widgets.arrow import records_to_ipc, table_to_ipc
from invoke_nb.widgets.canvas import Canvas
from invoke_nb.widgets.gallery import Gallery
from invoke_nb.widgets.graph_editor import GraphEditor
from invoke_nb.widgets.messages import MessageWidget, Params, Reply, bundle, handler
from invoke_nb.widgets.model_view import ModelView
from invoke_nb.widgets.queue_view import QueueView

__all__ = [
    "Canvas",
    "Gallery",
    "GraphEditor",
    "MessageWidget",
    "ModelView",
    "Params",
    "QueueView",
    "Reply",
    "bundle",
    "handler",
    "records_to_ipc",
    "table_to_ipc",
]
