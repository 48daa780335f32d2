"""Read a generated Shapes-World image back into a Scene, to judge prompt following.

Each pixel is modelled as a palette colour blended with the white background: for each
colour we find the blend weight `alpha` and the pixel's distance from that
white-to-colour line. A pixel is foreground when mostly covered (alpha >= 0.5) and
loosely near a line, background when otherwise near white, noise when neither; its
colour is read only where it lies strictly near a line. Strictly coloured pixels form
same-colour cores, which grow over the blurred or compressed edges around them; each
region is one object: colour by majority vote, shape from the fill ratio of its bounding
box and the share of its area in the box's upper half, size from the box side, cell from
the centroid. Implausible images (too little background, too much noise, more than three
objects, two objects in one cell, a region like none of the shapes) read as None.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .scene import COLORS, IMAGE_SIZE, MAX_OBJECTS, SIZES, Scene, ShapeObject

_NAMES = tuple(COLORS)
_WHITE = np.array([255.0, 255.0, 255.0], dtype=np.float32)
_DIRS = np.array([COLORS[c] for c in _NAMES], dtype=np.float32) - _WHITE  # (K, 3)

MIN_ALPHA = 0.5  # a foreground pixel is at least half covered by an object
MAX_ALPHA = 1.6  # darker than the palette colour is tolerated, up to a point
MAX_FG_DIST = 100.0  # loose distance to the nearest white-to-colour line for foreground
MAX_LINE_DIST = 45.0  # strict distance for reading a colour; yellow lies ~60 from orange's line
MIN_COLOR_SHARE = 0.5  # of an object's pixels that must read as its (majority) colour
WHITE_DIST = 130.0  # non-colour pixels this close to white are background
MIN_BACKGROUND = 0.6  # 3 large objects cover < 25 %; uniform noise is < 10 % background
MAX_NOISE = 0.08  # fraction of pixels that are neither background nor a palette colour
MIN_COMPONENT = 12  # pixels; a small triangle has ~50
MIN_CORE = 6  # strictly coloured pixels that seed an object; smaller specks join a neighbour
MAX_FRAGMENTS = 0.03  # fraction of pixels in dropped tiny components
MAX_ASPECT = 1.6  # bounding boxes of all three shapes are square
# (fill ratio of the box, share of the area in its upper half) per shape; ideal values are
# (0.5, 0.25), (0.785, 0.5), (1, 0.5): pixel-sized triangles fill their box a little more
PROTOTYPES = {"triangle": (0.55, 0.28), "circle": (0.785, 0.5), "square": (1.0, 0.5)}
TOP_WEIGHT = 2.0  # the upper-half share spans half the range of the fill ratio
MAX_SHAPE_DIST = 0.3  # farther than this from every prototype: not one of our shapes
LARGE_SIDE = (SIZES["small"] + SIZES["large"]) / 2  # 14 px at IMAGE_SIZE


@dataclass(frozen=True)
class Component:
    """One object's region, measured in IMAGE_SIZE pixel coordinates."""
    color: str
    area: int
    x0: int
    y0: int
    x1: int  # inclusive
    y1: int  # inclusive
    cx: float
    cy: float
    top_share: float  # of the area in the upper half of the box: ~0.25 triangle, ~0.5 others

    @property
    def fill(self) -> float:
        return self.area / ((self.x1 - self.x0 + 1) * (self.y1 - self.y0 + 1))

    @property
    def aspect(self) -> float:
        w, h = self.x1 - self.x0 + 1, self.y1 - self.y0 + 1
        return max(w, h) / min(w, h)

    def shape(self) -> str | None:
        """Nearest prototype shape, or None when the region is like none of them."""
        dist = {s: np.hypot(self.fill - f, TOP_WEIGHT * (self.top_share - t))
                for s, (f, t) in PROTOTYPES.items()}
        best = min(dist, key=dist.get)
        return best if dist[best] <= MAX_SHAPE_DIST else None

    def to_object(self) -> ShapeObject | None:
        shape = self.shape()
        if shape is None:
            return None
        side = (self.x1 - self.x0 + self.y1 - self.y0 + 2) / 2
        size = "large" if side >= LARGE_SIDE else "small"
        cell_w = IMAGE_SIZE / 3
        col = min(2, int(self.cx // cell_w))
        row = min(2, int(self.cy // cell_w))
        return ShapeObject(shape, self.color, size, 3 * row + col)


def classify_pixels(image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel labels at IMAGE_SIZE x IMAGE_SIZE.

    Returns (kind, color): kind 1 foreground, 0 background, -1 noise; color the index
    of the palette colour whose white-to-colour line the pixel fits within
    MAX_LINE_DIST, else -1. Foreground is judged loosely (compression darkens and
    desaturates object edges); the colour strictly, and read by majority per object.
    """
    image = image.convert("RGB")
    if image.size != (IMAGE_SIZE, IMAGE_SIZE):
        image = image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
    p = np.asarray(image, dtype=np.float32).reshape(-1, 3) - _WHITE  # (N, 3)
    norm2 = (_DIRS**2).sum(1)  # (K,)
    along = p @ _DIRS.T  # (N, K)
    alpha = along / norm2  # blend weight along each line
    p2 = (p**2).sum(1, keepdims=True)  # (N, 1)
    dist = np.sqrt(np.maximum(p2 - along * alpha, 0.0))  # distance to each line, (N, K)
    dist[(alpha < 0) | (alpha > MAX_ALPHA)] = np.inf
    best = dist.argmin(1)
    rows = np.arange(len(best))
    best_dist, best_alpha = dist[rows, best], alpha[rows, best]
    fg = (best_alpha >= MIN_ALPHA) & (best_dist <= MAX_FG_DIST)
    near_white = p2[:, 0] <= WHITE_DIST**2
    kind = np.where(fg, 1, np.where(near_white, 0, -1))
    color = np.where(fg & (best_dist <= MAX_LINE_DIST), best, -1)
    return kind.reshape(IMAGE_SIZE, IMAGE_SIZE), color.reshape(IMAGE_SIZE, IMAGE_SIZE)


def _neighbours(i: int, w: int, n: int) -> list[int]:
    """4-neighbours of flat index i in an image of width w and n pixels."""
    x = i % w
    out = [i - w] if i >= w else []
    if i + w < n:
        out.append(i + w)
    if x > 0:
        out.append(i - 1)
    if x < w - 1:
        out.append(i + 1)
    return out


def _regions(values: np.ndarray) -> list[list[int]]:
    """4-connected regions of equal non-negative values in a 2-D array (flood fill)."""
    w, n = values.shape[1], values.size
    flat = values.ravel().tolist()
    seen = [False] * n
    out = []
    for start in np.flatnonzero(values.ravel() >= 0).tolist():
        if seen[start]:
            continue
        seen[start] = True
        stack, members = [start], []
        while stack:
            i = stack.pop()
            members.append(i)
            for j in _neighbours(i, w, n):
                if not seen[j] and flat[j] == flat[start]:
                    seen[j] = True
                    stack.append(j)
        out.append(members)
    return out


def segment(kind: np.ndarray, color: np.ndarray) -> list[np.ndarray]:
    """Foreground regions (arrays of flat pixel indices), one per object.

    Cores are same-colour regions of strictly coloured pixels; the rest of the foreground
    (blurred or compressed edges) joins the nearest core by breadth-first growth, so
    objects stay apart even when their edges touch. Foreground that reaches no core forms
    regions of its own.
    """
    w, n = kind.shape[1], kind.size
    fg = (kind.ravel() == 1).tolist()
    cores = [r for r in _regions(color) if len(r) >= MIN_CORE]
    owner = [-1] * n
    queue: deque[int] = deque()
    for k, core in enumerate(cores):
        for i in core:
            owner[i] = k
        queue.extend(core)
    while queue:
        i = queue.popleft()
        for j in _neighbours(i, w, n):
            if fg[j] and owner[j] < 0:
                owner[j] = owner[i]
                queue.append(j)
    owner_arr = np.array(owner)
    groups = [np.flatnonzero(owner_arr == k) for k in range(len(cores))]
    rest = np.where((kind == 1) & (owner_arr.reshape(kind.shape) < 0), 0, -1)
    return groups + [np.array(r) for r in _regions(rest)]


def _component(members: np.ndarray, color: np.ndarray) -> Component | None:
    """Measure one region; None when its colour is not clearly one palette colour."""
    votes = np.bincount(color.ravel()[members] + 1, minlength=len(_NAMES) + 1)[1:]
    k = int(votes.argmax())
    if votes[k] < MIN_COLOR_SHARE * len(members):
        return None
    ys, xs = np.divmod(members, IMAGE_SIZE)
    y0, y1 = int(ys.min()), int(ys.max())
    mid = (y0 + y1) / 2  # a row on the midline counts half
    top = ((ys < mid).sum() + 0.5 * (ys == mid).sum()) / len(members)
    return Component(_NAMES[k], len(members), int(xs.min()), y0, int(xs.max()), y1,
                     float(xs.mean()) + 0.5, float(ys.mean()) + 0.5, float(top))


def read_scene(image: Image.Image) -> Scene | None:
    """Read an image back into a Scene, or None when it is not a plausible scene."""
    kind, color = classify_pixels(image)
    n = kind.size
    if (kind == 0).sum() < MIN_BACKGROUND * n or (kind == -1).sum() > MAX_NOISE * n:
        return None
    groups = segment(kind, color)
    kept = [g for g in groups if len(g) >= MIN_COMPONENT]
    if sum(len(g) for g in groups) - sum(len(g) for g in kept) > MAX_FRAGMENTS * n:
        return None
    if not 1 <= len(kept) <= MAX_OBJECTS:
        return None
    components = [_component(g, color) for g in kept]
    if any(c is None or c.aspect > MAX_ASPECT for c in components):
        return None
    objects = [c.to_object() for c in components]
    if None in objects:
        return None
    objects.sort(key=lambda o: o.cell)
    if len({o.cell for o in objects}) != len(objects):
        return None
    return Scene(tuple(objects))


def _satisfies(obj: ShapeObject, want: dict) -> bool:
    return (obj.shape == want["shape"] and obj.color == want["color"]
            and want.get("size") in (None, obj.size) and want.get("cell") in (None, obj.cell))


def pairs_up(scene: Scene | None, spec: list[dict], agrees: Callable[[ShapeObject, dict], bool]) -> bool:
    """Exactly as many objects as requested, paired so that ``agrees(object, request)`` holds for each."""
    if scene is None or len(scene.objects) != len(spec):
        return False
    return any(all(agrees(o, w) for o, w in zip(order, spec))
               for order in itertools.permutations(scene.objects))


def matches(scene: Scene | None, spec: list[dict]) -> bool:
    """Whether a read scene holds exactly the objects a parsed prompt asked for."""
    return pairs_up(scene, spec, _satisfies)
