"""Train a tiny latent -> RGB preview decoder (a diffusers ``AutoencoderTiny``) for a pipeline's VAE.

The app shows the predicted clean image after every solver step. Decoding it with the full VAE costs more
than the step itself; a TAESD-style decoder costs a small fraction. It learns from a pool of Shapes-World
scenes encoded once by the pipeline's VAE (the mode, as ``encode_image`` does), with the rendered image as
the target. Early in sampling the predicted clean latents are close to a posterior mean, a blend of many
latents, which the VAE's nonlinear decoder turns into colours no scene has (a red circle's first previews
come out yellow). So part of each batch is convex mixtures of latents, of a few scenes and of the pool's
mean latent, with the same mixture of images as target: the decoder learns to show a blend as a faded
overlay. Its config carries the VAE's ``scaling_factor`` and ``shift_factor``, so
``ddit.latents.decode_latents`` decodes normalised latents with it as with the VAE.

    python -m train.preview_decoder train/configs/preview_decoder_shapes.yaml --model assets/ddit-shapes \
        --output_dir runs/preview_decoder [--steps N] [--install]

``--install`` also writes it into the model folder as its ``preview_decoder`` (model_index.json gains it).
Glossary: b - batch, k - scenes in a mixture, c - latent channels, h w - latent size, H W - pixels.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from diffusers import AutoencoderKL, AutoencoderTiny

from ddit import DualDiffusionPipeline
from ddit.flow_matching import classifier_free_guidance, predicted_clean
from ddit.latents import decode_latents, decoder_scale_factor, encode_latents, vae_scale_factor
from ddit.model_folder import read_index, resolve_folder
from shapes_world import BENCHMARK_SEED, TRAIN_SEED, iter_scenes, prompt, read_scene, render

from .config import load_yaml
from .data import to_pixels
from .vae import optimize, render_batch, to_images

logger = logging.getLogger(__name__)
COMPONENT = "preview_decoder"  # the pipeline component's name (DualDiffusionPipeline._optional_components)


@dataclass
class PreviewDecoderConfig:
    # model: AutoencoderTiny; DecoderTiny keeps one width at every level (its convs map width -> width)
    channels: int = 16  # ~1 ms per 64x64 preview on one CPU thread; 32 is ~2x slower
    decoder_blocks: tuple[int, ...] = (2, 1, 0)  # AutoencoderTinyBlocks per level; 3 levels, 2 upsamplings: f = 4
    encoder_channels: int = 8  # AutoencoderTiny always has an encoder; previews never use it: an untrained stub
    # data: scenes from TRAIN_SEED rendered once, encoded once by the VAE, reused with fresh mixtures
    pool_size: int = 4000  # far more images than a ~30k-parameter decoder can memorise
    jitter: int = 3  # as render()'s default and the VAE's training
    antialias_fraction: float = 0.25  # soft edges too, as the VAE saw
    mix_fraction: float = 0.5  # rows that are blends: early predictions are posterior means, i.e. blends;
    # a half-faded red disc then decodes pink, where the VAE decodes it yellow (numbers: the ddit-shapes card)
    mix_scenes: int = 2  # scenes per blend, mixed with the pool's mean latent by Dirichlet(1) weights
    # rows whose input is the model's own pred_clean from the noised latent (a step of its default schedule,
    # its prompt, default guidance) and whose target is the clean image: the decoder then shows E[image | pred];
    # 0.5 (without blends) read the prompt's colour in fewer first previews on ddit-shapes than blends did
    prediction_fraction: float = 0.0
    # optimisation
    steps: int = 2500
    batch_size: int = 32
    lr: float = 3e-3  # AdamW on a small conv net
    warmup_steps: int = 50  # Adam's first steps are large while its moments are unset
    min_lr_ratio: float = 0.05  # cosine decay to lr * min_lr_ratio
    grad_clip: float = 1.0
    seed: int = 0  # weights, renders and mixtures
    # bookkeeping
    log_every: int = 250
    encode_batch_size: int = 100  # images per VAE call when building the pool and measuring
    eval_images: int = 500  # benchmark scenes decoded and judged

    def __post_init__(self) -> None:
        self.decoder_blocks = tuple(int(b) for b in self.decoder_blocks)
        if len(self.decoder_blocks) < 1 or self.channels < 1:
            raise ValueError("decoder_blocks needs one entry per level and channels must be >= 1")
        fractions = (self.mix_fraction, self.prediction_fraction)
        if min(fractions) < 0 or sum(fractions) > 1 or self.mix_scenes < 1:
            raise ValueError(f"mix_fraction and prediction_fraction must be >= 0 with a sum <= 1, and mix_scenes "
                             f">= 1; got {fractions} and {self.mix_scenes}")
        if self.steps < 1 or self.batch_size < 1 or self.pool_size < 1:
            raise ValueError("steps, batch_size and pool_size must be >= 1")

    @classmethod
    def from_yaml(cls, path: str | Path) -> "PreviewDecoderConfig":
        """Read a YAML mapping of field -> value; unknown keys are an error, missing keys keep defaults."""
        return load_yaml(cls, path)


def build_decoder(config: PreviewDecoderConfig, vae: AutoencoderKL) -> AutoencoderTiny:
    """A fresh AutoencoderTiny for ``vae``'s latents: same channels, scale factor and latent normalisation."""
    levels = len(config.decoder_blocks)
    torch.manual_seed(config.seed)
    decoder = AutoencoderTiny(
        latent_channels=vae.config.latent_channels, decoder_block_out_channels=(config.channels,) * levels,
        num_decoder_blocks=config.decoder_blocks, encoder_block_out_channels=(config.encoder_channels,) * levels,
        num_encoder_blocks=(0,) * levels, scaling_factor=vae.config.scaling_factor,
        shift_factor=vae.config.shift_factor or 0.0,
    )
    if decoder_scale_factor(decoder) != vae_scale_factor(vae):
        raise ValueError(f"decoder_blocks has {levels} levels (factor {decoder_scale_factor(decoder)}); the VAE's "
                         f"factor is {vae_scale_factor(vae)}: give it {vae_scale_factor(vae).bit_length()} entries")
    return decoder


# ------------------------------------------------------------------------------ data

class Pool(NamedTuple):
    latents: torch.Tensor  # (n, c, h, w) normalised VAE latents
    pixels: torch.Tensor  # (n, 3, H, W) uint8: the images they encode
    mean_latent: torch.Tensor  # (c, h, w): the pool's mean, an early step's prediction for "anything"
    mean_pixels: torch.Tensor  # (3, H, W) in [-1, 1]: what that prediction should look like
    predictions: torch.Tensor | None = None  # (n, c, h, w): the model's pred_clean from each noised latent


@torch.no_grad()
def encode_all(vae: AutoencoderKL, pixels: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Pixels in [-1, 1] (n, 3, H, W) -> normalised latents (n, c, h, w), ``batch_size`` at a time."""
    return torch.cat([encode_latents(vae, pixels[i:i + batch_size]) for i in range(0, len(pixels), batch_size)])


def build_pool(pipe: DualDiffusionPipeline, config: PreviewDecoderConfig) -> Pool:
    """Render ``pool_size`` training scenes (fresh jitter, some antialiased) and encode them once; with a
    ``prediction_fraction``, also the model's prediction from each noised latent."""
    rng = np.random.default_rng(config.seed)
    scenes = list(iter_scenes(TRAIN_SEED, config.pool_size))
    pixels = to_pixels(render_batch(scenes, rng, config), pipe.resolution)  # (n, 3, H, W) in [-1, 1]
    latents = encode_all(pipe.vae, pixels, config.encode_batch_size)
    as_bytes = ((pixels + 1) * 127.5).round().to(torch.uint8)  # exact: they came from 8-bit images
    predictions = None
    if config.prediction_fraction > 0:
        prompts = [prompt(scene, rng) for scene in scenes]
        predictions = model_predictions(pipe, latents, prompts, config)
    return Pool(latents, as_bytes, latents.mean(0), pixels.mean(0), predictions)


@torch.no_grad()
def model_predictions(pipe: DualDiffusionPipeline, latents: torch.Tensor, prompts: list[str],
                      config: PreviewDecoderConfig) -> torch.Tensor:
    """``pred_clean`` (n, c, h, w) as the app's previews see it: each latent noised to the sigma of a random step
    of the model's default schedule, then one guided step of its transformer with its prompt."""
    d, gen = pipe.defaults.generate, torch.Generator().manual_seed(config.seed)
    pipe.scheduler.set_timesteps(d.num_inference_steps)
    sigmas, timesteps = pipe.scheduler.sigmas[:-1], pipe.scheduler.timesteps  # (steps,): sigma 0 ends the list
    out = []
    for i in range(0, len(latents), config.encode_batch_size):
        z, texts = latents[i:i + config.encode_batch_size], prompts[i:i + config.encode_batch_size]
        step = torch.randint(len(sigmas), (len(z),), generator=gen)
        sigma = sigmas[step].view(-1, 1, 1, 1)
        x_t = (1 - sigma) * z + sigma * torch.randn(z.shape, generator=gen)  # the forward process
        context = pipe.encode_prompt([""] * len(z) + texts, d.max_sequence_length)  # (uncond | cond)
        v = pipe.transformer(torch.cat([x_t, x_t]), context, timesteps[step].repeat(2), return_logits=False).sample
        out.append(predicted_clean(x_t, classifier_free_guidance(*v.chunk(2), d.guidance_scale), sigma))
    return torch.cat(out)


def mix(pool: Pool, rows: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Convex mixtures: ``rows`` (b, k) pool indices, ``weights`` (b, k + 1), the last for the mean latent.
    Returns (latents (b, c, h, w), target pixels (b, 3, H, W) in [-1, 1]) mixed by the same weights."""
    w_scenes, w_mean = weights[:, :-1], weights[:, -1]
    parts, images = pool.latents[rows], pool.pixels[rows].float() / 127.5 - 1  # (b, k, c, h, w), (b, k, 3, H, W)
    latents = torch.einsum("bk,bkchw->bchw", w_scenes, parts) + w_mean[:, None, None, None] * pool.mean_latent
    pixels = torch.einsum("bk,bkchw->bchw", w_scenes, images) + w_mean[:, None, None, None] * pool.mean_pixels
    return latents, pixels


def sample_batch(pool: Pool, config: PreviewDecoderConfig, gen: torch.Generator):
    """A batch of pool rows: ``mix_fraction`` of them blended with other rows and the mean latent,
    ``prediction_fraction`` the model's prediction in place of the latent (the target: the row's image)."""
    b, k = config.batch_size, config.mix_scenes
    rows = torch.randint(len(pool.latents), (b, k), generator=gen)  # (b, k)
    dirichlet = -torch.log(torch.rand(b, k + 1, generator=gen).clamp_min(1e-12))  # Dirichlet(1) = normalised Exp(1)
    dirichlet = dirichlet / dirichlet.sum(1, keepdim=True)
    plain = torch.zeros(b, k + 1)
    plain[:, 0] = 1.0
    u = torch.rand(b, generator=gen)
    predicted = u < config.prediction_fraction
    blended = ~predicted & (u < config.prediction_fraction + config.mix_fraction)
    latents, pixels = mix(pool, rows, torch.where(blended[:, None], dirichlet, plain))
    if pool.predictions is not None:
        latents = torch.where(predicted[:, None, None, None], pool.predictions[rows[:, 0]], latents)
    return latents, pixels


# ------------------------------------------------------------------------------ training

def fit(decoder: AutoencoderTiny, pool: Pool, config: PreviewDecoderConfig) -> list[dict]:
    """Train the decoder half of ``decoder`` in place (MSE to the target pixels); returns the logged history."""
    params = list(decoder.decoder.parameters())
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(config.seed)

    def batch_losses(step: int) -> dict[str, torch.Tensor]:
        latents, target = sample_batch(pool, config, gen)
        return {"loss": torch.nn.functional.mse_loss(decode_latents(decoder, latents), target)}

    decoder.train()
    history = optimize(optimizer, params, config, "preview decoder", batch_losses, lambda e: (
        f"step {e['step']:5d} | loss {e['loss']:.5f} | lr {e['lr']:.2e} | {e['images_per_s']:.0f} img/s"))
    decoder.eval()
    return history


# ------------------------------------------------------------------------------ measuring

def median_ms(fn, repeats: int = 30) -> float:
    """Median milliseconds of ``fn()`` after two warm-up calls."""
    fn(), fn()
    secs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        secs.append(time.perf_counter() - start)
    return 1e3 * statistics.median(secs)


@torch.no_grad()
def evaluate(decoder: AutoencoderTiny, pipe: DualDiffusionPipeline, config: PreviewDecoderConfig) -> dict:
    """Decoder vs VAE on ``eval_images`` benchmark scenes: MSE to the image from the plain latents, from blends
    (of two scenes and the scenes' own mean) and from the model's predictions (one random step each, as in
    training); the judge's reading of plain decodes; milliseconds per one-image decode."""
    rng = np.random.default_rng(BENCHMARK_SEED)
    scenes = list(iter_scenes(BENCHMARK_SEED, config.eval_images))
    pixels = to_pixels([render(s, rng) for s in scenes], pipe.resolution)
    latents = encode_all(pipe.vae, pixels, config.encode_batch_size)
    pool = Pool(latents, ((pixels + 1) * 127.5).round().to(torch.uint8), latents.mean(0), pixels.mean(0))
    n = len(scenes)
    rows = torch.stack([torch.arange(n), torch.arange(n).roll(1)], 1)  # each scene with its neighbour
    blend_latents, blend_pixels = mix(pool, rows, torch.tensor([[0.4, 0.3, 0.3]]).expand(n, 3))
    predictions = model_predictions(pipe, latents, [prompt(s, rng) for s in scenes], config)
    result = {"images": n}
    for name, model in (("tiny", decoder), ("vae", pipe.vae)):
        decode = lambda z: torch.cat([decode_latents(model, z[i:i + config.encode_batch_size]).clamp(-1, 1)  # noqa: E731
                                      for i in range(0, n, config.encode_batch_size)])
        plain = decode(latents)
        mse = torch.nn.functional.mse_loss
        result[f"{name}_mse"] = mse(plain, pixels).item()
        result[f"{name}_blend_mse"] = mse(decode(blend_latents), blend_pixels).item()
        result[f"{name}_prediction_mse"] = mse(decode(predictions), pixels).item()
        result[f"{name}_judge_accuracy"] = sum(read_scene(i) == s for i, s in zip(to_images(plain), scenes)) / n
        result[f"{name}_ms_per_image"] = median_ms(lambda: decode_latents(model, latents[:1]))
    return result


def save(decoder: AutoencoderTiny, folder: str | Path) -> None:
    """``save_pretrained``, less the ``block_out_channels`` key that AutoencoderTiny writes to its config but does
    not take (loading would warn about it every time); it sets the key again itself."""
    decoder.save_pretrained(folder)
    path = Path(folder) / "config.json"
    config = json.loads(path.read_text())
    config.pop("block_out_channels", None)
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def install(decoder: AutoencoderTiny, folder: str | Path) -> Path:
    """Write ``decoder`` into a pipeline folder as its ``preview_decoder`` and name it in model_index.json."""
    folder = resolve_folder(folder)
    index = read_index(folder)
    save(decoder, folder / COMPONENT)
    index[COMPONENT] = ["diffusers", type(decoder).__name__]
    (folder / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return folder / COMPONENT


def train_preview_decoder(config: PreviewDecoderConfig, model: str | Path, output_dir: str | Path,
                          install_into_model: bool = False) -> AutoencoderTiny:
    """Train on ``model``'s VAE; save the decoder and ``preview_decoder_report.json`` to ``output_dir``."""
    output_dir, start = Path(output_dir), time.perf_counter()
    pipe = DualDiffusionPipeline.from_pretrained(model, device="cpu", torch_dtype=torch.float32)
    vae = pipe.vae.eval().requires_grad_(False)
    decoder = build_decoder(config, vae)
    pool = build_pool(pipe, config)
    logger.info("encoded a pool of %d scenes%s in %.1f s", len(pool.latents),
                "" if pool.predictions is None else " and the model's predictions", time.perf_counter() - start)
    history = fit(decoder, pool, config)
    train_seconds = time.perf_counter() - start
    metrics = evaluate(decoder, pipe, config)
    save(decoder, output_dir)
    report = {
        "model": str(model), "steps": config.steps, "train_wall_time_s": round(train_seconds, 1),
        "final_loss": history[-1]["loss"], **metrics,
        "decoder_parameters": sum(p.numel() for p in decoder.decoder.parameters()),
        "torch_threads": torch.get_num_threads(), "config": dataclasses.asdict(config), "history": history,
    }
    (output_dir / "preview_decoder_report.json").write_text(json.dumps(report, indent=2) + "\n")
    logger.info("saved %s: MSE to the image from latents %.4f (VAE %.4f), from blends %.4f (VAE %.4f), from the "
                "model's predictions %.4f (VAE %.4f); judge %.1f %% (VAE %.1f %%); %.2f ms per image (VAE %.2f ms)",
                output_dir, *(metrics[f"{who}_{what}"] for what in ("mse", "blend_mse", "prediction_mse")
                              for who in ("tiny", "vae")),
                100 * metrics["tiny_judge_accuracy"], 100 * metrics["vae_judge_accuracy"],
                metrics["tiny_ms_per_image"], metrics["vae_ms_per_image"])
    if install_into_model:
        logger.info("installed as %s", install(decoder, model))
    return decoder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train a tiny preview decoder for a pipeline's VAE.")
    parser.add_argument("config", help="YAML file of PreviewDecoderConfig fields")
    parser.add_argument("--model", required=True, help="pipeline folder whose VAE the decoder learns to imitate")
    parser.add_argument("--output_dir", required=True, help="folder for save_pretrained and the report")
    parser.add_argument("--steps", type=int, default=None, help="override the config's steps")
    parser.add_argument("--install", action="store_true",
                        help="also write it into --model as its preview_decoder (model_index.json gains it)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    config = PreviewDecoderConfig.from_yaml(args.config)
    if args.steps is not None:
        config = dataclasses.replace(config, steps=args.steps)
    logger.info("config: %s", dataclasses.asdict(config))
    train_preview_decoder(config, args.model, args.output_dir, install_into_model=args.install)


if __name__ == "__main__":
    main()
