"""VQAv2, OK-VQA, GQA and VizWiz end to end on small files in their real formats: scripted answers give
hand-computed scores; the tiny random model gives well-formed files."""

import json

import pytest
from evaluation_data import (script_answers, ten, tiny_model, vqav2_args, write_image,  # noqa: F401
                             write_vqav2)

from evaluation import gqa, okvqa, vizwiz, vqav2
from evaluation.harness import predictors

ROWS = [  # question_id, image_id, question, human answers, answer type
    (101, 1, "how many dogs are there?", ten(("2", 2), ("3", 8)), "number"),
    (102, 2, "what animal is this?", ten(("dog", 10)), "other"),
    (103, 3, "is it sunny?", ten(("yes", 3), ("no", 7)), "yes/no"),
]
SAID = {"how many dogs are there?": "Two.", "what animal is this?": "a dog", "is it sunny?": "yes!"}


def test_vqav2_scores_with_the_official_accuracy(tmp_path, tiny_model, monkeypatch):
    calls = script_answers(monkeypatch, SAID)
    monkeypatch.setattr(predictors, "unknown_words", lambda tokenizer, text: [])  # a model that reads the instruction
    paths = write_vqav2(tmp_path, ROWS)
    results = vqav2.main(vqav2_args(paths, tiny_model, tmp_path / "out", "--batch", "2"))
    m = results["metrics"]
    # 2 of 10 said "2": 0.6; all said "dog": 1.0; 3 of 10 said "yes": (7 * 1 + 3 * 2/3) / 10 = 0.9
    assert m["overall"] == pytest.approx(100 * (0.6 + 1.0 + 0.9) / 3)
    assert {k: v["accuracy"] for k, v in m["per_type"].items()} == pytest.approx(
        {"number": 60.0, "other": 100.0, "yes/no": 90.0})
    assert json.loads((tmp_path / "out" / "submission.json").read_text()) == [
        {"question_id": 101, "answer": "Two."}, {"question_id": 102, "answer": "a dog"},
        {"question_id": 103, "answer": "yes!"}]
    assert [c["images"] for c in calls] == [2, 1] and all(c["short_answer"] is True for c in calls)
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["complete"] and saved["metrics"] == results["metrics"] and not saved["subset"]
    settings = json.loads((tmp_path / "out" / "settings.json").read_text())
    assert settings["options"]["short_answer"] == "auto" and settings["model_defaults"]["answer"]["num_inference_steps"] == 3
    assert settings["data"]["questions"] == str(paths["questions"].resolve())


def test_short_answer_can_be_turned_off_and_limit_takes_a_prefix(tmp_path, tiny_model, monkeypatch, capsys):
    calls = script_answers(monkeypatch, SAID)
    paths = write_vqav2(tmp_path, ROWS)
    results = vqav2.main(vqav2_args(paths, tiny_model, tmp_path / "out", "--no-short-answer", "--limit", "2"))
    assert calls[0]["short_answer"] is False and calls[0]["questions"] == [r[2] for r in ROWS[:2]]
    assert results["subset"] and results["items"] == 2 and results["metrics"]["overall"] == pytest.approx(80.0)
    assert "subset: the first 2 of 3 items" in capsys.readouterr().out


def test_an_instruction_the_model_cannot_read_is_never_a_silent_zero(tmp_path, tiny_model, monkeypatch, capsys):
    """The tiny model's vocabulary lacks the instruction's words (as the bundled model's does): by default it answers
    without it, saying so; asked for explicitly, the run is refused naming the words, before any answer."""
    calls = script_answers(monkeypatch, SAID)
    paths = write_vqav2(tmp_path, ROWS)
    vqav2.main(vqav2_args(paths, tiny_model, tmp_path / "auto"))
    assert calls and all(c["short_answer"] is False for c in calls)
    err = capsys.readouterr().err
    assert "warning: this model cannot read the short-answer instruction (not in its vocabulary: Answer," in err
    assert "answering without it" in err
    calls.clear()
    with pytest.raises(SystemExit, match=r"^error: --short-answer: this model cannot read the short-answer "
                                         r"instruction \(not in its vocabulary: .*Run with --no-short-answer\.$"):
        vqav2.main(vqav2_args(paths, tiny_model, tmp_path / "forced", "--short-answer"))
    assert not calls


def test_test_dev_without_annotations_writes_predictions_only(tmp_path, tiny_model, monkeypatch):
    script_answers(monkeypatch, SAID)
    paths = write_vqav2(tmp_path, ROWS, annotations=False)
    results = vqav2.main(vqav2_args(paths, tiny_model, tmp_path / "out"))
    assert results["metrics"] is None and "predictions only" in results["note"]
    assert len(json.loads((tmp_path / "out" / "submission.json").read_text())) == 3


def test_okvqa_uses_the_same_machinery(tmp_path, tiny_model, monkeypatch):
    script_answers(monkeypatch, SAID)
    paths = write_vqav2(tmp_path, ROWS)
    results = okvqa.main(vqav2_args(paths, tiny_model, tmp_path / "out"))
    assert results["benchmark"] == "okvqa" and results["metrics"]["overall"] == pytest.approx(250 / 3)


def test_gqa_exact_match_after_normalisation(tmp_path, tiny_model, monkeypatch):
    questions = {
        "q1": {"imageId": "n1", "question": "how many cups?", "answer": "two", "types": {"structural": "query"}},
        "q2": {"imageId": "n2", "question": "what is under the cup?", "answer": "table",
               "types": {"structural": "query"}},
        "q3": {"imageId": "n1", "question": "is there a chair?", "answer": "yes", "types": {"structural": "verify"}},
    }
    (tmp_path / "questions.json").write_text(json.dumps(questions))
    for name in ("n1", "n2"):
        write_image(tmp_path / "images" / f"{name}.jpg")
    script_answers(monkeypatch, {"how many cups?": "2", "what is under the cup?": "The table.",
                                 "is there a chair?": "no"})
    results = gqa.main(["--model", str(tiny_model), "--out", str(tmp_path / "out"),
                        "--questions", str(tmp_path / "questions.json"), "--images", str(tmp_path / "images")])
    m = results["metrics"]
    assert m["overall"] == pytest.approx(200 / 3)
    assert m["per_type"] == {"query": {"accuracy": 100.0, "n": 2}, "verify": {"accuracy": 0.0, "n": 1}}
    assert json.loads((tmp_path / "out" / "submission.json").read_text())[1] == {
        "questionId": "q2", "prediction": "The table."}


def test_vizwiz_scores_its_ten_answers(tmp_path, tiny_model, monkeypatch):
    entries = [
        {"image": "VizWiz_val_00000000.jpg", "question": "what is this?", "answerable": 0,
         "answer_type": "unanswerable", "answers": ten(("unanswerable", 10))},
        {"image": "VizWiz_val_00000001.jpg", "question": "what colour is the shirt?", "answerable": 1,
         "answer_type": "other", "answers": ten(("blue", 1), ("navy", 9))},
    ]
    (tmp_path / "val.json").write_text(json.dumps(entries))
    for entry in entries:
        write_image(tmp_path / "val" / entry["image"])
    script_answers(monkeypatch, {"what is this?": "Unanswerable.", "what colour is the shirt?": "blue"})
    results = vizwiz.main(["--model", str(tiny_model), "--out", str(tmp_path / "out"),
                           "--annotations", str(tmp_path / "val.json"), "--images", str(tmp_path / "val")])
    # one of ten said "blue": 9 subsets keep it (1/3), one does not (0): 0.3
    assert results["metrics"]["overall"] == pytest.approx(100 * (1.0 + 0.3) / 2)
    assert json.loads((tmp_path / "out" / "submission.json").read_text())[0] == {
        "image": "VizWiz_val_00000000.jpg", "answer": "Unanswerable."}


def test_vqav2_with_the_tiny_model_end_to_end(tmp_path, tiny_model):
    paths = write_vqav2(tmp_path, ROWS)
    results = vqav2.main(vqav2_args(paths, tiny_model, tmp_path / "out", "--batch", "2", "--steps", "2"))
    submission = json.loads((tmp_path / "out" / "submission.json").read_text())
    assert [s["question_id"] for s in submission] == [101, 102, 103]
    assert all(isinstance(s["answer"], str) for s in submission)
    assert 0.0 <= results["metrics"]["overall"] <= 100.0 and results["settings"]["options"]["steps"] == 2
