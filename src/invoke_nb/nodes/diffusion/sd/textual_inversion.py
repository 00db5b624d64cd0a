"""Textual-inversion embeddings in prompts: ``<name>`` stands for an installed embedding.

As in InvokeAI's compel node, every ``<name>`` in a prompt that names an installed
embedding model of the text encoder's base becomes that embedding's vectors (one token per
vector); other ``<...>`` text stays as typed. The cached tokenizer and text encoder are not
changed: the prompt gets placeholder tokens in a copy of the tokenizer, and the encoder's
token-embedding layer maps those ids to the vectors for the duration of one encode.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["embedding_vectors", "textual_inversions"]

_TRIGGER = re.compile(r"<([^<>\s][^<>]*)>")


def embedding_vectors(sd: dict[str, torch.Tensor], part: str, width: int) -> torch.Tensor | None:
    """The (n, width) vectors of an embedding file for the encoder ``part`` (SDXL files hold
    ``clip_l`` for the first encoder and ``clip_g`` for the second)."""
    if "clip_l" in sd or "clip_g" in sd:
        t = sd.get("clip_g" if part == "text_encoder_2" else "clip_l")
    elif "emb_params" in sd:
        t = sd["emb_params"]
    else:
        params = [v for k, v in sd.items() if k.startswith("string_to_param")]
        t = params[0] if params else (next(iter(sd.values())) if len(sd) == 1 else None)
    if t is None:
        return None
    t = t.reshape(-1, t.shape[-1])
    return t if t.shape[-1] == width else None


def _find(ctx: Any, name: str, base: str) -> Any:
    from invoke_nb.nodes.types import ModelIdentifierField

    try:
        rec = ctx.models.record(ModelIdentifierField(name=name, base=base, type="embedding"))
    except Exception:
        return None
    return rec if rec.type == "embedding" and rec.base == base else None


@contextmanager
def textual_inversions(
    ctx: Any, prompt: str, tokenizer: Any, text_encoder: Any, part: str, base: str
) -> Iterator[tuple[str, Any]]:
    """Yield (prompt, tokenizer) with installed embeddings' placeholders, the encoder's
    token embedding extended for them inside the block. Without embeddings in the prompt,
    the prompt and tokenizer come back unchanged."""
    import torch

    layer = text_encoder.get_input_embeddings()
    width = layer.weight.shape[-1]
    found: list[tuple[str, torch.Tensor]] = []
    for name in dict.fromkeys(_TRIGGER.findall(prompt)):
        rec = _find(ctx, name, base) if ctx.models is not None else None
        if rec is None:
            continue
        with ctx.models.load(rec) as sd:
            vectors = embedding_vectors(sd, part, width)
        if vectors is None:
            raise ValueError(
                f"node {ctx.node_id!r}: embedding {name!r} has no {width}-wide vectors for {part}"
            )
        found.append((name, vectors))
    if not found:
        yield prompt, tokenizer
        return
    tok = copy.deepcopy(tokenizer)
    vocab = layer.weight.shape[0]
    table = []
    for i, (name, vectors) in enumerate(found):
        words = [f"tiemb{i}x{k}" for k in range(vectors.shape[0])]
        tok.add_tokens(words)
        prompt = prompt.replace(f"<{name}>", " ".join(words))
        table.append(vectors)
    extra = torch.cat(table).to(layer.weight.device, layer.weight.dtype)
    ids = tok.convert_tokens_to_ids(
        [f"tiemb{i}x{k}" for i, (_, v) in enumerate(found) for k in range(v.shape[0])]
    )
    if ids != list(range(min(ids), min(ids) + len(ids))) or min(ids) < vocab:
        # placeholders must sit right after the encoder's vocabulary
        offset = torch.full((max(ids) + 1,), -1, dtype=torch.long)
        offset[torch.tensor(ids)] = torch.arange(len(ids))
    else:
        offset = None
    had_own = "forward" in layer.__dict__
    own = layer.__dict__.get("forward")
    plain = layer.forward

    def forward(input_ids: torch.Tensor) -> torch.Tensor:
        new = input_ids >= vocab
        out = plain(torch.where(new, 0, input_ids))
        if new.any():
            rows = (
                input_ids[new] - vocab
                if offset is None
                else offset.to(input_ids.device)[input_ids[new]]
            )
            out[new] = extra[rows].to(out.dtype)
        return out

    layer.forward = forward
    try:
        yield prompt, tok
    finally:
        if had_own:
            layer.forward = own
        else:
            del layer.forward
