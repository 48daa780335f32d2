"""Named model sizes (DiT's registry) and the builders of from-scratch components that use them.

A size fixes the D-DiT transformer and the small bidirectional BERT text encoder that a new model
(Shapes-World, tests, benchmarks) starts from; training configs name one (``model.size``). Models made
from SD3 or the released checkpoints take their sizes from those folders instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import BertConfig, BertModel

from .transformer import DualDiffusionTransformer


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
