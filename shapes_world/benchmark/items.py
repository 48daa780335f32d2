"""The benchmark's items: prompts, renders (optionally perturbed), questions and yes/no probes.

Items are pure functions of the benchmark seed (``BENCHMARK_SEED``; another seed gives a held-out set).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..language import caption, prompt
from ..questions import absent_pairs, exists_question, sample_question
from ..render import jpeg_round_trip, paint_palette, render
from ..scene import BENCHMARK_SEED, Scene, iter_scenes

PERTURBATIONS = ("none", "jitter", "antialias", "jpeg", "paint")
POPE_SETTINGS = ("random", "adversarial")
BASE_JITTER = 3  # pixels, as in training
PERTURB_JITTER = 5  # "jitter": more than training used (clamped to the cell by `render`)
JPEG_QUALITY = 75
FULL_CAPTION_EVERY = 4  # every 4th T2I prompt is the full canonical caption; the rest drop words at random


def t2i_prompts(n: int, seed: int = BENCHMARK_SEED) -> list[str]:
    """Prompts from the first `n` benchmark scenes: some full captions, the rest with size/position dropped."""
    rng = np.random.default_rng([seed, 1])
    return [caption(s) if i % FULL_CAPTION_EVERY == 0 else prompt(s, rng)
            for i, s in enumerate(iter_scenes(seed, n))]


def benchmark_input(scene: Scene, index: int, seed: int = BENCHMARK_SEED, perturb: str = "none") -> Image.Image:
    """The render of benchmark scene `index` fed to captioning and VQA, changed by `perturb`.

    Every perturbation but "jitter" keeps the base render's object positions. "paint" is a scene as a person
    would draw it: paint-program colours (``PAINT_COLORS``, each shade moved by up to 20 per channel), edges
    anti-aliased.
    """
    if perturb not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {perturb!r}; choose one of {PERTURBATIONS}")
    jitter = perturb == "jitter"
    rng = np.random.default_rng([seed, 3 if jitter else 2, index])  # fresh draws for "jitter" only
    paint = perturb == "paint"
    palette = paint_palette(np.random.default_rng([seed, 6, index])) if paint else None
    image = render(scene, rng, jitter=PERTURB_JITTER if jitter else BASE_JITTER,
                   antialias=perturb in ("antialias", "paint"), palette=palette)
    return jpeg_round_trip(image, JPEG_QUALITY) if perturb == "jpeg" else image


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
