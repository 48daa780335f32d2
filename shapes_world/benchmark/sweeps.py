"""Accuracy against sampler settings: text steps per sampler, and T2I guidance and image steps."""

from __future__ import annotations

from ddit.text_scheduler import SAMPLERS

from ..scene import BENCHMARK_SEED
from .tasks import evaluate_caption, evaluate_t2i, evaluate_vqa

SWEEP_STEPS = (1, 2, 4, 8, 16, 32)
SWEEP_TOLERANCE = 0.01  # the defaults should lose under 1 point against the best
SWEEP_GUIDANCE = (1.0, 1.5, 2.0, 3.0, 4.5)  # --t2i-sweep, at the default image steps
SWEEP_IMAGE_STEPS = (15, 25, 40)  # --t2i-sweep, at the default guidance


def fewest_steps(accuracy_by_steps: dict[int, float], tolerance: float = SWEEP_TOLERANCE) -> int:
    """The fewest steps whose accuracy is less than ``tolerance`` below the best (ties to the best count)."""
    best = max(accuracy_by_steps.values())
    return min(k for k, acc in accuracy_by_steps.items() if best - acc < tolerance - 1e-9)


def sweep_text_steps(pipe, n: int = 200, batch: int = 32, seed: int = BENCHMARK_SEED, perturb: str = "none",
                     steps: tuple[int, ...] = SWEEP_STEPS, tasks: tuple[str, ...] = ("caption", "vqa")) -> dict:
    """Caption exact match and VQA overall accuracy against text steps (capped at the slot length), per sampler.

    ``fewest_steps[task][sampler]`` is the fewest steps that lose less than SWEEP_TOLERANCE against that
    sampler's best.
    """
    plan = {"caption": (evaluate_caption, "exact", pipe.defaults.caption_length),
            "vqa": (evaluate_vqa, "overall", pipe.defaults.answer_length)}
    rows, fewest = [], {}
    for task in tasks:
        evaluate, key, slot = plan[task]
        for sampler in SAMPLERS:
            found = [{"task": task, "sampler": sampler, "steps": s,
                      "accuracy": evaluate(pipe, n, batch, seed, perturb, steps=s, sampler=sampler)[key]}
                     for s in sorted({min(k, slot) for k in steps})]
            fewest.setdefault(task, {})[sampler] = fewest_steps({r["steps"]: r["accuracy"] for r in found})
            rows.extend(found)
    return {"rows": rows, "fewest_steps": fewest, "tolerance": SWEEP_TOLERANCE}


def sweep_t2i(pipe, n: int = 200, batch: int = 32, seed: int = BENCHMARK_SEED,
              guidance: tuple[float, ...] = SWEEP_GUIDANCE, steps: tuple[int, ...] = SWEEP_IMAGE_STEPS) -> dict:
    """T2I overall and GenEval mean for each guidance scale at the default steps, and for each step count at
    the default guidance (a cross through the defaults, not a grid)."""
    d = pipe.defaults
    plan = [(d.image_steps, g) for g in guidance] + [(k, d.guidance_scale) for k in steps if k != d.image_steps]
    rows = []
    for k, g in plan:
        r = evaluate_t2i(pipe, n, batch, seed, steps=k, guidance_scale=g)
        rows.append({"steps": k, "guidance_scale": g, "overall": r["overall"], "geneval_mean": r["geneval_mean"]})
    return {"rows": rows}
