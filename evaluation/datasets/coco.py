"""COCO captions in the Karpathy split, as released (``dataset_coco.json``: ``{"images": [{"filepath",
"filename", "split", "sentences": [{"raw", "tokens"}], "cocoid"}]}``), and the COCO image folder."""

from __future__ import annotations

from pathlib import Path

from ..harness.errors import DataError
from ..harness.files import field, read_json, text_field
from ..harness.items import Item, check_unique


def read_karpathy(path: Path, images: Path, split: str) -> list[Item]:
    """One item per image of ``split``; ``truth`` is its reference captions (the "raw" sentences).

    Images are looked for at ``images/filepath/filename`` (e.g. ``val2014/COCO_val2014_...jpg``), then at
    ``images/filename``.
    """
    records = field(read_json(path), "images", list, str(path))
    items = []
    for index, record in enumerate(records):
        if field(record, "split", str, f"{path}: images[{index}]") != split:
            continue
        cocoid = field(record, "cocoid", int, f"{path}: images[{index}]")
        where = f"{path}: image {cocoid}"
        sentences = field(record, "sentences", list, where)
        if not sentences:
            raise DataError(f"{where}: 'sentences' is empty")
        references = [text_field(s, "raw", f"{where}: sentences[{i}]") for i, s in enumerate(sentences)]
        items.append(Item(key=str(cocoid), prompt="", image=_image_path(images, record, where), truth=references,
                          source=where, extra={"image_id": cocoid}))
    if not items:
        raise DataError(f"{path}: no images in split {split!r}")
    check_unique(items, str(path))
    return items


def _image_path(images: Path, record: dict, where: str) -> Path:
    filename = text_field(record, "filename", where)
    folder = record.get("filepath")
    nested = images / folder / filename if isinstance(folder, str) else images / filename
    return nested if nested.exists() or not (images / filename).exists() else images / filename
