"""Bad input ends a command with one line naming the file and the item, a non-zero exit, and no traceback."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from evaluation_data import ROWS_OF_FIVE, script_answers, tiny_model, vqav2_args, write_image, write_vqav2  # noqa: F401

from evaluation import coco_captions, geneval, gqa, mme, pope, vizwiz, vqav2

ROOT = Path(__file__).resolve().parent.parent


def error_of(main, argv: list[str]) -> str:
    """The message a command exits with (checked to be one ``error: ...`` line)."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    message = str(exit_info.value.code)
    assert message.startswith("error: ") and "\n" not in message
    return message


def common(model, tmp_path) -> list[str]:
    return ["--model", str(model), "--out", str(tmp_path / "out")]


def test_a_missing_image_names_the_question_and_the_path(tmp_path, tiny_model):
    paths = write_vqav2(tmp_path, ROWS_OF_FIVE)
    (paths["images"] / "COCO_val2014_000000000002.jpg").unlink()
    message = error_of(vqav2.main, vqav2_args(paths, tiny_model, tmp_path / "out"))
    assert "question 102" in message and "image not found" in message
    assert str(paths["images"] / "COCO_val2014_000000000002.jpg") in message


def test_an_unreadable_image_names_the_question_and_the_path(tmp_path, tiny_model, monkeypatch):
    script_answers(monkeypatch, {r[2]: "yes" for r in ROWS_OF_FIVE})
    paths = write_vqav2(tmp_path, ROWS_OF_FIVE)
    (paths["images"] / "COCO_val2014_000000000003.jpg").write_text("not an image")
    message = error_of(vqav2.main, vqav2_args(paths, tiny_model, tmp_path / "out"))
    assert "question 103: cannot read image" in message and "COCO_val2014_000000000003.jpg" in message


def questions_file(*records: dict, subtype: bool = True) -> str:
    return json.dumps({**({"data_subtype": "val2014"} if subtype else {}), "questions": list(records)})


@pytest.mark.parametrize("content, expected", [
    ('{"questions": [', r"questions.json: not valid JSON \(line 1"),
    ('{"question": []}', r"questions.json: missing field 'questions'"),
    (questions_file({"question_id": 7, "image_id": 1}), r"questions.json: question 7: missing field 'question'"),
    (questions_file({"question_id": 7, "image_id": 1, "question": " "}), r"question 7: field 'question' is empty"),
    (questions_file({"question_id": "7", "image_id": 1, "question": "?"}),
     r"questions\[0\]: field 'question_id' should be int"),
    (questions_file({"question_id": 7, "image_id": 1, "question": "?"}, subtype=False),
     r"questions.json: no 'data_subtype' field to fill \{subtype\}"),
])
def test_a_malformed_questions_file_says_what_is_wrong(tmp_path, tiny_model, content, expected):
    paths = write_vqav2(tmp_path, ROWS_OF_FIVE)
    paths["questions"].write_text(content)
    assert re.search(expected, error_of(vqav2.main, vqav2_args(paths, tiny_model, tmp_path / "out")))


def test_questions_without_annotations_are_named(tmp_path, tiny_model):
    paths = write_vqav2(tmp_path, ROWS_OF_FIVE)
    annotations = json.loads(paths["annotations"].read_text())
    annotations["annotations"] = annotations["annotations"][:1]
    paths["annotations"].write_text(json.dumps(annotations))
    message = error_of(vqav2.main, vqav2_args(paths, tiny_model, tmp_path / "out"))
    assert "annotations.json: no annotation for 4 questions of" in message and "(ids 102, 103, 104, 105)" in message


def test_an_image_pattern_that_does_not_fit(tmp_path, tiny_model):
    paths = write_vqav2(tmp_path, ROWS_OF_FIVE)
    message = error_of(vqav2.main, vqav2_args(paths, tiny_model, tmp_path / "out", "--image-pattern", "{id}.jpg"))
    assert "question 101: --image-pattern '{id}.jpg' does not fit" in message


def test_gqa_vizwiz_pope_files_name_the_problem(tmp_path, tiny_model):
    argv = common(tiny_model, tmp_path) + ["--images", str(tmp_path)]
    (tmp_path / "gqa.json").write_text("[]")
    assert "gqa.json: expected a JSON object" in error_of(gqa.main, argv + ["--questions", str(tmp_path / "gqa.json")])
    entries = [{"image": "a.jpg", "question": "what?", "answers": [{"answer": "x"}]},
               {"image": "b.jpg", "question": "?"}]
    (tmp_path / "val.json").write_text(json.dumps(entries))
    assert "val.json: 1 of 2 items have no 'answers' (b.jpg)" in error_of(
        vizwiz.main, argv + ["--annotations", str(tmp_path / "val.json")])
    line = {"question_id": 4, "image": "a.jpg", "text": "?", "label": "maybe"}
    (tmp_path / "pope.jsonl").write_text(json.dumps(line))
    assert "pope.jsonl: line 1 (question 4): 'label' should be yes or no" in error_of(
        pope.main, argv + ["--questions", str(tmp_path / "pope.jsonl")])


def test_mme_files_name_the_line_and_the_image(tmp_path, tiny_model):
    folder = tmp_path / "MME" / "count"
    write_image(folder / "1.jpg")
    (folder / "1.txt").write_text("How many dogs? Please answer yes or no. Yes\n")
    argv = common(tiny_model, tmp_path) + ["--data", str(tmp_path / "MME")]
    assert "1.txt: line 1: expected 'question<TAB>answer'" in error_of(mme.main, argv)
    (folder / "2.txt").write_text("Are there two dogs?\tYes\n")
    (folder / "1.txt").unlink()
    assert "2.txt: image not found: no 2.jpg or 2.png in" in error_of(mme.main, argv)
    assert "none of MME's category folders" in error_of(mme.main, common(tiny_model, tmp_path) + [
        "--data", str(tmp_path)])


def test_karpathy_and_geneval_files_name_the_problem(tmp_path, tiny_model):
    record = {"filepath": "val2014", "filename": "a.jpg", "split": "train", "cocoid": 1, "sentences": [{"raw": "x"}]}
    (tmp_path / "dataset_coco.json").write_text(json.dumps({"images": [record]}))
    assert "dataset_coco.json: no images in split 'test'" in error_of(coco_captions.main, common(
        tiny_model, tmp_path) + ["--karpathy", str(tmp_path / "dataset_coco.json"), "--images", str(tmp_path)])
    metadata = tmp_path / "evaluation_metadata.jsonl"
    metadata.write_text('{"prompt": "a dog", "tag": "single_object"}\n{"prompt": "x"}\n')
    assert "evaluation_metadata.jsonl: line 2: missing field 'tag'" in error_of(
        geneval.main, common(tiny_model, tmp_path) + ["--metadata", str(metadata)])


def test_a_model_folder_that_cannot_be_loaded(tmp_path):
    paths = write_vqav2(tmp_path, ROWS_OF_FIVE)
    message = error_of(vqav2.main, vqav2_args(paths, tmp_path / "no-model", tmp_path / "out"))
    assert "no-model: cannot load the model" in message


@pytest.mark.slow
def test_the_command_exits_non_zero_without_a_traceback(tmp_path, tiny_model):
    paths = write_vqav2(tmp_path, ROWS_OF_FIVE)
    (paths["images"] / "COCO_val2014_000000000001.jpg").unlink()
    done = subprocess.run([sys.executable, "-m", "evaluation.vqav2", *vqav2_args(paths, tiny_model, tmp_path / "out")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: ") and "question 101" in done.stderr
