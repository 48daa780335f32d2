"""VQA accuracy (VQAv2, OK-VQA, VizWiz) and exact match (GQA), and their summaries by answer type."""

from __future__ import annotations

from collections import defaultdict

from .answers import normalise_answer, strip_punctuation


def vqa_accuracy(prediction: str, answers: list[str]) -> float:
    """The VQA score of one prediction against the human ``answers`` (usually ten), in [0, 1].

    The mean, over the subsets that leave one human answer out, of min(#answers in the subset equal to the
    prediction / 3, 1). The prediction is normalised; the human answers have their punctuation processed only
    when they disagree (the official rule: they are stored normalised already). Two of ten matching: 0.6.
    """
    if not answers:
        raise ValueError("vqa_accuracy needs at least one human answer")
    guess = normalise_answer(prediction)
    humans = [a.replace("\n", " ").replace("\t", " ").strip() for a in answers]
    if len(set(humans)) > 1:
        humans = [strip_punctuation(a) for a in humans]
    matches = sum(h == guess for h in humans)
    scores = [min(1.0, (matches - (h == guess)) / 3) for h in humans]
    return sum(scores) / len(scores)


def exact_match(prediction: str, answer: str) -> float:
    """1.0 when the normalised prediction equals the normalised answer (GQA), else 0.0."""
    return float(normalise_answer(prediction) == normalise_answer(answer))


def summarise(scores: list[float], groups: list[str | None]) -> dict:
    """Accuracy in % overall and per group (answer type, question type): ``{"overall", "n", "per_type"}``."""
    by_group: dict[str, list[float]] = defaultdict(list)
    for score, group in zip(scores, groups):
        if group is not None:
            by_group[group].append(score)
    return {
        "overall": 100 * sum(scores) / len(scores),
        "n": len(scores),
        "per_type": {g: {"accuracy": 100 * sum(v) / len(v), "n": len(v)} for g, v in sorted(by_group.items())},
    }
