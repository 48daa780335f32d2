"""POPE end to end on two question files in its JSONL format, with scripted answers."""

import json

import pytest
from evaluation_data import script_answers, tiny_model, write_image  # noqa: F401

from evaluation import pope

FILES = {  # file: (question, label, what the model says)
    "coco_pope_random": [("Is there a dog in the image?", "yes", "Yes, there is."),
                         ("Is there a cat in the image?", "yes", "No."),
                         ("Is there a car in the image?", "no", "yes"),
                         ("Is there a bus in the image?", "no", "There is no bus.")],
    "coco_pope_adversarial": [("Is there a cup in the image?", "yes", "yes"),
                              ("Is there a fork in the image?", "yes", "Yes"),
                              ("Is there a knife in the image?", "yes", "no"),
                              ("Is there a spoon in the image?", "no", "No, there is not.")],
}


def write_pope(root):
    paths = []
    for name, rows in FILES.items():
        lines = [json.dumps({"question_id": i + 1, "image": f"COCO_val2014_{i:012d}.jpg", "text": q, "label": label})
                 for i, (q, label, _) in enumerate(rows)]
        paths.append(root / f"{name}.jsonl")
        paths[-1].write_text("\n".join(lines) + "\n")
        for i in range(len(rows)):
            write_image(root / "val2014" / f"COCO_val2014_{i:012d}.jpg", shade=50 * i)
    return paths


def test_pope_metrics_per_file_and_mean(tmp_path, tiny_model, monkeypatch):
    calls = script_answers(monkeypatch, {q: said for rows in FILES.values() for q, _, said in rows})
    files = write_pope(tmp_path)
    results = pope.main(["--model", str(tiny_model), "--out", str(tmp_path / "out"), "--images",
                         str(tmp_path / "val2014"), "--batch", "3", "--questions", *map(str, files)])
    random, adversarial = (results["metrics"]["per_file"][n] for n in FILES)
    # random: TP 1, FN 1, FP 1, TN 1 (the TN answered neither yes nor no)
    assert (random["tp"], random["fn"], random["fp"], random["tn"], random["other"]) == (1, 1, 1, 1, 1)
    assert [random[k] for k in pope.COLUMNS] == pytest.approx([50.0, 50.0, 50.0, 50.0, 50.0])
    # adversarial: TP 2, FN 1, FP 0, TN 1 -> precision 1, recall 2/3, F1 0.8
    assert [adversarial[k] for k in pope.COLUMNS] == pytest.approx([75.0, 100.0, 200 / 3, 80.0, 50.0])
    assert results["metrics"]["mean"] == pytest.approx(
        {"accuracy": 62.5, "precision": 75.0, "recall": 175 / 3, "f1": 65.0, "yes_ratio": 50.0})
    assert all(c["short_answer"] is False for c in calls) and sum(c["images"] for c in calls) == 8
