"""COCO captions end to end on a Karpathy-split file: scores, the COCO results file, Java metrics reported."""

import json

import pytest
from evaluation_data import script_captions, tiny_model, write_image  # noqa: F401

from evaluation import coco_captions
from evaluation.metrics.captions import caption_scores

IMAGES = [  # cocoid, split, shade, references
    (11, "test", 0, ["a dog sits on a wooden bench", "a brown dog on a bench"]),
    (12, "test", 100, ["two cats sleep on a red sofa", "cats sleeping on a couch"]),
    (13, "val", 200, ["a plane in a blue sky", "an airplane flying"]),
]


def write_karpathy(root):
    records = [{"filepath": "val2014", "filename": f"COCO_val2014_{cocoid:012d}.jpg", "split": split,
                "cocoid": cocoid, "imgid": i, "sentences": [{"raw": r, "tokens": r.split()} for r in refs]}
               for i, (cocoid, split, _, refs) in enumerate(IMAGES)]
    (root / "dataset_coco.json").write_text(json.dumps({"images": records, "dataset": "coco"}))
    for cocoid, _, shade, _ in IMAGES:
        write_image(root / "coco" / "val2014" / f"COCO_val2014_{cocoid:012d}.jpg", shade=shade)
    return root / "dataset_coco.json", root / "coco"


def run(tmp_path, model, *extra):
    karpathy, images = write_karpathy(tmp_path)
    return coco_captions.main(["--model", str(model), "--out", str(tmp_path / "out"), "--karpathy", str(karpathy),
                               "--images", str(images), *extra])


def test_captions_are_scored_on_the_test_split(tmp_path, tiny_model, monkeypatch):
    script_captions(monkeypatch, {0: "A dog sits on a wooden bench.", 100: "a man rides a horse", 200: "a plane"})
    results = run(tmp_path, tiny_model, "--no-java-metrics")
    expected = caption_scores({"11": IMAGES[0][3], "12": IMAGES[1][3]},
                              {"11": "A dog sits on a wooden bench.", "12": "a man rides a horse"}, java=False)
    m = results["metrics"]
    assert results["items"] == 2 and m["CIDEr"] == pytest.approx(100 * expected["CIDEr"])
    assert m["BLEU-4"] == pytest.approx(100 * expected["BLEU-4"]) and m["METEOR"] == "not run (--no-java-metrics)"
    assert json.loads((tmp_path / "out" / "captions_results.json").read_text()) == [
        {"image_id": 11, "caption": "A dog sits on a wooden bench."},
        {"image_id": 12, "caption": "a man rides a horse"}]


def test_without_java_meteor_and_spice_say_so(tmp_path, tiny_model, monkeypatch, capsys):
    script_captions(monkeypatch, {0: "a dog", 100: "cats", 200: "a plane"})
    monkeypatch.setattr("evaluation.metrics.captions.shutil.which", lambda name: None)
    results = run(tmp_path, tiny_model, "--split", "val")
    assert results["items"] == 1 and results["metrics"]["SPICE"] == "not run (needs Java)"
    assert "not run (needs Java)" in capsys.readouterr().out


def test_captions_with_the_tiny_model(tmp_path, tiny_model):
    results = run(tmp_path, tiny_model, "--no-java-metrics", "--batch", "2", "--steps", "2")
    captions = json.loads((tmp_path / "out" / "captions_results.json").read_text())
    assert [c["image_id"] for c in captions] == [11, 12] and all(isinstance(c["caption"], str) for c in captions)
    assert results["metrics"]["CIDEr"] >= 0.0
