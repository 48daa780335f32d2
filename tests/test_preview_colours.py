"""The bundled model's step previews read by colour (benchmarks/preview_colours.py): with its preview decoder, a
blue square's previews read blue as often as the VAE's decodes, no first preview of a red circle reads
green, and a half-faded disc decodes as its own colour faded. They load the bundled model, so all but the colour
reader's own test are slow (deselected by -m 'not slow')."""

from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from benchmarks.preview_colours import preview_colours, read_colour
from ddit import DualDiffusionPipeline
from shapes_world import Scene, ShapeObject, render

MODEL = Path(__file__).resolve().parent.parent / "assets" / "ddit-shapes"
SEEDS, STEPS = range(8), 3


def disc(rgb, fade: float = 1.0) -> Image.Image:
    """A disc of ``rgb`` blended with the white background by ``fade`` (1: the colour itself)."""
    image = Image.new("RGB", (64, 64), (255, 255, 255))
    ImageDraw.Draw(image).ellipse((20, 20, 40, 40), fill=tuple(round(255 + fade * (c - 255)) for c in rgb))
    return image


def test_read_colour_reads_faded_colours_and_blanks():
    assert read_colour(disc((220, 40, 40))) == read_colour(disc((220, 40, 40), fade=0.3)) == "red"
    assert read_colour(disc((240, 210, 40))) == "yellow" and read_colour(disc((40, 170, 70), 0.5)) == "green"
    assert read_colour(Image.new("RGB", (64, 64), (250, 250, 250))) == "blank"


@pytest.fixture(scope="module")
def pipe():
    pipeline = DualDiffusionPipeline.from_pretrained(MODEL, device="cpu")
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


@pytest.mark.slow
def test_the_bundled_model_ships_a_preview_decoder(pipe):
    assert pipe.preview_decoder is not None
    size = sum(p.stat().st_size for p in (MODEL / "preview_decoder").iterdir())
    assert size < 2**20


@pytest.mark.slow
def test_first_previews_of_a_red_circle_read_red(pipe):
    """What the app shows (the conditional prediction, by the preview decoder) reads red, never green."""
    read = preview_colours(pipe, "a red circle", SEEDS, STEPS)
    app_red, vae_red = (sum(step.count("red") for step in read[name]) for name in ("app", "vae"))
    assert not any("green" in step for step in read["app"]), read
    assert app_red >= len(SEEDS) * STEPS // 2 and app_red > vae_red, read  # measured: 19 of 24, the VAE's 5 (previous weights: 15, 2)


@pytest.mark.slow
def test_previews_of_a_blue_square_read_blue_as_often_as_the_vae_decodes_them(pipe):
    """The decoder is not what makes a preview's colour wrong: its previews read blue at least as often as the
    VAE's decodes of the same predictions, and by the third step most do. (The first prediction itself reads
    purple with every decoder for the 2026-12-02 weights: blue 0, 4, 6 of 8 at steps 1-3 with either; the
    previous weights' read 8, 8, 8 against the VAE's 4, 3, 5.)"""
    read = preview_colours(pipe, "a blue square", SEEDS, STEPS)
    preview, vae = ([step.count("blue") for step in read[name]] for name in ("preview", "vae"))
    assert preview[-1] >= 6 and sum(preview) >= sum(vae), read


@pytest.mark.slow
@pytest.mark.parametrize("colour", ["red", "green", "blue", "purple"])
def test_a_half_faded_disc_decodes_faded_not_as_another_colour(pipe, colour):
    """Half a disc's latent and half the background's, as a blurred early prediction is: the preview decoder,
    trained on such blends, shows the faded colour (the VAE shows red and green ones orange or yellow)."""
    disc_latent, background = pipe.encode_image([render(Scene((ShapeObject("circle", colour, "large", 4),))),
                                                 render(Scene(()))]).chunk(2)
    assert read_colour(pipe.decode_preview(0.5 * disc_latent + 0.5 * background)[0]) == colour
