"""Turning whatever a user hands us into an RGB PIL image (documented conversions, never a crash).

- paths are opened; a file that is not an image raises ``ValueError``;
- numpy arrays (h, w), (h, w, 3|4) uint8 or float in [0, 1] become images;
- transparency (RGBA, LA, palette with transparency) is composited on white, the Shapes-World background;
- grayscale, 1-bit, CMYK, 16-bit and float modes are converted to RGB;
- images larger than ``MAX_SIDE`` are first shrunk; images of more than ``MAX_PIXELS`` pixels are refused before
  they are decoded (a few kB of PNG can hold a 20000x20000 image: a decompression bomb).

``resize_and_center_crop`` then brings an image to the model's square input the way the authors' captioning
and VQA code does: the short side resized (bicubic), the long side centre-cropped; never squashed.
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

logger = logging.getLogger(__name__)

MAX_SIDE = 4096  # larger inputs are shrunk before anything else (memory)
MIN_SIDE = 8  # smaller inputs hold too few pixels to show anything: refused, not guessed at
MAX_PIXELS = 8192 * 8192  # larger inputs are refused unread: decoding them would take gigabytes


def load_image(image: "Image.Image | str | Path | np.ndarray",
               background: tuple[int, int, int] | None = None) -> Image.Image:
    """Return ``image`` as an RGB PIL image, applying the conversions listed in the module docstring; transparency
    is composited on ``background`` (default white; an in-painting mask uses black: transparent = keep).

    ``info["original_size"]`` of the result is the size it had as given (kept when an image is loaded twice).
    """
    if isinstance(image, (str, Path)):
        try:
            with warnings.catch_warnings():  # PIL warns of sizes we refuse below anyway
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                opened = Image.open(image)  # reads the header only: the size is known before decoding
            with opened:
                check_pixels(*opened.size)
                opened.load()
                image = opened.copy()
        except (FileNotFoundError, IsADirectoryError) as err:
            raise ValueError(f"Image file not found: {image}") from err
        except Image.DecompressionBombError as err:  # PIL's own limit, above ours, refuses at open
            pixels = re.search(r"\((\d+) pixels\)", str(err))
            check_pixels(int(pixels.group(1)) if pixels else MAX_PIXELS + 1, 1)
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"Could not read {image} as an image: {err}") from err
    elif isinstance(image, np.ndarray):
        image = _from_array(image)
    if not isinstance(image, Image.Image):
        raise ValueError(f"Expected a PIL image, a path or a numpy array, got {type(image).__name__}.")
    if image.width < 1 or image.height < 1:
        raise ValueError("The image is empty (0 pixels).")
    check_pixels(image.width, image.height)
    original_size = image.info.get("original_size", image.size)
    if min(image.size) < MIN_SIDE:
        raise ValueError(f"The image is only {image.width}x{image.height} pixels; at least {MIN_SIDE}x{MIN_SIDE} are "
                         "needed to show anything.")
    if max(image.size) > MAX_SIDE:
        logger.warning("Image of %dx%d shrunk to at most %d px per side.", *image.size, MAX_SIDE)
        image = image.copy()
        image.thumbnail((MAX_SIDE, MAX_SIDE))
    image = to_rgb(image, background or WHITE)
    image.info["original_size"] = original_size
    return image


def check_pixels(width: int, height: int) -> None:
    """Refuse an image of more than ``MAX_PIXELS`` pixels, saying its size and the limit."""
    if width * height > MAX_PIXELS:
        size = f"{width}x{height} = " if height > 1 else ""
        side = math.isqrt(MAX_PIXELS)
        raise ValueError(f"The image is {size}{width * height:,} pixels; at most {MAX_PIXELS:,} ({side}x{side}) are "
                         "read. Please use a smaller image.")


def input_notes(image: Image.Image, side: int) -> list[str]:
    """What happens to a loaded image (``load_image``) before the model sees it at ``side`` px, for people."""
    w, h = image.info.get("original_size", image.size)
    notes = []
    if max(w, h) > MAX_SIDE:
        notes.append(f"shrunk from {w}x{h} to {image.width}x{image.height} first")
    if (w, h) != (side, side):
        crop = ", the centre square of it" if w != h else ""
        notes.append(f"read at {side}x{side} (your image is {w}x{h}){crop}")
    extrema = image.getextrema()  # per band (min, max)
    if all(low == high for low, high in extrema):
        notes.append("the image is a single colour: there is nothing in it to describe")
    return notes


def resize_and_center_crop(image: Image.Image, side: int, height: int | None = None,
                            resample: int = Image.BICUBIC) -> Image.Image:
    """Resized (bicubic) to cover ``side`` x ``height`` (width x height; ``height`` None: a square), then the centre
    cut out; never squashed. A mask is brought along with ``resample=Image.NEAREST``."""
    width, height = side, side if height is None else height
    w, h = image.size
    scale = max(width / w, height / h)
    size = (max(width, int(w * scale)), max(height, int(h * scale)))
    if size != image.size:
        image = image.resize(size, resample)
    left, top = int(round((size[0] - width) / 2.0)), int(round((size[1] - height) / 2.0))
    return image.crop((left, top, left + width, top + height))


def _from_array(array: np.ndarray) -> Image.Image:
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise ValueError(f"Cannot read an array of shape {array.shape} as an image.")
    if array.dtype != np.uint8:
        array = (np.clip(array.astype(np.float64), 0.0, 1.0) * 255).round().astype(np.uint8)
    return Image.fromarray(array)


WHITE = (255, 255, 255)  # the Shapes-World background


def to_rgb(image: Image.Image, background: tuple[int, int, int] = WHITE) -> Image.Image:
    """Any PIL mode to RGB: transparency (RGBA, LA, P/L/RGB with a transparent colour) is
    composited on ``background``; 16-bit grey is rescaled (PIL's convert would clip it at 255);
    L, 1, P, CMYK, YCbCr use PIL's conversion. An RGB image is returned as is."""
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I") or image.mode == "F":
        grey = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16") or grey.max() > 255:
            grey = grey / 257.0  # 0..65535 -> 0..255
        image = Image.fromarray(np.clip(np.rint(grey), 0, 255).astype(np.uint8))
    return image.convert("RGB")
