"""Training batches: Shapes-World generated on the fly, or real data through ``train/readers.py``.

Both sources are deterministic in the micro-step index (and the process index), which is what makes
``--resume`` exact and gives each data-parallel process different data:
- Shapes-World draws micro-step ``k`` of process ``r`` from ``np.random.default_rng([seed, r, k])``;
- files are read in a fixed shuffled order, process ``r`` taking every ``world``-th record (``loader.py``,
  the same order with or without DataLoader workers); on resume the consumed positions are skipped, undecoded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from diffusers.image_processor import VaeImageProcessor
from PIL import Image
from tqdm.auto import tqdm

import shapes_world as sw
from ddit.image_inputs import resize_and_center_crop
from ddit.task_defaults import TaskDefaults
from ddit.text_layout import layout
from shapes_world.examples import PROMPTS as SHAPES_WORLD_PROMPTS
from shapes_world.render import shade_palette

from .config import DataConfig
from .loader import MAX_BAD_IN_A_ROW, FileStream, open_stream
from .readers import open_dataset

_PIXELS = VaeImageProcessor()  # the pipeline's pixel convention: [-1, 1], (b, 3, h, w)


def to_pixels(images: list[Image.Image], side: int) -> torch.Tensor:
    """Images as the pipeline sees them (short side resized, centre crop) -> (b, 3, side, side) in [-1, 1]."""
    return _PIXELS.preprocess([resize_and_center_crop(i, side) for i in images], height=side, width=side)


@dataclass
class Example:
    """One training row: the image (or its pre-encoded latents), its T2I prompt, and its text task."""

    image: Image.Image | None
    t2i_prompt: str
    text_prompt: str
    response: str
    latents: torch.Tensor | None = None  # (c, h, w), set when drawn from a latent pool


@dataclass
class Batch:
    pixels: torch.Tensor | None  # (b, 3, H, W) in [-1, 1]; None when latents come from a pool
    latents: torch.Tensor | None  # (b, c, h, w) pre-encoded, or None
    prompt_ids: torch.LongTensor  # (b, prompt_length): T2I prompts, padded with EOS
    input_ids: torch.LongTensor  # (b, text_length): text-task prompt + response slot
    response_mask: torch.BoolTensor  # (b, text_length)


class ShapesWorldSource:
    """Random scenes: T2I prompts with size/position dropped at random; captions or questions for text.

    With ``pool`` (scenes and their latents, see :func:`latent_pool`) rows are drawn from the pool.
    """

    def __init__(self, cfg: DataConfig, defaults: TaskDefaults, seed: int, process_index: int = 0,
                 pool: tuple[list, torch.Tensor, torch.Tensor] | None = None):
        self.cfg, self.defaults, self.seed, self.rank = cfg, defaults, seed, process_index
        # (scenes, latents, indices of the scenes drawn in the palette)
        self.pool = None if pool is None else (pool[0], pool[1], torch.nonzero(~pool[2]).flatten().numpy())

    def examples(self, index: int, n: int, image_rows: int = 0) -> list[Example]:
        """Micro-step ``index``'s ``n`` rows; the first ``image_rows`` (the image task's, see
        ``ddit.losses.task_rows``) are never drawn in hand-mixed shades."""
        rng = np.random.default_rng([self.seed, self.rank, index])
        return [self._example(rng, palette_only=k < image_rows) for k in range(n)]

    def _example(self, rng: np.random.Generator, palette_only: bool = False) -> Example:
        cfg = self.cfg
        if self.pool is None:
            scene, latents = sw.sample_scene(rng), None
            image = _render(scene, rng, cfg, shades_allowed=not palette_only)
        else:
            scenes, pool_latents, plain = self.pool  # without shades ``plain`` is every index: the same draw
            i = int(plain[rng.integers(len(plain))]) if palette_only else int(rng.integers(len(scenes)))
            scene, latents, image = scenes[i], pool_latents[i], None
        t2i = sw.prompt(scene, rng, cfg.p_drop_size, cfg.p_drop_position)
        if rng.random() < cfg.caption_dropout:
            t2i = ""
        if rng.random() < cfg.caption_fraction:
            return Example(image, t2i, self.defaults.caption.prompt, sw.caption(scene), latents)
        question, answer, _ = sw.sample_question(scene, rng, cfg.question_weights, cfg.hard_negatives)
        return Example(image, t2i, self.defaults.answer.question_template.format(question=question), answer, latents)

    def state(self) -> dict:
        return {}  # stateless: a function of the index

    def load_state(self, state: dict) -> None:
        pass


class FileSource:
    """Real image-text data (caption JSON, JSONL, webdataset, LLaVA) with a shuffle buffer; images decoded in
    ``cfg.num_workers`` DataLoader workers, or here with 0."""

    def __init__(self, cfg: DataConfig, defaults: TaskDefaults, seed: int, process_index: int = 0,
                 num_processes: int = 1):
        if not cfg.path:
            raise ValueError("data.kind 'files' needs data.path")
        self.cfg, self.defaults = cfg, defaults
        self.seed, self.rank, self.world = seed, process_index, num_processes
        self.consumed = 0  # positions this process has taken: the data position saved in checkpoints
        self._stream = self._open(0)

    def _open(self, start: int):
        stream = FileStream(self.cfg, self.seed, self.rank, self.world, start)
        return open_stream(stream, self.cfg.num_workers)

    def _to_example(self, sample) -> Example:
        t2i = sample.response if self.cfg.t2i_from_response else ""
        # the prompt formats are the model's own, the same the pipeline samples with
        d = self.defaults
        text_prompt = d.answer.question_template.format(question=sample.prompt) if sample.prompt else d.caption.prompt
        return Example(sample.image, t2i, text_prompt, sample.response)

    def examples(self, index: int, n: int, image_rows: int = 0) -> list[Example]:
        out, bad = [], 0
        while len(out) < n:
            sample = next(self._stream)
            self.consumed += 1
            if sample is not None:
                out.append(self._to_example(sample))
                bad = 0
            elif (bad := bad + 1) >= MAX_BAD_IN_A_ROW:
                raise ValueError(f"{self.cfg.path}: {bad} undecodable images in a row; is the data corrupt?")
        return out

    def state(self) -> dict:
        return {"consumed": self.consumed}

    def load_state(self, state: dict) -> None:
        """Continue after what was consumed before the checkpoint (same order: same seed and shards)."""
        self.consumed = state.get("consumed", 0)
        self._stream = self._open(self.consumed)


def latent_pool_scenes(cfg: DataConfig, seed: int) -> list:
    """The pool's scenes (cheap to regenerate; used to check a cached pool matches the config)."""
    rng = np.random.default_rng([seed, 7])
    return [sw.sample_scene(rng) for _ in range(cfg.latent_pool)]


def _render(scene, rng: np.random.Generator, cfg: DataConfig, shades_allowed: bool = True,
            shaded: list | None = None) -> Image.Image:
    """A training render: jitter, antialiasing some of the time and, with ``cfg.color_jitter``, hand-mixed shades
    (recorded in ``shaded``). With ``color_jitter`` 0 the draws are those of renders before it existed."""
    antialias = bool(rng.random() < cfg.antialias_fraction)
    shade = bool(cfg.color_jitter and shades_allowed and rng.random() < cfg.color_jitter)
    if shaded is not None:
        shaded.append(shade)
    return sw.render(scene, rng, antialias=antialias, palette=shade_palette(rng) if shade else None)


@torch.no_grad()
def latent_pool(cfg: DataConfig, seed: int, encode, batch_size: int = 64) -> tuple[list, torch.Tensor, torch.Tensor]:
    """``cfg.latent_pool`` scenes (rendered with jitter, some antialiasing and, with ``cfg.color_jitter``, some in
    hand-mixed shades), their latents (n, c, h, w) and which were shaded (n,) bool.

    ``encode`` maps pixels (b, 3, H, W) in [-1, 1] to latents. Deterministic in ``seed``.
    """
    scenes = latent_pool_scenes(cfg, seed)
    rng = np.random.default_rng([seed, 8])  # rendering: jitter, antialiasing, shades
    chunks, shaded = [], []
    for start in tqdm(range(0, len(scenes), batch_size), desc="encoding the latent pool"):
        images = [_render(s, rng, cfg, shaded=shaded) for s in scenes[start:start + batch_size]]
        pixels = to_pixels(images, cfg.resolution)
        chunks.append(encode(pixels).float())
    return scenes, torch.cat(chunks), torch.tensor(shaded, dtype=torch.bool)


def make_source(cfg: DataConfig, defaults: TaskDefaults, seed: int, process_index: int, num_processes: int,
                pool: tuple[list, torch.Tensor, torch.Tensor] | None = None):
    """The data source a config names."""
    if cfg.kind == "shapes_world":
        return ShapesWorldSource(cfg, defaults, seed, process_index, pool)
    if cfg.kind == "files":
        return FileSource(cfg, defaults, seed, process_index, num_processes)
    raise ValueError(f"Unknown data.kind {cfg.kind!r}: use 'shapes_world' or 'files'.")


def sample_prompts(cfg: DataConfig, given: list[str], n: int = 8) -> list[str]:
    """Prompts for the run's sample grids: ``given``, else the domain's examples or the data's first captions."""
    if given:
        return list(given)
    if cfg.kind == "shapes_world":
        return list(SHAPES_WORLD_PROMPTS)
    prompts = []
    for sample in open_dataset(cfg.path):
        if len(prompts) == n:
            break
        prompts.append(sample.response)
    return prompts


def collate(examples: list[Example], tokenizer, cfg: DataConfig) -> Batch:
    """Tokenise and stack: the layout is ``ddit.text_layout``'s, the same the pipeline samples with."""
    pixels = latents = None
    if examples[0].latents is not None:
        latents = torch.stack([e.latents for e in examples])
    else:
        pixels = to_pixels([e.image for e in examples], cfg.resolution)
    prompt_ids = tokenizer([e.t2i_prompt for e in examples], padding="max_length", max_length=cfg.prompt_length,
                           truncation=True, return_tensors="pt")["input_ids"]
    text = layout(tokenizer, [e.text_prompt for e in examples], slot_length=1,
                  responses=[e.response for e in examples], max_prompt_length=cfg.text_length - 1,
                  total_length=cfg.text_length)
    return Batch(pixels=pixels, latents=latents, prompt_ids=prompt_ids, input_ids=text.input_ids, response_mask=text.response_mask)
