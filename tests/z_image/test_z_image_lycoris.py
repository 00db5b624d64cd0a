"""Z-Image LyCORIS layers (LoHa, LoKr, DoRA) are applied by the shared patcher, never skipped."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from invoke_nb.nodes.diffusion.lora import LoRAFormatError
from invoke_nb.nodes.diffusion.z_image.lora import z_image_lora_patch

MODULE = "layers.0.attention.to_q"


@pytest.fixture(scope="module")
def transformer(tiny_z_image: Path) -> torch.nn.Module:
    from diffusers import ZImageTransformer2DModel

    return ZImageTransformer2DModel.from_pretrained(tiny_z_image / "transformer").eval()


def _weight(model: torch.nn.Module) -> torch.Tensor:
    return model.get_submodule(MODULE).weight


def test_loha_delta_is_applied_and_restored(transformer: torch.nn.Module) -> None:
    before = _weight(transformer).detach().clone()
    out_f, in_f = before.shape
    gen = torch.Generator().manual_seed(3)
    t = {
        n: torch.randn(*s, generator=gen) * 0.1
        for n, s in (
            ("hada_w1_a", (out_f, 2)),
            ("hada_w1_b", (2, in_f)),
            ("hada_w2_a", (out_f, 2)),
            ("hada_w2_b", (2, in_f)),
        )
    }
    sd = {f"diffusion_model.{MODULE}.{n}": v for n, v in t.items()}
    sd[f"diffusion_model.{MODULE}.alpha"] = torch.tensor(2.0)  # alpha / rank = 1
    expected = (t["hada_w1_a"] @ t["hada_w1_b"]) * (t["hada_w2_a"] @ t["hada_w2_b"]) * 0.5
    with z_image_lora_patch(transformer, [(sd, 0.5)], "transformer", None) as patched:
        delta = _weight(patched).detach() - before
        torch.testing.assert_close(delta, expected, atol=1e-5, rtol=1e-4)
    assert torch.equal(_weight(transformer), before)


def test_unknown_layer_kind_is_refused(transformer: torch.nn.Module) -> None:
    sd = {
        f"diffusion_model.{MODULE}.lokr_w1": torch.ones(1, 1),
        f"diffusion_model.{MODULE}.lokr_t2": torch.ones(1, 1, 1, 1),
    }
    with (
        pytest.raises(LoRAFormatError, match="Tucker"),
        z_image_lora_patch(transformer, [(sd, 1.0)], "transformer", None),
    ):
        pass


def test_applying_the_same_lora_twice_names_it(runner, zi, zi_lora) -> None:
    """The family's "Apply LoRA" node refuses a repeat, as every family's does (one helper)."""
    import invoke_nb as inb

    g = inb.Graph()
    g.add("z_image_model_loader", id="loader", model=zi)
    g.add("z_image_lora_loader", id="first", lora=zi_lora, weight=0.5)
    g.add("z_image_lora_loader", id="again", lora=zi_lora, weight=0.5)
    g.connect("loader", "transformer", "first", "transformer")
    g.connect("first", "transformer", "again", "transformer")
    with pytest.raises(inb.NodeError, match=r"'again'.*already applied to transformer"):
        runner.run(g)
