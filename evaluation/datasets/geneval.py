"""GenEval's prompts (``evaluation_metadata.jsonl``: one JSON object per line with at least "prompt" and "tag")
and its image folder layout: ``OUT/{index:05d}/metadata.jsonl`` (that prompt's line) and
``OUT/{index:05d}/samples/{k:04d}.png``."""

from __future__ import annotations

import json
from pathlib import Path

from ..harness.files import read_jsonl, text_field
from ..harness.items import Item


def read_geneval(path: Path, samples: int) -> list[Item]:
    """``samples`` items per prompt, keyed ``{index:05d}/{k:04d}`` (the image's place), grouped by prompt."""
    items = []
    for index, (number, record) in enumerate(read_jsonl(path)):
        where = f"{path}: line {number}"
        prompt = text_field(record, "prompt", where)
        text_field(record, "tag", where)
        for k in range(samples):
            items.append(Item(key=f"{index:05d}/{k:04d}", prompt=prompt, source=where, group=f"{index:05d}",
                              extra={"metadata": record, "folder": f"{index:05d}", "sample": f"{k:04d}"}))
    return items


def sample_path(out: Path, item: Item) -> Path:
    """Where GenEval looks for this item's image."""
    return out / item.extra["folder"] / "samples" / f"{item.extra['sample']}.png"


def write_metadata(out: Path, items: list[Item]) -> None:
    """Each prompt folder's ``metadata.jsonl`` (its line of the prompt file) and ``samples/`` folder."""
    for item in items:
        folder = out / item.extra["folder"]
        if item.extra["sample"] == "0000" or not folder.exists():
            (folder / "samples").mkdir(parents=True, exist_ok=True)
            (folder / "metadata.jsonl").write_text(json.dumps(item.extra["metadata"]) + "\n")
