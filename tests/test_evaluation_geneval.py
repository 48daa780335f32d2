"""GenEval: images for its prompts in its folder layout (no scoring here)."""

import json

import numpy as np
import PIL.Image
import pytest
from evaluation_data import fail_on_call, read_predictions, tiny_model  # noqa: F401

from evaluation import geneval

PROMPTS = [{"tag": "single_object", "include": [{"class": "dog", "count": 1}], "prompt": "a photo of a dog"},
           {"tag": "colors", "include": [{"class": "car", "count": 1, "color": "red"}], "prompt": "a red car"},
           {"tag": "counting", "include": [{"class": "cup", "count": 2}], "prompt": "two cups"}]


def run(tmp_path, model, out, *extra):
    metadata = tmp_path / "evaluation_metadata.jsonl"
    metadata.write_text("".join(json.dumps(p) + "\n" for p in PROMPTS))
    return geneval.main(["--model", str(model), "--out", str(out), "--metadata", str(metadata), "--samples", "2",
                         "--batch", "3", "--steps", "2", *extra])


def test_geneval_writes_its_folder_layout(tmp_path, tiny_model, capsys):
    out = tmp_path / "out"
    results = run(tmp_path, tiny_model, out, "--limit", "2")
    assert results["metrics"] is None and results["items"] == 4 and results["subset"]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["00000", "00001"]
    assert json.loads((out / "00001" / "metadata.jsonl").read_text()) == PROMPTS[1]
    assert sorted(p.name for p in (out / "00000" / "samples").iterdir()) == ["0000.png", "0001.png"]
    assert PIL.Image.open(out / "00001" / "samples" / "0001.png").size == (16, 16)
    assert "evaluate_images.py" in capsys.readouterr().out


def test_geneval_resumes_to_the_same_images(tmp_path, tiny_model, monkeypatch):
    run(tmp_path, tiny_model, tmp_path / "whole")
    fail_on_call(monkeypatch, "__call__", 2, RuntimeError("killed"))
    with pytest.raises(RuntimeError, match="killed"):
        run(tmp_path, tiny_model, tmp_path / "resumed")
    assert len(read_predictions(tmp_path / "resumed")) == 3
    monkeypatch.undo()
    run(tmp_path, tiny_model, tmp_path / "resumed")
    assert sorted(r["key"] for r in read_predictions(tmp_path / "resumed")) == sorted(
        f"{i:05d}/{k:04d}" for i in range(3) for k in range(2))
    for i in range(3):
        for k in range(2):
            path = f"{i:05d}/samples/{k:04d}.png"
            assert np.array_equal(np.asarray(PIL.Image.open(tmp_path / "whole" / path)),
                                  np.asarray(PIL.Image.open(tmp_path / "resumed" / path)))
