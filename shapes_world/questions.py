"""Questions about a Shapes-World scene whose answers are unambiguous, and how training samples them."""

from __future__ import annotations

import numpy as np

from .language import article
from .scene import CELL_NAMES, COLORS, NUMBER_WORDS, QTYPES, SHAPES, Scene, ShapeObject


def _count(scene: Scene, **attrs: str) -> list[ShapeObject]:
    return [o for o in scene.objects if all(getattr(o, k) == v for k, v in attrs.items())]


def exists_question(color: str, shape: str) -> str:
    """The yes/no question about a colour-shape pair: "is there a red circle?"."""
    return f"is there {article(color)} {color} {shape}?"


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
