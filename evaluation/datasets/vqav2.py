"""VQAv2 and OK-VQA, as released: a questions JSON (``{"questions": [{"image_id", "question", "question_id"}]}``,
with ``data_subtype`` such as "val2014"), an optional annotations JSON (``{"annotations": [{"question_id",
"answers": [{"answer", ...}], "answer_type", ...}]}``; none for test-dev) and a folder of COCO images."""

from __future__ import annotations

from pathlib import Path

from ..harness.errors import DataError
from ..harness.files import field, read_json, text_field
from ..harness.items import Item, check_unique, some_ids
from .checks import image_name

COCO_PATTERN = "COCO_{subtype}_{image_id:012d}.jpg"


def read_vqa(questions: Path, annotations: Path | None, images: Path, pattern: str = COCO_PATTERN) -> list[Item]:
    """One item per question, in file order; ``truth`` is ``{"answers", "answer_type"}`` (None without
    annotations). Questions without an annotation raise DataError naming some of their ids."""
    data = read_json(questions)
    records = field(data, "questions", list, str(questions))
    subtype = {"subtype": data["data_subtype"]} if isinstance(data.get("data_subtype"), str) else {}
    if not subtype and "{subtype" in pattern:
        raise DataError(f"{questions}: no 'data_subtype' field to fill {{subtype}} in the image pattern "
                        f"{pattern!r}; give --image-pattern without it")
    truth = _read_annotations(annotations) if annotations is not None else None
    items = []
    for index, record in enumerate(records):
        qid = field(record, "question_id", int, f"{questions}: questions[{index}]")
        where = f"{questions}: question {qid}"
        image_id = field(record, "image_id", int, where)
        name = image_name(pattern, where, image_id=image_id, **subtype)
        items.append(Item(key=str(qid), prompt=text_field(record, "question", where), image=images / name,
                          truth=None if truth is None else truth.get(qid), source=where,
                          extra={"question_id": qid, "image_id": image_id}))
    check_unique(items, str(questions))
    if truth is not None:
        lacking = [item.key for item in items if item.truth is None]
        if lacking:
            raise DataError(f"{annotations}: no annotation for {len(lacking)} questions of {questions} "
                            f"(ids {some_ids(lacking)})")
    return items


def _read_annotations(path: Path) -> dict[int, dict]:
    records = field(read_json(path), "annotations", list, str(path))
    truth = {}
    for index, record in enumerate(records):
        qid = field(record, "question_id", int, f"{path}: annotations[{index}]")
        where = f"{path}: annotation of question {qid}"
        answers = field(record, "answers", list, where)
        if not answers:
            raise DataError(f"{where}: 'answers' is empty")
        texts = [field(a, "answer", str, f"{where}: answers[{i}]") for i, a in enumerate(answers)]
        answer_type = record.get("answer_type")
        truth[qid] = {"answers": texts, "answer_type": answer_type if isinstance(answer_type, str) else None}
    return truth
