"""A fast quality check of the bundled model, so that a regression cannot land silently, and a check that its
card quotes what was measured.

50 seeded T2I prompts and VQA items and 20 captions from the benchmark split, with the model's default settings; the floors
sit a few points under the full benchmark (``benchmark.json`` beside the model, n = 200).
"""

import json
from pathlib import Path

import pytest

from ddit import DualDiffusionPipeline, TaskDefaults
from shapes_world import BENCHMARK_SEED
from shapes_world import benchmark as bench
from shapes_world.benchmark.report import markdown

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "assets" / "ddit-shapes"
VQA_FLOOR, CAPTION_FLOOR, YES_NO_FLOOR, T2I_FLOOR = 0.92, 0.95, 0.92, 0.80
MAX_IMAGE_PASSES = 12  # the few-step default: at most 12 transformer passes per image
pytestmark = pytest.mark.slow  # the real model on a few dozen items


@pytest.fixture(scope="module")
def pipe():
    assert (MODEL / "model_index.json").is_file(), f"the bundled model is missing from {MODEL}"
    pipeline = DualDiffusionPipeline.from_pretrained(MODEL, device="cpu")
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def test_bundled_t2i_accuracy_in_few_passes(pipe):
    result = bench.evaluate_t2i(pipe, n=50, batch=25)
    assert result["overall"] >= T2I_FLOOR and result["settings"]["passes"] <= MAX_IMAGE_PASSES, result


def test_bundled_vqa_accuracy(pipe):
    result = bench.evaluate_vqa(pipe, n=50, batch=25)
    assert result["overall"] >= VQA_FLOOR, result


def test_bundled_yes_no_accuracy(pipe):
    result = bench.evaluate_yes_no(pipe, n=50, batch=25)
    assert result["random"]["accuracy"] >= YES_NO_FLOOR, result


def test_bundled_caption_accuracy(pipe):
    result = bench.evaluate_caption(pipe, n=20, batch=20)
    assert result["exact"] >= CAPTION_FLOOR, result


def test_bundled_model_is_small():
    size = sum(p.stat().st_size for p in MODEL.rglob("*") if p.is_file())
    assert size < 50 * 2**20


def test_card_tables_are_the_measured_ones_at_the_shipped_defaults():
    measured = json.loads((MODEL / "benchmark.json").read_text())
    index = json.loads((MODEL / "model_index.json").read_text())
    shipped = TaskDefaults.from_dict(index["task_defaults"]).to_dict()
    def measured_at(results: dict) -> dict:  # a benchmark file written before per-task options stores them flat
        return TaskDefaults.from_dict(results["settings"]["defaults"]).to_dict()

    assert measured_at(measured) == shipped  # measured at the settings that ship
    settings = measured["settings"]
    assert (settings["n"], settings["seed"], settings["perturb"]) == (200, BENCHMARK_SEED, "none")
    assert not any(settings[k] for k in ("caption_steps", "caption_sampler", "answer_steps", "answer_sampler"))
    card = (MODEL / "README.md").read_text()
    tables = markdown(measured).split("\n\n")
    # T2I: categories, by objects, one attribute at a time; captions, VQA, yes/no, the passes curve
    assert len(tables) == 7 and all(table in card for table in tables)
    painted = json.loads((MODEL / "benchmark_paint.json").read_text())  # the same items, drawn as a person would
    assert measured_at(painted) == shipped and painted["settings"]["perturb"] == "paint"
    assert (painted["settings"]["n"], painted["settings"]["seed"]) == (200, BENCHMARK_SEED)
    tables = markdown(painted).split("\n\n")
    assert len(tables) == 3 and all(table in card for table in tables)  # captions, VQA, yes/no
    dual = json.loads((MODEL / "benchmark_dual.json").read_text())  # in-fill, scoring, in-painting, revisable text
    assert measured_at(dual) == shipped and dual["settings"]["tasks"] == ["infill", "score", "inpaint", "revise"]
    assert (dual["settings"]["n"], dual["settings"]["seed"], dual["settings"]["perturb"]) == (200, BENCHMARK_SEED,
                                                                                           "none")
    assert all(table in card for table in markdown(dual).split("\n\n"))
    dual_paint = json.loads((MODEL / "benchmark_dual_paint.json").read_text())
    assert measured_at(dual_paint) == shipped and dual_paint["settings"]["perturb"] == "paint"
    assert all(table in card for table in markdown(dual_paint).split("\n\n"))
    assert "bash train/bundled_model.sh" in card and (MODEL.parent.parent / "train" / "bundled_model.sh").is_file()


def test_the_readmes_python_snippet_runs():
    """The README's Python example, run as a newcomer pastes it (the bundled model, from the repository root)."""
    import re
    import subprocess
    import sys

    readme = (ROOT / "README.md").read_text()
    snippet = re.search(r"## Python\n.*?```python\n(.*?)```", readme, re.S).group(1)
    out = subprocess.run([sys.executable, "-c", snippet], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("a ") and "red" in lines[1] and lines[2].startswith("a ") and "_" not in lines[2]
    assert lines[3].startswith("[") and lines[4].startswith("[") and len(lines) >= 6
