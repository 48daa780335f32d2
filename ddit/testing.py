"""Tiny random pipelines for tests, examples and smoke runs (seconds on a CPU, nothing downloaded)."""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler
from transformers import BertConfig, BertModel

from .pipeline import DualDiffusionPipeline
from .transformer import DualDiffusionTransformer
from .word_tokenizer import build_word_tokenizer

TINY_WORDS = (
    "a small large red blue green circle square triangle at the top bottom left right in center on and , "
    "what color shape is there how many ? q : yes no one two"
).split()


def tiny_vae(latent_channels: int = 4) -> AutoencoderKL:
    """A 2-level AutoencoderKL: 16x16 RGB <-> 8x8 latents (factor 2)."""
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=latent_channels, block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        layers_per_block=1, norm_num_groups=4, sample_size=16,
    )


def tiny_transformer(vocab_size: int, joint_attention_dim: int = 16, in_channels: int = 4) -> DualDiffusionTransformer:
    """A 2-block D-DiT of width 16 on 8x8 latents with patch 2 (16 image tokens)."""
    return DualDiffusionTransformer(
        sample_size=8, patch_size=2, in_channels=in_channels, num_layers=2, attention_head_dim=8,
        num_attention_heads=2, joint_attention_dim=joint_attention_dim, caption_projection_dim=16,
        pooled_projection_dim=16, out_channels=in_channels, pos_embed_max_size=8, vocab_size=vocab_size,
    )


def build_tiny_pipeline(seed: int = 0, task_defaults: dict | None = None) -> DualDiffusionPipeline:
    """A random tiny pipeline with a word-level tokenizer and a BERT text encoder (bidirectional)."""
    torch.manual_seed(seed)
    tokenizer = build_word_tokenizer(TINY_WORDS)
    text_encoder = BertModel(BertConfig(
        vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=128,
    )).eval()
    defaults = dict(image_steps=4, guidance_scale=2.0, max_sequence_length=8, caption_steps=4, caption_length=6,
                    question_template="q: {question}", answer_steps=3, answer_length=3, max_prompt_length=16)
    defaults.update(task_defaults or {})
    return DualDiffusionPipeline(
        transformer=tiny_transformer(len(tokenizer)), vae=tiny_vae(), text_encoder=text_encoder,
        tokenizer=tokenizer, scheduler=FlowMatchEulerDiscreteScheduler(), task_defaults=defaults,
    )
