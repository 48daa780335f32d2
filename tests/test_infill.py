"""In-filling: the given words stay at their places, each blank becomes one word (never the end of the text), the
text ends where the template ends; in Python and the CLI."""

from types import SimpleNamespace

import pytest
import torch
from helpers import generator as gen

from ddit.cli import main as cli_main


def test_given_words_stay_and_every_blank_is_filled(pipe, image):
    template = "a _ red _ at the _ left"
    out = pipe.infill(image, template, generator=gen(0))
    words = out.text[0].split()
    assert len(words) == len(template.split())
    assert all(w == t for w, t in zip(words, template.split()) if t != "_")
    assert all(w != "_" for w in words)
    assert (out.token_ids != pipe.mask_token_id).all()


def test_states_show_the_given_words_from_the_first_step(pipe, image):
    template = "a _ circle"
    states = list(pipe.iter_infill(image, template, num_inference_steps=4, generator=gen(1)))
    first = states[0].token_ids[0][states[0].response_mask[0]].tolist()
    given = [pipe.tokenizer.convert_tokens_to_ids(w) for w in ("a", "circle")]
    assert first[0] == given[0] and first[2] == given[1] and first[-1] == pipe.end_token_id


def test_a_blank_never_becomes_the_end_of_the_text(pipe, image, monkeypatch):
    """A model that would end the text at every blank (the end token, sure) still fills each blank with a word."""
    end = pipe.end_token_id

    def ends_everywhere(latents, ids, timestep, mask_token_id=None):
        logits = torch.zeros(*ids.shape, len(pipe.tokenizer))
        logits[..., end] = 20.0
        return SimpleNamespace(logits=logits)

    monkeypatch.setattr(pipe, "encode_tokens", lambda ids: ids)  # the stand-in reads token ids
    monkeypatch.setattr(pipe.transformer, "forward", ends_everywhere)
    for options in ({}, {"sampler": "confidence", "threshold": 0.5, "eos_early_stop": True}):
        state = list(pipe.iter_infill(image, "a _ _ at the top", generator=gen(2), **options))[-1]
        slot = state.token_ids[0][state.response_mask[0]].tolist()
        assert len(slot) == 7 and slot[-1] == end and end not in slot[:-1], (options, slot)
        assert pipe.mask_token_id not in slot


def test_batched_templates_and_images(pipe, image):
    out = pipe.infill([image, image.rotate(90)], ["a _ circle", "_ square and a _ triangle"], generator=gen(3))
    assert [len(t.split()) for t in out.text] == [3, 6]
    assert len(pipe.infill(image, ["a _", "_ _ circle"], generator=gen(3)).text) == 2  # one image for all


@pytest.mark.parametrize("template, message", [
    ("a red circle", "needs at least one `_`"),
    ("a _ zebra", "Not in the model's vocabulary: zebra"),
    (["a _", "b _", "c _"], "Got 3 templates for 2 images"),
])
def test_bad_templates_are_refused_naming_what_is_wrong(pipe, image, template, message):
    images = [image, image] if isinstance(template, list) else image
    with pytest.raises(ValueError, match=message):
        pipe.infill(images, template)


def test_the_cli_fills_a_template(pipe, image, tmp_path, capsys):
    pipe.save_pretrained(tmp_path / "tiny")
    image.save(tmp_path / "x.png")
    assert cli_main(["infill", str(tmp_path / "x.png"), "a _ circle", "--model", str(tmp_path / "tiny")]) == 0
    text = capsys.readouterr().out.strip()  # the blank may be punctuation, which the tokenizer joins to "a"
    assert text.startswith("a") and text.endswith(" circle") and len(text.split()) in (2, 3)


@pytest.mark.slow  # the bundled model
def test_the_bundled_model_fills_blanked_attributes_as_well_as_it_captions():
    """1-3 attribute words of the true caption blanked: the filled caption is exactly right at least as often as a
    plain caption, and no given word changes."""
    import numpy as np

    import shapes_world as sw
    from ddit import DualDiffusionPipeline

    pipe = DualDiffusionPipeline.from_pretrained("ddit-shapes", device="cpu")
    rng = np.random.default_rng(29)
    scenes = list(sw.iter_scenes(29, 24))
    images = [sw.render(s, rng) for s in scenes]
    attributes = set(sw.COLORS) | set(sw.SHAPES) | set(sw.SIZES)
    templates = []
    for scene in scenes:
        words = sw.caption(scene).replace(",", " ,").split()
        blanks = rng.choice([i for i, w in enumerate(words) if w in attributes], size=int(rng.integers(1, 4)))
        templates.append(" ".join("_" if i in set(blanks.tolist()) else w for i, w in enumerate(words)))
    plain = pipe.caption(images, generator=gen(0)).text
    filled = pipe.infill(images, templates, generator=gen(0)).text
    truth = [sw.caption(s) for s in scenes]
    assert sum(f == t for f, t in zip(filled, truth)) >= sum(p == t for p, t in zip(plain, truth))
    for text, template in zip(filled, templates):
        words = text.replace(",", " ,").split()
        assert len(words) == len(template.split())
        assert all(w == t for w, t in zip(words, template.split()) if t != "_"), (text, template)
