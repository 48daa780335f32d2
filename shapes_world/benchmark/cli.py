"""``python -m shapes_world.benchmark --model PATH [--n N] [--json OUT] [--batch B] [--perturb P] [--sweep]
[--threshold-sweep] [--t2i-sweep] [--tasks t2i,caption,vqa,yesno,infill,score,inpaint,revise] [--speed-items K] [--seed S]
[--caption-sampler S] [--caption-steps K] [--answer-sampler S] [--answer-steps K]``: the Shapes-World benchmark."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ddit.text_scheduler import SAMPLERS

from ..scene import BENCHMARK_SEED
from .items import PERTURBATIONS
from .report import markdown, report, settings_line
from .sweeps import sweep_t2i, sweep_text_steps, sweep_text_thresholds
from .dual import evaluate_infill, evaluate_inpaint, evaluate_revise, evaluate_scoring
from .tasks import evaluate_caption, evaluate_t2i, evaluate_vqa, evaluate_yes_no, measure_speed

TASKS = ("t2i", "caption", "vqa", "yesno")  # the paper's tables (the default)
DUAL_TASKS = ("infill", "score", "inpaint", "revise")  # what only a dual diffusion model can do (``dual``)


def build_parser() -> argparse.ArgumentParser:
    """The command's options."""
    parser = argparse.ArgumentParser(prog="python -m shapes_world.benchmark",
                                     description="The Shapes-World benchmark, shaped like the paper's tables.")
    parser.add_argument("--model", required=True, help="pipeline folder")
    parser.add_argument("--n", type=int, default=200, help="items per task (default 200)")
    parser.add_argument("--batch", type=int, default=32, help="batch size for the accuracy runs")
    parser.add_argument("--perturb", choices=PERTURBATIONS, default="none", help="how caption/VQA inputs are rendered")
    parser.add_argument("--sweep", action="store_true", help="accuracy against text steps, per sampler")
    parser.add_argument("--threshold-sweep", action="store_true",
                        help="accuracy and forward passes against the confidence threshold, without and with early "
                             "stop (at most --caption-steps/--answer-steps steps, default the model's)")
    parser.add_argument("--t2i-sweep", action="store_true", help="T2I against guidance and image steps")
    parser.add_argument("--tasks", default=",".join(TASKS),
                        help="comma-separated, from " + ",".join(TASKS + DUAL_TASKS) + " (default: the first four)")
    parser.add_argument("--speed-items", type=int, default=10, help="items timed per task (0: no speed)")
    parser.add_argument("--seed", type=int, default=BENCHMARK_SEED,
                        help="item seed (default: the benchmark's); another one gives a held-out set")
    parser.add_argument("--caption-sampler", choices=SAMPLERS, default=None,
                        help="caption sampler (default: the model's; speed is timed at the defaults)")
    parser.add_argument("--caption-steps", type=int, default=None, help="caption steps (default: the model's)")
    parser.add_argument("--answer-sampler", choices=SAMPLERS, default=None,
                        help="VQA and yes/no sampler (default: the model's; speed is timed at the defaults)")
    parser.add_argument("--answer-steps", type=int, default=None, help="VQA and yes/no steps (default: the model's)")
    parser.add_argument("--json", default=None, help="write all numbers and settings here")
    parser.add_argument("--markdown", action="store_true", help="also print the tables as Markdown (model cards)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    return parser


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print the tables, optionally write JSON; returns the results."""
    from ddit.pipeline import DualDiffusionPipeline

    parser = build_parser()
    args = parser.parse_args(argv)
    tasks = tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    if not tasks or set(tasks) - set(TASKS + DUAL_TASKS):
        parser.error(f"--tasks must name some of {', '.join(TASKS + DUAL_TASKS)}, got {args.tasks!r}")
    if min(args.n, args.batch) < 1 or any(k is not None and k < 1 for k in (args.answer_steps, args.caption_steps)) \
            or args.speed_items < 0:
        parser.error("--n, --batch, --caption-steps and --answer-steps must be positive, --speed-items at least 0")
    pipe = DualDiffusionPipeline.from_pretrained(args.model, device=args.device)
    pipe.set_progress_bar_config(disable=True)
    print(settings_line(pipe, args))
    results: dict = {"settings": {**vars(args), "tasks": list(tasks),
                                  "device": str(pipe.device), "defaults": pipe.defaults.to_dict()}}
    common = dict(n=args.n, batch=args.batch, seed=args.seed)
    answering = dict(perturb=args.perturb, steps=args.answer_steps, sampler=args.answer_sampler)
    if "t2i" in tasks:
        results["t2i"] = evaluate_t2i(pipe, **common)
    if "caption" in tasks:
        results["caption"] = evaluate_caption(pipe, **common, perturb=args.perturb, steps=args.caption_steps,
                                              sampler=args.caption_sampler)
    if "vqa" in tasks:
        results["vqa"] = evaluate_vqa(pipe, **common, **answering)
    if "yesno" in tasks:
        results["yesno"] = evaluate_yes_no(pipe, **common, **answering)
    for task, evaluate in (("infill", evaluate_infill), ("inpaint", evaluate_inpaint)):
        if task in tasks:
            results[task] = evaluate(pipe, **common)
    if "score" in tasks:
        results["score"] = evaluate_scoring(pipe, args.n, args.seed)
    if "revise" in tasks:
        results["revise"] = evaluate_revise(pipe, **common, perturb=args.perturb)
    timed = tuple(name for task, name in zip(TASKS, ("image", "caption", "answer")) if task in tasks)
    if args.speed_items > 0 and timed:
        results["speed"] = measure_speed(pipe, args.speed_items, args.seed, timed)
    text_tasks = tuple(t for t in ("caption", "vqa") if t in tasks)
    if args.sweep and text_tasks:
        results["sweep"] = sweep_text_steps(pipe, **common, perturb=args.perturb, tasks=text_tasks)
    if args.threshold_sweep and text_tasks:
        results["threshold_sweep"] = sweep_text_thresholds(pipe, **common, perturb=args.perturb, tasks=text_tasks,
                                                           caption_steps=args.caption_steps,
                                                           answer_steps=args.answer_steps)
    if args.t2i_sweep and "t2i" in tasks:
        results["t2i_sweep"] = sweep_t2i(pipe, **common)
    print("\n" + report(results))
    if args.markdown:
        print("\n" + markdown(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
        print(f"\nwrote {args.json}")
    return results


if __name__ == "__main__":
    main()
