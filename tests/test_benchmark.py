"""The benchmark runs on a real (tiny) pipeline, and its scoring is right: oracle fakes score 1, blank ones 0."""

import json

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from ddit.pipeline import DualDiffusionImageOutput, DualDiffusionTextOutput
from ddit.task_defaults import TaskDefaults
from ddit.presets import build_tiny_pipeline
import shapes_world as sw
from shapes_world import benchmark as bench
from shapes_world.benchmark.cli import main as benchmark_main
from shapes_world.benchmark.report import markdown
from shapes_world.judge import read_scene

N = 12  # enough benchmark items for every T2I category and several question types


class FakePipeline:
    """Answers like the real pipeline (same methods, same output objects) from the ground truth.

    ``mode``: "oracle" (right), "blank" (white images, empty text), "swap" (T2I colours rotated
    among the objects of each prompt) or "yes" (answers every question "yes").
    """

    def __init__(self, mode: str = "oracle"):
        self.mode = mode
        self.defaults = TaskDefaults()
        self.scheduler = FlowMatchEulerDiscreteScheduler()  # the benchmark reports its solver and passes

    def set_progress_bar_config(self, **kwargs):
        pass

    def _draw(self, text: str):
        spec = sw.parse_prompt(text)
        free = iter(c for c in range(9) if c not in {s["cell"] for s in spec})
        colors = [s["color"] for s in spec]
        if self.mode == "swap":
            colors = colors[1:] + colors[:1]
        objects = [sw.ShapeObject(s["shape"], color, s["size"] or "large",
                                  s["cell"] if s["cell"] is not None else next(free))
                   for s, color in zip(spec, colors)]
        scene = sw.Scene(tuple(sorted(objects, key=lambda o: o.cell)))
        return sw.render(sw.Scene(()) if self.mode == "blank" else scene)

    def __call__(self, prompt, generator=None, num_inference_steps=None, guidance_scale=None, guidance_interval=None):
        assert isinstance(generator, torch.Generator)
        return DualDiffusionImageOutput(images=[self._draw(p) for p in prompt])

    def _text(self, texts):
        return DualDiffusionTextOutput(text=["" if self.mode == "blank" else t for t in texts],
                                       token_ids=torch.zeros(len(texts), 1, dtype=torch.long))

    def caption(self, image, num_inference_steps=None, sampler=None, generator=None):
        return self._text([sw.caption(read_scene(i)) for i in image])

    def answer(self, image, question, num_inference_steps=None, sampler=None, generator=None):
        if self.mode == "yes":
            return self._text(["yes"] * len(question))
        return self._text([{q: a for q, a, _ in sw.questions(read_scene(i))}[question_]
                           for i, question_ in zip(image, question)])


@pytest.fixture(scope="module")
def tiny():
    pipe = build_tiny_pipeline(seed=0)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _in_unit(value):
    return value is None or 0.0 <= value <= 1.0


def test_items_are_deterministic_and_perturbations_change_inputs():
    assert bench.t2i_prompts(N) == bench.t2i_prompts(N)
    assert any(s["cell"] is None for p in bench.t2i_prompts(N) for s in sw.parse_prompt(p))
    scenes, base = bench.benchmark_images(3)
    for perturb in ("jitter", "antialias", "jpeg", "paint"):
        _, images = bench.benchmark_images(3, perturb=perturb)
        assert images[0].size == base[0].size
        assert any(not np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(images, base))
    with pytest.raises(ValueError):
        bench.benchmark_images(1, perturb="blur")


def test_paint_perturbation_draws_off_the_training_palette():
    """Scenes "as a person draws them": no pixel has a training colour, and each object keeps its hue family."""
    scenes, painted = bench.benchmark_images(20, perturb="paint")
    palette = {tuple(rgb) for rgb in sw.COLORS.values()}
    pixels = np.concatenate([np.asarray(i).reshape(-1, 3) for i in painted])
    assert not any(tuple(p) in palette for p in np.unique(pixels, axis=0))
    assert bench.benchmark_images(20, perturb="paint")[1][5].tobytes() == painted[5].tobytes()  # seeded
    reds = [np.asarray(i).reshape(-1, 3) for s, i in zip(scenes, painted)
            if len(s.objects) == 1 and s.objects[0].color == "red"]
    assert reds
    for image in reds:  # the most saturated pixel of a red object is red-dominant
        r, g, b = image[np.argmax(image.max(1).astype(int) - image.min(1))].astype(int)
        assert r > 200 and g < 60 and b < 60


def test_t2i_scoring_oracle_blank_and_swapped_colours():
    oracle = bench.evaluate_t2i(FakePipeline("oracle"), n=N, batch=5)
    assert all(c["n"] > 0 for c in oracle["categories"].values())
    assert all(c["accuracy"] == 1.0 for c in oracle["categories"].values())
    assert oracle["overall"] == oracle["geneval_mean"] == 1.0
    by_objects = oracle["by_objects"]
    assert list(by_objects) == ["1", "2", "3"] and sum(g["n"] for g in by_objects.values()) == N
    assert all(g["accuracy"] == 1.0 for g in by_objects.values() if g["n"])
    blank = bench.evaluate_t2i(FakePipeline("blank"), n=N, batch=5)
    assert all(c["accuracy"] == 0.0 for c in blank["categories"].values()) and blank["overall"] == 0.0
    assert all(g["accuracy"] in (0.0, None) for g in blank["by_objects"].values())
    assert all(a["accuracy"] == 0.0 for a in blank["attributes"].values())
    assert all(a["accuracy"] == 1.0 and a["n"] > 0 for a in oracle["attributes"].values())
    swap = bench.evaluate_t2i(FakePipeline("swap"), n=N, batch=5)["categories"]
    assert swap["single_object"]["accuracy"] == swap["counting"]["accuracy"] == swap["colors"]["accuracy"] == 1.0
    assert swap["attribute_binding"]["accuracy"] == 0.0
    swapped = bench.evaluate_t2i(FakePipeline("swap"), n=N, batch=5)["attributes"]
    assert all(a["accuracy"] == 1.0 for a in swapped.values())  # each attribute alone: binding is not seen


def test_caption_scoring():
    oracle = bench.evaluate_caption(FakePipeline("oracle"), n=N, batch=5)
    assert oracle["exact"] == 1.0 and oracle["cider"] > 5.0  # CIDEr of identical text approaches 10
    blank = bench.evaluate_caption(FakePipeline("blank"), n=N, batch=5)
    assert blank["exact"] == 0.0 and blank["cider"] == 0.0


def test_vqa_scoring():
    result = bench.evaluate_vqa(FakePipeline("oracle"), n=40, batch=16)
    assert result["overall"] == 1.0
    assert all(t["accuracy"] in (None, 1.0) for t in result["per_type"].values())
    assert bench.evaluate_vqa(FakePipeline("blank"), n=40, batch=16)["overall"] == 0.0


def test_yes_no_probes_are_balanced_true_and_adversarial_negatives_are_near():
    scenes = list(sw.iter_scenes(sw.BENCHMARK_SEED, 60))
    for setting in bench.POPE_SETTINGS:
        probes = bench.yes_no_probes(scenes, setting=setting)
        assert [a for _, a in probes] == ["yes", "no"] * 30
        for scene, (question, answer) in zip(scenes, probes):
            assert (question, answer, "exists") in sw.questions(scene)
    for scene, (question, answer) in zip(scenes, bench.yes_no_probes(scenes, setting="adversarial")):
        color, shape = question.rstrip("?").split()[-2:]
        assert answer == "yes" or any(o.color == color or o.shape == shape for o in scene.objects)
    with pytest.raises(ValueError, match="POPE"):
        bench.yes_no_probes(scenes, setting="popular")


def test_yes_no_scoring():
    oracle = bench.evaluate_yes_no(FakePipeline("oracle"), n=20, batch=8)
    always = bench.evaluate_yes_no(FakePipeline("yes"), n=20, batch=8)
    for setting in bench.POPE_SETTINGS:
        assert oracle[setting]["accuracy"] == oracle[setting]["f1"] == 1.0 and oracle[setting]["yes_ratio"] == 0.5
        assert always[setting]["accuracy"] == 0.5 and always[setting]["yes_ratio"] == 1.0
        assert always[setting]["recall"] == 1.0 and always[setting]["precision"] == 0.5


def test_tiny_pipeline_runs_every_task(tiny):
    t2i = bench.evaluate_t2i(tiny, n=4, batch=3)
    assert set(t2i["categories"]) == set(bench.T2I_CATEGORIES)
    assert all(_in_unit(c["accuracy"]) for c in t2i["categories"].values()) and _in_unit(t2i["overall"])
    caption = bench.evaluate_caption(tiny, n=4, batch=3, perturb="jpeg")
    assert _in_unit(caption["exact"]) and caption["cider"] >= 0.0
    assert caption["settings"] == {"steps": 4, "sampler": "ancestral", "perturb": "jpeg"}
    vqa = bench.evaluate_vqa(tiny, n=4, batch=3)
    assert set(vqa["per_type"]) == set(sw.QTYPES) and _in_unit(vqa["overall"])
    yes_no = bench.evaluate_yes_no(tiny, n=4, batch=3)
    assert all(_in_unit(v) for s in bench.POPE_SETTINGS for v in yes_no[s].values() if v is not None)
    speed = bench.measure_speed(tiny, items=1)["seconds_per_item"]
    assert set(speed) == {"image", "caption", "answer"} and all(v > 0 for v in speed.values())


def test_fewest_steps_must_lose_under_one_point():
    assert bench.fewest_steps({1: 0.98, 2: 0.97, 4: 0.99, 8: 0.99}) == 4   # exactly 1 point lost is too much
    assert bench.fewest_steps({1: 0.985, 4: 0.99}) == 1
    assert bench.fewest_steps({1: 0.90, 8: 0.90}) == 1


def test_sweep_caps_steps_at_the_slot(tiny):
    sweep = bench.sweep_text_steps(tiny, n=2, batch=2, steps=(1, 4, 32))
    caption_steps = {r["steps"] for r in sweep["rows"] if r["task"] == "caption"}
    assert caption_steps == {1, 4, tiny.defaults.caption.max_length}
    assert {r["steps"] for r in sweep["rows"] if r["task"] == "vqa"} == {1, tiny.defaults.answer.max_length}
    assert set(sweep["fewest_steps"]) == {"caption", "vqa"}
    assert set(sweep["fewest_steps"]["vqa"]) == {"ancestral", "confidence", "remask"}
    assert all(r["forward_passes"] >= 1 for r in sweep["rows"])


def test_t2i_sweep_is_accuracy_against_passes(tiny):
    plan = (("euler", 3, 1.0, 2.0, (0.0, 1.0)), ("dpm++2m", 3, 2.0, 2.0, (0.6, 1.0)))  # sigmas 1, .8 guided; .5 not
    sweep = bench.sweep_t2i(tiny, n=2, batch=2, plan=plan)
    rows = sweep["rows"]
    assert [(r["solver"], r["steps"], r["passes"]) for r in rows] == [
        ("euler", 3, 6), ("dpm++2m", 3, 5), ("euler", tiny.defaults.generate.num_inference_steps, 2 * tiny.defaults.generate.num_inference_steps)]
    assert [r["default"] for r in rows] == [False, False, True]  # the model's own settings are added
    assert type(tiny.scheduler).__name__ == "FlowMatchEulerDiscreteScheduler"  # put back after the sweep
    assert all(_in_unit(r["overall"]) for r in rows) and sweep["reference"] == rows[0]
    assert sweep["fewest_passes"] in {r["passes"] for r in rows}
    assert "T2I against transformer passes" in bench.report({"t2i_sweep": sweep})
    assert "| dpm++2m | 3 | 2 | 2 | 0.6-1 | 5 |" in markdown({"t2i_sweep": sweep})
    assert "| euler | 3 | 1 | 2 | all | 6 |" in markdown({"t2i_sweep": sweep})


def test_main_writes_json(tmp_path, capsys):
    build_tiny_pipeline().save_pretrained(tmp_path / "tiny")
    out = tmp_path / "e.json"
    benchmark_main(["--model", str(tmp_path / "tiny"), "--n", "2", "--speed-items", "1", "--tasks", "caption,vqa,yesno",
                "--json", str(out), "--device", "cpu"])
    saved = json.loads(out.read_text())
    assert {"settings", "caption", "vqa", "yesno", "speed"} <= set(saved) and "t2i" not in saved
    assert "Captioning" in capsys.readouterr().out


def test_main_sampler_overrides_and_held_out_seed(tmp_path, capsys):
    build_tiny_pipeline().save_pretrained(tmp_path / "tiny")
    out = tmp_path / "e.json"
    benchmark_main(["--model", str(tmp_path / "tiny"), "--n", "2", "--speed-items", "0", "--tasks", "caption,vqa,yesno",
                "--seed", "4242", "--answer-sampler", "ancestral", "--answer-steps", "3", "--caption-sampler",
                "ancestral", "--caption-steps", "2", "--json", str(out), "--device", "cpu"])
    saved = json.loads(out.read_text())
    assert saved["settings"]["seed"] == 4242
    assert saved["vqa"]["settings"]["sampler"] == saved["yesno"]["settings"]["sampler"] == "ancestral"
    assert saved["vqa"]["settings"]["steps"] == 3
    assert saved["caption"]["settings"] == {"steps": 2, "sampler": "ancestral", "perturb": "none"}
    printed = capsys.readouterr().out
    assert "seed 4242" in printed and "vqa: sampler ancestral, steps 3" in printed
    assert "caption: sampler ancestral, steps 2" in printed
    for flag in ("--answer-steps", "--caption-steps"):
        with pytest.raises(SystemExit):
            benchmark_main(["--model", str(tmp_path / "tiny"), flag, "0"])
