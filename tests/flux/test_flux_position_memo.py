"""flux_denoise computes the rotary position tables once per denoise, with bit-identical
results (diffusers' transformer recomputes them on every call)."""

from __future__ import annotations

import torch
from flux_support import parts

from invoke_nb.graph import standard_flux
from invoke_nb.nodes.diffusion.flux.position_memo import rope_once


def test_position_tables_are_computed_once_per_denoise(flux_runner, flux_models, flux) -> None:
    calls = []
    with flux_models.load(flux["dev_file"], "transformer") as model:
        hook = model.pos_embed.register_forward_hook(lambda *a: calls.append(1))
    try:
        g = standard_flux.txt2img(
            flux["dev_file"], "a cat", width=32, height=32, steps=4, seed=1, **parts(flux)
        )
        r = flux_runner.run(g)
    finally:
        hook.remove()
    assert "flux_denoise" in r.executed
    assert len(calls) == 1  # four steps (five transformer calls), one table


def test_memo_gives_the_same_output_and_goes_away(flux_models, flux) -> None:
    torch.manual_seed(0)
    args = dict(
        hidden_states=torch.randn(1, 16, 64), encoder_hidden_states=torch.randn(1, 8, 32),
        pooled_projections=torch.randn(1, 768), timestep=torch.tensor([0.5]),
        img_ids=torch.randn(16, 3), txt_ids=torch.zeros(8, 3), guidance=torch.tensor([3.5]),
        return_dict=False,
    )  # fmt: skip
    other = {**args, "txt_ids": torch.ones(12, 3), "encoder_hidden_states": torch.randn(1, 12, 32)}
    with flux_models.load(flux["dev_file"], "transformer") as model, torch.inference_mode():
        base = model.pos_embed
        want, want_other = model(**args)[0], model(**other)[0]
        with rope_once(model):
            got = [model(**a)[0] for a in (args, other, args, other)]
        assert model.pos_embed is base
    for a, b in zip(got, [want, want_other] * 2, strict=True):
        assert torch.equal(a, b)


def test_t5_buckets_come_from_the_memo_with_the_same_embeddings(
    flux_models, flux, monkeypatch
) -> None:
    from invoke_nb.nodes.diffusion.flux.position_memo import t5_buckets_memo

    with flux_models.load(flux["t5"], "text_encoder_2") as t5, torch.inference_mode():
        att = t5.encoder.block[0].layer[0].SelfAttention
        ids = torch.tensor([[3, 4, 5, 1] + [0] * 57])  # 61 tokens: no other test's length
        want = t5(input_ids=ids)[0]
        real = type(att)._relative_position_bucket
        calls = []

        def counted(*a, **k):
            calls.append(1)
            return real(*a, **k)

        monkeypatch.setattr(type(att), "_relative_position_bucket", staticmethod(counted))
        with t5_buckets_memo(t5):
            got = [t5(input_ids=ids)[0] for _ in range(2)]
        with t5_buckets_memo(t5):
            got.append(t5(input_ids=ids)[0])  # a later encode: the process-wide memo serves
        assert "_relative_position_bucket" not in att.__dict__
        got.append(t5(input_ids=ids)[0])  # outside: the class's own method again
    assert len(calls) == 2  # once for the three memo encodes, once outside
    assert all(torch.equal(g, want) for g in got)
