"""POPE, as released: JSON-lines question files (``coco_pope_random.jsonl``, ``_popular``, ``_adversarial``), each
line ``{"question_id", "image", "text", "label": "yes"|"no"}``, and the COCO image folder."""

from __future__ import annotations

from pathlib import Path

from ..harness.errors import DataError
from ..harness.files import field, read_jsonl, text_field
from ..harness.items import Item, check_unique


def read_pope(files: list[Path], images: Path) -> list[Item]:
    """One item per line of each file, keyed ``{file stem}/{question_id}``; ``truth`` is the label."""
    stems = [p.stem for p in files]
    if len(set(stems)) < len(stems):
        raise DataError(f"{files[0]}: two question files share the name {files[0].stem!r}; rename one")
    items = []
    for path in files:
        for number, record in read_jsonl(path):
            qid = field(record, "question_id", (int, str), f"{path}: line {number}")
            where = f"{path}: line {number} (question {qid})"
            label = text_field(record, "label", where).strip().lower()
            if label not in ("yes", "no"):
                raise DataError(f"{where}: 'label' should be yes or no, got {record['label']!r}")
            items.append(Item(key=f"{path.stem}/{qid}", prompt=text_field(record, "text", where),
                              image=images / text_field(record, "image", where), truth=label, source=where,
                              extra={"file": path.stem, "question_id": qid}))
    check_unique(items, ", ".join(str(p) for p in files))
    return items
