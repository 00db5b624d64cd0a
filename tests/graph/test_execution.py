"""Execution: iterate/collect fan-out and fan-in (nested), the output cache, node errors,
custom nodes, events and cancellation."""

from __future__ import annotations

import threading
import warnings

import pytest

import invoke_nb as inb
from invoke_nb.graph import OutputCache, Runner
from invoke_nb.nodes import InputField, Node, NodeRegistryWarning, Output, OutputField, node, output
from invoke_nb.nodes.context import Context, Services


@output("t_int_output")
class TIntOut(Output):
    value: int = OutputField(description="v")


CALLS: list[tuple[str, int]] = []


@node("t_double", category="test", version="1.0.0")
class TDouble(Node):
    """Doubles, and records every call so tests can see what ran."""

    x: int = InputField(default=0)

    def invoke(self, ctx: Context) -> TIntOut:
        CALLS.append((self.id, self.x))
        return TIntOut(value=self.x * 2)


@node("t_fail", category="test")
class TFail(Node):
    x: int = InputField(default=0)

    def invoke(self, ctx: Context) -> TIntOut:
        raise ZeroDivisionError(f"cannot handle {self.x}")


def fresh_runner(**kw) -> Runner:
    return Runner(cache=OutputCache(**kw))


def test_iterate_fans_out_and_collect_fans_in() -> None:
    g = inb.Graph()
    coll = g.add("integer_collection", collection=[1, 2, 3])
    it = g.add("iterate")
    d = g.add("t_double")
    c = g.add("collect")
    g.connect(coll, "collection", it, "collection")
    g.connect(it, "item", d, "x")
    g.connect(d, "value", c, "item")
    r = fresh_runner().run(g)
    assert r.outputs[c].collection == [2, 4, 6]
    assert [o.value for o in r.outputs[d]] == [2, 4, 6]
    assert [o.index for o in r.outputs[it]] == [0, 1, 2]


def test_nested_iterate_collect() -> None:
    # for each outer n in [1, 2]: inner = range(0, n) ; collect doubled inner -> list per n
    g = inb.Graph()
    outer_c = g.add("integer_collection", collection=[1, 2])
    outer = g.add("iterate", id="outer")
    rng = g.add("range", start=0, step=1)
    g.connect(outer_c, "collection", outer, "collection")
    g.connect(outer, "item", rng, "stop")
    inner = g.add("iterate", id="inner")
    g.connect(rng, "collection", inner, "collection")
    d = g.add("t_double")
    g.connect(inner, "item", d, "x")
    c1 = g.add("collect", id="c_inner")
    g.connect(d, "value", c1, "item")
    c2 = g.add("collect", id="c_outer")
    g.connect(c1, "collection", c2, "item")
    r = fresh_runner().run(g)
    assert [o.collection for o in r.outputs["c_inner"]] == [[0], [0, 2]]
    assert r.outputs["c_outer"].collection == [[0], [0, 2]]


def test_two_independent_iterators_multiply() -> None:
    g = inb.Graph()
    a, b = (
        g.add("integer_collection", collection=[1, 2]),
        g.add("integer_collection", collection=[10, 20, 30]),
    )
    ia, ib = g.add("iterate"), g.add("iterate")
    g.connect(a, "collection", ia, "collection")
    g.connect(b, "collection", ib, "collection")
    s = g.add("add")
    g.connect(ia, "item", s, "a")
    g.connect(ib, "item", s, "b")
    c = g.add("collect")
    g.connect(s, "value", c, "item")
    r = fresh_runner().run(g)
    assert sorted(r.outputs[c].collection) == [11, 12, 21, 22, 31, 32]


def test_same_iterator_on_two_paths_zips() -> None:
    g = inb.Graph()
    a = g.add("integer_collection", collection=[1, 2, 3])
    it = g.add("iterate")
    g.connect(a, "collection", it, "collection")
    d1, d2 = g.add("t_double"), g.add("t_double")
    g.connect(it, "item", d1, "x")
    g.connect(it, "item", d2, "x")
    s = g.add("add")
    g.connect(d1, "value", s, "a")
    g.connect(d2, "value", s, "b")
    c = g.add("collect")
    g.connect(s, "value", c, "item")
    assert fresh_runner().run(g).outputs[c].collection == [4, 8, 12]


def test_empty_iteration_gives_empty_collection() -> None:
    g = inb.Graph()
    a = g.add("integer_collection", collection=[])
    it = g.add("iterate")
    d = g.add("t_double")
    c = g.add("collect")
    g.connect(a, "collection", it, "collection")
    g.connect(it, "item", d, "x")
    g.connect(d, "value", c, "item")
    r = fresh_runner().run(g)
    assert r.outputs[c].collection == []
    assert d not in r.outputs


def _chain() -> tuple[inb.Graph, list[str]]:
    g = inb.Graph()
    a = g.add("integer", id="a", value=1)
    b = g.add("t_double", id="b")
    c = g.add("t_double", id="c")
    side = g.add("integer", id="side", value=7)
    s = g.add("add", id="s")
    g.connect(a, "value", b, "x")
    g.connect(b, "value", c, "x")
    g.connect(c, "value", s, "a")
    g.connect(side, "value", s, "b")
    return g, [a, b, c, side, s]


def test_rerun_unchanged_executes_nothing() -> None:
    runner = fresh_runner()
    g, ids = _chain()
    r1 = runner.run(g)
    assert r1.executed == set(ids) and r1.cached == set()
    CALLS.clear()
    r2 = runner.run(g)
    assert r2.executed == set() and r2.cached == set(ids)
    assert CALLS == []
    assert r2.outputs["s"].value == r1.outputs["s"].value == 11


def test_one_literal_change_reruns_only_descendants() -> None:
    runner = fresh_runner()
    g, _ = _chain()
    runner.run(g)
    g.set("a", value=2)
    r = runner.run(g)
    assert r.executed == {"a", "b", "c", "s"}
    assert r.cached == {"side"}
    assert r.outputs["s"].value == 15
    g.set("side", value=0)
    r = runner.run(g)
    assert r.executed == {"side", "s"} and r.outputs["s"].value == 8


def test_keys_are_stable_across_graph_objects() -> None:
    runner = fresh_runner()
    g1, _ = _chain()
    runner.run(g1)
    g2 = inb.Graph.from_json(g1.to_json())
    assert runner.run(g2).executed == set()


def test_use_cache_false_always_runs() -> None:
    runner = fresh_runner()
    g, _ = _chain()
    g.set("b", use_cache=False)
    runner.run(g)
    r = runner.run(g)
    assert r.executed == {"b"}  # same value out, so c and s stay cached
    assert r.cached == {"a", "c", "side", "s"}


def test_nondeterministic_nodes_always_run() -> None:
    runner = fresh_runner()
    g = inb.Graph()
    ri = g.add("rand_int", low=0, high=1_000_000)
    d = g.add("t_double")
    g.connect(ri, "value", d, "x")
    r1 = runner.run(g)
    r2 = runner.run(g)
    assert ri in r2.executed
    assert (d in r2.executed) == (r1.outputs[ri].value != r2.outputs[ri].value)


def test_nondeterministic_same_value_keeps_downstream_cached() -> None:
    runner = fresh_runner()
    g = inb.Graph()
    ri = g.add("rand_int", low=5, high=6)  # always 5
    d = g.add("t_double")
    g.connect(ri, "value", d, "x")
    runner.run(g)
    r = runner.run(g)
    assert r.executed == {ri} and r.cached == {d}


def test_run_without_cache_executes_all() -> None:
    runner = fresh_runner()
    g, ids = _chain()
    runner.run(g)
    assert runner.run(g, use_cache=False).executed == set(ids)


def test_cache_lru_eviction_under_budget() -> None:
    cache = OutputCache(max_bytes=10_000, max_entries=3)
    runner = Runner(cache=cache)
    g = inb.Graph()
    n = g.add("t_double", x=1)
    for x in range(1, 6):
        g.set(n, x=x)
        runner.run(g)
    assert len(cache) == 3 and cache.evictions == 2
    g.set(n, x=5)
    assert runner.run(g).cached == {n}  # newest kept
    g.set(n, x=1)
    assert runner.run(g).executed == {n}  # oldest evicted


def test_cache_byte_budget_counts_images() -> None:
    from PIL import Image

    cache = OutputCache(max_bytes=100 * 100 * 3 * 2 + 2000)
    runner = Runner(cache=cache)
    g = inb.Graph()
    b = g.add("blank_image", width=100, height=100, mode="RGB")
    for c in range(4):
        g.set(b, color={"r": c, "g": 0, "b": 0, "a": 255})
        r = runner.run(g)
        assert isinstance(r.image(b), Image.Image)
    assert cache.bytes <= cache.max_bytes
    assert cache.evictions >= 2


def test_node_error_names_node_and_keeps_traceback() -> None:
    g = inb.Graph()
    f = g.add("t_fail", id="boom", x=3)
    with pytest.raises(inb.NodeError) as ei:
        fresh_runner().run(g)
    e = ei.value
    assert e.node_id == "boom" and e.node_type == "t_fail"
    assert "boom" in str(e) and "cannot handle 3" in str(e)
    assert isinstance(e.__cause__, ZeroDivisionError)
    assert "ZeroDivisionError" in e.traceback and "invoke" in e.traceback
    assert f == "boom"


def test_builtin_division_by_zero_is_node_error() -> None:
    g = inb.Graph()
    d = g.add("div", a=1, b=0)
    with pytest.raises(inb.NodeError, match=d):
        fresh_runner().run(g)


def test_custom_node_registration_and_replacement() -> None:
    @output("t_str_output")
    class StrOut(Output):
        value: str = OutputField()

    @node("t_shout", title="Shout", category="test", tags=["text"], version="1.2.3")
    class Shout(Node):
        """Upper-cases text."""

        text: str = InputField(default="", description="what to shout")

        def invoke(self, ctx: Context) -> StrOut:
            return StrOut(value=self.text.upper() + "!")

    g = inb.Graph()
    n = g.add("t_shout", text="hi")
    assert fresh_runner().run(g).outputs[n].value == "HI!"
    schema = inb.nodes.node_schema("t_shout")
    assert (
        schema["title"] == "Shout" and schema["version"] == "1.2.3" and schema["tags"] == ["text"]
    )
    assert schema["inputs"]["text"]["description"] == "what to shout"

    with pytest.warns(NodeRegistryWarning, match="t_shout"):

        @node("t_shout", version="2.0.0")
        class Shout2(Node):
            text: str = InputField(default="")

            def invoke(self, ctx: Context) -> StrOut:
                return StrOut(value=self.text + "?")

    assert fresh_runner().run(g).outputs[n].value == "hi?"


def test_decorator_rejects_bad_declarations() -> None:
    with pytest.raises(ValueError, match="semver"):
        node("t_bad", version="1.0")
    with pytest.raises(TypeError, match="Output subclass"):

        @node("t_bad2")
        class Bad(Node):
            def invoke(self, ctx):  # no return annotation
                return None


def test_events_and_cancellation() -> None:
    events: list[tuple[str, str]] = []
    cancel = threading.Event()

    def emit(kind: str, payload: dict) -> None:
        events.append((kind, payload["node_id"]))
        if kind == "node_complete" and payload["node_id"] == "b":
            cancel.set()

    runner = Runner(services=Services(emit=emit, cancel=cancel), cache=OutputCache())
    g, _ = _chain()
    with pytest.raises(inb.Cancelled):
        runner.run(g)
    assert ("node_started", "a") in events and ("node_complete", "b") in events
    assert not any(nid == "s" for _, nid in events)


def test_schema_export_for_every_node() -> None:
    schemas = inb.nodes.registry_schema()
    assert {"integer", "add", "iterate", "collect"} <= set(schemas)
    add = schemas["add"]
    assert add["inputs"]["a"]["type"] == {"kind": "int"}
    assert add["outputs"]["value"]["type"] == {"kind": "int"}
    rs = schemas["range_of_size"]["inputs"]["size"]
    assert rs["schema"].get("exclusiveMinimum") == 0 or rs["schema"].get("minimum") is not None
    import json

    json.dumps(schemas)  # everything is JSON


def test_register_same_class_twice_is_silent() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        node("t_double", category="test", version="1.0.0")(TDouble)
