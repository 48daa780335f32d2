"""The app's image tabs: Generate (text to image) and Edit (in-painting with a brush), each streaming the predicted
clean image of every solver step."""

from __future__ import annotations

import random
import tempfile
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr
import numpy as np
from PIL import Image

import shapes_world as sw
from app_inputs import (
    HEAVY, VIEW_SIDE, Domain, check_prompt_words, done, number, on_gpu, start, stopped, timed, user_error,
)
from ddit.checks import GUIDANCE_RANGE, MAX_STEPS, seeded_generator
from ddit.image_inputs import load_image, resize_and_center_crop

if TYPE_CHECKING:
    from ddit import DualDiffusionPipeline

MAX_FRAMES = 50  # the most steps the strip and the GIF show (evenly spaced beyond that)
BRUSH = "#ff3ea5"  # any painted pixel is repainted, whatever its colour: this one shows on white scenes
EDIT_HELP = ("Paint over what should change (the brush; painted = repainted, white in the mask); the rest is kept as "
             "it is. Describe the whole picture as it should be.")


def upscale(image: Image.Image, side: int = VIEW_SIDE) -> Image.Image:
    """Nearest-neighbour upscaling, so that small outputs stay crisp."""
    return image.resize((side, side), Image.NEAREST)


def kept_steps(steps: int, most: int = MAX_FRAMES) -> list[int]:
    """The steps the strip and the GIF show: all of them, or ``most`` evenly spaced ones ending with the last (a
    1000-step run would otherwise send a thousand thumbnails)."""
    if steps <= most:
        return list(range(steps))
    return sorted({round(k * (steps - 1) / (most - 1)) for k in range(most)})


def stream_images(pipe, steps_iter, seed: int, finish):
    """Yield (preview, strip, gif, status) for each state of an image run, then the final image from ``finish``."""
    frames, seconds, state = [], 0.0, None
    for state, secs in timed(steps_iter):
        seconds += secs
        # the conditional prediction (guided ones overshoot at high noise), by the small decoder when there is one
        preview = pipe.decode_preview(state.pred_clean_cond)[0]
        frames.append(preview)
        yield upscale(preview), None, None, f"step {state.step + 1}/{state.num_steps} · seed {seed}"
    final = finish(state.latents)
    kept = kept_steps(len(frames))
    gif = Path(tempfile.mkdtemp(prefix="ddit-")) / f"ddit-{seed}.gif"
    upscale(frames[kept[0]], 128).save(gif, save_all=True, duration=150, loop=0,
                                       append_images=[upscale(f, 128) for f in [frames[i] for i in kept[1:]] + [final]])
    strip = [(upscale(frames[i], 96), f"step {i + 1}") for i in kept]
    yield upscale(final), strip, str(gif), f"{done(len(frames), state.forward_passes, seconds)} · seed {seed}"


@on_gpu
def generate(pipe, prompt, negative, steps, guidance, seed, random_seed):
    """Stream the predicted clean image of every solver step; end with the image, a strip and a GIF."""
    if not prompt or not prompt.strip():
        raise user_error("Please write a prompt, e.g. “a large red circle at the top left”.")
    seed = random.randrange(2**31) if random_seed else number(seed, "Seed")
    check_prompt_words(pipe, prompt)
    steps_iter = start(lambda: pipe.iter_generate(
        prompt.strip(), negative_prompt=negative or None, num_inference_steps=number(steps, "Steps"),
        guidance_scale=number(guidance, "Guidance"), generator=seeded_generator(seed)))
    yield from stream_images(pipe, steps_iter, seed, lambda latents: pipe.decode_latents(latents)[0])


def editor_parts(value) -> tuple[Image.Image, Image.Image]:
    """The image and the painted mask (white = repaint) of a ``gr.ImageEditor`` value, or a message saying what is
    missing."""
    if not isinstance(value, dict) or value.get("background") is None:
        raise user_error("Please upload an image (or draw a new scene) to edit first.")
    background = load_image(value["background"])
    painted = np.zeros((background.height, background.width), bool)
    for layer in value.get("layers") or []:
        alpha = np.asarray(Image.fromarray(np.asarray(layer)).convert("RGBA").resize(background.size))[..., 3]
        painted |= alpha > 0
    if not painted.any():
        raise user_error("Paint over the part of the image to change first, with the brush (painted = repainted).")
    return background, Image.fromarray(np.where(painted, 255, 0).astype(np.uint8))


@on_gpu
def edit(pipe, editor, prompt, steps, guidance, strength, seed):
    """Repaint the painted part of the image to fit the prompt, streaming each step; end with the image, a strip,
    a GIF and the mask as the model read it."""
    if not prompt or not prompt.strip():
        raise user_error("Please describe the picture as it should be, e.g. “a blue square at the top left”.")
    image, mask = editor_parts(editor)
    check_prompt_words(pipe, prompt)
    seed = number(seed, "Seed")
    steps_iter = start(lambda: pipe.iter_inpaint(
        image, mask, prompt.strip(), num_inference_steps=number(steps, "Steps"),
        guidance_scale=number(guidance, "Guidance"), strength=number(strength, "Strength"),
        generator=seeded_generator(seed)))
    side = pipe.resolution
    seen = upscale(resize_and_center_crop(mask, side, resample=Image.NEAREST).convert("RGB"))
    for preview, strip, gif, status in stream_images(
            pipe, steps_iter, seed, lambda latents: pipe.decode_inpainted(latents, image, mask)[0]):
        # the mask once, at the end: the same image sent every step is rewritten in gradio's cache while a client
        # may still be downloading it (a truncated response, seen in the server log)
        yield preview, strip, gif, status, gr.skip() if strip is None else seen


def fresh_canvas():
    """A new random Shapes-World scene to edit (at the model's size: the editor zooms in, and what is kept is kept
    pixel for pixel), and its true caption."""
    rng = np.random.default_rng()
    scene = sw.sample_scene(rng)
    image = sw.render(scene, rng)
    return {"background": image, "layers": [], "composite": image}, sw.caption(scene), f"drawn: {sw.caption(scene)}"


# ----------------------------------------------------------------------------- layout
def image_outputs(label: str):
    """The live preview, status, strip of steps and GIF of an image tab."""
    gr.Markdown(f"**{label}** (the predicted clean image at each step)")
    image_out = gr.Image(show_label=False, type="pil", format="png", height=VIEW_SIDE,
                         elem_classes=["pixel-view"])  # no label: it covered the image's top
    status = gr.Markdown()
    # 5 wide: wider rows overflow the column
    strip = gr.Gallery(label=f"Every step (at most {MAX_FRAMES}, evenly spaced)", columns=5, height="auto")
    gif = gr.File(label="The whole process (GIF)")
    return image_out, status, strip, gif


def image_settings(d):
    """Steps, guidance and seed boxes at the model's defaults."""
    with gr.Row():
        steps = gr.Number(d.generate.num_inference_steps, label="Steps", info=f"1 to {MAX_STEPS}")
        low, high = GUIDANCE_RANGE
        guidance = gr.Number(d.generate.guidance_scale, label="Guidance", info=f"{low:g} to {high:g}; 1 = none")
    return steps, guidance


def generate_tab(pipe: DualDiffusionPipeline, domain: Domain) -> None:
    """Prompt and settings on the left; the live preview, every step and the GIF on the right."""
    with gr.Row():
        with gr.Column():
            prompt = gr.Textbox(label="Prompt", placeholder=domain.prompt_placeholder)
            negative = gr.Textbox("", label="Negative prompt", placeholder="(optional)")
            steps, guidance = image_settings(pipe.defaults)
            with gr.Row():
                seed = gr.Number(0, label="Seed")
                random_seed = gr.Checkbox(False, label="Random seed")
            with gr.Row():
                go = gr.Button("Generate", variant="primary")
                stop = gr.Button("Stop")
            if domain.example_prompts:
                gr.Examples([[p] for p in domain.example_prompts], inputs=[prompt], label="Example prompts")
        with gr.Column():
            image_out, status, strip, gif = image_outputs("Denoising")
    event = go.click(partial(generate, pipe), [prompt, negative, steps, guidance, seed, random_seed],
                     [image_out, strip, gif, status], api_name="generate", **HEAVY)
    # cancel first, then say where it stopped: an update still in flight cannot overwrite the message
    stop.click(None, None, None, cancels=[event], queue=False).then(stopped, status, status, queue=False)


def edit_tab(pipe: DualDiffusionPipeline, domain: Domain) -> None:
    """An image to paint a mask on, a prompt and settings; the repainting streamed as Generate streams."""
    with gr.Row():
        with gr.Column():
            editor = gr.ImageEditor(label="Image: paint what should change", type="numpy", image_mode="RGBA",
                                    height=VIEW_SIDE + 120, canvas_size=(VIEW_SIDE, VIEW_SIDE),
                                    brush=gr.Brush(default_size=max(4, (pipe.defaults.resolution or 64) // 8),
                                                   colors=[(BRUSH, 0.6)],
                                                   color_mode="fixed"),
                                    transforms=(), layers=False, sources=("upload", "clipboard"))
            gr.Markdown(EDIT_HELP)
            drawn = gr.Markdown()
            if domain.shapes_world:
                draw = gr.Button("Draw a new scene to edit")
            prompt = gr.Textbox(label="Prompt", placeholder=domain.prompt_placeholder)
            steps, guidance = image_settings(pipe.defaults)
            with gr.Row():
                strength = gr.Number(1.0, label="Strength", info="1: repaint from noise; lower keeps more of it")
                seed = gr.Number(0, label="Seed")
            with gr.Row():
                go = gr.Button("Repaint", variant="primary")
                stop = gr.Button("Stop")
        with gr.Column():
            image_out, status, strip, gif = image_outputs("Repainting")
            mask_out = gr.Image(label="The mask at the model's size (white = repainted)", type="pil",
                                height=VIEW_SIDE // 2, elem_classes=["pixel-view"])
    if domain.shapes_world:
        draw.click(fresh_canvas, None, [editor, prompt, drawn], queue=False)
    event = go.click(partial(edit, pipe), [editor, prompt, steps, guidance, strength, seed],
                     [image_out, strip, gif, status, mask_out], api_name="edit", **HEAVY)
    stop.click(None, None, None, cancels=[event], queue=False).then(stopped, status, status, queue=False)
