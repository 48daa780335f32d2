"""Training configuration: dataclasses with the reasons for their defaults, loadable from YAML.

A YAML file has the sections ``model``, ``data``, ``loss``, ``optim``, ``log``, ``lora`` and the top-level keys
``seed``, ``output_dir``, ``task_defaults`` (sampling defaults saved with the trained pipeline) and ``base``:
- ``base: other.yaml`` (relative to the file) starts from that file; each section then changes only the keys
  it names (a value that is itself a mapping, like ``question_weights``, is replaced whole);
- unknown keys are an error, so a typo never silently trains with a default;
- sampling settings that follow from the data are derived, not repeated (``TrainConfig.sampling_defaults``);
- every share, probability and decay must lie in its range (``RANGES``): ``caption_fraction: 2.5`` is an error.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ddit.image_sampling import flow_scheduler
from ddit.losses import JointLossConfig
from ddit.lora import TEXT_ENCODER_TARGETS, TRANSFORMER_TARGETS


@dataclass
class ModelConfig:
    # "scratch": new transformer, text encoder and tokenizer (Shapes-World); "sd3:PATH": paper stage 1, a
    # D-DiT initialised from an SD3 pipeline folder; "pipeline:PATH": continue from a D-DiT pipeline folder.
    init: str = "scratch"
    vae: str | None = None  # scratch only: a trained AutoencoderKL folder (train/vae.py), or "random" for smoke runs
    size: str = "shapes-s"  # scratch only: a preset of ddit.presets.PRESETS (transformer and text encoder sizes)
    # what of the text encoder trains: "all" (scratch), "mask_embedding" (paper stage 2: only the mask
    # token's row), "none" (paper stages 1 and 3: frozen T5)
    train_text_encoder: str = "all"
    gradient_checkpointing: bool = False  # trades compute for memory on big models


@dataclass
class DataConfig:
    kind: str = "shapes_world"  # "shapes_world" (generated on the fly) or "files" (train/readers.py formats)
    path: str | None = None  # files: a .json / .jsonl / tar shards spec for readers.open_dataset
    resolution: int = 64  # square side: short side resized, centre crop (as sampling does); the pipeline's size
    text_length: int = 28  # prompt + response slot, per row; longest Shapes-World caption is 27 tokens + EOS
    prompt_length: int = 28  # T2I prompt tokens given to the text encoder (training and sampling)
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
    # shapes_world: renders drawn in a hand-mixed shade of each colour (``shapes_world.render.shade_palette``),
    # shown to the text tasks only: image rows keep the palette, the colours the model should draw
    color_jitter: float = 0.0
    # shapes_world: > 0 pre-encodes this many scenes once (VAE encoding on the fly costs ~40 % of a CPU
    # step) and draws rows from them, with fresh prompts and questions each time; 0 renders every row
    latent_pool: int = 0
    # the pool's cache file; default ``<output_dir>/latent_pool.pt``. A later stage with the same seed and VAE
    # and a pool no larger can name an earlier run's file instead of encoding again (it takes the first scenes)
    latent_pool_cache: str | None = None
    t2i_from_response: bool = True  # files: the T2I prompt is the response (captions); False: empty prompt
    shuffle_buffer: int = 1000  # files: samples shuffled in a buffer of this size
    # files: processes that decode and resize images beside training (a torch DataLoader; the data and its
    # order are the same for any value). 0 reads in the training process, as before: no worker start-up or
    # memory, enough for small images; raise it when decoding shows in samples/s (benchmarks/data_loading.py)
    num_workers: int = 0


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
    # False: no decay on norms, biases and embeddings (nanoGPT's configure_optimizers); True: on every weight
    decay_all: bool = False
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW defaults, as in the paper
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    mixed_precision: str = "no"  # "bf16" on GPUs; on 2 CPU threads fp32 is about as fast


@dataclass
class LogConfig:
    log_every: int = 50
    sample_every: int = 500  # sample grid (images + captions) into the run folder
    # prompts of the sample grid; empty: the domain's example prompts (Shapes-World), or the first captions
    # of the data (files)
    sample_prompts: list[str] = field(default_factory=list)
    checkpoint_every: int = 500
    keep_checkpoints: int = 2


@dataclass
class LoraConfig:
    # True: train LoRA adapters (peft) on a frozen model instead of its weights: a file of a few MB or less
    # to share, and optimizer and EMA state for the adapters only. Start from a trained model (model.init
    # "pipeline:PATH" or "sd3:PATH"): a new model's zeroed gates and heads would give adapters no gradient.
    # Needs model.train_text_encoder: none (the text encoder's base weights stay frozen too)
    enabled: bool = False
    rank: int = 16  # the updates' rank: more learns more and makes a larger file
    alpha: float = 16.0  # the update is scaled by alpha / rank; alpha = rank (scale 1) is diffusers' default
    dropout: float = 0.0  # dropout on the adapters' input; short fine-tunes do without
    # transformer layers that get adapters (peft names, matched at the end of module names): the attention
    # projections of both streams of diffusers' JointTransformerBlock; add ddit.lora.FEED_FORWARD_TARGETS
    # ("ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj", "ff_context.net.2") for more capacity
    target_modules: list[str] = field(default_factory=lambda: list(TRANSFORMER_TARGETS))
    text_encoder: bool = False  # True: adapters on the text encoder too (it runs in eval mode: no dropout)
    # BERT (new models) and T5 (SD3 / released models) attention; a name a model lacks matches nothing
    text_encoder_target_modules: list[str] = field(default_factory=lambda: list(TEXT_ENCODER_TARGETS))


@dataclass(frozen=True)
class Range:
    """Where a number may lie: ``low`` to ``high``, each end in or out; ``optional``: None (YAML null) too."""

    low: float = 0.0
    high: float = 1.0
    low_open: bool = False  # True: ``low`` itself is refused
    high_open: bool = False
    optional: bool = False

    def __contains__(self, value) -> bool:
        if value is None:
            return self.optional
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        above = value > self.low if self.low_open else value >= self.low  # NaN is neither: refused
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def __str__(self) -> str:
        out = [end for end, is_open in ((self.low, self.low_open), (self.high, self.high_open)) if is_open]
        text = f"between {self.low:g} and {self.high:g}" + (f" ({' and '.join(f'{e:g}' for e in out)} excluded)"
                                                             if out else "")
        return f"null or {text}" if self.optional else text


SHARE = Range()  # a probability or a share of rows / renders / answers: 0 (never) to 1 (always)
BELOW_ONE = Range(high_open=True)

# Every share, probability, dropout and decay of a TrainConfig, by dotted key (a sequence: each of its items; a
# task_defaults key: only when given). Not here, as no share: lr, weight_decay, grad_clip, lora.alpha, the
# loss weights, logit_mean / logit_std, question_weights (relative weights), image_solver's shift.
RANGES = {
    "data.caption_dropout": SHARE,
    "data.caption_fraction": SHARE,
    "data.hard_negatives": SHARE,
    "data.p_drop_size": SHARE,
    "data.p_drop_position": SHARE,
    "data.antialias_fraction": SHARE,
    "data.color_jitter": SHARE,
    "loss.image_fraction": Range(optional=True),  # null: every row does both tasks
    # a text token is masked with probability (1 - eps) t: 0 makes sigma(1) infinite, 1 masks nothing
    "loss.text_eps": Range(low_open=True, high_open=True),
    "optim.betas": BELOW_ONE,  # AdamW's, each
    "optim.ema_decay": BELOW_ONE,  # 1 would never move the average from the initial weights
    "lora.dropout": BELOW_ONE,  # 1 would zero the adapters' input: nothing trains
    # the confidence sampler also commits every token at least this sure
    "task_defaults.caption_threshold": Range(low_open=True, optional=True),
    "task_defaults.answer_threshold": Range(low_open=True, optional=True),
    "task_defaults.guidance_interval": Range(optional=True),  # [low, high] noise levels, each
}


def check_ranges(config, ranges: dict[str, Range]) -> None:
    """Raise ``ValueError`` (one line, naming the dotted key) for the first value of ``config`` outside its range;
    ``ranges`` maps dotted keys (dataclass fields, then mapping keys) to a ``Range``."""
    for key, allowed in ranges.items():
        value = config
        for part in key.split("."):
            if isinstance(value, dict):
                if part not in value:  # an optional mapping key left out: the default applies
                    break
                value = value[part]
            else:
                value = getattr(value, part)
        else:
            if isinstance(value, (list, tuple)):  # each item; null only for the whole value
                each = dataclasses.replace(allowed, optional=False)
                bad = [(f"{key}[{i}]", item) for i, item in enumerate(value) if item not in each]
            else:
                each, bad = allowed, [] if value in allowed else [(key, value)]
            if bad:
                name, item = bad[0]
                number = isinstance(item, numbers.Real) and not isinstance(item, bool)
                raise ValueError(f"{name} must be {'' if number or item is None else 'a number '}{each}, got {item!r}")


# task_defaults keys that follow from the data settings (a config that sets them is refused)
DERIVED_DEFAULTS = {"resolution": "resolution", "max_sequence_length": "prompt_length",
                    "max_prompt_length": "text_length"}


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: JointLossConfig = field(default_factory=JointLossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    log: LogConfig = field(default_factory=LogConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)  # off: full training, as before
    seed: int = 0
    output_dir: str = "runs/default"
    task_defaults: dict = field(default_factory=dict)  # saved into the pipeline's model_index.json
    # the saved pipeline's image solver: {solver: euler|heun|dpm++2m|unipc, shift: S} (ddit.image_sampling);
    # empty keeps the initial pipeline's scheduler (Euler, shift 1, for a new model)
    image_solver: dict = field(default_factory=dict)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "TrainConfig":
        """Load a config (following ``base:``); raises ``ValueError`` naming any unknown or derived key, or one
        whose value is outside its range (``RANGES``)."""
        config = load_yaml(cls, path, inherit=True)
        try:
            config.check_ranges()
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
        config.sampling_defaults()  # refuse derived keys now, not at the end of a run
        if config.image_solver:  # an unknown solver or option fails now, naming the file
            try:
                flow_scheduler(**config.image_solver)
            except (TypeError, ValueError) as err:
                raise ValueError(f"{path}: image_solver: {err}") from None
        return config

    def check_ranges(self) -> None:
        """Refuse a share, probability or decay outside its range (``RANGES``): ``ValueError`` naming the key."""
        check_ranges(self, RANGES)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def sampling_defaults(self) -> dict:
        """``task_defaults`` completed from the data: the image side, the T2I prompt length, the longest text
        prompt (``text_length`` - 1, room for one response token) and, unless given, the caption slot."""
        given = sorted(set(self.task_defaults) & set(DERIVED_DEFAULTS))
        if given:
            raise ValueError(f"task_defaults: {', '.join(given)} follow from data "
                             f"({', '.join('data.' + DERIVED_DEFAULTS[k] for k in given)}); set those instead")
        d = self.data
        derived = {"resolution": d.resolution, "max_sequence_length": d.prompt_length,
                   "max_prompt_length": d.text_length - 1, "caption_length": d.text_length}
        return {**derived, **self.task_defaults}


def load_yaml(cls, path: str | Path, inherit: bool = False):
    """A dataclass ``cls`` from a YAML mapping, strictly: unknown keys raise ``ValueError`` naming the file.

    With ``inherit``, a top-level ``base:`` names a file (relative to this one) whose values this one updates.
    """
    path = Path(path)
    return _build(cls, _read(path, inherit), str(path))


def _read(path: Path, inherit: bool) -> dict:
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping, got {type(raw).__name__}")
    base = raw.pop("base", None) if inherit else None
    if base is None:
        return raw
    merged = _read(path.parent / base, inherit)
    for key, value in raw.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}  # a section: update its keys
        else:
            merged[key] = value
    return merged


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
            fixed = "..." not in str(fields[name].type)  # tuple[float, float]: exactly that many
            if not isinstance(value, (list, tuple)) or (fixed and len(value) != len(default)):
                count = f"{len(default)} values" if fixed else "values"
                raise ValueError(f"{where}: {name} must be a list of {count} like {list(default)}, got {value!r}")
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)
