"""Training configuration: dataclasses with the reasons for their defaults, loadable from YAML.

A YAML file has the sections ``model``, ``data``, ``optim``, ``log`` and the top-level keys ``seed``,
``output_dir`` and ``task_defaults`` (sampling defaults saved with the trained pipeline).
Unknown keys are an error, so a typo never silently trains with a default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml


@dataclass
class ModelConfig:
    # "scratch": new transformer, text encoder and tokenizer (Shapes-World); "sd3:PATH": paper stage 1, a
    # D-DiT initialised from an SD3 pipeline folder; "pipeline:PATH": continue from a D-DiT pipeline folder.
    init: str = "scratch"
    vae: str | None = None  # scratch only: a trained AutoencoderKL folder (train/vae.py)
    width: int = 128  # scratch transformer width = heads * head_dim
    head_dim: int = 32
    depth: int = 6  # joint blocks
    patch_size: int = 2  # 16x16 latents -> 64 image tokens
    text_width: int = 128  # scratch text encoder (bidirectional BERT)
    text_layers: int = 2
    text_heads: int = 4
    # what of the text encoder trains: "all" (scratch), "mask_embedding" (paper stage 2: only the mask
    # token's row), "none" (paper stages 1 and 3: frozen T5)
    train_text_encoder: str = "all"
    gradient_checkpointing: bool = False  # trades compute for memory on big models


@dataclass
class DataConfig:
    kind: str = "shapes_world"  # "shapes_world" (generated on the fly) or "files" (train/readers.py formats)
    path: str | None = None  # files: a .json / .jsonl / tar shards spec for readers.open_dataset
    resolution: int = 64  # images are resized (squashed) to this square side
    text_length: int = 28  # prompt + response slot, per row; longest Shapes-World caption is 27 tokens
    prompt_length: int = 28  # T2I prompt tokens given to the text encoder
    caption_dropout: float = 0.1  # empty T2I prompt this often, so classifier-free guidance works
    caption_fraction: float = 0.5  # shapes_world: text rows that are captions (the rest are questions)
    # shapes_world: how often each question type is asked, relative (e.g. {exists: 3}); None: uniform
    question_weights: dict | None = None
    # shapes_world: share of "no" answers to "is there a <color> <shape>?" that share a colour or a shape
    # with the scene (hard negatives; with 0 they are drawn from all absent pairs)
    hard_negatives: float = 0.0
    p_drop_size: float = 0.3  # shapes_world T2I prompts leave out size / position this often
    p_drop_position: float = 0.3
    antialias_fraction: float = 0.25  # shapes_world: renders drawn antialiased, for robustness
    # shapes_world: > 0 pre-encodes this many scenes once (VAE encoding on the fly costs ~40 % of a CPU
    # step) and draws rows from them, with fresh prompts and questions each time; 0 renders every row
    latent_pool: int = 0
    # the pool's cache file; default ``<output_dir>/latent_pool.pt``. A later stage with the same seed and VAE
    # and a pool no larger can name an earlier run's file instead of encoding again (it takes the first scenes)
    latent_pool_cache: str | None = None
    t2i_from_response: bool = True  # files: the T2I prompt is the response (captions); False: empty prompt
    shuffle_buffer: int = 1000  # files: samples shuffled in a buffer of this size


@dataclass
class OptimConfig:
    max_steps: int = 1000
    batch_size: int = 32  # per process, per micro-step
    grad_accum: int = 1
    lr: float = 3e-4
    warmup_steps: int = 200  # paper: constant LR after a linear warm-up
    # diffusers.optimization.get_scheduler name: "constant_with_warmup" (paper), or e.g. "linear" / "cosine"
    # (warm-up, then decay to 0 at max_steps) for a short final stage
    lr_schedule: str = "constant_with_warmup"
    weight_decay: float = 1e-2  # paper Table 6
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW defaults, as in the paper
    grad_clip: float = 1.0
    image_weight: float = 1.0  # 0 skips the image pass (instruction data has no captions to draw from)
    text_weight: float = 1.0  # lambda of eq. 9: 0.2 in dual pre-training, 1.0 later (Table 6)
    image_fraction: float | None = None  # None: every row does both tasks (paper); else rows split f : 1-f
    ema_decay: float = 0.999
    mixed_precision: str = "no"  # "bf16" on GPUs; on 2 CPU threads fp32 is about as fast
    logit_mean: float = 0.0  # logit-normal image timesteps (SD3)
    logit_std: float = 1.0


@dataclass
class LogConfig:
    log_every: int = 50
    sample_every: int = 500  # sample grid (images + captions) into the run folder
    checkpoint_every: int = 500
    keep_checkpoints: int = 2


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    log: LogConfig = field(default_factory=LogConfig)
    seed: int = 0
    output_dir: str = "runs/default"
    task_defaults: dict = field(default_factory=dict)  # saved into the pipeline's model_index.json

    @classmethod
    def from_yaml(cls, path: str | Path) -> "TrainConfig":
        """Load a config; raises ``ValueError`` naming any unknown key."""
        raw = yaml.safe_load(Path(path).read_text()) or {}
        return _build(cls, raw, str(path))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _build(cls, values: dict, where: str):
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(fields)}")
    kwargs = {}
    for name, value in values.items():
        default = getattr(cls(), name)
        if dataclasses.is_dataclass(default):
            value = _build(type(default), value, f"{where}:{name}")
        elif isinstance(default, tuple):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)
