"""Helpers for tests, examples and smoke runs: tiny random pipelines (seconds on a CPU, nothing downloaded),
seeded generators and a free local port."""

from __future__ import annotations

import socket

import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler

from .pipeline import DualDiffusionPipeline
from .presets import build_text_encoder, build_transformer, get_size
from .transformer import DualDiffusionTransformer
from .word_tokenizer import build_word_tokenizer

TINY_WORDS = (
    "a small large red blue green circle square triangle at the top bottom left right in center on and , "
    "what color shape is there how many ? q : yes no one two"
).split()


def generator(seed: int = 0) -> torch.Generator:
    """A CPU generator seeded with ``seed``."""
    return torch.Generator().manual_seed(seed)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_vae(latent_channels: int = 4) -> AutoencoderKL:
    """An untrained 2-level AutoencoderKL: 16x16 RGB <-> 8x8 latents (factor 2). Never for a real model."""
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=latent_channels, block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        layers_per_block=1, norm_num_groups=4, sample_size=16,
    )


def tiny_transformer(vocab_size: int, in_channels: int = 4) -> DualDiffusionTransformer:
    """A random D-DiT of the "tiny" size on 8x8 latents (16 image tokens); text states are 16 wide."""
    return build_transformer(get_size("tiny"), latent_size=8, latent_channels=in_channels, vocab_size=vocab_size)


def build_tiny_pipeline(seed: int = 0, task_defaults: dict | None = None) -> DualDiffusionPipeline:
    """A random pipeline of the "tiny" size on 16x16 images, with a word-level tokenizer and a BERT encoder."""
    torch.manual_seed(seed)
    tokenizer = build_word_tokenizer(TINY_WORDS)
    text_encoder = build_text_encoder(get_size("tiny"), len(tokenizer)).eval()
    transformer = tiny_transformer(len(tokenizer))
    defaults = dict(image_steps=4, guidance_scale=2.0, max_sequence_length=32, caption_steps=4, caption_length=6,
                    question_template="q: {question}", answer_steps=3, answer_length=3, max_prompt_length=16)
    defaults.update(task_defaults or {})
    return DualDiffusionPipeline(
        transformer=transformer, vae=tiny_vae(), text_encoder=text_encoder, tokenizer=tokenizer,
        scheduler=FlowMatchEulerDiscreteScheduler(), task_defaults=defaults,
    )
