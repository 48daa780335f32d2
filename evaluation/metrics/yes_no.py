"""Yes/no answers: reading them (POPE's and MME's rules) and the POPE metrics of a binary confusion."""

from __future__ import annotations

import re

_LEADING_WORD = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)


def pope_answer(text: str) -> str:
    """"yes" or "no" when the answer starts with that word ("Yes, there is." -> "yes"), else "other"."""
    found = _LEADING_WORD.match(text.strip())
    return found.group(1).lower() if found else "other"


def mme_answer(text: str) -> str:
    """MME's eval tool's reading: the whole answer if it is "yes"/"no", else "yes"/"no" if its first four
    characters contain that word ("no, ..." -> "no"), else "other"."""
    text = text.lower().strip()
    if text in ("yes", "no"):
        return text
    start = text[:4]
    return "yes" if "yes" in start else "no" if "no" in start else "other"


def pope_metrics(labels: list[str], answers: list[str]) -> dict:
    """Accuracy, precision, recall, F1 (of "yes"), yes-ratio, all in %, and the confusion counts.

    ``labels`` are "yes"/"no"; ``answers`` are ``pope_answer`` readings. An "other" answer is a "no" for the
    confusion (it does not say yes) and is also counted on its own.
    """
    pairs = list(zip(labels, answers))
    tp = sum(lab == "yes" and ans == "yes" for lab, ans in pairs)
    fp = sum(lab == "no" and ans == "yes" for lab, ans in pairs)
    tn = sum(lab == "no" and ans != "yes" for lab, ans in pairs)
    fn = sum(lab == "yes" and ans != "yes" for lab, ans in pairs)
    n = len(pairs)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": 100 * (tp + tn) / n, "precision": 100 * precision, "recall": 100 * recall,
            "f1": 100 * f1, "yes_ratio": 100 * (tp + fp) / n, "n": n, "tp": tp, "fp": fp, "tn": tn, "fn": fn,
            "other": sum(ans == "other" for ans in answers)}
