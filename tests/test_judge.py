"""The palette judge reads rendered scenes back, rejects noise and scores prompts honestly."""

import numpy as np
import pytest
from PIL import Image

import shapes_world as sw
from shapes_world.judge import matches, read_scene

N = 500


def _accuracy(seed: int, transform) -> float:
    rng = np.random.default_rng(seed)
    scenes = list(sw.iter_scenes(seed, N))
    return float(np.mean([read_scene(transform(s, rng)) == s for s in scenes]))


@pytest.mark.slow  # statistics over N scenes: about a second
def test_reads_rendered_scenes():
    assert _accuracy(10, lambda s, rng: sw.render(s, rng)) >= 0.99


@pytest.mark.slow  # statistics over N scenes: about a second
def test_reads_antialiased_scenes():
    assert _accuracy(11, lambda s, rng: sw.render(s, rng, antialias=True)) >= 0.95


@pytest.mark.slow  # statistics over N scenes: about a second
def test_reads_jpeg_scenes():
    assert _accuracy(12, lambda s, rng: sw.jpeg_round_trip(sw.render(s, rng), 90)) >= 0.95


def test_reads_larger_images():
    scene = sw.parse_caption("a small orange triangle at the top and a large purple circle on the right")
    assert read_scene(sw.render(scene, size=128)) == scene


def test_rejects_noise_and_blank_images():
    rng = np.random.default_rng(13)
    noise = [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(200)]
    assert sum(read_scene(im) is not None for im in noise) <= 1
    assert read_scene(Image.new("RGB", (64, 64), "white")) is None
    speckled = np.full((64, 64, 3), 255, dtype=np.uint8)
    mask = rng.random((64, 64)) < 0.1
    speckled[mask] = rng.integers(0, 256, (mask.sum(), 3))
    assert read_scene(Image.fromarray(speckled)) is None


@pytest.mark.slow  # statistics over N scenes: about a second
def test_matches_own_prompts_not_others():
    rng = np.random.default_rng(14)
    scenes = list(sw.iter_scenes(15, N))
    read = [read_scene(sw.render(s, rng)) for s in scenes]
    specs = [sw.parse_prompt(sw.prompt(s, rng)) for s in scenes]
    own = np.mean([matches(r, spec) for r, spec in zip(read, specs)])
    shuffled = np.mean([matches(r, spec) for r, spec in zip(read, specs[1:] + specs[:1])])
    assert own >= 0.99
    assert shuffled <= 0.1


@pytest.mark.parametrize("prompt, ok", [
    ("a red circle", True),
    ("a large red circle at the top left", True),
    ("a small red circle", False),  # wrong size
    ("a red circle in the center", False),  # wrong cell
    ("a blue circle", False),  # wrong colour
    ("a red square", False),  # wrong shape
    ("a red circle and a blue square", False),  # missing object
])
def test_matches_single_object(prompt, ok):
    scene = sw.Scene((sw.ShapeObject("circle", "red", "large", 0),))
    assert matches(scene, sw.parse_prompt(prompt)) is ok


def test_matches_rejects_extra_objects_and_none():
    scene = sw.parse_caption("a large red circle at the top left and a small blue square in the center")
    assert matches(scene, sw.parse_prompt("a blue square and a red circle"))
    assert not matches(scene, sw.parse_prompt("a red circle"))
    assert not matches(None, sw.parse_prompt("a red circle"))
