"""Benchmark items: what to ask the model about which image, what the metric needs, and where it came from."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DataError


@dataclass
class Item:
    """One model call's worth of work: ``prompt`` (a question, a T2I prompt, "" to caption) about ``image``."""

    key: str  # unique within a benchmark: the id in the predictions store
    prompt: str
    image: Path | None = None
    truth: Any = None  # what the metric compares with (answers, references, a label); None: unknown (test splits)
    source: str = ""  # "file: item", the start of any message about this item
    group: str | None = None  # --limit keeps whole groups (MME: an image's questions; GenEval: a prompt's samples)
    extra: dict = field(default_factory=dict)  # fields the benchmark's own output formats need (ids, names)


def check_unique(items: list[Item], where: str) -> None:
    """Raise :class:`DataError` naming some ids that occur more than once."""
    repeated = [key for key, count in Counter(item.key for item in items).items() if count > 1]
    if repeated:
        raise DataError(f"{where}: {len(repeated)} ids occur more than once ({some_ids(repeated)})")


def limit_items(items: list[Item], limit: int | None) -> list[Item]:
    """The first ``limit`` items, or, for grouped items, every item of the first ``limit`` groups."""
    if limit is None:
        return list(items)
    if all(item.group is None for item in items):
        return items[:limit]
    kept, groups = [], []
    for item in items:
        if not groups or groups[-1] != item.group:
            if len(groups) == limit:
                break
            groups.append(item.group)
        kept.append(item)
    return kept


def check_images(items: list[Item]) -> None:
    """Raise :class:`DataError` for the first item whose image file does not exist (naming the item and path)."""
    seen: set[Path] = set()
    for item in items:
        if item.image is None or item.image in seen:
            continue
        if not item.image.is_file():
            raise DataError(f"{item.source}: image not found: {item.image}")
        seen.add(item.image)


def some_ids(ids: list, shown: int = 5) -> str:
    """The first ``shown`` ids, comma-separated, and how many more there are."""
    listed = ", ".join(str(i) for i in ids[:shown])
    return listed + (f", ... {len(ids) - shown} more" if len(ids) > shown else "")

