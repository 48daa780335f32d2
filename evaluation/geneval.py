"""``python -m evaluation.geneval --model M --out DIR --metadata evaluation_metadata.jsonl [--samples 4]``:
images for GenEval's prompts, in GenEval's folder layout (``OUT/{index:05d}/metadata.jsonl`` and
``OUT/{index:05d}/samples/{k:04d}.png``). No score here: GenEval's object detector runs in its own environment;
the command prints how. ``--limit`` counts prompts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from .datasets.geneval import read_geneval, sample_path, write_metadata
from .harness import DataError, Item, Task, run_command
from .harness.options import benchmark_parser

HOW_TO_SCORE = """score the images with GenEval's own tools (https://github.com/djghosh13/geneval):
  python evaluation/evaluate_images.py {out} --outfile {out}/geneval_results.jsonl --model-path <OBJECT_DETECTOR_FOLDER>
  python evaluation/summary_scores.py {out}/geneval_results.jsonl"""


def build_parser() -> argparse.ArgumentParser:
    """The command's options."""
    parser = benchmark_parser("geneval", "GenEval: generate its prompts' images in its folder layout. "
                                         "--limit counts prompts (each with --samples images).")
    parser.add_argument("--metadata", type=Path, required=True, help="GenEval's evaluation_metadata.jsonl")
    parser.add_argument("--samples", type=int, default=4, help="images per prompt (default 4, GenEval's)")
    parser.add_argument("--steps", type=int, default=None, help="image solver steps (default: the model's)")
    parser.add_argument("--guidance", type=float, default=None, help="guidance scale (default: the model's)")
    parser.add_argument("--resolution", type=int, default=None, help="image side in pixels (default: the model's)")
    return parser


def image_predictor(out: Path, steps: int | None, guidance: float | None, side: int | None):
    """Generate each item's image, save it where GenEval looks, and record its path."""

    def predict(pipe: Any, items: list[Item], images: list, generator: torch.Generator) -> list[str]:
        made = pipe([item.prompt for item in items], num_inference_steps=steps, guidance_scale=guidance,
                    generator=generator, height=side, width=side).images
        for item, image in zip(items, made):
            image.save(sample_path(out, item))
        return [str(sample_path(out, item).relative_to(out)) for item in items]

    return predict


def build_task(args: argparse.Namespace) -> Task:
    """The run: ``--samples`` images per prompt; nothing to score here."""
    if args.samples < 1:
        raise DataError(f"--samples must be at least 1, got {args.samples}")
    out = Path(args.out)
    return Task(name="geneval", items=read_geneval(args.metadata, args.samples),
                predict=image_predictor(out, args.steps, args.guidance, args.resolution),
                options={"samples": args.samples, "steps": args.steps, "guidance": args.guidance,
                         "resolution": args.resolution},
                score=lambda items, predictions: None, report=str, prepare=write_metadata,
                data={"metadata": args.metadata}, note=HOW_TO_SCORE.format(out=out),
                unscored=f"images written in GenEval's layout under {out}; GenEval's detector scores them")


def main(argv: list[str] | None = None) -> dict:
    """Generate the images; returns what ``results.json`` holds."""
    return run_command(build_parser(), build_task, argv)


if __name__ == "__main__":
    main()
