"""Bad FLUX input: an error naming node and field (or file), and nothing half-loaded."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from flux_support import parts, register

import invoke_nb as inb
from invoke_nb.graph import standard_flux
from invoke_nb.graph.errors import GraphError, NodeError
from invoke_nb.graph.model import Graph
from invoke_nb.models.errors import CorruptModelError, ModelLoadError
from invoke_nb.models.local import LocalModels, identifier
from invoke_nb.models.probe import probe


def test_flux_lora_on_an_sd1_model(flux_models, flux, tiny_sd1: Path) -> None:
    sd1 = identifier(register(flux_models, tiny_sd1, "sd1-for-flux-tests"))
    g = Graph()
    g.add("main_model_loader", id="m", model=sd1)
    g.add("lora_loader", id="l", lora=flux["lora_kohya"], weight=1.0)
    g.connect("m", "unet", "l", "unet")
    with pytest.raises(NodeError) as err:
        inb.Runner(services=inb.Services(models=flux_models)).run(g)
    assert err.value.node_id == "l" and "'lora'" in str(err.value) and "base 'flux'" in str(err.value)


def test_sd_lora_on_the_flux_loader(flux_runner, flux_models, flux, tiny_lora_sd1: Path) -> None:
    sd_lora = identifier(register(flux_models, tiny_lora_sd1, "sd1-lora-for-flux-tests"))
    g = standard_flux.txt2img(flux["dev"], "a cat", width=32, height=32, steps=1,
                              loras=[(sd_lora, 1.0)], **parts(flux))  # fmt: skip
    with pytest.raises(NodeError) as err:
        flux_runner.run(g)
    assert err.value.node_id == "lora_collection_loader" and "'loras'" in str(err.value)


def test_missing_t5_is_a_graph_error_naming_node_and_field(flux) -> None:
    g = standard_flux.txt2img(flux["dev"], "a cat", width=32, height=32, **parts(flux))
    g.edges[:] = [e for e in g.edges if e.destination.field != "t5_encoder"]
    with pytest.raises(GraphError) as err:
        g.validate()
    assert "flux_text_encoder" in str(err.value) and "t5_encoder" in str(err.value)


def test_size_not_divisible_by_16(flux) -> None:
    with pytest.raises(ValueError, match="divisible by 16"):
        standard_flux.txt2img(flux["dev"], "a cat", width=40, height=32, **parts(flux))
    g = Graph()
    with pytest.raises(GraphError) as err:
        g.add("flux_denoise", id="d", width=40)
    assert "'d'" in str(err.value) and "width" in str(err.value)


def test_guidance_list_and_cfg_without_negative(flux_runner, flux) -> None:
    g = standard_flux.txt2img(flux["schnell"], "a cat", width=32, height=32, steps=2, **parts(flux))
    g.set("flux_denoise", cfg_scale=3.0)
    with pytest.raises(NodeError, match="negative_text_conditioning"):
        flux_runner.run(g)
    g.set("flux_denoise", cfg_scale=1.0, cfg_scale_end_step=5)
    with pytest.raises(NodeError, match="cfg_scale_end_step"):
        flux_runner.run(g)


def test_truncated_safetensors(tmp_path: Path, flux_paths) -> None:
    bad = tmp_path / "truncated.safetensors"
    data = flux_paths["dev_file"].read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptModelError, match="truncated"):
        probe(bad)
    # a record made before the damage: loading names the file, and the cache keeps nothing
    good = tmp_path / "good.safetensors"
    shutil.copy(flux_paths["dev_file"], good)
    models = LocalModels()
    rec = register(models, good, "soon-truncated")
    good.write_bytes(data[: len(data) // 2])
    with (
        pytest.raises(ModelLoadError, match="soon-truncated"),
        models.load(identifier(rec), "transformer"),
    ):
        pass
    assert models.cache.keys() == []


def test_control_lora_on_schnell_is_refused(flux_runner, flux) -> None:
    """InvokeAI's one schnell refusal (guidance is ignored on schnell, not refused)."""
    from PIL import Image

    from invoke_nb.nodes.base import InputField, Node, Output, OutputField, node, output
    from invoke_nb.nodes.diffusion.flux.fields import ControlLoRAField
    from invoke_nb.nodes.types import ModelIdentifierField

    @output("t_flux_control_lora_output")
    class _Out(Output):
        control_lora: ControlLoRAField = OutputField()

    @node("t_flux_control_lora", category="test")
    class _ControlLoRA(Node):
        lora: ModelIdentifierField = InputField()

        def invoke(self, ctx) -> _Out:
            img = Image.new("RGB", (32, 32))
            return _Out(control_lora=ControlLoRAField(lora=self.lora, weight=1.0, img=img))

    g = standard_flux.txt2img(flux["schnell"], "a cat", width=32, height=32, steps=2, **parts(flux))
    g.add("t_flux_control_lora", id="cl", lora=flux["lora_peft"])
    g.connect("cl", "control_lora", "flux_denoise", "control_lora")
    with pytest.raises(NodeError) as err:
        flux_runner.run(g)
    assert err.value.node_id == "flux_denoise" and "'control_lora'" in str(err.value)
    assert "Schnell" in str(err.value)


def test_sd_only_arguments_are_refused_by_name(flux) -> None:
    with pytest.raises(ValueError, match="euler, heun and lcm"):
        standard_flux.txt2img(flux["dev"], "a cat", scheduler="dpmpp_2m", **parts(flux))
    with pytest.raises(TypeError, match="clip_skip"):
        standard_flux.txt2img(flux["dev"], "a cat", clip_skip=2, **parts(flux))
    with pytest.raises(ValueError, match="t5_encoder"):
        standard_flux.txt2img(flux["dev"], "a cat")
    from invoke_nb.graph import standard

    with pytest.raises(TypeError, match="clip_skip"):
        standard.txt2img(flux["dev"], "a cat", clip_skip=2, **parts(flux))
    g = standard.txt2img(flux["dev"], "a cat", guidance=2.0, width=32, height=32, **parts(flux))
    assert g.node("flux_denoise").values["guidance"] == 2.0  # the base picked FLUX's builder
