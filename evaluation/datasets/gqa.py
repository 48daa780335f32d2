"""GQA, as released: a questions JSON ``{question_id: {"imageId", "question", "answer", "types", ...}}`` (e.g.
``testdev_balanced_questions.json``) and the image folder (``{imageId}.jpg``)."""

from __future__ import annotations

from pathlib import Path

from ..harness.errors import DataError
from ..harness.files import field, read_json, text_field
from ..harness.items import Item
from .checks import image_name, truth_for_all_or_none

GQA_PATTERN = "{image_id}.jpg"


def read_gqa(questions: Path, images: Path, pattern: str = GQA_PATTERN) -> list[Item]:
    """One item per question; ``truth`` is ``{"answer", "type"}`` (the structural type), None without answers."""
    data = read_json(questions)
    if not isinstance(data, dict) or not data:
        raise DataError(f"{questions}: expected a JSON object of questions keyed by question id")
    items = []
    for qid, record in data.items():
        where = f"{questions}: question {qid}"
        image_id = field(record, "imageId", str, where)
        answer = record.get("answer")
        if answer is not None and not isinstance(answer, str):
            raise DataError(f"{where}: field 'answer' should be str, got {type(answer).__name__}")
        types = record.get("types") if isinstance(record.get("types"), dict) else {}
        items.append(Item(key=str(qid), prompt=text_field(record, "question", where),
                          image=images / image_name(pattern, where, image_id=image_id),
                          truth=None if answer is None else {"answer": answer, "type": types.get("structural")},
                          source=where, extra={"question_id": str(qid)}))
    truth_for_all_or_none(items, str(questions), "'answer'")
    return items
