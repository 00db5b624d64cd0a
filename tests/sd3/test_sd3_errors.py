"""Bad SD3 input: a clear error naming node and field, and nothing loaded for nothing."""

from __future__ import annotations

from typing import Any

import pytest

from invoke_nb.graph.errors import GraphError, NodeError
from invoke_nb.graph.standard import txt2img
from invoke_nb.models.local import identifier
from invoke_nb.models.manager import ModelManager
from invoke_nb.nodes.base import NodeInputError


def _no_t5(g: Any) -> None:
    for cond in ("pos_cond", "neg_cond"):
        g.disconnect("model_loader", "t5_encoder", cond, "t5_encoder")


def _failure(runner: Any, g: Any) -> NodeInputError:
    with pytest.raises(NodeError) as info:
        runner.run(g)
    assert isinstance(info.value.original, NodeInputError), info.value
    return info.value.original


def _loaded(manager: ModelManager, name: str) -> set[str | None]:
    key = manager.get(name).key
    cached = manager.cache.keys()
    return {k[1] for k in cached if k[0] == key}


def test_sd1_clip_into_sd3_text_encoder(sd3_runner, sd3_manager: ModelManager, sd3) -> None:
    before = _loaded(sd3_manager, "tiny-sd1")
    g = txt2img(sd3, "a cat", width=64, height=64, steps=2)
    sd1 = g.add("main_model_loader", id="sd1_loader", model=identifier(sd3_manager.get("tiny-sd1")))
    g.disconnect("model_loader", "clip_l", "pos_cond", "clip_l")
    g.connect(sd1, "clip", "pos_cond", "clip_l")
    err = _failure(sd3_runner, g)
    assert (err.node_id, err.field) == ("pos_cond", "clip_l")
    assert "tiny-sd1" in str(err) and "sd-1" in str(err)
    assert _loaded(sd3_manager, "tiny-sd1") == before


def test_sd1_model_into_sd3_loader(sd3_runner, sd3_manager: ModelManager) -> None:
    g = txt2img(identifier(sd3_manager.get("tiny-sd3")), "a cat", width=64, height=64, steps=2)
    g.set("model_loader", model=identifier(sd3_manager.get("tiny-sd1")))
    err = _failure(sd3_runner, g)
    assert (err.node_id, err.field) == ("model_loader", "model")


def test_missing_t5_is_named_before_anything_loads(sd3_runner, sd3_manager) -> None:
    model = identifier(sd3_manager.get("tiny-sd3-no-t5"))
    before = _loaded(sd3_manager, "tiny-sd3-no-t5")
    err = _failure(sd3_runner, txt2img(model, "a cat", width=64, height=64, steps=2))
    assert err.field == "t5_encoder" and "text_encoder_3" in str(err)
    assert _loaded(sd3_manager, "tiny-sd3-no-t5") == before  # not even the CLIPs


def test_sizes_sd3_refuses(sd3_runner, sd3_manager) -> None:
    model = identifier(sd3_manager.get("tiny-sd3-no-t5"))
    with pytest.raises(GraphError, match="width"):
        txt2img(model, "a cat", width=64, height=64).set("sd3_denoise", width=72)
    g = txt2img(model, "a cat", width=512, height=64, steps=2)  # table: 16 * 2 * 8 = 256 px
    _no_t5(g)
    loaded = "transformer" in _loaded(sd3_manager, "tiny-sd3-no-t5")
    err = _failure(sd3_runner, g)
    assert (err.node_id, err.field) == ("sd3_denoise", "width") and "256" in str(err)
    assert ("transformer" in _loaded(sd3_manager, "tiny-sd3-no-t5")) == loaded
    g.set("sd3_denoise", width=64)  # the same graph at a size it takes runs, without T5
    assert sd3_runner.run(g).image("l2i").size == (64, 64)


def test_sd3_one_liner_refuses_what_sd3_graphs_lack(sd3) -> None:
    with pytest.raises(ValueError, match="loras"):
        txt2img(sd3, "a cat", loras=[(sd3, 0.5)])
    with pytest.raises(ValueError, match="clip_skip"):
        txt2img(sd3, "a cat", clip_skip=1)
