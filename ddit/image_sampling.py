"""The text-to-image sampling loop: flow-matching steps with classifier-free guidance (paper §3.3, eq. 10;
docs/design.md §2.5).

In-painting (``Known``) keeps the latents outside a mask on the given image's path: after every solver step they are
reset to the given latents noised to the level the step reached, (1 - sigma) x0 + sigma eps (design §2.10);
``strength`` < 1 starts part of the way, from the given latents noised to that level (image-to-image).

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

from .checks import steps_run
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


def planned_passes(scheduler, steps: int, scale: float, interval: tuple[float, float] | None,
                   strength: float = 1.0) -> int:
    """Transformer passes per image that ``image_steps`` will make with this scheduler, guidance and strength."""
    plan = type(scheduler).from_config(scheduler.config)
    begin = set_timesteps(plan, steps, strength, "cpu")
    return sum(2 if guided(float(plan.sigmas[i]), scale, interval) else 1 for i in range(begin, len(plan.timesteps)))


def set_timesteps(scheduler, steps: int, strength: float, device) -> int:
    """Set ``steps`` timesteps, of which the last ``strength`` share is run (diffusers' image-to-image rule); the
    index of the first one run. Raises ``ValueError`` when no step is left."""
    scheduler.set_timesteps(steps, device=device)
    begin = (steps - steps_run(steps, strength)) * scheduler.order
    if begin:
        scheduler.set_begin_index(begin)
    return begin


@dataclass
class Known:
    """What in-painting keeps: the given image's normalised ``latents`` (b, c, h, w), ``keep`` (b, 1, h, w) 1 where
    they are kept (0: repainted), and the ``noise`` that noises them to a level."""

    latents: torch.Tensor
    keep: torch.Tensor
    noise: torch.Tensor

    def noised(self, sigma: float) -> torch.Tensor:
        """The given latents at noise level ``sigma``: (1 - sigma) x0 + sigma eps (flow matching's path)."""
        return (1.0 - sigma) * self.latents + sigma * self.noise

    def apply(self, latents: torch.Tensor, sigma: float) -> torch.Tensor:
        """``latents`` with the kept region reset to the given image at ``sigma``."""
        return self.keep * self.noised(sigma) + (1.0 - self.keep) * latents


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
                callback_inputs: tuple[str, ...] = ("latents",), known: Known | None = None,
                strength: float = 1.0) -> Iterator[ImageStep]:
    """Denoise ``latents`` (b, c, h, w) with a fresh copy of ``model.scheduler``; yields the state after each model
    call. ``context``: the prompts' encoder states, the negative prompts' before them (2b rows) when
    ``scale != 1``. ``callback(i, t, tensors)`` may return ``{"latents": new}``; ``model`` is a
    :class:`ddit.tasks.base.Model`. ``known`` (in-painting): the region to keep and its latents; with
    ``strength`` < 1 the run starts from ``known.noised`` at the first level run (``latents`` are then unused)."""
    scheduler = type(model.scheduler).from_config(model.scheduler.config)  # per run: solvers keep state
    n = latents.shape[0]
    begin = set_timesteps(scheduler, steps, strength, model.device)
    if known is not None and begin > 0:
        latents = known.noised(float(scheduler.sigmas[begin]))
    timesteps, sigmas = scheduler.timesteps[begin:], scheduler.sigmas[begin:]
    total, passes = len(timesteps), 0
    for i, t in enumerate(timesteps):
        if model.stopped():
            break
        sigma = float(sigmas[i])
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
        if known is not None:  # the kept region back on the given image's path, at the level the step reached
            latents = known.apply(latents, float(scheduler.sigmas[scheduler.step_index]))
            pred, pred_cond = known.apply(pred, 0.0), known.apply(pred_cond, 0.0)
        if callback is not None:
            given = {"latents": latents, "pred_clean": pred}
            returned = callback(i, t, {k: given[k] for k in callback_inputs})
            latents = (returned or {}).get("latents", latents)
        yield ImageStep(step=i, num_steps=total, timestep=float(t), latents=latents, pred_clean=pred,
                        forward_passes=passes, pred_clean_cond=pred_cond)
