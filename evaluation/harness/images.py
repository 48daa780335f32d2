"""Opening an item's image, with a message that names the item and the file when it cannot be read."""

from __future__ import annotations

from PIL import Image

from ddit.image_inputs import load_image

from .errors import DataError
from .items import Item


def open_image(item: Item) -> Image.Image | None:
    """The item's image as RGB (None for items without one, e.g. T2I prompts)."""
    if item.image is None:
        return None
    try:
        return load_image(item.image)
    except ValueError as err:
        raise DataError(f"{item.source}: cannot read image {item.image}: {err}") from None
