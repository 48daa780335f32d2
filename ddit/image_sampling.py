"""The text-to-image sampling loop: flow-matching steps with classifier-free guidance (paper §3.3, eq. 10;
docs/design.md §2.5).

Any diffusers flow-matching scheduler drives it (``FLOW_SOLVERS`` names the ones we measured: Euler, Heun,
DPM-Solver++ and UniPC with flow sigmas). A guidance interval applies classifier-free guidance only while
sigma is inside it; outside, the step runs the conditional pass alone (one transformer pass instead of two).
Glossary: b - batch, c - latent channels, h, w - latent size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
from diffusers import (
    DPMSolverMultistepScheduler, FlowMatchEulerDiscreteScheduler, FlowMatchHeunDiscreteScheduler,
    UniPCMultistepScheduler,
)

from .flow_matching import classifier_free_guidance, predicted_clean

# solver name -> (scheduler class, its options for flow matching, the option that holds the timestep shift)
FLOW_SOLVERS = {
    "euler": (FlowMatchEulerDiscreteScheduler, {}, "shift"),
    "heun": (FlowMatchHeunDiscreteScheduler, {}, "shift"),
    "dpm++2m": (DPMSolverMultistepScheduler,
                {"use_flow_sigmas": True, "prediction_type": "flow_prediction", "solver_order": 2}, "flow_shift"),
    "unipc": (UniPCMultistepScheduler,
              {"use_flow_sigmas": True, "prediction_type": "flow_prediction", "solver_order": 2}, "flow_shift"),
}


def flow_scheduler(solver: str = "euler", shift: float = 1.0):
    """A diffusers scheduler for flow matching: ``solver`` from ``FLOW_SOLVERS``, sigmas shifted by ``shift``.

    The shift is SD3's: sigma' = shift sigma / (1 + (shift - 1) sigma); shift > 1 spends more of the steps at
    high noise, where layout and shape are decided. Use it as ``pipe.scheduler = flow_scheduler("dpm++2m", 3.0)``.
    """
    if solver not in FLOW_SOLVERS:
        raise ValueError(f"Unknown solver {solver!r}; choose one of {sorted(FLOW_SOLVERS)}.")
    if not (isinstance(shift, (int, float)) and 0 < shift <= 100):
        raise ValueError(f"`shift` must be a number in (0, 100], got {shift!r}.")
    cls, options, shift_key = FLOW_SOLVERS[solver]
    return cls(**options, **{shift_key: float(shift)})


def solver_name(scheduler) -> str | None:
    """The ``FLOW_SOLVERS`` name of a scheduler instance (None for another class)."""
    return next((name for name, (cls, _, _) in FLOW_SOLVERS.items() if type(scheduler) is cls), None)


def planned_passes(scheduler, steps: int, scale: float, interval: tuple[float, float] | None) -> int:
    """Transformer passes per image that ``image_steps`` will make with this scheduler and guidance."""
    plan = type(scheduler).from_config(scheduler.config)
    plan.set_timesteps(steps)
    return sum(2 if guided(float(plan.sigmas[i]), scale, interval) else 1 for i in range(len(plan.timesteps)))


@dataclass
class ImageStep:
    """State after one T2I step: current ``latents`` and the predicted clean latents ``pred_clean`` (b, c, h, w),
    from the guided velocity the step took.

    ``pred_clean_cond``: the conditional model's own prediction, E[x0 | x_t, prompt] (the same as ``pred_clean``
    on an unguided step). It is what a live preview should show: at high noise guidance extrapolates the
    prediction beyond any image (a red object's first guided predictions decode yellow or green).
    ``forward_passes``: transformer passes per image so far (a guided step costs two, an unguided one).
    """

    step: int
    num_steps: int
    timestep: float
    latents: torch.Tensor
    pred_clean: torch.Tensor
    forward_passes: int = 0
    pred_clean_cond: torch.Tensor | None = None


def guided(sigma: float, scale: float, interval: tuple[float, float] | None) -> bool:
    """Whether a step at noise level ``sigma`` uses classifier-free guidance (``interval``: [low, high] sigmas)."""
    if scale == 1.0:
        return False
    return interval is None or interval[0] <= sigma <= interval[1]


@torch.no_grad()
def image_steps(model, context: torch.Tensor, latents: torch.Tensor, steps: int, scale: float,
                guidance_interval: tuple[float, float] | None = None, callback=None,
                callback_inputs: tuple[str, ...] = ("latents",)) -> Iterator[ImageStep]:
    """Denoise ``latents`` (b, c, h, w) with a fresh copy of ``model.scheduler``; yields the state after each model
    call. ``context``: the prompts' encoder states, the negative prompts' before them (2b rows) when
    ``scale != 1``. ``callback(i, t, tensors)`` may return ``{"latents": new}``; ``model`` is a
    :class:`ddit.tasks.base.Model`."""
    scheduler = type(model.scheduler).from_config(model.scheduler.config)  # per run: solvers keep state
    n = latents.shape[0]
    scheduler.set_timesteps(steps, device=model.device)
    total, passes = len(scheduler.timesteps), 0
    for i, t in enumerate(scheduler.timesteps):
        if model.stopped():
            break
        sigma = float(scheduler.sigmas[i])
        use_cfg = guided(sigma, scale, guidance_interval)
        model_in, ctx = (torch.cat([latents, latents]), context) if use_cfg else (latents, context[-n:])
        v = model.transformer(model_in.to(model.transformer.dtype), ctx, t.expand(model_in.shape[0]),
                              return_logits=False).sample.float()
        v_cond = v[-n:]
        if use_cfg:  # cond and uncond share one batch: (uncond | cond)
            v = classifier_free_guidance(v[:n], v_cond, scale)
        passes += 2 if use_cfg else 1
        pred = predicted_clean(latents, v, sigma)
        pred_cond = predicted_clean(latents, v_cond, sigma) if use_cfg else pred
        latents = scheduler.step(v, t, latents).prev_sample.float()
        if callback is not None:
            given = {"latents": latents, "pred_clean": pred}
            returned = callback(i, t, {k: given[k] for k in callback_inputs})
            latents = (returned or {}).get("latents", latents)
        yield ImageStep(step=i, num_steps=total, timestep=float(t), latents=latents, pred_clean=pred,
                        forward_passes=passes, pred_clean_cond=pred_cond)
