"""MME, as released (``MME_Benchmark_release_version/``): one folder per category holding either images and
``.txt`` files side by side, or ``images/`` and ``questions_answers_YN/``; each ``.txt`` (named like its image)
has ``question<TAB>answer`` lines, answer Yes or No, usually two per image."""

from __future__ import annotations

from pathlib import Path

from ..harness.errors import DataError
from ..harness.files import read_text
from ..harness.items import Item
from ..metrics.mme import COGNITION, PERCEPTION

IMAGE_SUFFIXES = (".jpg", ".png", ".jpeg", ".JPG", ".PNG", ".JPEG")


def read_mme(root: Path) -> list[Item]:
    """Every question of every category folder found under ``root`` (categories in MME's order, images sorted);
    items of one image share a ``group``; ``truth`` is "yes"/"no"."""
    if not root.is_dir():
        raise DataError(f"{root}: MME folder not found")
    categories = [c for c in PERCEPTION + COGNITION if (root / c).is_dir()]
    if not categories:
        raise DataError(f"{root}: none of MME's category folders ({', '.join(PERCEPTION + COGNITION)}) is here")
    return [item for category in categories for item in _read_category(root / category)]


def _read_category(folder: Path) -> list[Item]:
    nested = (folder / "questions_answers_YN").is_dir()
    texts = sorted((folder / "questions_answers_YN" if nested else folder).glob("*.txt"))
    if not texts:
        raise DataError(f"{folder}: no question files (.txt)")
    items = []
    for text in texts:
        image = _find_image(folder / "images" if nested else folder, text)
        for number, question, answer in _read_questions(text):
            items.append(Item(key=f"{folder.name}/{image.name}/{number}", prompt=question, image=image,
                              truth=answer, source=f"{text}: line {number}", group=f"{folder.name}/{image.name}",
                              extra={"category": folder.name, "image": image.name, "answer": answer}))
    return items


def _find_image(folder: Path, text: Path) -> Path:
    for suffix in IMAGE_SUFFIXES:
        if (folder / (text.stem + suffix)).is_file():
            return folder / (text.stem + suffix)
    raise DataError(f"{text}: image not found: no {text.stem}.jpg or {text.stem}.png in {folder}")


def _read_questions(text: Path) -> list[tuple[int, str, str]]:
    """``(line number, question, answer as written)`` for each non-blank line."""
    rows = []
    for number, line in enumerate(read_text(text).splitlines(), start=1):
        if not line.strip():
            continue
        question, tab, answer = line.rstrip("\r").rpartition("\t")
        if not tab or not question.strip():
            raise DataError(f"{text}: line {number}: expected 'question<TAB>answer', got {line[:60]!r}")
        if answer.strip().lower() not in ("yes", "no"):
            raise DataError(f"{text}: line {number}: answer should be Yes or No, got {answer.strip()!r}")
        rows.append((number, question.strip(), answer.strip()))
    if not rows:
        raise DataError(f"{text}: no questions")
    return rows
