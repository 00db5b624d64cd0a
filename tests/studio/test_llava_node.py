"""``llava_onevision_vllm`` on a tiny random LLaVA-OneVision installed through the model
manager: the node's answer equals greedy generation called directly on transformers' model
with the same conversation, for zero, one and several images; more than three images and a
model of the wrong type are refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import invoke_nb as inb
from invoke_nb.nodes.vllm import MAX_NEW_TOKENS
from invoke_nb.studio import Studio
from invoke_nb.testing.tiny_llava import make_llava_onevision


@pytest.fixture(scope="module")
def llava_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_llava_onevision(tmp_path_factory.mktemp("llava") / "tiny-llava-ov")


def _image(seed: int, size: tuple[int, int]) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def _reference(folder: Path, prompt: str, images: list[Image.Image]) -> str:
    """Greedy generation straight on transformers' classes, outside invoke-nb's graph."""
    import torch
    from transformers import LlavaOnevisionForConditionalGeneration

    from invoke_nb.models.load_llava import image_only_processor

    model = LlavaOnevisionForConditionalGeneration.from_pretrained(folder, local_files_only=True)
    processor = image_only_processor(folder)
    content = [{"type": "text", "text": prompt}] + [{"type": "image"} for _ in images]
    text = processor.apply_chat_template(
        [{"role": "user", "content": content}], add_generation_prompt=True
    )
    inputs = processor(images=images or None, text=text, return_tensors="pt")
    if images:  # the expansion made one <image> token per feature the vision tower gives
        n_tokens = int((inputs["input_ids"] == model.config.image_token_index).sum())
        assert n_tokens > len(images)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=MAX_NEW_TOKENS, do_sample=False)
    return processor.decode(out[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True)


def test_installs_as_llava_onevision(studio: Studio, llava_dir: Path) -> None:
    rec = studio.models.install(str(llava_dir), name="tiny-llava")
    assert (rec.type, rec.base, rec.format) == ("llava_onevision", "any", "diffusers")


@pytest.mark.parametrize(
    ("prompt", "sizes"),
    [("describe the image", [(50, 40)]), ("a cat", []), ("compare", [(32, 32), (70, 30)])],
)
def test_answer_equals_direct_generation(
    studio: Studio, llava_dir: Path, prompt: str, sizes: list[tuple[int, int]]
) -> None:
    rec = studio.models.install(str(llava_dir), name="tiny-llava")
    images = [_image(i, s) for i, s in enumerate(sizes)]
    g = inb.Graph()
    g.add("llava_onevision_vllm", id="ask", prompt=prompt, vllm_model=rec, images=images or None)
    got = studio.run(g, progress=False).outputs["ask"].value
    assert got == _reference(llava_dir, prompt, images).strip()


def test_the_image_reaches_the_model(studio: Studio, llava_dir: Path) -> None:
    rec = studio.models.install(str(llava_dir), name="tiny-llava")
    answers = set()
    for seed in range(3):
        g = inb.Graph()
        g.add(
            "llava_onevision_vllm",
            id="ask",
            prompt="hi",
            vllm_model=rec,
            images=_image(seed, (48, 48)),
        )
        answers.add(studio.run(g, progress=False).outputs["ask"].value)
    assert len(answers) > 1


def test_more_than_three_images_are_refused(studio: Studio, llava_dir: Path) -> None:
    from invoke_nb.graph.errors import FieldValueError

    rec = studio.models.install(str(llava_dir), name="tiny-llava")
    g = inb.Graph()
    with pytest.raises(FieldValueError, match=r"'images'.*at most 3 items"):
        g.add(
            "llava_onevision_vllm",
            id="ask",
            prompt="x",
            vllm_model=rec,
            images=[_image(i, (32, 32)) for i in range(4)],
        )


def test_a_model_of_another_type_is_refused(studio: Studio, tiny_vae: Path) -> None:
    rec = studio.models.install(str(tiny_vae), name="a-vae")
    g = inb.Graph()
    g.add("llava_onevision_vllm", id="ask", prompt="x", vllm_model=rec)
    with pytest.raises(
        Exception,
        match=r"field .vllm_model.: model .a-vae. has type .vae.; this field takes type .llava_onevision.",
    ):
        studio.run(g, progress=False)
