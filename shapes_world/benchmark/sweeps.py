"""Accuracy against sampler settings: text steps per sampler, the confidence threshold (with forward passes),
and T2I accuracy against transformer passes (solver, steps, shift, guidance)."""

from __future__ import annotations

from ddit.image_sampling import flow_scheduler, solver_name
from ddit.text_scheduler import SAMPLERS

from ..scene import BENCHMARK_SEED
from .tasks import evaluate_caption, evaluate_t2i, evaluate_vqa

SWEEP_STEPS = (1, 2, 4, 8, 16, 32)
SWEEP_TOLERANCE = 0.01  # the defaults should lose under 1 point against the best
# --t2i-sweep: (solver, steps, shift, guidance, guided sigmas; (0, 1): every step); the first is the reference,
# 25 Euler steps guided at every step (the model's defaults before this sweep)
EVERY_STEP = (0.0, 1.0)
T2I_SWEEP = (
    ("euler", 25, 1.0, 2.0, EVERY_STEP), ("euler", 8, 1.0, 2.0, EVERY_STEP), ("dpm++2m", 8, 2.0, 2.0, EVERY_STEP),
    ("dpm++2m", 8, 2.0, 2.5, (0.6, 1.0)), ("dpm++2m", 6, 2.0, 2.5, (0.6, 1.0)), ("dpm++2m", 5, 2.0, 2.5, (0.6, 1.0)),
    ("dpm++2m", 4, 2.0, 2.5, (0.6, 1.0)),
)
SWEEP_THRESHOLDS = (None, 0.5, 0.7, 0.8, 0.9, 0.95)  # --threshold-sweep; None: the model's default


def fewest_steps(accuracy_by_steps: dict[int, float], tolerance: float = SWEEP_TOLERANCE) -> int:
    """The fewest steps whose accuracy is less than ``tolerance`` below the best (ties to the best count)."""
    best = max(accuracy_by_steps.values())
    return min(k for k, acc in accuracy_by_steps.items() if best - acc < tolerance - 1e-9)


def sweep_text_steps(pipe, n: int = 200, batch: int = 32, seed: int = BENCHMARK_SEED, perturb: str = "none",
                     steps: tuple[int, ...] = SWEEP_STEPS, tasks: tuple[str, ...] = ("caption", "vqa")) -> dict:
    """Caption exact match and VQA overall accuracy, and mean transformer passes per item, against text steps
    (capped at the slot length), per sampler (``"remask"``: the revisable one beside the others).

    ``fewest_steps[task][sampler]`` is the fewest steps that lose less than SWEEP_TOLERANCE against that
    sampler's best.
    """
    plan = {"caption": (evaluate_caption, "exact", pipe.defaults.caption.max_length),
            "vqa": (evaluate_vqa, "overall", pipe.defaults.answer.max_length)}
    rows, fewest = [], {}
    for task in tasks:
        evaluate, key, slot = plan[task]
        for sampler in SAMPLERS:
            found = []
            for s in sorted({min(k, slot) for k in steps}):
                r = evaluate(pipe, n, batch, seed, perturb, steps=s, sampler=sampler)
                found.append({"task": task, "sampler": sampler, "steps": s, "accuracy": r[key],
                              "forward_passes": r["forward_passes"]})
            fewest.setdefault(task, {})[sampler] = fewest_steps({r["steps"]: r["accuracy"] for r in found})
            rows.extend(found)
    return {"rows": rows, "fewest_steps": fewest, "tolerance": SWEEP_TOLERANCE}


def sweep_text_thresholds(pipe, n: int = 200, batch: int = 32, seed: int = BENCHMARK_SEED, perturb: str = "none",
                          thresholds: tuple[float | None, ...] = SWEEP_THRESHOLDS,
                          tasks: tuple[str, ...] = ("caption", "vqa"), caption_steps: int | None = None,
                          answer_steps: int | None = None) -> dict:
    """Caption exact match or VQA overall accuracy, and mean transformer passes per item, for the confidence
    sampler at each threshold, without and with ``eos_early_stop``. The steps (default: the model's) are the
    most a run with a threshold takes; a row's ``threshold`` is the one used (None: the fixed loop)."""
    plan = {"caption": (evaluate_caption, "exact", caption_steps), "vqa": (evaluate_vqa, "overall", answer_steps)}
    rows = []
    for task in tasks:
        evaluate, key, steps = plan[task]
        for threshold in thresholds:
            for early in (False, True):
                r = evaluate(pipe, n, batch, seed, perturb, steps=steps, sampler="confidence",
                             decoding={"threshold": threshold, "eos_early_stop": early})
                defaults = pipe.defaults.caption if task == "caption" else pipe.defaults.answer
                used = defaults.merged(sampler="confidence", threshold=threshold).threshold
                rows.append({"task": task, "threshold": used, "eos_early_stop": early, "steps": r["settings"]["steps"],
                             "accuracy": r[key], "forward_passes": r["forward_passes"]})
    return {"rows": rows}


def sweep_t2i(pipe, n: int = 200, batch: int = 32, seed: int = BENCHMARK_SEED,
              plan: tuple[tuple, ...] = T2I_SWEEP) -> dict:
    """T2I overall and GenEval mean against transformer passes per image: one row per (solver, steps, shift,
    guidance, interval) of ``plan`` (the first is the reference) and one for the model's own settings.

    ``fewest_passes`` is the fewest passes whose overall loses less than SWEEP_TOLERANCE against the reference.
    """
    d, saved = pipe.defaults.generate, pipe.scheduler
    own = (solver_name(saved) or type(saved).__name__, d.num_inference_steps,
           saved.config.get("shift", saved.config.get("flow_shift")), d.guidance_scale,
           None if d.guidance_interval is None else tuple(d.guidance_interval))
    rows = []
    try:
        for solver, steps, shift, scale, interval in plan if own in plan else (*plan, own):
            if (solver, steps, shift, scale, interval) != own:
                pipe.scheduler = flow_scheduler(solver, shift)
            r = evaluate_t2i(pipe, n, batch, seed, steps=steps, guidance_scale=scale, guidance_interval=interval)
            pipe.scheduler = saved
            rows.append({**r["settings"], "default": (solver, steps, shift, scale, interval) == own,
                         "overall": r["overall"], "geneval_mean": r["geneval_mean"]})
    finally:
        pipe.scheduler = saved
    reference = rows[0]["overall"]
    fewest = min(r["passes"] for r in rows if reference - r["overall"] < SWEEP_TOLERANCE - 1e-9)
    return {"rows": rows, "reference": rows[0], "fewest_passes": fewest, "tolerance": SWEEP_TOLERANCE}
