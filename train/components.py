"""The five pipeline components a run starts from: new (Shapes-World), from SD3 (paper stage 1), or a D-DiT.

A new text encoder is a small bidirectional BERT and its tokenizer is word-level over the Shapes-World
vocabulary (with a mask token); both save with ``save_pretrained`` and load back through exactly the
code path a released checkpoint uses.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler

from ddit.latents import vae_scale_factor
from ddit.loading import load_sd3_components
from ddit.lora import add_adapter, lora_config
from ddit.pipeline import DualDiffusionPipeline
from ddit.presets import build_text_encoder, build_transformer, get_size, tiny_vae
from ddit.text_layout import mask_token_id
from ddit.word_tokenizer import build_word_tokenizer
from shapes_world.vocabulary import vocabulary

from .config import DataConfig, LoraConfig, ModelConfig

TEXT_ENCODER_POLICIES = ("all", "mask_embedding", "none")


def new_components(cfg: ModelConfig, data: DataConfig) -> dict:
    """A from-scratch transformer, BERT text encoder and word tokenizer (``cfg.size``) around a trained VAE."""
    if not cfg.vae:
        raise ValueError("model.vae must name a trained AutoencoderKL folder (python -m train.vae ...), "
                         "or be 'random' for smoke tests")
    if cfg.vae != "random" and not (Path(cfg.vae) / "config.json").is_file():
        raise FileNotFoundError(f"model.vae: no trained VAE at {cfg.vae}; make it with "
                                "python -m train.vae train/configs/vae_shapes.yaml --output_dir " + str(cfg.vae))
    size = get_size(cfg.size)
    vae = tiny_vae() if cfg.vae == "random" else AutoencoderKL.from_pretrained(cfg.vae)
    tokenizer = build_word_tokenizer(vocabulary())
    # the position table grows with the data's text so a longer text_length never overruns it
    text_encoder = build_text_encoder(size, len(tokenizer), min_positions=max(data.text_length, data.prompt_length))
    transformer = build_transformer(size, data.resolution // vae_scale_factor(vae), vae.config.latent_channels,
                                    len(tokenizer), mask_token_id(tokenizer))
    transformer.initialize_weights()
    return {"transformer": transformer, "vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer,
            "scheduler": FlowMatchEulerDiscreteScheduler(shift=1.0)}


def build_components(cfg: ModelConfig, data: DataConfig) -> dict:
    """Components for ``cfg.init``: "scratch", "sd3:PATH" or "pipeline:PATH"."""
    if cfg.train_text_encoder not in TEXT_ENCODER_POLICIES:
        raise ValueError(f"model.train_text_encoder must be one of {TEXT_ENCODER_POLICIES}")
    kind, _, path = cfg.init.partition(":")
    if kind == "scratch":
        parts = new_components(cfg, data)
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


def add_lora(parts: dict, cfg: LoraConfig, text_encoder_policy: str) -> None:
    """Freeze the transformer and the text encoder and add the LoRA adapters that train instead (``lora:``)."""
    if text_encoder_policy != "none":  # a trained text-encoder weight would be missing from the adapter file
        raise ValueError(f"lora.enabled trains adapters only, but model.train_text_encoder is "
                         f"{text_encoder_policy!r}: set it to 'none' (and lora.text_encoder: true for adapters there)")
    parts["text_encoder"].requires_grad_(False)
    add_adapter(parts["transformer"], lora_config(cfg.rank, cfg.alpha, cfg.target_modules, cfg.dropout))
    if cfg.text_encoder:
        config = lora_config(cfg.rank, cfg.alpha, cfg.text_encoder_target_modules, cfg.dropout)
        add_adapter(parts["text_encoder"], config)
