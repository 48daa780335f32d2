"""Shapes-World scenes: the vocabulary of the world and how scenes are sampled (docs/design.md §4.1).

A scene is 1-3 coloured shapes, each in its own cell of a 3x3 grid on a 64x64 white canvas.
Pure numpy, no torch: every split is a pure function of a seed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

SHAPES = ("circle", "square", "triangle")
COLORS = {
    "red": (220, 40, 40),
    "orange": (245, 140, 30),
    "yellow": (240, 210, 40),
    "green": (40, 170, 70),
    "blue": (40, 90, 220),
    "purple": (150, 60, 190),
}
SIZES = {"small": 10, "large": 18}  # bounding-box side in pixels at IMAGE_SIZE
CELL_PHRASES = (
    "at the top left", "at the top", "at the top right",
    "on the left", "in the center", "on the right",
    "at the bottom left", "at the bottom", "at the bottom right",
)  # by cell index, row-major
CELL_NAMES = (
    "top left", "top", "top right",
    "left", "center", "right",
    "bottom left", "bottom", "bottom right",
)  # short answers to "where" questions
NUMBER_WORDS = ("zero", "one", "two", "three")
QTYPES = ("color", "shape", "count", "color_count", "exists", "position", "size")
IMAGE_SIZE = 64
BACKGROUND = (255, 255, 255)
MAX_OBJECTS = 3
TRAIN_SEED = 20_240_601  # training scenes
BENCHMARK_SEED = 77_000_003  # held-out benchmark scenes; never used for training


@dataclass(frozen=True)
class ShapeObject:
    shape: str
    color: str
    size: str
    cell: int  # 0..8, row-major over the 3x3 grid


@dataclass(frozen=True)
class Scene:
    objects: tuple[ShapeObject, ...]  # always in reading order (cell ascending)

    def __post_init__(self) -> None:
        cells = [o.cell for o in self.objects]
        if any(a >= b for a, b in zip(cells, cells[1:])):
            raise ValueError(f"objects must be in distinct cells in reading order, got {cells}")


def sample_scene(rng: np.random.Generator, n_objects: int | None = None) -> Scene:
    """Sample 1-3 objects (or exactly `n_objects`), each in a distinct cell."""
    n = int(rng.integers(1, MAX_OBJECTS + 1)) if n_objects is None else n_objects
    if not 1 <= n <= MAX_OBJECTS:
        raise ValueError(f"n_objects must be in 1..{MAX_OBJECTS}, got {n}")
    cells = sorted(int(c) for c in rng.choice(9, size=n, replace=False))
    colors = list(COLORS)
    sizes = list(SIZES)
    objects = tuple(
        ShapeObject(
            shape=SHAPES[int(rng.integers(len(SHAPES)))],
            color=colors[int(rng.integers(len(colors)))],
            size=sizes[int(rng.integers(len(sizes)))],
            cell=cell,
        )
        for cell in cells
    )
    return Scene(objects)


def iter_scenes(seed: int, n: int | None = None) -> Iterator[Scene]:
    """Yield `n` scenes (forever if None) from `np.random.default_rng(seed)`."""
    rng = np.random.default_rng(seed)
    i = 0
    while n is None or i < n:
        yield sample_scene(rng)
        i += 1
