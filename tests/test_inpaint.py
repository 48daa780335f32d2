"""In-painting: white repaints, black keeps (diffusers' convention) with every flow solver; the mask is dilated to
latent cells; strength starts part of the way; bad inputs are refused in one line; the CLI writes the image."""

import numpy as np
import pytest
import torch
from helpers import generator as gen
from PIL import Image

from ddit.cli import main as cli_main
from ddit.image_sampling import flow_scheduler
from ddit.tasks.inpaint import latent_keep

PROMPT = "a red circle"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    assert cli_main(["save-tiny", str(folder)]) == 0
    return folder


def left_half_white(side: int = 16) -> Image.Image:
    mask = np.zeros((side, side), np.uint8)
    mask[:, : side // 2] = 255
    return Image.fromarray(mask)


def given_latents(pipe, image):
    return pipe.encode_image([image]).float()


@pytest.mark.parametrize("solver", ["euler", "heun", "dpm++2m", "unipc"])
def test_black_is_kept_and_white_is_repainted_with_every_solver(pipe, image, solver):
    pipe.scheduler = flow_scheduler(solver, 2.0)
    latents = pipe.inpaint(image, left_half_white(), PROMPT, generator=gen(0), output_type="latent").images
    given = given_latents(pipe, image)
    assert torch.equal(latents[..., 4:], given[..., 4:])  # right half (black): the given image's latents exactly
    assert (latents[..., :4] - given[..., :4]).abs().mean() > 0.1  # left half (white): repainted


def test_kept_pixels_are_the_given_image_and_paste_kept_false_decodes_them(pipe, image):
    out = np.asarray(pipe.inpaint(image, left_half_white(), PROMPT, generator=gen(1)).images[0]).astype(int)
    given = np.asarray(image.resize((16, 16))).astype(int)
    assert (out[:, 8:] == given[:, 8:]).all()
    decoded = np.asarray(pipe.inpaint(image, left_half_white(), PROMPT, generator=gen(1),
                                      paste_kept=False).images[0]).astype(int)
    assert (decoded[:, :8] == out[:, :8]).all() and not (decoded[:, 8:] == given[:, 8:]).all()


def test_an_all_black_mask_returns_the_image_and_an_all_white_one_is_generation(pipe, image):
    black = Image.new("L", (16, 16), 0)
    latents = pipe.inpaint(image, black, PROMPT, generator=gen(2), output_type="latent").images
    assert torch.equal(latents, given_latents(pipe, image))
    white = Image.new("L", (16, 16), 255)
    noise = torch.randn(1, 4, 8, 8, generator=gen(3))
    inpainted = pipe._last_state(pipe.iter_inpaint(image, white, PROMPT, latents=noise.clone())).latents
    generated = pipe._last_state(pipe.iter_generate(PROMPT, latents=noise.clone())).latents
    torch.testing.assert_close(inpainted, generated)


def test_the_mask_is_dilated_to_latent_cells():
    mask = np.zeros((16, 16), np.uint8)
    mask[5, 9] = 255  # one pixel, inside latent cell (2, 4) at factor 2
    keep = latent_keep([Image.fromarray(mask)], 2)
    assert keep.shape == (1, 1, 8, 8) and keep[0, 0, 2, 4] == 0 and keep.sum() == 63


def test_states_preview_the_kept_region_and_the_callback_sees_it(pipe, image):
    seen = []
    states = list(pipe.iter_inpaint(image, left_half_white(), PROMPT, generator=gen(4),
                                    callback_on_step_end=lambda p, i, t, k: seen.append(i)))
    given = given_latents(pipe, image)
    assert len(states) == pipe.defaults.generate.num_inference_steps == len(seen)
    assert all(torch.equal(s.pred_clean[..., 4:], given[..., 4:]) for s in states)


def test_strength_below_one_starts_from_the_given_image(pipe, image):
    white = Image.new("L", (16, 16), 255)
    steps = list(pipe.iter_inpaint(image, white, PROMPT, strength=0.5, num_inference_steps=8, generator=gen(5)))
    assert len(steps) == 4
    low = pipe.inpaint(image, white, PROMPT, strength=0.25, num_inference_steps=8, generator=gen(5),
                       output_type="latent").images
    full = pipe.inpaint(image, white, PROMPT, strength=1.0, num_inference_steps=8, generator=gen(5),
                        output_type="latent").images
    given = given_latents(pipe, image)
    assert (low - given).abs().mean() < (full - given).abs().mean()  # a variation stays nearer the image


@pytest.mark.parametrize("options, message", [
    ({"strength": 0}, "strength"), ({"strength": 1.5}, "strength"), ({"strength": True}, "strength"),
    ({"strength": 0.1, "num_inference_steps": 4}, "leaves no step"), ({"guidance_scale": -1}, "guidance_scale"),
])
def test_bad_options_are_refused(pipe, image, options, message):
    with pytest.raises(ValueError, match=message):
        pipe.inpaint(image, left_half_white(), PROMPT, **options)


def test_bad_inputs_are_refused(pipe, image):
    with pytest.raises(ValueError, match="mask_image"):
        pipe.inpaint(image, None, PROMPT)
    with pytest.raises(ValueError, match="2 images for 3 prompts"):
        pipe.inpaint([image, image], left_half_white(), [PROMPT] * 3)
    with pytest.raises(ValueError, match="empty"):
        pipe.inpaint(image, left_half_white(), " ")
    with pytest.raises(TypeError, match="unknown option"):
        pipe.inpaint(image, left_half_white(), PROMPT, strenght=0.5)


def test_a_batch_takes_one_mask_for_all_or_one_each(pipe, image):
    masks = [left_half_white(), Image.new("L", (16, 16), 0)]
    latents = pipe.inpaint(image, masks, [PROMPT, PROMPT], generator=gen(6), output_type="latent").images
    given = given_latents(pipe, image)[0]
    torch.testing.assert_close(latents[1], given)
    assert (latents[0] - given).abs().mean() > 0.05


def test_cli_inpaints_an_image(tiny_folder, tmp_path, image, capsys):
    image_path, mask_path, out = tmp_path / "in.png", tmp_path / "mask.png", tmp_path / "out.png"
    image.save(image_path)
    left_half_white().save(mask_path)
    assert cli_main(["inpaint", "--model", str(tiny_folder), str(image_path), str(mask_path), PROMPT,
                     "--out", str(out), "--seed", "0"]) == 0
    assert Image.open(out).size == (16, 16)
    assert cli_main(["inpaint", "--model", str(tiny_folder), str(image_path), str(mask_path), PROMPT,
                     "--strength", "2"]) == 2
    assert "strength" in capsys.readouterr().err


def test_a_transparent_mask_background_is_kept(pipe, image):
    """A mask drawn as strokes on a transparent layer (an editor's export): transparent = keep, opaque = repaint."""
    layer = np.zeros((16, 16, 4), np.uint8)
    layer[:, :8] = (255, 255, 255, 255)
    latents = pipe.inpaint(image, Image.fromarray(layer), PROMPT, generator=gen(7), output_type="latent").images
    given = given_latents(pipe, image)
    assert torch.equal(latents[..., 4:], given[..., 4:])
    assert (latents[..., :4] - given[..., :4]).abs().mean() > 0.1
