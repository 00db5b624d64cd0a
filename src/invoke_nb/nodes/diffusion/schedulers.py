"""InvokeAI's scheduler names mapped to diffusers schedulers, and per-run scheduler setup.

A scheduler is built for every denoise from the model's scheduler config plus the name's
overrides (Karras sigmas, solver order, SDE variants), so runs never share scheduler state.
``dpmpp_sde*`` need ``torchsde``. ``er_sde`` has no diffusers class; it maps to our
:class:`~invoke_nb.nodes.diffusion.er_sde.ERSDEScheduler`.
"""

from __future__ import annotations

import functools
from typing import Any, Literal, get_args

__all__ = ["SCHEDULER_NAMES", "SchedulerName", "make_scheduler"]

SchedulerName = Literal[
    "ddim",
    "ddpm",
    "deis",
    "deis_k",
    "lms",
    "lms_k",
    "pndm",
    "heun",
    "heun_k",
    "euler",
    "euler_k",
    "euler_a",
    "kdpm_2",
    "kdpm_2_k",
    "kdpm_2_a",
    "kdpm_2_a_k",
    "dpmpp_2s",
    "dpmpp_2s_k",
    "dpmpp_2m",
    "dpmpp_2m_k",
    "dpmpp_2m_sde",
    "dpmpp_2m_sde_k",
    "dpmpp_3m",
    "dpmpp_3m_k",
    "dpmpp_sde",
    "dpmpp_sde_k",
    "er_sde",
    "unipc",
    "unipc_k",
    "lcm",
    "tcd",
]

SCHEDULER_NAMES: tuple[str, ...] = get_args(SchedulerName)

_K = {"use_karras_sigmas": True}
_NK = {"use_karras_sigmas": False}
_SDE = {"algorithm_type": "sde-dpmsolver++"}

# name -> (diffusers class name, config overrides)
_MAP: dict[str, tuple[str, dict[str, Any]]] = {
    "ddim": ("DDIMScheduler", {}),
    "ddpm": ("DDPMScheduler", {}),
    "deis": ("DEISMultistepScheduler", _NK),
    "deis_k": ("DEISMultistepScheduler", _K),
    "lms": ("LMSDiscreteScheduler", _NK),
    "lms_k": ("LMSDiscreteScheduler", _K),
    "pndm": ("PNDMScheduler", {}),
    "heun": ("HeunDiscreteScheduler", _NK),
    "heun_k": ("HeunDiscreteScheduler", _K),
    "euler": ("EulerDiscreteScheduler", _NK),
    "euler_k": ("EulerDiscreteScheduler", _K),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "kdpm_2": ("KDPM2DiscreteScheduler", _NK),
    "kdpm_2_k": ("KDPM2DiscreteScheduler", _K),
    "kdpm_2_a": ("KDPM2AncestralDiscreteScheduler", _NK),
    "kdpm_2_a_k": ("KDPM2AncestralDiscreteScheduler", _K),
    "dpmpp_2s": ("DPMSolverSinglestepScheduler", {**_NK, "solver_order": 2}),
    "dpmpp_2s_k": ("DPMSolverSinglestepScheduler", {**_K, "solver_order": 2}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {**_NK, "solver_order": 2}),
    "dpmpp_2m_k": ("DPMSolverMultistepScheduler", {**_K, "solver_order": 2}),
    "dpmpp_2m_sde": ("DPMSolverMultistepScheduler", {**_NK, "solver_order": 2, **_SDE}),
    "dpmpp_2m_sde_k": ("DPMSolverMultistepScheduler", {**_K, "solver_order": 2, **_SDE}),
    "dpmpp_3m": ("DPMSolverMultistepScheduler", {**_NK, "solver_order": 3}),
    "dpmpp_3m_k": ("DPMSolverMultistepScheduler", {**_K, "solver_order": 3}),
    "dpmpp_sde": ("DPMSolverSDEScheduler", {**_NK, "noise_sampler_seed": 0}),
    "dpmpp_sde_k": ("DPMSolverSDEScheduler", {**_K, "noise_sampler_seed": 0}),
    "er_sde": ("ERSDEScheduler", {"solver_order": 3, "stochastic": True}),
    "unipc": ("UniPCMultistepScheduler", _NK),
    "unipc_k": ("UniPCMultistepScheduler", _K),
    "lcm": ("LCMScheduler", {}),
    "tcd": ("TCDScheduler", {}),
}


class UnknownSchedulerError(ValueError):
    """The scheduler name is not one of InvokeAI's."""


def make_scheduler(
    name: str,
    base_config: dict[str, Any],
    *,
    seed: int,
    prediction_type: str | None = None,
) -> Any:
    """A fresh diffusers scheduler for ``name`` built on the model's scheduler config.

    DPM++ SDE gets ``noise_sampler_seed = seed`` (InvokeAI's rule: its Brownian noise is
    then reproducible). A DEIS base config is switched to ``dpmsolver++`` for DPM solvers.
    """
    if name not in _MAP:
        raise UnknownSchedulerError(
            f"unknown scheduler {name!r}; expected one of: {', '.join(SCHEDULER_NAMES)}"
        )
    class_name, overrides = _MAP[name]
    config = dict(base_config.get("_backup", base_config))
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    config.update(overrides)
    if prediction_type:
        config["prediction_type"] = prediction_type
    if class_name == "DPMSolverSDEScheduler":
        config["noise_sampler_seed"] = seed
    if (
        class_name in ("DPMSolverMultistepScheduler", "DPMSolverSinglestepScheduler")
        and config.get("algorithm_type") == "deis"
    ):
        config["algorithm_type"] = "dpmsolver++"
    return _scheduler_class(class_name).from_config(config)


@functools.cache
def _scheduler_class(class_name: str) -> Any:
    # diffusers resolves its lazy attributes slowly (~8 ms); look each class up once.
    if class_name == "ERSDEScheduler":
        from invoke_nb.nodes.diffusion.er_sde import ERSDEScheduler

        return ERSDEScheduler
    import diffusers

    return getattr(diffusers, class_name)
