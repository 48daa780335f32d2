"""The five pipeline components a run starts from: new (Shapes-World), from SD3 (paper stage 1), or a D-DiT.

A new text encoder is a small bidirectional BERT and its tokenizer is word-level over the Shapes-World
vocabulary (with a mask token); both save with ``save_pretrained`` and load back through exactly the
code path a released checkpoint uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler
from transformers import BertConfig, BertModel

from ddit.loading import load_sd3_components
from ddit.pipeline import DualDiffusionPipeline
from ddit.text_layout import mask_token_id
from ddit.transformer import DualDiffusionTransformer
from ddit.word_tokenizer import build_word_tokenizer

from . import shapes_world as sw
from .config import ModelConfig

TEXT_ENCODER_POLICIES = ("all", "mask_embedding", "none")


def shapes_vocabulary() -> list[str]:
    """Every word Shapes-World captions, prompts, questions and answers use (sorted, deterministic)."""
    rng = np.random.default_rng(0)
    words: set[str] = set()
    texts = [" ".join(sw.CELL_PHRASES), " ".join(sw.CELL_NAMES), " ".join(sw.NUMBER_WORDS), "an"]
    for color in sw.COLORS:
        for shape in sw.SHAPES:
            texts.append(f"a large small {color} {shape}")
    for scene in sw.iter_scenes(0, 3000):
        texts.append(sw.caption(scene))
        texts.extend(q + " " + a for q, a, _ in sw.questions(scene))
        texts.append(sw.prompt(scene, rng))
    tokenizer = build_word_tokenizer([])
    pre = tokenizer.backend_tokenizer.pre_tokenizer
    for text in texts:
        words.update(w for w, _ in pre.pre_tokenize_str(text.lower()))
    return sorted(words)


def random_vae() -> AutoencoderKL:
    """An untrained 2-level AutoencoderKL (factor 2): only for smoke tests of the loop (tiny.yaml)."""
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16),
                         down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                         layers_per_block=1, norm_num_groups=4)


def new_components(cfg: ModelConfig, resolution: int) -> dict:
    """A from-scratch transformer, BERT text encoder and word tokenizer around a trained VAE."""
    if not cfg.vae:
        raise ValueError("model.vae must name a trained AutoencoderKL folder (python -m train.vae ...), "
                         "or be 'random' for smoke tests")
    if cfg.vae != "random" and not (Path(cfg.vae) / "config.json").is_file():
        raise FileNotFoundError(f"model.vae: no trained VAE at {cfg.vae}; make it with "
                                "python -m train.vae train/configs/vae_shapes.yaml --output_dir " + str(cfg.vae))
    vae = random_vae() if cfg.vae == "random" else AutoencoderKL.from_pretrained(cfg.vae)
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    tokenizer = build_word_tokenizer(shapes_vocabulary())
    text_encoder = BertModel(BertConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.text_width, num_hidden_layers=cfg.text_layers,
        num_attention_heads=cfg.text_heads, intermediate_size=4 * cfg.text_width, max_position_embeddings=64,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,  # small data-rich model: no dropout
    ))
    if cfg.width % cfg.head_dim:
        raise ValueError(f"model.width {cfg.width} must be a multiple of model.head_dim {cfg.head_dim}")
    latent = resolution // factor
    transformer = DualDiffusionTransformer(
        sample_size=latent, patch_size=cfg.patch_size, in_channels=vae.config.latent_channels,
        num_layers=cfg.depth, attention_head_dim=cfg.head_dim, num_attention_heads=cfg.width // cfg.head_dim,
        joint_attention_dim=cfg.text_width, caption_projection_dim=cfg.width, pooled_projection_dim=cfg.width,
        out_channels=vae.config.latent_channels, pos_embed_max_size=latent, vocab_size=len(tokenizer),
        mask_token_id=mask_token_id(tokenizer),
    )
    transformer.initialize_weights()
    return {"transformer": transformer, "vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer,
            "scheduler": FlowMatchEulerDiscreteScheduler(shift=1.0)}


def build_components(cfg: ModelConfig, resolution: int) -> dict:
    """Components for ``cfg.init``: "scratch", "sd3:PATH" or "pipeline:PATH"."""
    if cfg.train_text_encoder not in TEXT_ENCODER_POLICIES:
        raise ValueError(f"model.train_text_encoder must be one of {TEXT_ENCODER_POLICIES}")
    kind, _, path = cfg.init.partition(":")
    if kind == "scratch":
        parts = new_components(cfg, resolution)
    elif kind == "sd3" and path:
        parts = load_sd3_components(path)
    elif kind == "pipeline" and path:
        pipe = DualDiffusionPipeline.from_pretrained(path, device="cpu", torch_dtype=torch.float32)
        parts = dict(pipe.components)
    else:
        raise ValueError(f"model.init must be 'scratch', 'sd3:PATH' or 'pipeline:PATH', got {cfg.init!r}")
    if cfg.gradient_checkpointing:
        parts["transformer"].enable_gradient_checkpointing()
    return parts


def text_encoder_params(text_encoder: torch.nn.Module, tokenizer, policy: str) -> list[torch.nn.Parameter]:
    """Freeze the text encoder as ``policy`` says and return what trains.

    "mask_embedding" (paper stage 2) trains only the mask token's row of the input embeddings: the
    table's gradient is zeroed elsewhere by a hook (give it no weight decay, or the frozen rows decay).
    """
    text_encoder.requires_grad_(policy == "all")
    if policy == "all":
        return list(text_encoder.parameters())
    if policy == "none":
        return []
    table = text_encoder.get_input_embeddings().weight
    table.requires_grad_(True)
    keep = torch.zeros(table.shape[0], 1, dtype=table.dtype)
    keep[mask_token_id(tokenizer)] = 1.0
    table.register_hook(lambda grad: grad * keep.to(grad.device, grad.dtype))
    return [table]
