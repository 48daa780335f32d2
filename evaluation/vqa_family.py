"""What the open-answer benchmarks share (VQAv2, OK-VQA, VizWiz: VQA accuracy; GQA: exact match): scoring,
the printed table, and the submission file in each one's own results format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from .harness.items import Item
from .harness.tables import number, table
from .metrics.vqa import exact_match, summarise, vqa_accuracy


def score_vqa(items: list[Item], predictions: dict[str, str]) -> dict | None:
    """VQA accuracy (%) overall and per answer type; None when the split has no answers."""
    if items[0].truth is None:
        return None
    scores = [vqa_accuracy(predictions[i.key], i.truth["answers"]) for i in items]
    return summarise(scores, [i.truth["answer_type"] for i in items])


def score_exact(items: list[Item], predictions: dict[str, str]) -> dict | None:
    """Exact-match accuracy (%) after normalisation, overall and per structural type (GQA)."""
    if items[0].truth is None:
        return None
    scores = [exact_match(predictions[i.key], i.truth["answer"]) for i in items]
    return summarise(scores, [i.truth["type"] for i in items])


def report(metrics: dict) -> str:
    """Accuracy (%) and count, overall then per type."""
    rows = [["overall", number(metrics["overall"]), str(metrics["n"])]]
    rows += [[name, number(m["accuracy"]), str(m["n"])] for name, m in metrics["per_type"].items()]
    return table(["", "accuracy (%)", "n"], rows)


def submission_writer(entry: Callable[[Item, str], dict]) -> Callable[[Path, list[Item], dict], list[Path]]:
    """An export writing ``submission.json``: a JSON list of ``entry(item, prediction)``."""

    def export(out: Path, items: list[Item], predictions: dict[str, Any]) -> list[Path]:
        path = out / "submission.json"
        path.write_text(json.dumps([entry(item, predictions[item.key]) for item in items], ensure_ascii=False))
        return [path]

    return export
