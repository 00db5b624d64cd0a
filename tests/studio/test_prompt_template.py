"""``prompt_template`` fills a studio style preset's templates."""

from __future__ import annotations

import pytest

import invoke_nb as inb
from invoke_nb.studio import Studio


def test_prompt_template_uses_the_studio_presets(studio: Studio) -> None:
    preset = studio.presets.create(
        "noir",
        positive_prompt="{prompt}, film noir, high contrast",
        negative_prompt="colour, {prompt}",
    )
    g = inb.Graph()
    g.add(
        "prompt_template",
        id="t",
        style_preset={"style_preset_id": preset.id},
        positive_prompt="a detective",
        negative_prompt="blur",
    )
    out = studio.run(g, progress=False).outputs["t"]
    assert out.positive_prompt == "a detective, film noir, high contrast"
    assert out.negative_prompt == "colour, blur"
    g.set("t", style_preset={"style_preset_id": "nope"})
    with pytest.raises(Exception, match="no style preset 'nope'"):
        studio.run(g, progress=False)
    with pytest.raises(Exception, match="no style presets here"):
        inb.run(g)
