"""The options every benchmark command takes, and the option groups several share."""

from __future__ import annotations

import argparse

from ddit.dtypes import DTYPE_CHOICES, DTYPE_HELP
from ddit.task_defaults import SAMPLERS


def benchmark_parser(name: str, description: str) -> argparse.ArgumentParser:
    """A parser with the common options: --model, --out, --batch, --limit, --seed, --device, --dtype."""
    parser = argparse.ArgumentParser(prog=f"python -m evaluation.{name}", description=description)
    parser.add_argument("--model", required=True, help="pipeline folder (ours or a released D-DiT checkpoint)")
    parser.add_argument("--out", required=True,
                        help="output folder: settings.json, predictions.jsonl (resumable), results.json, ...")
    parser.add_argument("--batch", type=int, default=16, help="items per model call (default 16)")
    parser.add_argument("--limit", type=int, default=None,
                        help="only the first N items (a quick look; the results say they are a subset)")
    parser.add_argument("--seed", type=int, default=0, help="seed; batch i samples with a generator from (seed, i)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    parser.add_argument("--dtype", choices=DTYPE_CHOICES, default="auto", help=DTYPE_HELP)
    return parser


def add_text_sampling(parser: argparse.ArgumentParser) -> None:
    """--steps and --sampler for the text tasks (default: the model's)."""
    parser.add_argument("--steps", type=int, default=None,
                        help="text diffusion steps (default: the model's; the paper used 16 for VQA)")
    parser.add_argument("--sampler", choices=SAMPLERS, default=None, help="text sampler (default: the model's)")


def add_short_answer(parser: argparse.ArgumentParser, default: bool) -> None:
    """--short-answer / --no-short-answer: append "Answer the question using a single word or phrase.". A benchmark
    whose default is on asks for it only when the model can read it ("auto": the released checkpoints can; the
    bundled model, whose vocabulary lacks its words, would answer nothing)."""
    parser.add_argument("--short-answer", action=argparse.BooleanOptionalAction, default="auto" if default else False,
                        help="append the short-answer instruction to each question (default: "
                             f"{'on when the model can read its words' if default else 'off'})")


def check_common(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit with a usage error for values that cannot work."""
    if args.batch < 1:
        parser.error(f"--batch must be at least 1, got {args.batch}")
    if args.limit is not None and args.limit < 1:
        parser.error(f"--limit must be at least 1, got {args.limit}")
    if getattr(args, "steps", None) is not None and args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
