"""Latent normalisation, in one place: the diffusion runs on (z - shift) * scale, z the VAE's latents.

SD3 (and the released D-DiT) store ``shift_factor`` and ``scaling_factor`` in the VAE config; our
Shapes-World VAE stores the mean and 1/std of its latents there (``train/vae.py``).
A preview decoder (``AutoencoderTiny``, ``train/preview_decoder.py``) carries the same two numbers, so the
same formula decodes with it.
Glossary: b - batch, c - latent channels, h, w - latent size, H, W - pixels.
"""

from __future__ import annotations

import torch


def vae_scale_factor(vae) -> int:
    """Pixels per latent along each side: 2 ** (levels - 1) of an ``AutoencoderKL``."""
    return 2 ** (len(vae.config.block_out_channels) - 1)


def decoder_scale_factor(model) -> int:
    """Pixels per latent along each side of an ``AutoencoderTiny`` (one upsampling between its decoder's levels)
    or, for any other model, of an ``AutoencoderKL``."""
    config = model.config
    if "num_decoder_blocks" in config:
        return config.upsampling_scaling_factor ** (len(config.num_decoder_blocks) - 1)
    return vae_scale_factor(model)


def check_preview_decoder(vae, decoder) -> None:
    """Refuse, in one line, a preview decoder that cannot decode ``vae``'s latents (other channels or factor)."""
    theirs = (decoder.config.latent_channels, decoder_scale_factor(decoder))
    ours = (vae.config.latent_channels, vae_scale_factor(vae))
    if theirs != ours:
        raise ValueError(f"the preview decoder decodes {theirs[0]}-channel latents at factor {theirs[1]}; this "
                         f"model's VAE makes {ours[0]}-channel latents at factor {ours[1]}")


def encode_latents(vae, pixels: torch.Tensor) -> torch.Tensor:
    """Pixels in [-1, 1] (b, 3, H, W) -> normalised latents (b, c, h, w): (z - shift) * scale, z the posterior mode."""
    z = vae.encode(pixels).latent_dist.mode()
    return (z - (vae.config.shift_factor or 0.0)) * vae.config.scaling_factor


def decode_latents(vae, latents: torch.Tensor) -> torch.Tensor:
    """Normalised latents (b, c, h, w) -> pixels in about [-1, 1] (b, 3, H, W): the inverse of ``encode_latents``."""
    z = latents / vae.config.scaling_factor + (vae.config.shift_factor or 0.0)
    return vae.decode(z.to(vae.dtype)).sample
