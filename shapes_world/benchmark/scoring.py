"""How outputs are scored: GenEval-style categories for T2I, exact scenes and CIDEr for captions, words for
answers. Accuracies are fractions in [0, 1]; an empty category scores None.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pycocoevalcap.cider.cider import Cider

from ..judge import pairs_up
from ..language import parse_caption
from ..scene import Scene

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


def words(text: str) -> str:
    """Lower-cased text split on whitespace and punctuation, joined by single spaces."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def ratio(num: float, den: float) -> float | None:
    """num / den, or None for an empty denominator."""
    return float(num / den) if den else None


def mean_of(flags: list[bool]) -> float | None:
    """Share of True flags (None when there are none)."""
    return ratio(sum(flags), len(flags))


def score(flags: list[bool]) -> dict:
    """{"accuracy", "n"} of a group of right/wrong flags."""
    return {"accuracy": mean_of(flags), "n": len(flags)}


def holds(scene: Scene | None, spec: list[dict], keys: tuple[str, ...]) -> bool:
    """Exactly the asked number of objects, paired so that each agrees with its request on `keys`."""
    return pairs_up(scene, spec, lambda o, want: all(getattr(o, k) == want[k] for k in keys))


def is_caption_of(text: str, scene: Scene) -> bool:
    """Whether ``text`` is the canonical caption of ``scene`` (anything unparseable is wrong)."""
    try:
        return parse_caption(text) == scene
    except ValueError:  # not a canonical caption
        return False


def cider(candidates: list[str], references: list[str]) -> float:
    """Corpus CIDEr (pycocoevalcap, one reference each) on `words`-tokenised text; needs no Java."""
    gts = {i: [words(r)] for i, r in enumerate(references)}
    res = {i: [words(c)] for i, c in enumerate(candidates)}
    return float(Cider().compute_score(gts, res)[0])
