"""Rectified flow / flow matching for image latents (paper §2.1, eq. 1–3, SD3 convention; docs/design.md §2.1).

t = 0 is data, t = 1 is noise; the network predicts the velocity v = eps - x0.
Sampling runs any diffusers flow-matching solver (``ddit.image_sampling``: Euler, Heun, DPM-Solver++, UniPC); this
module holds the training math and the two sampling-time formulas the pipeline needs (guidance, eq. 10, and the
predicted clean sample).
"""

from __future__ import annotations

import torch
from diffusers.utils.torch_utils import randn_tensor


def logit_normal_timesteps(
    batch_size: int, mean: float = 0.0, std: float = 1.0, generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """t = sigmoid(n), n ~ N(mean, std^2): SD3's logit-normal training timesteps, shape (b,)."""
    n = randn_tensor((batch_size,), generator=generator, device=torch.device(device)) * std + mean
    return torch.sigmoid(n)


def interpolate(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Forward process x_t = (1 - t) x0 + t eps (eq. 1); ``t`` has shape (b,)."""
    t = t.reshape(-1, *([1] * (x0.ndim - 1))).to(x0.dtype)
    return (1 - t) * x0 + t * noise


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """d x_t / d t = eps - x0, the regression target (eq. 2)."""
    return noise - x0


def flow_matching_loss(v_pred: torch.Tensor, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Mean squared error between predicted and true velocity (eq. 3), in fp32."""
    return torch.mean((v_pred.float() - velocity_target(x0, noise).float()) ** 2)


def flow_matching_errors(v_pred: torch.Tensor, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Eq. 3 per sample (b,): the mean squared velocity error of each, in fp32 (lower: the sample fits its
    condition better; compared across samples with the same t and eps, it ranks them)."""
    return ((v_pred.float() - velocity_target(x0, noise).float()) ** 2).flatten(1).mean(1)


def classifier_free_guidance(v_uncond: torch.Tensor, v_cond: torch.Tensor, scale: float) -> torch.Tensor:
    """v = v_uncond + w (v_cond - v_uncond); w = 1 is the plain conditional model."""
    return v_uncond + scale * (v_cond - v_uncond)


def predicted_clean(x_t: torch.Tensor, velocity: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """x0_hat = x_t - sigma v: where the current velocity would land at t = 0 (the live preview)."""
    return x_t - sigma * velocity
