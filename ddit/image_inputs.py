"""Turning whatever a user hands us into an RGB PIL image (documented conversions, never a crash).

- paths are opened; a file that is not an image raises ``ValueError``;
- numpy arrays (h, w), (h, w, 3|4) uint8 or float in [0, 1] become images;
- transparency (RGBA, LA, palette with transparency) is composited on white, the Shapes-World background;
- grayscale, 1-bit, CMYK, 16-bit and float modes are converted to RGB;
- images larger than ``MAX_SIDE`` are first shrunk (then all are resized to the model resolution).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

logger = logging.getLogger(__name__)

MAX_SIDE = 4096  # larger inputs are shrunk before anything else (memory)


def load_image(image: "Image.Image | str | Path | np.ndarray") -> Image.Image:
    """Return ``image`` as an RGB PIL image, applying the conversions listed in the module docstring."""
    if isinstance(image, (str, Path)):
        try:
            with Image.open(image) as opened:
                opened.load()
                image = opened.copy()
        except (FileNotFoundError, IsADirectoryError) as err:
            raise ValueError(f"Image file not found: {image}") from err
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"Could not read {image} as an image: {err}") from err
    elif isinstance(image, np.ndarray):
        image = _from_array(image)
    if not isinstance(image, Image.Image):
        raise ValueError(f"Expected a PIL image, a path or a numpy array, got {type(image).__name__}.")
    if image.width < 1 or image.height < 1:
        raise ValueError("The image is empty (0 pixels).")
    if max(image.size) > MAX_SIDE:
        logger.warning("Image of %dx%d shrunk to at most %d px per side.", *image.size, MAX_SIDE)
        image = image.copy()
        image.thumbnail((MAX_SIDE, MAX_SIDE))
    return _to_rgb(image)


def _from_array(array: np.ndarray) -> Image.Image:
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise ValueError(f"Cannot read an array of shape {array.shape} as an image.")
    if array.dtype != np.uint8:
        array = (np.clip(array.astype(np.float64), 0.0, 1.0) * 255).round().astype(np.uint8)
    return Image.fromarray(array)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        array = np.asarray(image, dtype=np.float64)
        scale = 65535.0 if array.max() > 255 else 255.0
        image = Image.fromarray((np.clip(array / scale, 0, 1) * 255).astype(np.uint8))
    return image.convert("RGB")
