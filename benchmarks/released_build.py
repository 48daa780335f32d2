"""A random D-DiT pipeline in the released checkpoints' layout, at their real size or a toy one (docs/design.md §3),
for ``benchmarks/released_size.py`` and ``benchmarks/gpu_check.py``.

An SD3-medium transformer named ``SD3JointModelFlexible`` with a 32128-way text head, T5-v1.1-XXL's encoder, SD3's
VAE, a sentencepiece T5 tokenizer (32000 pieces trained here on generated text, + 100 sentinels: 32100 tokens, mask
``<extra_id_0>`` = 32099), a shifted flow scheduler, no ``task_defaults`` and the mask-token row in the authors'
``mask_token_emb.00-of-01.pth``. Every module is built on the meta device and materialised straight in bf16 with a
cheap random init, one component at a time, and saved with ``save_pretrained`` in shards: building never holds an
fp32 copy of the weights. The weights are random: outputs are noise.
"""

from __future__ import annotations

import gc
import io
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from released_timing import gib, rss_bytes

RELEASED_TRANSFORMER = ["models.sd3_flexible", "SD3JointModelFlexible"]  # the authors' class, as their index names it
MASK_FILE = "mask_token_emb.00-of-01.pth"  # the authors' file name (ddit.loading.MASK_EMBEDDING_NAMES)


@dataclass(frozen=True)
class Dims:
    """Every size the pipeline folder is built at."""

    width: int  # transformer: heads x head_dim
    head_dim: int
    depth: int  # joint blocks
    patch_size: int
    latent_channels: int
    sample_size: int  # the transformer config's (the released one says 128; the image side comes from resolution)
    pos_embed_max_size: int
    vocab_size: int  # text head and T5 embedding rows (T5 pads its 32100 tokens to 32128)
    t5_d_model: int
    t5_d_ff: int
    t5_layers: int
    t5_heads: int
    t5_d_kv: int
    sp_pieces: int  # sentencepiece pieces; the tokenizer adds `extra_ids` sentinels above them
    extra_ids: int
    vae_channels: tuple[int, ...]
    vae_layers_per_block: int
    vae_norm_groups: int
    resolution: int  # image side the tasks run at (RELEASED_TASK_DEFAULTS: 512)
    max_shard_size: str


RELEASED = Dims(width=1536, head_dim=64, depth=24, patch_size=2, latent_channels=16, sample_size=128,
                pos_embed_max_size=192, vocab_size=32128, t5_d_model=4096, t5_d_ff=10240, t5_layers=24, t5_heads=64,
                t5_d_kv=64, sp_pieces=32000, extra_ids=100, vae_channels=(128, 256, 512, 512), vae_layers_per_block=2,
                vae_norm_groups=32, resolution=512, max_shard_size="5GB")
SMALL = Dims(width=32, head_dim=16, depth=2, patch_size=2, latent_channels=16, sample_size=64, pos_embed_max_size=64,
             vocab_size=428, t5_d_model=32, t5_d_ff=64, t5_layers=2, t5_heads=2, t5_d_kv=16, sp_pieces=300,
             extra_ids=100, vae_channels=(8, 8, 8, 8), vae_layers_per_block=1, vae_norm_groups=4, resolution=64,
             max_shard_size="40KB")  # small shards: the sharded save and load are exercised too


def generated_corpus(n_sentences: int, n_words: int, seed: int = 0) -> list[str]:
    """Sentences of made-up words (Zipf-distributed over ``n_words`` words of 1-4 syllables), enough distinct text
    for sentencepiece to find its pieces."""
    import numpy as np

    rng = np.random.default_rng(seed)
    consonants, vowels = "bcdfghjklmnprstvwz", "aeiou"
    syllables = [c + v for c in consonants for v in vowels] + [c + v + e for c in consonants[:9] for v in vowels
                                                               for e in "nrst"]
    lengths = rng.integers(1, 5, n_words)
    words = ["".join(syllables[j] for j in rng.integers(0, len(syllables), n)) for n in lengths]
    words[:40] = ("a the of and is what color shape are there how many in on at left right top bottom red blue "
                  "green circle square triangle photo bicycle wall ? , . q : yes no one two three small large").split()
    p = 1.0 / np.arange(1, n_words + 1)
    picks = rng.choice(n_words, size=(n_sentences, 12), p=p / p.sum())
    return [" ".join(words[i] for i in row) for row in picks]


def save_tokenizer(folder: Path, dims: Dims, seed: int = 0) -> None:
    """A T5 tokenizer folder as the released ones ship it: ``spiece.model`` (pad 0, EOS 1, UNK 2) trained here on
    generated text, no tokenizer.json, pad = EOS, ``extra_ids`` sentinels above the pieces."""
    import sentencepiece as spm

    folder.mkdir(parents=True, exist_ok=True)
    corpus = generated_corpus(max(2000, 3 * dims.sp_pieces), max(500, 2 * dims.sp_pieces), seed)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(corpus), model_writer=model, vocab_size=dims.sp_pieces,
                                   model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1, minloglevel=2,
                                   num_threads=os.cpu_count() or 1, input_sentence_size=len(corpus))
    (folder / "spiece.model").write_bytes(model.getvalue())
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "T5Tokenizer", "extra_ids": dims.extra_ids, "eos_token": "</s>", "pad_token": "</s>",
        "unk_token": "<unk>", "model_max_length": 512}))


def materialize(model, device, dtype, seed: int = 0, std: float = 0.02):
    """Give a model built on the meta device real weights on ``device`` in ``dtype``, drawn cheaply: matrices
    N(0, std²), norm scales 1, other vectors 0. Parameters shared by two modules stay shared; buffers (built real)
    are moved and cast."""
    import torch

    made: dict[int, torch.nn.Parameter] = {}
    generator = torch.Generator(device=device).manual_seed(seed)
    for module_name, module in model.named_modules():
        for name, param in list(module._parameters.items()):
            if param is None:
                continue
            if id(param) not in made:
                data = torch.empty(param.shape, device=device, dtype=dtype)
                with torch.no_grad():
                    if data.ndim >= 2:
                        data.normal_(0.0, std, generator=generator)
                    elif "norm" in f"{module_name}.{name}" and name == "weight":
                        data.fill_(1.0)
                    else:
                        data.zero_()
                made[id(param)] = torch.nn.Parameter(data, requires_grad=False)
            module._parameters[name] = made[id(param)]
        for name, buffer in list(module._buffers.items()):
            if buffer is not None:
                module._buffers[name] = buffer.to(device, dtype if buffer.is_floating_point() else None)
    return model.eval()


def t5_config(dims: Dims):
    """T5-v1.1-XXL's encoder config at ``dims`` (gated GELU, no dropout)."""
    from transformers import T5Config

    return T5Config(vocab_size=dims.vocab_size, d_model=dims.t5_d_model, d_kv=dims.t5_d_kv, d_ff=dims.t5_d_ff,
                    num_layers=dims.t5_layers, num_heads=dims.t5_heads, feed_forward_proj="gated-gelu",
                    tie_word_embeddings=False, dropout_rate=0.0, is_encoder_decoder=False)  # as T5-v1.1's


def vae_kwargs(dims: Dims) -> dict:
    """SD3's VAE config at ``dims`` (16 channels, factor 8, its shift and scale)."""
    levels = len(dims.vae_channels)
    return dict(in_channels=3, out_channels=3, latent_channels=dims.latent_channels,
                block_out_channels=dims.vae_channels, down_block_types=("DownEncoderBlock2D",) * levels,
                up_block_types=("UpDecoderBlock2D",) * levels, layers_per_block=dims.vae_layers_per_block,
                norm_num_groups=dims.vae_norm_groups, sample_size=1024, scaling_factor=1.5305, shift_factor=0.0609,
                use_quant_conv=False, use_post_quant_conv=False)


def transformer_kwargs(dims: Dims) -> dict:
    """The released transformer config at ``dims`` (SD3-medium's for RELEASED)."""
    return dict(sample_size=dims.sample_size, patch_size=dims.patch_size, in_channels=dims.latent_channels,
                num_layers=dims.depth, attention_head_dim=dims.head_dim,
                num_attention_heads=dims.width // dims.head_dim, joint_attention_dim=dims.t5_d_model,
                caption_projection_dim=dims.width, pooled_projection_dim=2048,
                out_channels=dims.latent_channels, pos_embed_max_size=dims.pos_embed_max_size,
                vocab_size=dims.vocab_size)


def build_component(name: str, dims: Dims, device="cpu", dtype=None, seed: int = 0):
    """One random component (``transformer``, ``text_encoder`` or ``vae``) built on the meta device and
    materialised on ``device`` in ``dtype`` (default bf16): never an fp32 copy of its weights."""
    import torch
    from accelerate import init_empty_weights

    dtype = dtype or torch.bfloat16
    with init_empty_weights(include_buffers=False):
        if name == "transformer":
            from ddit.transformer import DualDiffusionTransformer

            module = DualDiffusionTransformer(**transformer_kwargs(dims))
        elif name == "text_encoder":
            from transformers import T5EncoderModel

            module = T5EncoderModel(t5_config(dims))
            module.encoder.embed_tokens = module.shared  # T5's encoder reads the shared table
        elif name == "vae":
            from diffusers import AutoencoderKL

            module = AutoencoderKL(**vae_kwargs(dims))
        else:
            raise ValueError(f"unknown component {name!r}")
    return materialize(module, device, dtype, seed)


def save_released_folder(folder: Path, dims: Dims, seed: int = 0) -> dict:
    """Write a random pipeline folder in the released layout, one component in memory at a time; returns what
    each step took (seconds, files, bytes)."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler

    folder.mkdir(parents=True, exist_ok=True)
    steps: dict[str, dict] = {}

    def timed(name: str, work: Callable[[], None]) -> None:
        began = time.perf_counter()
        work()
        gc.collect()
        files = sorted(p for p in (folder / name).rglob("*") if p.is_file()) if (folder / name).is_dir() else []
        steps[name] = {"seconds": round(time.perf_counter() - began, 1), "files": len(files),
                       "bytes": sum(p.stat().st_size for p in files), "rss_after_gib": gib(rss_bytes())}

    timed("tokenizer", lambda: save_tokenizer(folder / "tokenizer", dims, seed))

    def text_encoder() -> None:
        model = build_component("text_encoder", dims, seed=seed + 1)
        model.save_pretrained(folder / "text_encoder", max_shard_size=dims.max_shard_size)
        row = torch.randn(dims.t5_d_model, generator=torch.Generator().manual_seed(seed)) * 0.02
        torch.save(row.to(torch.bfloat16), folder / MASK_FILE)  # the authors' file: one row, plain tensor

    def transformer() -> None:
        model = build_component("transformer", dims, seed=seed + 2)
        model.save_pretrained(folder / "transformer", max_shard_size=dims.max_shard_size)
        config_path = folder / "transformer" / "config.json"
        config = json.loads(config_path.read_text())  # as their config reads: their class, no ddit-only keys
        config.update(_class_name=RELEASED_TRANSFORMER[1], dual_attention_layers=[], qk_norm=None)
        for key in ("mask_token_id", "num_null_image_tokens"):
            config.pop(key, None)
        config_path.write_text(json.dumps(config, indent=2))

    timed("text_encoder", text_encoder)
    timed("transformer", transformer)
    timed("vae", lambda: build_component("vae", dims, seed=seed + 3).save_pretrained(
        folder / "vae", max_shard_size=dims.max_shard_size))
    timed("scheduler", lambda: FlowMatchEulerDiscreteScheduler(shift=3.0).save_pretrained(folder / "scheduler"))
    (folder / "model_index.json").write_text(json.dumps({
        "_class_name": "DualDiffSD3Pipeline", "_diffusers_version": "0.30.0",
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
        "text_encoder": ["transformers", "T5EncoderModel"], "tokenizer": ["transformers", "T5TokenizerFast"],
        "transformer": RELEASED_TRANSFORMER, "vae": ["diffusers", "AutoencoderKL"],
    }, indent=2))
    return steps


def build_pipeline(dims: Dims, device, dtype, workdir: Path, seed: int = 0):
    """The same pipeline in memory, built straight onto ``device`` (no folder): for ``benchmarks/gpu_check.py``.
    The tokenizer is written to ``workdir``; the sampling defaults are the authors'."""
    from diffusers import FlowMatchEulerDiscreteScheduler
    from transformers import T5TokenizerFast

    from ddit import DualDiffusionPipeline
    from ddit.task_defaults import RELEASED_TASK_DEFAULTS

    save_tokenizer(workdir / "tokenizer", dims, seed)
    tokenizer = T5TokenizerFast.from_pretrained(workdir / "tokenizer")
    parts = {name: build_component(name, dims, device, dtype, seed + i)
             for i, name in enumerate(("text_encoder", "transformer", "vae"), start=1)}
    pipe = DualDiffusionPipeline(**parts, tokenizer=tokenizer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
                                 task_defaults=RELEASED_TASK_DEFAULTS.to_dict())
    pipe.set_progress_bar_config(disable=True)
    return pipe
