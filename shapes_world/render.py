"""Drawing Shapes-World scenes: exact renders, anti-aliased ones, and a JPEG round trip."""

from __future__ import annotations

import colorsys
import io

import numpy as np
from PIL import Image, ImageDraw

from .scene import BACKGROUND, COLORS, IMAGE_SIZE, SIZES, Scene, ShapeObject


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
          k: int, palette: dict[str, tuple[int, int, int]]) -> None:
    """Draw one object whose box is [x, x + side) x [y, y + side), at supersampling k."""
    x0, y0, x1, y1 = x * k, y * k, (x + side) * k - 1, (y + side) * k - 1
    fill = palette[obj.color]
    if obj.shape == "circle":
        draw.ellipse((x0, y0, x1, y1), fill=fill)
    elif obj.shape == "square":
        draw.rectangle((x0, y0, x1, y1), fill=fill)
    elif obj.shape == "triangle":  # upright isosceles, apex up
        draw.polygon([(x0, y1), (x1, y1), ((x0 + x1) / 2, y0)], fill=fill)
    else:
        raise ValueError(f"unknown shape {obj.shape!r}")


def render(scene: Scene, rng: np.random.Generator | None = None, jitter: int = 3,
           antialias: bool = False, size: int = IMAGE_SIZE,
           palette: dict[str, tuple[int, int, int]] | None = None) -> Image.Image:
    """Render a scene as a `size` x `size` RGB image on a white background.

    Objects are centred in their cells and shifted by up to `jitter` pixels (none when
    `rng` is None). `antialias=True` draws at 4x and downsamples with LANCZOS. `palette` maps
    colour names to RGB (default: the training palette `COLORS`).
    """
    palette = COLORS if palette is None else palette
    k = 4 if antialias else 1
    image = Image.new("RGB", (size * k, size * k), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for obj in scene.objects:
        x, y, side = _object_box(obj, rng, jitter, size)
        _draw(draw, obj, x, y, side, k, palette)
    if antialias:
        image = image.resize((size, size), Image.LANCZOS)
    return image


# what a person picks in a paint program: the CSS named colours, not the training palette
PAINT_COLORS = {
    "red": (255, 0, 0), "orange": (255, 165, 0), "yellow": (255, 255, 0),
    "green": (0, 128, 0), "blue": (0, 0, 255), "purple": (128, 0, 128),
}


def paint_palette(rng: np.random.Generator, spread: int = 20) -> dict[str, tuple[int, int, int]]:
    """``PAINT_COLORS``, each channel moved by up to ``spread`` (a hand-mixed shade), clipped to 0..255."""
    return {name: tuple(int(np.clip(v + rng.integers(-spread, spread + 1), 0, 255)) for v in rgb)
            for name, rgb in PAINT_COLORS.items()}


def jpeg_round_trip(image: Image.Image, quality: int) -> Image.Image:
    """``image`` saved as JPEG at ``quality`` and read back as RGB (compression artefacts, same size)."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


# hand-mixed shades for training (``DataConfig.color_jitter``): per colour name, the hue band (degrees, may wrap
# below 0), saturation and value ranges a person would still call that colour; wider than the training palette,
# independent of the benchmark's paint colours (which are CSS names moved by up to 20 per channel)
SHADE_RANGES = {
    "red": ((-10, 8), (0.65, 1.0), (0.6, 1.0)),
    "orange": ((22, 40), (0.75, 1.0), (0.85, 1.0)),
    "yellow": ((48, 62), (0.7, 1.0), (0.85, 1.0)),
    "green": ((95, 145), (0.55, 1.0), (0.4, 0.9)),
    "blue": ((205, 245), (0.6, 1.0), (0.55, 1.0)),
    "purple": ((270, 305), (0.5, 0.9), (0.4, 0.85)),
}


def shade_palette(rng: np.random.Generator) -> dict[str, tuple[int, int, int]]:
    """One random shade per colour name, uniform in ``SHADE_RANGES`` (hue, saturation, value)."""
    palette = {}
    for name, ((h0, h1), (s0, s1), (v0, v1)) in SHADE_RANGES.items():
        h, s, v = rng.uniform(h0, h1) % 360 / 360, rng.uniform(s0, s1), rng.uniform(v0, v1)
        palette[name] = tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(h, s, v))
    return palette
