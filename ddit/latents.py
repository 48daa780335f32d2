"""Latent normalisation, in one place: the diffusion runs on (z - shift) * scale, z the VAE's latents.

SD3 (and the released D-DiT) store ``shift_factor`` and ``scaling_factor`` in the VAE config; our
Shapes-World VAE stores the mean and 1/std of its latents there (``train/vae.py``).
Glossary: b - batch, c - latent channels, h, w - latent size, H, W - pixels.
"""

from __future__ import annotations

import torch


def vae_scale_factor(vae) -> int:
    """Pixels per latent along each side: 2 ** (levels - 1) of an ``AutoencoderKL``."""
    return 2 ** (len(vae.config.block_out_channels) - 1)


def encode_latents(vae, pixels: torch.Tensor) -> torch.Tensor:
    """Pixels in [-1, 1] (b, 3, H, W) -> normalised latents (b, c, h, w): (z - shift) * scale, z the posterior mode."""
    z = vae.encode(pixels).latent_dist.mode()
    return (z - (vae.config.shift_factor or 0.0)) * vae.config.scaling_factor


def decode_latents(vae, latents: torch.Tensor) -> torch.Tensor:
    """Normalised latents (b, c, h, w) -> pixels in about [-1, 1] (b, 3, H, W): the inverse of ``encode_latents``."""
    z = latents / vae.config.scaling_factor + (vae.config.shift_factor or 0.0)
    return vae.decode(z.to(vae.dtype)).sample
