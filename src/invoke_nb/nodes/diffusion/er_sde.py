"""A first-order ER-SDE sampler (Cui et al., 2023, "Elucidating the solution space of
extended reverse-time SDE") on diffusers' Euler sigma schedule.

InvokeAI offers ``er_sde`` through its own scheduler class; diffusers has none. This one
keeps Euler's timesteps, input scaling and ``add_noise`` and replaces the step with the
ER-SDE update in the variance-exploding form (x = x0 + sigma * eps):

    r       = f(sigma_next) / f(sigma)
    x_next  = r * x + (1 - r) * x0_hat + sqrt(sigma_next^2 - (sigma * r)^2) * z

with the noise scaler f(s) = s * (exp(s^0.3) + 10). It is first order only, so its images
differ from InvokeAI's third-order solver with the same name. Its noise is drawn on the CPU
(see :meth:`ERSDEScheduler.prepare_noise`), so a seed gives the same image on every device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from diffusers import EulerDiscreteScheduler

__all__ = ["ERSDEScheduler"]


def _noise_scaler(sigma: torch.Tensor) -> torch.Tensor:
    return sigma * (sigma**0.3).exp() + 10.0 * sigma


@dataclass
class _StepOutput:
    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor


class ERSDEScheduler(EulerDiscreteScheduler):
    """Euler's schedule with the stochastic ER-SDE step.

    ``from_config`` takes the model's scheduler config like any diffusers scheduler, plus
    ``stochastic`` (False drops the noise term) and InvokeAI's ``solver_order`` (accepted,
    first order regardless). ``__init__`` stays Euler's: diffusers reads the config keys a
    scheduler takes from its ``__init__`` signature, so an ``*args, **kwargs`` override would
    silently drop the model's beta schedule.
    """

    stochastic: bool = True
    _noise: torch.Tensor | None = None  # every step's noise, drawn up front (prepare_noise)
    _drawn = 0

    @classmethod
    def from_config(cls, config: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        config = {**dict(config or {}), **kwargs}
        stochastic = bool(config.pop("stochastic", True))
        for key in ("solver_order", "use_flow_sigmas"):
            config.pop(key, None)
        sched = super().from_config(config)
        sched.stochastic = stochastic
        return sched

    def prepare_noise(
        self, shape: tuple[int, ...], steps: int, generator: torch.Generator, device: Any
    ) -> None:
        """Draw every step's noise now on the CPU (one draw per step, so the numbers are the
        same on every device) and move them to ``device`` in one copy."""
        draws = [torch.randn(shape, generator=generator, dtype=torch.float32) for _ in range(steps)]
        self._noise = torch.stack(draws).to(device)
        self._drawn = 0

    def _next_noise(self, sample: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        if self._noise is not None and self._drawn < len(self._noise):
            z = self._noise[self._drawn]
            self._drawn += 1
            return z.to(sample.dtype)
        # without prepare_noise: draw where the generator lives, then move
        where = generator.device if generator is not None else torch.device("cpu")
        z = torch.randn(sample.shape, generator=generator, dtype=sample.dtype, device=where)
        return z.to(sample.device)

    def step(  # type: ignore[override]
        self,
        model_output: torch.Tensor,
        timestep: Any,
        sample: torch.Tensor,
        generator: torch.Generator | None = None,
        return_dict: bool = True,
        **_: Any,
    ) -> Any:
        if self.step_index is None:
            self._init_step_index(timestep)
        sigma = self.sigmas[self.step_index]
        sigma_next = self.sigmas[self.step_index + 1]
        sample = sample.to(torch.float32)
        if self.config.prediction_type == "v_prediction":
            x0 = model_output * (-sigma / (sigma**2 + 1) ** 0.5) + sample / (sigma**2 + 1)
        else:
            x0 = sample - sigma * model_output
        if sigma_next == 0:
            prev = x0
        else:
            r = _noise_scaler(sigma_next) / _noise_scaler(sigma)
            prev = r * sample + (1 - r) * x0
            if self.stochastic:
                scale = (sigma_next**2 - (sigma * r) ** 2).clamp(min=0).sqrt()
                prev = prev + scale * self._next_noise(sample, generator)
        self._step_index += 1
        out = _StepOutput(prev_sample=prev.to(model_output.dtype), pred_original_sample=x0)
        return out if return_dict else (out.prev_sample,)
