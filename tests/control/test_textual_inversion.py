"""Textual-inversion embeddings: ``<name>`` in a prompt becomes the embedding's vectors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import invoke_nb as inb
from invoke_nb.models.local import LocalModels
from invoke_nb.models.probe import probe
from invoke_nb.testing.tiny_control import make_embedding

from .conftest import cident


@pytest.fixture(scope="session")
def embeddings(cmodels: LocalModels, control_dir: Path) -> dict[str, Path]:
    sd1 = make_embedding(control_dir / "my-style.safetensors", "sd-1")
    sdxl = make_embedding(control_dir / "xl-style.safetensors", "sdxl")
    cmodels.register(sd1, name="my-style", type="embedding", base="sd-1")
    cmodels.register(sdxl, name="xl-style", type="embedding", base="sdxl")
    return {"sd-1": sd1, "sdxl": sdxl}


def _encode(crunner, cmodels, prompt: str) -> torch.Tensor:
    g = inb.Graph()
    loader = g.add("main_model_loader", model=cident(cmodels, "tiny-sd1"))
    c = g.add("compel", prompt=prompt)
    g.connect(loader, "clip", c, "clip")
    r = crunner.run(g)
    return r.value(r.outputs[c].conditioning.conditioning_name).embeds


def _reference(tiny_sd1: Path, prompt: str, vectors: torch.Tensor) -> torch.Tensor:
    """The same prompt through a text encoder whose vocabulary was really extended."""
    from transformers import CLIPTextModel, CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(tiny_sd1 / "tokenizer")
    te = CLIPTextModel.from_pretrained(tiny_sd1 / "text_encoder").eval()
    words = [f"emb{k}" for k in range(vectors.shape[0])]
    tok.add_tokens(words)
    te.resize_token_embeddings(len(tok))
    with torch.no_grad():
        for w, v in zip(words, vectors, strict=True):
            te.get_input_embeddings().weight[tok.convert_tokens_to_ids(w)] = v
        ids = tok(
            prompt.replace("<my-style>", " ".join(words)),
            padding="max_length",
            max_length=tok.model_max_length,
            return_tensors="pt",
        ).input_ids
        return te(ids)[0]


def test_an_embedding_token_is_the_embedding_vectors(
    crunner, cmodels, embeddings, tiny_sd1
) -> None:
    from safetensors.torch import load_file

    vectors = load_file(str(embeddings["sd-1"]))["emb_params"]
    ours = _encode(crunner, cmodels, "a <my-style> cat")
    ref = _reference(tiny_sd1, "a <my-style> cat", vectors)
    assert torch.allclose(ours, ref, atol=1e-5)
    plain = _encode(crunner, cmodels, "a cat")
    assert (ours - plain).abs().max() > 1e-2
    # with compel syntax around it too
    weighted = _encode(crunner, cmodels, "a (<my-style>)1.0 cat")
    assert torch.allclose(weighted, ref, atol=1e-4)
    # the cached encoder is unchanged afterwards
    assert torch.equal(_encode(crunner, cmodels, "a cat"), plain)


def test_an_unknown_name_stays_text(crunner, cmodels, embeddings) -> None:
    a = _encode(crunner, cmodels, "a <nothing-here> cat")
    b = _encode(crunner, cmodels, "a <my-style> cat")
    assert (a - b).abs().max() > 1e-2


def test_sdxl_embedding_feeds_both_encoders(crunner, cmodels, embeddings) -> None:
    def enc(prompt: str):
        g = inb.Graph()
        loader = g.add("sdxl_model_loader", model=cident(cmodels, "tiny-sdxl"))
        c = g.add("sdxl_compel_prompt", prompt=prompt, style=prompt)
        g.connect(loader, "clip", c, "clip")
        g.connect(loader, "clip2", c, "clip2")
        r = crunner.run(g)
        return r.value(r.outputs[c].conditioning.conditioning_name)

    a, b = enc("a <xl-style> cat"), enc("a cat")
    assert (a.embeds[..., :768] - b.embeds[..., :768]).abs().max() > 1e-2
    assert (a.embeds[..., 768:] - b.embeds[..., 768:]).abs().max() > 1e-2
    assert (a.pooled_embeds - b.pooled_embeds).abs().max() > 1e-3


def test_probe_places_embeddings(embeddings) -> None:
    assert (probe(embeddings["sd-1"]).type, probe(embeddings["sd-1"]).base) == (
        "embedding",
        "sd-1",
    )
    assert probe(embeddings["sdxl"]).base == "sdxl"
