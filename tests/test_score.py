"""Scoring with the model's own likelihoods: one score per candidate, the same draws for every candidate, the image
(or the prompt) counts, deterministic for a seed; the CLI ranks them."""

import numpy as np
import pytest
from helpers import generator as gen
from PIL import Image

from ddit.cli import main as cli_main


@pytest.fixture
def other_image():
    return Image.fromarray(np.random.default_rng(7).integers(0, 256, (16, 16, 3), dtype=np.uint8))


def test_one_score_per_text_deterministic_for_a_seed(pipe, image):
    texts = ["a red circle", "a blue square", "a green triangle at the top"]
    out = pipe.score_texts(image, texts, num_samples=4, generator=gen(0))
    assert len(out.scores) == 3 and out.forward_passes == 4 and all(np.isfinite(out.scores))
    assert all(s <= 0 for s in out.scores)  # a lower bound of a log-probability
    assert pipe.score_texts(image, texts, num_samples=4, generator=gen(0)).scores == out.scores


def test_every_candidate_sees_the_same_timesteps_and_masks(pipe, image):
    """The same text twice gets exactly the same score: the draws are shared, so differences are the texts'."""
    a, b, c = pipe.score_texts(image, ["a red circle", "a blue square", "a red circle"], num_samples=3,
                               generator=gen(1)).scores
    assert a == c != b


def test_the_image_counts(pipe, image, other_image):
    texts = ["a red circle", "a blue square"]
    assert (pipe.score_texts(image, texts, num_samples=2, generator=gen(2)).scores
            != pipe.score_texts(other_image, texts, num_samples=2, generator=gen(2)).scores)


def test_images_for_a_prompt_share_timesteps_and_noise(pipe, image, other_image):
    out = pipe.score_images("a red circle", [image, other_image, image], num_samples=3, generator=gen(3))
    assert len(out.scores) == 3 and out.forward_passes == 3
    assert out.scores[0] == out.scores[2] != out.scores[1] and all(s < 0 for s in out.scores)
    again = pipe.score_images("a blue square", [image, other_image, image], num_samples=3, generator=gen(3))
    assert again.scores != out.scores  # the prompt counts


@pytest.mark.parametrize("call, message", [
    (lambda p, i: p.score_texts(i, []), "empty list"),
    (lambda p, i: p.score_texts(i, ["a red circle", " "]), "non-empty strings"),
    (lambda p, i: p.score_texts([i, i], ["a red circle"]), "one image"),
    (lambda p, i: p.score_texts(i, ["a red circle"], num_samples=0), "`num_samples` must be between 1"),
    (lambda p, i: p.score_images("", [i]), "`prompt` is empty"),
    (lambda p, i: p.score_images("a red circle " * 40, [i]), "tokens long"),
])
def test_bad_input_is_refused(pipe, image, call, message):
    with pytest.raises(ValueError, match=message):
        call(pipe, image)


def test_the_cli_ranks_best_first(pipe, image, other_image, tmp_path, capsys):
    pipe.save_pretrained(tmp_path / "tiny")
    image.save(tmp_path / "a.png")
    other_image.save(tmp_path / "b.png")
    common = ["--model", str(tmp_path / "tiny"), "--samples", "2"]
    assert cli_main(["score", str(tmp_path / "a.png"), "--texts", "a red circle", "a blue square", *common]) == 0
    rows = [line.split(None, 1) for line in capsys.readouterr().out.strip().splitlines()]
    assert sorted(text for _, text in rows) == ["a blue square", "a red circle"]
    assert float(rows[0][0]) >= float(rows[1][0])
    assert cli_main(["score", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--prompt", "a red circle",
                     *common]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2
    assert cli_main(["score", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--texts", "a", *common]) == 2


@pytest.mark.slow  # the bundled model
def test_the_bundled_model_picks_the_true_caption_and_image():
    import shapes_world as sw
    from ddit import DualDiffusionPipeline
    from shapes_world.scene import Scene, ShapeObject

    pipe = DualDiffusionPipeline.from_pretrained("ddit-shapes", device="cpu")
    right_texts = right_images = 0
    for i, scene in enumerate(sw.iter_scenes(31, 12)):
        first = scene.objects[0]
        wrong = [Scene((ShapeObject(**{**first.__dict__, "color": c}), *scene.objects[1:]))
                 for c in list(sw.COLORS) if c != first.color][:3]
        image = sw.render(scene, np.random.default_rng(i))
        texts = [sw.caption(scene)] + [sw.caption(w) for w in wrong]
        right_texts += int(np.argmax(pipe.score_texts(image, texts, generator=gen(i)).scores) == 0)
        images = [image] + [sw.render(w, np.random.default_rng(i)) for w in wrong]
        right_images += int(np.argmax(pipe.score_images(texts[0], images, generator=gen(i)).scores) == 0)
    assert right_texts >= 11 and right_images >= 10, (right_texts, right_images)
