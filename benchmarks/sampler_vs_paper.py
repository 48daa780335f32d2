"""This model's default samplers against the paper's sampler at the authors' settings, side by side in one run.

Run:  OMP_NUM_THREADS=1 python benchmarks/sampler_vs_paper.py [--model PATH] [--n 200] [--timed 10]

paper: what the authors' sampling code does (docs/design.md §3.4), on this model: images 28 Euler steps with
classifier-free guidance at every step (the model's guidance scale, shift 1); captions the ancestral sampler,
128 steps, with its cache (a step that reveals nothing reuses the last forward pass); answers ancestral, 32
steps. ours: the model's own scheduler and ``task_defaults``. For each task and both: transformer passes per
item, seconds per item at batch 1 (median over ``--timed`` items after one warm-up, one seeded generator per
item), and benchmark accuracy on ``--n`` items (T2I overall, caption exact match, VQA overall; batched).
Ratios are paper / ours: read them, not the absolute times, across machines.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ddit import DualDiffusionPipeline  # noqa: E402
from ddit.cli import DEFAULT_MODEL  # noqa: E402
from ddit.image_sampling import flow_scheduler, planned_passes, solver_name  # noqa: E402
from shapes_world.benchmark.items import benchmark_images, benchmark_questions, t2i_prompts  # noqa: E402
from shapes_world.benchmark.tasks import evaluate_caption, evaluate_t2i, evaluate_vqa  # noqa: E402

PAPER_IMAGE = {"num_inference_steps": 28}  # Euler, guided at every step
PAPER_CAPTION = {"num_inference_steps": 128, "sampler": "ancestral", "eos_early_stop": False}
PAPER_ANSWER = {"num_inference_steps": 32, "sampler": "ancestral", "eos_early_stop": False}


def seconds_per_item(run, items: int) -> float:
    """Median wall seconds of ``run(i, generator)`` over items 1..items (item 0 is a warm-up)."""
    times = []
    for i in range(items + 1):
        start = time.perf_counter()
        run(i, torch.Generator().manual_seed(i))
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def image_rows(pipe, n: int, timed: int) -> list[dict]:
    """T2I: ours (the model's scheduler and defaults) and the paper's 28 guided Euler steps."""
    prompts, d, ours_scheduler = t2i_prompts(timed + 1), pipe.defaults, pipe.scheduler
    rows = []
    for name, scheduler, options in (("ours", ours_scheduler, {}),
                                     ("paper", flow_scheduler("euler", 1.0), {**PAPER_IMAGE, "guidance_interval": (0, 1)})):
        pipe.scheduler = scheduler
        steps = options.get("num_inference_steps", d.image_steps)
        interval = options.get("guidance_interval", d.guidance_interval)
        secs = seconds_per_item(lambda i, g: pipe([prompts[i]], generator=g, **options), timed)
        acc = evaluate_t2i(pipe, n, steps=steps, guidance_interval=interval)["overall"]
        rows.append({"task": "image", "sampler": name, "setting": f"{solver_name(scheduler)} {steps} steps",
                     "passes": planned_passes(scheduler, steps, d.guidance_scale, interval), "seconds": secs,
                     "accuracy": acc})
    pipe.scheduler = ours_scheduler
    return rows


def text_rows(pipe, n: int, timed: int) -> list[dict]:
    """Captions and answers: ours (the model's defaults) and the paper's ancestral sampler."""
    scenes, images = benchmark_images(timed + 1)
    questions = [q for q, _, _ in benchmark_questions(scenes)]
    runs = {"caption": lambda i, g, options: pipe.caption([images[i]], generator=g, **options),
            "answer": lambda i, g, options: pipe.answer([images[i]], [questions[i]], generator=g, **options)}
    rows = []
    for task, paper, evaluate, key in (("caption", PAPER_CAPTION, evaluate_caption, "exact"),
                                       ("answer", PAPER_ANSWER, evaluate_vqa, "overall")):
        for name, options in (("ours", {}), ("paper", paper)):
            passes = []
            secs = seconds_per_item(lambda i, g: passes.append(runs[task](i, g, options).forward_passes), timed)
            r = evaluate(pipe, n, steps=options.get("num_inference_steps"), sampler=options.get("sampler"),
                         decoding={k: v for k, v in options.items() if k == "eos_early_stop"})
            rows.append({"task": task, "sampler": name,
                         "setting": f"{r['settings']['sampler']} {r['settings']['steps']} steps",
                         "passes": statistics.fmean(passes[1:]), "seconds": secs, "accuracy": r[key]})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(DEFAULT_MODEL), help="pipeline folder (default: the bundled model)")
    p.add_argument("--n", type=int, default=200, help="benchmark items per task for accuracy")
    p.add_argument("--timed", type=int, default=10, help="items timed at batch 1 per task and sampler")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    args = p.parse_args()
    pipe = DualDiffusionPipeline.from_pretrained(args.model, device=args.device)
    pipe.set_progress_bar_config(disable=True)
    print(f"machine: cpu_count={os.cpu_count()} torch_threads={torch.get_num_threads()} "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')} torch={torch.__version__} device={pipe.device}")
    print(f"model: {args.model} | n {args.n} | timed {args.timed} items at batch 1")
    rows = image_rows(pipe, args.n, args.timed) + text_rows(pipe, args.n, args.timed)
    print(f"\n{'task':<8}{'sampler':<8}{'setting':<26}{'passes':>8}{'s/item':>9}{'accuracy':>10}")
    for r in rows:
        print(f"{r['task']:<8}{r['sampler']:<8}{r['setting']:<26}{r['passes']:>8.2f}{r['seconds']:>9.4f}"
              f"{100 * r['accuracy']:>9.1f}%")
    print(f"\n{'task':<8}{'passes paper/ours':>19}{'time paper/ours':>17}{'accuracy ours-paper (pt)':>26}")
    for ours, paper in zip(rows[::2], rows[1::2]):
        print(f"{ours['task']:<8}{paper['passes'] / ours['passes']:>18.1f}x{paper['seconds'] / ours['seconds']:>16.1f}x"
              f"{100 * (ours['accuracy'] - paper['accuracy']):>+26.1f}")


if __name__ == "__main__":
    main()
