"""VizWiz-VQA, as released: a JSON list of ``{"image", "question", "answers": [{"answer", "answer_confidence"}],
"answerable", "answer_type"}`` (no answers in the test split) and the image folder."""

from __future__ import annotations

from pathlib import Path

from ..harness.errors import DataError
from ..harness.files import field, read_json, text_field
from ..harness.items import Item, check_unique
from .checks import truth_for_all_or_none


def read_vizwiz(annotations: Path, images: Path) -> list[Item]:
    """One item per entry, keyed by its image name; ``truth`` is ``{"answers", "answer_type"}`` or None."""
    data = read_json(annotations)
    if not isinstance(data, list) or not data:
        raise DataError(f"{annotations}: expected a non-empty JSON list of questions")
    items = []
    for index, record in enumerate(data):
        image = text_field(record, "image", f"{annotations}: entry {index}")
        where = f"{annotations}: entry {index} (image {image})"
        truth = None
        if record.get("answers") is not None:
            answers = field(record, "answers", list, where)
            if not answers:
                raise DataError(f"{where}: 'answers' is empty")
            texts = [field(a, "answer", str, f"{where}: answers[{i}]") for i, a in enumerate(answers)]
            answer_type = record.get("answer_type")
            truth = {"answers": texts, "answer_type": answer_type if isinstance(answer_type, str) else None}
        items.append(Item(key=image, prompt=text_field(record, "question", where), image=images / image,
                          truth=truth, source=where, extra={"image": image}))
    check_unique(items, str(annotations))
    truth_for_all_or_none(items, str(annotations), "'answers'")
    return items
