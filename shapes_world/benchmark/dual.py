"""What only a dual diffusion model can do, measured on the benchmark's scenes: in-filling, scoring, in-painting and
revisable text (``--tasks infill,score,inpaint,revise``).

- in-fill: each scene's true caption with 1-3 of its attribute words (colour, shape, size) blanked; how often the
  filled caption is exactly the true one, beside a plain caption of the same images, and how many rows changed a
  given word (must be 0);
- score: the true caption among 3 distractors that each change one attribute of one object (texts for the image),
  and the true render among the 3 distractors' renders (images for the caption); top-1 accuracy against passes per
  candidate;
- inpaint: a two-object scene with one object's cell repainted to the caption with that object's colour or shape
  changed; success = the render reads back as the changed scene exactly, and the kept region's mean error (/255),
  as returned (pasted) and as decoded;
- revise: caption and VQA accuracy and passes per item, the ``"remask"`` sampler beside ``"confidence"``.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

from ..judge import read_scene
from ..language import caption
from ..render import render
from ..scene import BENCHMARK_SEED, COLORS, IMAGE_SIZE, SHAPES, SIZES, Scene, ShapeObject, sample_scene
from .items import benchmark_images
from .tasks import evaluate_caption, evaluate_vqa

ATTRIBUTES = {"color": list(COLORS), "shape": list(SHAPES), "size": list(SIZES)}
SCORE_PASSES = (1, 2, 4, 8, 16)
REVISE_STEPS = (2, 4, 8, 16)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def changed(scene: Scene, index: int, attribute: str, value: str) -> Scene:
    """``scene`` with one attribute of object ``index`` set to ``value``."""
    new = ShapeObject(**{**scene.objects[index].__dict__, attribute: value})
    return Scene(tuple(new if j == index else o for j, o in enumerate(scene.objects)))


def distractors(scene: Scene, rng: np.random.Generator, m: int = 3) -> list[Scene]:
    """``m`` scenes that each change one attribute of one object of ``scene`` (all captions distinct)."""
    out, seen = [], {caption(scene)}
    while len(out) < m:
        attribute = list(ATTRIBUTES)[int(rng.integers(3))]
        values = ATTRIBUTES[attribute]
        other = changed(scene, int(rng.integers(len(scene.objects))), attribute, values[int(rng.integers(len(values)))])
        if caption(other) not in seen:
            seen.add(caption(other))
            out.append(other)
    return out


def evaluate_infill(pipe, n: int = 200, batch: int = 32, seed: int = BENCHMARK_SEED) -> dict:
    """In-fill exact match against a plain caption of the same renders; ``changed_given``: rows that changed a word
    of the template (must be 0)."""
    scenes, images = benchmark_images(n, seed)
    rng = np.random.default_rng([seed, 7])
    attributes = {w for values in ATTRIBUTES.values() for w in values}
    templates = []
    for scene in scenes:
        words = caption(scene).replace(",", " ,").split()
        blanks = set(rng.choice([i for i, w in enumerate(words) if w in attributes], size=int(rng.integers(1, 4))))
        templates.append(" ".join("_" if i in blanks else w for i, w in enumerate(words)))
    plain = exact = changed_given = 0
    for index, start in enumerate(tqdm(range(0, n, batch), desc="in-fill", leave=False)):
        rows = slice(start, start + batch)
        caps = pipe.caption(images[rows], generator=_generator(seed + index)).text
        fills = pipe.infill(images[rows], templates[rows], generator=_generator(seed + index)).text
        for scene, cap, fill, template in zip(scenes[rows], caps, fills, templates[rows]):
            plain, exact = plain + (cap == caption(scene)), exact + (fill == caption(scene))
            got, want = fill.replace(",", " ,").split(), template.split()
            changed_given += len(got) != len(want) or any(g != w for g, w in zip(got, want) if w != "_")
    return {"n": n, "exact": exact / n, "plain_caption_exact": plain / n, "changed_given": changed_given}


def evaluate_scoring(pipe, n: int = 200, seed: int = BENCHMARK_SEED, passes: tuple[int, ...] = SCORE_PASSES) -> dict:
    """Top-1 accuracy of ``score_texts`` (true caption among 4) and ``score_images`` (true render among 4) for each
    number of passes per candidate."""
    scenes, images = benchmark_images(n, seed)
    rows = []
    for k in passes:
        rng, texts_right, images_right = np.random.default_rng([seed, 8]), 0, 0
        for i, (scene, image) in enumerate(tqdm(list(zip(scenes, images)), desc=f"score {k}", leave=False)):
            wrong = distractors(scene, rng)
            texts = [caption(scene)] + [caption(w) for w in wrong]
            scores = pipe.score_texts(image, texts, num_samples=k, generator=_generator(seed + i)).scores
            texts_right += int(np.argmax(scores) == 0)
            renders = [image] + [render(w, np.random.default_rng([seed, 2, i])) for w in wrong]
            scores = pipe.score_images(texts[0], renders, num_samples=k, generator=_generator(seed + i)).scores
            images_right += int(np.argmax(scores) == 0)
        rows.append({"passes": k, "texts_top1": texts_right / n, "images_top1": images_right / n})
    return {"n": n, "candidates": 4, "rows": rows}


def cell_mask(cell: int, size: int = IMAGE_SIZE) -> Image.Image:
    """A grey mask, white over grid cell ``cell`` (the part to repaint)."""
    mask = Image.new("L", (size, size), 0)
    row, col = divmod(cell, 3)
    box = (round(col * size / 3), round(row * size / 3), round((col + 1) * size / 3) - 1,
           round((row + 1) * size / 3) - 1)
    ImageDraw.Draw(mask).rectangle(box, fill=255)
    return mask


def inpaint_items(n: int, seed: int) -> list[tuple[Image.Image, Image.Image, Scene]]:
    """(render of a two-object scene, mask over one object's cell, the scene with that object's colour or shape
    changed) for ``n`` scenes."""
    rng, items = np.random.default_rng([seed, 9]), []
    for i in range(n):
        scene = sample_scene(rng, 2)
        index, attribute = int(rng.integers(2)), ("color", "shape")[int(rng.integers(2))]
        values = [v for v in ATTRIBUTES[attribute] if v != getattr(scene.objects[index], attribute)]
        target = changed(scene, index, attribute, values[int(rng.integers(len(values)))])
        items.append((render(scene, np.random.default_rng([seed, 2, i])), cell_mask(scene.objects[index].cell),
                      target))
    return items


def evaluate_inpaint(pipe, n: int = 200, batch: int = 32, seed: int = BENCHMARK_SEED, **options) -> dict:
    """In-painting success (the repainted scene reads back as the target exactly: the changed object right and
    the kept one unchanged) and the kept region's mean absolute error per channel (/255), pasted and decoded."""
    items, right, errors = inpaint_items(n, seed), 0, {"pasted": [], "decoded": []}
    for index, start in enumerate(tqdm(range(0, n, batch), desc="in-paint", leave=False)):
        chunk = items[start:start + batch]
        images, masks, targets = (list(c) for c in zip(*chunk))
        for state in pipe.iter_inpaint(images, masks, [caption(t) for t in targets],
                                       generator=_generator(seed + index), **options):
            pass
        for paste in (True, False):
            outs = pipe.decode_inpainted(state.latents, images, masks, paste_kept=paste)
            for out, image, mask, target in zip(outs, images, masks, targets):
                keep = np.asarray(mask) <= 127
                diff = np.abs(np.asarray(out).astype(float) - np.asarray(image).astype(float))
                errors["pasted" if paste else "decoded"].append(float(diff[keep].mean()))
                right += paste and read_scene(out) == target
    return {"n": n, "success": right / n, "kept_error_pasted": float(np.mean(errors["pasted"])),
            "kept_error_decoded": float(np.mean(errors["decoded"])), "settings": options}


def evaluate_revise(pipe, n: int = 200, batch: int = 32, seed: int = BENCHMARK_SEED,
                    steps: tuple[int, ...] = REVISE_STEPS, perturb: str = "none") -> dict:
    """Caption exact match and VQA overall accuracy with passes per item, ``"remask"`` beside ``"confidence"``,
    at each number of steps (the model's other decoding options)."""
    rows = []
    for task, evaluate, key in (("caption", evaluate_caption, "exact"), ("vqa", evaluate_vqa, "overall")):
        for k in steps:
            for sampler in ("confidence", "remask"):
                r = evaluate(pipe, n, batch, seed, perturb, steps=k, sampler=sampler)
                rows.append({"task": task, "steps": k, "sampler": sampler, "accuracy": r[key],
                             "forward_passes": r["forward_passes"]})
    return {"n": n, "perturb": perturb, "rows": rows}
