"""Named model sizes (DiT's registry) and the builders of from-scratch components that use them.

A size fixes the D-DiT transformer and the small bidirectional BERT text encoder that a new model
(Shapes-World, tests, benchmarks) starts from; training configs name one (``model.size``). Models made
from SD3 or the released checkpoints take their sizes from those folders instead.

The "tiny" size also comes as whole random components (seconds on a CPU, nothing downloaded): ``tiny_vae`` for
the smoke-run training config (``model.vae: random``) and ``build_tiny_pipeline`` for ``ddit save-tiny`` and the
tests. They are untrained: never for a real model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler
from transformers import BertConfig, BertModel

from .pipeline import DualDiffusionPipeline
from .task_defaults import combine
from .transformer import DualDiffusionTransformer
from .word_tokenizer import build_word_tokenizer

TINY_WORDS = (
    "a small large red blue green circle square triangle at the top bottom left right in center on and , "
    "what color shape is there how many ? q : yes no one two"
).split()


@dataclass(frozen=True)
class ModelSize:
    width: int  # transformer inner width = heads * head_dim
    head_dim: int
    depth: int  # joint blocks
    patch_size: int  # latent pixels per image token, per side
    text_width: int  # text encoder width (= the transformer's joint_attention_dim)
    text_layers: int
    text_heads: int
    text_max_positions: int  # position table of the text encoder; grown to the data's text length if shorter

    def __post_init__(self) -> None:
        if self.width % self.head_dim or self.text_width % self.text_heads:
            raise ValueError(f"width must be a multiple of head_dim and text_width of text_heads: {self}")


PRESETS: dict[str, ModelSize] = {
    # unit tests and smoke runs (train/configs/tiny.yaml): a forward pass in milliseconds, a few steps in seconds
    "tiny": ModelSize(width=16, head_dim=8, depth=2, patch_size=2, text_width=16, text_layers=1, text_heads=2,
                      text_max_positions=64),
    # the bundled Shapes-World model (3.7 M parameters): on 2 CPU cores, more steps beat more width or depth
    "shapes-s": ModelSize(width=128, head_dim=32, depth=6, patch_size=2, text_width=128, text_layers=2,
                          text_heads=4, text_max_positions=64),
}


def get_size(name: str) -> ModelSize:
    """The preset called ``name``; a clear error names the known ones."""
    if name not in PRESETS:
        raise ValueError(f"Unknown model size {name!r}; known sizes: {', '.join(PRESETS)}")
    return PRESETS[name]


def build_transformer(size: ModelSize, latent_size: int, latent_channels: int, vocab_size: int,
                      mask_token_id: int | None = None) -> DualDiffusionTransformer:
    """A randomly initialised D-DiT of ``size`` on ``latent_size``² latents (call ``initialize_weights`` to train)."""
    return DualDiffusionTransformer(
        sample_size=latent_size, patch_size=size.patch_size, in_channels=latent_channels, num_layers=size.depth,
        attention_head_dim=size.head_dim, num_attention_heads=size.width // size.head_dim,
        joint_attention_dim=size.text_width, caption_projection_dim=size.width, pooled_projection_dim=size.width,
        out_channels=latent_channels, pos_embed_max_size=latent_size, vocab_size=vocab_size,
        mask_token_id=mask_token_id,
    )


def build_text_encoder(size: ModelSize, vocab_size: int, min_positions: int = 0) -> BertModel:
    """A bidirectional BERT of ``size`` (no dropout: small data-rich models), with at least ``min_positions``."""
    return BertModel(BertConfig(
        vocab_size=vocab_size, hidden_size=size.text_width, num_hidden_layers=size.text_layers,
        num_attention_heads=size.text_heads, intermediate_size=4 * size.text_width,
        max_position_embeddings=max(size.text_max_positions, min_positions),
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    ))


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
    """A random pipeline of the "tiny" size on 16x16 images, with a word-level tokenizer and a BERT encoder;
    ``task_defaults`` (either format) replace its sampling defaults option by option."""
    torch.manual_seed(seed)
    tokenizer = build_word_tokenizer(TINY_WORDS)
    text_encoder = build_text_encoder(get_size("tiny"), len(tokenizer)).eval()
    transformer = tiny_transformer(len(tokenizer))
    defaults = {"generate": {"num_inference_steps": 4, "guidance_scale": 2.0, "max_sequence_length": 32},
                "caption": {"num_inference_steps": 4, "max_length": 6, "max_prompt_length": 16},
                "answer": {"num_inference_steps": 3, "max_length": 3, "max_prompt_length": 16,
                           "question_template": "q: {question}"}}
    return DualDiffusionPipeline(
        transformer=transformer, vae=tiny_vae(), text_encoder=text_encoder, tokenizer=tokenizer,
        scheduler=FlowMatchEulerDiscreteScheduler(), task_defaults=combine(defaults, task_defaults),
    )
