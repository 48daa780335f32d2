"""The joint training objective (paper eq. 9): L = L_image(x_t, clean text) + lambda * L_text(masked text, clean image).

Two forward passes per batch, one backward (by the caller). Glossary: b - batch, l - text tokens.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
from diffusers.utils.torch_utils import randn_tensor

from .flow_matching import flow_matching_loss, interpolate, logit_normal_timesteps
from .masked_diffusion import LogLinearNoise, antithetic_timesteps, nelbo_loss, q_xt, subs_log_probs
from .transformer import DualDiffusionTransformer

TextEncoder = Callable[[torch.Tensor], torch.Tensor]  # token ids (b, l) -> states (b, l, d)


class LossBreakdown(NamedTuple):
    total: torch.Tensor
    image: torch.Tensor
    text: torch.Tensor


def image_loss(
    transformer: DualDiffusionTransformer, encode: TextEncoder, latents: torch.Tensor, prompt_ids: torch.Tensor,
    generator: torch.Generator | None = None, logit_mean: float = 0.0, logit_std: float = 1.0,
) -> torch.Tensor:
    """Flow-matching loss on noisy latents given the clean prompt (eq. 3)."""
    t = logit_normal_timesteps(latents.shape[0], logit_mean, logit_std, generator, latents.device)
    noise = randn_tensor(latents.shape, generator=generator, device=latents.device, dtype=latents.dtype)
    x_t = interpolate(latents, noise, t)
    v = transformer(x_t, encode(prompt_ids), t * 1000, return_logits=False).sample  # scheduler units
    return flow_matching_loss(v, latents, noise)


def text_loss(
    transformer: DualDiffusionTransformer, encode: TextEncoder, latents: torch.Tensor | None, input_ids: torch.Tensor,
    response_mask: torch.Tensor, mask_token_id: int, generator: torch.Generator | None = None,
    noise: LogLinearNoise = LogLinearNoise(),
) -> torch.Tensor:
    """Masked-diffusion NELBO on the response tokens given the clean image (timestep 0) and clean prompt."""
    b = input_ids.shape[0]
    t = antithetic_timesteps(b, noise.eps, generator, input_ids.device)
    x_t = q_xt(input_ids, noise.move_chance(t), response_mask, mask_token_id, generator)
    zero = torch.zeros(b, device=input_ids.device)
    logits = transformer(latents, encode(x_t), zero, mask_token_id=mask_token_id).logits
    log_probs = subs_log_probs(logits, x_t, mask_token_id)
    return nelbo_loss(log_probs, input_ids, x_t, t, response_mask, mask_token_id, noise)


def joint_loss(
    transformer: DualDiffusionTransformer, encode: TextEncoder, latents: torch.Tensor, prompt_ids: torch.Tensor,
    input_ids: torch.Tensor, response_mask: torch.Tensor, mask_token_id: int, text_weight: float,
    generator: torch.Generator | None = None,
) -> LossBreakdown:
    """L_image + lambda L_text (eq. 9) for one batch: ``latents`` with their prompts and their text-task rows."""
    l_image = image_loss(transformer, encode, latents, prompt_ids, generator)
    l_text = text_loss(transformer, encode, latents, input_ids, response_mask, mask_token_id, generator)
    return LossBreakdown(l_image + text_weight * l_text, l_image.detach(), l_text.detach())
