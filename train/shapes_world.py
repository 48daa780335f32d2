"""Shapes-World: the procedurally generated built-in domain (design.md section 4).

A scene is 1-3 coloured shapes, each in its own cell of a 3x3 grid on a 64x64 white
canvas. This module samples scenes, renders them, writes canonical captions and short
prompts, parses both back, and poses questions whose answers are unambiguous.
Pure numpy + PIL, no torch: every split is a pure function of a seed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

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


# ----------------------------------------------------------------------------- render

def _object_box(obj: ShapeObject, rng: np.random.Generator | None, jitter: int,
                size: int) -> tuple[int, int, int]:
    """Top-left corner and side (pixels) of an object's bounding box.

    The jitter is clamped so that the box stays inside its cell: objects in different
    cells never touch, so each scene has exactly one reading.
    """
    scale = size / IMAGE_SIZE
    side = max(2, round(SIZES[obj.size] * scale))
    cell_w = size / 3
    row, col = divmod(obj.cell, 3)
    jx, jy = (rng.integers(-jitter, jitter + 1, size=2) if rng is not None and jitter > 0
              else (0, 0))
    corners = []
    for index, j in ((col, jx), (row, jy)):
        lo = int(np.ceil(index * cell_w))
        hi = int(np.floor((index + 1) * cell_w)) - side  # last corner that still fits
        start = round((index + 0.5) * cell_w - side / 2 + int(j) * scale)
        corners.append(min(max(start, lo), max(lo, hi)))
    return corners[0], corners[1], side


def _draw(draw: ImageDraw.ImageDraw, obj: ShapeObject, x: int, y: int, side: int,
          k: int) -> None:
    """Draw one object whose box is [x, x + side) x [y, y + side), at supersampling k."""
    x0, y0, x1, y1 = x * k, y * k, (x + side) * k - 1, (y + side) * k - 1
    fill = COLORS[obj.color]
    if obj.shape == "circle":
        draw.ellipse((x0, y0, x1, y1), fill=fill)
    elif obj.shape == "square":
        draw.rectangle((x0, y0, x1, y1), fill=fill)
    elif obj.shape == "triangle":  # upright isosceles, apex up
        draw.polygon([(x0, y1), (x1, y1), ((x0 + x1) / 2, y0)], fill=fill)
    else:
        raise ValueError(f"unknown shape {obj.shape!r}")


def render(scene: Scene, rng: np.random.Generator | None = None, jitter: int = 3,
           antialias: bool = False, size: int = IMAGE_SIZE) -> Image.Image:
    """Render a scene as a `size` x `size` RGB image on a white background.

    Objects are centred in their cells and shifted by up to `jitter` pixels (none when
    `rng` is None). `antialias=True` draws at 4x and downsamples with LANCZOS.
    """
    k = 4 if antialias else 1
    image = Image.new("RGB", (size * k, size * k), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for obj in scene.objects:
        x, y, side = _object_box(obj, rng, jitter, size)
        _draw(draw, obj, x, y, side, k)
    if antialias:
        image = image.resize((size, size), Image.LANCZOS)
    return image


# ---------------------------------------------------------------- captions and prompts

def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _phrase(obj: ShapeObject, with_size: bool = True, with_position: bool = True) -> str:
    words = ([obj.size] if with_size else []) + [obj.color, obj.shape]
    if with_position:
        words.append(CELL_PHRASES[obj.cell])
    return f"{_article(words[0])} {' '.join(words)}"


def _join(parts: list[str]) -> str:
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def caption(scene: Scene) -> str:
    """Canonical caption: every object with size, colour, shape and position, in reading order."""
    return _join([_phrase(obj) for obj in scene.objects])


def prompt(scene: Scene, rng: np.random.Generator, p_drop_size: float = 0.3,
           p_drop_position: float = 0.3) -> str:
    """A caption with each object's size and/or position dropped at random."""
    parts = []
    for obj in scene.objects:
        keep_size = rng.random() >= p_drop_size
        keep_position = rng.random() >= p_drop_position
        parts.append(_phrase(obj, keep_size, keep_position))
    return _join(parts)


_OBJECT_RE = re.compile(
    r"an? (?:(?P<size>{sizes}) )?(?P<color>{colors}) (?P<shape>{shapes})(?: (?P<pos>{pos}))?".format(
        sizes="|".join(SIZES), colors="|".join(COLORS), shapes="|".join(SHAPES),
        pos="|".join(sorted(CELL_PHRASES, key=len, reverse=True)),
    )
)


def parse_prompt(text: str) -> list[dict]:
    """Parse a prompt into per-object dicts {shape, color, size or None, cell or None}.

    Accepts "x", "x and y" and "x, y and z"; raises ValueError on anything else.
    """
    norm = " ".join(text.strip().lower().split())
    head, sep, last = norm.rpartition(" and ")
    chunks = (head.split(", ") + [last]) if sep else [norm]
    if not 1 <= len(chunks) <= MAX_OBJECTS:
        raise ValueError(f"a prompt names 1-{MAX_OBJECTS} objects: {text!r}")
    spec = []
    for chunk in chunks:
        m = _OBJECT_RE.fullmatch(chunk)
        if m is None:
            raise ValueError(f"cannot parse object phrase {chunk!r} in {text!r}")
        spec.append({
            "shape": m["shape"], "color": m["color"], "size": m["size"],
            "cell": CELL_PHRASES.index(m["pos"]) if m["pos"] else None,
        })
    cells = [s["cell"] for s in spec if s["cell"] is not None]
    if len(cells) != len(set(cells)):
        raise ValueError(f"two objects in the same cell: {text!r}")
    return spec


def parse_caption(text: str) -> Scene:
    """Exact inverse of `caption`; raises ValueError unless `text` is canonical."""
    spec = parse_prompt(text)
    if any(s["size"] is None or s["cell"] is None for s in spec):
        raise ValueError(f"a canonical caption gives every size and position: {text!r}")
    objects = [ShapeObject(s["shape"], s["color"], s["size"], s["cell"]) for s in spec]
    scene = Scene(tuple(sorted(objects, key=lambda o: o.cell)))
    if caption(scene) != " ".join(text.strip().lower().split()):
        raise ValueError(f"not a canonical caption (objects out of reading order?): {text!r}")
    return scene


# -------------------------------------------------------------------------- questions

def _count(scene: Scene, **attrs: str) -> list[ShapeObject]:
    return [o for o in scene.objects if all(getattr(o, k) == v for k, v in attrs.items())]


def exists_question(color: str, shape: str) -> str:
    """The yes/no question about a colour-shape pair: "is there a red circle?"."""
    return f"is there {_article(color)} {color} {shape}?"


def absent_pairs(scene: Scene, near: bool = False) -> list[tuple[str, str]]:
    """The (color, shape) pairs not in the scene; with ``near``, only those sharing the colour or the shape
    of an object in it (POPE's adversarial negatives), or all absent pairs when none does."""
    present = {(o.color, o.shape) for o in scene.objects}
    pairs = [(c, s) for c in COLORS for s in SHAPES if (c, s) not in present]
    if near:
        pairs = [(c, s) for c, s in pairs if any(c == pc or s == ps for pc, ps in present)] or pairs
    return pairs


def questions(scene: Scene) -> list[tuple[str, str, str]]:
    """All unambiguous (question, answer, qtype) triples for a scene, in a fixed order."""
    out = []
    for shape in SHAPES:
        found = _count(scene, shape=shape)
        if len(found) == 1:
            out.append((f"what color is the {shape}?", found[0].color, "color"))
    for color in COLORS:
        found = _count(scene, color=color)
        if len(found) == 1:
            out.append((f"what shape is the {color} object?", found[0].shape, "shape"))
    out.append(("how many shapes are there?", NUMBER_WORDS[len(scene.objects)], "count"))
    for color in COLORS:
        n = len(_count(scene, color=color))
        out.append((f"how many {color} shapes are there?", NUMBER_WORDS[n], "color_count"))
    for color in COLORS:
        for shape in SHAPES:
            found = _count(scene, color=color, shape=shape)
            out.append((exists_question(color, shape), "yes" if found else "no", "exists"))
    for color in COLORS:
        for shape in SHAPES:
            found = _count(scene, color=color, shape=shape)
            if len(found) == 1:
                out.append((f"where is the {color} {shape}?", CELL_NAMES[found[0].cell],
                            "position"))
                out.append((f"what size is the {color} {shape}?", found[0].size, "size"))
    return out


def sample_question(scene: Scene, rng: np.random.Generator, weights: dict[str, float] | None = None,
                    hard_negatives: float = 0.0) -> tuple[str, str, str]:
    """One question: qtype uniform over those available (or in proportion to ``weights``, a weight per
    qtype, 1 where missing), yes/no balanced for "exists".

    ``hard_negatives`` of the "no" answers ask about an absent pair that shares its colour or its shape
    with an object in the scene (like POPE's adversarial probes), so that binding must be read, not
    just the colours or the shapes present.

    "color_count" asks about a colour present in the scene half of the time, so that
    "zero" is not the answer to most of them.
    """
    by_type: dict[str, list[tuple[str, str, str]]] = {}
    for q in questions(scene):
        by_type.setdefault(q[2], []).append(q)
    available = [t for t in QTYPES if t in by_type]
    if weights is None:
        qtype = available[int(rng.integers(len(available)))]
    else:
        unknown = set(weights) - set(QTYPES)
        if unknown:
            raise ValueError(f"question weights for unknown type(s) {sorted(unknown)}; types: {QTYPES}")
        w = np.array([float(weights.get(t, 1.0)) for t in available])
        if (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"question weights must be >= 0 with a positive sum, got {weights}")
        qtype = available[int(rng.choice(len(available), p=w / w.sum()))]
    pool = by_type[qtype]
    if qtype == "exists":
        want = "yes" if rng.random() < 0.5 else "no"
        pool = [q for q in pool if q[1] == want]
        if want == "no" and hard_negatives > 0 and rng.random() < hard_negatives:  # no draw when off
            pool = [(exists_question(c, s), "no", "exists") for c, s in absent_pairs(scene, near=True)]
    elif qtype == "color_count":
        present = rng.random() < 0.5
        pool = [q for q in pool if (q[1] != "zero") == present]
    return pool[int(rng.integers(len(pool)))]
