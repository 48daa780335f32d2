"""Forward-pass benchmark: our DualDiffusionTransformer vs diffusers' SD3Transformer2DModel (CPU).

Run:  python benchmarks/forward.py --batch 32          (defaults: the bundled model's size, ``shapes-s``)
      python benchmarks/forward.py --batch 1 --dtype bf16 --threads 1

Both models are built from one config dict (same width/depth/patch/channels) and timed interleaved
in the same run (no grad, eval mode): median of ``--repeats`` after ``--warmup`` calls each. "ours"
skips the text head, the closest to SD3's work (ours still does a few % more: SD3's last block is
``context_pre_only`` and drops its text stream; ours keeps it); "ours+text_head" adds the logits.
FLOPs come from ``FlopCounterMode`` with SDPA forced to the math backend while counting, so attention
shows up as ``bmm`` (the CPU flash kernel has no FLOP formula); timing uses the default backend.
MFU = our GFLOP/s / a square matmul's GFLOP/s, timed the same way with the same threads and dtype.

Glossary: b - batch, c - latent channels, s - latent size, l - text tokens, j - joint dim.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import diffusers
import torch
from diffusers import SD3Transformer2DModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repo root: ddit is not pip-installed
from ddit.presets import PRESETS, get_size  # noqa: E402
from ddit.transformer import DualDiffusionTransformer  # noqa: E402
from train.reporting import FlopCount  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", choices=sorted(PRESETS), default="shapes-s", help="model size preset (ddit.presets)")
    p.add_argument("--latent-size", type=int, default=16, help="16 with patch 2: 64 image tokens")
    p.add_argument("--latent-channels", type=int, default=4)
    p.add_argument("--text-len", type=int, default=32)
    p.add_argument("--vocab", type=int, default=64)
    p.add_argument("--dtype", choices=sorted(DTYPES), default="fp32", help="bf16 casts models and inputs")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--matmul-size", type=int, default=1024, help="side of the reference square matmul")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads")
    return p.parse_args()


def build_config(args: argparse.Namespace) -> dict:
    """The constructor arguments both models share (SD3 names), from the ``--size`` preset."""
    size = get_size(args.size)
    return dict(
        sample_size=args.latent_size, patch_size=size.patch_size, in_channels=args.latent_channels,
        out_channels=args.latent_channels, num_layers=size.depth, attention_head_dim=size.head_dim,
        num_attention_heads=size.width // size.head_dim, joint_attention_dim=size.text_width,
        caption_projection_dim=size.width, pooled_projection_dim=size.width,
        pos_embed_max_size=args.latent_size // size.patch_size,  # in patches: no crop needed
    )


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call (attention counted through the math kernel, as in training's MFU)."""
    with FlopCount() as counter:
        fn()
    return counter.total


def time_interleaved(fns: dict[str, Callable[[], object]], repeats: int, warmup: int) -> dict[str, float]:
    """Median seconds per call; each repeat runs every candidate once, so load drifts hit all alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(s) for name, s in samples.items()}


def main() -> None:
    args = parse_args()
    diffusers.utils.logging.set_verbosity_error()  # .to(dtype) warns about fp32-only modules (none here)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dtype = DTYPES[args.dtype]
    config = build_config(args)
    ours = DualDiffusionTransformer(**config, vocab_size=args.vocab).eval().to(dtype)
    sd3 = SD3Transformer2DModel(**config).eval().to(dtype)

    b, s, n = args.batch, args.latent_size, args.matmul_size
    x = torch.randn(b, args.latent_channels, s, s, dtype=dtype)  # (b, c, s, s)
    context = torch.randn(b, args.text_len, config["joint_attention_dim"], dtype=dtype)  # (b, l, j)
    pooled = torch.randn(b, config["pooled_projection_dim"], dtype=dtype)  # (b, pooled), SD3 only
    t = torch.rand(b) * 1000  # scheduler units
    a_mat, b_mat = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    fns: dict[str, Callable[[], object]] = {
        "ours+text_head": lambda: ours(x, context, t, return_logits=True).logits,
        "ours": lambda: ours(x, context, t, return_logits=False).sample,
        "sd3": lambda: sd3(x, context, pooled_projections=pooled, timestep=t).sample,
        f"matmul_{n}": lambda: a_mat @ b_mat,
    }

    with torch.inference_mode():
        flops = {name: count_flops(fn) for name, fn in fns.items() if not name.startswith("matmul")}
        flops[f"matmul_{n}"] = 2 * n**3
        secs = time_interleaved(fns, args.repeats, args.warmup)

    print(f"machine: {platform.processor() or platform.machine()} cpu_count={os.cpu_count()} "
          f"torch={torch.__version__} diffusers={diffusers.__version__} threads={torch.get_num_threads()}")
    print(f"config: batch={b} dtype={args.dtype} vocab={args.vocab} text_len={args.text_len} "
          f"image_tokens={(s // config['patch_size']) ** 2} size={args.size} {config}")
    print(f"params: ours={sum(p.numel() for p in ours.parameters()) / 1e6:.3f}M "
          f"sd3={sum(p.numel() for p in sd3.parameters()) / 1e6:.3f}M")
    print(f"flops: FlopCounterMode (attention counted via math SDPA); repeats={args.repeats} warmup={args.warmup}")
    print(f"{'name':<16}{'median_ms':>11}{'GFLOP/fwd':>11}{'GFLOP/s':>10}{'vs_sd3':>8}")
    for name in fns:
        gflops = flops[name] / 1e9
        ratio = f"{secs[name] / secs['sd3']:.2f}" if not name.startswith("matmul") else "-"
        print(f"{name:<16}{secs[name] * 1e3:>11.2f}{gflops:>11.3f}{gflops / secs[name]:>10.1f}{ratio:>8}")
    peak = flops[f"matmul_{n}"] / secs[f"matmul_{n}"]
    print(f"ratio_no_text_head={secs['ours'] / secs['sd3']:.2f} "
          f"ratio_text_head={secs['ours+text_head'] / secs['sd3']:.2f} "
          f"mfu={flops['ours'] / secs['ours'] / peak:.2f} matmul_gflops={peak / 1e9:.1f} "
          f"ours_gflops={flops['ours'] / secs['ours'] / 1e9:.1f}")


if __name__ == "__main__":
    main()
