"""Every scheduler name against diffusers' class as InvokeAI configures it, and ER-SDE's math.

``INVOKEAI`` below restates, from InvokeAI 6.14's scheduler table and ``get_scheduler``, which
diffusers class and overrides each of the 31 names means (read for the facts, written here
independently of our ``_MAP``). For each name our ``make_scheduler`` must give that class
with the same config, the same timesteps and sigmas, and the same first steps on the same
inputs (to float32 rounding). ``er_sde`` has no diffusers class: its schedule is compared
with ``EulerDiscreteScheduler``'s and its step with the ER-SDE formula on known cases.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import pytest
import torch

from invoke_nb.nodes.diffusion.schedulers import SCHEDULER_NAMES, make_scheduler

NK = {"use_karras_sigmas": False}
K = {"use_karras_sigmas": True}
SDE = {"algorithm_type": "sde-dpmsolver++"}
# name -> (diffusers class, overrides), as InvokeAI 6.14 maps them
INVOKEAI: dict[str, tuple[str, dict[str, Any]]] = {
    "ddim": ("DDIMScheduler", {}),
    "ddpm": ("DDPMScheduler", {}),
    "deis": ("DEISMultistepScheduler", NK),
    "deis_k": ("DEISMultistepScheduler", K),
    "lms": ("LMSDiscreteScheduler", NK),
    "lms_k": ("LMSDiscreteScheduler", K),
    "pndm": ("PNDMScheduler", {}),
    "heun": ("HeunDiscreteScheduler", NK),
    "heun_k": ("HeunDiscreteScheduler", K),
    "euler": ("EulerDiscreteScheduler", NK),
    "euler_k": ("EulerDiscreteScheduler", K),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "kdpm_2": ("KDPM2DiscreteScheduler", NK),
    "kdpm_2_k": ("KDPM2DiscreteScheduler", K),
    "kdpm_2_a": ("KDPM2AncestralDiscreteScheduler", NK),
    "kdpm_2_a_k": ("KDPM2AncestralDiscreteScheduler", K),
    "dpmpp_2s": ("DPMSolverSinglestepScheduler", {**NK, "solver_order": 2}),
    "dpmpp_2s_k": ("DPMSolverSinglestepScheduler", {**K, "solver_order": 2}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {**NK, "solver_order": 2}),
    "dpmpp_2m_k": ("DPMSolverMultistepScheduler", {**K, "solver_order": 2}),
    "dpmpp_2m_sde": ("DPMSolverMultistepScheduler", {**NK, "solver_order": 2, **SDE}),
    "dpmpp_2m_sde_k": ("DPMSolverMultistepScheduler", {**K, "solver_order": 2, **SDE}),
    "dpmpp_3m": ("DPMSolverMultistepScheduler", {**NK, "solver_order": 3}),
    "dpmpp_3m_k": ("DPMSolverMultistepScheduler", {**K, "solver_order": 3}),
    "dpmpp_sde": ("DPMSolverSDEScheduler", NK),  # + noise_sampler_seed = the run's seed
    "dpmpp_sde_k": ("DPMSolverSDEScheduler", K),
    "unipc": ("UniPCMultistepScheduler", NK),
    "unipc_k": ("UniPCMultistepScheduler", K),
    "lcm": ("LCMScheduler", {}),
    "tcd": ("TCDScheduler", {}),
}
DIFFUSERS_NAMES = [n for n in SCHEDULER_NAMES if n != "er_sde"]

# SD1.5's scheduler_config.json (what an SD1 model folder ships)
SD1 = {
    "_class_name": "PNDMScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}
SEED = 42
STEPS = 8


def invokeai_scheduler(name: str, base: dict[str, Any], prediction_type: str) -> Any:
    """diffusers' scheduler built the way InvokeAI's ``get_scheduler`` builds it."""
    import diffusers

    cls, extra = INVOKEAI[name]
    config = {**base, **extra, "prediction_type": prediction_type}
    if cls == "DPMSolverSDEScheduler":
        config["noise_sampler_seed"] = SEED
    if cls.startswith("DPMSolver") and base["_class_name"] == "DEISMultistepScheduler":
        config["algorithm_type"] = "dpmsolver++"
    return getattr(diffusers, cls).from_config(config)


def first_steps(sched: Any, n: int = 3) -> list[torch.Tensor]:
    """Run ``n`` steps on fixed inputs (model outputs drawn from a seeded generator)."""
    sched.set_timesteps(STEPS)
    g = torch.Generator().manual_seed(7)
    x = torch.randn((1, 4, 8, 8), generator=g) * sched.init_noise_sigma
    step_gen = torch.Generator().manual_seed(SEED)
    accepts = inspect.signature(sched.step).parameters  # as diffusers' pipelines check
    outs = []
    for t in sched.timesteps[:n]:
        inp = sched.scale_model_input(x, t)
        eps = torch.randn((1, 4, 8, 8), generator=g) * 0.5 + 0.1 * inp
        kw = {"generator": step_gen} if "generator" in accepts else {}
        x = sched.step(eps, t, x, **kw).prev_sample
        outs.append(x)
    return outs


def settings(sched: Any) -> dict[str, Any]:
    """A scheduler's config without diffusers' bookkeeping keys (``_class_name``, ...)."""
    return {k: v for k, v in sched.config.items() if not k.startswith("_")}


def test_the_table_covers_every_name() -> None:
    assert len(SCHEDULER_NAMES) == 31
    assert set(DIFFUSERS_NAMES) == set(INVOKEAI)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("name", DIFFUSERS_NAMES)
def test_scheduler_matches_invokeais_diffusers_scheduler(name: str, prediction_type: str) -> None:
    ours = make_scheduler(name, SD1, seed=SEED, prediction_type=prediction_type)
    ref = invokeai_scheduler(name, SD1, prediction_type)
    assert type(ours) is type(ref)
    assert settings(ours) == settings(ref)
    ours.set_timesteps(STEPS)
    ref.set_timesteps(STEPS)
    torch.testing.assert_close(ours.timesteps, ref.timesteps)
    if hasattr(ref, "sigmas"):
        torch.testing.assert_close(torch.as_tensor(ours.sigmas), torch.as_tensor(ref.sigmas))
    assert float(ours.init_noise_sigma) == pytest.approx(float(ref.init_noise_sigma), rel=1e-6)
    for a, b in zip(first_steps(ours), first_steps(ref), strict=True):
        assert a.isfinite().all()
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_dpm_solvers_on_a_deis_base_config_switch_to_dpmsolverpp() -> None:
    deis = {**SD1, "_class_name": "DEISMultistepScheduler", "algorithm_type": "deis"}
    for name in ("dpmpp_2m", "dpmpp_2s", "dpmpp_3m_k"):
        ours = make_scheduler(name, deis, seed=SEED, prediction_type="epsilon")
        ref = invokeai_scheduler(name, deis, "epsilon")
        assert ours.config.algorithm_type == ref.config.algorithm_type == "dpmsolver++"
        assert settings(ours) == settings(ref)


def test_dpmpp_sde_noise_follows_the_run_seed() -> None:
    a = first_steps(make_scheduler("dpmpp_sde", SD1, seed=1))[-1]
    b = first_steps(make_scheduler("dpmpp_sde", SD1, seed=1))[-1]
    c = first_steps(make_scheduler("dpmpp_sde", SD1, seed=2))[-1]
    torch.testing.assert_close(a, b)
    assert (a - c).abs().max() > 1e-3


# -- er_sde --------------------------------------------------------------------------------
def f(s: float) -> float:
    """ER-SDE's noise scaler."""
    return s * math.exp(s**0.3) + 10 * s


def er_sde(stochastic: bool) -> Any:
    return make_scheduler(
        "er_sde", SD1, seed=SEED, prediction_type="epsilon"
    ).__class__.from_config({**SD1, "prediction_type": "epsilon", "stochastic": stochastic})


def test_er_sde_uses_eulers_schedule_on_the_models_config() -> None:
    import diffusers

    ours = make_scheduler("er_sde", SD1, seed=SEED, prediction_type="epsilon")
    assert ours.stochastic and settings(ours)["beta_schedule"] == "scaled_linear"
    euler = diffusers.EulerDiscreteScheduler.from_config({**SD1, "prediction_type": "epsilon"})
    ours.set_timesteps(STEPS)
    euler.set_timesteps(STEPS)
    torch.testing.assert_close(ours.timesteps, euler.timesteps)
    torch.testing.assert_close(ours.sigmas, euler.sigmas)
    assert float(ours.init_noise_sigma) == pytest.approx(float(euler.init_noise_sigma))


def test_er_sde_deterministic_step_is_the_formula() -> None:
    s = er_sde(stochastic=False)
    s.set_timesteps(STEPS)
    sigma, sigma_next = float(s.sigmas[0]), float(s.sigmas[1])
    x = torch.tensor([[[[1.5, -0.25]]]])
    eps = torch.tensor([[[[0.5, 2.0]]]])
    out = s.step(eps, s.timesteps[0], x).prev_sample
    r = f(sigma_next) / f(sigma)
    for i, (xi, ei) in enumerate([(1.5, 0.5), (-0.25, 2.0)]):
        x0 = xi - sigma * ei
        assert float(out.flatten()[i]) == pytest.approx(r * xi + (1 - r) * x0, rel=1e-5)


def test_er_sde_stochastic_step_adds_the_formulas_noise() -> None:
    det, sto = er_sde(stochastic=False), er_sde(stochastic=True)
    for s in (det, sto):
        s.set_timesteps(STEPS)
    sigma, sigma_next = float(sto.sigmas[2]), float(sto.sigmas[3])
    x = torch.full((1, 1, 2, 2), 3.0)
    eps = torch.full((1, 1, 2, 2), 0.2)
    for s in (det, sto):
        s._step_index = 2
    base = det.step(eps, det.timesteps[2], x).prev_sample
    noisy = sto.step(eps, sto.timesteps[2], x, generator=torch.Generator().manual_seed(5))
    z = torch.randn((1, 1, 2, 2), generator=torch.Generator().manual_seed(5))
    r = f(sigma_next) / f(sigma)
    scale = math.sqrt(sigma_next**2 - (sigma * r) ** 2)
    torch.testing.assert_close(noisy.prev_sample, base + scale * z, rtol=1e-5, atol=1e-5)


def test_er_sde_solves_a_point_mass_exactly_and_keeps_the_noise_level() -> None:
    """Data = one point c: the exact noise prediction is (x - c) / sigma. The last step must
    land on c; with the noise term, every step must leave x - c at the next sigma's level
    (r^2 sigma^2 + sigma_next^2 - (sigma r)^2 = sigma_next^2)."""
    c = 0.7
    for stochastic in (False, True):
        s = er_sde(stochastic)
        s.set_timesteps(STEPS)
        gen = torch.Generator().manual_seed(0)
        x = c + torch.randn((1, 4, 128, 128), generator=gen) * s.sigmas[0]
        for i, t in enumerate(s.timesteps):
            sigma = s.sigmas[i]
            x = s.step((x - c) / sigma, t, x, generator=gen).prev_sample
            nxt = float(s.sigmas[i + 1])
            if nxt > 0 and stochastic:
                spread = float((x - c).std()) / nxt
                assert spread == pytest.approx(1.0, rel=0.03), (stochastic, i, spread)
        torch.testing.assert_close(x, torch.full_like(x, c), rtol=0, atol=1e-4)
