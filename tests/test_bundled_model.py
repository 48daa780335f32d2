"""A fast quality check of the bundled model, so that a regression cannot land silently.

50 seeded VQA items and 20 captions from the benchmark split, with the model's default settings; the
floors sit a few points under what the full benchmark measured (see assets/ddit-shapes/README.md).
"""

from pathlib import Path

import pytest

from ddit import DualDiffusionPipeline
from shapes_world import benchmark as bench

MODEL = Path(__file__).resolve().parent.parent / "assets" / "ddit-shapes"
# measured at n=200: VQA 0.925, captions 0.985, yes/no (random) 0.920; at these n: 0.94, 1.00, 0.88
VQA_FLOOR, CAPTION_FLOOR, YES_NO_FLOOR = 0.85, 0.90, 0.80


@pytest.fixture(scope="module")
def pipe():
    assert (MODEL / "model_index.json").is_file(), f"the bundled model is missing from {MODEL}"
    pipeline = DualDiffusionPipeline.from_pretrained(MODEL, device="cpu")
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def test_bundled_vqa_accuracy(pipe):
    result = bench.evaluate_vqa(pipe, n=50, batch=25)
    assert result["overall"] >= VQA_FLOOR, result


def test_bundled_yes_no_accuracy(pipe):
    result = bench.evaluate_yes_no(pipe, n=50, batch=25)
    assert result["random"]["accuracy"] >= YES_NO_FLOOR, result


def test_bundled_caption_accuracy(pipe):
    result = bench.evaluate_caption(pipe, n=20, batch=20)
    assert result["exact"] >= CAPTION_FLOOR, result


def test_bundled_model_is_small_and_self_describing():
    size = sum(p.stat().st_size for p in MODEL.rglob("*") if p.is_file())
    assert size < 50 * 2**20
    card = (MODEL / "README.md").read_text()
    for needed in ("python -m train", "seed", "Benchmark", "Limits"):
        assert needed in card
