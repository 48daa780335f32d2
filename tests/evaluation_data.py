"""Small benchmark files in the benchmarks' real formats, written into a test's tmp_path, a tiny model folder,
and a scripted pipeline (answers and captions looked up, not sampled) for the evaluation tests."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import PIL.Image
import pytest

from ddit import DualDiffusionPipeline
from ddit.presets import build_tiny_pipeline

# the short-answer instruction makes questions longer than the tiny model's default 16 prompt tokens
TINY_DEFAULTS = {"max_prompt_length": 48}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A saved tiny random pipeline (16x16 images); its outputs are noise but well formed."""
    folder = tmp_path_factory.mktemp("model") / "tiny"
    build_tiny_pipeline(task_defaults=TINY_DEFAULTS).save_pretrained(folder)
    return folder


def write_image(path: Path, shade: int = 0) -> Path:
    """A 16x16 image of one colour (red channel ``shade``), in the format the file name says."""
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.new("RGB", (16, 16), (shade, 60, 120)).save(path)
    return path


def ten(*groups: tuple[str, int]) -> list[dict]:
    """Ten VQA human answers, e.g. ten(("2", 2), ("3", 8))."""
    texts = [text for text, count in groups for _ in range(count)]
    assert len(texts) == 10
    return [{"answer": t, "answer_confidence": "yes", "answer_id": i + 1} for i, t in enumerate(texts)]


ROWS_OF_FIVE = [(101 + i, i + 1, q, ten(("red", 4), ("blue", 6)), "other") for i, q in enumerate(
    ["what color is the circle?", "what shape is there?", "how many squares?", "is it red?", "what is at the top?"])]


def write_vqav2(root: Path, rows: list[tuple[int, int, str, list[dict] | None, str]],
                annotations: bool = True) -> dict[str, Path]:
    """VQAv2 files: rows of (question_id, image_id, question, answers, answer_type); COCO-named images."""
    questions = [{"image_id": image_id, "question": q, "question_id": qid} for qid, image_id, q, _, _ in rows]
    paths = {"questions": root / "questions.json", "images": root / "val2014"}
    paths["questions"].write_text(json.dumps({"task_type": "Open-Ended", "data_type": "mscoco",
                                              "data_subtype": "val2014", "questions": questions}))
    for _, image_id, *_ in rows:
        write_image(paths["images"] / f"COCO_val2014_{image_id:012d}.jpg", shade=image_id % 250)
    if annotations:
        anns = [{"question_id": qid, "image_id": image_id, "answers": answers, "answer_type": kind,
                 "question_type": "what", "multiple_choice_answer": answers[0]["answer"]}
                for qid, image_id, _, answers, kind in rows]
        paths["annotations"] = root / "annotations.json"
        paths["annotations"].write_text(json.dumps({"data_subtype": "val2014", "annotations": anns}))
    return paths


def vqav2_args(paths: dict[str, Path], model: Path, out: Path, *extra: str) -> list[str]:
    """The command line of ``evaluation.vqav2`` for files written by ``write_vqav2``."""
    argv = ["--model", str(model), "--out", str(out), "--questions", str(paths["questions"]),
            "--images", str(paths["images"])]
    if "annotations" in paths:
        argv += ["--annotations", str(paths["annotations"])]
    return argv + list(extra)


def script_answers(monkeypatch, answers: dict[str, str]) -> list[dict]:
    """Make every pipeline answer by looking its question up in ``answers``; returns the calls' keywords."""
    calls: list[dict] = []

    def answer(self, images, questions, **options):
        calls.append({"images": len(images), "questions": list(questions), **options})
        return SimpleNamespace(text=[answers[q] for q in questions])

    monkeypatch.setattr(DualDiffusionPipeline, "answer", answer)
    return calls


def script_captions(monkeypatch, by_shade: dict[int, str]) -> None:
    """Make every pipeline caption be ``by_shade[red channel of the image]`` (shades 50 apart survive JPEG)."""

    def caption(self, images, **options):
        shades = [min(by_shade, key=lambda s: abs(s - image.getpixel((8, 8))[0])) for image in images]
        return SimpleNamespace(text=[by_shade[s] for s in shades])

    monkeypatch.setattr(DualDiffusionPipeline, "caption", caption)


def fail_on_call(monkeypatch, method: str, call: int, error: BaseException) -> None:
    """Make the ``call``-th call of a pipeline method raise ``error`` (the earlier ones run as usual)."""
    original = getattr(DualDiffusionPipeline, method)
    count = {"n": 0}

    def wrapped(self, *args, **kwargs):
        count["n"] += 1
        if count["n"] == call:
            raise error
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DualDiffusionPipeline, method, wrapped)


def read_predictions(out: Path) -> list[dict]:
    """The lines of a run's predictions store."""
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
