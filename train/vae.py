"""Train a small diffusers ``AutoencoderKL`` on Shapes-World, so that D-DiT diffuses latents.

The paper diffuses SD3-VAE latents; Shapes-World gets its own tiny VAE (docs/design.md §5.3):
64x64 RGB -> 16x16x4 latents (factor 4), trained in minutes on a CPU (the model card times the recipe's run).
After training, the mean and std of the encoder's mode over held-out images become the
config's ``shift_factor`` and ``scaling_factor`` (latents = (z - shift) * scale, ~unit variance),
and the judge measures how many reconstructed benchmark scenes still read exactly right.

    python -m train.vae train/configs/vae_shapes.yaml --output_dir runs/vae_shapes [--steps N]

Glossary: b - batch, c - channels (3 pixels, 4 latents), h w - height, width.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch
from diffusers import AutoencoderKL
from diffusers.image_processor import VaeImageProcessor
from PIL import Image
from tqdm.auto import tqdm

from shapes_world import BENCHMARK_SEED, IMAGE_SIZE, TRAIN_SEED, Scene, iter_scenes, read_scene, render

from .config import load_yaml
from .data import to_pixels

logger = logging.getLogger(__name__)


@dataclass
class VAEConfig:
    # model
    block_out_channels: tuple[int, ...] = (32, 64, 64)  # 3 levels, 2 downsamplings: f = 4, 64x64 -> 16x16
    latent_channels: int = 4  # 16x16x4 = 1024 numbers for <= 3 flat-coloured shapes: plenty
    layers_per_block: int = 1  # ResNets per level; the images are simple, CPU time is not
    norm_num_groups: int = 16  # GroupNorm groups; must divide every entry of block_out_channels
    mid_block_add_attention: bool = True  # one attention at 16x16 (256 tokens): cheap, diffusers' default
    # optimisation
    steps: int = 600
    batch_size: int = 16
    lr: float = 1e-3  # AdamW; a small conv net tolerates a high rate after a warm-up
    warmup_steps: int = 50  # linear warm-up: Adam's first steps are large while its moments are unset
    min_lr_ratio: float = 0.1  # cosine decay to lr * min_lr_ratio: a short run still ends settled
    weight_decay: float = 0.0  # nothing to regularise: data are unlimited (fresh scenes every step)
    grad_clip: float = 1.0  # max gradient norm; guards the early steps at lr 1e-3
    # LDM's convention: summed reconstruction error + kl_weight * KL (both per image), so the KL is
    # divided by the number of pixel values next to a mean MSE (undivided, 1e-6 is ~12,000x stronger:
    # posterior std ~0.6-1 drowned the latent and only 89 % of reconstructed scenes read right).
    kl_weight: float = 1e-6  # just enough KL to keep the latent bounded; reconstruction is what matters
    seed: int = 0  # weights, jitter, antialias coin flips and latent sampling
    # data: scenes from TRAIN_SEED, rendered with fresh jitter; antialiased for robustness
    jitter: int = 3  # pixels, as render()'s default: the D-DiT trains on the same renders
    antialias_fraction: float = 0.25  # share of images drawn at 4x and downsampled (soft edges)
    # bookkeeping
    log_every: int = 25  # steps between log lines (mean loss over the window)
    stats_images: int = 2000  # held-out images for the latent mean / std
    stats_seed: int = 31_000_007  # scenes for the statistics: neither TRAIN_SEED nor BENCHMARK_SEED
    eval_images: int = 500  # benchmark scenes reconstructed and judged
    eval_batch_size: int = 100  # images per encode/decode call when measuring

    def __post_init__(self) -> None:
        self.block_out_channels = tuple(int(c) for c in self.block_out_channels)
        bad = [c for c in self.block_out_channels if c % self.norm_num_groups]
        if bad:
            raise ValueError(f"norm_num_groups={self.norm_num_groups} must divide every block_out_channels "
                             f"entry; {bad} are not multiples")
        if not 0.0 <= self.antialias_fraction <= 1.0:
            raise ValueError(f"antialias_fraction must be in [0, 1], got {self.antialias_fraction}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"steps and batch_size must be >= 1, got {self.steps} and {self.batch_size}")

    @classmethod
    def from_yaml(cls, path: str | Path) -> "VAEConfig":
        """Read a YAML mapping of field -> value; unknown keys are an error, missing keys keep defaults."""
        return load_yaml(cls, path)


def build_vae(config: VAEConfig) -> AutoencoderKL:
    """A fresh AutoencoderKL for IMAGE_SIZE RGB images, seeded by ``config.seed``."""
    torch.manual_seed(config.seed)
    levels = len(config.block_out_channels)
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=config.latent_channels,
        down_block_types=("DownEncoderBlock2D",) * levels, up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=config.block_out_channels, layers_per_block=config.layers_per_block,
        norm_num_groups=config.norm_num_groups, sample_size=IMAGE_SIZE,
        mid_block_add_attention=config.mid_block_add_attention,
    )


# ------------------------------------------------------------------------------ pixels

_PROCESSOR = VaeImageProcessor()  # the pipeline's own pixel convention: [-1, 1], (b, 3, h, w)


def to_images(pixels: torch.Tensor) -> list[Image.Image]:
    """(b, 3, h, w) in [-1, 1] -> RGB images."""
    return _PROCESSOR.postprocess(pixels.cpu(), output_type="pil")


def render_batch(scenes: list[Scene], rng: np.random.Generator, config: VAEConfig) -> list[Image.Image]:
    """Render with fresh jitter; each image antialiased with probability ``antialias_fraction``."""
    return [render(s, rng, jitter=config.jitter, antialias=bool(rng.random() < config.antialias_fraction))
            for s in scenes]


# ------------------------------------------------------------------------------ training

class LossBreakdown(NamedTuple):
    loss: torch.Tensor  # mse + kl_weight * kl / (pixel values per image)
    mse: torch.Tensor  # mean over pixels
    kl: torch.Tensor  # summed over (c, h, w), mean over the batch


def vae_loss(vae: AutoencoderKL, pixels: torch.Tensor, kl_weight: float,
             generator: torch.Generator | None = None) -> LossBreakdown:
    """Reconstruction MSE of a posterior sample plus a lightly weighted KL to N(0, I).

    Both terms are per pixel value: ``(sum of squared errors + kl_weight * KL) / (3 h w)``,
    LDM's weighting divided by a constant, so ``kl_weight`` means what it means there.
    """
    posterior = vae.encode(pixels).latent_dist
    z = posterior.sample(generator=generator)  # (b, c, h/f, w/f)
    recon = vae.decode(z).sample  # (b, 3, h, w)
    mse = torch.nn.functional.mse_loss(recon, pixels)
    kl = posterior.kl().mean()  # summed over (c, h/f, w/f), mean over b
    return LossBreakdown(mse + kl_weight * kl / pixels[0].numel(), mse, kl)


def lr_at(step: int, config: VAEConfig) -> float:
    """Linear warm-up to ``lr``, then cosine decay to ``lr * min_lr_ratio`` at the last step."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    ratio = config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return config.lr * ratio


def optimize(optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter], config, desc: str,
             batch_losses: Callable[[int], dict[str, torch.Tensor]], log_line: Callable[[dict], str]) -> list[dict]:
    """``config.steps`` optimizer steps at ``lr_at``'s rate, gradients clipped to ``config.grad_clip``.

    ``batch_losses(step)`` returns scalar tensors by name; "loss" is the one minimised. Every ``config.log_every``
    steps (and at the last) their window means, the lr and images/s become a history entry, printed by
    ``log_line``. Shared by the small trainers (this VAE, ``train.preview_decoder``).
    """
    history, window, t_window = [], [], time.perf_counter()
    bar = tqdm(range(config.steps), desc=desc, mininterval=5.0)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config)
        losses = batch_losses(step)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        optimizer.step()
        window.append({name: value.item() for name, value in losses.items()})
        if (step + 1) % config.log_every == 0 or step + 1 == config.steps:
            seconds = time.perf_counter() - t_window
            means = {name: float(np.mean([w[name] for w in window])) for name in window[0]}
            entry = {"step": step + 1, **means, "lr": lr_at(step, config),
                     "images_per_s": len(window) * config.batch_size / seconds}
            history.append(entry)
            bar.set_postfix(loss=f"{entry['loss']:.5f}")
            tqdm.write(log_line(entry))
            window, t_window = [], time.perf_counter()
    return history


def fit(vae: AutoencoderKL, config: VAEConfig, device: torch.device) -> list[dict]:
    """Train ``vae`` in place for ``config.steps``; returns the logged history (window means)."""
    optimizer = torch.optim.AdamW(vae.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    rng = np.random.default_rng(config.seed)  # jitter and antialias coin flips
    generator = torch.Generator(device).manual_seed(config.seed)  # posterior samples
    scenes = iter_scenes(TRAIN_SEED)

    def batch_losses(step: int) -> dict[str, torch.Tensor]:
        batch = [next(scenes) for _ in range(config.batch_size)]
        out = vae_loss(vae, to_pixels(render_batch(batch, rng, config), IMAGE_SIZE).to(device), config.kl_weight,
                       generator)
        return {"loss": out.loss, "mse": out.mse, "kl": out.kl}

    vae.train()
    history = optimize(optimizer, list(vae.parameters()), config, "vae", batch_losses, lambda e: (
        f"step {e['step']:5d} | loss {e['loss']:.5f} | mse {e['mse']:.5f} | kl {e['kl']:8.1f} | "
        f"lr {e['lr']:.2e} | {e['images_per_s']:.1f} img/s"))
    vae.eval()
    return history


# ------------------------------------------------------------------------------ measuring

@torch.no_grad()
def latent_stats(vae: AutoencoderKL, config: VAEConfig, device: torch.device) -> dict:
    """Mean and std of the encoder's mode over ``stats_images`` held-out renders (training distribution)."""
    rng = np.random.default_rng(config.stats_seed)
    scenes = list(iter_scenes(config.stats_seed, config.stats_images))
    zs = []
    for i in range(0, len(scenes), config.eval_batch_size):
        pixels = to_pixels(render_batch(scenes[i:i + config.eval_batch_size], rng, config), IMAGE_SIZE).to(device)
        zs.append(vae.encode(pixels).latent_dist.mode().float().cpu())  # (b, c, h/f, w/f)
    z = torch.cat(zs)
    per_channel = z.transpose(0, 1).flatten(1)  # (c, b*h*w)
    return {"mean": z.mean().item(), "std": z.std().item(),
            "channel_mean": per_channel.mean(1).tolist(), "channel_std": per_channel.std(1).tolist()}


@torch.no_grad()
def evaluate(vae: AutoencoderKL, config: VAEConfig, device: torch.device) -> dict:
    """Reconstruct ``eval_images`` benchmark scenes (plain jittered renders) and judge them."""
    rng = np.random.default_rng(BENCHMARK_SEED)
    scenes = list(iter_scenes(BENCHMARK_SEED, config.eval_images))
    truth_ok = recon_ok = 0
    squared_error = 0.0
    for i in range(0, len(scenes), config.eval_batch_size):
        chunk = scenes[i:i + config.eval_batch_size]
        images = [render(s, rng) for s in chunk]
        pixels = to_pixels(images, IMAGE_SIZE).to(device)
        recon = vae.decode(vae.encode(pixels).latent_dist.mode()).sample.clamp(-1, 1)
        squared_error += torch.nn.functional.mse_loss(recon, pixels, reduction="sum").item()
        for scene, image, rebuilt in zip(chunk, images, to_images(recon)):
            truth_ok += read_scene(image) == scene
            recon_ok += read_scene(rebuilt) == scene
    n = len(scenes)
    return {"images": n, "recon_mse": squared_error / (n * 3 * IMAGE_SIZE**2),
            "judge_accuracy_recon": recon_ok / n, "judge_accuracy_ground_truth": truth_ok / n}


def train_vae(config: VAEConfig, output_dir: str | Path, device: str | torch.device = "cpu") -> AutoencoderKL:
    """Train, set the latent scaling/shift factors, save the model and ``vae_report.json`` to ``output_dir``."""
    output_dir = Path(output_dir)
    device = torch.device(device)
    start = time.perf_counter()
    vae = build_vae(config).to(device)
    history = fit(vae, config, device)
    train_seconds = time.perf_counter() - start
    stats = latent_stats(vae, config, device)
    shift, scale = stats["mean"], 1.0 / stats["std"]
    vae.register_to_config(shift_factor=shift, scaling_factor=scale)  # latents = (z - shift) * scale
    metrics = evaluate(vae, config, device)
    vae.save_pretrained(output_dir)
    report = {
        "steps": config.steps, "images_seen": config.steps * config.batch_size,
        "train_wall_time_s": round(train_seconds, 1),
        "total_wall_time_s": round(time.perf_counter() - start, 1),
        "final_loss": history[-1]["loss"], "final_mse": history[-1]["mse"], "final_kl": history[-1]["kl"],
        "scaling_factor": scale, "shift_factor": shift,
        "latent_channel_mean": stats["channel_mean"], "latent_channel_std": stats["channel_std"],
        **metrics,
        "parameters": sum(p.numel() for p in vae.parameters()),
        "torch_threads": torch.get_num_threads(), "device": str(device),
        "config": dataclasses.asdict(config), "history": history,
    }
    (output_dir / "vae_report.json").write_text(json.dumps(report, indent=2) + "\n")
    logger.info("saved %s: judge accuracy on reconstructions %.1f %% (ground truth %.1f %%)", output_dir,
                100 * metrics["judge_accuracy_recon"], 100 * metrics["judge_accuracy_ground_truth"])
    return vae


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the Shapes-World AutoencoderKL.")
    parser.add_argument("config", help="YAML file of VAEConfig fields")
    parser.add_argument("--output_dir", required=True, help="folder for save_pretrained and vae_report.json")
    parser.add_argument("--steps", type=int, default=None, help="override the config's steps")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    config = VAEConfig.from_yaml(args.config)
    if args.steps is not None:
        config = dataclasses.replace(config, steps=args.steps)
    logger.info("config: %s", dataclasses.asdict(config))
    train_vae(config, args.output_dir, device=args.device)


if __name__ == "__main__":
    main()
