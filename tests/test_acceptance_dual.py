"""The new tabs as a person uses them: ``python app.py`` with the bundled model and its own defaults, through
``gradio_client`` (the same server set-up as ``test_acceptance``). Edit: paint over one object's cell and describe
the scene with that object changed; Caption with a template: the given words kept, the blanks filled; Score: the
true caption and the true render ranked first; each control at its extremes; no traceback in the log."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
import test_acceptance as base
from test_acceptance import EXAMPLES, IMAGE_STATS, MAX_STEPS, STATS, caption

import shapes_world as sw
from shapes_world.benchmark.dual import cell_mask, changed, distractors

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import handle_file  # noqa: E402

pytestmark = pytest.mark.slow  # the bundled model behind a real server
server, client = base.server, base.client  # the same fixtures, a server of this module's own
SIDE = 256  # a person's upload, larger than the model's 64 px


def edit_inputs(tmp_path, scene: sw.Scene, index: int, rng: np.random.Generator, name: str) -> dict:
    """The editor's value a person makes: the scene at 4x as the background, a white brush over one object's cell."""
    background = tmp_path / f"{name}_bg.png"
    sw.render(scene, rng).resize((SIDE, SIDE), Image.NEAREST).save(background)
    alpha = np.asarray(cell_mask(scene.objects[index].cell, SIDE))
    layer = np.zeros((SIDE, SIDE, 4), np.uint8)
    layer[alpha > 0] = (255, 255, 255, 255)
    path = tmp_path / f"{name}_layer.png"
    Image.fromarray(layer).save(path)
    return {"background": handle_file(str(background)), "layers": [handle_file(str(path))], "composite": None,
            "id": None}


def edit(client, editor: dict, prompt: str, **controls):
    job = client.submit(editor, prompt, api_name="/edit", **controls)
    final = job.result()
    return job.outputs(), final


def read_back(path: str) -> sw.Scene | None:
    return sw.read_scene(Image.open(path).convert("RGB").resize((sw.IMAGE_SIZE, sw.IMAGE_SIZE), Image.NEAREST))


def test_edit_repaints_one_object_and_keeps_the_other(client, tmp_path):
    rng, right, n = np.random.default_rng(29), 0, 12
    for i in range(n):
        scene = sw.sample_scene(rng, 2)
        index = int(rng.integers(2))
        attribute = ("color", "shape")[i % 2]
        values = [v for v in (sw.COLORS if attribute == "color" else sw.SHAPES)
                  if v != getattr(scene.objects[index], attribute)]
        target = changed(scene, index, attribute, values[int(rng.integers(len(values)))])
        outputs, (image, strip, gif, status, mask) = edit(client, edit_inputs(tmp_path, scene, index, rng, str(i)),
                                                          sw.caption(target))
        assert IMAGE_STATS.match(status) and len(strip) == len(outputs) - 1 and gif.endswith(".gif"), status
        assert np.asarray(Image.open(mask)).max() == 255
        right += read_back(image) == target
    assert right >= 0.75 * n, f"{right}/{n} edits read back as the changed scene"


@pytest.mark.parametrize("controls", [dict(steps=1), dict(steps=MAX_STEPS), dict(strength=0.2, steps=10),
                                      dict(strength=1.0), dict(guidance=1.0), dict(guidance=50.0)])
def test_edit_controls_at_their_extremes(client, tmp_path, controls):
    scene = sw.sample_scene(np.random.default_rng(3), 2)
    outputs, final = edit(client, edit_inputs(tmp_path, scene, 0, np.random.default_rng(3), "x"),
                          sw.caption(scene), **controls)
    assert IMAGE_STATS.match(final[3]), final[3]
    assert Image.open(final[0]).size == (SIDE, SIDE)


def test_draw_a_scene_to_edit_fills_the_editor_and_the_prompt(client):
    editor, prompt, drawn = client.predict(api_name="/fresh_canvas")
    assert drawn == f"drawn: {prompt}" and prompt.startswith("a ")
    assert Image.open(editor["background"]).size == (sw.IMAGE_SIZE, sw.IMAGE_SIZE)  # the model's own size


@pytest.mark.parametrize("controls, message", [
    (dict(strength=0), "strength"), (dict(strength=0.05), "leaves no step"), (dict(steps=0), "num_inference_steps"),
])
def test_edit_mistakes_are_named(client, tmp_path, controls, message):
    scene = sw.sample_scene(np.random.default_rng(4), 1)
    with pytest.raises(Exception, match=message):
        edit(client, edit_inputs(tmp_path, scene, 0, np.random.default_rng(4), "m"), sw.caption(scene), **controls)


def test_a_template_keeps_its_words_and_fills_the_blanks(client, tmp_path):
    rng, exact, n = np.random.default_rng(31), 0, 12
    for i in range(n):
        scene = sw.sample_scene(rng, int(rng.integers(1, 4)))
        path = tmp_path / f"fill_{i}.png"
        sw.render(scene, rng).save(path)
        words = sw.caption(scene).replace(",", " ,").split()
        blanks = {1, len(words) - 1}
        template = " ".join("_" if k in blanks else w for k, w in enumerate(words))
        outputs, (tokens, text, slider, status) = caption(client, path, template=template)
        assert STATS.match(status), status
        got = text.replace(",", " ,").split()
        assert len(got) == len(words) and all(g == w for k, (g, w) in enumerate(zip(got, words)) if k not in blanks)
        assert {span["class_or_confidence"] for span in tokens} >= {"given"}
        exact += text == sw.caption(scene)
    assert exact >= 0.9 * n, f"{exact}/{n} filled captions exact"


@pytest.mark.parametrize("sampler, colour", [("remask", "confidence"), ("confidence", "new this step"),
                                             ("ancestral", "confidence")])
def test_caption_samplers_and_colourings(client, sampler, colour):
    outputs, (tokens, text, slider, status) = caption(client, EXAMPLES[1], sampler=sampler, colour=colour)
    assert text.strip() and STATS.match(status)
    legend = {"new", None} if colour == "new this step" else {"sure (p ≥ 0.9)", "fairly sure (0.5-0.9)",
                                                               "unsure (p < 0.5)", None}
    assert {span["class_or_confidence"] for span in tokens} <= legend


def test_score_ranks_the_true_caption_and_render_first(client, tmp_path):
    rng, texts_right, images_right, n = np.random.default_rng(37), 0, 0, 8
    for i in range(n):
        scene = sw.sample_scene(rng, int(rng.integers(1, 4)))
        wrong = distractors(scene, rng)
        paths = []
        for k, s in enumerate([scene] + wrong):
            paths.append(tmp_path / f"rank_{i}_{k}.png")
            sw.render(s, np.random.default_rng(i)).save(paths[-1])
        lines = "\n".join(sw.caption(s) for s in [wrong[0], scene] + wrong[1:])
        table, status = client.predict(handle_file(str(paths[0])), lines, api_name="/rank_texts")
        assert status.startswith("done: 4 candidates") and len(table["data"]) == 4
        texts_right += table["data"][0][1] == sw.caption(scene)
        table, gallery, status = client.predict(sw.caption(scene), [handle_file(str(p)) for p in paths],
                                                api_name="/rank_images")
        images_right += table["data"][0][1] == paths[0].name
        assert len(gallery) == 4
    assert texts_right >= n - 1 and images_right >= n - 1, (texts_right, images_right)


@pytest.mark.parametrize("samples", [1, 64])
def test_score_passes_at_their_extremes(client, samples):
    table, status = client.predict(handle_file(str(EXAMPLES[0])), "a red circle\na blue square", samples, 0,
                                   api_name="/rank_texts")
    assert f"{samples} forward passes each" in status and len(table["data"]) == 2


def test_score_mistakes_are_named(client):
    with pytest.raises(Exception, match="at least two captions"):
        client.predict(handle_file(str(EXAMPLES[0])), "a red circle", api_name="/rank_texts")
    with pytest.raises(Exception, match="num_samples"):
        client.predict(handle_file(str(EXAMPLES[0])), "a red circle\na blue square", 0, 0, api_name="/rank_texts")
    with pytest.raises(Exception, match="at least two images"):
        client.predict("a red circle", [handle_file(str(EXAMPLES[0]))], api_name="/rank_images")


def test_the_server_log_has_no_traceback(server):
    """Last: every mistake above was handled, none crashed a handler."""
    text = server[1].read_text()
    assert "Traceback" not in text and "exception" not in text.lower(), text[-3000:]
