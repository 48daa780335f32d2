"""One function per benchmark task: run the pipeline over the items in seeded batches and score the outputs."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from ddit.image_sampling import planned_passes, solver_name

from ..judge import matches, read_scene
from ..language import caption, parse_prompt
from ..scene import BENCHMARK_SEED, MAX_OBJECTS, QTYPES
from .items import POPE_SETTINGS, benchmark_images, benchmark_questions, t2i_prompts, yes_no_probes
from .scoring import T2I_CATEGORIES, cider, holds, is_caption_of, mean_of, ratio, score, words


def _run_batches(fn: Callable, columns: tuple[list, ...], batch: int, seed: int, desc: str) -> list:
    """`fn(*column_chunks, generator=...)` over batches of the columns, one seeded generator per batch."""
    out, total = [], len(columns[0])
    with tqdm(total=total, desc=desc, leave=False) as bar:
        for index, start in enumerate(range(0, total, batch)):
            chunks = [list(c[start:start + batch]) for c in columns]
            out.extend(fn(*chunks, generator=torch.Generator().manual_seed(seed + index)))
            bar.update(len(chunks[0]))
    return out


def text_settings(pipe, task: str, steps: int | None, sampler: str | None) -> tuple[int, str]:
    """Steps and sampler of ``task`` ("caption" or "answer"): the given ones, else the model's defaults."""
    d = pipe.defaults
    default_steps, default_sampler = {"caption": (d.caption.num_inference_steps, d.caption.sampler),
                                      "answer": (d.answer.num_inference_steps, d.answer.sampler)}[task]
    return (default_steps if steps is None else steps), (sampler or default_sampler)


def _with_passes(out) -> list[tuple[str, int | None]]:
    """Each row's text with the transformer passes its batch took (None when the output does not say)."""
    return [(text, getattr(out, "forward_passes", None)) for text in out.text]


def _texts_and_passes(rows: list[tuple[str, int | None]]) -> tuple[list[str], float | None]:
    """The texts, and the mean passes per item (each item counts its batch's passes; None if any is unknown)."""
    passes = [p for _, p in rows]
    return [t for t, _ in rows], (None if None in passes or not passes else statistics.fmean(passes))


def _answers(pipe, images: list, questions: list[str], batch: int, seed: int, steps: int, sampler: str,
             desc: str, decoding: dict | None = None) -> tuple[list[str], float | None]:
    """The model's answer to each (image, question) pair, in seeded batches, and the mean passes per item."""
    decoding = decoding or {}
    return _texts_and_passes(_run_batches(
        lambda i, q, generator: _with_passes(pipe.answer(i, q, num_inference_steps=steps, sampler=sampler,
                                                         generator=generator, **decoding)),
        (images, questions), batch, seed, desc))


def evaluate_t2i(pipe, n: int = 200, batch: int = 32, seed: int = BENCHMARK_SEED, steps: int | None = None,
                 guidance_scale: float | None = None, guidance_interval: tuple[float, float] | None = None) -> dict:
    """Generate one image per benchmark prompt and score it per GenEval category and overall; ``passes`` is
    transformer passes per image (with ``pipe.scheduler``, the guidance scale and interval)."""
    d = pipe.defaults.generate
    steps = d.num_inference_steps if steps is None else steps
    guidance_scale = d.guidance_scale if guidance_scale is None else guidance_scale
    interval = d.guidance_interval if guidance_interval is None else guidance_interval
    interval = None if interval is None else tuple(interval)
    prompts = t2i_prompts(n, seed)
    solver = solver_name(pipe.scheduler) or type(pipe.scheduler).__name__
    shift = pipe.scheduler.config.get("shift", pipe.scheduler.config.get("flow_shift"))
    images = _run_batches(lambda p, generator: pipe(p, generator=generator, num_inference_steps=steps,
                                                    guidance_scale=guidance_scale, guidance_interval=interval).images,
                          (prompts,), batch, seed, f"t2i {solver} {steps} steps, guidance {guidance_scale}")
    specs, read = [parse_prompt(p) for p in prompts], [read_scene(i) for i in images]
    categories = {name: score([holds(r, s, keys) for r, s in zip(read, specs) if selects(s)])
                  for name, (selects, keys) in T2I_CATEGORIES.items()}
    scored = [c["accuracy"] for c in categories.values() if c["accuracy"] is not None]
    settings = {"steps": steps, "guidance_scale": guidance_scale, "guidance_interval": interval, "solver": solver,
                "shift": shift, "passes": planned_passes(pipe.scheduler, steps, guidance_scale, interval)}
    right = [matches(r, s) for r, s in zip(read, specs)]
    # every asked attribute right, by how many objects the prompt asks for
    by_objects = {str(k): score([ok for ok, s in zip(right, specs) if len(s) == k]) for k in range(1, MAX_OBJECTS + 1)}
    # one attribute at a time: the asked number of objects, each agreeing on that attribute (prompts that ask it)
    attributes = {key: score([holds(r, s, (key,)) for r, s in zip(read, specs) if all(o[key] is not None for o in s)])
                  for key in ("color", "shape", "size", "cell")}
    return {"n": n, "settings": settings, "categories": categories, "by_objects": by_objects, "attributes": attributes,
            "overall": mean_of(right), "geneval_mean": ratio(sum(scored), len(scored))}


def evaluate_caption(pipe, n: int = 200, batch: int = 32, seed: int = BENCHMARK_SEED, perturb: str = "none",
                     steps: int | None = None, sampler: str | None = None, decoding: dict | None = None) -> dict:
    """Caption benchmark renders: exact-scene match (unparseable is wrong), CIDEr and mean transformer passes
    per item. ``decoding``: the text loop's options for ``pipe.caption`` (threshold, block_length, ...)."""
    steps, sampler = text_settings(pipe, "caption", steps, sampler)
    decoding = decoding or {}
    scenes, images = benchmark_images(n, seed, perturb)
    texts, passes = _texts_and_passes(_run_batches(
        lambda i, generator: _with_passes(pipe.caption(i, num_inference_steps=steps, sampler=sampler,
                                                       generator=generator, **decoding)),
        (images,), batch, seed, f"caption {sampler} {steps}"))
    exact = mean_of([is_caption_of(t, s) for t, s in zip(texts, scenes)])
    return {"n": n, "settings": {"steps": steps, "sampler": sampler, "perturb": perturb, **decoding},
            "exact": exact, "cider": cider(texts, [caption(s) for s in scenes]), "forward_passes": passes}


def evaluate_vqa(pipe, n: int = 200, batch: int = 32, seed: int = BENCHMARK_SEED, perturb: str = "none",
                 steps: int | None = None, sampler: str | None = None, decoding: dict | None = None) -> dict:
    """Answer one question per benchmark render: accuracy per type and overall, and mean transformer passes per
    item. ``decoding``: the text loop's options for ``pipe.answer`` (threshold, block_length, ...)."""
    steps, sampler = text_settings(pipe, "answer", steps, sampler)
    decoding = decoding or {}
    scenes, images = benchmark_images(n, seed, perturb)
    questions, answers, qtypes = zip(*benchmark_questions(scenes, seed))
    texts, passes = _answers(pipe, images, questions, batch, seed, steps, sampler, f"vqa {sampler} {steps}",
                             decoding)
    predicted = [words(t) for t in texts]
    correct = [p == a for p, a in zip(predicted, answers)]
    per_type = {qtype: score([c for c, t in zip(correct, qtypes) if t == qtype]) for qtype in QTYPES}
    return {"n": n, "settings": {"steps": steps, "sampler": sampler, "perturb": perturb, **decoding},
            "per_type": per_type, "overall": mean_of(correct), "forward_passes": passes}


def evaluate_yes_no(pipe, n: int = 200, batch: int = 32, seed: int = BENCHMARK_SEED, perturb: str = "none",
                    steps: int | None = None, sampler: str | None = None) -> dict:
    """POPE-style yes/no on balanced probes (``yes_no_probes``): accuracy, precision, recall, F1 and the
    share of "yes" answers, per setting. Chance is 0.5; always "yes" scores 0.5 with yes ratio 1."""
    steps, sampler = text_settings(pipe, "answer", steps, sampler)
    scenes, images = benchmark_images(n, seed, perturb)
    out = {"n": n, "settings": {"steps": steps, "sampler": sampler, "perturb": perturb}}
    for setting in POPE_SETTINGS:
        questions, answers = zip(*yes_no_probes(scenes, seed, setting))
        texts, _ = _answers(pipe, images, questions, batch, seed, steps, sampler, f"yes/no {setting}")
        said = [words(t) == "yes" for t in texts]
        truth = [a == "yes" for a in answers]
        true_yes = sum(p and g for p, g in zip(said, truth))
        precision, recall = ratio(true_yes, sum(said)), ratio(true_yes, sum(truth))
        f1 = None if None in (precision, recall) else (ratio(2 * precision * recall, precision + recall) or 0.0)
        out[setting] = {"accuracy": mean_of([words(t) == a for t, a in zip(texts, answers)]), "precision": precision,
                        "recall": recall, "f1": f1, "yes_ratio": mean_of(said)}
    return out


def measure_speed(pipe, items: int = 10, seed: int = BENCHMARK_SEED,
                  tasks: tuple[str, ...] = ("image", "caption", "answer")) -> dict:
    """Median seconds per item at batch 1 with the model's defaults, over `items` after one warm-up."""
    prompts = t2i_prompts(items + 1, seed)
    scenes, images = benchmark_images(items + 1, seed)
    questions = [q for q, _, _ in benchmark_questions(scenes, seed)]
    run = {"image": lambda i, g: pipe([prompts[i]], generator=g),
           "caption": lambda i, g: pipe.caption([images[i]], generator=g),
           "answer": lambda i, g: pipe.answer([images[i]], [questions[i]], generator=g)}
    seconds = {}
    for task in tqdm(tasks, desc="speed", leave=False):
        times = []
        for i in range(items + 1):
            start = time.perf_counter()
            run[task](i, torch.Generator().manual_seed(seed + i))  # outputs are on the CPU: the GPU is done
            times.append(time.perf_counter() - start)
        seconds[task] = statistics.median(times[1:])
    return {"items": items, "batch": 1, "seconds_per_item": seconds}
