"""MME end to end on a release-shaped folder (both category layouts), with scripted answers."""

import pytest
from evaluation_data import script_answers, tiny_model, write_image  # noqa: F401

from evaluation import mme

EXISTENCE = {  # image stem: [(question, truth, what the model says)]
    "000000000001": [("Is there a dog in this image? Please answer yes or no.", "Yes", "Yes"),
                     ("Is there a cat in this image? Please answer yes or no.", "No", "No")],
    "000000000002": [("Is there a bus in this image? Please answer yes or no.", "Yes", "yes, a bus"),
                     ("Is there a car in this image? Please answer yes or no.", "No", "Yes")],
}
ARTWORK = {"10002": [("Is this artwork created by Monet? Please answer yes or no.", "Yes", "Yes"),
                     ("Is this artwork created by Turner? Please answer yes or no.", "No", "no.")]}


def write_mme(root):
    """``existence`` with images and .txt side by side, ``artwork`` with images/ and questions_answers_YN/."""
    for stem, rows in EXISTENCE.items():
        write_image(root / "existence" / f"{stem}.jpg")
        (root / "existence" / f"{stem}.txt").write_text("".join(f"{q}\t{t}\n" for q, t, _ in rows))
    for stem, rows in ARTWORK.items():
        write_image(root / "artwork" / "images" / f"{stem}.jpg")
        (root / "artwork" / "questions_answers_YN").mkdir(parents=True)
        (root / "artwork" / "questions_answers_YN" / f"{stem}.txt").write_text(
            "".join(f"{q}\t{t}\n" for q, t, _ in rows))
    (root / "eval_tool").mkdir()  # not a category: ignored
    return root


def said():
    return {q: s for rows in [*EXISTENCE.values(), *ARTWORK.values()] for q, _, s in rows}


def test_mme_scores_and_eval_tool_files(tmp_path, tiny_model, monkeypatch):
    script_answers(monkeypatch, said())
    results = mme.main(["--model", str(tiny_model), "--out", str(tmp_path / "out"), "--data",
                        str(write_mme(tmp_path / "MME"))])
    m = results["metrics"]
    # existence: 3 of 4 answers right, 1 of 2 images fully right -> 75 + 50
    assert m["per_category"]["existence"] == pytest.approx(
        {"acc": 75.0, "acc_plus": 50.0, "score": 125.0, "questions": 4, "images": 2})
    assert m["per_category"]["artwork"]["score"] == pytest.approx(200.0)
    assert m["perception"] is None and "count" in m["perception_missing"] and m["cognition"] is None
    lines = (tmp_path / "out" / "mme_eval_tool" / "existence.txt").read_text().splitlines()
    assert lines[2] == ("000000000002.jpg\tIs there a bus in this image? Please answer yes or no.\tYes\t"
                        "yes, a bus")
    assert len((tmp_path / "out" / "mme_eval_tool" / "artwork.txt").read_text().splitlines()) == 2


def test_mme_limit_counts_images(tmp_path, tiny_model, monkeypatch):
    calls = script_answers(monkeypatch, said())
    results = mme.main(["--model", str(tiny_model), "--out", str(tmp_path / "out"), "--data",
                        str(write_mme(tmp_path / "MME")), "--limit", "1", "--batch", "1"])
    assert results["items"] == 2 and results["subset"] and len(calls) == 2
    assert results["metrics"]["per_category"]["existence"]["acc_plus"] == pytest.approx(100.0)
