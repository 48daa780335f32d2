"""The text-to-image sampling loop: flow-matching steps with classifier-free guidance (paper §3.1).

Glossary: b - batch, c - latent channels, h, w - latent size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

from .flow_matching import classifier_free_guidance, predicted_clean


@dataclass
class ImageStep:
    """State after one T2I step: current ``latents`` and the predicted clean latents ``pred_clean`` (b, c, h, w)."""

    step: int
    num_steps: int
    timestep: float
    latents: torch.Tensor
    pred_clean: torch.Tensor



@torch.no_grad()
def image_steps(pipe, prompts, negatives, steps, scale, latents, callback, callback_inputs) -> Iterator[ImageStep]:
    """Euler (or any flow-matching scheduler) steps from ``latents``; yields the state after each step."""
    use_cfg = scale != 1.0  # cond and uncond share one batch: (uncond | cond)
    context = pipe.encode_prompt(negatives + prompts if use_cfg else prompts, pipe.defaults.max_sequence_length)
    pipe.scheduler.set_timesteps(steps, device=pipe._execution_device)
    pipe._interrupt = False
    for i, t in enumerate(pipe.scheduler.timesteps):
        if pipe._interrupt:
            break
        model_in = torch.cat([latents, latents]) if use_cfg else latents
        v = pipe.transformer(model_in.to(pipe.transformer.dtype), context, t.expand(model_in.shape[0]),
                             return_logits=False).sample.float()
        if use_cfg:
            v = classifier_free_guidance(*v.chunk(2), scale)
        pred = predicted_clean(latents, v, pipe.scheduler.sigmas[i])
        latents = pipe.scheduler.step(v, t, latents).prev_sample
        if callback is not None:
            given = {"latents": latents, "pred_clean": pred}
            returned = callback(pipe, i, t, {k: given[k] for k in callback_inputs})
            latents = (returned or {}).get("latents", latents)
        yield ImageStep(step=i, num_steps=steps, timestep=float(t), latents=latents, pred_clean=pred)

