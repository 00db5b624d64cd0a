"""One naming rule for node classes: the built-in library's classes end in ``Node`` (their
InvokeAI counterparts end in ``Invocation``; the type id, not the class name, is what graphs
and workflow files carry)."""

from __future__ import annotations

import invoke_nb.nodes as nodes


def test_every_built_in_node_class_ends_in_node() -> None:
    wrong = sorted(
        f"{cls.__module__}.{cls.__name__} ({type_id})"
        for type_id, cls in nodes.node_types().items()
        if cls.__module__.startswith("invoke_nb.") and not cls.__name__.endswith("Node")
    )
    assert not wrong, "node classes not named *Node:\n" + "\n".join(wrong)
