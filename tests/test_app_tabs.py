"""The app's new tabs and views, called as the page calls them: Edit (a painted mask), Score (rankings), the
Caption tab's in-fill template, tokens coloured by confidence, the Chat note; and a page that follows the model it
serves (no Shapes-World helpers for a model in the released layout)."""

import math

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image
from test_released_layout import save_released_folder

import app
import app_image
import app_inputs
import app_score
import app_text
from ddit import DualDiffusionPipeline, TextStep
from ddit.presets import build_tiny_pipeline

pytestmark = pytest.mark.slow  # the app: importing gradio takes seconds


@pytest.fixture(scope="module")
def pipe():
    pipeline = build_tiny_pipeline(seed=0)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


@pytest.fixture(scope="module")
def scene():
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8))


def editor_value(image: Image.Image, painted_left: bool = True) -> dict:
    layer = np.zeros((image.height, image.width, 4), np.uint8)
    if painted_left:
        layer[:, : image.width // 2] = (255, 255, 255, 255)
    return {"background": np.asarray(image.convert("RGBA")), "layers": [layer], "composite": None}


def labels(demo) -> set:
    return {getattr(block, "label", None) for block in demo.blocks.values()}


def test_the_page_has_the_new_tabs(pipe):
    demo = app.build_demo(pipe)
    tabs = {b.label for b in demo.blocks.values() if isinstance(b, gr.Tab)}
    assert tabs == {"Generate", "Edit", "Caption", "Chat", "Score"}
    assert {"Image: paint what should change", "Strength", "Captions, one per line", "Images to rank",
            "Template (optional): fill in the blanks", "Colour tokens by"} <= labels(demo)
    notes = [b.value for b in demo.blocks.values() if isinstance(b, gr.Markdown)]
    assert app_text.CHAT_NOTE in notes


def test_edit_streams_each_step_and_keeps_the_unpainted_half(pipe, scene):
    updates = list(app_image.edit(pipe, editor_value(scene), "a red circle", 3, 2.0, 1.0, 0))
    assert len(updates) == 3 + 1
    assert all(isinstance(u[4], dict) for u in updates[:-1])  # gr.skip(): the mask is sent once, at the end
    final, strip, gif, status, mask = updates[-1]
    assert status.startswith("done: 3 steps") and len(strip) == 3 and gif.endswith(".gif")
    shown = np.asarray(final.resize((16, 16), Image.NEAREST)).astype(int)
    assert (shown[:, 8:] == np.asarray(scene)[:, 8:]).all()  # black (unpainted) half: the given pixels
    assert not (shown[:, :8] == np.asarray(scene)[:, :8]).all()
    assert np.asarray(mask)[:, : mask.width // 2].min() == 255 and np.asarray(mask)[:, mask.width // 2:].max() == 0


@pytest.mark.parametrize("editor, prompt, message", [
    (None, "a red circle", "upload an image"), ("unpainted", "a red circle", "Paint over"),
    ("painted", " ", "describe the picture"),
])
def test_edit_refuses_what_is_missing(pipe, scene, editor, prompt, message):
    value = None if editor is None else editor_value(scene, painted_left=editor == "painted")
    with pytest.raises(gr.Error, match=message):
        list(app_image.edit(pipe, value, prompt, 3, 2.0, 1.0, 0))


def test_edit_names_a_bad_strength(pipe, scene):
    with pytest.raises(gr.Error, match="strength"):
        list(app_image.edit(pipe, editor_value(scene), "a red circle", 3, 2.0, 1.5, 0))


def test_score_ranks_captions_and_images_best_first(pipe, scene, tmp_path):
    rows, status = app_score.rank_texts(pipe, scene, "a red circle\na blue square\n\na green triangle", 2, 0)
    assert [r[0] for r in rows] == [1, 2, 3] and sorted(r[1] for r in rows) == ["a blue square", "a green triangle",
                                                                                  "a red circle"]
    assert rows[0][2] >= rows[1][2] >= rows[2][2] and status.startswith("done: 3 candidates · 2 forward passes")
    paths = []
    for i in range(3):
        paths.append(str(tmp_path / f"c{i}.png"))
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(paths[-1])
    rows, gallery, status = app_score.rank_images(pipe, "a red circle", paths, 2, 0)
    assert sorted(r[1] for r in rows) == ["c0.png", "c1.png", "c2.png"] and len(gallery) == 3
    with pytest.raises(gr.Error, match="at least two"):
        app_score.rank_texts(pipe, scene, "only one", 2, 0)
    with pytest.raises(gr.Error, match="num_samples"):
        app_score.rank_texts(pipe, scene, "a red circle\na blue square", 0, 0)


def test_the_caption_tab_fills_a_template_and_marks_its_words_given(pipe, scene):
    updates = list(app_text.caption(pipe, scene, 4, 6, "confidence", 0, 0, "a _ red _"))
    tokens, text, _, history, status = updates[-1]
    words = text.split()
    assert len(words) == 4 and words[0] == "a" and words[2] == "red"
    given = [t.strip() for t, label in tokens if label == "given"]
    assert "a" in given and "red" in given
    with pytest.raises(gr.Error, match="no blank"):
        list(app_text.caption(pipe, scene, 4, 6, "confidence", 0, 0, "a red circle"))


def test_tokens_are_coloured_by_the_confidence_they_were_committed_with(pipe):
    words = [pipe.tokenizer.convert_tokens_to_ids(w) for w in ("q", "a", "red", "circle")]
    ids = torch.tensor([words + [pipe.mask_token_id]])
    state = TextStep(step=0, num_steps=2, token_ids=ids, masked=ids == pipe.mask_token_id,
                     revealed=torch.tensor([[False, True, False, False, False]]),
                     response_mask=torch.tensor([[False, True, True, True, True]]), reused_prediction=False,
                     confidence=torch.tensor([[math.nan, 0.95, 0.6, 0.1, math.nan]]))
    by_confidence = [label for _, label in app_text.token_view(pipe, state)]
    assert by_confidence == ["given", "sure (p ≥ 0.9)", "fairly sure (0.5-0.9)", "unsure (p < 0.5)", "masked"]
    by_step = [label for _, label in app_text.token_view(pipe, state, colour="new this step")]
    assert by_step == ["given", "new", None, None, "masked"]
    assert set(by_confidence) - {None} <= set(app_text.LEGENDS["confidence"])  # each label is in its legend
    assert set(by_step) - {None} <= set(app_text.LEGENDS["new this step"])
    history = [app_text.views(pipe, state)]
    assert app_text.replay(1, history, "new this step") == app_text.token_view(pipe, state, colour="new this step")
    toggled = app_text.recolour(1, history, "new this step")  # the toggle: the view and its own legend
    assert toggled["value"] == app_text.token_view(pipe, state, colour="new this step")
    assert "new" in toggled["color_map"] and "sure (p ≥ 0.9)" not in toggled["color_map"]


def test_a_released_layout_model_gets_no_shapes_world_helpers(tmp_path):
    folder = save_released_folder(tmp_path / "released")
    assert not app_inputs.Domain.of_folder(folder).shapes_world
    pipe = DualDiffusionPipeline.from_pretrained(folder, device="cpu")
    demo = app.build_demo(pipe)
    buttons = {b.value for b in demo.blocks.values() if isinstance(b, gr.Button)}
    assert not {"Draw a new scene", "Draw a new scene to edit"} & buttons
    examples = [b for b in demo.blocks.values() if isinstance(b, gr.Dataset)]
    shown = {str(sample[0]) for b in examples for sample in b.samples}
    assert set(app_inputs.GENERAL_PROMPTS) <= shown and not any(p.endswith(".png") for p in shown)
    numbers = {(b.label, b.value) for b in demo.blocks.values() if isinstance(b, gr.Number)}
    assert {("Steps", 28), ("Guidance", 7.0), ("Steps", 32), ("Steps", 128)} <= numbers  # the authors' settings


def test_the_bundled_model_gets_the_shapes_world_helpers():
    domain = app_inputs.Domain.of_folder(app_inputs.EXAMPLES_DIR.parent / "ddit-shapes")
    assert domain.shapes_world and len(domain.example_images) == 6
    assert domain.example_prompts[0] == app_inputs.EXAMPLE_PROMPTS[0]
