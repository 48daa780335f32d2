"""The Shapes-World benchmark, shaped like the paper's tables (design.md section 4).

``python -m train.eval --model PATH [--n N] [--json OUT] [--batch B] [--perturb P] [--sweep]
[--t2i-sweep] [--tasks t2i,caption,vqa,yesno] [--speed-items K] [--seed S]
[--caption-sampler S] [--caption-steps K] [--answer-sampler S] [--answer-steps K]``

- T2I prompt following in GenEval's categories, judged by ``train.judge.read_scene``;
- captioning: exact-scene match and CIDEr against the canonical caption;
- VQA: accuracy per question type;
- yes/no: POPE-style balanced probes ("is there a red circle?"), one per render, in POPE's "random" and
  "adversarial" settings (absent pairs drawn from all, or from those sharing a colour or shape in the scene);
- speed: seconds per item at batch 1 with the model's defaults;
- ``--sweep``: caption and VQA accuracy against the number of text denoising steps, per sampler;
- ``--t2i-sweep``: T2I accuracy against the guidance scale and the number of image steps.

Items are pure functions of the benchmark seed, and each batch has its own seeded generator.
Accuracies are fractions in [0, 1] (printed as percentages); an empty category scores None.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from pycocoevalcap.cider.cider import Cider
from tqdm.auto import tqdm

from ddit.text_scheduler import SAMPLERS
from train.judge import matches, pairs_up, read_scene
from train.shapes_world import (
    BENCHMARK_SEED, QTYPES, Scene, absent_pairs, caption, exists_question, iter_scenes, parse_caption,
    parse_prompt, prompt, render, sample_question,
)

PERTURBATIONS = ("none", "jitter", "antialias", "jpeg")
TASKS = ("t2i", "caption", "vqa", "yesno")
POPE_SETTINGS = ("random", "adversarial")
BASE_JITTER = 3  # pixels, as in training
PERTURB_JITTER = 5  # "jitter": more than training used (clamped to the cell by `render`)
JPEG_QUALITY = 75
FULL_CAPTION_EVERY = 4  # every 4th T2I prompt is the full canonical caption; the rest drop words at random
SWEEP_STEPS = (1, 2, 4, 8, 16, 32)
SWEEP_TOLERANCE = 0.01  # the defaults should lose under 1 point against the best
SWEEP_GUIDANCE = (1.0, 1.5, 2.0, 3.0, 4.5)  # --t2i-sweep, at the default image steps
SWEEP_IMAGE_STEPS = (15, 25, 40)  # --t2i-sweep, at the default guidance


# GenEval category -> (which prompts it scores, the attributes each asked object must get right).
# Every category also needs exactly the asked number of objects.
T2I_CATEGORIES: dict[str, tuple[Callable[[list[dict]], bool], tuple[str, ...]]] = {
    "single_object": (lambda spec: len(spec) == 1, ("color", "shape")),
    "two_objects": (lambda spec: len(spec) == 2, ("color", "shape")),
    "counting": (lambda spec: len(spec) >= 2, ()),
    "colors": (lambda spec: True, ("color",)),
    "position": (lambda spec: all(s["cell"] is not None for s in spec), ("color", "shape", "cell")),
    "attribute_binding": (lambda spec: len(spec) == 2 and spec[0]["color"] != spec[1]["color"]
                          and spec[0]["shape"] != spec[1]["shape"], ("color", "shape")),
}


# ----------------------------------------------------------------------------- items

def t2i_prompts(n: int, seed: int = BENCHMARK_SEED) -> list[str]:
    """Prompts from the first `n` benchmark scenes: some full captions, the rest with size/position dropped."""
    rng = np.random.default_rng([seed, 1])
    return [caption(s) if i % FULL_CAPTION_EVERY == 0 else prompt(s, rng)
            for i, s in enumerate(iter_scenes(seed, n))]


def benchmark_input(scene: Scene, index: int, seed: int = BENCHMARK_SEED, perturb: str = "none") -> Image.Image:
    """The render of benchmark scene `index` fed to captioning and VQA, changed by `perturb`.

    Every perturbation but "jitter" keeps the base render's object positions.
    """
    if perturb not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {perturb!r}; choose one of {PERTURBATIONS}")
    jitter = perturb == "jitter"
    rng = np.random.default_rng([seed, 3 if jitter else 2, index])  # fresh draws for "jitter" only
    image = render(scene, rng, jitter=PERTURB_JITTER if jitter else BASE_JITTER, antialias=perturb == "antialias")
    if perturb == "jpeg":
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=JPEG_QUALITY)
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return image


def benchmark_images(n: int, seed: int = BENCHMARK_SEED, perturb: str = "none") -> tuple[list[Scene], list]:
    """The first `n` benchmark scenes and their (perturbed) renders."""
    scenes = list(iter_scenes(seed, n))
    return scenes, [benchmark_input(s, i, seed, perturb) for i, s in enumerate(scenes)]


def benchmark_questions(scenes: list[Scene], seed: int = BENCHMARK_SEED) -> list[tuple[str, str, str]]:
    """One (question, answer, qtype) per scene."""
    rng = np.random.default_rng([seed, 4])
    return [sample_question(s, rng) for s in scenes]


def yes_no_probes(scenes: list[Scene], seed: int = BENCHMARK_SEED, setting: str = "random") -> list[tuple[str, str]]:
    """POPE-style (question, answer) probes, one per scene, "yes" on even items and "no" on odd ones.

    A "yes" asks about a colour-shape pair in the scene. A "no" asks about an absent pair drawn from all
    absent pairs ("random") or from those sharing the colour or the shape of an object in the scene
    ("adversarial", like POPE's co-occurring objects; all absent pairs when none does).
    """
    if setting not in POPE_SETTINGS:
        raise ValueError(f"unknown POPE setting {setting!r}; choose one of {POPE_SETTINGS}")
    rng = np.random.default_rng([seed, 5, POPE_SETTINGS.index(setting)])
    probes = []
    for index, scene in enumerate(scenes):
        present = sorted({(o.color, o.shape) for o in scene.objects})
        if index % 2 == 0:
            pairs, answer = present, "yes"
        else:
            pairs, answer = absent_pairs(scene, near=setting == "adversarial"), "no"
        color, shape = pairs[int(rng.integers(len(pairs)))]
        probes.append((exists_question(color, shape), answer))
    return probes


# ----------------------------------------------------------------------------- helpers

def words(text: str) -> str:
    """Lower-cased text split on whitespace and punctuation, joined by single spaces."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den else None


def _mean(flags: list[bool]) -> float | None:
    return _ratio(sum(flags), len(flags))


def _score(flags: list[bool]) -> dict:
    return {"accuracy": _mean(flags), "n": len(flags)}


def _run_batches(fn: Callable, columns: tuple[list, ...], batch: int, seed: int, desc: str) -> list:
    """`fn(*column_chunks, generator=...)` over batches of the columns, one seeded generator per batch."""
    out, total = [], len(columns[0])
    with tqdm(total=total, desc=desc, leave=False) as bar:
        for index, start in enumerate(range(0, total, batch)):
            chunks = [list(c[start:start + batch]) for c in columns]
            out.extend(fn(*chunks, generator=torch.Generator().manual_seed(seed + index)))
            bar.update(len(chunks[0]))
    return out


def _text_settings(pipe, task: str, steps: int | None, sampler: str | None) -> tuple[int, str]:
    """Steps and sampler of ``task`` ("caption" or "answer"): the given ones, else the model's defaults."""
    d = pipe.defaults
    default_steps, default_sampler = {"caption": (d.caption_steps, d.caption_sampler),
                                      "answer": (d.answer_steps, d.answer_sampler)}[task]
    return (default_steps if steps is None else steps), (sampler or default_sampler)


def _answers(pipe, images: list, questions: list[str], batch: int, seed: int, steps: int, sampler: str,
             desc: str) -> list[str]:
    """The model's answer to each (image, question) pair, in seeded batches."""
    return _run_batches(lambda i, q, generator: pipe.answer(i, q, num_inference_steps=steps, sampler=sampler,
                                                            generator=generator).text,
                        (images, questions), batch, seed, desc)


def _holds(scene: Scene | None, spec: list[dict], keys: tuple[str, ...]) -> bool:
    """Exactly the asked number of objects, paired so that each agrees with its request on `keys`."""
    return pairs_up(scene, spec, lambda o, want: all(getattr(o, k) == want[k] for k in keys))


def _is_caption_of(text: str, scene: Scene) -> bool:
    try:
        return parse_caption(text) == scene
    except ValueError:  # not a canonical caption
        return False


def cider(candidates: list[str], references: list[str]) -> float:
    """Corpus CIDEr (pycocoevalcap, one reference each) on `words`-tokenised text; needs no Java."""
    gts = {i: [words(r)] for i, r in enumerate(references)}
    res = {i: [words(c)] for i, c in enumerate(candidates)}
    return float(Cider().compute_score(gts, res)[0])


# ----------------------------------------------------------------------------- tasks

def evaluate_t2i(pipe, n: int = 200, batch: int = 32, seed: int = BENCHMARK_SEED, steps: int | None = None,
                 guidance_scale: float | None = None) -> dict:
    """Generate one image per benchmark prompt and score it per GenEval category and overall."""
    d = pipe.defaults
    steps = d.image_steps if steps is None else steps
    guidance_scale = d.guidance_scale if guidance_scale is None else guidance_scale
    prompts = t2i_prompts(n, seed)
    images = _run_batches(lambda p, generator: pipe(p, generator=generator, num_inference_steps=steps,
                                                    guidance_scale=guidance_scale).images,
                          (prompts,), batch, seed, f"t2i {steps} steps, guidance {guidance_scale}")
    specs, read = [parse_prompt(p) for p in prompts], [read_scene(i) for i in images]
    categories = {name: _score([_holds(r, s, keys) for r, s in zip(read, specs) if selects(s)])
                  for name, (selects, keys) in T2I_CATEGORIES.items()}
    scored = [c["accuracy"] for c in categories.values() if c["accuracy"] is not None]
    return {"n": n, "settings": {"steps": steps, "guidance_scale": guidance_scale},
            "categories": categories, "overall": _mean([matches(r, s) for r, s in zip(read, specs)]),
            "geneval_mean": _ratio(sum(scored), len(scored))}


def evaluate_caption(pipe, n: int = 200, batch: int = 32, seed: int = BENCHMARK_SEED, perturb: str = "none",
                     steps: int | None = None, sampler: str | None = None) -> dict:
    """Caption benchmark renders: exact-scene match (unparseable is wrong) and CIDEr."""
    steps, sampler = _text_settings(pipe, "caption", steps, sampler)
    scenes, images = benchmark_images(n, seed, perturb)
    texts = _run_batches(lambda i, generator: pipe.caption(i, num_inference_steps=steps, sampler=sampler,
                                                           generator=generator).text,
                         (images,), batch, seed, f"caption {sampler} {steps}")
    exact = _mean([_is_caption_of(t, s) for t, s in zip(texts, scenes)])
    return {"n": n, "settings": {"steps": steps, "sampler": sampler, "perturb": perturb},
            "exact": exact, "cider": cider(texts, [caption(s) for s in scenes])}


def evaluate_vqa(pipe, n: int = 200, batch: int = 32, seed: int = BENCHMARK_SEED, perturb: str = "none",
                 steps: int | None = None, sampler: str | None = None) -> dict:
    """Answer one question per benchmark render: accuracy per type and overall."""
    steps, sampler = _text_settings(pipe, "answer", steps, sampler)
    scenes, images = benchmark_images(n, seed, perturb)
    questions, answers, qtypes = zip(*benchmark_questions(scenes, seed))
    texts = _answers(pipe, images, questions, batch, seed, steps, sampler, f"vqa {sampler} {steps}")
    predicted = [words(t) for t in texts]
    correct = [p == a for p, a in zip(predicted, answers)]
    per_type = {qtype: _score([c for c, t in zip(correct, qtypes) if t == qtype]) for qtype in QTYPES}
    return {"n": n, "settings": {"steps": steps, "sampler": sampler, "perturb": perturb},
            "per_type": per_type, "overall": _mean(correct)}


def evaluate_yes_no(pipe, n: int = 200, batch: int = 32, seed: int = BENCHMARK_SEED, perturb: str = "none",
                    steps: int | None = None, sampler: str | None = None) -> dict:
    """POPE-style yes/no on balanced probes (``yes_no_probes``): accuracy, precision, recall, F1 and the
    share of "yes" answers, per setting. Chance is 0.5; always "yes" scores 0.5 with yes ratio 1."""
    steps, sampler = _text_settings(pipe, "answer", steps, sampler)
    scenes, images = benchmark_images(n, seed, perturb)
    out = {"n": n, "settings": {"steps": steps, "sampler": sampler, "perturb": perturb}}
    for setting in POPE_SETTINGS:
        questions, answers = zip(*yes_no_probes(scenes, seed, setting))
        texts = _answers(pipe, images, questions, batch, seed, steps, sampler, f"yes/no {setting}")
        said = [words(t) == "yes" for t in texts]
        truth = [a == "yes" for a in answers]
        true_yes = sum(p and g for p, g in zip(said, truth))
        precision, recall = _ratio(true_yes, sum(said)), _ratio(true_yes, sum(truth))
        f1 = None if None in (precision, recall) else (_ratio(2 * precision * recall, precision + recall) or 0.0)
        out[setting] = {"accuracy": _mean([words(t) == a for t, a in zip(texts, answers)]), "precision": precision,
                        "recall": recall, "f1": f1, "yes_ratio": _mean(said)}
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


# ----------------------------------------------------------------------------- report

def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    """Plain-text table, columns right-aligned, a rule under the header."""
    cells = [header] + rows
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths)] + lines[1:])


def _scored_table(scores: dict[str, dict], extra: dict[str, float | None]) -> str:
    """One column per group ({"accuracy", "n"}) and per extra accuracy; rows accuracy % and n."""
    accuracy = [_pct(s["accuracy"]) for s in scores.values()] + [_pct(v) for v in extra.values()]
    count = [str(s["n"]) for s in scores.values()] + [""] * len(extra)
    return table([""] + list(scores) + list(extra), [["accuracy (%)"] + accuracy, ["n"] + count])


def report(results: dict) -> str:
    """The printed tables (a title line above each) for whatever `results` holds."""
    out = []
    if "t2i" in results:
        r = results["t2i"]
        out.append(("T2I prompt following (GenEval categories)", _scored_table(
            r["categories"], {"overall": r["overall"], "geneval_mean": r["geneval_mean"]})))
    if "caption" in results:
        r = results["caption"]
        out.append(("Captioning", table(["exact (%)", "CIDEr"], [[_pct(r["exact"]), f"{r['cider']:.3f}"]])))
    if "vqa" in results:
        r = results["vqa"]
        out.append(("VQA accuracy by question type", _scored_table(r["per_type"], {"overall": r["overall"]})))
    if "yesno" in results:
        r = results["yesno"]
        out.append((f"Yes/no, POPE-style balanced probes (n={r['n']} per setting, %)", table(
            ["setting", "accuracy", "precision", "recall", "F1", "yes ratio"],
            [[s] + [_pct(r[s][k]) for k in ("accuracy", "precision", "recall", "f1", "yes_ratio")]
             for s in POPE_SETTINGS])))
    if "speed" in results:
        s = results["speed"]["seconds_per_item"]
        out.append((f"Seconds per item (batch 1, model defaults, median of {results['speed']['items']})",
                    table(list(s), [[f"{v:.3f}" for v in s.values()]])))
    if "sweep" in results:
        rows, fewest = results["sweep"]["rows"], results["sweep"]["fewest_steps"]
        steps = sorted({r["steps"] for r in rows})
        acc = {(r["task"], r["sampler"], r["steps"]): r["accuracy"] for r in rows}
        body = [[f"{t} {s}"] + [_pct(acc.get((t, s, k))) for k in steps] + [str(fewest[t][s])]
                for t, s in sorted({(r["task"], r["sampler"]) for r in rows})]
        out.append(("Accuracy (%) against text steps (caption: exact, vqa: overall)",
                    table(["task sampler"] + [str(k) for k in steps] + ["fewest losing < 1 pt"], body)))
    if "t2i_sweep" in results:
        body = [[str(r["steps"]), f"{r['guidance_scale']:g}", _pct(r["overall"]), _pct(r["geneval_mean"])]
                for r in results["t2i_sweep"]["rows"]]
        out.append(("T2I against image steps and guidance (%)",
                    table(["steps", "guidance", "overall", "geneval_mean"], body)))
    return "\n\n".join(f"{title}\n{body}" for title, body in out)


def settings_line(pipe, args: argparse.Namespace) -> str:
    """The settings printed above the tables."""
    d = pipe.defaults
    caption_steps, caption_sampler = _text_settings(pipe, "caption", args.caption_steps, args.caption_sampler)
    answer_steps, answer_sampler = _text_settings(pipe, "answer", args.answer_steps, args.answer_sampler)
    return (f"model {args.model} | device {pipe.device} | n {args.n} | batch {args.batch} | "
            f"perturb {args.perturb} | seed {args.seed}\n"
            f"t2i: steps {d.image_steps}, guidance {d.guidance_scale} | "
            f"caption: sampler {caption_sampler}, steps {caption_steps} | "
            f"vqa: sampler {answer_sampler}, steps {answer_steps}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m train.eval", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="pipeline folder")
    parser.add_argument("--n", type=int, default=200, help="items per task (default 200)")
    parser.add_argument("--batch", type=int, default=32, help="batch size for the accuracy runs")
    parser.add_argument("--perturb", choices=PERTURBATIONS, default="none", help="how caption/VQA inputs are rendered")
    parser.add_argument("--sweep", action="store_true", help="accuracy against text steps, per sampler")
    parser.add_argument("--t2i-sweep", action="store_true", help="T2I against guidance and image steps")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated subset of " + ",".join(TASKS))
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
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    return parser


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print the tables, optionally write JSON; returns the results."""
    from ddit.pipeline import DualDiffusionPipeline

    parser = build_parser()
    args = parser.parse_args(argv)
    tasks = tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    if not tasks or set(tasks) - set(TASKS):
        parser.error(f"--tasks must name some of {', '.join(TASKS)}, got {args.tasks!r}")
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
    if args.speed_items > 0:
        timed = tuple(name for task, name in zip(TASKS, ("image", "caption", "answer")) if task in tasks)
        results["speed"] = measure_speed(pipe, args.speed_items, args.seed, timed)
    text_tasks = tuple(t for t in ("caption", "vqa") if t in tasks)
    if args.sweep and text_tasks:
        results["sweep"] = sweep_text_steps(pipe, **common, perturb=args.perturb, tasks=text_tasks)
    if args.t2i_sweep and "t2i" in tasks:
        results["t2i_sweep"] = sweep_t2i(pipe, **common)
    print("\n" + report(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
        print(f"\nwrote {args.json}")
    return results


if __name__ == "__main__":
    main()
