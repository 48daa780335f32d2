"""The language of Shapes-World: canonical captions, short prompts, and parsing both back."""

from __future__ import annotations

import re

import numpy as np

from .scene import CELL_PHRASES, COLORS, MAX_OBJECTS, SHAPES, SIZES, Scene, ShapeObject


def article(word: str) -> str:
    """"a" or "an" before ``word``."""
    return "an" if word[0] in "aeiou" else "a"


def _phrase(obj: ShapeObject, with_size: bool = True, with_position: bool = True) -> str:
    words = ([obj.size] if with_size else []) + [obj.color, obj.shape]
    if with_position:
        words.append(CELL_PHRASES[obj.cell])
    return f"{article(words[0])} {' '.join(words)}"


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


NUMBERS = {"two": 2, "three": 3}
_COUNTED = re.compile(r"(?P<n>{numbers}) (?P<attrs>(?:(?:{sizes}) )?(?:(?:{colors}) )?)(?P<shape>{shapes})s".format(
    numbers="|".join(NUMBERS), sizes="|".join(SIZES), colors="|".join(COLORS), shapes="|".join(SHAPES)))


def spell_out_counts(text: str) -> str | None:
    """The prompt with counted plurals written the way the captions say them ("two red squares" -> "a red square
    and a red square"), or None when it has none or the result is not a prompt the grammar takes."""
    norm = " ".join(text.strip().lower().split())
    head, sep, last = norm.rpartition(" and ")
    chunks = (head.split(", ") + [last]) if sep else [norm]
    parts, counted = [], False
    for chunk in chunks:
        match = _COUNTED.fullmatch(chunk)
        if match is None:
            parts.append(chunk)
            continue
        counted = True
        words = f"{match['attrs']}{match['shape']}"
        parts += [f"{article(words)} {words}"] * NUMBERS[match["n"]]
    if not counted or len(parts) > MAX_OBJECTS:
        return None
    rewritten = _join(parts)
    try:
        parse_prompt(rewritten)
    except ValueError:
        return None
    return rewritten
