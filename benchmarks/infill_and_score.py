"""In-filling and scoring on held-out Shapes-World scenes, with the bundled model (or any Shapes-World model).

    python benchmarks/infill_and_score.py [--model ddit-shapes] [--seed 12345] [--n 200] [--samples 1,2,4,8,16]

- In-fill: each scene's true caption with 1-3 of its attribute words (colour, shape, size) blanked; how often the
  filled caption is exactly the true one, beside a plain caption of the same images, and how many rows changed a
  given word (must be 0).
- Scoring: the true caption among 3 distractors that each change one attribute of one object (texts for the
  image), and the true render among the 3 distractors' renders (images for the caption); top-1 accuracy for each
  ``--samples`` value (transformer passes per candidate).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repo root: run from a clone
import shapes_world as sw  # noqa: E402
from ddit import DualDiffusionPipeline  # noqa: E402
from shapes_world.scene import Scene, ShapeObject  # noqa: E402

ATTRIBUTES = {"color": list(sw.COLORS), "shape": list(sw.SHAPES), "size": list(sw.SIZES)}


def distractors(scene: Scene, rng: np.random.Generator, m: int = 3) -> list[Scene]:
    """``m`` scenes that each change one attribute of one object of ``scene`` (all captions distinct)."""
    out, seen = [], {sw.caption(scene)}
    while len(out) < m:
        i = int(rng.integers(len(scene.objects)))
        attr = list(ATTRIBUTES)[int(rng.integers(3))]
        value = ATTRIBUTES[attr][int(rng.integers(len(ATTRIBUTES[attr])))]
        new = ShapeObject(**{**scene.objects[i].__dict__, attr: value})
        other = Scene(tuple(new if j == i else o for j, o in enumerate(scene.objects)))
        if sw.caption(other) not in seen:
            seen.add(sw.caption(other))
            out.append(other)
    return out


def infill(pipe, scenes: list[Scene], images: list, rng: np.random.Generator, batch: int = 32) -> str:
    words_of = [sw.caption(s).replace(",", " ,").split() for s in scenes]
    attributes = {w for values in ATTRIBUTES.values() for w in values}
    templates = []
    for words in words_of:
        blanks = set(rng.choice([i for i, w in enumerate(words) if w in attributes], size=int(rng.integers(1, 4))))
        templates.append(" ".join("_" if i in blanks else w for i, w in enumerate(words)))
    plain = exact = changed = 0
    for b in range(0, len(scenes), batch):
        rows = slice(b, b + batch)
        caps = pipe.caption(images[rows], generator=torch.Generator().manual_seed(b)).text
        fills = pipe.infill(images[rows], templates[rows], generator=torch.Generator().manual_seed(b)).text
        for scene, cap, fill, template in zip(scenes[b:b + batch], caps, fills, templates[b:b + batch]):
            plain, exact = plain + (cap == sw.caption(scene)), exact + (fill == sw.caption(scene))
            got, want = fill.replace(",", " ,").split(), template.split()
            changed += len(got) != len(want) or any(g != w for g, w in zip(got, want) if w != "_")
    n = len(scenes)
    return (f"in-fill (1-3 attribute words blanked): exact {100 * exact / n:.1f} % | plain caption exact "
            f"{100 * plain / n:.1f} % | rows with a given word changed: {changed}")


def scoring(pipe, scenes: list[Scene], images: list, rng: np.random.Generator, samples: int) -> str:
    right_texts = right_images = 0
    for i, (scene, image) in enumerate(zip(scenes, images)):
        wrong = distractors(scene, rng)
        texts = [sw.caption(scene)] + [sw.caption(w) for w in wrong]
        generator = torch.Generator().manual_seed(i)
        scores = pipe.score_texts(image, texts, num_samples=samples, generator=generator).scores
        right_texts += int(np.argmax(scores) == 0)
        renders = [image] + [sw.render(w, np.random.default_rng(i)) for w in wrong]
        generator = torch.Generator().manual_seed(i)
        right_images += int(np.argmax(pipe.score_images(texts[0], renders, num_samples=samples,
                                                        generator=generator).scores) == 0)
    n = len(scenes)
    return f"scoring, {samples} passes per candidate: texts top-1 {100 * right_texts / n:.1f} %, images top-1 " \
           f"{100 * right_images / n:.1f} %"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="ddit-shapes")
    parser.add_argument("--seed", type=int, default=12345, help="scenes (held-out: not the training or benchmark seed)")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--samples", default="1,2,4,8,16", help="passes per candidate to score with, comma-separated")
    args = parser.parse_args()
    pipe = DualDiffusionPipeline.from_pretrained(args.model, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    scenes = list(sw.iter_scenes(args.seed, args.n))
    images = [sw.render(s, np.random.default_rng(i)) for i, s in enumerate(scenes)]
    print(f"model {args.model} | seed {args.seed} | n {args.n} | {torch.get_num_threads()} threads")
    began = time.perf_counter()
    print(infill(pipe, scenes, images, np.random.default_rng(args.seed)), f"({time.perf_counter() - began:.0f} s)")
    for samples in (int(k) for k in args.samples.split(",")):
        began = time.perf_counter()
        print(scoring(pipe, scenes, images, np.random.default_rng(args.seed), samples),
              f"({time.perf_counter() - began:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
