"""The joint training objective (paper eq. 9):
L = w_img L_image(x_t, clean text) + lambda L_text(masked text, clean image).

This is the one place eq. 9 is written; training (``train/loop.py``) and the tests call ``joint_loss``.
Two forward passes per batch, one backward (by the caller). Glossary: b - batch, l - text tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
from diffusers.utils.torch_utils import randn_tensor

from .flow_matching import flow_matching_loss, interpolate, logit_normal_timesteps
from .masked_diffusion import antithetic_timesteps, nelbo_loss, subs_log_probs
from .text_scheduler import MaskedDiffusionScheduler
from .transformer import DualDiffusionTransformer

TextEncoder = Callable[[torch.Tensor], torch.Tensor]  # token ids (b, l) -> states (b, l, d)


@dataclass(frozen=True)
class JointLossConfig:
    """How eq. 9 weighs and splits a batch (the ``loss`` section of a training config)."""

    text_weight: float = 1.0  # lambda of eq. 9: 0.2 in dual pre-training, 1.0 later (paper Table 6)
    image_weight: float = 1.0  # 0 skips the image pass (instruction data has no captions to draw from)
    # None: every row does both tasks (paper); f: the first round(f b) rows do the image task, the rest the text task
    image_fraction: float | None = None
    logit_mean: float = 0.0  # image timesteps t = sigmoid(n), n ~ N(mean, std^2): SD3's logit-normal
    logit_std: float = 1.0
    text_eps: float = 1e-3  # MDLM's epsilon: text times t lie in [eps, 1], and sigma(1) stays finite


class LossBreakdown(NamedTuple):
    total: torch.Tensor
    image: torch.Tensor  # detached, unweighted
    text: torch.Tensor  # detached, unweighted


def image_loss(
    transformer: DualDiffusionTransformer, encode: TextEncoder, latents: torch.Tensor, prompt_ids: torch.Tensor,
    generator: torch.Generator | None, logit_mean: float, logit_std: float,
) -> torch.Tensor:
    """Flow-matching loss on noisy latents given the clean prompt (eq. 3)."""
    t = logit_normal_timesteps(latents.shape[0], logit_mean, logit_std, generator, latents.device)
    noise = randn_tensor(latents.shape, generator=generator, device=latents.device, dtype=latents.dtype)
    x_t = interpolate(latents, noise, t)
    v = transformer(x_t, encode(prompt_ids), t * 1000, return_logits=False).sample  # scheduler units
    return flow_matching_loss(v, latents, noise)


def text_loss(
    transformer: DualDiffusionTransformer, encode: TextEncoder, latents: torch.Tensor | None, input_ids: torch.Tensor,
    response_mask: torch.Tensor, mask_token_id: int, scheduler: MaskedDiffusionScheduler,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Masked-diffusion NELBO on the response tokens given the clean image (timestep 0) and the clean prompt.

    The forward masking is the scheduler's ``add_noise``; its noise schedule weighs the loss.
    """
    b = input_ids.shape[0]
    t = antithetic_timesteps(b, scheduler.noise.eps, generator, input_ids.device)
    x_t = scheduler.add_noise(input_ids, t, response_mask, mask_token_id, generator)
    zero = torch.zeros(b, device=input_ids.device)
    logits = transformer(latents, encode(x_t), zero, mask_token_id=mask_token_id).logits
    log_probs = subs_log_probs(logits, x_t, mask_token_id)
    return nelbo_loss(log_probs, input_ids, x_t, t, response_mask, mask_token_id, scheduler.noise)


def task_rows(batch_size: int, image_fraction: float | None) -> tuple[slice, slice]:
    """(image rows, text rows) of a batch: all rows for both, or a split keeping at least one row each."""
    if image_fraction is None:
        return slice(0, batch_size), slice(0, batch_size)
    n_image = max(1, min(batch_size - 1, round(image_fraction * batch_size)))
    return slice(0, n_image), slice(n_image, batch_size)


def joint_loss(
    transformer: DualDiffusionTransformer, encode: TextEncoder, latents: torch.Tensor, prompt_ids: torch.Tensor,
    input_ids: torch.Tensor, response_mask: torch.Tensor, mask_token_id: int, config: JointLossConfig,
    scheduler: MaskedDiffusionScheduler, generator: torch.Generator | None = None,
) -> LossBreakdown:
    """Eq. 9 for one batch: ``latents`` (b, c, h, w) with their T2I ``prompt_ids`` and their text-task rows
    (``input_ids``, ``response_mask``: (b, l)), split between the tasks as ``config.image_fraction`` says.

    ``scheduler`` masks the text (its ``eps`` should be ``config.text_eps``). Random draws come in a fixed
    order (image times, image noise, text times, text masks), so a seeded ``generator`` makes the loss exact.
    """
    if scheduler.config.eps != config.text_eps:
        raise ValueError(f"the scheduler's eps {scheduler.config.eps} is not the config's text_eps {config.text_eps}")
    image_rows, text_rows = task_rows(latents.shape[0], config.image_fraction)
    l_image = torch.zeros((), device=latents.device)
    if config.image_weight > 0:
        l_image = image_loss(transformer, encode, latents[image_rows], prompt_ids[image_rows], generator,
                             config.logit_mean, config.logit_std)
    l_text = text_loss(transformer, encode, latents[text_rows], input_ids[text_rows], response_mask[text_rows],
                       mask_token_id, scheduler, generator)
    total = config.image_weight * l_image + config.text_weight * l_text  # eq. 9
    return LossBreakdown(total, l_image.detach(), l_text.detach())
