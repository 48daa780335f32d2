"""Shapes-World: captions parse back, prompts parse, questions are unambiguous, splits fixed."""

import re

import numpy as np
import pytest

import shapes_world as sw


def _scenes(seed: int, n: int) -> list[sw.Scene]:
    return list(sw.iter_scenes(seed, n))


def test_sample_scene_invariants():
    rng = np.random.default_rng(0)
    counts = set()
    for _ in range(500):
        scene = sw.sample_scene(rng)
        cells = [o.cell for o in scene.objects]
        counts.add(len(cells))
        assert cells == sorted(set(cells)) and all(0 <= c < 9 for c in cells)
        for o in scene.objects:
            assert o.shape in sw.SHAPES and o.color in sw.COLORS and o.size in sw.SIZES
    assert counts == {1, 2, 3}
    assert len(sw.sample_scene(rng, n_objects=3).objects) == 3
    with pytest.raises(ValueError):
        sw.sample_scene(rng, n_objects=4)


def test_parse_caption_inverts_caption():
    for scene in _scenes(1, 1000):
        text = sw.caption(scene)
        assert text == text.lower()
        assert sw.parse_caption(text) == scene
    assert sw.parse_caption("  A Large RED circle at the top left ") == sw.Scene(
        (sw.ShapeObject("circle", "red", "large", 0),))


def test_caption_format():
    scene = sw.Scene((sw.ShapeObject("circle", "red", "large", 0),
                      sw.ShapeObject("square", "blue", "small", 4)))
    assert sw.caption(scene) == "a large red circle at the top left and a small blue square in the center"
    three = sw.Scene(scene.objects + (sw.ShapeObject("triangle", "green", "small", 8),))
    assert sw.caption(three) == ("a large red circle at the top left, a small blue square in the "
                                 "center and a small green triangle at the bottom right")


@pytest.mark.parametrize("text", [
    "",
    "a red circle at the top left",  # no size
    "a large red circle",  # no position
    "a small blue square in the center and a large red circle at the top left",  # order
    "a large red circle at the top left and a small blue square at the top left",  # same cell
    "a huge red circle at the top left",
    "a large pink circle at the top left",
    "a large red circle at the top left, a small blue square in the center",
    "a large red circle at the top left and and a small blue square in the center",
])
def test_parse_caption_rejects(text):
    with pytest.raises(ValueError):
        sw.parse_caption(text)


def test_parse_prompt():
    rng = np.random.default_rng(2)
    dropped_size = dropped_pos = total = 0
    for scene in _scenes(3, 300):
        spec = sw.parse_prompt(sw.prompt(scene, rng))
        assert len(spec) == len(scene.objects)
        for want, obj in zip(spec, scene.objects):
            assert (want["shape"], want["color"]) == (obj.shape, obj.color)
            assert want["size"] in (None, obj.size) and want["cell"] in (None, obj.cell)
            dropped_size += want["size"] is None
            dropped_pos += want["cell"] is None
            total += 1
    assert 0.2 < dropped_size / total < 0.4 and 0.2 < dropped_pos / total < 0.4
    scene = next(sw.iter_scenes(4))
    assert sw.prompt(scene, rng, 0.0, 0.0) == sw.caption(scene)
    assert sw.parse_prompt("an orange circle and a small blue square in the center") == [
        {"shape": "circle", "color": "orange", "size": None, "cell": None},
        {"shape": "square", "color": "blue", "size": "small", "cell": 4},
    ]
    for bad in ["a red circle and", "red circle", "a red circle, a blue square",
                "a red circle, a blue square, a red square and a blue circle"]:
        with pytest.raises(ValueError):
            sw.parse_prompt(bad)


def _expected(scene: sw.Scene, question: str) -> str | None:
    """Answer recomputed from the templates alone; None when it would be ambiguous."""
    objs = scene.objects
    templates = [
        (r"what color is the (\w+)\?", lambda s: [o.color for o in objs if o.shape == s]),
        (r"what shape is the (\w+) object\?", lambda c: [o.shape for o in objs if o.color == c]),
        (r"where is the (\w+) (\w+)\?",
         lambda c, s: [sw.CELL_NAMES[o.cell] for o in objs if (o.color, o.shape) == (c, s)]),
        (r"what size is the (\w+) (\w+)\?",
         lambda c, s: [o.size for o in objs if (o.color, o.shape) == (c, s)]),
    ]
    for pattern, find in templates:
        m = re.fullmatch(pattern, question)
        if m:
            found = find(*m.groups())
            return found[0] if len(found) == 1 else None
    if question == "how many shapes are there?":
        return sw.NUMBER_WORDS[len(objs)]
    m = re.fullmatch(r"how many (\w+) shapes are there\?", question)
    if m:
        return sw.NUMBER_WORDS[sum(o.color == m[1] for o in objs)]
    m = re.fullmatch(r"is there an? (\w+) (\w+)\?", question)
    if m:
        return "yes" if any((o.color, o.shape) == m.groups() for o in objs) else "no"
    raise AssertionError(f"question matches no template: {question!r}")


def test_questions_unambiguous():
    seen_types = set()
    for scene in _scenes(5, 300):
        qs = sw.questions(scene)
        assert len({q for q, _, _ in qs}) == len(qs)
        for question, answer, qtype in qs:
            assert qtype in sw.QTYPES
            assert _expected(scene, question) == answer, (sw.caption(scene), question)
            seen_types.add(qtype)
    assert seen_types == set(sw.QTYPES)


def test_ambiguous_questions_are_not_asked():
    scene = sw.Scene((sw.ShapeObject("circle", "red", "large", 0),
                      sw.ShapeObject("circle", "red", "small", 1)))
    asked = {q for q, _, _ in sw.questions(scene)}
    assert "what color is the circle?" not in asked
    assert "what shape is the red object?" not in asked
    assert "where is the red circle?" not in asked and "what size is the red circle?" not in asked
    assert ("how many red shapes are there?", "two", "color_count") in sw.questions(scene)


@pytest.mark.slow  # statistics over thousands of draws
def test_sample_question_balance():
    rng = np.random.default_rng(6)
    scenes = _scenes(7, 3000)
    samples = [sw.sample_question(s, rng) for s in scenes]
    assert {t for _, _, t in samples} == set(sw.QTYPES)
    exists = [a for _, a, t in samples if t == "exists"]
    assert len(exists) > 300
    assert 0.4 <= exists.count("yes") / len(exists) <= 0.6
    for scene, (question, answer, qtype) in zip(scenes[:500], samples[:500]):
        assert (question, answer, qtype) in sw.questions(scene)


@pytest.mark.slow  # statistics over thousands of draws
def test_sample_question_weights_skew_the_types_and_reject_bad_input():
    scenes = _scenes(7, 2000)
    rng = np.random.default_rng(6)
    weighted = [sw.sample_question(s, rng, {"exists": 6, "count": 0})[2] for s in scenes]
    rng_uniform = np.random.default_rng(6)
    uniform = [sw.sample_question(s, rng_uniform)[2] for s in scenes]
    assert "count" not in weighted and "count" in uniform
    assert weighted.count("exists") > 2.5 * uniform.count("exists")
    with pytest.raises(ValueError, match="unknown"):
        sw.sample_question(scenes[0], rng, {"colour": 1})
    with pytest.raises(ValueError, match="positive sum"):
        sw.sample_question(scenes[0], rng, dict.fromkeys(sw.QTYPES, 0))


@pytest.mark.slow  # statistics over thousands of draws
def test_hard_negatives_share_a_colour_or_shape_and_leave_the_default_stream_alone():
    scenes = _scenes(7, 1500)

    def near_share(hard: float) -> float:
        rng = np.random.default_rng(6)
        nos = [(q, s) for s in scenes for q, a, t in [sw.sample_question(s, rng, {"exists": 1e6}, hard)]
               if t == "exists" and a == "no"]
        for q, scene in nos:
            assert (q, "no", "exists") in sw.questions(scene)
        near = {s: {sw.exists_question(c, sh) for c, sh in sw.absent_pairs(s, near=True)} for _, s in nos}
        return sum(q in near[s] for q, s in nos) / len(nos)

    assert near_share(1.0) == 1.0
    assert near_share(0.0) < 0.9
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    assert [sw.sample_question(s, rng_a) for s in scenes[:300]] == \
        [sw.sample_question(s, rng_b, None, 0.0) for s in scenes[:300]]


def test_absent_pairs():
    scene = sw.Scene((sw.ShapeObject("circle", "red", "large", 0),))
    pairs = sw.absent_pairs(scene)
    assert len(pairs) == len(sw.COLORS) * len(sw.SHAPES) - 1 and ("red", "circle") not in pairs
    near = sw.absent_pairs(scene, near=True)
    assert set(near) == {p for p in pairs if p[0] == "red" or p[1] == "circle"}


def test_iter_scenes_deterministic_and_splits_differ():
    assert _scenes(123, 50) == _scenes(123, 50)
    assert sw.TRAIN_SEED != sw.BENCHMARK_SEED
    train, bench = _scenes(sw.TRAIN_SEED, 50), _scenes(sw.BENCHMARK_SEED, 50)
    assert sum(a == b for a, b in zip(train, bench)) < 5


def test_render():
    scene = sw.Scene((sw.ShapeObject("square", "red", "large", 0),
                      sw.ShapeObject("circle", "blue", "small", 8)))
    image = sw.render(scene)
    assert image.size == (sw.IMAGE_SIZE, sw.IMAGE_SIZE) and image.mode == "RGB"
    pixels = np.asarray(image)
    red = np.all(pixels == sw.COLORS["red"], axis=-1)
    ys, xs = np.nonzero(red)
    assert red.sum() == 18 * 18 and xs.max() < 64 / 3 and ys.max() < 64 / 3
    assert np.all(pixels[30:34, 30:34] == 255)  # the centre cell is empty
    a = sw.render(scene, np.random.default_rng(8), antialias=True)
    b = sw.render(scene, np.random.default_rng(8), antialias=True)
    assert a.size == (64, 64) and np.array_equal(np.asarray(a), np.asarray(b))


def test_jitter_keeps_objects_in_their_cells():
    rng = np.random.default_rng(9)
    for _ in range(200):
        obj = sw.ShapeObject(str(rng.choice(sw.SHAPES)), "green", str(rng.choice(list(sw.SIZES))),
                             int(rng.integers(9)))
        pixels = np.asarray(sw.render(sw.Scene((obj,)), rng, jitter=5))
        ys, xs = np.nonzero(np.any(pixels != 255, axis=-1))
        row, col = divmod(obj.cell, 3)
        w = 64 / 3
        assert col * w <= xs.min() and xs.max() < (col + 1) * w
        assert row * w <= ys.min() and ys.max() < (row + 1) * w


def test_scene_enforces_reading_order():
    a, b = sw.ShapeObject("circle", "red", "large", 0), sw.ShapeObject("square", "blue", "small", 4)
    with pytest.raises(ValueError):
        sw.Scene((b, a))
    with pytest.raises(ValueError):
        sw.Scene((a, a))


def test_shade_palette_keeps_each_colour_nearest_its_own_name():
    """Hand-mixed shades for training: every shade is off the palette, yet nearer (in hue) its own palette colour
    than any other, and the same seed gives the same shades."""
    import colorsys

    from shapes_world.render import shade_palette

    def hue(rgb):
        return colorsys.rgb_to_hsv(*[v / 255 for v in rgb])[0] * 360

    def gap(a, b):
        return min(abs(a - b), 360 - abs(a - b))

    rng = np.random.default_rng(0)
    for _ in range(200):
        shades = shade_palette(rng)
        assert shades.keys() == sw.COLORS.keys()
        for name, rgb in shades.items():
            assert rgb != sw.COLORS[name] and all(0 <= v <= 255 for v in rgb)
            nearest = min(sw.COLORS, key=lambda other: gap(hue(rgb), hue(sw.COLORS[other])))
            assert nearest == name, (name, rgb)
    assert shade_palette(np.random.default_rng(3)) == shade_palette(np.random.default_rng(3))
