"""The node graph editor widget (@xyflow/react in the browser, the Graph in the kernel).

The Python :class:`~invoke_nb.graph.Graph` is the single source of truth. The browser shows
``graph_data`` (graph JSON + layout + labels) and asks for every change with a request; the
Graph validates it (types, connection modes, cycles, values), so a refused edit comes back
as an error message naming the node and field, and nothing changes. Assigning
``editor.graph`` or calling :meth:`GraphEditor.refresh` pushes Python-side changes.

The modules mirror ``extension/src/widgets/graph_editor``: ``protocol`` (request
parameters), ``fields`` (model pickers), ``requests`` (graph edits), ``library`` (the
workflow library), ``outputs`` (node states and output summaries), ``widget`` (the widget).
"""

from invoke_nb.widgets.graph_editor.fields import field_model_filter, model_choices
from invoke_nb.widgets.graph_editor.outputs import output_summary
from invoke_nb.widgets.graph_editor.widget import GraphEditor
from invoke_nb.widgets.imaging import recent_images

__all__ = ["GraphEditor", "field_model_filter", "model_choices", "output_summary", "recent_images"]
