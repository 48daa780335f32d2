"""The text sampling loop: a response slot in-filled by masked diffusion, conditioned on an image (§3.1).

Glossary: b - batch, l - text tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

from .masked_diffusion import subs_log_probs
from .text_layout import TextBatch
from .text_scheduler import MaskedDiffusionScheduler


@dataclass
class TextStep:
    """State after one text step (all (b, l)): tokens, which are still masked, which were revealed now."""

    step: int
    num_steps: int
    token_ids: torch.LongTensor
    masked: torch.BoolTensor
    revealed: torch.BoolTensor
    response_mask: torch.BoolTensor
    reused_prediction: bool  # True when nothing changed and the last forward pass was reused



@torch.no_grad()
def text_steps(pipe, batch: TextBatch, images, steps: int, sampler: str, generator, threshold,
               reuse_predictions: bool) -> Iterator[TextStep]:
    """In-fill the response slots of ``batch`` step by step, conditioned on ``images`` (None: the null image)."""
    latents = None if images is None else pipe.encode_image(images).expand(batch.input_ids.shape[0], -1, -1, -1)
    scheduler = MaskedDiffusionScheduler(sampler=sampler, confidence_threshold=threshold)
    scheduler.set_timesteps(steps)
    device = pipe._execution_device
    x = batch.input_ids.to(device)
    response_mask = batch.response_mask.to(device)
    zero = torch.zeros(x.shape[0], device=device)
    log_probs, changed = None, True
    pipe._interrupt = False
    for i in range(steps):
        if pipe._interrupt:
            break
        reused = reuse_predictions and not changed  # "ddpm_cache": nothing changed, so p(x0 | x_t) is the same
        if not reused:
            logits = pipe.transformer(latents, pipe.encode_tokens(x), zero, mask_token_id=pipe.mask_token_id).logits
            log_probs = subs_log_probs(logits, x, pipe.mask_token_id)
        out = scheduler.step(log_probs, i, x, pipe.mask_token_id, generator)
        x, changed = out.prev_sample, bool(out.revealed.any())
        yield TextStep(step=i, num_steps=steps, token_ids=x, masked=x == pipe.mask_token_id,
                       revealed=out.revealed, response_mask=response_mask, reused_prediction=reused)

