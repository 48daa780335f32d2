"""What makes in-painting work on Shapes-World: the benchmark's in-painting task (``shapes_world.benchmark.dual``,
one object's cell repainted to a changed colour or shape) under variants of the mask and the sampler.

    python benchmarks/inpaint_ablation.py [--model assets/ddit-shapes] [--n 200]

Mask at latent resolution: "dilated" (ours: a cell any repainted pixel falls in is repainted), "centre" (a cell
takes its centre pixel's value, plain nearest downsampling) and "shrunk" (repainted only when all its pixels are).
Sampler: the model's own (DPM-Solver++, its steps, guidance and guidance interval) or the 12 guided Euler steps of
the issue's prototype. Success and the kept region's error are the benchmark's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repo root: run from a clone
import ddit.tasks.inpaint as inpaint  # noqa: E402
from ddit import DualDiffusionPipeline  # noqa: E402
from ddit.image_sampling import flow_scheduler  # noqa: E402
from shapes_world.benchmark.dual import evaluate_inpaint  # noqa: E402
from shapes_world.benchmark.report import table  # noqa: E402

DILATED = inpaint.latent_keep


def centre_keep(masks: list, scale: int) -> torch.Tensor:
    """1 where the latent cell's centre pixel is kept (nearest downsampling)."""
    keep = inpaint.pixel_keep(masks)
    return keep[..., scale // 2::scale, scale // 2::scale]


def shrunk_keep(masks: list, scale: int) -> torch.Tensor:
    """1 unless every pixel of the latent cell is repainted."""
    return torch.nn.functional.max_pool2d(inpaint.pixel_keep(masks), scale)


MASKS = {"dilated": DILATED, "centre": centre_keep, "shrunk": shrunk_keep}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="assets/ddit-shapes")
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    pipe = DualDiffusionPipeline.from_pretrained(args.model, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    own = pipe.scheduler
    samplers = {"model's (dpm++2m, 6 steps, guided above 0.6)": (own, {}),
                "prototype's (euler, 12 steps, guided at every step)":
                    (flow_scheduler("euler", 1.0), {"num_inference_steps": 12, "guidance_interval": (0.0, 1.0)})}
    rows = []
    for sampler, (scheduler, options) in samplers.items():
        for name, keep in MASKS.items():
            pipe.scheduler, inpaint.latent_keep = scheduler, keep
            r = evaluate_inpaint(pipe, n=args.n, **options)
            rows.append([sampler, name, f"{100 * r['success']:.1f}", f"{r['kept_error_pasted']:.2f}",
                         f"{r['kept_error_decoded']:.2f}"])
            print(" | ".join(rows[-1]), flush=True)
    pipe.scheduler, inpaint.latent_keep = own, DILATED
    print(table(["sampler", "latent mask", "success %", "kept error /255 (returned)", "kept error /255 (decoded)"],
                rows))


if __name__ == "__main__":
    main()
