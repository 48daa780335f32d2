"""MME's scores: per category accuracy and accuracy+ (every question about an image right), score =
(acc + acc+) * 100; perception and cognition are the sums over their categories."""

from __future__ import annotations

from collections import defaultdict

from .yes_no import mme_answer

PERCEPTION = ("existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark", "artwork",
              "OCR")
COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")


def category_scores(rows: list[tuple[str, str, str]]) -> dict:
    """``rows`` of (image, ground truth "Yes"/"No", prediction) of one category -> acc, acc+ and score (%)."""
    right_by_image: dict[str, list[bool]] = defaultdict(list)
    for image, truth, prediction in rows:
        right_by_image[image].append(mme_answer(prediction) == truth.strip().lower())
    answers = [ok for oks in right_by_image.values() for ok in oks]
    acc = sum(answers) / len(answers)
    acc_plus = sum(all(oks) for oks in right_by_image.values()) / len(right_by_image)
    return {"acc": 100 * acc, "acc_plus": 100 * acc_plus, "score": 100 * (acc + acc_plus),
            "questions": len(answers), "images": len(right_by_image)}


def totals(per_category: dict[str, dict]) -> dict:
    """Perception and cognition sums; a group missing categories gets None and lists them."""
    out = {}
    for name, group in (("perception", PERCEPTION), ("cognition", COGNITION)):
        missing = [c for c in group if c not in per_category]
        out[name] = None if missing else sum(per_category[c]["score"] for c in group)
        out[f"{name}_missing"] = missing
    return out
